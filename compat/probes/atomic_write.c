// SPDX-License-Identifier: GPL-2.0
/* The ATOMIC_WRITE opcodes and device capability (6.2). */
#include <rdma/ib_verbs.h>

static u64 __maybe_unused frdma_probe(void)
{
	return IB_UVERBS_WR_ATOMIC_WRITE + IB_UVERBS_WC_ATOMIC_WRITE +
	       IB_DEVICE_ATOMIC_WRITE;
}
