// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: completion queues.
 *
 * A user CQ is a ring of struct frdma_cqe the kernel produces into and the
 * provider polls without a system call.  Completions are added with
 * frdma_cq_post(), under the CQ's lock; a full ring, or a consumer index
 * user space has broken, is a CQ overrun: the CQE is dropped and
 * IB_EVENT_CQ_ERR is reported once.
 */

#include <linux/log2.h>
#include <rdma/uverbs_ioctl.h>

#include "frdma.h"

/* The ring formats and the codes in CQEs are the core's values. */
static_assert(sizeof(struct frdma_ring_hdr) == FRDMA_RING_HDR_SIZE);
static_assert(sizeof(struct frdma_cqe) == 1 << FRDMA_CQE_SHIFT);
static_assert(sizeof(struct frdma_sqe) == 64);
static_assert(sizeof(struct frdma_rqe) == 16);
static_assert(sizeof(struct frdma_sqe) +
	      FRDMA_MAX_SGE * sizeof(struct frdma_sge) <= FRDMA_MAX_WQE_SIZE);
static_assert(sizeof(struct frdma_sqe) + FRDMA_MAX_INLINE_DATA <=
	      FRDMA_MAX_WQE_SIZE);
static_assert((int)FRDMA_WC_RECV == (int)IB_WC_RECV);
static_assert((int)FRDMA_WC_RECV_RDMA_WITH_IMM ==
	      (int)IB_WC_RECV_RDMA_WITH_IMM);
static_assert((int)IB_UVERBS_WC_SEND == (int)IB_WC_SEND);
static_assert((int)IB_UVERBS_WC_RDMA_WRITE == (int)IB_WC_RDMA_WRITE);
static_assert((int)IB_UVERBS_WC_RDMA_READ == (int)IB_WC_RDMA_READ);
static_assert((int)IB_UVERBS_WC_COMP_SWAP == (int)IB_WC_COMP_SWAP);
static_assert((int)IB_UVERBS_WC_FETCH_ADD == (int)IB_WC_FETCH_ADD);
static_assert((int)FRDMA_WC_WITH_IMM == (int)IB_WC_WITH_IMM);
static_assert((int)FRDMA_WC_GRH == (int)IB_WC_GRH);

int frdma_create_cq(struct ib_cq *ibcq, const struct ib_cq_init_attr *attr,
		    struct uverbs_attr_bundle *attrs)
{
	struct ib_udata *udata = attrs ? &attrs->driver_udata : NULL;
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_create_cq_resp resp = {};
	struct frdma_ucontext *uctx;
	u32 entries;
	int err;

	/* Kernel consumers are not supported yet. */
	if (!udata)
		return -EOPNOTSUPP;
	if (attr->flags)
		return -EOPNOTSUPP;
	if (attr->cqe < 1 || attr->cqe > FRDMA_MAX_CQE)
		return -EINVAL;
	if (udata->inlen && !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (udata->outlen < sizeof(resp))
		return -EINVAL;

	uctx = rdma_udata_to_drv_context(udata, struct frdma_ucontext, ibuc);
	entries = roundup_pow_of_two(attr->cqe);
	spin_lock_init(&cq->lock);
	err = frdma_queue_init(&cq->q, &uctx->ibuc, entries, FRDMA_CQE_SHIFT,
			       &resp.cq);
	if (err)
		return err;
	ibcq->cqe = entries;

	err = ib_copy_to_udata(udata, &resp, sizeof(resp));
	if (err) {
		frdma_queue_destroy(&cq->q);
		return err;
	}
	frdma_count(FRDMA_CNT_CQ, 1);
	return 0;
}

int frdma_destroy_cq(struct ib_cq *ibcq, struct ib_udata *udata)
{
	struct frdma_cq *cq = to_fcq(ibcq);

	frdma_queue_destroy(&cq->q);
	frdma_count(FRDMA_CNT_CQ, -1);
	return 0;
}

int frdma_resize_cq(struct ib_cq *ibcq, int cqe, struct ib_udata *udata)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_resize_cq_resp resp = {};
	struct frdma_ucontext *uctx;
	struct frdma_queue nq, oq;
	unsigned long irqflags;
	u32 entries, used, cons, i;
	int err;

