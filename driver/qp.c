// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: queue pairs.
 *
 * A user QP's send and receive queues are rings shared with the provider
 * (see include/uapi/rdma/frdma-abi.h); the kernel consumes both.  The one
 * kernel QP is the GSI QP the MAD layer creates on the port (QP number 1),
 * whose queues are kernel memory (gsi.c); other kernel QPs are refused.
 * The QP is found by the data path through its device's QPN table, which
 * holds one reference; every lookup takes another, and destroy_qp waits
 * until all of them are dropped.
 *
 * Attributes are stored as modify_qp gives them and returned by query_qp.
 * A modify that changes the state takes the send queue's mutex, so the
 * data path, which runs under it, sees the state and the attributes of
 * its own QP change only between work requests.
 */

#include <linux/log2.h>
#include <linux/slab.h>
#include <rdma/ib_cache.h>
#include <rdma/uverbs_ioctl.h>

#include "qp.h"
#include "wire.h"

#define FRDMA_QPN_MIN	2
#define FRDMA_QPN_MAX	0xffffff

void frdma_qp_table_init(struct frdma_dev *fdev)
{
	xa_init_flags(&fdev->qp_table, XA_FLAGS_ALLOC);
	fdev->qp_next = FRDMA_QPN_MIN;
	xa_init_flags(&fdev->ah_table, XA_FLAGS_ALLOC1 | XA_FLAGS_LOCK_IRQ);
	fdev->ah_next = 1;
	xa_init_flags(&fdev->srq_table, XA_FLAGS_ALLOC1);
	fdev->srq_next = 1;
}

void frdma_qp_table_destroy(struct frdma_dev *fdev)
{
	/* The core destroys every QP and AH before dealloc_driver. */
	WARN_ON(!xa_empty(&fdev->qp_table));
	xa_destroy(&fdev->qp_table);
	WARN_ON(!xa_empty(&fdev->ah_table));
	xa_destroy(&fdev->ah_table);
	WARN_ON(!xa_empty(&fdev->srq_table));
	xa_destroy(&fdev->srq_table);
}

/**
 * frdma_qp_get - look up a QP by number and take a reference on it
 * @fdev: the device whose table to search
 * @qpn: the QP number
 *
 * Context: any; does not sleep.
 * Return: the QP, which stays allocated until frdma_qp_put(), or NULL.
 */
struct frdma_qp *frdma_qp_get(struct frdma_dev *fdev, u32 qpn)
{
	struct frdma_qp *qp;

	/*
	 * Under the table's lock: destroy_qp erases the entry under it, and
	 * the QP's memory is freed only after every reference is dropped.
	 */
	xa_lock(&fdev->qp_table);
	qp = xa_load(&fdev->qp_table, qpn);
	if (qp && !refcount_inc_not_zero(&qp->ref))
		qp = NULL;
	xa_unlock(&fdev->qp_table);
	return qp;
}

/**
 * frdma_qp_put - drop a reference taken by frdma_qp_get()
 * @qp: the QP
 */
void frdma_qp_put(struct frdma_qp *qp)
{
	if (refcount_dec_and_test(&qp->ref))
		complete(&qp->free);
}

/**
 * frdma_qp_event - report an affiliated asynchronous event on a QP
 * @qp: the QP
 * @type: the event
 */
void frdma_qp_event(struct frdma_qp *qp, enum ib_event_type type)
{
	struct ib_event ev = {
		.device = qp->ibqp.device,
		.element.qp = &qp->ibqp,
		.event = type,
	};

	if (qp->ibqp.event_handler)
		qp->ibqp.event_handler(&ev, qp->ibqp.qp_context);
}

/* log2 of the smallest power-of-two stride holding @bytes, at least 16. */
static u32 frdma_stride_shift(u32 bytes)
{
	return order_base_2(max_t(u32, bytes, 16));
}

static int frdma_check_cap(struct ib_qp_cap *cap)
{
	if (cap->max_send_wr > FRDMA_MAX_QP_WR ||
	    cap->max_recv_wr > FRDMA_MAX_QP_WR ||
	    cap->max_send_sge > FRDMA_MAX_SGE ||
	    cap->max_recv_sge > FRDMA_MAX_SGE ||
	    cap->max_inline_data > FRDMA_MAX_INLINE_DATA)
		return -EINVAL;
	return 0;
}

