// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * frdma provider: shared receive queues.  The ring has the format of a
 * QP's RQ; ibv_post_srq_recv() writes entries and publishes them with no
 * system call, and the kernel takes them as messages arrive for any QP
 * on the SRQ.  XRC domains and XRC SRQs live here too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frdma.h"
#include "wqe.h"

/*
 * Map the ring of a new SRQ after checking that it holds what the SRQ's
 * capabilities (in @attr, as the kernel returned them) let the
 * application post.  On failure the SRQ is destroyed.
 */
static int frdma_srq_map(struct frdma_srq *srq, struct ibv_context *ibctx,
			 const struct ibv_srq_attr *attr,
			 const struct frdma_ring_desc *desc)
{
	const struct frdma_alloc_ucontext_resp *caps = &to_fctx(ibctx)->caps;
	int ret;

	srq->wq.max_sge = attr->max_sge;
	if (attr->max_sge > caps->max_sge || desc->num_entries < attr->max_wr ||
	    !frdma_rq_stride_ok(desc->entry_shift, srq->wq.max_sge))
		ret = EPROTO;
	else
		ret = frdma_ring_map(&srq->wq.ring, ibctx->cmd_fd, desc,
				     sizeof(struct frdma_rqe));
	if (ret)
		ibv_cmd_destroy_srq(&srq->vsrq.srq);
	return ret;
}

static struct frdma_srq *frdma_srq_alloc(void)
{
	struct frdma_srq *srq = calloc(1, sizeof(*srq));

	if (srq)
		pthread_spin_init(&srq->wq.lock, PTHREAD_PROCESS_PRIVATE);
	return srq;
}

static void frdma_srq_free(struct frdma_srq *srq)
{
	pthread_spin_destroy(&srq->wq.lock);
	free(srq);
}

struct ibv_srq *frdma_create_srq(struct ibv_pd *pd,
				 struct ibv_srq_init_attr *attr)
{
	struct frdma_cmd_create_srq cmd = {};
	struct frdma_cmd_create_srq_resp resp = {};
	struct frdma_srq *srq;
	int ret;

	srq = frdma_srq_alloc();
	if (!srq)
		return NULL;
	ret = ibv_cmd_create_srq(pd, &srq->vsrq.srq, attr,
				 (struct ibv_create_srq *)&cmd, sizeof(cmd),
				 &resp.core, sizeof(resp));
	if (!ret)
		ret = frdma_srq_map(srq, pd->context, &attr->attr,
				    &resp.drv.rq);
	if (ret) {
		frdma_srq_free(srq);
		errno = ret;
		return NULL;
	}
	return &srq->vsrq.srq;
}

/*
 * ibv_create_srq_ex(): basic SRQs as ibv_create_srq(), and XRC SRQs,
 * which belong to an XRC domain, complete to their own CQ and are named
 * by their number (ibv_get_srq_num()) in the sends of XRC send QPs.
 */
struct ibv_srq *frdma_create_srq_ex(struct ibv_context *ibctx,
				    struct ibv_srq_init_attr_ex *attr)
{
	struct frdma_cmd_create_xsrq cmd = {};
	struct frdma_cmd_create_srq_resp resp = {};
	enum ibv_srq_type type = IBV_SRQT_BASIC;
	struct frdma_srq *srq;
	int ret;

	if (attr->comp_mask & IBV_SRQ_INIT_ATTR_TYPE)
		type = attr->srq_type;
	if (attr->comp_mask & ~(uint32_t)(IBV_SRQ_INIT_ATTR_TYPE |
					  IBV_SRQ_INIT_ATTR_PD |
					  IBV_SRQ_INIT_ATTR_XRCD |
					  IBV_SRQ_INIT_ATTR_CQ) ||
	    (type != IBV_SRQT_BASIC && type != IBV_SRQT_XRC)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	srq = frdma_srq_alloc();
	if (!srq)
		return NULL;
	ret = ibv_cmd_create_srq_ex(ibctx, &srq->vsrq, attr,
				    (struct ibv_create_xsrq *)&cmd,
				    sizeof(cmd), &resp.core, sizeof(resp));
	if (!ret)
		ret = frdma_srq_map(srq, ibctx, &attr->attr, &resp.drv.rq);
	if (ret) {
		frdma_srq_free(srq);
		errno = ret;
		return NULL;
	}
	srq->vsrq.srq.srq_context = attr->srq_context;
	return &srq->vsrq.srq;
}

int frdma_get_srq_num(struct ibv_srq *ibsrq, uint32_t *srq_num)
{
	struct frdma_srq *srq = to_fsrq(ibsrq);

	if (srq->vsrq.srq_type != IBV_SRQT_XRC)
		return EOPNOTSUPP;
	*srq_num = srq->vsrq.srq_num;
	return 0;
}

/*
 * XRC domains: the kernel shares one between the processes that open it
 * with the same file; the provider keeps nothing of its own.
 */
struct ibv_xrcd *frdma_open_xrcd(struct ibv_context *ibctx,
				 struct ibv_xrcd_init_attr *attr)
{
	struct frdma_cmd_open_xrcd cmd = {};
	struct ib_uverbs_open_xrcd_resp resp = {};
	struct verbs_xrcd *xrcd;
	int ret;

	xrcd = calloc(1, sizeof(*xrcd));
	if (!xrcd)
		return NULL;
	ret = ibv_cmd_open_xrcd(ibctx, xrcd, sizeof(*xrcd), attr,
				(struct ibv_open_xrcd *)&cmd, sizeof(cmd),
				&resp, sizeof(resp));
	if (ret) {
		free(xrcd);
		errno = ret;
		return NULL;
	}
	return &xrcd->xrcd;
}

int frdma_close_xrcd(struct ibv_xrcd *ibxrcd)
{
	struct verbs_xrcd *xrcd = container_of(ibxrcd, struct verbs_xrcd, xrcd);
	int ret;

	ret = ibv_cmd_close_xrcd(xrcd);
	if (ret)
		return ret;
	free(xrcd);
	return 0;
}

int frdma_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
		     int attr_mask)
{
	struct frdma_cmd_modify_srq cmd = {};

	return ibv_cmd_modify_srq(ibsrq, attr, attr_mask,
				  (struct ibv_modify_srq *)&cmd, sizeof(cmd));
}

int frdma_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct frdma_cmd_query_srq cmd = {};

	return ibv_cmd_query_srq(ibsrq, attr, (struct ibv_query_srq *)&cmd,
				 sizeof(cmd));
}

int frdma_destroy_srq(struct ibv_srq *ibsrq)
{
	struct frdma_srq *srq = to_fsrq(ibsrq);
	int ret;

	ret = ibv_cmd_destroy_srq(ibsrq);
	if (ret)
		return ret;
	frdma_ring_unmap(&srq->wq.ring);
	frdma_srq_free(srq);
	return 0;
}

int frdma_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
			struct ibv_recv_wr **bad_wr)
{
	struct frdma_srq *srq = to_fsrq(ibsrq);
	struct frdma_ring *r = &srq->wq.ring;
	uint32_t start, cons;
	int ret;

	pthread_spin_lock(&srq->wq.lock);
	start = r->uidx;
	cons = frdma_ring_load_cons(r);
	ret = frdma_rq_write(r, &cons, srq->wq.max_sge, wr, bad_wr);
	if (r->uidx != start)
		frdma_ring_store_prod(r);
	pthread_spin_unlock(&srq->wq.lock);
	return ret;
}
