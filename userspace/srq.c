// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * frdma provider: shared receive queues.  The ring has the format of a
 * QP's RQ; ibv_post_srq_recv() writes entries and publishes them with no
 * system call, and the kernel takes them as messages arrive for any QP
 * on the SRQ.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frdma.h"
#include "wqe.h"

struct ibv_srq *frdma_create_srq(struct ibv_pd *pd,
				 struct ibv_srq_init_attr *attr)
{
	const struct frdma_alloc_ucontext_resp *caps =
		&to_fctx(pd->context)->caps;
	struct frdma_cmd_create_srq cmd = {};
	struct frdma_cmd_create_srq_resp resp = {};
	const struct frdma_ring_desc *desc = &resp.drv.rq;
	struct frdma_srq *srq;
	int ret;

	srq = calloc(1, sizeof(*srq));
	if (!srq)
		return NULL;
	pthread_spin_init(&srq->wq.lock, PTHREAD_PROCESS_PRIVATE);

	ret = ibv_cmd_create_srq(pd, &srq->ibsrq, attr,
				 (struct ibv_create_srq *)&cmd, sizeof(cmd),
				 &resp.core, sizeof(resp));
	if (ret)
		goto err_free;

	/* attr->attr now holds the SRQ's actual capabilities. */
	srq->wq.max_sge = attr->attr.max_sge;
	if (attr->attr.max_sge > caps->max_sge ||
	    desc->num_entries < attr->attr.max_wr ||
	    !frdma_rq_stride_ok(desc->entry_shift, srq->wq.max_sge)) {
		ret = EPROTO;
		goto err_destroy;
	}
	ret = frdma_ring_map(&srq->wq.ring, pd->context->cmd_fd, desc,
			     sizeof(struct frdma_rqe));
	if (ret)
		goto err_destroy;
	return &srq->ibsrq;

err_destroy:
	ibv_cmd_destroy_srq(&srq->ibsrq);
err_free:
	pthread_spin_destroy(&srq->wq.lock);
	free(srq);
	errno = ret;
	return NULL;
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
	pthread_spin_destroy(&srq->wq.lock);
	free(srq);
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
