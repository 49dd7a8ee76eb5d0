// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * srq_test [-d DEVICE]: shared receive queues on an frdma device.
 *
 * An SRQ is created with at least the entries and SGEs asked for and
 * queried back; RC, UC and UD QPs attached to it receive from it (each
 * completion names the QP the message came to, the payload lands in the
 * SRQ's buffers) and have no RQ of their own; a full SRQ refuses more
 * entries; the limit arms a one-shot IBV_EVENT_SRQ_LIMIT_REACHED; a QP on
 * the SRQ that goes to the error state reports IBV_EVENT_QP_LAST_WQE_REACHED
 * and leaves the SRQ's entries to the other QPs; an SRQ in use cannot be
 * destroyed; a producer index out of range in the SRQ's ring fails the
 * message and reports IBV_EVENT_SRQ_ERR.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include "../../include/uapi/rdma/frdma-abi.h"

#include "../lib/procfs.h"
#include "device.h"
#include "loopback.h"
#include "tap.h"

#define QKEY	0x11111111
#define BUFSZ	4096

struct env {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_srq *srq;
	struct ibv_mr *mr;
	uint8_t buf[8][BUFSZ];
	union ibv_gid gid;
	int gidx;
};

static int post_srq(struct env *e, uint64_t wr_id, int slot)
{
	struct ibv_sge sge = {
		(uintptr_t)e->buf[slot], BUFSZ, e->mr->lkey
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return ibv_post_srq_recv(e->srq, &wr, &bad);
}

static int send_msg(struct env *e, struct ibv_qp *qp, int slot, uint32_t len,
		    struct ibv_ah *ah, uint32_t dqpn)
{
	struct ibv_sge sge = { (uintptr_t)e->buf[slot], len, e->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = 100 + slot, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	if (ah) {
		wr.wr.ud.ah = ah;
		wr.wr.ud.remote_qpn = dqpn;
		wr.wr.ud.remote_qkey = QKEY;
	}
	return ibv_post_send(qp, &wr, &bad);
}

static struct ibv_qp *make_qp(struct env *e, enum ibv_qp_type type,
			      bool on_srq)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = e->cq, .recv_cq = e->cq,
		.srq = on_srq ? e->srq : NULL,
		.qp_type = type,
		.cap = { .max_send_wr = 8, .max_send_sge = 1,
			 .max_recv_wr = on_srq ? 0 : 8,
			 .max_recv_sge = on_srq ? 0 : 1 },
	};

	return ibv_create_qp(e->pd, &ia);
}

/* Poll @n completions; how many came with status success. */
static int poll_n(struct env *e, struct ibv_wc *wc, int n)
{
	int i, got = lb_poll(e->cq, wc, n), good = 0;

	for (i = 0; i < got; i++) {
		if (wc[i].status == IBV_WC_SUCCESS)
			good++;
		else
			diag("wr_id %llu: %s", (unsigned long long)wc[i].wr_id,
			     ibv_wc_status_str(wc[i].status));
	}
	return got == n ? good : -1;
}

/* The receive completion among @wc[0..n), or NULL. */
static const struct ibv_wc *recv_wc(const struct ibv_wc *wc, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (wc[i].opcode & IBV_WC_RECV)
			return &wc[i];
	return NULL;
}

/*
 * The next asynchronous event, waiting at most about @polls polls of the
 * (non-blocking) async fd: 0 and *@ev, or -1.
 */
static int next_event(struct env *e, struct ibv_async_event *ev, int polls)
{
	while (polls-- > 0) {
		if (!ibv_get_async_event(e->ctx, ev))
			return 0;
		usleep(1000);
	}
	return -1;
}

/* Connected QP types: two senders, two receivers on the SRQ. */
static void test_connected(struct env *e, enum ibv_qp_type type)
{
	const char *name = type == IBV_QPT_RC ? "RC" : "UC";
	struct ibv_qp *snd[2] = {}, *rcv[2] = {};
	struct lb_conn c = LB_CONN(1);
	const struct ibv_wc *r = NULL;
	struct ibv_wc wc[2];
	int i, ret = 0;

	for (i = 0; i < 2; i++) {
		snd[i] = make_qp(e, type, false);
		rcv[i] = make_qp(e, type, true);
		if (!snd[i] || !rcv[i])
			break;
		ret = lb_connect_attr(snd[i], rcv[i]->qp_num, &e->gid, e->gidx,
				      &c);
		ret = ret ? ret : lb_connect_attr(rcv[i], snd[i]->qp_num,
						  &e->gid, e->gidx, &c);
		if (ret)
			break;
	}
	if (!ok(i == 2 && !ret, "two %s QPs on the SRQ, connected to two others: %s",
		name, i == 2 ? strerror(ret) : strerror(errno)))
		goto out;

	ok(!post_srq(e, 1, 4) && !post_srq(e, 2, 5), "  two receives on the SRQ");
	for (i = 0; i < 2; i++) {
		memset(e->buf[i], 0x40 + i + (type == IBV_QPT_UC) * 2, 1000);
		if (!ok(!send_msg(e, snd[i], i, 1000, NULL, 0) &&
			poll_n(e, wc, 2) == 2 && (r = recv_wc(wc, 2)),
			"  a SEND to QP %d completes on both sides", i))
			continue;
		ok(r->qp_num == rcv[i]->qp_num && r->byte_len == 1000 &&
		   r->wr_id == (uint64_t)i + 1,
		   "  the receive completion names that QP (%u), wr_id %llu, %u bytes",
		   r->qp_num, (unsigned long long)r->wr_id, r->byte_len);
		ok(!memcmp(e->buf[4 + i], e->buf[i], 1000),
		   "  the payload is in the SRQ entry's buffer");
	}
out:
	for (i = 0; i < 2; i++) {
		if (snd[i])
			ibv_destroy_qp(snd[i]);
		if (rcv[i])
			ibv_destroy_qp(rcv[i]);
	}
}

static void test_ud(struct env *e)
{
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = LB_PORT,
		.grh = { .dgid = e->gid, .sgid_index = e->gidx,
			 .hop_limit = 64 },
	};
	struct ibv_qp *snd, *rcv;
	struct ibv_ah *ah = NULL;
	const struct ibv_wc *r = NULL;
	struct ibv_wc wc[2];

	snd = make_qp(e, IBV_QPT_UD, false);
	rcv = make_qp(e, IBV_QPT_UD, true);
	if (!ok(snd && rcv && !lb_ud_rts(snd, QKEY) && !lb_ud_rts(rcv, QKEY),
		"a UD QP on the SRQ and another, in RTS"))
		goto out;
	ah = ibv_create_ah(e->pd, &aha);
	if (!ok(ah != NULL, "  an AH for the device's own GID"))
		goto out;
	memset(e->buf[0], 0x55, 300);
	ok(!post_srq(e, 7, 6), "  a receive on the SRQ");
	if (ok(!send_msg(e, snd, 0, 300, ah, rcv->qp_num) &&
	       poll_n(e, wc, 2) == 2 && (r = recv_wc(wc, 2)),
	       "  a datagram to it completes on both sides"))
		ok(r->qp_num == rcv->qp_num && r->byte_len == 300 + 40 &&
		   (r->wc_flags & IBV_WC_GRH) && r->src_qp == snd->qp_num &&
		   !memcmp(e->buf[6] + 40, e->buf[0], 300),
		   "  after the GRH, in the SRQ entry's buffer (%u bytes)",
		   r->byte_len);
out:
	if (ah)
		ibv_destroy_ah(ah);
	if (snd)
		ibv_destroy_qp(snd);
	if (rcv)
		ibv_destroy_qp(rcv);
}

