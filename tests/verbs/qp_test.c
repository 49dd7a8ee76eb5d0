// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * qp_test [-d DEVICE]: RC queue pairs on an frdma device.
 *
 * QPs are created with capabilities from one entry to the device's limits
 * and report at least what was asked, also through query_qp; requests
 * past the limits are refused.  The IBTA state machine is walked
 * RESET -> INIT -> RTR -> RTS with the required attribute masks, and each
 * transition is refused (EINVAL, state unchanged) with a required
 * attribute missing, an attribute not allowed, or a state skipped; query_qp
 * returns what was set.  Work requests are checked the verbs way: posting
 * sends before RTS, too many SGEs, too much inline data and a full ring are
 * refused with bad_wr at the first refused request, for ibv_post_send(),
 * ibv_post_recv() and the ibv_wr_*() interface.  Then two QPs of this
 * process, connected through the device's RoCE v2 GID, move data with
 * every opcode through both posting interfaces, two threads post on one
 * QP at once, and a QP reset to RESET forgets its queued receives.  UD QPs, where the kernel has them, send
 * through an address handle and receive behind a GRH.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>

#include "device.h"
#include "loopback.h"
#include "tap.h"

#define PORT		1
#define BUF_SIZE	65536
#define WATCHDOG_S	60	/* a lost completion fails instead of hanging */
#define FRDMA_SGES	32	/* more SGEs than any QP here has */

struct env {
	struct ibv_context *ctx;
	struct ibv_device_attr_ex dev;
	struct ibv_port_attr port;
	struct ibv_pd *pd;
	struct ibv_cq *cq[2];	/* one per QP of the pair, send and receive */
	uint8_t *buf[2];
	struct ibv_mr *mr[2];
	union ibv_gid gid;
	int gid_index;
};


/* The port's RoCE v2 GID of an IPv4 address (::ffff:a.b.c.d). */
static int find_gid(struct env *e)
{
	struct ibv_gid_entry ent;
	int i;

	for (i = 0; i < e->port.gid_tbl_len; i++) {
		if (ibv_query_gid_ex(e->ctx, PORT, i, &ent, 0))
			continue;
		if (ent.gid_type != IBV_GID_TYPE_ROCE_V2)
			continue;
		if (ent.gid.raw[10] != 0xff || ent.gid.raw[11] != 0xff)
			continue;
		e->gid = ent.gid;
		e->gid_index = i;
		return 0;
	}
	return -1;
}

static struct ibv_qp *create_rc(struct env *e, struct ibv_cq *cq,
				struct ibv_qp_cap *cap)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = cq, .recv_cq = cq, .cap = *cap,
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_qp *qp = ibv_create_qp(e->pd, &ia);

	if (qp)
		*cap = ia.cap;
	return qp;
}

static struct ibv_qp *create_rc_ex(struct env *e, struct ibv_cq *cq,
				   struct ibv_qp_cap *cap)
{
	struct ibv_qp_init_attr_ex ia = {
		.send_cq = cq, .recv_cq = cq, .cap = *cap,
		.qp_type = IBV_QPT_RC,
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = e->pd,
		.send_ops_flags = IBV_QP_EX_WITH_SEND |
				  IBV_QP_EX_WITH_SEND_WITH_IMM |
				  IBV_QP_EX_WITH_RDMA_WRITE |
				  IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
				  IBV_QP_EX_WITH_RDMA_READ |
				  IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
				  IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD,
	};
	struct ibv_qp *qp = ibv_create_qp_ex(e->ctx, &ia);

	if (qp)
		*cap = ia.cap;
	return qp;
}

enum {
	INIT_MASK = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		    IBV_QP_ACCESS_FLAGS,
	RTR_MASK = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
	RTS_MASK = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
		   IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC,
	ALL_ACCESS = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC,
};

static void init_attr(struct ibv_qp_attr *a)
{
	*a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_INIT, .pkey_index = 0, .port_num = PORT,
		.qp_access_flags = ALL_ACCESS,
	};
}

static void rtr_attr(struct env *e, struct ibv_qp_attr *a, uint32_t dqpn)
{
	*a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024,
		.dest_qp_num = dqpn, .rq_psn = 0x123456,
		.max_dest_rd_atomic = 4, .min_rnr_timer = 12,
		.ah_attr = {
			.is_global = 1, .port_num = PORT,
			.grh = {
				.dgid = e->gid, .sgid_index = e->gid_index,
				.hop_limit = 64,
			},
		},
	};
}

static void rts_attr(struct ibv_qp_attr *a)
{
	*a = (struct ibv_qp_attr){
		.qp_state = IBV_QPS_RTS, .timeout = 14, .retry_cnt = 7,
		.rnr_retry = 7, .sq_psn = 0x654321, .max_rd_atomic = 4,
	};
}

static int to_rts(struct env *e, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a;
	int ret;

	init_attr(&a);
	ret = ibv_modify_qp(qp, &a, INIT_MASK);
	if (ret)
		return ret;
	rtr_attr(e, &a, dqpn);
	ret = ibv_modify_qp(qp, &a, RTR_MASK);
	if (ret)
		return ret;
	rts_attr(&a);
	return ibv_modify_qp(qp, &a, RTS_MASK);
}

static enum ibv_qp_state qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr ia;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &ia))
		return (enum ibv_qp_state)-1;
	return a.qp_state;
}

static bool cap_ge(const struct ibv_qp_cap *got, const struct ibv_qp_cap *want)
{
	return got->max_send_wr >= want->max_send_wr &&
	       got->max_recv_wr >= want->max_recv_wr &&
	       got->max_send_sge >= want->max_send_sge &&
	       got->max_recv_sge >= want->max_recv_sge &&
	       got->max_inline_data >= want->max_inline_data;
}

