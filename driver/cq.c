// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: completion queues.
 *
 * A user CQ is a ring of struct frdma_cqe the kernel produces into and the
 * provider polls without a system call.  Completions are added with
 * frdma_cq_post(), under the CQ's lock.  A full ring, or a consumer index
 * user space has broken, is a CQ overrun, and as IBTA has it the CQ is
 * then in error: the CQE is dropped, IB_EVENT_CQ_ERR is reported, and every
 * later completion is refused too, until resize_cq gives the CQ a new
 * ring.  The data path moves each QP whose completion was refused to the
 * error state (comp.c), so no work request of a QP on that CQ completes
 * unseen.
 *
 * A kernel CQ (created with no udata, by ib_alloc_cq() for the MAD layer
 * on behalf of the GSI QP) is the same ring in kernel-only memory, of
 * struct ib_wc: frdma_cq_post_wc() produces, poll_cq consumes, both under
 * the CQ's lock.  Kernel consumers re-arm with IB_CQ_REPORT_MISSED_EVENTS,
 * so req_notify_cq tells them when completions are already waiting.
 */

#include <linux/log2.h>
#include <linux/ktime.h>
#include <rdma/uverbs_ioctl.h>

#include "frdma.h"

/* The ring formats and the codes in CQEs are the core's values. */
static_assert(sizeof(struct frdma_ring_hdr) == FRDMA_RING_HDR_SIZE);
static_assert(sizeof(struct frdma_cqe) == 1 << FRDMA_CQE_SHIFT);
static_assert(sizeof(struct frdma_cqe_ts) == 1 << FRDMA_CQE_TS_SHIFT);
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

/* A kernel consumer's CQ: a ring of struct ib_wc nobody maps. */
static int frdma_create_kernel_cq(struct frdma_cq *cq,
				  const struct ib_cq_init_attr *attr)
{
	u32 entries = roundup_pow_of_two(attr->cqe);
	int err;

	spin_lock_init(&cq->lock);
	cq->kernel = true;
	err = frdma_queue_init(&cq->q, NULL, entries,
			       order_base_2(sizeof(struct ib_wc)), NULL);
	if (err)
		return err;
	cq->ibcq.cqe = entries;
	return 0;
}

int frdma_create_cq(struct ib_cq *ibcq, const struct ib_cq_init_attr *attr,
		    FRDMA_CREATE_CQ_ARG *attrs)
{
	struct ib_udata *udata = frdma_create_cq_udata(attrs);
	struct frdma_dev *fdev = to_fdev(ibcq->device);
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_create_cq_resp resp = {};
	struct frdma_ucontext *uctx;
	u32 entries, shift = FRDMA_CQE_SHIFT;
	int err;

	if (attr->flags & ~IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION)
		return -EOPNOTSUPP;
	if (attr->cqe < 1 || attr->cqe > FRDMA_MAX_CQE)
		return -EINVAL;
	if (!udata)
		return attr->flags ? -EOPNOTSUPP :
			frdma_create_kernel_cq(cq, attr);
	if (attr->flags & IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION)
		shift = FRDMA_CQE_TS_SHIFT;
	if (udata->inlen && !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (udata->outlen < sizeof(resp))
		return -EINVAL;

	uctx = rdma_udata_to_drv_context(udata, struct frdma_ucontext, ibuc);
	entries = roundup_pow_of_two(attr->cqe);
	spin_lock_init(&cq->lock);
	err = frdma_res_charge(fdev, FRDMA_RES_CQ);
	if (err)
		return err;
	err = frdma_queue_init(&cq->q, &uctx->ibuc, entries, shift, &resp.cq);
	if (err)
		goto err_count;
	ibcq->cqe = entries;

	err = ib_copy_to_udata(udata, &resp, sizeof(resp));
	if (err) {
		frdma_queue_destroy(&cq->q);
		goto err_count;
	}
	frdma_count(FRDMA_CNT_CQ, 1);
	return 0;

err_count:
	frdma_res_uncharge(fdev, FRDMA_RES_CQ);
	return err;
}

int frdma_destroy_cq(struct ib_cq *ibcq, struct ib_udata *udata)
{
	struct frdma_cq *cq = to_fcq(ibcq);

	frdma_queue_destroy(&cq->q);
	/* The counters and the limit count user objects only. */
	if (!cq->kernel) {
		frdma_res_uncharge(to_fdev(ibcq->device), FRDMA_RES_CQ);
		frdma_count(FRDMA_CNT_CQ, -1);
	}
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
	err = frdma_queue_init(&nq, &uctx->ibuc, entries, cq->q.entry_shift,
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
		       1U << cq->q.entry_shift);
	nq.kidx = used;
	frdma_queue_publish(&nq, true);
	oq = cq->q;
	cq->q = nq;
	ibcq->cqe = entries;
	/* A new ring: a CQ in error after an overrun takes completions again. */
	cq->overrun = false;
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

	int missed = 0;

	spin_lock_irqsave(&cq->lock, irqflags);
	/* An armed "next completion" is not weakened to "solicited only". */
	if (cq->notify != IB_CQ_NEXT_COMP)
		cq->notify = flags & IB_CQ_SOLICITED_MASK;
	/* A ring user space broke counts as not empty: let it be polled. */
	if ((flags & IB_CQ_REPORT_MISSED_EVENTS) &&
	    frdma_queue_user_space(&cq->q) != cq->q.num_entries)
		missed = 1;
	spin_unlock_irqrestore(&cq->lock, irqflags);
	return missed;
}

/**
 * frdma_poll_cq - poll a kernel consumer's CQ
 * @ibcq: the CQ
 * @num_entries: at most this many completions
 * @wc: where they go
 *
 * User CQs are polled by the provider, in the shared ring; polling one
 * here is refused.
 *
 * Context: any.
 * Return: the number of completions, or -EOPNOTSUPP for a user CQ.
 */
int frdma_poll_cq(struct ib_cq *ibcq, int num_entries, struct ib_wc *wc)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_ring_hdr *hdr = cq->q.hdr;
	unsigned long irqflags;
	int n = 0;

	if (!cq->kernel)
		return -EOPNOTSUPP;
	spin_lock_irqsave(&cq->lock, irqflags);
	while (n < num_entries && hdr->cons != cq->q.kidx) {
		memcpy(&wc[n++], frdma_queue_entry(&cq->q, hdr->cons),
		       sizeof(*wc));
		/* Only this function writes it, under the lock. */
		smp_store_release(&hdr->cons, hdr->cons + 1);
	}
	spin_unlock_irqrestore(&cq->lock, irqflags);
	return n;
}

