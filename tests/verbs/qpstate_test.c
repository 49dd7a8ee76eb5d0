// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * qpstate_test -d DEVICE: QP and CQ state rules of the data path, on
 * loopback RC QPs (two QPs of this process connected to each other):
 *
 *   - an error found by a sender does not move a QP its owner has reset
 *     meanwhile: RESET stays RESET, and RESET -> INIT works (the race of a
 *     SEND WITH INVALIDATE whose invalidation fails after a long copy, with
 *     the receiver reset during the copy, many times over);
 *   - SQD with en_sqd_async_notify: IBV_EVENT_SQ_DRAINED is not reported
 *     while a SEND held for an RNR retry is outstanding; the held SEND
 *     still completes in SQD once a receive is posted, and then the event
 *     comes;
 *   - a receive posted on a QP that went to ERR asynchronously (a peer's
 *     error; libibverbs still thinks RTS) completes with
 *     IBV_WC_WR_FLUSH_ERR by itself, with no send doorbell after it;
 *   - a CQ overrun puts the CQ in error (IBV_EVENT_CQ_ERR): the receiver
 *     whose completion did not fit goes to ERR (IBV_EVENT_QP_FATAL), the
 *     sender's SEND fails, nothing more is delivered; ibv_resize_cq()
 *     makes the CQ work again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loopback.h"
#include "tap.h"

#define BUF		(64u << 20)
#define BIG		(2u << 20)	/* the race's copy */
#define RACE_ITERS	48

struct env {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	union ibv_gid gid;
	int gid_index;
	char *buf;
	struct ibv_mr *mr;
};

static int post_send(struct ibv_qp *qp, uint64_t wr_id,
		     enum ibv_wr_opcode op, void *addr, uint32_t len,
		     uint32_t lkey, uint32_t inv)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr, .length = len, .lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	if (op == IBV_WR_SEND_WITH_INV)
		wr.invalidate_rkey = inv;
	return ibv_post_send(qp, &wr, &bad);
}

static int post_recv(struct ibv_qp *qp, uint64_t wr_id, void *addr,
		     uint32_t len, uint32_t lkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr, .length = len, .lkey = lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1,
	}, *bad;

	return ibv_post_recv(qp, &wr, &bad);
}

static int to_reset(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

static void drain(struct ibv_cq *cq)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(cq, 16, wc) > 0)
		;
}

/*
 * Wait for the async event @type (on @qp or @cq when given), acking every
 * event; others are skipped.  Gives up after @ms (a watchdog, or the
 * window in which an event must not come).
 */
static bool wait_event(struct ibv_context *ctx, enum ibv_event_type type,
		       struct ibv_qp *qp, struct ibv_cq *cq, int ms)
{
	struct pollfd p = { .fd = ctx->async_fd, .events = POLLIN };
	struct ibv_async_event ev;
	struct timespec t0;
	bool found = false;
	long left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!found) {
		left = ms - lb_ms_since(&t0);
		if (left < 0 || poll(&p, 1, left) <= 0)
			break;
		if (ibv_get_async_event(ctx, &ev))
			continue;	/* non-blocking: raced with nothing */
		found = ev.event_type == type &&
			(!qp || ev.element.qp == qp) &&
			(!cq || ev.element.cq == cq);
		ibv_ack_async_event(&ev);
	}
	return found;
}

/* Forget the async events queued so far. */
static void flush_events(struct ibv_context *ctx)
{
	wait_event(ctx, (enum ibv_event_type)-1, NULL, NULL, 0);
}

/*
 * The race: while a SEND WITH INVALIDATE copies 2 MiB into B's receive,
 * B's owner resets B.  The invalidation (of a key B does not have) fails
 * after the copy, which moves B to ERR unless B was reset meanwhile.
 * The reset lands at 16 points from before the copy to after it.
 */
struct sender {
	struct env *e;
	struct ibv_qp *a;
	int ret;
};

static void *sender_run(void *arg)
{
	struct sender *s = arg;

	s->ret = post_send(s->a, 1, IBV_WR_SEND_WITH_INV, s->e->buf, BIG,
			   s->e->mr->lkey, 0x12345678);
	return NULL;
}

