// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * exec_test -d DEVICE: the data path's completion semantics on loopback RC
 * QPs (two QPs of this process connected to each other):
 *
 *   - a SEND that finds no receive is retried (RNR) and delivered once a
 *     receive is posted, in order with the SEND behind it;
 *   - with rnr_retry 0 it completes with IBV_WC_RNR_RETRY_EXC_ERR, the QP
 *     goes to ERR and the WR behind it is flushed;
 *   - a message longer than the receive buffer: IBV_WC_REM_INV_REQ_ERR at
 *     the sender, IBV_WC_LOC_LEN_ERR at the receiver, both QPs in ERR,
 *     the receiver's other receives flushed;
 *   - a bad lkey: IBV_WC_LOC_PROT_ERR, nothing reaches the target;
 *   - a destination QPN nobody has: IBV_WC_RETRY_EXC_ERR;
 *   - SEND_WITH_IMM and RDMA_WRITE_WITH_IMM: receive completions with the
 *     immediate, the right opcode and byte_len;
 *   - moving a QP to ERR flushes its posted receives and sends; receives
 *     posted in ERR are flushed at the next send doorbell;
 *   - UC: a SEND that finds no receive is lost but completes successfully;
 *     SEND and RDMA WRITE are delivered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loopback.h"
#include "tap.h"

#define BUF	4096

struct env {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	union ibv_gid gid;
	int gid_index;
	char *buf;
	struct ibv_mr *mr;
};

/* Two connected RC QPs, A on the send CQ, B on the receive CQ. */
static int pair(struct env *e, struct ibv_qp **a, struct ibv_qp **b,
		int rnr_retry)
{
	struct lb_conn c = LB_CONN(1);

	*a = lb_create_qp(e->pd, e->scq, e->scq, 16, 2, 64);
	*b = lb_create_qp(e->pd, e->rcq, e->rcq, 16, 2, 64);
	if (!*a || !*b)
		return -1;
	c.rnr_retry = rnr_retry;
	if (lb_connect_attr(*a, (*b)->qp_num, &e->gid, e->gid_index, &c) ||
	    lb_connect_attr(*b, (*a)->qp_num, &e->gid, e->gid_index, &c))
		return -1;
	return 0;
}

static void unpair(struct ibv_qp *a, struct ibv_qp *b)
{
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
}

static int post_send(struct ibv_qp *qp, uint64_t wr_id,
		     enum ibv_wr_opcode op, void *addr, uint32_t len,
		     uint32_t lkey, uint64_t raddr, uint32_t rkey, uint32_t imm)
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
		.imm_data = htonl(imm),
	}, *bad;

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
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

static void test_rnr_then_delivered(struct env *e)
{
	struct ibv_qp *a, *b;
	struct ibv_wc wc[2];
	int n;

	if (!ok(!pair(e, &a, &b, 7), "RNR: a connected pair, rnr_retry 7"))
		goto out;
	memset(e->buf, 0, BUF);
	strcpy(e->buf, "first");
	strcpy(e->buf + 64, "second");
	ok(!post_send(a, 1, IBV_WR_SEND, e->buf, 16, e->mr->lkey, 0, 0, 0) &&
	   !post_send(a, 2, IBV_WR_SEND, e->buf + 64, 16, e->mr->lkey, 0, 0,
		      0),
	   "  two SENDs posted with no receive posted");
	ok(!post_recv(b, 11, e->buf + 1024, 64, e->mr->lkey) &&
	   !post_recv(b, 12, e->buf + 2048, 64, e->mr->lkey),
	   "  then two receives");
	n = lb_poll(e->scq, wc, 2);
	ok(n == 2 && wc[0].wr_id == 1 && wc[1].wr_id == 2 &&
	   wc[0].status == IBV_WC_SUCCESS && wc[1].status == IBV_WC_SUCCESS,
	   "  both SENDs complete successfully, in order (%d: %s)", n,
	   n > 0 ? ibv_wc_status_str(wc[0].status) : "-");
	n = lb_poll(e->rcq, wc, 2);
	ok(n == 2 && wc[0].wr_id == 11 && wc[1].wr_id == 12 &&
	   wc[0].byte_len == 16 && wc[0].opcode == IBV_WC_RECV &&
	   !strcmp(e->buf + 1024, "first") && !strcmp(e->buf + 2048, "second"),
	   "  the receives got them in order");
out:
	unpair(a, b);
}

