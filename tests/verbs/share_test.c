// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * share_test [-d DEVICE]: parent domains and imported contexts, PDs and
 * MRs on an frdma device.
 *
 * A parent domain stands for its PD: MRs, CQs (ibv_create_cq_ex() with
 * IBV_CQ_INIT_ATTR_MASK_PD), QPs and SRQs created through it are in that
 * PD and carry traffic; freeing it leaves the PD alone; a parent domain of
 * a parent domain is refused.  ibv_import_device() on a duplicate of the
 * command fd gives a second context on the same kernel objects: a PD and
 * an MR imported by handle (keys and length as the exporter's) serve a QP
 * created in the imported context, which sends to a QP of the original
 * one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "device.h"
#include "loopback.h"
#include "tap.h"

#define BUFSZ	4096

static uint8_t sbuf[BUFSZ], rbuf[BUFSZ];

/* An RC SEND of @len bytes from @a (buffer in @smr) to @b (in @rmr). */
static bool send_one(struct ibv_qp *a, struct ibv_cq *acq, struct ibv_mr *smr,
		     struct ibv_qp *b, struct ibv_cq *bcq, struct ibv_mr *rmr,
		     uint32_t len)
{
	struct ibv_sge ss = { (uintptr_t)sbuf, len, smr->lkey };
	struct ibv_sge rs = { (uintptr_t)rbuf, BUFSZ, rmr->lkey };
	struct ibv_send_wr swr = { .wr_id = 1, .sg_list = &ss, .num_sge = 1,
				   .opcode = IBV_WR_SEND,
				   .send_flags = IBV_SEND_SIGNALED }, *sbad;
	struct ibv_recv_wr rwr = { .wr_id = 2, .sg_list = &rs, .num_sge = 1 },
			   *rbad;
	bool sent = false, received = false;
	struct ibv_wc wc[2];
	int i, n;

	memset(rbuf, 0, sizeof(rbuf));
	memset(sbuf, 0x5c, len);
	if (ibv_post_recv(b, &rwr, &rbad) || ibv_post_send(a, &swr, &sbad))
		return false;
	/* @acq and @bcq may be one CQ: tell the completions by opcode. */
	if (acq == bcq) {
		n = lb_poll(acq, wc, 2);
	} else {
		n = lb_poll(acq, wc, 1);
		n += n == 1 ? lb_poll(bcq, wc + 1, 1) : 0;
	}
	for (i = 0; i < n; i++) {
		if (wc[i].status != IBV_WC_SUCCESS)
			return false;
		if (wc[i].opcode == IBV_WC_SEND)
			sent = true;
		else if (wc[i].opcode == IBV_WC_RECV && wc[i].byte_len == len)
			received = true;
	}
	return sent && received && rbuf[0] == 0x5c && rbuf[len - 1] == 0x5c &&
	       rbuf[len] == 0;
}

static void parent_domain(struct ibv_context *ctx, const union ibv_gid *gid,
			  int gidx)
{
	struct ibv_parent_domain_init_attr pa = {};
	struct ibv_cq_init_attr_ex ca = {
		.cqe = 16,
		.wc_flags = IBV_WC_STANDARD_FLAGS,
		.comp_mask = IBV_CQ_INIT_ATTR_MASK_PD,
	};
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 4, .max_sge = 1 } };
	struct ibv_pd *pd, *par, *par2;
	struct ibv_cq_ex *cqx;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	struct ibv_srq *srq;
	struct ibv_qp *a, *b;

	pd = ibv_alloc_pd(ctx);
	pa.pd = pd;
	par = pd ? ibv_alloc_parent_domain(ctx, &pa) : NULL;
	if (!ok(par != NULL, "ibv_alloc_parent_domain() over a PD"))
		return;
	pa.pd = par;
	errno = 0;
	par2 = ibv_alloc_parent_domain(ctx, &pa);
	ok(!par2 && errno == EINVAL,
	   "a parent domain of a parent domain: EINVAL (%d)", errno);
	ca.parent_domain = par;
	cqx = ibv_create_cq_ex(ctx, &ca);
	cq = cqx ? ibv_cq_ex_to_cq(cqx) : NULL;
	ok(cq != NULL, "ibv_create_cq_ex() with the parent domain");
	mr = ibv_reg_mr(par, sbuf, sizeof(sbuf),
			IBV_ACCESS_LOCAL_WRITE);
	ok(mr != NULL, "ibv_reg_mr() through the parent domain");
	srq = ibv_create_srq(par, &sa);
	ok(srq != NULL, "ibv_create_srq() through the parent domain");
	if (srq)
		ibv_destroy_srq(srq);
	a = cq ? lb_create_qp(par, cq, cq, 8, 1, 0) : NULL;
	b = cq ? lb_create_qp(pd, cq, cq, 8, 1, 0) : NULL;
	if (ok(a && b && mr && !lb_connect_pair(a, b, gid, gidx, 1),
	       "QPs through the parent domain and its PD, connected")) {
		struct ibv_mr *rmr = ibv_reg_mr(pd, rbuf, sizeof(rbuf),
						IBV_ACCESS_LOCAL_WRITE);

		ok(rmr && send_one(a, cq, mr, b, cq, rmr, 1000),
		   "SEND between them: the parent domain is its PD");
		if (rmr)
			ibv_dereg_mr(rmr);
	}
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (mr)
		ibv_dereg_mr(mr);
	if (cq)
		ibv_destroy_cq(cq);
	ok(!ibv_dealloc_pd(par), "ibv_dealloc_pd() of the parent domain");
	ok(!ibv_dealloc_pd(pd), "then of its PD, which was left alone");
}

