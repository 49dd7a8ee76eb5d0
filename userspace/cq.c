// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * frdma provider: completion queues, polled from the shared ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frdma.h"

struct ibv_cq *frdma_create_cq(struct ibv_context *ibctx, int cqe,
			       struct ibv_comp_channel *channel,
			       int comp_vector)
{
	struct frdma_cmd_create_cq cmd = {};
	struct frdma_cmd_create_cq_resp resp = {};
	struct frdma_cq *cq;
	int ret;

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE);

	ret = ibv_cmd_create_cq(ibctx, cqe, channel, comp_vector, &cq->vcq.cq,
				(struct ibv_create_cq *)&cmd, sizeof(cmd),
				&resp.core, sizeof(resp));
	if (ret)
		goto err_free;

	ret = frdma_ring_map(&cq->ring, ibctx->cmd_fd, &resp.drv.cq,
			     sizeof(struct frdma_cqe));
	if (!ret && resp.drv.cq.entry_shift != FRDMA_CQE_SHIFT)
		ret = EPROTO;
	if (ret) {
		frdma_ring_unmap(&cq->ring);
		ibv_cmd_destroy_cq(&cq->vcq.cq);
		goto err_free;
	}
	return &cq->vcq.cq;

err_free:
	pthread_spin_destroy(&cq->lock);
	free(cq);
	errno = ret;
	return NULL;
}

int frdma_destroy_cq(struct ibv_cq *ibcq)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	int ret;

	ret = ibv_cmd_destroy_cq(ibcq);
	if (ret)
		return ret;
	frdma_ring_unmap(&cq->ring);
	pthread_spin_destroy(&cq->lock);
	free(cq);
	return 0;
}

static void frdma_cqe_to_wc(const struct frdma_cqe *cqe, struct ibv_wc *wc)
{
	memset(wc, 0, sizeof(*wc));
	wc->wr_id = cqe->wr_id;
	wc->status = cqe->status;
	wc->opcode = cqe->opcode;
	wc->qp_num = cqe->qp_num;
	if (cqe->status != IBV_WC_SUCCESS)
		return;
	wc->byte_len = cqe->byte_len;
	wc->imm_data = cqe->imm_data;
	wc->wc_flags = cqe->wc_flags;
	wc->src_qp = cqe->src_qp;
	wc->pkey_index = cqe->pkey_index;
	wc->sl = cqe->sl;
}

int frdma_poll_cq(struct ibv_cq *ibcq, int ne, struct ibv_wc *wc)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_ring *r = &cq->ring;
	uint32_t prod;
	int n = 0;

	pthread_spin_lock(&cq->lock);
	prod = frdma_ring_load_prod(r);
	while (n < ne && r->uidx != prod) {
		frdma_cqe_to_wc(frdma_ring_entry(r, r->uidx), &wc[n]);
		r->uidx++;
		n++;
	}
	if (n)
		frdma_ring_store_cons(r);
	pthread_spin_unlock(&cq->lock);
	return n;
}

int frdma_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_cmd_resize_cq cmd = {};
	struct frdma_cmd_resize_cq_resp resp = {};
	struct frdma_ring nr = {};
	int ret;

	/*
	 * Pollers wait: the kernel moves the entries after our published
	 * consumer index to the start of the new ring.
	 */
	pthread_spin_lock(&cq->lock);
	ret = ibv_cmd_resize_cq(ibcq, cqe, (struct ibv_resize_cq *)&cmd,
				sizeof(cmd), &resp.core, sizeof(resp));
	if (ret)
		goto out;
	ret = frdma_ring_map(&nr, ibcq->context->cmd_fd, &resp.drv.cq,
			     sizeof(struct frdma_cqe));
	if (!ret && resp.drv.cq.entry_shift != FRDMA_CQE_SHIFT) {
		frdma_ring_unmap(&nr);
		ret = EPROTO;
	}
	if (ret)
		goto out;	/* the CQ is lost: the kernel left the old ring */
	frdma_ring_unmap(&cq->ring);
	cq->ring = nr;
out:
	pthread_spin_unlock(&cq->lock);
	return ret;
}