static void test_rnr_exceeded(struct env *e)
{
	struct ibv_qp *a, *b;
	struct ibv_wc wc[2];
	int n;

	if (!ok(!pair(e, &a, &b, 0), "RNR: a pair with rnr_retry 0"))
		goto out;
	post_send(a, 1, IBV_WR_SEND, e->buf, 16, e->mr->lkey, 0, 0, 0);
	post_send(a, 2, IBV_WR_SEND, e->buf, 16, e->mr->lkey, 0, 0, 0);
	n = lb_poll(e->scq, wc, 2);
	ok(n == 2 && wc[0].wr_id == 1 &&
	   wc[0].status == IBV_WC_RNR_RETRY_EXC_ERR &&
	   wc[1].wr_id == 2 && wc[1].status == IBV_WC_WR_FLUSH_ERR,
	   "  IBV_WC_RNR_RETRY_EXC_ERR, then the next SEND flushed (%s)",
	   n > 0 ? ibv_wc_status_str(wc[0].status) : "-");
	ok(lb_qp_state(a) == IBV_QPS_ERR, "  the sender is in ERR (%s)",
	   lb_state_str(lb_qp_state(a)));
	ok(lb_qp_state(b) == IBV_QPS_RTS, "  the receiver is untouched (%s)",
	   lb_state_str(lb_qp_state(b)));
out:
	unpair(a, b);
}

static void test_too_long(struct env *e)
{
	struct ibv_qp *a, *b;
	struct ibv_wc wc[2];
	int n;

	if (!ok(!pair(e, &a, &b, 7), "too long: a connected pair"))
		goto out;
	post_recv(b, 11, e->buf + 1024, 8, e->mr->lkey);
	post_recv(b, 12, e->buf + 2048, 64, e->mr->lkey);
	post_send(a, 1, IBV_WR_SEND, e->buf, 16, e->mr->lkey, 0, 0, 0);
	n = lb_poll(e->scq, wc, 1);
	ok(n == 1 && wc[0].status == IBV_WC_REM_INV_REQ_ERR,
	   "  the sender gets IBV_WC_REM_INV_REQ_ERR (%s)",
	   n > 0 ? ibv_wc_status_str(wc[0].status) : "-");
	n = lb_poll(e->rcq, wc, 2);
	ok(n == 2 && wc[0].wr_id == 11 && wc[0].status == IBV_WC_LOC_LEN_ERR &&
	   wc[1].wr_id == 12 && wc[1].status == IBV_WC_WR_FLUSH_ERR,
	   "  the receiver IBV_WC_LOC_LEN_ERR, its next receive flushed (%s)",
	   n > 0 ? ibv_wc_status_str(wc[0].status) : "-");
	ok(lb_qp_state(a) == IBV_QPS_ERR && lb_qp_state(b) == IBV_QPS_ERR,
	   "  both QPs in ERR");
out:
	unpair(a, b);
}

static void test_bad_lkey(struct env *e)
{
	struct ibv_qp *a, *b;
	struct ibv_wc wc[1];
	int n;

	if (!ok(!pair(e, &a, &b, 7), "bad lkey: a connected pair"))
		goto out;
	post_recv(b, 11, e->buf + 1024, 64, e->mr->lkey);
	post_send(a, 1, IBV_WR_SEND, e->buf, 16, e->mr->lkey ^ 0x5a5a00, 0,
		  0, 0);
	n = lb_poll(e->scq, wc, 1);
	ok(n == 1 && wc[0].status == IBV_WC_LOC_PROT_ERR,
	   "  IBV_WC_LOC_PROT_ERR (%s)",
	   n > 0 ? ibv_wc_status_str(wc[0].status) : "-");
	ok(lb_qp_state(a) == IBV_QPS_ERR && lb_qp_state(b) == IBV_QPS_RTS,
	   "  the sender in ERR, the receiver untouched");
	n = lb_poll_ms(e->rcq, wc, 1, 0);
	ok(n == 0, "  nothing arrived at the receiver");
out:
	unpair(a, b);
}

