// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xrc_test [-d DEVICE]: extended reliable connections on an frdma device.
 *
 * The device reports IBV_DEVICE_XRC.  Two processes open one XRC domain
 * through the same file: the receiver creates an XRC SRQ (with its own CQ
 * and PD) and an XRC receive (target) QP in it; the sender, a child
 * process with its own device context, opens the same domain by the file,
 * opens the target QP by number (ibv_open_qp(), which finds it only in
 * that domain) and moves it to RTR, connects an XRC send QP to it and
 * sends, naming the SRQ by number: with the legacy ibv_post_send()
 * (qp_type.xrc.remote_srqn) and with ibv_wr_*() (ibv_wr_set_xrc_srqn()),
 * SEND, SEND with immediate, RDMA WRITE and fetch-and-add.  The receiver
 * finds each message in the SRQ's buffers, its completion on the SRQ's CQ
 * naming the target QP.
 *
 * Errors, in one process: a send naming no SRQ, or an XRC SRQ of another
 * XRC domain, completes with IBV_WC_REM_INV_REQ_ERR and leaves that SRQ's
 * entries alone; an RDMA WRITE whose rkey belongs to another PD than the
 * SRQ's completes with IBV_WC_REM_ACCESS_ERR; a basic SRQ has no number;
 * ibv_open_qp() of a QP number not in the domain fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "device.h"
#include "loopback.h"
#include "tap.h"

#define BUFSZ	4096
#define NRECV	8

/* What the receiver tells the sender, over a pipe. */
struct hello {
	uint32_t tgt_qpn;
	uint32_t srqn;
	uint64_t addr;		/* a word the sender writes and adds to */
	uint32_t rkey;
};

/* The sender's results, one bit per check, in its exit status. */
enum {
	S_OPEN_XRCD	= 1 << 0,
	S_OPEN_QP	= 1 << 1,
	S_CONNECT	= 1 << 2,
	S_LEGACY	= 1 << 3,
	S_WR_API	= 1 << 4,
	S_WRITE_FAA	= 1 << 5,
	S_ALL		= (1 << 6) - 1,
};

static const char *name = "frdma0";
static char xrcd_path[] = "/tmp/frdma-xrc-XXXXXX";

static struct ibv_xrcd *open_xrcd(struct ibv_context *ctx, int fd)
{
	struct ibv_xrcd_init_attr xa = {
		.comp_mask = IBV_XRCD_INIT_ATTR_FD | IBV_XRCD_INIT_ATTR_OFLAGS,
		.fd = fd,
		.oflags = O_CREAT,
	};

	return ibv_open_xrcd(ctx, &xa);
}

static struct ibv_srq *xrc_srq(struct ibv_context *ctx, struct ibv_pd *pd,
			       struct ibv_xrcd *xrcd, struct ibv_cq *cq)
{
	struct ibv_srq_init_attr_ex sa = {
		.attr = { .max_wr = 16, .max_sge = 1 },
		.comp_mask = IBV_SRQ_INIT_ATTR_TYPE | IBV_SRQ_INIT_ATTR_PD |
			     IBV_SRQ_INIT_ATTR_XRCD | IBV_SRQ_INIT_ATTR_CQ,
		.srq_type = IBV_SRQT_XRC,
		.pd = pd,
		.xrcd = xrcd,
		.cq = cq,
	};

	return ibv_create_srq_ex(ctx, &sa);
}

static struct ibv_qp *tgt_qp(struct ibv_context *ctx, struct ibv_xrcd *xrcd)
{
	struct ibv_qp_init_attr_ex ia = {
		.qp_type = IBV_QPT_XRC_RECV,
		.comp_mask = IBV_QP_INIT_ATTR_XRCD,
		.xrcd = xrcd,
	};

	return ibv_create_qp_ex(ctx, &ia);
}

static struct ibv_qp *ini_qp(struct ibv_context *ctx, struct ibv_pd *pd,
			     struct ibv_cq *cq)
{
	struct ibv_qp_init_attr_ex ia = {
		.qp_type = IBV_QPT_XRC_SEND,
		.send_cq = cq,
		.cap = { .max_send_wr = 16, .max_send_sge = 1,
			 .max_inline_data = 64 },
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = pd,
		.send_ops_flags = IBV_QP_EX_WITH_SEND |
				  IBV_QP_EX_WITH_SEND_WITH_IMM |
				  IBV_QP_EX_WITH_RDMA_WRITE |
				  IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD,
	};