static void test_caps(struct env *e)
{
	uint32_t mwr = e->dev.orig_attr.max_qp_wr;
	uint32_t msge = e->dev.orig_attr.max_sge;
	struct ibv_qp_cap caps[] = {
		{ 1, 1, 1, 1, 0 },
		{ 0, 1, 0, 1, 0 },
		{ 16, 16, 2, 2, 32 },
		{ 100, 33, 3, 5, 64 },
		{ 1000, 1000, 4, 4, 65 },
		{ mwr, mwr, msge, msge, 256 },
		{ mwr / 2 + 1, 3, 1, msge, 200 },
	};
	struct ibv_qp_init_attr qia;
	struct ibv_qp_attr qa;
	struct ibv_qp_cap got;
	struct ibv_qp *qp;
	unsigned int i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		got = caps[i];
		qp = i & 1 ? create_rc_ex(e, e->cq[0], &got) :
			     create_rc(e, e->cq[0], &got);
		if (!ok(qp != NULL, "%s RC QP wr %u/%u sge %u/%u inline %u: %s",
			i & 1 ? "ibv_create_qp_ex" : "ibv_create_qp",
			caps[i].max_send_wr, caps[i].max_recv_wr,
			caps[i].max_send_sge, caps[i].max_recv_sge,
			caps[i].max_inline_data, qp ? "ok" : strerror(errno)))
			continue;
		ok(cap_ge(&got, &caps[i]) && got.max_send_wr <= mwr &&
		   got.max_recv_wr <= mwr && got.max_send_sge <= msge &&
		   got.max_recv_sge <= msge,
		   "  reports wr %u/%u sge %u/%u inline %u, within the limits",
		   got.max_send_wr, got.max_recv_wr, got.max_send_sge,
		   got.max_recv_sge, got.max_inline_data);
		ok(qp->qp_num >= 2 && qp->state == IBV_QPS_RESET,
		   "  QPN %u >= 2, in RESET", qp->qp_num);
		memset(&qia, 0, sizeof(qia));
		ok(!ibv_query_qp(qp, &qa, IBV_QP_STATE | IBV_QP_CAP, &qia) &&
		   qa.qp_state == IBV_QPS_RESET &&
		   !memcmp(&qia.cap, &got, sizeof(got)) &&
		   qia.qp_type == IBV_QPT_RC,
		   "  query_qp reports the same capabilities");
		ok(!ibv_destroy_qp(qp), "  ibv_destroy_qp");
	}

	got = (struct ibv_qp_cap){ mwr + 1, 1, 1, 1, 0 };
	errno = 0;
	qp = create_rc(e, e->cq[0], &got);
	ok(!qp && errno == EINVAL, "max_qp_wr + 1 send entries are refused (%s)",
	   strerror(errno));
	if (qp)
		ibv_destroy_qp(qp);
	got = (struct ibv_qp_cap){ 1, mwr + 1, 1, 1, 0 };
	errno = 0;
	qp = create_rc(e, e->cq[0], &got);
	ok(!qp && errno == EINVAL, "max_qp_wr + 1 receive entries are refused");
	if (qp)
		ibv_destroy_qp(qp);
	got = (struct ibv_qp_cap){ 1, 1, msge + 1, 1, 0 };
	errno = 0;
	qp = create_rc(e, e->cq[0], &got);
	ok(!qp && errno == EINVAL, "max_sge + 1 send SGEs are refused");
	if (qp)
		ibv_destroy_qp(qp);
	got = (struct ibv_qp_cap){ 1, 1, 1, msge + 1, 0 };
	errno = 0;
	qp = create_rc(e, e->cq[0], &got);
	ok(!qp && errno == EINVAL, "max_sge + 1 receive SGEs are refused");
	if (qp)
		ibv_destroy_qp(qp);
	got = (struct ibv_qp_cap){ 1, 1, 1, 1, 1 << 20 };
	errno = 0;
	qp = create_rc(e, e->cq[0], &got);
	ok(!qp, "1 MiB of inline data is refused (%s)", strerror(errno));
	if (qp)
		ibv_destroy_qp(qp);
}

/* A transition that must fail with EINVAL and leave the state as it was. */
static void refuse(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask,
		   enum ibv_qp_state was, const char *what)
{
	int ret = ibv_modify_qp(qp, a, mask);

	ok(ret == EINVAL && qp_state(qp) == was,
	   "%s is refused with EINVAL (%s), the QP stays in %d", what,
	   strerror(ret), was);
}

static void test_states(struct env *e)
{
	struct ibv_qp_cap cap = { 4, 4, 1, 1, 0 };
	struct ibv_qp_init_attr qia;
	struct ibv_qp_attr a, q;
	struct ibv_qp *qp;
	int ret;

	qp = create_rc(e, e->cq[0], &cap);
	if (!ok(qp != NULL, "a QP for the state machine"))
		return;

	rts_attr(&a);
	refuse(qp, &a, RTS_MASK, IBV_QPS_RESET, "RESET -> RTS");
	rtr_attr(e, &a, qp->qp_num);
	refuse(qp, &a, RTR_MASK, IBV_QPS_RESET, "RESET -> RTR");
	init_attr(&a);
	refuse(qp, &a, INIT_MASK & ~IBV_QP_ACCESS_FLAGS, IBV_QPS_RESET,
	       "RESET -> INIT without ACCESS_FLAGS");
	refuse(qp, &a, INIT_MASK & ~IBV_QP_PORT, IBV_QPS_RESET,
	       "RESET -> INIT without PORT");
	refuse(qp, &a, INIT_MASK | IBV_QP_SQ_PSN, IBV_QPS_RESET,
	       "RESET -> INIT with SQ_PSN");
	a.port_num = 7;
	ret = ibv_modify_qp(qp, &a, INIT_MASK);
	ok(ret != 0 && qp_state(qp) == IBV_QPS_RESET,
	   "RESET -> INIT to port 7 is refused (%s)", strerror(ret));
	init_attr(&a);
	ret = ibv_modify_qp(qp, &a, INIT_MASK);
	ok(!ret && qp_state(qp) == IBV_QPS_INIT && qp->state == IBV_QPS_INIT,
	   "RESET -> INIT (%s)", strerror(ret));

	rtr_attr(e, &a, qp->qp_num);
	refuse(qp, &a, RTR_MASK & ~IBV_QP_MIN_RNR_TIMER, IBV_QPS_INIT,
	       "INIT -> RTR without MIN_RNR_TIMER");
	refuse(qp, &a, RTR_MASK & ~IBV_QP_AV, IBV_QPS_INIT,
	       "INIT -> RTR without AV");
	refuse(qp, &a, RTR_MASK | IBV_QP_TIMEOUT, IBV_QPS_INIT,
	       "INIT -> RTR with TIMEOUT");
	rts_attr(&a);
	refuse(qp, &a, RTS_MASK, IBV_QPS_INIT, "INIT -> RTS");
	rtr_attr(e, &a, qp->qp_num);
	ret = ibv_modify_qp(qp, &a, RTR_MASK);
	ok(!ret && qp_state(qp) == IBV_QPS_RTR, "INIT -> RTR (%s)",
	   strerror(ret));

	rts_attr(&a);
	refuse(qp, &a, RTS_MASK & ~IBV_QP_SQ_PSN, IBV_QPS_RTR,
	       "RTR -> RTS without SQ_PSN");
	refuse(qp, &a, RTS_MASK & ~IBV_QP_TIMEOUT, IBV_QPS_RTR,
	       "RTR -> RTS without TIMEOUT");
	refuse(qp, &a, RTS_MASK | IBV_QP_DEST_QPN, IBV_QPS_RTR,
	       "RTR -> RTS with DEST_QPN");
	ret = ibv_modify_qp(qp, &a, RTS_MASK);
	ok(!ret && qp_state(qp) == IBV_QPS_RTS, "RTR -> RTS (%s)",
	   strerror(ret));

	memset(&q, 0, sizeof(q));
	memset(&qia, 0, sizeof(qia));
	ret = ibv_query_qp(qp, &q, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS | IBV_QP_AV |
			   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			   IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER |
			   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			   IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
			   IBV_QP_MAX_QP_RD_ATOMIC | IBV_QP_CAP, &qia);
	ok(!ret, "query_qp of every attribute (%s)", strerror(ret));
	ok(q.qp_state == IBV_QPS_RTS && q.port_num == PORT &&
	   q.pkey_index == 0 && q.qp_access_flags == ALL_ACCESS,
	   "  state, port, pkey index, access flags as set");
	ok(q.path_mtu == IBV_MTU_1024 && q.dest_qp_num == qp->qp_num &&
	   q.rq_psn == 0x123456 && q.sq_psn == 0x654321,
	   "  path MTU, destination QPN, PSNs as set (mtu %d, dqpn %u, rq_psn %#x, sq_psn %#x)",
	   q.path_mtu, q.dest_qp_num, q.rq_psn, q.sq_psn);
	ok(q.max_dest_rd_atomic == 4 && q.max_rd_atomic == 4 &&
	   q.min_rnr_timer == 12 && q.timeout == 14 && q.retry_cnt == 7 &&
	   q.rnr_retry == 7,
	   "  RDMA READ depths, RNR timer, timeout, retry counts as set");
	ok(q.ah_attr.is_global &&
	   !memcmp(q.ah_attr.grh.dgid.raw, e->gid.raw, 16) &&
	   q.ah_attr.grh.sgid_index == e->gid_index &&
	   q.ah_attr.grh.hop_limit == 64 && q.ah_attr.port_num == PORT,
	   "  address vector as set");
	ok(!memcmp(&qia.cap, &cap, sizeof(cap)) && qia.send_cq == e->cq[0] &&
	   qia.recv_cq == e->cq[0] && !qia.sq_sig_all,
	   "  init attributes as created");

	rtr_attr(e, &a, qp->qp_num);
	refuse(qp, &a, IBV_QP_STATE, IBV_QPS_RTS, "RTS -> RTR");
	a.qp_state = IBV_QPS_ERR;
	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE);
	ok(!ret && qp_state(qp) == IBV_QPS_ERR, "RTS -> ERR (%s)",
	   strerror(ret));
	a.qp_state = IBV_QPS_RESET;
	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE);
	ok(!ret && qp_state(qp) == IBV_QPS_RESET, "ERR -> RESET (%s)",
	   strerror(ret));
	ok(!to_rts(e, qp, qp->qp_num) && qp_state(qp) == IBV_QPS_RTS,
	   "and to RTS again");
	ok(!ibv_destroy_qp(qp), "ibv_destroy_qp");
}