static void test_unreachable(struct env *e)
{
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *a;
	struct ibv_wc wc[1];
	int n;

	c.retry_cnt = 1;
	c.timeout = 1;
	a = lb_create_qp(e->pd, e->scq, e->scq, 4, 1, 0);
	if (!ok(a && !lb_connect_attr(a, 0xfffff0, &e->gid, e->gid_index, &c),
		"unreachable: a QP connected to QPN 0xfffff0"))
		goto out;
	post_send(a, 1, IBV_WR_SEND, e->buf, 16, e->mr->lkey, 0, 0, 0);
	n = lb_poll(e->scq, wc, 1);
	ok(n == 1 && wc[0].status == IBV_WC_RETRY_EXC_ERR,
	   "  IBV_WC_RETRY_EXC_ERR (%s)",
	   n > 0 ? ibv_wc_status_str(wc[0].status) : "-");
out:
	if (a)
		ibv_destroy_qp(a);
}

static void test_imm(struct env *e)
{
	struct ibv_qp *a, *b;
	struct ibv_wc wc[2];
	int n;

	if (!ok(!pair(e, &a, &b, 7), "immediates: a connected pair"))
		goto out;
	memset(e->buf + 1024, 0, 2048);
	post_recv(b, 11, e->buf + 1024, 64, e->mr->lkey);
	post_recv(b, 12, NULL, 0, e->mr->lkey);
	strcpy(e->buf, "immediate");
	post_send(a, 1, IBV_WR_SEND_WITH_IMM, e->buf, 10, e->mr->lkey, 0, 0,
		  0x1234);
	post_send(a, 2, IBV_WR_RDMA_WRITE_WITH_IMM, e->buf, 10, e->mr->lkey,
		  (uintptr_t)e->buf + 2048, e->mr->rkey, 0x5678);
	n = lb_poll(e->scq, wc, 2);
	ok(n == 2 && wc[0].status == IBV_WC_SUCCESS &&
	   wc[1].status == IBV_WC_SUCCESS && wc[0].opcode == IBV_WC_SEND &&
	   wc[1].opcode == IBV_WC_RDMA_WRITE,
	   "  both complete at the sender");
	n = lb_poll(e->rcq, wc, 2);
	ok(n == 2 && wc[0].opcode == IBV_WC_RECV &&
	   (wc[0].wc_flags & IBV_WC_WITH_IMM) &&
	   ntohl(wc[0].imm_data) == 0x1234 && wc[0].byte_len == 10 &&
	   !strcmp(e->buf + 1024, "immediate"),
	   "  SEND_WITH_IMM: IBV_WC_RECV with the immediate and the data");
	ok(n == 2 && wc[1].opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
	   (wc[1].wc_flags & IBV_WC_WITH_IMM) &&
	   ntohl(wc[1].imm_data) == 0x5678 && wc[1].byte_len == 10 &&
	   !strcmp(e->buf + 2048, "immediate"),
	   "  RDMA_WRITE_WITH_IMM: IBV_WC_RECV_RDMA_WITH_IMM, data written");
out:
	unpair(a, b);
}

static void test_modify_err_flush(struct env *e)
{
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };
	struct ibv_qp *a, *b;
	struct ibv_wc wc[3];
	int n;

	if (!ok(!pair(e, &a, &b, 7), "flush: a connected pair"))
		goto out;
	post_recv(b, 11, e->buf + 1024, 64, e->mr->lkey);
	post_recv(b, 12, e->buf + 1024, 64, e->mr->lkey);
	ok(!ibv_modify_qp(b, &qa, IBV_QP_STATE), "  the receiver to ERR");
	n = lb_poll(e->rcq, wc, 2);
	ok(n == 2 && wc[0].wr_id == 11 && wc[1].wr_id == 12 &&
	   wc[0].status == IBV_WC_WR_FLUSH_ERR &&
	   wc[1].status == IBV_WC_WR_FLUSH_ERR &&
	   wc[0].opcode == IBV_WC_RECV,
	   "  its receives are flushed, in order");
	post_recv(b, 13, e->buf + 1024, 64, e->mr->lkey);
	post_send(b, 3, IBV_WR_SEND, e->buf, 16, e->mr->lkey, 0, 0, 0);
	n = lb_poll(e->rcq, wc, 2);
	ok(n == 2, "  a receive and a send posted in ERR are flushed (%d)",
	   n);
	ok(n == 2 && wc[0].status == IBV_WC_WR_FLUSH_ERR &&
	   wc[1].status == IBV_WC_WR_FLUSH_ERR,
	   "  with IBV_WC_WR_FLUSH_ERR");