/*
 * Add the @size bytes at @e to the ring of @cq and call its completion
 * handler if it was armed for this completion.
 */
static int frdma_cq_produce(struct frdma_cq *cq, const void *e, size_t size,
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
	/* A user CQ in error refuses everything until it is resized. */
	if (cq->overrun && !cq->kernel) {
		spin_unlock_irqrestore(&cq->lock, irqflags);
		return -ENOSPC;
	}
	space = frdma_queue_user_space(&cq->q);
	if (space <= 0) {
		bool first = !cq->overrun;

		/*
		 * A kernel CQ (the MAD layer's) only loses this completion,
		 * as MADs may be lost; it reports the first overrun.
		 */
		cq->overrun = true;
		spin_unlock_irqrestore(&cq->lock, irqflags);
		if (first && cq->ibcq.event_handler)
			cq->ibcq.event_handler(&ev, cq->ibcq.cq_context);
		return -ENOSPC;
	}
	memcpy(frdma_queue_entry(&cq->q, cq->q.kidx), e, size);
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

/**
 * frdma_cq_post - add a completion to a user CQ
 * @cq: the completion queue
 * @cqe: the completion, copied into the ring
 * @solicited: the completion is for a solicited event
 *
 * Calls the CQ's completion handler if the CQ was armed for this
 * completion.  May be called from any context.
 *
 * Return: 0, or -ENOSPC when the CQ overran now or earlier and is in error
 * (the completion is lost; the CQ's event handler was told when it
 * overran).  The caller then moves the QP the completion was for to the
 * error state.
 */
int frdma_cq_post(struct frdma_cq *cq, const struct frdma_cqe *cqe,
		  bool solicited)
{
	struct frdma_cqe_ts ts;

	/* Only kernel QPs use kernel CQs, and they post with ib_wc. */
	if (WARN_ON_ONCE(cq->kernel))
		return -EINVAL;
	if (cq->q.entry_shift == FRDMA_CQE_TS_SHIFT) {
		ts = (struct frdma_cqe_ts){
			.cqe = *cqe,
			.timestamp = ktime_get_ns(),
		};
		return frdma_cq_produce(cq, &ts, sizeof(ts), solicited);
	}
	return frdma_cq_produce(cq, cqe, sizeof(*cqe), solicited);
}

/**
 * frdma_cq_post_wc - add a completion to a kernel CQ
 * @cq: the completion queue, of a kernel consumer
 * @wc: the completion, copied into the ring
 * @solicited: the completion is for a solicited event
 *
 * As frdma_cq_post(), for the CQs of kernel QPs.
 *
 * Return: 0, or -ENOSPC when the CQ overran.
 */
int frdma_cq_post_wc(struct frdma_cq *cq, const struct ib_wc *wc,
		     bool solicited)
{
	if (WARN_ON_ONCE(!cq->kernel))
		return -EINVAL;
	return frdma_cq_produce(cq, wc, sizeof(*wc), solicited);
}