	return ibv_create_qp_ex(ctx, &ia);
}

/*
 * RESET -> INIT -> RTR (-> RTS) towards @dqpn, for either XRC QP type:
 * lb_connect_attr() with an MTU of 1024.
 */
static int xrc_connect(struct ibv_qp *qp, uint32_t dqpn,
		       const union ibv_gid *gid, int gidx)
{
	struct lb_conn c = LB_CONN(1);

	c.path_mtu = IBV_MTU_1024;
	return lb_connect_attr(qp, dqpn, gid, gidx, &c);
}

static int post_srq(struct ibv_srq *srq, struct ibv_mr *mr, uint8_t *buf,
		    uint64_t wr_id)
{
	struct ibv_sge sge = { (uintptr_t)buf, BUFSZ, mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return ibv_post_srq_recv(srq, &wr, &bad);
}

/* A legacy signalled SEND of @len bytes of @buf to SRQ @srqn. */
static int send_legacy(struct ibv_qp *qp, struct ibv_mr *mr, uint8_t *buf,
		       uint32_t len, uint32_t srqn, uint64_t wr_id)
{
	struct ibv_sge sge = { (uintptr_t)buf, len, mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	wr.qp_type.xrc.remote_srqn = srqn;
	return ibv_post_send(qp, &wr, &bad);
}

/* One signalled send completion, its status or -1. */
static int send_status(struct ibv_cq *cq)
{
	struct ibv_wc wc;

	if (lb_poll(cq, &wc, 1) != 1)
		return -1;
	return wc.status;
}

/* The sender, in the child: returns its S_* bits. */
static int sender(const struct hello *h)
{
	struct ibv_context *ctx;
	struct ibv_xrcd *xrcd;
	struct ibv_qp_open_attr oa = {};
	struct ibv_qp *tgt, *qp;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	struct ibv_qp_ex *qpx;
	union ibv_gid gid;
	static uint8_t buf[BUFSZ];
	uint64_t one = 1;
	int fd, gidx, res = 0;

	ctx = lb_open(name, &gidx, &gid);
	fd = open(xrcd_path, O_RDONLY);
	if (!ctx || fd < 0)
		return 0;
	xrcd = open_xrcd(ctx, fd);
	if (!xrcd)
		return 0;
	res |= S_OPEN_XRCD;
	oa.comp_mask = IBV_QP_OPEN_ATTR_NUM | IBV_QP_OPEN_ATTR_XRCD |
		       IBV_QP_OPEN_ATTR_TYPE;
	oa.qp_num = h->tgt_qpn;
	oa.xrcd = xrcd;
	oa.qp_type = IBV_QPT_XRC_RECV;
	tgt = ibv_open_qp(ctx, &oa);
	if (!tgt)
		return res;
	res |= S_OPEN_QP;
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, 16, NULL, NULL, 0) : NULL;
	mr = cq ? ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE) :
		  NULL;
	qp = mr ? ini_qp(ctx, pd, cq) : NULL;
	if (!qp || xrc_connect(tgt, qp->qp_num, &gid, gidx) ||
	    xrc_connect(qp, h->tgt_qpn, &gid, gidx))
		return res;
	res |= S_CONNECT;

	memset(buf, 0xa1, 100);
	if (!send_legacy(qp, mr, buf, 100, h->srqn, 1) &&
	    send_status(cq) == IBV_WC_SUCCESS)
		res |= S_LEGACY;

	qpx = ibv_qp_to_qp_ex(qp);
	memset(buf, 0xb2, 200);
	ibv_wr_start(qpx);
	qpx->wr_id = 2;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send_imm(qpx, htobe32(0x1234));
	ibv_wr_set_xrc_srqn(qpx, h->srqn);
	ibv_wr_set_sge(qpx, mr->lkey, (uintptr_t)buf, 200);
	if (!ibv_wr_complete(qpx) && send_status(cq) == IBV_WC_SUCCESS)
		res |= S_WR_API;

	/* The word becomes 41 by a WRITE, then 42 by a fetch-and-add. */
	memcpy(buf, &(uint64_t){ 41 }, 8);
	ibv_wr_start(qpx);
	qpx->wr_id = 3;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_rdma_write(qpx, h->rkey, h->addr);
	ibv_wr_set_xrc_srqn(qpx, h->srqn);
	ibv_wr_set_sge(qpx, mr->lkey, (uintptr_t)buf, 8);
	qpx->wr_id = 4;
	ibv_wr_atomic_fetch_add(qpx, h->rkey, h->addr, one);
	ibv_wr_set_xrc_srqn(qpx, h->srqn);
	ibv_wr_set_sge(qpx, mr->lkey, (uintptr_t)buf + 8, 8);
	if (!ibv_wr_complete(qpx) && send_status(cq) == IBV_WC_SUCCESS &&
	    send_status(cq) == IBV_WC_SUCCESS &&
	    !memcmp(buf + 8, &(uint64_t){ 41 }, 8))
		res |= S_WRITE_FAA;

	ibv_destroy_qp(qp);
	ibv_destroy_qp(tgt);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_xrcd(xrcd);
	close(fd);
	ibv_close_device(ctx);
	return res;
}