/*
 * What user and kernel QPs share, before anything can find the QP.
 * Return: 0, or -ENOMEM for the WQE copies.
 */
static int frdma_qp_init_common(struct frdma_qp *qp,
				struct ib_qp_init_attr *init)
{
	qp->sqe = kzalloc(2 * FRDMA_MAX_WQE_SIZE, FRDMA_GFP_USER);
	if (!qp->sqe)
		return -ENOMEM;
	qp->rqe = qp->sqe + FRDMA_MAX_WQE_SIZE / sizeof(u64);
	qp->fdev = to_fdev(qp->ibqp.device);
	refcount_set(&qp->ref, 1);
	init_completion(&qp->free);
	spin_lock_init(&qp->lock);
	mutex_init(&qp->sq_mutex);
	mutex_init(&qp->rq_mutex);
	INIT_DELAYED_WORK(&qp->retry_work, frdma_sq_retry_work);
	INIT_WORK(&qp->poll_work, frdma_sq_poll_work);
	qp->state = IB_QPS_RESET;
	qp->attr.cap = init->cap;
	qp->attr.port_num = 1;
	qp->attr.path_mtu = IB_MTU_1024;
	qp->attr.path_mig_state = IB_MIG_MIGRATED;
	qp->sq_sig_all = init->sq_sig_type == IB_SIGNAL_ALL_WR;
	return 0;
}

/*
 * An XRC target QP.  The RDMA core creates it as a kernel QP (no udata)
 * on behalf of user space, which holds it through the XRC domain.  It has
 * no rings: the messages it receives take their entries from the XRC SRQ
 * each one names, and it sends nothing but the responses of the local
 * fabric.  Counted as a user QP, since user space made it.
 */
static int frdma_create_xrc_tgt(struct frdma_qp *qp,
				struct ib_qp_init_attr *init)
{
	struct frdma_dev *fdev = to_fdev(qp->ibqp.device);
	u32 qpn;
	int err;

	if (!init->xrcd || init->srq || init->create_flags ||
	    init->rwq_ind_tbl || init->send_cq || init->recv_cq)
		return -EINVAL;
	memset(&init->cap, 0, sizeof(init->cap));
	frdma_qp_init_common(qp, init);
	err = frdma_res_charge(fdev, FRDMA_RES_QP);
	if (err)
		return err;
	err = xa_alloc_cyclic(&fdev->qp_table, &qpn, qp,
			      XA_LIMIT(FRDMA_QPN_MIN, FRDMA_QPN_MAX),
			      &fdev->qp_next, FRDMA_GFP_USER);
	if (err < 0) {
		frdma_res_uncharge(fdev, FRDMA_RES_QP);
		return err;
	}
	qp->ibqp.qp_num = qpn;
	frdma_count(FRDMA_CNT_QP, 1);
	return 0;
}

/*
 * A kernel QP: the port's GSI QP, which takes QP number 1, or an XRC
 * target QP.  It is not
 * counted against FRDMA_MAX_QP, nor in the debugfs counters, which count
 * user space's objects.
 */
static int frdma_create_kernel_qp(struct frdma_qp *qp,
				  struct ib_qp_init_attr *init)
{
	struct frdma_dev *fdev = to_fdev(qp->ibqp.device);
	int err;

	if (init->qp_type == IB_QPT_XRC_TGT)
		return frdma_create_xrc_tgt(qp, init);
	if (init->qp_type != IB_QPT_GSI)
		return -EOPNOTSUPP;
	err = frdma_qp_init_common(qp, init);
	if (err)
		return err;
	err = frdma_gsi_create(qp, init);
	if (err)
		goto err_free;
	err = xa_insert(&fdev->qp_table, FRDMA_GSI_QPN, qp, GFP_KERNEL);
	if (err) {
		frdma_gsi_destroy(qp);
		goto err_free;
	}
	qp->ibqp.qp_num = FRDMA_GSI_QPN;
	return 0;

err_free:
	kfree(qp->sqe);
	return err;
}

int frdma_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
		    struct ib_udata *udata)
{
	struct frdma_dev *fdev = to_fdev(ibqp->device);
	struct frdma_qp *qp = to_fqp(ibqp);
	struct frdma_create_qp_resp resp = {};
	struct ib_qp_cap *cap = &init->cap;
	struct frdma_ucontext *uctx;
	u32 sq_shift, rq_shift, body, qpn;
	bool has_rq;
	int err;