static void test_reset_race(struct env *e)
{
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *a, *b;
	struct sender s = { .e = e };
	struct ibv_wc wc;
	struct timespec t0;
	long copy_ms;
	int i, stale = 0, reinit = 0, late = 0;
	pthread_t th;

	a = lb_create_qp(e->pd, e->scq, e->scq, 16, 1, 0);
	b = lb_create_qp(e->pd, e->rcq, e->rcq, 16, 1, 0);
	/* A peer that is gone fails the SEND at once, without retries. */
	c.retry_cnt = 0;
	if (!ok(a && b && !lb_connect_attr(a, b->qp_num, &e->gid,
					   e->gid_index, &c) &&
		!lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c),
		"reset race: a connected pair"))
		goto out;

	/* How long the copy takes here: the reset lands within it. */
	post_recv(b, 2, e->buf + BIG, BIG, e->mr->lkey);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	post_send(a, 1, IBV_WR_SEND, e->buf, BIG, e->mr->lkey, 0);
	copy_ms = lb_ms_since(&t0);
	ok(lb_poll(e->scq, &wc, 1) == 1 && wc.status == IBV_WC_SUCCESS &&
	   lb_poll(e->rcq, &wc, 1) == 1 && wc.status == IBV_WC_SUCCESS,
	   "  a 2 MiB SEND (%ld ms here)", copy_ms);
	s.a = a;
	s.e = e;
	for (i = 0; i < RACE_ITERS; i++) {
		if (post_recv(b, 2, e->buf + BIG, BIG, e->mr->lkey))
			break;
		if (pthread_create(&th, NULL, sender_run, &s))
			break;
		/* Somewhere from before the copy to after it. */
		usleep((copy_ms * 1000 + 1000) * (i % 16) / 12);
		if (to_reset(b))
			break;
		drain(e->rcq);
		pthread_join(th, NULL);
		if (lb_qp_state(b) != IBV_QPS_RESET)
			stale++;
		/* Whatever came after RESET returned is for B: none may. */
		while (ibv_poll_cq(e->rcq, 1, &wc) > 0)
			late++;
		to_reset(b);	/* for the next round, if the bug hit */
		to_reset(a);
		drain(e->scq);
		if (lb_connect_attr(a, b->qp_num, &e->gid, e->gid_index, &c) ||
		    lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c)) {
			reinit++;
			break;
		}
	}
	ok(i == RACE_ITERS, "  %d rounds of SEND WITH INVALIDATE against a reset",
	   i);
	ok(!stale, "  RESET is still RESET after the sender's error (%d moved to ERR)",
	   stale);
	ok(!late, "  no completion for the reset QP after RESET returned (%d)",
	   late);
	ok(!reinit, "  RESET -> INIT -> RTR -> RTS works every round");
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	drain(e->scq);
	drain(e->rcq);
}

static void test_sqd_held(struct env *e)
{
	struct ibv_qp_attr qa = {
		.qp_state = IBV_QPS_SQD, .en_sqd_async_notify = 1,
	};
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *a, *b;
	struct ibv_wc wc;

	a = lb_create_qp(e->pd, e->scq, e->scq, 16, 1, 0);
	b = lb_create_qp(e->pd, e->rcq, e->rcq, 16, 1, 0);
	if (!ok(a && b && !lb_connect_attr(a, b->qp_num, &e->gid,
					   e->gid_index, &c) &&
		!lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c),
		"SQD: a connected pair, rnr_retry 7"))
		goto out;
	flush_events(e->ctx);
	strcpy(e->buf, "held");
	ok(!post_send(a, 7, IBV_WR_SEND, e->buf, 5, e->mr->lkey, 0),
	   "  a SEND with no receive posted (held for RNR retries)");
	ok(!ibv_modify_qp(a, &qa, IBV_QP_STATE | IBV_QP_EN_SQD_ASYNC_NOTIFY),
	   "  RTS -> SQD with en_sqd_async_notify");
	ok(!wait_event(e->ctx, IBV_EVENT_SQ_DRAINED, a, NULL, 500),
	   "  no IBV_EVENT_SQ_DRAINED while the SEND is outstanding");
	memset(e->buf + 4096, 0, 64);
	post_recv(b, 8, e->buf + 4096, 64, e->mr->lkey);
	ok(lb_poll(e->scq, &wc, 1) == 1 && wc.wr_id == 7 &&
	   wc.status == IBV_WC_SUCCESS,
	   "  the held SEND completes in SQD once a receive is posted");
	ok(lb_poll(e->rcq, &wc, 1) == 1 && wc.wr_id == 8 &&
	   wc.status == IBV_WC_SUCCESS && !strcmp(e->buf + 4096, "held"),
	   "  and is received");
	ok(wait_event(e->ctx, IBV_EVENT_SQ_DRAINED, a, NULL, LB_WAIT_MS),
	   "  then IBV_EVENT_SQ_DRAINED");
	ok(lb_qp_state(a) == IBV_QPS_SQD, "  the QP is in SQD (%s)",
	   lb_state_str(lb_qp_state(a)));
	ok(!post_send(a, 9, IBV_WR_SEND, e->buf, 5, e->mr->lkey, 0) &&
	   lb_poll_ms(e->scq, &wc, 1, 200) == 0,
	   "  a SEND posted in SQD does not start");
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	drain(e->scq);
	drain(e->rcq);
}

