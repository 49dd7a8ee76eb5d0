// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: completions, flushes and the error state, for the requester and
 * the responder alike.
 */

#include "qp.h"

static const u8 frdma_wc_opcode[] = {
	[IB_UVERBS_WR_RDMA_WRITE] = IB_UVERBS_WC_RDMA_WRITE,
	[IB_UVERBS_WR_RDMA_WRITE_WITH_IMM] = IB_UVERBS_WC_RDMA_WRITE,
	[IB_UVERBS_WR_SEND] = IB_UVERBS_WC_SEND,
	[IB_UVERBS_WR_SEND_WITH_IMM] = IB_UVERBS_WC_SEND,
	[IB_UVERBS_WR_RDMA_READ] = IB_UVERBS_WC_RDMA_READ,
	[IB_UVERBS_WR_ATOMIC_CMP_AND_SWP] = IB_UVERBS_WC_COMP_SWAP,
	[IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD] = IB_UVERBS_WC_FETCH_ADD,
	[IB_UVERBS_WR_SEND_WITH_INV] = IB_UVERBS_WC_SEND,
	[IB_UVERBS_WR_BIND_MW] = IB_UVERBS_WC_BIND_MW,
	[IB_UVERBS_WR_LOCAL_INV] = IB_UVERBS_WC_LOCAL_INV,
	[IB_UVERBS_WR_ATOMIC_WRITE] = IB_UVERBS_WC_ATOMIC_WRITE,
};

u8 frdma_sqe_wc_opcode(u8 opcode)
{
	return opcode < ARRAY_SIZE(frdma_wc_opcode) ?
	       frdma_wc_opcode[opcode] : IB_UVERBS_WC_SEND;
}

/* Whether @ibcq overran and refuses completions (cq.c). */
bool frdma_cq_failed(struct ib_cq *ibcq)
{
	return READ_ONCE(to_fcq(ibcq)->overrun);
}

static void frdma_post_cqe(struct ib_cq *ibcq, u64 wr_id, u32 qpn,
			   enum ib_wc_status status, u8 opcode)
{
	struct frdma_cqe cqe = {
		.wr_id = wr_id,
		.qp_num = qpn,
		.status = status,
		.opcode = opcode,
	};

	/* Error completions are solicited events too. */
	frdma_cq_post(to_fcq(ibcq), &cqe, status != IB_WC_SUCCESS);
}

/*
 * Flushing.  Only wr_id and the opcode of a flushed entry are read, from
 * one copy of its header; nothing else of it is used.
 */

/**
 * frdma_flush_sq - complete everything queued on a send queue with
 *	IB_WC_WR_FLUSH_ERR
 * @qp: the QP, whose sq_mutex the caller holds
 */
void frdma_flush_sq(struct frdma_qp *qp)
{
	struct frdma_sqe hdr;
	int avail;

	lockdep_assert_held(&qp->sq_mutex);
	avail = frdma_queue_user_avail(&qp->sq);
	if (avail < 0)		/* a broken ring: nothing to trust */
		avail = qp->sqe_held;
	while (avail-- > 0) {
		if (qp->sqe_held)
			memcpy(&hdr, qp->sqe, sizeof(hdr));
		else
			memcpy(&hdr, frdma_queue_entry(&qp->sq, qp->sq.kidx),
			       sizeof(hdr));
		qp->sqe_held = false;
		qp->sq.kidx++;
		frdma_queue_publish(&qp->sq, false);
		frdma_post_cqe(qp->ibqp.send_cq, hdr.wr_id, qp->ibqp.qp_num,
			       IB_WC_WR_FLUSH_ERR,
			       frdma_sqe_wc_opcode(hdr.opcode));
	}
}

static void frdma_flush_rq_locked(struct frdma_qp *qp)
{
	u64 wr_id;
	int avail;

	lockdep_assert_held(&qp->rq_mutex);
	avail = frdma_queue_user_avail(&qp->rq);
	while (avail-- > 0) {
		memcpy(&wr_id, frdma_queue_entry(&qp->rq, qp->rq.kidx),
		       sizeof(wr_id));
		qp->rq.kidx++;
		frdma_queue_publish(&qp->rq, false);
		frdma_post_cqe(qp->ibqp.recv_cq, wr_id, qp->ibqp.qp_num,
			       IB_WC_WR_FLUSH_ERR, FRDMA_WC_RECV);
	}
}

/**
 * frdma_flush_rq - complete every RQE queued on a receive queue with
 *	IB_WC_WR_FLUSH_ERR
 * @qp: the QP; the caller holds none of its locks but may hold a
 *	sq_mutex (its own or another QP's)
 */
void frdma_flush_rq(struct frdma_qp *qp)
{
	/*
	 * An SRQ's entries belong to no QP: they stay for the others.  XRC
	 * QPs have no receive queue at all.
	 */
	if (!qp->rq.hdr)
		return;
	mutex_lock(&qp->rq_mutex);
	/*
	 * Only in ERR: a late flush after a reset must not complete RQEs
	 * posted since (modify_qp sets the state before taking rq_mutex).
	 */
	if (READ_ONCE(qp->state) == IB_QPS_ERR) {
		/*
		 * Have the provider ring the doorbell for RQEs it posts from
		 * now on, then fence before loading prod: pairs with its
		 * fence between storing prod and loading the flag (the
		 * uABI's "Receive queue flushing").  Cleared by a reset.
		 */
		WRITE_ONCE(qp->rq.hdr->sq_flags, FRDMA_RQ_FLUSHING);
		smp_mb();	/* flag store before the prod load, see above */
		frdma_flush_rq_locked(qp);
	}
	mutex_unlock(&qp->rq_mutex);
}

/**
 * frdma_qp_to_error - move a QP to the error state from the data path
 * @qp: the QP
 * @event: the affiliated asynchronous event to report, or 0 for none
 *
 * Only a QP in RTR, RTS, SQD or SQE moves: the data path found the error
 * on a QP it saw in one of those states, without the QP's locks, and its
 * owner may have moved it to RESET (or on to INIT) since; that QP is left
 * alone.  Flushes the receive queue now and has the send queue flushed by
 * the QP's work, which takes its sq_mutex (the caller may hold another
 * QP's).  The caller holds none of @qp's locks except possibly its
 * sq_mutex.
 */
void frdma_qp_to_error(struct frdma_qp *qp, enum ib_event_type event)
{
	bool moved;

	spin_lock(&qp->lock);
	moved = frdma_state_receives(qp->state);
	if (moved)
		qp->state = IB_QPS_ERR;
	spin_unlock(&qp->lock);
	if (!moved)
		return;
	if (event)
		frdma_qp_event(qp, event);
	/* An XRC target QP has no queue to flush. */
	if (qp->ibqp.qp_type == IB_QPT_XRC_TGT)
		return;
	frdma_flush_rq(qp);
	/* Nothing more is taken from the SRQ for it (IBTA 11.6.3). */
	if (qp->ibqp.srq)
		frdma_qp_event(qp, IB_EVENT_QP_LAST_WQE_REACHED);
	frdma_sq_kick(qp, 0);
}