/* Wait for @n completions; the watchdog only catches lost ones. */
static int poll_n(struct ibv_cq *cq, struct ibv_wc *wc, int n)
{
	struct timespec t0, t;
	int got = 0, r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < n) {
		r = ibv_poll_cq(cq, n - got, wc + got);
		if (r < 0)
			return r;
		got += r;
		if (r)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > WATCHDOG_S)
			break;
	}
	return got;
}

/* Nothing more arrives (the data path completes at the doorbell). */
static bool cq_empty(struct ibv_cq *cq)
{
	struct ibv_wc wc;

	return ibv_poll_cq(cq, 1, &wc) == 0;
}

/* Forget the completions of QPs destroyed before. */
static void drain(struct ibv_cq *cq)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(cq, 16, wc) > 0)
		;
}

static int post_recv(struct env *e, struct ibv_qp *qp, int side,
		     uint64_t wr_id, uint32_t off, uint32_t len)
{
	struct ibv_sge sge = {
		(uintptr_t)e->buf[side] + off, len, e->mr[side]->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(qp, &wr, &bad);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

static void test_posting(struct env *e)
{
	struct ibv_qp_cap cap = { 4, 4, 2, 2, 64 };
	struct ibv_sge sge[FRDMA_SGES + 1];
	struct ibv_send_wr swr[2], *sbad;
	struct ibv_recv_wr rwr[17], *rbad;
	struct ibv_wc wc;
	struct ibv_qp_attr a;
	struct ibv_qp_ex *qpx;
	struct ibv_qp *qp;
	int i, ret;

	qp = create_rc_ex(e, e->cq[0], &cap);
	if (!ok(qp != NULL, "a QP to post to (wr %u/%u sge %u/%u inline %u)",
		cap.max_send_wr, cap.max_recv_wr, cap.max_send_sge,
		cap.max_recv_sge, cap.max_inline_data))
		return;
	qpx = ibv_qp_to_qp_ex(qp);
	if (!ok(qpx != NULL && cap.max_recv_wr < 17 &&
		cap.max_send_sge < FRDMA_SGES && cap.max_recv_sge < FRDMA_SGES,
		"ibv_qp_to_qp_ex; at most 16 receive entries, %d SGEs",
		FRDMA_SGES - 1))
		goto out;

	for (i = 0; i <= FRDMA_SGES; i++)
		sge[i] = (struct ibv_sge){ (uintptr_t)e->buf[0] + 64 * i, 8,
					   e->mr[0]->lkey };
	memset(swr, 0, sizeof(swr));
	memset(rwr, 0, sizeof(rwr));
	for (i = 0; i < 2; i++)
		swr[i] = (struct ibv_send_wr){
			.wr_id = i, .next = i < 1 ? &swr[i + 1] : NULL,
			.sg_list = sge, .num_sge = 1, .opcode = IBV_WR_SEND,
		};
	for (i = 0; i < 17; i++)
		rwr[i] = (struct ibv_recv_wr){
			.wr_id = i, .next = i < 16 ? &rwr[i + 1] : NULL,
			.sg_list = sge, .num_sge = 1,
		};

	swr[0].next = NULL;
	ret = ibv_post_send(qp, swr, &sbad);
	ok(ret == EINVAL && sbad == swr, "post_send in RESET: EINVAL (%s)",
	   strerror(ret));
	rwr[0].next = NULL;
	ret = ibv_post_recv(qp, rwr, &rbad);
	ok(ret == EINVAL && rbad == rwr, "post_recv in RESET: EINVAL (%s)",
	   strerror(ret));
	rwr[0].next = &rwr[1];

	init_attr(&a);
	if (!ok(!ibv_modify_qp(qp, &a, INIT_MASK), "to INIT"))
		goto out;
	ret = ibv_post_send(qp, swr, &sbad);
	ok(ret == EINVAL && sbad == swr, "post_send in INIT: EINVAL");
	ibv_wr_start(qpx);
	ibv_wr_send(qpx);
	ibv_wr_set_sge(qpx, sge[0].lkey, sge[0].addr, sge[0].length);
	ret = ibv_wr_complete(qpx);
	ok(ret == EINVAL, "ibv_wr_complete in INIT: EINVAL (%s)",
	   strerror(ret));

	/* receives: the ring holds max_recv_wr, then ENOMEM */
	rwr[cap.max_recv_wr - 1].next = NULL;
	rwr[1].num_sge = cap.max_recv_sge + 1;
	ret = ibv_post_recv(qp, rwr, &rbad);
	ok(ret == EINVAL && rbad == &rwr[1],
	   "a receive with max_recv_sge + 1 SGEs: EINVAL at that request");
	rwr[1].num_sge = cap.max_recv_sge;
	ret = ibv_post_recv(qp, &rwr[1], &rbad);
	ok(!ret, "the rest of the receives up to max_recv_wr (%s)",
	   strerror(ret));
	rwr[cap.max_recv_wr - 1].next = &rwr[cap.max_recv_wr];
	rwr[cap.max_recv_wr].next = NULL;
	ret = ibv_post_recv(qp, &rwr[cap.max_recv_wr], &rbad);
	ok(ret == ENOMEM && rbad == &rwr[cap.max_recv_wr],
	   "one receive more: ENOMEM (%s)", strerror(ret));

	/* RESET forgets the queued receives: the ring is empty again */
	a.qp_state = IBV_QPS_RESET;
	ok(!ibv_modify_qp(qp, &a, IBV_QP_STATE), "back to RESET");
	init_attr(&a);
	ok(!ibv_modify_qp(qp, &a, INIT_MASK), "to INIT again");
	rwr[cap.max_recv_wr - 1].next = NULL;
	ret = ibv_post_recv(qp, rwr, &rbad);
	ok(!ret, "after RESET, max_recv_wr receives fit again (%s)",
	   strerror(ret));

	/* sends, in RTS connected to itself */
	rtr_attr(e, &a, qp->qp_num);
	ok(!ibv_modify_qp(qp, &a, RTR_MASK), "to RTR");
	rts_attr(&a);
	ok(!ibv_modify_qp(qp, &a, RTS_MASK), "to RTS");

	swr[0].next = &swr[1];
	swr[1].num_sge = cap.max_send_sge + 1;
	swr[1].next = NULL;
	ret = ibv_post_send(qp, swr, &sbad);
	ok(ret == EINVAL && sbad == &swr[1],
	   "a send with max_send_sge + 1 SGEs: EINVAL at that request");
	ok(poll_n(e->cq[0], &wc, 1) == 1 && wc.status == IBV_WC_SUCCESS &&
	   wc.opcode == IBV_WC_RECV && wc.wr_id == 0 && wc.byte_len == 8,
	   "  the unsignaled send before it arrived");
	swr[1].num_sge = 1;
	swr[1].send_flags = IBV_SEND_INLINE;
	sge[FRDMA_SGES].length = cap.max_inline_data + 1;
	swr[1].sg_list = &sge[FRDMA_SGES];
	ret = ibv_post_send(qp, &swr[1], &sbad);
	ok(ret == EINVAL && sbad == &swr[1],
	   "max_inline_data + 1 inline bytes: EINVAL");
	sge[FRDMA_SGES].length = cap.max_inline_data;
	swr[1].opcode = IBV_WR_RDMA_READ;
	ret = ibv_post_send(qp, &swr[1], &sbad);
	ok(ret == EINVAL && sbad == &swr[1], "inline RDMA READ: EINVAL");
	swr[1].opcode = IBV_WR_TSO;
	swr[1].send_flags = 0;
	ret = ibv_post_send(qp, &swr[1], &sbad);
	ok(ret == EINVAL && sbad == &swr[1], "TSO (no RC opcode): EINVAL");

	ibv_wr_start(qpx);
	for (i = 0; i <= (int)cap.max_send_wr; i++) {
		qpx->wr_id = 100 + i;
		qpx->wr_flags = IBV_SEND_SIGNALED;
		ibv_wr_send(qpx);
		ibv_wr_set_sge(qpx, sge[0].lkey, sge[0].addr, 8);
	}
	ret = ibv_wr_complete(qpx);
	ok(ret == ENOMEM, "max_send_wr + 1 sends in one ibv_wr batch: ENOMEM (%s)",
	   strerror(ret));
	ibv_wr_start(qpx);
	qpx->wr_id = 200;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send(qpx);
	ibv_wr_set_sge_list(qpx, cap.max_send_sge + 1, sge);
	ret = ibv_wr_complete(qpx);
	ok(ret == EINVAL, "max_send_sge + 1 SGEs through ibv_wr: EINVAL (%s)",
	   strerror(ret));
	ibv_wr_start(qpx);
	ibv_wr_send(qpx);
	ibv_wr_set_inline_data(qpx, e->buf[0], cap.max_inline_data + 1);
	ret = ibv_wr_complete(qpx);
	ok(ret == EINVAL, "max_inline_data + 1 inline bytes through ibv_wr: EINVAL");
	ibv_wr_start(qpx);
	ibv_wr_send(qpx);
	ibv_wr_abort(qpx);
	ok(cq_empty(e->cq[0]),
	   "nothing refused or aborted was posted: the CQ is empty");
out:
	ibv_destroy_qp(qp);
}

/* One data movement between the QPs of a connected pair. */
struct xfer {
	struct env *e;
	struct ibv_qp *qp[2];
	struct ibv_qp_ex *qpx[2];
	bool ex;	/* through ibv_wr_*() instead of ibv_post_send() */
};

static int xfer_send(struct xfer *x, struct ibv_send_wr *wr)
{
	struct ibv_qp_ex *qpx = x->qpx[0];
	struct ibv_send_wr *bad;

	if (!x->ex)
		return ibv_post_send(x->qp[0], wr, &bad);

	ibv_wr_start(qpx);
	qpx->wr_id = wr->wr_id;
	qpx->wr_flags = wr->send_flags & ~IBV_SEND_INLINE;
	switch (wr->opcode) {
	case IBV_WR_SEND:
		ibv_wr_send(qpx);
		break;
	case IBV_WR_SEND_WITH_IMM:
		ibv_wr_send_imm(qpx, wr->imm_data);
		break;
	case IBV_WR_RDMA_WRITE:
		ibv_wr_rdma_write(qpx, wr->wr.rdma.rkey,
				  wr->wr.rdma.remote_addr);
		break;
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		ibv_wr_rdma_write_imm(qpx, wr->wr.rdma.rkey,
				      wr->wr.rdma.remote_addr, wr->imm_data);
		break;
	case IBV_WR_RDMA_READ:
		ibv_wr_rdma_read(qpx, wr->wr.rdma.rkey,
				 wr->wr.rdma.remote_addr);
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
		ibv_wr_atomic_cmp_swp(qpx, wr->wr.atomic.rkey,
				      wr->wr.atomic.remote_addr,
				      wr->wr.atomic.compare_add,
				      wr->wr.atomic.swap);
		break;
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		ibv_wr_atomic_fetch_add(qpx, wr->wr.atomic.rkey,
					wr->wr.atomic.remote_addr,
					wr->wr.atomic.compare_add);
		break;
	default:
		ibv_wr_abort(qpx);
		return EINVAL;
	}
	if (wr->send_flags & IBV_SEND_INLINE) {
		struct ibv_data_buf b[8];
		int i;

		for (i = 0; i < wr->num_sge && i < 8; i++)
			b[i] = (struct ibv_data_buf){
				(void *)(uintptr_t)wr->sg_list[i].addr,
				wr->sg_list[i].length,
			};
		if (wr->num_sge == 1)
			ibv_wr_set_inline_data(qpx, b[0].addr, b[0].length);
		else
			ibv_wr_set_inline_data_list(qpx, wr->num_sge, b);
	} else if (wr->num_sge == 1) {
		ibv_wr_set_sge(qpx, wr->sg_list[0].lkey, wr->sg_list[0].addr,
			       wr->sg_list[0].length);
	} else {
		ibv_wr_set_sge_list(qpx, wr->num_sge, wr->sg_list);
	}
	return ibv_wr_complete(qpx);
}

/* The send completion of @wr_id on the requester, successful. */
static bool send_done(struct xfer *x, uint64_t wr_id,
		      enum ibv_wc_opcode opcode)
{
	struct ibv_wc wc;

	if (poll_n(x->e->cq[0], &wc, 1) != 1) {
		diag("no send completion");
		return false;
	}
	if (wc.status != IBV_WC_SUCCESS || wc.wr_id != wr_id ||
	    wc.opcode != opcode || wc.qp_num != x->qp[0]->qp_num) {
		diag("send wc: status %s wr_id %llu opcode %d qp %u",
		     ibv_wc_status_str(wc.status),
		     (unsigned long long)wc.wr_id, wc.opcode, wc.qp_num);
		return false;
	}
	return true;
}

static bool recv_done(struct xfer *x, uint64_t wr_id,
		      enum ibv_wc_opcode opcode, uint32_t len, bool imm,
		      __be32 imm_data)
{
	struct ibv_wc wc;

	if (poll_n(x->e->cq[1], &wc, 1) != 1) {
		diag("no receive completion");
		return false;
	}
	if (wc.status != IBV_WC_SUCCESS || wc.wr_id != wr_id ||
	    wc.opcode != opcode || wc.byte_len != len ||
	    wc.qp_num != x->qp[1]->qp_num ||
	    !!(wc.wc_flags & IBV_WC_WITH_IMM) != imm ||
	    (imm && wc.imm_data != imm_data)) {
		diag("recv wc: status %s wr_id %llu opcode %d len %u flags %#x imm %#x",
		     ibv_wc_status_str(wc.status),
		     (unsigned long long)wc.wr_id, wc.opcode, wc.byte_len,
		     wc.wc_flags, be32toh(wc.imm_data));
		return false;
	}
	return true;
}

static void test_opcodes(struct xfer *x)
{
	struct env *e = x->e;
	uint8_t *a = e->buf[0], *b = e->buf[1];
	const char *api = x->ex ? "ibv_wr" : "post_send";
	uint32_t rkey = e->mr[1]->rkey, lkey = e->mr[0]->lkey;
	struct ibv_sge sge[3];
	struct ibv_send_wr wr;
	uint64_t *word = (uint64_t *)(b + 4096), *orig = (uint64_t *)(a + 4096);
	__be32 imm = htobe32(0xfeed0000 + x->ex);
	bool good;
	int ret;

	memset(a, 0, BUF_SIZE);
	memset(b, 0, BUF_SIZE);

	/* SEND of three SGEs into one receive buffer */
	fill(a + 8192, 3000, 1);
	sge[0] = (struct ibv_sge){ (uintptr_t)a + 8192, 1000, lkey };
	sge[1] = (struct ibv_sge){ (uintptr_t)a + 9192, 1500, lkey };
	sge[2] = (struct ibv_sge){ (uintptr_t)a + 10692, 500, lkey };
	good = !post_recv(e, x->qp[1], 1, 11, 8192, 4000);
	wr = (struct ibv_send_wr){
		.wr_id = 1, .sg_list = sge, .num_sge = 3,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	};
	ret = xfer_send(x, &wr);
	good = good && !ret && send_done(x, 1, IBV_WC_SEND) &&
	       recv_done(x, 11, IBV_WC_RECV, 3000, false, 0);
	ok(good && !memcmp(a + 8192, b + 8192, 3000) && b[8192 + 3000] == 0,
	   "%s: SEND of 3 SGEs, 3000 bytes (%s)", api, strerror(ret));

	/* SEND_WITH_IMM, unsignaled first, then a signaled one */
	fill(a + 8192, 64, 2);
	good = !post_recv(e, x->qp[1], 1, 12, 16384, 64) &&
	       !post_recv(e, x->qp[1], 1, 13, 20480, 64);
	sge[0].length = 64;
	wr = (struct ibv_send_wr){
		.wr_id = 2, .sg_list = sge, .num_sge = 1,
		.opcode = IBV_WR_SEND_WITH_IMM, .imm_data = imm,
	};
	ret = xfer_send(x, &wr);
	wr.wr_id = 3;
	wr.send_flags = IBV_SEND_SIGNALED;
	ret = ret ? ret : xfer_send(x, &wr);
	good = good && !ret && send_done(x, 3, IBV_WC_SEND) &&
	       recv_done(x, 12, IBV_WC_RECV, 64, true, imm) &&
	       recv_done(x, 13, IBV_WC_RECV, 64, true, imm);
	ok(good && !memcmp(a + 8192, b + 16384, 64) &&
	   !memcmp(a + 8192, b + 20480, 64) && cq_empty(e->cq[0]),
	   "%s: SEND_WITH_IMM, the unsignaled one completes silently", api);

	/* inline SEND from two buffers */
	fill(a + 100, 40, 3);
	fill(a + 300, 20, 4);
	sge[0] = (struct ibv_sge){ (uintptr_t)a + 100, 40, 0 };
	sge[1] = (struct ibv_sge){ (uintptr_t)a + 300, 20, 0 };
	good = !post_recv(e, x->qp[1], 1, 14, 24576, 100);
	wr = (struct ibv_send_wr){
		.wr_id = 4, .sg_list = sge, .num_sge = 2,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE,
	};
	ret = xfer_send(x, &wr);
	memset(a + 100, 0xee, 40);	/* inline: the buffer is free already */
	good = good && !ret && send_done(x, 4, IBV_WC_SEND) &&
	       recv_done(x, 14, IBV_WC_RECV, 60, false, 0);
	fill(a + 100, 40, 3);
	ok(good && !memcmp(a + 100, b + 24576, 40) &&
	   !memcmp(a + 300, b + 24576 + 40, 20),
	   "%s: inline SEND of 2 buffers, 60 bytes", api);

	/* RDMA WRITE, no receive consumed */
	fill(a + 8192, 5000, 5);
	sge[0] = (struct ibv_sge){ (uintptr_t)a + 8192, 5000, lkey };
	wr = (struct ibv_send_wr){
		.wr_id = 5, .sg_list = sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { (uintptr_t)b + 30000, rkey },
	};
	ret = xfer_send(x, &wr);
	good = !ret && send_done(x, 5, IBV_WC_RDMA_WRITE);
	ok(good && !memcmp(a + 8192, b + 30000, 5000) && cq_empty(e->cq[1]),
	   "%s: RDMA WRITE of 5000 bytes", api);

	/* RDMA WRITE_WITH_IMM: data lands at the address, a receive completes */
	fill(a + 8192, 777, 6);
	sge[0].length = 777;
	good = !post_recv(e, x->qp[1], 1, 16, 0, 0);
	wr.wr_id = 6;
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	wr.imm_data = imm;
	wr.wr.rdma.remote_addr = (uintptr_t)b + 40000;
	ret = xfer_send(x, &wr);
	good = good && !ret && send_done(x, 6, IBV_WC_RDMA_WRITE) &&
	       recv_done(x, 16, IBV_WC_RECV_RDMA_WITH_IMM, 777, true, imm);
	ok(good && !memcmp(a + 8192, b + 40000, 777),
	   "%s: RDMA WRITE_WITH_IMM of 777 bytes", api);

	/* inline RDMA WRITE */
	fill(a + 200, 33, 7);
	sge[0] = (struct ibv_sge){ (uintptr_t)a + 200, 33, 0 };
	wr = (struct ibv_send_wr){
		.wr_id = 7, .sg_list = sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE,
		.wr.rdma = { (uintptr_t)b + 50001, rkey },
	};
	ret = xfer_send(x, &wr);
	good = !ret && send_done(x, 7, IBV_WC_RDMA_WRITE);
	ok(good && !memcmp(a + 200, b + 50001, 33),
	   "%s: inline RDMA WRITE of 33 bytes to an odd address", api);

	/* RDMA READ into two SGEs */
	fill(b + 50000, 6000, 8);
	sge[0] = (struct ibv_sge){ (uintptr_t)a + 10000, 2500, lkey };
	sge[1] = (struct ibv_sge){ (uintptr_t)a + 20000, 3500, lkey };
	wr = (struct ibv_send_wr){
		.wr_id = 8, .sg_list = sge, .num_sge = 2,
		.opcode = IBV_WR_RDMA_READ, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { (uintptr_t)b + 50000, rkey },
	};
	ret = xfer_send(x, &wr);
	good = !ret && send_done(x, 8, IBV_WC_RDMA_READ);
	ok(good && !memcmp(a + 10000, b + 50000, 2500) &&
	   !memcmp(a + 20000, b + 52500, 3500),
	   "%s: RDMA READ of 6000 bytes into 2 SGEs", api);

	/* atomics */
	*word = 5;
	*orig = 0;
	sge[0] = (struct ibv_sge){ (uintptr_t)orig, 8, lkey };
	wr = (struct ibv_send_wr){
		.wr_id = 9, .sg_list = sge, .num_sge = 1,
		.opcode = IBV_WR_ATOMIC_CMP_AND_SWP,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.atomic = { (uintptr_t)word, 5, 0x1122334455667788ULL,
			       rkey },
	};
	ret = xfer_send(x, &wr);
	good = !ret && send_done(x, 9, IBV_WC_COMP_SWAP);
	ok(good && *orig == 5 && *word == 0x1122334455667788ULL,
	   "%s: CMP_AND_SWP that matches swaps", api);
	wr.wr_id = 10;
	wr.wr.atomic.compare_add = 5;
	wr.wr.atomic.swap = 1;
	ret = xfer_send(x, &wr);
	good = !ret && send_done(x, 10, IBV_WC_COMP_SWAP);
	ok(good && *orig == 0x1122334455667788ULL &&
	   *word == 0x1122334455667788ULL,
	   "%s: CMP_AND_SWP that does not match leaves the word", api);
	wr.wr_id = 11;
	wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	wr.wr.atomic.compare_add = 0x10;
	ret = xfer_send(x, &wr);
	good = !ret && send_done(x, 11, IBV_WC_FETCH_ADD);
	ok(good && *orig == 0x1122334455667788ULL &&
	   *word == 0x1122334455667798ULL, "%s: FETCH_AND_ADD", api);

	ok(cq_empty(e->cq[0]) && cq_empty(e->cq[1]), "%s: no stray completion",
	   api);
}

/* A batch of sends in one post_send (one doorbell). */
static void test_batch(struct xfer *x)
{
	struct env *e = x->e;
	struct ibv_send_wr wr[16], *bad;
	struct ibv_sge sge[16];
	struct ibv_wc wc[16];
	int i, ret, n;
	bool good = true;

	for (i = 0; i < 16; i++) {
		good &= !post_recv(e, x->qp[1], 1, 1000 + i, 1024 * i, 1024);
		fill(e->buf[0] + 1024 * i, 1024, 100 + i);
		sge[i] = (struct ibv_sge){ (uintptr_t)e->buf[0] + 1024 * i,
					   1 + 63 * i, e->mr[0]->lkey };
		wr[i] = (struct ibv_send_wr){
			.wr_id = 2000 + i, .next = i < 15 ? &wr[i + 1] : NULL,
			.sg_list = &sge[i], .num_sge = 1,
			.opcode = IBV_WR_SEND,
			.send_flags = i == 15 ? IBV_SEND_SIGNALED : 0,
		};
	}
	ret = ibv_post_send(x->qp[0], wr, &bad);
	ok(!ret, "16 sends in one ibv_post_send (%s)", strerror(ret));
	n = poll_n(e->cq[1], wc, 16);
	for (i = 0; i < n; i++)
		good &= wc[i].status == IBV_WC_SUCCESS &&
			wc[i].wr_id == 1000 + (uint64_t)i &&
			wc[i].byte_len == 1 + 63 * (uint32_t)i &&
			!memcmp(e->buf[1] + 1024 * i, e->buf[0] + 1024 * i,
				wc[i].byte_len);
	ok(n == 16 && good, "  16 receives complete in order with the data");
	n = poll_n(e->cq[0], wc, 1);
	ok(n == 1 && wc[0].wr_id == 2015 && cq_empty(e->cq[0]),
	   "  one send completion, for the signaled last one");
}

static void test_data(struct env *e)
{
	struct ibv_qp_cap cap = { 64, 64, 3, 3, 64 };
	struct xfer x = { .e = e };
	int i;

	drain(e->cq[0]);
	drain(e->cq[1]);
	for (i = 0; i < 2; i++) {
		struct ibv_qp_cap c = cap;

		x.qp[i] = create_rc_ex(e, e->cq[i], &c);
		if (!ok(x.qp[i] != NULL, "data QP %d: %s", i,
			x.qp[i] ? "ok" : strerror(errno)))
			goto out;
		x.qpx[i] = ibv_qp_to_qp_ex(x.qp[i]);
	}
	if (!ok(!to_rts(e, x.qp[0], x.qp[1]->qp_num) &&
		!to_rts(e, x.qp[1], x.qp[0]->qp_num),
		"the pair is connected (QPN %u <-> %u)", x.qp[0]->qp_num,
		x.qp[1]->qp_num))
		goto out;

	x.ex = false;
	test_opcodes(&x);
	x.ex = true;
	test_opcodes(&x);
	test_batch(&x);
out:
	for (i = 0; i < 2; i++)
		if (x.qp[i])
			ibv_destroy_qp(x.qp[i]);
}

/*
 * Two threads post inline SENDs on one QP at once, 8-byte payloads
 * (thread << 32 | sequence): each message arrives exactly once, and each
 * thread's in its order, so the SQ lock and prod publication hold.
 */
#define THREAD_MSGS	400

struct poster {
	struct ibv_qp *qp;
	uint32_t id;
	int err;
};

static void *poster_run(void *arg)
{
	struct poster *p = arg;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	uint64_t msg;
	uint32_t i;
	int ret;

	for (i = 0; i < THREAD_MSGS; i++) {
		msg = (uint64_t)p->id << 32 | i;
		sge = (struct ibv_sge){ (uintptr_t)&msg, sizeof(msg), 0 };
		wr = (struct ibv_send_wr){
			.wr_id = msg, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_SEND,
			.send_flags = IBV_SEND_INLINE |
				      (i % 50 == 49 ? IBV_SEND_SIGNALED : 0),
		};
		do
			ret = ibv_post_send(p->qp, &wr, &bad);
		while (ret == ENOMEM);	/* the SQ is full for a moment */
		if (ret) {
			p->err = ret;
			break;
		}
	}
	return NULL;
}

static void test_threads(struct env *e)
{
	struct ibv_qp_cap cap = { 32, 2 * THREAD_MSGS, 1, 1, 8 };
	struct ibv_cq *cq[2] = {};
	struct ibv_qp *qp[2] = {};
	struct poster p[2];
	pthread_t th[2];
	struct ibv_wc *wc = NULL;
	uint32_t next[2] = { 0, 0 };
	bool good = true;
	int i, n = 0;

	for (i = 0; i < 2; i++) {
		struct ibv_qp_cap c = cap;

		cq[i] = ibv_create_cq(e->ctx, 4 * THREAD_MSGS, NULL, NULL, 0);
		qp[i] = cq[i] ? create_rc(e, cq[i], &c) : NULL;
	}
	wc = calloc(2 * THREAD_MSGS, sizeof(*wc));
	if (!ok(qp[0] && qp[1] && wc &&
		!to_rts(e, qp[0], qp[1]->qp_num) &&
		!to_rts(e, qp[1], qp[0]->qp_num),
		"a connected pair for two posting threads"))
		goto out;
	for (i = 0; i < 2 * THREAD_MSGS; i++)
		good &= !post_recv(e, qp[1], 1, i, 8 * i, 8);
	if (!ok(good, "%d receives posted", 2 * THREAD_MSGS))
		goto out;

	for (i = 0; i < 2; i++) {
		p[i] = (struct poster){ .qp = qp[0], .id = i };
		pthread_create(&th[i], NULL, poster_run, &p[i]);
	}
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ok(!p[0].err && !p[1].err, "two threads posted %d inline sends each (%s)",
	   THREAD_MSGS, strerror(p[0].err ? p[0].err : p[1].err));

	n = poll_n(cq[1], wc, 2 * THREAD_MSGS);
	for (i = 0; i < n; i++) {
		uint64_t msg;
		uint32_t t;

		memcpy(&msg, e->buf[1] + 8 * wc[i].wr_id, 8);
		t = msg >> 32;
		if (wc[i].status != IBV_WC_SUCCESS || wc[i].byte_len != 8 ||
		    t > 1 || (uint32_t)msg != next[t]) {
			good = false;
			diag("receive %d: status %s, message %#llx", i,
			     ibv_wc_status_str(wc[i].status),
			     (unsigned long long)msg);
			break;
		}
		next[t]++;
	}
	ok(n == 2 * THREAD_MSGS && good && next[0] == THREAD_MSGS &&
	   next[1] == THREAD_MSGS,
	   "every message arrived once, each thread's in order (%d received)",
	   n);
	n = poll_n(cq[0], wc, 2 * THREAD_MSGS / 50);
	good = n == 2 * THREAD_MSGS / 50;
	for (i = 0; i < n; i++)
		good &= wc[i].status == IBV_WC_SUCCESS &&
			(wc[i].wr_id & 0xffffffff) % 50 == 49;
	ok(good && cq_empty(cq[0]), "one send completion per signaled send");
out:
	for (i = 0; i < 2; i++) {
		if (qp[i])
			ibv_destroy_qp(qp[i]);
		if (cq[i])
			ibv_destroy_cq(cq[i]);
	}
	free(wc);
}

/*
 * UD, where the kernel has it: two UD QPs exchange a SEND through an AH
 * for the device's own GID; the receive holds the 40-byte GRH and then
 * the payload.
 */
static void test_ud(struct env *e)
{
	struct ibv_qp_init_attr_ex ia = {
		.cap = { 16, 16, 2, 2, 64 }, .qp_type = IBV_QPT_UD,
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = e->pd,
		.send_ops_flags = IBV_QP_EX_WITH_SEND |
				  IBV_QP_EX_WITH_SEND_WITH_IMM,
	};
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = PORT,
		.grh = { .dgid = e->gid, .sgid_index = e->gid_index,
			 .hop_limit = 64 },
	};
	const uint32_t qkey = 0x11111111;
	struct ibv_qp *qp[2] = {};
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct ibv_ah *ah = NULL;
	struct ibv_qp_ex *qpx;
	struct ibv_port_attr pa;
	struct ibv_wc wc;
	uint8_t *a0 = e->buf[0], *b1 = e->buf[1];
	uint32_t mtu;
	bool good;
	int i, ret;

	drain(e->cq[0]);
	drain(e->cq[1]);
	for (i = 0; i < 2; i++) {
		ia.send_cq = ia.recv_cq = e->cq[i];
		qp[i] = ibv_create_qp_ex(e->ctx, &ia);
		if (!qp[i])
			break;
	}
	if (!qp[0] && (errno == EOPNOTSUPP || errno == EINVAL)) {
		ok(true, "UD QPs # SKIP the kernel has no UD QPs (%s)",
		   strerror(errno));
		return;
	}
	if (!ok(qp[0] && qp[1], "two UD QPs: %s",
		qp[0] && qp[1] ? "ok" : strerror(errno)))
		goto out;
	for (i = 0; i < 2; i++) {
		ret = lb_ud_rts(qp[i], qkey);
		if (!ok(!ret, "UD QP %u to RTS (%s)", qp[i]->qp_num,
			strerror(ret)))
			goto out;
	}
	ah = ibv_create_ah(e->pd, &aha);
	if (!ok(ah != NULL, "an AH for the device's own GID: %s",
		ah ? "ok" : strerror(errno)))
		goto out;

	memset(b1, 0, 4096);
	fill(a0 + 1000, 200, 9);
	good = !post_recv(e, qp[1], 1, 31, 0, 40 + 256) &&
	       !post_recv(e, qp[1], 1, 32, 1024, 40 + 256);
	sge = (struct ibv_sge){ (uintptr_t)a0 + 1000, 200, e->mr[0]->lkey };
	wr = (struct ibv_send_wr){
		.wr_id = 30, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.wr.ud = { .ah = ah, .remote_qpn = qp[1]->qp_num,
			   .remote_qkey = qkey },
	};
	ret = ibv_post_send(qp[0], &wr, &bad);
	good = good && !ret && poll_n(e->cq[0], &wc, 1) == 1 &&
	       wc.status == IBV_WC_SUCCESS && wc.wr_id == 30 &&
	       wc.opcode == IBV_WC_SEND;
	ok(good, "post_send: a UD SEND completes (%s)", strerror(ret));
	good = poll_n(e->cq[1], &wc, 1) == 1 &&
	       wc.status == IBV_WC_SUCCESS && wc.wr_id == 31 &&
	       wc.opcode == IBV_WC_RECV && wc.byte_len == 40 + 200 &&
	       (wc.wc_flags & IBV_WC_GRH) && wc.src_qp == qp[0]->qp_num;
	ok(good && !memcmp(b1 + 40, a0 + 1000, 200),
	   "  received after the 40-byte GRH, from QP %u (len %u, src %u)",
	   qp[0]->qp_num, wc.byte_len, wc.src_qp);

	qpx = ibv_qp_to_qp_ex(qp[0]);
	ibv_wr_start(qpx);
	qpx->wr_id = 33;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send_imm(qpx, htobe32(0xabcd));
	ibv_wr_set_ud_addr(qpx, ah, qp[1]->qp_num, qkey);
	ibv_wr_set_inline_data(qpx, a0 + 1000, 50);
	ret = ibv_wr_complete(qpx);
	good = !ret && poll_n(e->cq[0], &wc, 1) == 1 &&
	       wc.status == IBV_WC_SUCCESS && wc.wr_id == 33;
	ok(good, "ibv_wr: an inline UD SEND_WITH_IMM completes (%s)",
	   strerror(ret));
	good = poll_n(e->cq[1], &wc, 1) == 1 &&
	       wc.status == IBV_WC_SUCCESS && wc.wr_id == 32 &&
	       wc.byte_len == 40 + 50 && (wc.wc_flags & IBV_WC_WITH_IMM) &&
	       wc.imm_data == htobe32(0xabcd);
	ok(good && !memcmp(b1 + 1024 + 40, a0 + 1000, 50),
	   "  received with its immediate data");

	wr.opcode = IBV_WR_RDMA_WRITE;
	ret = ibv_post_send(qp[0], &wr, &bad);
	ok(ret == EINVAL && bad == &wr, "UD refuses RDMA WRITE: EINVAL");

	/*
	 * A UD message is one packet (IBTA): a SEND longer than the port's
	 * active MTU is a local length error at the sender, and nothing
	 * arrives.  Last: the error moves the sender to ERR.
	 */
	ret = ibv_query_port(e->ctx, PORT, &pa);
	if (!ok(!ret, "ibv_query_port (%s)", strerror(ret)))
		goto out;
	mtu = 128 << pa.active_mtu;
	good = !post_recv(e, qp[1], 1, 35, 0, 40 + 4096);
	sge = (struct ibv_sge){ (uintptr_t)a0, mtu + 1, e->mr[0]->lkey };
	wr.opcode = IBV_WR_SEND;
	wr.wr_id = 34;
	ret = ibv_post_send(qp[0], &wr, &bad);
	good = good && !ret && poll_n(e->cq[0], &wc, 1) == 1 &&
	       wc.wr_id == 34 && wc.status == IBV_WC_LOC_LEN_ERR;
	ok(good, "a UD SEND of the port MTU + 1 (%u B) completes with IBV_WC_LOC_LEN_ERR (%s, %s)",
	   mtu + 1, strerror(ret), ibv_wc_status_str(wc.status));
	ok(cq_empty(e->cq[1]), "  and nothing is received");
out:
	if (ah)
		ibv_destroy_ah(ah);
	for (i = 0; i < 2; i++)
		if (qp[i])
			ibv_destroy_qp(qp[i]);
}

int main(int argc, char **argv)
{
	struct env e = {};
	const char *dev;
	int i;

	e.ctx = lb_test_open(argc, argv, "frdma0", &dev);
	if (!ok(e.ctx != NULL, "open %s", dev))
		return tap_done();
	if (!ok(!ibv_query_device_ex(e.ctx, NULL, &e.dev) &&
		!ibv_query_port(e.ctx, PORT, &e.port),
		"query device (max_qp_wr %d, max_sge %d) and port",
		e.dev.orig_attr.max_qp_wr, e.dev.orig_attr.max_sge))
		return tap_done();
	if (!ok(!find_gid(&e), "a RoCE v2 IPv4 GID (index %d)", e.gid_index))
		return tap_done();
	e.pd = ibv_alloc_pd(e.ctx);
	for (i = 0; i < 2; i++) {
		e.cq[i] = ibv_create_cq(e.ctx, 256, NULL, NULL, 0);
		e.buf[i] = aligned_alloc(4096, BUF_SIZE);
		e.mr[i] = e.pd && e.buf[i] ?
			ibv_reg_mr(e.pd, e.buf[i], BUF_SIZE, ALL_ACCESS) : NULL;
	}
	if (!ok(e.pd && e.cq[0] && e.cq[1] && e.mr[0] && e.mr[1],
		"PD, CQs, MRs: %s", strerror(errno)))
		return tap_done();

	test_caps(&e);
	test_states(&e);
	test_posting(&e);
	test_data(&e);
	test_threads(&e);
	test_ud(&e);

	for (i = 0; i < 2; i++) {
		ibv_dereg_mr(e.mr[i]);
		ibv_destroy_cq(e.cq[i]);
		free(e.buf[i]);
	}
	ok(!ibv_dealloc_pd(e.pd), "everything is destroyed");
	ibv_close_device(e.ctx);
	return tap_done();
}
