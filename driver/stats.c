// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: the wire's counters as port hardware counters.
 *
 * The RDMA core shows a port's hardware counters in
 * /sys/class/infiniband/DEV/ports/1/hw_counters/ and through
 * "rdma statistic show link DEV/1".  frdma's come from its RoCE v2 wire
 * (net.c): one UDP socket serves every frdma device of the kernel, and a
 * packet dropped before it is matched to a device belongs to none, so the
 * counters are kept for the wire as a whole and every frdma device shows
 * the same values.  They count from module load and never go back; the
 * local fabric (QPs of frdma devices in one kernel) sends no packets and
 * counts nothing.  Names follow rdma_rxe's where the meaning is the same.
 */

#include <rdma/ib_verbs.h>

#include "frdma.h"
#include "wire.h"

static const struct rdma_stat_desc frdma_stat_descs[] = {
	[FRDMA_WS_TX].name = "sent_pkts",
	[FRDMA_WS_RX].name = "rcvd_pkts",
	[FRDMA_WS_ICRC].name = "rcvd_icrc_err",
	[FRDMA_WS_DROP].name = "rcvd_pkts_dropped",
	[FRDMA_WS_RETRANS].name = "local_ack_timeout_err",
	[FRDMA_WS_SEQ_NAK_TX].name = "out_of_seq_request",
	[FRDMA_WS_SEQ_NAK_RX].name = "rcvd_seq_err",
	[FRDMA_WS_RNR_TX].name = "send_rnr_err",
	[FRDMA_WS_RNR_RX].name = "rcvd_rnr_err",
	[FRDMA_WS_DUP].name = "duplicate_request",
	[FRDMA_WS_TX_BURST].name = "sent_bursts",
	[FRDMA_WS_PROBE].name = "sent_probes",
	[FRDMA_WS_KEPT].name = "rcvd_kept",
};

static struct rdma_hw_stats *
frdma_alloc_hw_port_stats(struct ib_device *ibdev, u32 port_num)
{
	BUILD_BUG_ON(ARRAY_SIZE(frdma_stat_descs) != FRDMA_WS_NR);
	return rdma_alloc_hw_stats_struct(frdma_stat_descs, FRDMA_WS_NR,
					  RDMA_HW_STATS_DEFAULT_LIFESPAN);
}

static int frdma_get_hw_stats(struct ib_device *ibdev,
			      struct rdma_hw_stats *stats, u32 port, int index)
{
	int i;

	for (i = 0; i < FRDMA_WS_NR; i++)
		stats->value[i] = frdma_wire_stat_read(i);
	return FRDMA_WS_NR;
}

/* Set on every frdma device (ib_set_device_ops) beside frdma_dev_ops. */
const struct ib_device_ops frdma_stats_ops = {
	.alloc_hw_port_stats = frdma_alloc_hw_port_stats,
	.get_hw_stats = frdma_get_hw_stats,
};
