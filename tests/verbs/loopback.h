/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Loopback connections for the data-path tests (integrity, security,
 * hostile, killed, exec, mr, the debug kernel's fi_verbs, stress): two RC
 * (or UC) QPs of one process on one device, connected to each other
 * through the device's own RoCE v2 IPv4 GID, exactly as two processes
 * would be (destination GID + QPN), so the same program runs on frdma0 and
 * on rdma_rxe.  lb_connect() connects with the defaults, lb_connect_attr()
 * with other retry, MTU or hop-limit settings (struct lb_conn).
 * lb_test_open() parses a test program's "-d DEVICE" and opens it,
 * lb_open() opens a device and finds its GID in one step.
 *
 * Every wait is bounded (LB_WAIT_MS) so that a lost completion fails the
 * test instead of hanging it; the bound is a watchdog, not a performance
 * threshold.
 */
#ifndef FRDMA_VERBS_LOOPBACK_H
#define FRDMA_VERBS_LOOPBACK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "device.h"

#define LB_PORT		1
#define LB_WAIT_MS	60000


/*
 * The port's RoCE v2 GID that carries an IPv4 address (::ffff:a.b.c.d).
 * The core fills the GID table asynchronously: wait for it, about 30 s.
 */
static inline int lb_find_gid(struct ibv_context *ctx, int *index,
			      union ibv_gid *gid)
{
	static const uint8_t v4prefix[12] = { [10] = 0xff, [11] = 0xff };
	struct ibv_port_attr pa;
	struct ibv_gid_entry e;
	int tries, i;

	for (tries = 0; tries < 300; tries++) {
		if (ibv_query_port(ctx, LB_PORT, &pa))
			return -1;
		for (i = 0; i < pa.gid_tbl_len; i++) {
			if (ibv_query_gid_ex(ctx, LB_PORT, i, &e, 0))
				continue;
			if (e.gid_type != IBV_GID_TYPE_ROCE_V2 ||
			    memcmp(e.gid.raw, v4prefix, sizeof(v4prefix)))
				continue;
			*index = i;
			*gid = e.gid;
			return 0;
		}
		usleep(100000);
	}
	return -1;
}

static inline struct ibv_qp *lb_create_qp(struct ibv_pd *pd,
					  struct ibv_cq *scq,
					  struct ibv_cq *rcq,
					  uint32_t wr, uint32_t sge,
					  uint32_t inline_data)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = scq,
		.recv_cq = rcq,
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 0,
		.cap = {
			.max_send_wr = wr,
			.max_recv_wr = wr,
			.max_send_sge = sge,
			.max_recv_sge = sge,
			.max_inline_data = inline_data,
		},
	};

	return ibv_create_qp(pd, &ia);
}

/*
 * How lb_connect_attr() connects a QP, beyond the destination.
 * LB_CONN(rd_atomic) is what lb_connect() uses.
 */
struct lb_conn {
	int rd_atomic;		/* max_rd_atomic and max_dest_rd_atomic (RC) */
	enum ibv_mtu path_mtu;	/* 0: the port's active MTU */
	uint8_t timeout;	/* RC: local ACK timeout, 4.096 us << timeout */
	uint8_t retry_cnt;	/* RC */
	uint8_t rnr_retry;	/* RC: 7 is forever, 0 fails at the first RNR */
	uint8_t hop_limit;
};

/*
 * RESET -> INIT -> RTR -> RTS for UD QP @qp with Q_Key @qkey, P_Key index
 * 0 on LB_PORT, SQ PSN 0.  Returns 0 or an errno.
 */
static inline int lb_ud_rts(struct ibv_qp *qp, uint32_t qkey)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = LB_PORT, .qkey = qkey,
	};
	int ret;

	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			    IBV_QP_PORT | IBV_QP_QKEY);
	a.qp_state = IBV_QPS_RTR;
	ret = ret ? ret : ibv_modify_qp(qp, &a, IBV_QP_STATE);
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	return ret ? ret : ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

#define LB_CONN(rd)	((struct lb_conn){ .rd_atomic = (rd), .timeout = 14, \
				.retry_cnt = 7, .rnr_retry = 7, .hop_limit = 1 })

/*
 * INIT -> RTR -> RTS towards QPN @dqpn at @dgid, an RC QP (remote write,
 * read and atomic access) or a UC QP (remote write; no RC attributes);
 * PSNs 0.  Also the two halves of XRC: an XRC send QP (a requester: no
 * access rights, no responder attributes) and an XRC receive QP (a
 * responder, like RC's: it stops at RTR).  Returns 0 or an errno.
 */