	if (!udata)
		return -EOPNOTSUPP;
	if (cqe < 1 || cqe > FRDMA_MAX_CQE)
		return -EINVAL;
	if (udata->inlen && !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (udata->outlen < sizeof(resp))
		return -EINVAL;

	uctx = rdma_udata_to_drv_context(udata, struct frdma_ucontext, ibuc);
	entries = roundup_pow_of_two(cqe);
	err = frdma_queue_init(&nq, &uctx->ibuc, entries, FRDMA_CQE_SHIFT,
			       &resp.cq);
	if (err)
		return err;
	/* The response means nothing to user space unless this succeeds. */
	err = ib_copy_to_udata(udata, &resp, sizeof(resp));
	if (err)
		goto err_new;

	spin_lock_irqsave(&cq->lock, irqflags);
	/* Pairs with the provider's release store of cons. */
	cons = smp_load_acquire(&cq->q.hdr->cons);
	used = cq->q.kidx - cons;
	if (used > cq->q.num_entries || used > entries) {
		spin_unlock_irqrestore(&cq->lock, irqflags);
		err = -EINVAL;
		goto err_new;
	}
	for (i = 0; i < used; i++)
		memcpy(frdma_queue_entry(&nq, i),
		       frdma_queue_entry(&cq->q, cons + i),
		       sizeof(struct frdma_cqe));
	nq.kidx = used;
	frdma_queue_publish(&nq, true);
	oq = cq->q;
	cq->q = nq;
	ibcq->cqe = entries;
	spin_unlock_irqrestore(&cq->lock, irqflags);

	frdma_queue_destroy(&oq);
	return 0;

err_new:
	frdma_queue_destroy(&nq);
	return err;
}

int frdma_req_notify_cq(struct ib_cq *ibcq, enum ib_cq_notify_flags flags)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	unsigned long irqflags;

	spin_lock_irqsave(&cq->lock, irqflags);
	/* An armed "next completion" is not weakened to "solicited only". */
	if (cq->notify != IB_CQ_NEXT_COMP)
		cq->notify = flags & IB_CQ_SOLICITED_MASK;
	spin_unlock_irqrestore(&cq->lock, irqflags);
	return 0;
}

/**
 * frdma_cq_post - add a completion to a CQ
 * @cq: the completion queue
 * @cqe: the completion, copied into the ring
 * @solicited: the completion is for a solicited event
 *
 * Calls the CQ's completion handler if the CQ was armed for this
 * completion.  May be called from any context.
 *
 * Return: 0, or -ENOSPC when the CQ overran (the completion is lost and the
 * CQ's event handler has been told).
 */
int frdma_cq_post(struct frdma_cq *cq, const struct frdma_cqe *cqe,
		  bool solicited)
{
	struct ib_event ev = {
		.device = cq->ibcq.device,
		.element.cq = &cq->ibcq,
		.event = IB_EVENT_CQ_ERR,
	};
	unsigned long irqflags;
	bool notify = false;
	int space;

	spin_lock_irqsave(&cq->lock, irqflags);
	space = frdma_queue_user_space(&cq->q);
	if (space <= 0) {
		bool first = !cq->overrun;

		cq->overrun = true;
		spin_unlock_irqrestore(&cq->lock, irqflags);
		if (first && cq->ibcq.event_handler)
			cq->ibcq.event_handler(&ev, cq->ibcq.cq_context);
		return -ENOSPC;
	}
	memcpy(frdma_queue_entry(&cq->q, cq->q.kidx), cqe, sizeof(*cqe));
	cq->q.kidx++;
	frdma_queue_publish(&cq->q, true);
	if (cq->notify == IB_CQ_NEXT_COMP ||
	    (cq->notify == IB_CQ_SOLICITED && solicited)) {
		cq->notify = 0;
		notify = true;
	}
	spin_unlock_irqrestore(&cq->lock, irqflags);

	if (notify && cq->ibcq.comp_handler)
		cq->ibcq.comp_handler(&cq->ibcq, cq->ibcq.cq_context);
	return 0;
}
