// SPDX-License-Identifier: GPL-2.0
/* ib_device_ops.create_cq takes the uverbs attribute bundle (6.11). */
#include <rdma/ib_verbs.h>

static int frdma_probe_create_cq(struct ib_cq *cq,
				 const struct ib_cq_init_attr *attr,
				 struct uverbs_attr_bundle *attrs)
{
	return 0;
}

static const struct ib_device_ops frdma_probe __maybe_unused = {
	.create_cq = frdma_probe_create_cq,
};
