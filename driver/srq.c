// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: shared receive queues.
 *
 * An SRQ is a ring of receive queue entries in the format of a QP's RQ,
 * which the provider produces into (ibv_post_srq_recv() writes entries
 * and stores prod, with no system call) and the data path consumes from,
 * under the SRQ's mutex, for every QP attached to it.  The kernel keeps
 * its own consumer index, copies each entry out once and validates the
 * copy, as for an RQ; a producer index out of range is a broken ring:
 * IB_EVENT_SRQ_ERR once, and the QP the message was for goes to the
 * error state.
 *
 * The limit (ibv_modify_srq() with IBV_SRQ_LIMIT) arms a one-shot event:
 * when an entry is taken and fewer than the limit remain,
 * IB_EVENT_SRQ_LIMIT_REACHED is reported and the SRQ is disarmed.
 *
 * XRC.  An XRC domain is only an identity here: the RDMA core shares it
 * between processes (by the inode of the file they open it with) and
 * records which target QPs and SRQs belong to it.  An XRC SRQ has a
 * number, unique on its device, by which XRC send QPs name it in every
 * message (struct frdma_sqe.xrc_srqn); the data path looks it up in the
 * device's srq_table, with a reference, and accepts it only if it belongs
 * to the XRC domain of the target QP the message arrived at.  Its
 * completions go to the CQ it was created with, and its PD (not the
 * target QP's, which has none) checks the receive buffers and rkeys.
 */

#include <linux/log2.h>
#include <rdma/uverbs_ioctl.h>

#include "qp.h"

static void frdma_srq_event(struct frdma_srq *srq, enum ib_event_type type)
{
	struct ib_srq *ibsrq = &srq->ibsrq;
	struct ib_event ev = {
		.device = ibsrq->device,
		.element.srq = ibsrq,
		.event = type,
	};

	if (ibsrq->event_handler)
		ibsrq->event_handler(&ev, ibsrq->srq_context);
}

/* The largest SRQ number: 24 bits, as a QP number. */
#define FRDMA_SRQN_MAX	0xffffff

/*
 * Take an XRC SRQ out of its device's number table and wait until the
 * data path has dropped every reference it took through it.
 */
static void frdma_srq_unpublish(struct frdma_dev *fdev, struct frdma_srq *srq)
{
	xa_erase(&fdev->srq_table, srq->ibsrq.ext.xrc.srq_num);
	frdma_srq_put(srq);
	wait_for_completion(&srq->free);
}

int frdma_create_srq(struct ib_srq *ibsrq, struct ib_srq_init_attr *init,
		     struct ib_udata *udata)
{
	struct frdma_dev *fdev = to_fdev(ibsrq->device);
	struct frdma_srq *srq = to_fsrq(ibsrq);
	struct ib_srq_attr *attr = &init->attr;
	struct frdma_create_srq_resp resp = {};
	struct frdma_ucontext *uctx;
	u32 shift, body, entries, srqn;
	int err;

	/* Kernel consumers post through post_srq_recv, which frdma lacks. */
	if (!udata || (init->srq_type != IB_SRQT_BASIC &&
		       init->srq_type != IB_SRQT_XRC))
		return -EOPNOTSUPP;
	if (attr->max_wr > FRDMA_MAX_QP_WR || attr->max_sge > FRDMA_MAX_SGE)
		return -EINVAL;
	if (udata->inlen && !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (udata->outlen < sizeof(resp))
		return -EINVAL;
	uctx = rdma_udata_to_drv_context(udata, struct frdma_ucontext, ibuc);

	shift = order_base_2(max_t(u32, sizeof(struct frdma_rqe) +
				   attr->max_sge * sizeof(struct frdma_sge),
				   16));
	body = (1U << shift) - sizeof(struct frdma_rqe);
	entries = roundup_pow_of_two(max_t(u32, attr->max_wr, 1));

	mutex_init(&srq->mutex);
	err = frdma_queue_init(&srq->rq, &uctx->ibuc, entries, shift, &resp.rq);
	if (err) {
		mutex_destroy(&srq->mutex);
		return err;
	}
	srq->max_sge = min_t(u32, body / sizeof(struct frdma_sge),
			     FRDMA_MAX_SGE);
	/* ibv_create_srq() ignores the limit: the SRQ starts disarmed. */
	srq->limit = 0;
	attr->max_wr = entries;
	attr->max_sge = srq->max_sge;
	attr->srq_limit = 0;

	refcount_set(&srq->ref, 1);
	init_completion(&srq->free);
	if (init->srq_type == IB_SRQT_XRC) {
		err = xa_alloc_cyclic(&fdev->srq_table, &srqn, srq,
				      XA_LIMIT(1, FRDMA_SRQN_MAX),
				      &fdev->srq_next, FRDMA_GFP_USER);
		if (err < 0)
			goto err_queue;
		ibsrq->ext.xrc.srq_num = srqn;
	}

	err = ib_copy_to_udata(udata, &resp, sizeof(resp));
	if (err)
		goto err_srqn;
	frdma_count(FRDMA_CNT_SRQ, 1);
	return 0;

err_srqn:
	if (init->srq_type == IB_SRQT_XRC)
		frdma_srq_unpublish(fdev, srq);
err_queue:
	frdma_queue_destroy(&srq->rq);
	mutex_destroy(&srq->mutex);
	return err;
}

int frdma_modify_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr,
		     enum ib_srq_attr_mask mask, struct ib_udata *udata)
{
	struct frdma_srq *srq = to_fsrq(ibsrq);

	if (udata && udata->inlen &&
	    !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	/* The ring is not resizable. */
	if (mask & ~IB_SRQ_LIMIT)
		return -EOPNOTSUPP;
	if (mask & IB_SRQ_LIMIT) {
		if (attr->srq_limit > srq->rq.num_entries)
			return -EINVAL;
		mutex_lock(&srq->mutex);
		srq->limit = attr->srq_limit;
		mutex_unlock(&srq->mutex);
	}
	return 0;
}

int frdma_query_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr)
{
	struct frdma_srq *srq = to_fsrq(ibsrq);

	attr->max_wr = srq->rq.num_entries;
	attr->max_sge = srq->max_sge;
	mutex_lock(&srq->mutex);
	attr->srq_limit = srq->limit;
	mutex_unlock(&srq->mutex);
	return 0;
}

int frdma_destroy_srq(struct ib_srq *ibsrq, struct ib_udata *udata)
{
	struct frdma_srq *srq = to_fsrq(ibsrq);

	/*
	 * The core destroys an SRQ only once no QP uses it; an XRC SRQ may
	 * still be found by number until it leaves the table.
	 */
	if (ibsrq->srq_type == IB_SRQT_XRC)
		frdma_srq_unpublish(to_fdev(ibsrq->device), srq);
	frdma_queue_destroy(&srq->rq);
	mutex_destroy(&srq->mutex);
	frdma_count(FRDMA_CNT_SRQ, -1);
	return 0;
}

/**
 * frdma_srq_take - take the next entry of an SRQ into srq->rqe
 * @srq: the SRQ, whose mutex the caller holds
 *
 * Reports IB_EVENT_SRQ_LIMIT_REACHED when the SRQ is armed and fewer
 * entries than its limit remain after this one, and IB_EVENT_SRQ_ERR the
 * first time the ring is found broken.  The new cons is published when
 * the caller unlocks, so that a message stopped midway can give the entry
 * back.
 *
 * Return: 0, -EAGAIN when the SRQ is empty, or -EINVAL when its ring is
 * broken.
 */
int frdma_srq_take(struct frdma_srq *srq)
{
	int avail;

	lockdep_assert_held(&srq->mutex);
	avail = frdma_queue_user_avail(&srq->rq);
	if (avail < 0) {
		if (!srq->broken) {
			srq->broken = true;
			frdma_srq_event(srq, IB_EVENT_SRQ_ERR);
		}
		return avail;
	}
	if (!avail)
		return -EAGAIN;
	memcpy(srq->rqe, frdma_queue_entry(&srq->rq, srq->rq.kidx),
	       1U << srq->rq.entry_shift);
	srq->rq.kidx++;
	if (srq->limit && avail - 1 < srq->limit) {
		srq->limit = 0;
		frdma_srq_event(srq, IB_EVENT_SRQ_LIMIT_REACHED);
	}
	return 0;
}

/**
 * frdma_xrc_srq_get - look up an XRC SRQ by number for a message
 * @fdev: the device of the target QP
 * @srqn: the SRQ number the sender named
 * @xrcd: the XRC domain of the target QP
 *
 * Context: any; does not sleep.
 * Return: the SRQ, referenced until frdma_srq_put(), or NULL when @fdev
 * has no XRC SRQ numbered @srqn in @xrcd.
 */
struct frdma_srq *frdma_xrc_srq_get(struct frdma_dev *fdev, u32 srqn,
				    struct ib_xrcd *xrcd)
{
	struct frdma_srq *srq;

	if (!xrcd)
		return NULL;
	xa_lock(&fdev->srq_table);
	srq = xa_load(&fdev->srq_table, srqn);
	if (srq && (srq->ibsrq.ext.xrc.xrcd != xrcd ||
		    !refcount_inc_not_zero(&srq->ref)))
		srq = NULL;
	xa_unlock(&fdev->srq_table);
	return srq;
}

/**
 * frdma_srq_put - drop a reference taken by frdma_xrc_srq_get()
 * @srq: the SRQ
 */
void frdma_srq_put(struct frdma_srq *srq)
{
	if (refcount_dec_and_test(&srq->ref))
		complete(&srq->free);
}

/*
 * XRC domains: the RDMA core keeps everything an XRC domain is (its inode,
 * its target QPs, its users); frdma has nothing to add.
 */
int frdma_alloc_xrcd(struct ib_xrcd *ibxrcd, struct ib_udata *udata)
{
	if (udata && udata->inlen &&
	    !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	return 0;
}

int frdma_dealloc_xrcd(struct ib_xrcd *ibxrcd, struct ib_udata *udata)
{
	return 0;
}
