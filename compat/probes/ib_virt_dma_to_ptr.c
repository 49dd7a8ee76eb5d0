// SPDX-License-Identifier: GPL-2.0
/* ib_virt_dma_to_ptr() (6.4). */
#include <rdma/ib_verbs.h>

static void __maybe_unused *frdma_probe(u64 addr)
{
	return ib_virt_dma_to_ptr(addr);
}