	if (!udata)
		return frdma_create_kernel_qp(qp, init);
	if (init->qp_type != IB_QPT_RC && init->qp_type != IB_QPT_UC &&
	    init->qp_type != IB_QPT_UD && init->qp_type != IB_QPT_XRC_INI)
		return -EOPNOTSUPP;
	if (init->create_flags || init->rwq_ind_tbl)
		return -EOPNOTSUPP;
	if (init->srq && init->srq->srq_type != IB_SRQT_BASIC)
		return -EOPNOTSUPP;
	/*
	 * A QP on an SRQ receives from it and has no RQ of its own; an XRC
	 * send QP receives nothing.
	 */
	has_rq = !init->srq && init->qp_type != IB_QPT_XRC_INI;
	if (!has_rq) {
		cap->max_recv_wr = 0;
		cap->max_recv_sge = 0;
	}
	err = frdma_check_cap(cap);
	if (err)
		return err;
	if (udata->inlen && !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (udata->outlen < sizeof(resp))
		return -EINVAL;
	uctx = rdma_udata_to_drv_context(udata, struct frdma_ucontext, ibuc);

	/* The strides, and the capabilities they really hold. */
	body = max_t(u32, cap->max_send_sge * sizeof(struct frdma_sge),
		     cap->max_inline_data);
	sq_shift = frdma_stride_shift(sizeof(struct frdma_sqe) + body);
	body = (1U << sq_shift) - sizeof(struct frdma_sqe);
	cap->max_send_sge = min_t(u32, body / sizeof(struct frdma_sge),
				  FRDMA_MAX_SGE);
	cap->max_inline_data = min_t(u32, body, FRDMA_MAX_INLINE_DATA);
	cap->max_send_wr = roundup_pow_of_two(max_t(u32, cap->max_send_wr, 1));

	rq_shift = frdma_stride_shift(sizeof(struct frdma_rqe) +
				      cap->max_recv_sge *
				      sizeof(struct frdma_sge));
	body = (1U << rq_shift) - sizeof(struct frdma_rqe);
	cap->max_recv_sge = has_rq ? min_t(u32, body / sizeof(struct frdma_sge),
					   FRDMA_MAX_SGE) : 0;
	if (has_rq)
		cap->max_recv_wr = roundup_pow_of_two(max_t(u32,
							    cap->max_recv_wr,
							    1));

	err = frdma_qp_init_common(qp, init);
	if (err)
		return err;

	err = frdma_res_charge(fdev, FRDMA_RES_QP);
	if (err)
		goto err_free;
	if (frdma_should_fail()) {
		err = -ENOMEM;
		goto err_count;
	}
	err = frdma_queue_init(&qp->sq, &uctx->ibuc, cap->max_send_wr,
			       sq_shift, &resp.sq);
	if (err)
		goto err_count;
	if (frdma_should_fail()) {
		err = -ENOMEM;
		goto err_sq;
	}
	if (has_rq) {
		err = frdma_queue_init(&qp->rq, &uctx->ibuc, cap->max_recv_wr,
				       rq_shift, &resp.rq);
		if (err)
			goto err_sq;
	}
	resp.max_inline_data = cap->max_inline_data;

	if (frdma_should_fail()) {
		err = -ENOMEM;
		goto err_rq;
	}
	err = xa_alloc_cyclic(&fdev->qp_table, &qpn, qp,
			      XA_LIMIT(FRDMA_QPN_MIN, FRDMA_QPN_MAX),
			      &fdev->qp_next, FRDMA_GFP_USER);
	if (err < 0)
		goto err_rq;
	ibqp->qp_num = qpn;

	err = ib_copy_to_udata(udata, &resp, sizeof(resp));
	if (err)
		goto err_qpn;
	frdma_count(FRDMA_CNT_QP, 1);
	return 0;

err_qpn:
	/* A lookup may have found the QP meanwhile: wait for it. */
	xa_erase(&fdev->qp_table, qpn);
	frdma_qp_put(qp);
	wait_for_completion(&qp->free);
err_rq:
	frdma_queue_destroy(&qp->rq);
err_sq:
	frdma_queue_destroy(&qp->sq);
err_count:
	frdma_res_uncharge(fdev, FRDMA_RES_QP);
err_free:
	kfree(qp->sqe);
	return err;
}

/* The attributes modify_qp accepts, beyond what the state table checks. */
static int frdma_check_attr(struct frdma_qp *qp, struct ib_qp_attr *attr,
			    int mask)
{
	if ((mask & IB_QP_PORT) && attr->port_num != 1)
		return -EINVAL;
	if ((mask & IB_QP_PKEY_INDEX) && attr->pkey_index >= FRDMA_PKEY_TBL_LEN)
		return -EINVAL;
	if ((mask & IB_QP_PATH_MTU) &&
	    (attr->path_mtu < IB_MTU_256 || attr->path_mtu > IB_MTU_4096))
		return -EINVAL;
	if ((mask & IB_QP_MAX_QP_RD_ATOMIC) &&
	    attr->max_rd_atomic > FRDMA_MAX_RD_ATOM)
		return -EINVAL;
	if ((mask & IB_QP_MAX_DEST_RD_ATOMIC) &&
	    attr->max_dest_rd_atomic > FRDMA_MAX_RD_ATOM)
		return -EINVAL;
	if ((mask & IB_QP_ACCESS_FLAGS) &&
	    (attr->qp_access_flags & ~(IB_ACCESS_REMOTE_WRITE |
				       IB_ACCESS_REMOTE_READ |
				       IB_ACCESS_REMOTE_ATOMIC |
				       IB_ACCESS_LOCAL_WRITE)))
		return -EINVAL;
	if ((mask & IB_QP_AV) &&
	    !(rdma_ah_get_ah_flags(&attr->ah_attr) & IB_AH_GRH))
		return -EINVAL;
	if ((mask & IB_QP_DEST_QPN) && attr->dest_qp_num > FRDMA_QPN_MAX)
		return -EINVAL;
	if (mask & (IB_QP_ALT_PATH | IB_QP_PATH_MIG_STATE | IB_QP_RATE_LIMIT))
		return -EOPNOTSUPP;
	if ((mask & IB_QP_CAP) &&
	    (attr->cap.max_send_wr > qp->attr.cap.max_send_wr ||
	     attr->cap.max_recv_wr > qp->attr.cap.max_recv_wr))
		return -EINVAL;
	return 0;
}

/* Store the attributes of @mask; under qp->lock. */
static void frdma_store_attr(struct frdma_qp *qp, struct ib_qp_attr *attr,
			     int mask)
{
	struct ib_qp_attr *a = &qp->attr;

	if (mask & IB_QP_ACCESS_FLAGS)
		a->qp_access_flags = attr->qp_access_flags;
	if (mask & IB_QP_PKEY_INDEX)
		a->pkey_index = attr->pkey_index;
	if (mask & IB_QP_PORT)
		a->port_num = attr->port_num;
	if (mask & IB_QP_QKEY)
		a->qkey = attr->qkey;
	if (mask & IB_QP_AV) {
		const struct ib_gid_attr *sgid = attr->ah_attr.grh.sgid_attr;

		a->ah_attr = attr->ah_attr;
		a->ah_attr.grh.sgid_attr = NULL;
		if (sgid)
			qp->sgid = sgid->gid;
	}
	if (mask & IB_QP_PATH_MTU)
		a->path_mtu = attr->path_mtu;
	if (mask & IB_QP_TIMEOUT)
		a->timeout = attr->timeout;
	if (mask & IB_QP_RETRY_CNT)
		a->retry_cnt = attr->retry_cnt;
	if (mask & IB_QP_RNR_RETRY)
		a->rnr_retry = attr->rnr_retry;
	if (mask & IB_QP_RQ_PSN)
		a->rq_psn = attr->rq_psn & 0xffffff;
	if (mask & IB_QP_MAX_QP_RD_ATOMIC)
		a->max_rd_atomic = attr->max_rd_atomic;
	if (mask & IB_QP_MIN_RNR_TIMER)
		a->min_rnr_timer = attr->min_rnr_timer;
	if (mask & IB_QP_SQ_PSN)
		a->sq_psn = attr->sq_psn & 0xffffff;
	if (mask & IB_QP_MAX_DEST_RD_ATOMIC)
		a->max_dest_rd_atomic = attr->max_dest_rd_atomic;
	if (mask & IB_QP_DEST_QPN)
		a->dest_qp_num = attr->dest_qp_num;
	if (mask & IB_QP_EN_SQD_ASYNC_NOTIFY)
		a->en_sqd_async_notify = attr->en_sqd_async_notify;
}

/*
 * RESET discards whatever is queued: the kernel's consumer indices jump to
 * the provider's producer indices, so the provider, which owns prod, need
 * not reset anything.  Under sq_mutex.
 */
static void frdma_qp_reset_queues(struct frdma_qp *qp)
{
	qp->sqe_held = false;
	qp->sq.kidx = READ_ONCE(qp->sq.hdr->prod);
	frdma_queue_publish(&qp->sq, false);
	if (!qp->rq.hdr)
		return;		/* an SRQ's entries are not the QP's */
	mutex_lock(&qp->rq_mutex);
	WRITE_ONCE(qp->rq.hdr->sq_flags, 0);	/* FRDMA_RQ_FLUSHING */
	qp->rq.kidx = READ_ONCE(qp->rq.hdr->prod);
	frdma_queue_publish(&qp->rq, false);
	mutex_unlock(&qp->rq_mutex);
}

int frdma_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		    struct ib_udata *udata)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	enum ib_qp_state cur, next;
	bool kick = false, drained = false;
	int err;

	if (udata && udata->inlen &&
	    !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (mask & ~IB_QP_ATTR_STANDARD_BITS)
		return -EOPNOTSUPP;

	/* A pass is bounded, but a dying caller need not wait for it. */
	if (mutex_lock_killable(&qp->sq_mutex))
		return -EINTR;
	/*
	 * Under qp->lock: a sender that finds an error on this QP moves it
	 * to ERR with only that lock held, and that must not be lost.
	 */
	spin_lock(&qp->lock);
	cur = (mask & IB_QP_CUR_STATE) ? attr->cur_qp_state : qp->state;
	next = (mask & IB_QP_STATE) ? attr->qp_state : cur;
	if (!ib_modify_qp_is_ok(cur, next, ibqp->qp_type, mask))
		err = -EINVAL;
	else
		err = frdma_check_attr(qp, attr, mask);
	if (!err) {
		frdma_store_attr(qp, attr, mask);
		if (mask & IB_QP_STATE)
			qp->state = next;
	}
	spin_unlock(&qp->lock);
	if (err)
		goto out;
	frdma_wire_qp_modified(qp, attr, mask);

	if (!(mask & IB_QP_STATE))
		goto out;
	if (next != IB_QPS_SQD)
		qp->sqd_notify = false;
	/* Only RTS is polled; the cases below see every SQE posted so far. */
	if (next != IB_QPS_RTS)
		frdma_sq_poll_stop(qp);
	if (qp->gsi) {
		frdma_gsi_state_changed(qp, cur, next);
		goto out;
	}
	/* An XRC target QP has no queues to reset, flush or run. */
	if (ibqp->qp_type == IB_QPT_XRC_TGT)
		goto out;
	switch (next) {
	case IB_QPS_RESET:
		cancel_delayed_work(&qp->retry_work);
		frdma_qp_reset_queues(qp);
		break;
	case IB_QPS_ERR:
		cancel_delayed_work(&qp->retry_work);
		frdma_flush_sq(qp);
		frdma_flush_rq(qp);
		if (ibqp->srq && cur != IB_QPS_ERR)
			frdma_qp_event(qp, IB_EVENT_QP_LAST_WQE_REACHED);
		break;
	case IB_QPS_RTS:
		/*
		 * Work posted before RTS, or held in SQD, runs now.  Only if
		 * there is some: a doorbell rung from now on waits for
		 * sq_mutex and finds RTS, and a pass queued for nothing
		 * would run, late, whatever is posted next without one.
		 */
		kick = cur != IB_QPS_RTS &&
		       (qp->sqe_held ||
			READ_ONCE(qp->sq.hdr->prod) != qp->sq.kidx);
		break;
	case IB_QPS_SQD:
		/*
		 * Execution is synchronous: only an SQE held for a retry can
		 * be outstanding.  It still runs (frdma_sq_run()), and the
		 * queue is drained when it has completed.
		 */
		if (cur == IB_QPS_SQD || !qp->attr.en_sqd_async_notify)
			break;
		if (qp->sqe_held)
			qp->sqd_notify = true;
		else
			drained = true;
		break;
	default:
		break;
	}
out:
	mutex_unlock(&qp->sq_mutex);
	if (kick)
		frdma_sq_kick(qp, 0);
	if (drained)
		frdma_qp_event(qp, IB_EVENT_SQ_DRAINED);
	return err;
}

