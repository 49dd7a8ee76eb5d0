// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * fabric_test -d DEVICE -D DEVICE2 -e reach|apart: whether two devices'
 * RC QPs reach each other.  A QP on DEVICE is connected to a QP on
 * DEVICE2 through their RoCE v2 IPv4 GIDs, both ways, and each sends the
 * other a message.  "reach": both are delivered.  "apart": neither is;
 * each SEND fails with IBV_WC_RETRY_EXC_ERR, as for a host that cannot be
 * reached, and nothing arrives.  The link suite runs it "apart" with the
 * second device's netdev in another network namespace: the local fabric
 * stops at the namespace.
 */
#include <errno.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loopback.h"
#include "tap.h"

#define BUF	4096

struct side {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	char *buf;
	struct ibv_mr *mr;
	union ibv_gid gid;
	int gid_index;
};

static int side_open(struct side *s)
{
	s->ctx = open_device_by_name(s->name);
	if (!s->ctx)
		return -1;
	s->pd = ibv_alloc_pd(s->ctx);
	s->cq = ibv_create_cq(s->ctx, 16, NULL, NULL, 0);
	s->buf = aligned_alloc(4096, BUF);
	if (!s->pd || !s->cq || !s->buf)
		return -1;
	memset(s->buf, 0, BUF);
	s->mr = ibv_reg_mr(s->pd, s->buf, BUF, IBV_ACCESS_LOCAL_WRITE);
	s->qp = lb_create_qp(s->pd, s->cq, s->cq, 4, 1, 0);
	if (!s->mr || !s->qp)
		return -1;
	return lb_find_gid(s->ctx, &s->gid_index, &s->gid);
}

static void side_close(struct side *s)
{
	if (s->qp)
		ibv_destroy_qp(s->qp);
	if (s->mr)
		ibv_dereg_mr(s->mr);
	if (s->cq)
		ibv_destroy_cq(s->cq);
	if (s->pd)
		ibv_dealloc_pd(s->pd);
	if (s->ctx)
		ibv_close_device(s->ctx);
	free(s->buf);
}

/* @from sends "from NAME" to @to; returns the send's status, or -1. */
static int send_one(struct side *from, struct side *to, int *received)
{
	struct ibv_sge rsge = {
		.addr = (uintptr_t)to->buf + 1024, .length = 64,
		.lkey = to->mr->lkey,
	};
	struct ibv_recv_wr rwr = { .wr_id = 2, .sg_list = &rsge, .num_sge = 1 };
	struct ibv_sge sge = {
		.addr = (uintptr_t)from->buf, .length = 64,
		.lkey = from->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 1, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_recv_wr *rbad;
	struct ibv_send_wr *bad;
	struct ibv_wc wc, rwc;

	snprintf(from->buf, 64, "from %s", from->name);
	if (ibv_post_recv(to->qp, &rwr, &rbad) ||
	    ibv_post_send(from->qp, &wr, &bad) ||
	    lb_poll(from->cq, &wc, 1) != 1)
		return -1;
	/* The SEND completed first: a delivery would be there by now. */
	*received = ibv_poll_cq(to->cq, 1, &rwc) == 1 &&
		    rwc.status == IBV_WC_SUCCESS &&
		    !strcmp(to->buf + 1024, from->buf);
	return wc.status;
}

int main(int argc, char **argv)
{
	struct side a = {}, b = {};
	struct lb_conn c = LB_CONN(1);
	const char *expect = NULL;
	int opt, st, got;
	bool reach;

	while ((opt = getopt(argc, argv, "d:D:e:")) != -1) {
		switch (opt) {
		case 'd':
			a.name = optarg;
			break;
		case 'D':
			b.name = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (!a.name || !b.name || !expect ||
	    (strcmp(expect, "reach") && strcmp(expect, "apart")))
		goto usage;
	reach = !strcmp(expect, "reach");

	if (!ok(!side_open(&a) && !side_open(&b),
		"%s and %s: a QP and a RoCE v2 IPv4 GID each", a.name, b.name))
		goto out;
	/* Unreachable: fail after one short retry. */
	c.timeout = 10;
	c.retry_cnt = 1;
	if (!ok(!lb_connect_attr(a.qp, b.qp->qp_num, &b.gid, a.gid_index, &c) &&
		!lb_connect_attr(b.qp, a.qp->qp_num, &a.gid, b.gid_index, &c),
		"the two QPs connected to each other by GID"))
		goto out;

	st = send_one(&a, &b, &got);
	if (reach)
		ok(st == IBV_WC_SUCCESS && got, "%s -> %s: delivered (%s)",
		   a.name, b.name, st < 0 ? "lost" : ibv_wc_status_str(st));
	else
		ok(st == IBV_WC_RETRY_EXC_ERR && !got,
		   "%s -> %s: unreachable, IBV_WC_RETRY_EXC_ERR (%s%s)",
		   a.name, b.name, st < 0 ? "lost" : ibv_wc_status_str(st),
		   got ? ", delivered" : "");
	st = send_one(&b, &a, &got);
	if (reach)
		ok(st == IBV_WC_SUCCESS && got, "%s -> %s: delivered (%s)",
		   b.name, a.name, st < 0 ? "lost" : ibv_wc_status_str(st));
	else
		ok(st == IBV_WC_RETRY_EXC_ERR && !got,
		   "%s -> %s: unreachable, IBV_WC_RETRY_EXC_ERR (%s%s)",
		   b.name, a.name, st < 0 ? "lost" : ibv_wc_status_str(st),
		   got ? ", delivered" : "");
out:
	side_close(&a);
	side_close(&b);
	return tap_done();
usage:
	fprintf(stderr, "usage: %s -d DEVICE -D DEVICE2 -e reach|apart\n",
		argv[0]);
	return 2;
}