static void check_bits(int res, int bit, const char *what)
{
	ok(res & bit, "sender: %s", what);
}

/* Two processes: the receiver here, the sender in a child. */
static void two_processes(struct ibv_context *ctx)
{
	static uint8_t buf[NRECV][BUFSZ];
	static uint64_t word __attribute__((aligned(8)));
	struct ibv_wc wc[NRECV];
	struct ibv_xrcd *xrcd;
	struct ibv_srq *srq;
	struct ibv_qp *tgt;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr, *wmr;
	struct hello h = {};
	int fd, i, n, st, p[2];
	bool good;
	pid_t pid;

	fd = mkstemp(xrcd_path);
	xrcd = fd >= 0 ? open_xrcd(ctx, fd) : NULL;
	if (!ok(xrcd != NULL, "ibv_open_xrcd() with the fd of %s", xrcd_path))
		return;
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, 16, NULL, NULL, 0) : NULL;
	mr = cq ? ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE) :
		  NULL;
	wmr = mr ? ibv_reg_mr(pd, &word, sizeof(word),
			      IBV_ACCESS_LOCAL_WRITE |
			      IBV_ACCESS_REMOTE_WRITE |
			      IBV_ACCESS_REMOTE_ATOMIC) : NULL;
	srq = wmr ? xrc_srq(ctx, pd, xrcd, cq) : NULL;
	if (!ok(srq != NULL, "XRC SRQ with its CQ and PD in the domain"))
		return;
	st = ibv_get_srq_num(srq, &h.srqn);
	ok(!st && h.srqn, "ibv_get_srq_num(): %u", h.srqn);
	tgt = tgt_qp(ctx, xrcd);
	if (!ok(tgt != NULL, "XRC receive QP in the domain (no PD, no CQ)"))
		return;
	for (i = 0; i < NRECV; i++)
		post_srq(srq, mr, buf[i], 100 + i);
	h.tgt_qpn = tgt->qp_num;
	h.addr = (uintptr_t)&word;
	h.rkey = wmr->rkey;

	fflush(stdout);
	if (pipe(p))
		return;
	pid = fork();
	if (pid == 0) {
		struct hello hc;

		close(p[1]);
		if (read(p[0], &hc, sizeof(hc)) != sizeof(hc))
			_exit(0);
		_exit(sender(&hc));
	}
	close(p[0]);
	if (write(p[1], &h, sizeof(h)) != sizeof(h))
		diag("write to the sender failed");
	close(p[1]);
	st = 0;
	waitpid(pid, &st, 0);
	st = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
	check_bits(st, S_OPEN_XRCD, "ibv_open_xrcd() by the same file");
	check_bits(st, S_OPEN_QP, "ibv_open_qp() of the receiver's XRC QP");
	check_bits(st, S_CONNECT,
		   "XRC send QP to RTS, the opened receive QP to RTR");
	check_bits(st, S_LEGACY, "ibv_post_send() SEND with remote_srqn");
	check_bits(st, S_WR_API,
		   "ibv_wr_send_imm() with ibv_wr_set_xrc_srqn()");
	check_bits(st, S_WRITE_FAA, "RDMA WRITE and fetch-and-add over XRC");

	n = lb_poll_ms(cq, wc, 2, 10000);
	ok(n == 2, "two receive completions on the SRQ's CQ (%d)", n);
	if (n == 2) {
		good = wc[0].status == IBV_WC_SUCCESS &&
		       wc[0].opcode == IBV_WC_RECV && wc[0].byte_len == 100 &&
		       wc[0].qp_num == tgt->qp_num && wc[0].wr_id == 100 &&
		       buf[0][0] == 0xa1 && buf[0][99] == 0xa1 &&
		       buf[0][100] == 0;
		ok(good, "legacy SEND: 100 bytes in the SRQ's first buffer, "
		   "completion names the XRC receive QP %u (got qp %u)",
		   tgt->qp_num, wc[0].qp_num);
		good = wc[1].status == IBV_WC_SUCCESS &&
		       wc[1].byte_len == 200 && wc[1].wr_id == 101 &&
		       (wc[1].wc_flags & IBV_WC_WITH_IMM) &&
		       wc[1].imm_data == htobe32(0x1234) &&
		       buf[1][199] == 0xb2;
		ok(good, "ibv_wr_* SEND with immediate: 200 bytes, imm");
	} else {
		ok(false, "legacy SEND received");
		ok(false, "ibv_wr_* SEND received");
	}
	ok(word == 42, "the WRITE and the fetch-and-add reached the "
	   "SRQ's PD's MR (%llu)", (unsigned long long)word);
	ok(ibv_poll_cq(cq, NRECV, wc) == 0, "nothing else completed");

	ok(!ibv_destroy_qp(tgt), "ibv_destroy_qp() of the XRC receive QP");
	ok(!ibv_destroy_srq(srq), "ibv_destroy_srq() of the XRC SRQ");
	ibv_dereg_mr(wmr);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ok(!ibv_close_xrcd(xrcd), "ibv_close_xrcd()");
	close(fd);
	unlink(xrcd_path);
}