out:
	unpair(a, b);
}

static struct ibv_qp *create_uc(struct env *e, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = cq,
		.recv_cq = cq,
		.qp_type = IBV_QPT_UC,
		.cap = { 16, 16, 1, 1, 0 },
	};

	return ibv_create_qp(e->pd, &ia);
}

static void test_uc(struct env *e)
{
	struct lb_conn c = LB_CONN(1);
	struct ibv_qp *a, *b;
	struct ibv_wc wc[2];
	int n;

	a = create_uc(e, e->scq);
	b = create_uc(e, e->rcq);
	if (!ok(a && b &&
		!lb_connect_attr(a, b->qp_num, &e->gid, e->gid_index, &c) &&
		!lb_connect_attr(b, a->qp_num, &e->gid, e->gid_index, &c),
		"UC: a connected pair"))
		goto out;
	memset(e->buf + 1024, 0, 2048);
	strcpy(e->buf, "uc");
	post_send(a, 1, IBV_WR_SEND, e->buf, 3, e->mr->lkey, 0, 0, 0);
	n = lb_poll(e->scq, wc, 1);
	ok(n == 1 && wc[0].status == IBV_WC_SUCCESS,
	   "  a SEND with no receive posted completes successfully");
	post_recv(b, 11, e->buf + 1024, 64, e->mr->lkey);
	post_send(a, 2, IBV_WR_SEND, e->buf, 3, e->mr->lkey, 0, 0, 0);
	post_send(a, 3, IBV_WR_RDMA_WRITE, e->buf, 3, e->mr->lkey,
		  (uintptr_t)e->buf + 2048, e->mr->rkey, 0);
	n = lb_poll(e->scq, wc, 2);
	ok(n == 2 && wc[0].status == IBV_WC_SUCCESS &&
	   wc[1].status == IBV_WC_SUCCESS, "  a SEND and an RDMA WRITE complete");
	n = lb_poll(e->rcq, wc, 1);
	ok(n == 1 && wc[0].wr_id == 11 && wc[0].byte_len == 3 &&
	   !strcmp(e->buf + 1024, "uc") && !strcmp(e->buf + 2048, "uc"),
	   "  the second SEND is received, the WRITE's data written");
	ok(lb_poll_ms(e->rcq, wc, 1, 0) == 0, "  and nothing else arrived");
out:
	unpair(a, b);
}

int main(int argc, char **argv)
{
	struct env e = {};
	const char *name;

	e.ctx = lb_test_open(argc, argv, NULL, &name);
	if (!ok(e.ctx != NULL, "open %s", name))
		return tap_done();
	e.pd = ibv_alloc_pd(e.ctx);
	e.scq = ibv_create_cq(e.ctx, 64, NULL, NULL, 0);
	e.rcq = ibv_create_cq(e.ctx, 64, NULL, NULL, 0);
	e.buf = aligned_alloc(4096, BUF);
	if (!ok(e.pd && e.scq && e.rcq && e.buf, "PD, CQs, buffer"))
		return tap_done();
	e.mr = ibv_reg_mr(e.pd, e.buf, BUF, IBV_ACCESS_LOCAL_WRITE |
			  IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!ok(e.mr != NULL, "an MR") ||
	    !ok(!lb_find_gid(e.ctx, &e.gid_index, &e.gid),
		"a RoCE v2 IPv4 GID"))
		return tap_done();

	test_rnr_then_delivered(&e);
	test_rnr_exceeded(&e);
	test_too_long(&e);
	test_bad_lkey(&e);
	test_unreachable(&e);
	test_imm(&e);
	test_modify_err_flush(&e);
	test_uc(&e);

	ibv_dereg_mr(e.mr);
	ibv_destroy_cq(e.scq);
	ibv_destroy_cq(e.rcq);
	ibv_dealloc_pd(e.pd);
	ibv_close_device(e.ctx);
	return tap_done();
}