static inline int lb_connect_attr(struct ibv_qp *qp, uint32_t dqpn,
				  const union ibv_gid *dgid, int sgid_index,
				  const struct lb_conn *c)
{
	bool ini = qp->qp_type == IBV_QPT_XRC_SEND;
	bool tgt = qp->qp_type == IBV_QPT_XRC_RECV;
	bool req = qp->qp_type == IBV_QPT_RC || ini;	/* RC requester */
	bool resp = qp->qp_type == IBV_QPT_RC || tgt;	/* RC responder */
	struct ibv_port_attr pa;
	struct ibv_qp_attr a;
	enum ibv_mtu mtu = c->path_mtu;
	int ret;

	if (!mtu) {
		ret = ibv_query_port(qp->context, LB_PORT, &pa);
		if (ret)
			return ret;
		mtu = pa.active_mtu;
	}

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.pkey_index = 0;
	a.port_num = LB_PORT;
	a.qp_access_flags = ini ? 0 : IBV_ACCESS_REMOTE_WRITE;
	if (resp)
		a.qp_access_flags |= IBV_ACCESS_REMOTE_READ |
				     IBV_ACCESS_REMOTE_ATOMIC;
	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			    IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (ret)
		return ret;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = mtu;
	a.dest_qp_num = dqpn;
	a.rq_psn = 0;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = *dgid;
	a.ah_attr.grh.sgid_index = sgid_index;
	a.ah_attr.grh.hop_limit = c->hop_limit;
	a.ah_attr.port_num = LB_PORT;
	if (resp) {
		a.max_dest_rd_atomic = c->rd_atomic;
		a.min_rnr_timer = 1;
	}
	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			    IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			    (resp ? IBV_QP_MAX_DEST_RD_ATOMIC |
				    IBV_QP_MIN_RNR_TIMER : 0));
	if (ret || tgt)
		return ret;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	if (!req)
		return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
	a.timeout = c->timeout;
	a.retry_cnt = c->retry_cnt;
	a.rnr_retry = c->rnr_retry;
	a.max_rd_atomic = c->rd_atomic;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT |
			     IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			     IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* An RC QP with the defaults: lb_connect_attr() with LB_CONN(rd_atomic). */
static inline int lb_connect(struct ibv_qp *qp, uint32_t dqpn,
			     const union ibv_gid *dgid, int sgid_index,
			     int rd_atomic)
{
	struct lb_conn c = LB_CONN(rd_atomic);

	return lb_connect_attr(qp, dqpn, dgid, sgid_index, &c);
}

static inline int lb_connect_pair(struct ibv_qp *a, struct ibv_qp *b,
				  const union ibv_gid *gid, int gid_index,
				  int rd_atomic)
{
	int ret = lb_connect(a, b->qp_num, gid, gid_index, rd_atomic);

	return ret ? ret : lb_connect(b, a->qp_num, gid, gid_index, rd_atomic);
}

static inline long lb_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Poll @cq until @n completions arrived (returns n), @ms milliseconds
 * passed (returns the number polled so far) or polling failed (-1).
 */
static inline int lb_poll_ms(struct ibv_cq *cq, struct ibv_wc *wc, int n,
			     long ms)
{
	struct timespec t0;
	int got = 0, r, idle = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < n) {
		r = ibv_poll_cq(cq, n - got, wc + got);
		if (r < 0)
			return -1;
		got += r;
		if (r)
			continue;
		if (++idle > 1000) {
			if (lb_ms_since(&t0) > ms)
				break;
			usleep(1000);
		}
	}
	return got;
}

/* lb_poll_ms() with the watchdog bound, LB_WAIT_MS. */
static inline int lb_poll(struct ibv_cq *cq, struct ibv_wc *wc, int n)
{
	return lb_poll_ms(cq, wc, n, LB_WAIT_MS);
}

static inline enum ibv_qp_state lb_qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr ia;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &ia))
		return (enum ibv_qp_state)-1;
	return a.qp_state;
}

static inline const char *lb_state_str(enum ibv_qp_state s)
{
	static const char *const names[] = {
		"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR",
	};

	if ((unsigned int)s < sizeof(names) / sizeof(names[0]))
		return names[s];
	return "(query failed)";
}

/*
 * Parse "-d DEVICE [-s SEED]"; returns the device name.  Exits with usage
 * on anything else.
 */
static inline const char *lb_args(int argc, char **argv, unsigned long *seed)
{
	const char *dev = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "d:s:")) != -1) {
		switch (opt) {
		case 'd':
			dev = optarg;
			break;
		case 's':
			if (seed) {
				*seed = strtoul(optarg, NULL, 0);
				break;
			}
			/* fall through */
		default:
			fprintf(stderr, "usage: %s -d DEVICE%s\n", argv[0],
				seed ? " [-s SEED]" : "");
			exit(2);
		}
	}
	if (!dev) {
		fprintf(stderr, "usage: %s -d DEVICE%s\n", argv[0],
			seed ? " [-s SEED]" : "");
		exit(2);
	}
	return dev;
}

/*
 * Open the device called @name and, when @gid is not NULL, find its RoCE
 * v2 IPv4 GID too (lb_find_gid()).  Returns the context, or NULL with
 * errno set: open_device_by_name()'s, or ENODEV when the device has no
 * such GID (it is closed again).
 */
static inline struct ibv_context *lb_open(const char *name, int *gid_index,
					  union ibv_gid *gid)
{
	struct ibv_context *ctx = open_device_by_name(name);

	if (ctx && gid && lb_find_gid(ctx, gid_index, gid)) {
		ibv_close_device(ctx);
		errno = ENODEV;
		return NULL;
	}
	return ctx;
}

/*
 * How a test program starts: the device named by "-d DEVICE" (@def
 * without one; when @def is NULL, -d is required) in *@name, opened
 * (lb_open(), no GID).  Exits 2 with usage on any other argument.
 * Returns the context, or NULL with errno set.
 */
static inline struct ibv_context *lb_test_open(int argc, char **argv,
					       const char *def,
					       const char **name)
{
	int opt;

	*name = def;
	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd') {
			*name = NULL;
			break;
		}
		*name = optarg;
	}
	if (!*name) {
		fprintf(stderr, "usage: %s %s\n", argv[0],
			def ? "[-d DEVICE]" : "-d DEVICE");
		exit(2);
	}
	return lb_open(*name, NULL, NULL);
}

#endif /* FRDMA_VERBS_LOOPBACK_H */