int frdma_query_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		   struct ib_qp_init_attr *init)
{
	struct frdma_qp *qp = to_fqp(ibqp);

	memset(attr, 0, sizeof(*attr));
	memset(init, 0, sizeof(*init));
	spin_lock(&qp->lock);
	*attr = qp->attr;
	attr->qp_state = qp->state;
	attr->cur_qp_state = qp->state;
	spin_unlock(&qp->lock);
	/* An SQE held for a retry is the only work that can be in flight. */
	attr->sq_draining = attr->qp_state == IB_QPS_SQD &&
			    READ_ONCE(qp->sqe_held);

	init->qp_type = ibqp->qp_type;
	init->send_cq = ibqp->send_cq;
	init->recv_cq = ibqp->recv_cq;
	init->srq = ibqp->srq;
	init->cap = attr->cap;
	init->sq_sig_type = qp->sq_sig_all ? IB_SIGNAL_ALL_WR :
					     IB_SIGNAL_REQ_WR;
	init->port_num = 1;
	return 0;
}

int frdma_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	struct frdma_dev *fdev = qp->fdev;

	/*
	 * Work requests of this QP, and towards it, stop at their next copy
	 * step: the waits below last one step, not one message.
	 */
	WRITE_ONCE(qp->stopping, true);
	/* No multicast send finds it either (the core has detached it). */
	frdma_mcast_qp_destroy(qp);
	/* No lookup finds the QP from here on; wait for those that did. */
	xa_erase(&fdev->qp_table, ibqp->qp_num);
	frdma_qp_put(qp);
	wait_for_completion(&qp->free);
	/* Stop the poller first: it may queue the retry work. */
	mutex_lock(&qp->sq_mutex);
	frdma_sq_poll_stop(qp);
	mutex_unlock(&qp->sq_mutex);
	cancel_work_sync(&qp->poll_work);
	/*
	 * The wire state goes under sq_mutex, as every send-queue pass
	 * reads qp->wire under it: a retry work already queued (the QP's
	 * error, the wire's timer) finds none when it runs.
	 */
	mutex_lock(&qp->sq_mutex);
	frdma_wire_qp_destroy(qp);
	mutex_unlock(&qp->sq_mutex);
	/* Nobody else can queue the work now. */
	cancel_delayed_work_sync(&qp->retry_work);

	if (qp->gsi) {
		frdma_gsi_destroy(qp);
		mutex_destroy(&qp->sq_mutex);
		mutex_destroy(&qp->rq_mutex);
		kfree(qp->sqe);
		return 0;
	}
	frdma_queue_destroy(&qp->rq);
	frdma_queue_destroy(&qp->sq);
	mutex_destroy(&qp->sq_mutex);
	mutex_destroy(&qp->rq_mutex);
	kfree(qp->sqe);
	frdma_res_uncharge(fdev, FRDMA_RES_QP);
	frdma_count(FRDMA_CNT_QP, -1);
	return 0;
}

/*
 * The send doorbell of a user QP: a post_send with no work request.  Work
 * requests are taken from kernel consumers of the GSI QP only.
 */
int frdma_post_send(struct ib_qp *ibqp, const struct ib_send_wr *wr,
		    const struct ib_send_wr **bad_wr)
{
	struct frdma_qp *qp = to_fqp(ibqp);

	if (qp->gsi)
		return wr ? frdma_gsi_post_send(qp, wr, bad_wr) : 0;
	if (wr || !qp->sq.hdr) {
		*bad_wr = wr;
		return -EOPNOTSUPP;
	}
	return frdma_sq_doorbell(qp);
}

/* User receive queues have no doorbell; the GSI QP's take work requests. */
int frdma_post_recv(struct ib_qp *ibqp, const struct ib_recv_wr *wr,
		    const struct ib_recv_wr **bad_wr)
{
	struct frdma_qp *qp = to_fqp(ibqp);

	if (qp->gsi)
		return frdma_gsi_post_recv(qp, wr, bad_wr);
	*bad_wr = wr;
	return -EOPNOTSUPP;
}