static void test_recv_in_err(struct env *e)
{
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *a, *b;
	struct ibv_wc wc;

	a = lb_create_qp(e->pd, e->scq, e->scq, 16, 1, 0);
	b = lb_create_qp(e->pd, e->rcq, e->rcq, 16, 1, 0);
	if (!ok(a && b && !lb_connect_attr(a, b->qp_num, &e->gid,
					   e->gid_index, &c) &&
		!lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c),
		"receive in ERR: a connected pair"))
		goto out;
	post_recv(b, 11, e->buf + 4096, 16, e->mr->lkey);
	post_send(a, 1, IBV_WR_SEND, e->buf, 64, e->mr->lkey, 0);
	ok(lb_poll(e->rcq, &wc, 1) == 1 && wc.status == IBV_WC_LOC_LEN_ERR,
	   "  a SEND longer than the receive: the receiver fails");
	ok(b->state == IBV_QPS_RTS,
	   "  libibverbs still says RTS (no query_qp since)");
	ok(!post_recv(b, 12, e->buf + 4096, 16, e->mr->lkey),
	   "  a receive posted after the error is accepted");
	ok(lb_poll(e->rcq, &wc, 1) == 1 && wc.wr_id == 12 &&
	   wc.status == IBV_WC_WR_FLUSH_ERR,
	   "  and flushed, with no send after it");
	ok(lb_qp_state(b) == IBV_QPS_ERR, "  the receiver is in ERR (%s)",
	   lb_state_str(lb_qp_state(b)));
	ok(!post_recv(b, 13, e->buf + 4096, 16, e->mr->lkey) &&
	   lb_poll(e->rcq, &wc, 1) == 1 && wc.wr_id == 13 &&
	   wc.status == IBV_WC_WR_FLUSH_ERR, "  and the next one too");
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	drain(e->scq);
	drain(e->rcq);
}