static void import(struct ibv_context *ctx, const union ibv_gid *gid,
		   int gidx)
{
	struct ibv_context *ictx;
	struct ibv_pd *pd, *ipd;
	struct ibv_mr *mr, *imr, *rmr;
	struct ibv_cq *cq, *icq;
	struct ibv_qp *a, *b;
	int fd;

	pd = ibv_alloc_pd(ctx);
	mr = pd ? ibv_reg_mr(pd, sbuf, sizeof(sbuf), IBV_ACCESS_LOCAL_WRITE |
			     IBV_ACCESS_REMOTE_WRITE) : NULL;
	rmr = pd ? ibv_reg_mr(pd, rbuf, sizeof(rbuf),
			      IBV_ACCESS_LOCAL_WRITE) : NULL;
	cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	fd = dup(ctx->cmd_fd);
	ictx = fd >= 0 ? ibv_import_device(fd) : NULL;
	if (!ok(mr && rmr && cq && ictx != NULL,
		"ibv_import_device() on a duplicate of the command fd"))
		return;
	ipd = ibv_import_pd(ictx, pd->handle);
	ok(ipd && ipd->handle == pd->handle, "ibv_import_pd()");
	imr = ipd ? ibv_import_mr(ipd, mr->handle) : NULL;
	ok(imr && imr->lkey == mr->lkey && imr->rkey == mr->rkey &&
	   imr->length == mr->length,
	   "ibv_import_mr(): the exporter's keys and length");
	icq = ibv_create_cq(ictx, 16, NULL, NULL, 0);
	a = icq && ipd ? lb_create_qp(ipd, icq, icq, 8, 1, 0) : NULL;
	b = lb_create_qp(pd, cq, cq, 8, 1, 0);
	if (ok(a && b && imr && !lb_connect_pair(a, b, gid, gidx, 1),
	       "a QP of the imported context connected to one of the "
	       "original"))
		ok(send_one(a, icq, imr, b, cq, rmr, 2000),
		   "SEND from the imported MR reaches the original QP");
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (icq)
		ibv_destroy_cq(icq);
	if (imr)
		ibv_unimport_mr(imr);
	if (ipd)
		ibv_unimport_pd(ipd);
	ok(!ibv_dereg_mr(mr) && !ibv_dereg_mr(rmr) && !ibv_destroy_cq(cq) &&
	   !ibv_dealloc_pd(pd),
	   "the exporter's objects are still its own to destroy");
	ok(!ibv_close_device(ictx), "ibv_close_device() of the import");
}

int main(int argc, char **argv)
{
	struct ibv_context *ctx;
	const char *name;
	union ibv_gid gid;
	int gidx = 0;

	ctx = lb_test_open(argc, argv, "frdma0", &name);
	if (!ok(ctx != NULL, "open %s", name))
		return tap_done();
	if (!ok(!lb_find_gid(ctx, &gidx, &gid), "a RoCE v2 IPv4 GID"))
		return tap_done();
	parent_domain(ctx, &gid, gidx);
	import(ctx, &gid, gidx);
	ibv_close_device(ctx);
	return tap_done();
}