/* Errors, in one process. */
static void errors(struct ibv_context *ctx)
{
	static uint8_t buf[4][BUFSZ];
	static uint64_t word __attribute__((aligned(8)));
	struct ibv_xrcd *x1, *x2;
	struct ibv_srq *s1, *s2, *basic;
	struct ibv_srq_init_attr bia = { .attr = { .max_wr = 4, .max_sge = 1 } };
	struct ibv_qp_open_attr oa = {};
	struct ibv_qp *t1, *t2, *t3, *ini;
	struct ibv_pd *pd, *pd2;
	struct ibv_cq *cq, *rcq;
	struct ibv_mr *mr, *wmr;
	struct ibv_send_wr wr = {}, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc;
	union ibv_gid gid;
	uint32_t n1, n2, num;
	int gidx, st;

	if (!ok(!lb_find_gid(ctx, &gidx, &gid), "a RoCE v2 IPv4 GID"))
		return;
	x1 = open_xrcd(ctx, -1);
	x2 = open_xrcd(ctx, -1);
	pd = ibv_alloc_pd(ctx);
	pd2 = ibv_alloc_pd(ctx);
	cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	rcq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	mr = pd ? ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE) :
		  NULL;
	wmr = pd2 ? ibv_reg_mr(pd2, &word, sizeof(word),
			       IBV_ACCESS_LOCAL_WRITE |
			       IBV_ACCESS_REMOTE_WRITE) : NULL;
	s1 = x1 && rcq && mr ? xrc_srq(ctx, pd, x1, rcq) : NULL;
	s2 = x2 && rcq && mr ? xrc_srq(ctx, pd, x2, rcq) : NULL;
	if (!ok(s1 && s2 && wmr && cq,
		"two private XRC domains, an XRC SRQ in each"))
		return;
	ibv_get_srq_num(s1, &n1);
	ibv_get_srq_num(s2, &n2);
	post_srq(s1, mr, buf[0], 1);
	post_srq(s2, mr, buf[1], 2);

	basic = ibv_create_srq(pd, &bia);
	ok(basic && ibv_get_srq_num(basic, &num),
	   "a basic SRQ has no SRQ number");
	if (basic)
		ibv_destroy_srq(basic);

	oa.comp_mask = IBV_QP_OPEN_ATTR_NUM | IBV_QP_OPEN_ATTR_XRCD |
		       IBV_QP_OPEN_ATTR_TYPE;
	oa.xrcd = x2;
	oa.qp_type = IBV_QPT_XRC_RECV;

	/* Three target QPs in x1; each error case fails one. */
	t1 = tgt_qp(ctx, x1);
	t3 = tgt_qp(ctx, x1);
	if (!ok(t1 && t3, "XRC receive QPs"))
		return;
	oa.qp_num = t1->qp_num;
	errno = 0;
	t2 = ibv_open_qp(ctx, &oa);
	st = errno;
	ok(!t2, "ibv_open_qp() of a QP of another XRC domain fails (errno %d)",
	   st);
	t2 = tgt_qp(ctx, x1);

	sge = (struct ibv_sge){ (uintptr_t)buf[2], 16, mr->lkey };
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.send_flags = IBV_SEND_SIGNALED;

	/* No such SRQ. */
	ini = ini_qp(ctx, pd, cq);
	if (!ok(ini && !xrc_connect(t1, ini->qp_num, &gid, gidx) &&
		!xrc_connect(ini, t1->qp_num, &gid, gidx),
		"XRC send QP connected"))
		return;
	if (!ok(t2 != NULL, "another XRC receive QP"))
		return;
	wr.opcode = IBV_WR_SEND;
	wr.qp_type.xrc.remote_srqn = 0xfffff0;
	st = ibv_post_send(ini, &wr, &bad) ? -2 : send_status(cq);
	ok(st == IBV_WC_REM_INV_REQ_ERR,
	   "SEND naming no SRQ: remote invalid request (status %d)", st);
	ok(lb_qp_state(ini) == IBV_QPS_ERR, "the send QP is in ERR");
	ibv_destroy_qp(ini);

	/* The SRQ of another XRC domain. */
	ini = ini_qp(ctx, pd, cq);
	if (!ok(ini && !xrc_connect(t2, ini->qp_num, &gid, gidx) &&
		!xrc_connect(ini, t2->qp_num, &gid, gidx),
		"XRC send QP connected"))
		return;
	wr.qp_type.xrc.remote_srqn = n2;
	st = ibv_post_send(ini, &wr, &bad) ? -2 : send_status(cq);
	ok(st == IBV_WC_REM_INV_REQ_ERR,
	   "SEND naming the SRQ of another XRC domain: remote invalid "
	   "request (status %d)", st);
	ok(ibv_poll_cq(rcq, 1, &wc) == 0,
	   "that SRQ's entry was not taken");
	ibv_destroy_qp(ini);

	/* An rkey of another PD than the SRQ's. */
	ini = ini_qp(ctx, pd, cq);
	if (!ok(ini && !xrc_connect(t3, ini->qp_num, &gid, gidx) &&
		!xrc_connect(ini, t3->qp_num, &gid, gidx),
		"XRC send QP connected"))
		return;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.qp_type.xrc.remote_srqn = n1;
	wr.wr.rdma.remote_addr = (uintptr_t)&word;
	wr.wr.rdma.rkey = wmr->rkey;
	sge.length = 8;
	st = ibv_post_send(ini, &wr, &bad) ? -2 : send_status(cq);
	ok(st == IBV_WC_REM_ACCESS_ERR && word == 0,
	   "RDMA WRITE with an rkey of another PD than the SRQ's: remote "
	   "access error (status %d)", st);
	ibv_destroy_qp(ini);

	ok(!ibv_destroy_qp(t1) && !ibv_destroy_qp(t2) && !ibv_destroy_qp(t3) &&
	   !ibv_destroy_srq(s1) && !ibv_destroy_srq(s2) &&
	   !ibv_close_xrcd(x1) && !ibv_close_xrcd(x2),
	   "everything destroyed");
	ibv_dereg_mr(wmr);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_destroy_cq(rcq);
	ibv_dealloc_pd(pd);
	ibv_dealloc_pd(pd2);
}

int main(int argc, char **argv)
{
	struct ibv_device_attr da = {};
	struct ibv_context *ctx;

	ctx = lb_test_open(argc, argv, "frdma0", &name);
	if (!ok(ctx != NULL, "open %s", name))
		return tap_done();
	if (!ok(!ibv_query_device(ctx, &da) &&
		(da.device_cap_flags & IBV_DEVICE_XRC),
		"the device reports IBV_DEVICE_XRC"))
		return tap_done();
	two_processes(ctx);
	errors(ctx);
	ibv_close_device(ctx);
	return tap_done();
}