static void test_cq_overrun(struct env *e)
{
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *a = NULL, *b = NULL;
	struct ibv_cq *small;
	struct ibv_wc wc[32];
	int i, n, good, nsend;

	small = ibv_create_cq(e->ctx, 2, NULL, NULL, 0);
	if (!ok(small != NULL, "CQ overrun: a CQ of %d entries",
		small ? small->cqe : 0))
		return;
	nsend = small->cqe + 2;
	a = lb_create_qp(e->pd, e->scq, e->scq, 16, 1, 0);
	b = lb_create_qp(e->pd, small, small, 16, 1, 0);
	if (!ok(nsend <= 16 && a && b &&
		!lb_connect_attr(a, b->qp_num, &e->gid, e->gid_index, &c) &&
		!lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c),
		"  a connected pair, the receiver on it"))
		goto out;
	flush_events(e->ctx);
	memset(e->buf + 4096, 0, 4096);
	for (i = 0; i < nsend; i++)
		post_recv(b, 100 + i, e->buf + 4096 + 64 * i, 64,
			  e->mr->lkey);
	for (i = 0; i < nsend; i++) {
		snprintf(e->buf + 64 * i, 64, "m%d", i);
		post_send(a, i, IBV_WR_SEND, e->buf + 64 * i, 8, e->mr->lkey,
			  0);
	}
	n = lb_poll(e->scq, wc, nsend);
	for (good = 0; good < n && wc[good].status == IBV_WC_SUCCESS; good++)
		;
	ok(n == nsend && good == small->cqe,
	   "  %d SENDs complete, the first %d successfully (%d, %d)",
	   nsend, small->cqe, n, good);
	ok(n == nsend && wc[good].status != IBV_WC_SUCCESS &&
	   wc[nsend - 1].status == IBV_WC_WR_FLUSH_ERR,
	   "  the one whose receive did not fit fails (%s), the next is flushed",
	   n > good ? ibv_wc_status_str(wc[good].status) : "none");
	ok(wait_event(e->ctx, IBV_EVENT_CQ_ERR, NULL, small, LB_WAIT_MS),
	   "  IBV_EVENT_CQ_ERR on the CQ");
	ok(lb_qp_state(b) == IBV_QPS_ERR, "  the receiver is in ERR (%s)",
	   lb_state_str(lb_qp_state(b)));
	n = lb_poll_ms(small, wc, 32, 200);
	ok(n == small->cqe && wc[0].status == IBV_WC_SUCCESS &&
	   wc[n - 1].status == IBV_WC_SUCCESS,
	   "  the CQ holds the %d completions that fit (%d)", small->cqe, n);
	ok(e->buf[4096 + 64 * (small->cqe + 1)] == 0,
	   "  the message after the overrun was not delivered");

	ok(!ibv_resize_cq(small, 16), "  ibv_resize_cq() to 16");
	to_reset(a);
	to_reset(b);
	drain(e->scq);
	if (!ok(!lb_connect_attr(a, b->qp_num, &e->gid, e->gid_index, &c) &&
		!lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c),
		"  the pair reconnected"))
		goto out;
	post_recv(b, 200, e->buf + 4096, 64, e->mr->lkey);
	post_send(a, 50, IBV_WR_SEND, e->buf, 8, e->mr->lkey, 0);
	ok(lb_poll(e->scq, wc, 1) == 1 && wc[0].status == IBV_WC_SUCCESS &&
	   lb_poll(small, wc, 1) == 1 && wc[0].wr_id == 200 &&
	   wc[0].status == IBV_WC_SUCCESS,
	   "  the resized CQ takes completions again");
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	ibv_destroy_cq(small);
	drain(e->scq);
}

int main(int argc, char **argv)
{
	struct env e = {};
	const char *name;
	int fl;

	e.ctx = lb_test_open(argc, argv, NULL, &name);
	if (!ok(e.ctx != NULL, "open %s", name))
		return tap_done();
	fl = fcntl(e.ctx->async_fd, F_GETFL);
	fcntl(e.ctx->async_fd, F_SETFL, fl | O_NONBLOCK);
	e.pd = ibv_alloc_pd(e.ctx);
	e.scq = ibv_create_cq(e.ctx, 64, NULL, NULL, 0);
	e.rcq = ibv_create_cq(e.ctx, 64, NULL, NULL, 0);
	e.buf = aligned_alloc(4096, BUF);
	if (!ok(e.pd && e.scq && e.rcq && e.buf, "PD, CQs, buffer"))
		return tap_done();
	memset(e.buf, 0x5a, BUF);
	e.mr = ibv_reg_mr(e.pd, e.buf, BUF, IBV_ACCESS_LOCAL_WRITE |
			  IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!ok(e.mr != NULL, "an MR") ||
	    !ok(!lb_find_gid(e.ctx, &e.gid_index, &e.gid),
		"a RoCE v2 IPv4 GID"))
		return tap_done();

	test_recv_in_err(&e);
	test_sqd_held(&e);
	test_cq_overrun(&e);
	test_reset_race(&e);

	ibv_dereg_mr(e.mr);
	ibv_destroy_cq(e.scq);
	ibv_destroy_cq(e.rcq);
	ibv_dealloc_pd(e.pd);
	ibv_close_device(e.ctx);
	return tap_done();
}