/*
 * The limit, an error on one QP of two, and destroying an SRQ in use.
 */
static void test_limit_and_error(struct env *e)
{
	struct ibv_srq_attr sa = { .srq_limit = 3 };
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *snd[2] = {}, *rcv[2] = {};
	struct ibv_async_event ev;
	struct ibv_qp_attr a = {};
	const struct ibv_wc *r = NULL;
	struct ibv_wc wc[2];
	int i, ret = 0, flags;
	bool got;

	flags = fcntl(e->ctx->async_fd, F_GETFL);
	fcntl(e->ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
	for (i = 0; i < 2; i++) {
		snd[i] = make_qp(e, IBV_QPT_RC, false);
		rcv[i] = make_qp(e, IBV_QPT_RC, true);
		if (!snd[i] || !rcv[i])
			break;
		ret = lb_connect_attr(snd[i], rcv[i]->qp_num, &e->gid, e->gidx,
				      &c);
		ret = ret ? ret : lb_connect_attr(rcv[i], snd[i]->qp_num,
						  &e->gid, e->gidx, &c);
		if (ret)
			break;
	}
	if (!ok(i == 2 && !ret, "two RC pairs, receiving on the SRQ"))
		goto out;

	ok(ibv_modify_srq(e->srq, &sa, IBV_SRQ_LIMIT) == 0,
	   "ibv_modify_srq: limit 3, with the SRQ empty");
	sa.srq_limit = 1000000;
	ok(ibv_modify_srq(e->srq, &sa, IBV_SRQ_LIMIT) == EINVAL,
	   "  a limit beyond max_wr is refused with EINVAL");
	memset(&sa, 0, sizeof(sa));
	ret = ibv_query_srq(e->srq, &sa);
	ok(!ret && sa.srq_limit == 3,
	   "  ibv_query_srq says limit %u", sa.srq_limit);
	got = !next_event(e, &ev, 10);
	ok(!got, "  no event while nothing is taken");
	if (got)
		ibv_ack_async_event(&ev);
	ok(!post_srq(e, 11, 4) && !post_srq(e, 12, 5) && !post_srq(e, 13, 6),
	   "three receives on the SRQ");
	ok(!send_msg(e, snd[0], 0, 100, NULL, 0) && poll_n(e, wc, 2) == 2,
	   "  a SEND takes one: two remain, fewer than the limit");
	got = !next_event(e, &ev, 10000);
	ok(got && ev.event_type == IBV_EVENT_SRQ_LIMIT_REACHED &&
	   ev.element.srq == e->srq,
	   "  IBV_EVENT_SRQ_LIMIT_REACHED on the SRQ");
	if (got)
		ibv_ack_async_event(&ev);
	ret = ibv_query_srq(e->srq, &sa);
	ok(!ret && sa.srq_limit == 0,
	   "  and the SRQ is disarmed (limit %u)", sa.srq_limit);

	a.qp_state = IBV_QPS_ERR;
	ok(!ibv_modify_qp(rcv[0], &a, IBV_QP_STATE),
	   "one receiving QP to the error state");
	got = !next_event(e, &ev, 10000);
	ok(got && ev.event_type == IBV_EVENT_QP_LAST_WQE_REACHED &&
	   ev.element.qp == rcv[0],
	   "  IBV_EVENT_QP_LAST_WQE_REACHED on it");
	if (got)
		ibv_ack_async_event(&ev);
	ok(ibv_poll_cq(e->cq, 2, wc) == 0,
	   "  the SRQ's two entries are not flushed");
	ok(!send_msg(e, snd[1], 1, 100, NULL, 0) && poll_n(e, wc, 2) == 2 &&
	   (r = recv_wc(wc, 2)) && r->qp_num == rcv[1]->qp_num &&
	   r->wr_id == 12,
	   "  the other QP still receives into the next one");

	errno = 0;
	ret = ibv_destroy_srq(e->srq);
	ok(ret == EBUSY, "ibv_destroy_srq with QPs on it: EBUSY (%s)",
	   strerror(ret));
out:
	fcntl(e->ctx->async_fd, F_SETFL, flags);
	for (i = 0; i < 2; i++) {
		if (snd[i])
			ibv_destroy_qp(snd[i]);
		if (rcv[i])
			ibv_destroy_qp(rcv[i]);
	}
}

/*
 * What the provider keeps at the start of its SRQ (userspace/frdma.h):
 * the test reaches the ring through it, and checks that it found the
 * ring before relying on it.
 */
struct provider_srq {
	struct {			/* libibverbs' struct verbs_srq */
		struct ibv_srq ibsrq;
		enum ibv_srq_type srq_type;
		void *xrcd;
		struct ibv_cq *cq;
		uint32_t srq_num;
	} vsrq;
	struct {			/* the provider's struct frdma_wq */
		pthread_spinlock_t lock;
		struct frdma_ring_hdr *hdr;
	} wq;
};

/*
 * A hostile SRQ ring: a producer index beyond the ring's size.  The
 * message for the QP on it fails at the sender with a remote operation
 * error, the SRQ reports IBV_EVENT_SRQ_ERR, and nothing else breaks (the
 * VM run checks the kernel log).
 */
static void test_hostile(struct env *e)
{
	struct ibv_srq_init_attr ia = { .attr = { .max_wr = 4, .max_sge = 1 } };
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *snd = NULL, *rcv = NULL;
	struct ibv_async_event ev;
	struct ibv_srq *good, *srq;
	struct frdma_ring_hdr *hdr;
	struct ibv_wc wc;
	int i, flags, srq_err = 0;

	good = e->srq;
	srq = ibv_create_srq(e->pd, &ia);
	if (!ok(srq != NULL, "an SRQ to break"))
		return;
	e->srq = srq;
	hdr = ((struct provider_srq *)srq)->wq.hdr;
	if (!ok(!post_srq(e, 1, 0) && !post_srq(e, 2, 1) &&
		atomic_load((_Atomic uint32_t *)&hdr->prod) == 2 &&
		atomic_load((_Atomic uint32_t *)&hdr->cons) == 0,
		"  its ring found, two entries in it"))
		goto out;
	snd = make_qp(e, IBV_QPT_RC, false);
	rcv = make_qp(e, IBV_QPT_RC, true);
	if (!ok(snd && rcv &&
		!lb_connect_attr(snd, rcv->qp_num, &e->gid, e->gidx, &c) &&
		!lb_connect_attr(rcv, snd->qp_num, &e->gid, e->gidx, &c),
		"  an RC pair receiving on it"))
		goto out;
	atomic_store((_Atomic uint32_t *)&hdr->prod, 0x80000000u);
	flags = fcntl(e->ctx->async_fd, F_GETFL);
	fcntl(e->ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
	ok(!send_msg(e, snd, 2, 64, NULL, 0) && lb_poll(e->cq, &wc, 1) == 1 &&
	   wc.status == IBV_WC_REM_OP_ERR,
	   "  with prod out of range, a SEND to it fails: %s",
	   ibv_wc_status_str(wc.status));
	for (i = 0; i < 3 && !next_event(e, &ev, 10000); i++) {
		if (ev.event_type == IBV_EVENT_SRQ_ERR && ev.element.srq == srq)
			srq_err++;
		ibv_ack_async_event(&ev);
	}
	fcntl(e->ctx->async_fd, F_SETFL, flags);
	ok(srq_err == 1, "  IBV_EVENT_SRQ_ERR once on the SRQ");
out:
	if (snd)
		ibv_destroy_qp(snd);
	if (rcv)
		ibv_destroy_qp(rcv);
	ok(!ibv_destroy_srq(srq), "  the broken SRQ is destroyed");
	e->srq = good;
}

static void test_full(struct env *e, uint32_t max_wr)
{
	struct ibv_srq_init_attr ia = { .attr = { .max_wr = 4, .max_sge = 1 } };
	struct ibv_sge sge = { (uintptr_t)e->buf[0], 64, e->mr->lkey };
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;
	struct ibv_srq *srq;
	uint32_t i;
	int ret = 0;

	srq = ibv_create_srq(e->pd, &ia);
	if (!ok(srq != NULL, "a small SRQ: %u entries", ia.attr.max_wr))
		return;
	for (i = 0; i < ia.attr.max_wr && !ret; i++)
		ret = ibv_post_srq_recv(srq, &wr, &bad);
	ok(!ret, "  %u receives fill it", ia.attr.max_wr);
	ret = ibv_post_srq_recv(srq, &wr, &bad);
	ok(ret == ENOMEM && bad == &wr, "  one more is refused with ENOMEM");
	wr.num_sge = 2;
	ok(ibv_post_srq_recv(srq, &wr, &bad) != 0,
	   "  as is one with more SGEs than max_sge");
	ok(!ibv_destroy_srq(srq), "  ibv_destroy_srq");

	ia.attr.max_wr = max_wr + 1;
	errno = 0;
	srq = ibv_create_srq(e->pd, &ia);
	ok(!srq, "an SRQ beyond max_srq_wr is refused (%s)", strerror(errno));
	if (srq)
		ibv_destroy_srq(srq);
}

/* frdma's debugfs count of live SRQs, or -1 when it cannot be opened. */
static long srq_count(void)
{
	return read_long("/sys/kernel/debug/frdma/srq");
}

int main(int argc, char **argv)
{
	struct ibv_srq_init_attr ia = { .attr = { .max_wr = 16, .max_sge = 2 } };
	struct ibv_device_attr da;
	struct ibv_srq_attr sa;
	static struct env e;
	const char *name;
	long count0;
	int opt;

	e.ctx = lb_test_open(argc, argv, "frdma0", &name);
	if (!ok(e.ctx != NULL, "open %s", name))
		return tap_done();
	memset(&da, 0, sizeof(da));
	opt = ibv_query_device(e.ctx, &da);
	if (!ok(!opt && da.max_srq > 0 &&
		da.max_srq_wr > 0 && da.max_srq_sge > 0,
		"ibv_query_device: max_srq %d, max_srq_wr %d, max_srq_sge %d",
		da.max_srq, da.max_srq_wr, da.max_srq_sge))
		goto out;
	e.pd = ibv_alloc_pd(e.ctx);
	e.cq = e.pd ? ibv_create_cq(e.ctx, 64, NULL, NULL, 0) : NULL;
	e.mr = e.cq ? ibv_reg_mr(e.pd, e.buf, sizeof(e.buf),
				 IBV_ACCESS_LOCAL_WRITE) : NULL;
	if (!ok(e.mr && !lb_find_gid(e.ctx, &e.gidx, &e.gid),
		"a PD, a CQ, an MR and the RoCE v2 GID"))
		goto out;

	count0 = srq_count();
	e.srq = ibv_create_srq(e.pd, &ia);
	if (!ok(e.srq != NULL, "ibv_create_srq: %s",
		e.srq ? "ok" : strerror(errno)))
		goto out;
	if (count0 >= 0)
		ok(srq_count() == count0 + 1, "  counted in debugfs (frdma/srq)");
	ok(ia.attr.max_wr >= 16 && ia.attr.max_sge >= 2,
	   "  holds %u >= 16 entries of %u >= 2 SGEs", ia.attr.max_wr,
	   ia.attr.max_sge);
	opt = ibv_query_srq(e.srq, &sa);
	ok(!opt && sa.max_wr == ia.attr.max_wr &&
	   sa.max_sge == ia.attr.max_sge && sa.srq_limit == 0,
	   "  ibv_query_srq agrees, limit 0");

	test_connected(&e, IBV_QPT_RC);
	test_connected(&e, IBV_QPT_UC);
	test_ud(&e);
	test_limit_and_error(&e);
	test_hostile(&e);
	ok(!ibv_destroy_srq(e.srq), "ibv_destroy_srq once no QP uses it");
	if (count0 >= 0)
		ok(srq_count() == count0, "  and uncounted");
	test_full(&e, da.max_srq_wr);
out:
	if (e.mr)
		ibv_dereg_mr(e.mr);
	if (e.cq)
		ibv_destroy_cq(e.cq);
	if (e.pd)
		ibv_dealloc_pd(e.pd);
	ok(!ibv_close_device(e.ctx), "ibv_close_device");
	return tap_done();
}
