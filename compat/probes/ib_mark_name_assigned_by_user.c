// SPDX-License-Identifier: GPL-2.0
/* ib_mark_name_assigned_by_user() (6.9). */
#include <rdma/ib_verbs.h>

static void __maybe_unused frdma_probe(struct ib_device *ibdev)
{
	ib_mark_name_assigned_by_user(ibdev);
}
