// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: the responder.  Operations into memory and receive queues.
 *
 * The rules an incoming operation meets are here, once, whichever
 * transport brought it: the local fabric calls frdma_resp_exec() with the
 * sender's validated SQE, in the sender's thread; the wire's responders
 * (wire_resp.c for RC, wire_uc.c, wire_ud.c) call the same functions per
 * packet.
 *
 *   - Remote memory (RDMA READ and WRITE, the atomics, atomic write):
 *     frdma_resp_access() decides whether the operation may touch the
 *     range its rkey names (the QP's access flags, alignment, the key's
 *     PD, access and bounds) and hands out the MR, referenced; the
 *     atomics execute through frdma_resp_atomic().
 *   - Receive queues (SEND, RDMA WRITE with immediate, UD datagrams):
 *     frdma_recv_take() consumes an RQE under the queue's mutex and
 *     resolves its buffers, checked, into a frdma_sgl.
 *
 * Execution touches only registered memory: every SGE and every remote
 * range is looked up once by key, checked for PD, access and bounds and
 * then copied run by run (frdma_mr_copy()).
 */

#include <linux/ip.h>
#include <linux/sched.h>
#include <net/checksum.h>
#include <net/ipv6.h>
#include <rdma/ib_addr.h>

#include "mr.h"
#include "qp.h"
#include "wire_ud.h"

/* IBTA's RNR NAK timer codes, in microseconds (code 0 is the longest). */
static const u32 frdma_rnr_usecs[32] = {
	655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960,
	1280, 1920, 2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720,
	40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

/*
 * Receive queues.
 */

/**
 * struct frdma_rx - the receiver's side of a message that consumes an RQE
 * @status: the receiver's completion status
 * @rqe_taken: an RQE was consumed (a receive completion is due)
 * @wr_id: its wr_id
 * @aborted: the copy stopped midway (frdma_wr_stopping())
 */
struct frdma_rx {
	enum ib_wc_status status;
	bool rqe_taken;
	bool aborted;
	u64 wr_id;
};

/*
 * The receive queue a message to @t consumes: @srq when the message names
 * one (an XRC SRQ, frdma_xrc_srq_get()) or @t is attached to one, under
 * the SRQ's mutex, else @t's own RQ, under its rq_mutex.  frdma_rx_srq()
 * gives the @srq to pass to the helpers below.
 */
static struct frdma_srq *frdma_rx_srq(struct frdma_qp *t,
				      struct frdma_srq *xsrq)
{
	if (xsrq)
		return xsrq;
	return t->ibqp.srq ? to_fsrq(t->ibqp.srq) : NULL;
}

static struct mutex *frdma_rq_mutex(struct frdma_qp *t, struct frdma_srq *srq)
{
	return srq ? &srq->mutex : &t->rq_mutex;
}

static struct frdma_queue *frdma_rq_queue(struct frdma_qp *t,
					  struct frdma_srq *srq)
{
	return srq ? &srq->rq : &t->rq;
}

/* The copy of the RQE taken last, under frdma_rq_lock(). */
static const struct frdma_rqe *frdma_rqe(struct frdma_qp *t,
					 struct frdma_srq *srq)
{
	return srq ? (const void *)srq->rqe : (const void *)t->rqe;
}

static u32 frdma_rq_max_sge(struct frdma_qp *t, struct frdma_srq *srq)
{
	return srq ? srq->max_sge : t->attr.cap.max_recv_sge;
}

/* Receive completions go to an XRC SRQ's CQ, else to @t's receive CQ. */
static struct ib_cq *frdma_rx_cq(struct frdma_qp *t, struct frdma_srq *srq)
{
	if (srq && srq->ibsrq.srq_type == IB_SRQT_XRC)
		return srq->ibsrq.ext.cq;
	return t->ibqp.recv_cq;
}

/*
 * The PD that checks the receive buffers and rkeys of a message: an XRC
 * SRQ's (an XRC target QP has none), else @t's.
 */
static struct ib_pd *frdma_rx_pd(struct frdma_qp *t, struct frdma_srq *srq)
{
	if (srq && srq->ibsrq.srq_type == IB_SRQT_XRC)
		return srq->ibsrq.pd;
	return t->ibqp.pd;
}

/*
 * Take @t's receive queue mutex (frdma_rq_mutex()) to deliver to it, and
 * check again, under it, that @t still receives: its owner may have reset
 * it since the sender looked (modify_qp changes the state before it takes
 * rq_mutex to reset the ring).  Returns false, with the mutex released,
 * when it does not.
 */
static bool frdma_rq_lock(struct frdma_qp *t, struct frdma_srq *srq)
{
	mutex_lock(frdma_rq_mutex(t, srq));
	if (frdma_state_receives(READ_ONCE(t->state)))
		return true;
	mutex_unlock(frdma_rq_mutex(t, srq));
	return false;
}

/* Publish the RQEs taken under frdma_rq_lock(), and unlock. */
static void frdma_rq_unlock(struct frdma_qp *t, struct frdma_srq *srq)
{
	frdma_queue_publish(frdma_rq_queue(t, srq), false);
	mutex_unlock(frdma_rq_mutex(t, srq));
}

/*
 * Post the receive completion @rcqe of the RQE taken under
 * frdma_rq_lock(), @solicited for the CQ's event: the RQ's cons first, so
 * that an application that polls the completion and posts the next
 * receive at once finds the slot free.  Returns frdma_cq_post()'s.
 */
static int frdma_rq_complete(struct frdma_qp *t, struct frdma_srq *srq,
			     const struct frdma_cqe *rcqe, bool solicited)
{
	frdma_queue_publish(frdma_rq_queue(t, srq), false);
	return frdma_cq_post(to_fcq(frdma_rx_cq(t, srq)), rcqe, solicited);
}

/*
 * Take the next RQE of @t, under frdma_rq_lock(), and resolve its receive
 * buffers into @rsgl (when not NULL), their total in *@room.  Returns
 * -EAGAIN when none is posted, -EINVAL when the ring is broken (nothing
 * taken), else 0 with the RQE in frdma_rqe() and in *@status what its
 * receive completion must say of its buffers: IB_WC_SUCCESS,
 * IB_WC_LOC_QP_OP_ERR (more SGEs than the queue takes) or
 * IB_WC_LOC_PROT_ERR (an SGE's key, PD, access or bounds); @rsgl holds
 * what was resolved either way.  The new cons is published with the
 * receive completion (frdma_rq_complete()) or by frdma_rq_unlock(), so
 * that a message stopped midway can give the RQE back
 * (frdma_rq_queue()->kidx--).
 */
static int frdma_recv_take(struct frdma_qp *t, struct frdma_srq *srq,
			   struct frdma_sgl *rsgl, u64 *room,
			   enum ib_wc_status *status)
{
	const struct frdma_rqe *rqe = frdma_rqe(t, srq);
	int avail;

	if (srq) {
		avail = frdma_srq_take(srq);
		if (avail)
			return avail;
	} else {
		avail = frdma_queue_user_avail(&t->rq);
		if (avail <= 0)
			return avail ? avail : -EAGAIN;
		memcpy(t->rqe, frdma_queue_entry(&t->rq, t->rq.kidx),
		       1U << t->rq.entry_shift);
		t->rq.kidx++;
	}
	*status = IB_WC_SUCCESS;
	*room = 0;
	if (!rsgl)
		return 0;
	if (rqe->num_sge > frdma_rq_max_sge(t, srq))
		*status = IB_WC_LOC_QP_OP_ERR;
	else if (frdma_sgl_get(rsgl, t->fdev, frdma_rx_pd(t, srq),
			       (const struct frdma_sge *)(rqe + 1),
			       rqe->num_sge, IB_ACCESS_LOCAL_WRITE, room))
		*status = IB_WC_LOC_PROT_ERR;
	return 0;
}

/**
 * frdma_recv_take_one - take a receive for a message from the wire
 * @t: the QP the message is for
 * @rsgl: an empty list for the receive buffers, or NULL when the message
 *	carries no data (the immediate of an RDMA WRITE)
 * @room: the bytes the buffers hold
 * @wr_id: the RQE's wr_id
 * @status: as frdma_recv_take() sets it
 *
 * Takes the next RQE of @t's receive queue (its SRQ's when it has one)
 * and publishes the new consumer index at once: a message from the wire
 * completes the RQE later, packet by packet, without the queue's mutex.
 * The rules are the local fabric's (frdma_recv_take()).
 *
 * Context: process; takes the receive queue's mutex.
 * Return: 0; -EAGAIN when no receive is posted; -EINVAL when the ring is
 * broken; -ENODEV when @t no longer receives.  On error nothing is taken.
 */
int frdma_recv_take_one(struct frdma_qp *t, struct frdma_sgl *rsgl,
			u64 *room, u64 *wr_id, enum ib_wc_status *status)
{
	struct frdma_srq *srq = frdma_rx_srq(t, NULL);
	int err;

	if (!frdma_rq_lock(t, srq))
		return -ENODEV;
	err = frdma_recv_take(t, srq, rsgl, room, status);
	if (!err)
		*wr_id = frdma_rqe(t, srq)->wr_id;
	frdma_rq_unlock(t, srq);
	return err;
}

/*
 * Deliver a SEND (@write false) or the immediate of an RDMA WRITE with
 * immediate (@write true, the data already written) to @t, whose receive
 * queue the caller holds (frdma_rq_lock()).  Returns the sender's status;
 * sets *@rnr when no RQE was posted.
 */
static enum ib_wc_status frdma_deliver(struct frdma_qp *qp, struct frdma_qp *t,
				       struct frdma_srq *srq,
				       const struct frdma_sqe *sqe, u64 len,
				       bool write, struct frdma_rx *rx,
				       bool *rnr)
{
	struct frdma_sgl *rsgl = &qp->rsgl;
	u64 room;
	int err;

	/* A receive CQ in error: the receiver's QP fails, nothing is taken. */
	if (frdma_cq_failed(frdma_rx_cq(t, srq))) {
		rx->status = IB_WC_GENERAL_ERR;
		return IB_WC_REM_OP_ERR;
	}
	err = frdma_recv_take(t, srq, write ? NULL : rsgl, &room, &rx->status);
	if (err == -EAGAIN) {
		*rnr = true;
		return IB_WC_SUCCESS;
	}
	if (err) {
		rx->status = IB_WC_LOC_QP_OP_ERR;	/* t's ring is broken */
		return IB_WC_REM_OP_ERR;
	}
	rx->rqe_taken = true;
	rx->wr_id = frdma_rqe(t, srq)->wr_id;
	if (rx->status != IB_WC_SUCCESS)
		return IB_WC_REM_OP_ERR;
	if (write)
		return IB_WC_SUCCESS;
	if (room < len) {
		rx->status = IB_WC_LOC_LEN_ERR;
		return IB_WC_REM_INV_REQ_ERR;
	}
	if (sqe->flags & FRDMA_WQE_INLINE)
		frdma_sgl_write(rsgl, (const u8 *)(sqe + 1), len);
	else if (frdma_sgl_copy(rsgl, &qp->lsgl, len, qp, t))
		rx->aborted = true;
	return IB_WC_SUCCESS;
}

/*
 * Remote memory.
 */

/**
 * frdma_resp_access - may a remote operation touch the memory it names
 * @t: the responder QP
 * @pd: the PD the rkey must be of: @t's, or an XRC SRQ's for an XRC
 *	target QP
 * @opcode: the operation, an IB_UVERBS_WR_* RDMA or atomic opcode
 * @rkey: the remote key, of an MR or a memory window
 * @va: the first byte
 * @len: the bytes (8 for the atomics and atomic write)
 * @mrp: set to the MR to copy to or from, referenced (frdma_mr_put()),
 *	or to NULL for a zero-length access
 *
 * The responder's rules for remote memory, the same on the local fabric
 * and on the wire (IBTA 9.7.4.1.4, 9.7.5.1.2, oA19-28):
 *
 *  - the QP must allow the access (IB_ACCESS_REMOTE_WRITE for RDMA WRITE
 *    and atomic write, _READ for RDMA READ, _ATOMIC for compare-and-swap
 *    and fetch-and-add): else an invalid request, as rdma_rxe answers;
 *  - an atomic or atomic write acts on one 8-byte aligned word: else an
 *    invalid request;
 *  - a zero-length access checks no key;
 *  - the rkey must name an MR or a bound window of @pd that allows the
 *    access and holds the whole range (frdma_rkey_get()): else a remote
 *    access error.
 *
 * Return: IB_WC_SUCCESS, IB_WC_REM_INV_REQ_ERR or IB_WC_REM_ACCESS_ERR,
 * the requester's completion status; the wire NAKs with its syndrome.
 */
enum ib_wc_status frdma_resp_access(struct frdma_qp *t, struct ib_pd *pd,
				    u8 opcode, u32 rkey, u64 va, u64 len,
				    struct frdma_mr **mrp)
{
	bool word = false;
	int access;

	*mrp = NULL;
	switch (opcode) {
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		access = IB_ACCESS_REMOTE_WRITE;
		break;
	case IB_UVERBS_WR_RDMA_READ:
		access = IB_ACCESS_REMOTE_READ;
		break;
	case IB_UVERBS_WR_ATOMIC_WRITE:
		access = IB_ACCESS_REMOTE_WRITE;
		word = true;
		break;
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD:
		access = IB_ACCESS_REMOTE_ATOMIC;
		word = true;
		break;
	default:
		return IB_WC_REM_INV_REQ_ERR;
	}
	if (!(READ_ONCE(t->attr.qp_access_flags) & access))
		return IB_WC_REM_INV_REQ_ERR;
	if (word && (len != sizeof(u64) || (va & (sizeof(u64) - 1))))
		return IB_WC_REM_INV_REQ_ERR;
	if (!len)
		return IB_WC_SUCCESS;
	if (frdma_rkey_get(t->fdev, rkey, &t->ibqp, pd, va, len, access, mrp)) {
		*mrp = NULL;
		return IB_WC_REM_ACCESS_ERR;
	}
	return IB_WC_SUCCESS;
}

/**
 * frdma_resp_atomic - execute an atomic or an atomic write at a responder
 * @t: the responder QP
 * @pd: as for frdma_resp_access()
 * @opcode: IB_UVERBS_WR_ATOMIC_CMP_AND_SWP, _FETCH_AND_ADD or
 *	IB_UVERBS_WR_ATOMIC_WRITE
 * @rkey: the remote key
 * @va: the 8-byte word
 * @compare_add: the compare value, the addend or the value to write
 * @swap: the swap value
 * @orig: set to the word's value before the operation
 *
 * Checks the operation with frdma_resp_access(), then performs it with
 * frdma_mr_atomic(), atomic against every other frdma atomic on the word.
 *
 * Return: the requester's completion status, as frdma_resp_access().
 */
enum ib_wc_status frdma_resp_atomic(struct frdma_qp *t, struct ib_pd *pd,
				    u8 opcode, u32 rkey, u64 va,
				    u64 compare_add, u64 swap, u64 *orig)
{
	enum ib_wc_status status;
	struct frdma_mr *mr;

	status = frdma_resp_access(t, pd, opcode, rkey, va, sizeof(u64), &mr);
	if (status != IB_WC_SUCCESS)
		return status;
	if (frdma_mr_atomic(mr, va, opcode, compare_add, swap, orig))
		status = IB_WC_REM_ACCESS_ERR;
	frdma_mr_put(mr);
	return status;
}

/*
 * The remote range of an RDMA READ or WRITE, checked (frdma_resp_access()),
 * into qp->rsgl as an MR's.  Returns the sender's status.
 */
static enum ib_wc_status frdma_remote_get(struct frdma_qp *qp,
					  struct frdma_qp *t,
					  struct frdma_srq *srq, u8 opcode,
					  u32 rkey, u64 addr, u64 len)
{
	struct frdma_sgl *rsgl = &qp->rsgl;
	enum ib_wc_status status;
	struct frdma_mr *mr;

	status = frdma_resp_access(t, frdma_rx_pd(t, srq), opcode, rkey, addr,
				   len, &mr);
	if (status != IB_WC_SUCCESS || !mr)
		return status;
	rsgl->mr[rsgl->n] = mr;
	rsgl->addr[rsgl->n] = addr;
	rsgl->len[rsgl->n] = len;
	rsgl->n++;
	return IB_WC_SUCCESS;
}

/*
 * The local fabric: an operation executed at its target, in the
 * requester's thread.
 */

/**
 * frdma_resp_exec - execute an operation of the local fabric at its target
 * @qp: the requester QP, whose sq_mutex the caller holds
 * @t: the responder QP, referenced by the caller
 * @xsrq: the XRC SRQ the message names, or NULL
 * @sqe: the validated copy of the work request
 * @len: its message length, its local SGEs resolved into qp->lsgl
 * @cqe: the send completion; its status is filled in
 * @rnr_delay: set to the jiffies to wait when the outcome is FRDMA_RNR
 *
 * Context: process, in the requester's thread.
 * Return: how the work request ended (enum frdma_outcome).
 */
enum frdma_outcome frdma_resp_exec(struct frdma_qp *qp, struct frdma_qp *t,
				   struct frdma_srq *xsrq,
				   const struct frdma_sqe *sqe, u64 len,
				   struct frdma_cqe *cqe,
				   unsigned long *rnr_delay)
{
	struct frdma_srq *srq = frdma_rx_srq(t, xsrq);
	struct frdma_rx rx = { .status = IB_WC_SUCCESS };
	struct frdma_sgl *rsgl = &qp->rsgl;
	enum ib_wc_status status = IB_WC_SUCCESS;
	enum ib_event_type event = 0;
	bool rnr = false, rq_locked = false, gone = false, lost = false;
	u64 orig;

	switch (sqe->opcode) {
	case IB_UVERBS_WR_SEND:
	case IB_UVERBS_WR_SEND_WITH_IMM:
	case IB_UVERBS_WR_SEND_WITH_INV:
		if (!frdma_rq_lock(t, srq)) {
			gone = true;
			break;
		}
		rq_locked = true;
		status = frdma_deliver(qp, t, srq, sqe, len, false, &rx,
				       &rnr);
		/* The invalidation follows the data, as on the wire. */
		if (sqe->opcode == IB_UVERBS_WR_SEND_WITH_INV && !rnr &&
		    status == IB_WC_SUCCESS && !rx.aborted &&
		    frdma_mw_invalidate(&t->ibqp, sqe->invalidate_rkey, true)) {
			rx.status = IB_WC_REM_INV_REQ_ERR;
			status = IB_WC_REM_INV_REQ_ERR;
		}
		break;
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		status = frdma_remote_get(qp, t, srq, sqe->opcode,
					  sqe->rdma.rkey, sqe->rdma.remote_addr,
					  len);
		if (status != IB_WC_SUCCESS)
			break;
		if (sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM) {
			if (!frdma_rq_lock(t, srq)) {
				gone = true;
				break;
			}
			rq_locked = true;
			status = frdma_deliver(qp, t, srq, sqe, len, true, &rx,
					       &rnr);
			if (rnr || status != IB_WC_SUCCESS)
				break;
		}
		if (!len)
			break;
		if (sqe->flags & FRDMA_WQE_INLINE)
			frdma_mr_write(rsgl->mr[0], rsgl->addr[0], sqe + 1, len);
		else if (frdma_sgl_copy(rsgl, &qp->lsgl, len, qp, t))
			rx.aborted = true;
		break;
	case IB_UVERBS_WR_RDMA_READ:
		status = frdma_remote_get(qp, t, srq, sqe->opcode,
					  sqe->rdma.rkey, sqe->rdma.remote_addr,
					  len);
		if (status != IB_WC_SUCCESS)
			break;
		if (len && frdma_sgl_copy(&qp->lsgl, rsgl, len, qp, t))
			rx.aborted = true;
		cqe->byte_len = len;
		break;
	default:	/* the atomics and atomic write: 8 bytes, at once */
		status = frdma_resp_atomic(t, frdma_rx_pd(t, srq), sqe->opcode,
					   sqe->atomic.rkey,
					   sqe->atomic.remote_addr,
					   sqe->atomic.compare_add,
					   sqe->atomic.swap, &orig);
		if (status != IB_WC_SUCCESS ||
		    sqe->opcode == IB_UVERBS_WR_ATOMIC_WRITE)
			break;
		frdma_mr_write(qp->lsgl.mr[0], qp->lsgl.addr[0], &orig,
			       sizeof(orig));
		cqe->byte_len = sizeof(orig);
		break;
	}

	/*
	 * Stopped midway: as a message that never arrived whole.  The RQE
	 * goes back (its cons was not published); what was copied stays.
	 */
	if (rx.aborted && rx.rqe_taken) {
		frdma_rq_queue(t, srq)->kidx--;
		rx.rqe_taken = false;
	}
	if (rx.rqe_taken) {
		struct frdma_cqe rcqe = {
			.wr_id = rx.wr_id,
			.qp_num = t->ibqp.qp_num,
			.src_qp = qp->ibqp.qp_num,
			.status = rx.status,
			.opcode = FRDMA_WC_RECV,
		};

		if (status == IB_WC_SUCCESS) {
			rcqe.byte_len = len;
			if (sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM ||
			    sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM) {
				rcqe.imm_data = sqe->imm_data;
				rcqe.wc_flags = FRDMA_WC_WITH_IMM;
			}
			if (sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM)
				rcqe.opcode = FRDMA_WC_RECV_RDMA_WITH_IMM;
			if (sqe->opcode == IB_UVERBS_WR_SEND_WITH_INV) {
				rcqe.imm_data = sqe->invalidate_rkey;
				rcqe.wc_flags = FRDMA_WC_WITH_INV;
			}
		}
		/* The receiver's CQ overran: its QP fails (below). */
		lost = frdma_rq_complete(t, srq, &rcqe,
					 rx.status != IB_WC_SUCCESS ||
					 (sqe->flags & FRDMA_WQE_SOLICITED));
	}
	if (rq_locked)
		frdma_rq_unlock(t, srq);
	frdma_sgl_put(rsgl);
	/*
	 * The sender stops: the SQE runs again at the next pass, if any.
	 * Only the target stops: it is going away, as if unreachable.
	 */
	if (rx.aborted && (fatal_signal_pending(current) ||
			   READ_ONCE(qp->stopping)))
		return FRDMA_ABORT;
	if (rx.aborted)
		gone = true;
	/* The target stopped receiving: as if it had never been ready. */
	if (gone)
		return qp->ibqp.qp_type == IB_QPT_UC ? FRDMA_DONE : FRDMA_RETRY;

	if (qp->ibqp.qp_type == IB_QPT_UC) {
		/*
		 * Unreliable: the requester learns nothing.  A message that
		 * finds no RQE or breaks a rule at the responder is dropped;
		 * only an RQE the receiver completed in error fails it.
		 */
		cqe->status = IB_WC_SUCCESS;
		if (lost)
			frdma_qp_to_error(t, IB_EVENT_QP_FATAL);
		else if (rx.rqe_taken && rx.status != IB_WC_SUCCESS)
			frdma_qp_to_error(t, 0);
		return FRDMA_DONE;
	}
	if (rnr) {
		u8 timer = READ_ONCE(t->attr.min_rnr_timer) & 31;

		*rnr_delay = usecs_to_jiffies(frdma_rnr_usecs[timer]);
		return FRDMA_RNR;
	}
	if (lost && status == IB_WC_SUCCESS)
		status = IB_WC_REM_OP_ERR;
	cqe->status = status;
	if (status == IB_WC_SUCCESS)
		return FRDMA_DONE;

	/*
	 * The responder's error: an access violation or an invalid request
	 * is an affiliated event there; an error the receiver completed an
	 * RQE with needs none.
	 */
	if (lost)
		event = IB_EVENT_QP_FATAL;
	else if (status == IB_WC_REM_ACCESS_ERR)
		event = IB_EVENT_QP_ACCESS_ERR;
	else if (!rx.rqe_taken)
		event = status == IB_WC_REM_OP_ERR ? IB_EVENT_QP_FATAL :
						     IB_EVENT_QP_REQ_ERR;
	frdma_qp_to_error(t, event);
	return FRDMA_DONE;
}

/*
 * UD.  A datagram goes to the QP named by the SQE's remote_qpn on the
 * device of its AH's destination GID.  Like a lost packet, a datagram
 * that finds no such UD QP, a Q_Key mismatch or no RQE is dropped and the
 * send completes successfully.  The receive buffer gets the 40-byte GRH
 * first: for an IPv4 destination GID its last 20 bytes are the IPv4
 * header (as RoCE v2 delivers it), else an IPv6 header; either with the
 * length of the datagram's RoCE v2 packet: after the IP header, UDP
 * header, BTH, DETH, immediate data if any, payload, pad and ICRC.
 */

#define FRDMA_GRH_SIZE		40
#define FRDMA_UD_MAX_MSG	4096	/* the largest IB MTU */

void frdma_build_grh(u8 *grh, const struct rdma_ah_attr *ah,
		     const union ib_gid *sgid, u32 len, bool imm)
{
	const struct ib_global_route *g = &ah->grh;
	u32 rest = 8 + 12 + 8 + (imm ? 4 : 0) + ALIGN(len, 4) + 4;

	memset(grh, 0, FRDMA_GRH_SIZE);
	if (ipv6_addr_v4mapped((const struct in6_addr *)g->dgid.raw)) {
		struct iphdr *ip = (struct iphdr *)(grh + 20);

		ip->version = 4;
		ip->ihl = 5;
		ip->tos = g->traffic_class;
		ip->tot_len = htons(sizeof(*ip) + rest);
		ip->ttl = g->hop_limit;
		ip->protocol = IPPROTO_UDP;
		memcpy(&ip->saddr, sgid->raw + 12, 4);
		memcpy(&ip->daddr, g->dgid.raw + 12, 4);
		ip->check = ip_fast_csum(ip, ip->ihl);
	} else {
		struct ib_grh *h = (struct ib_grh *)grh;

		h->version_tclass_flow = cpu_to_be32(6 << 28 |
						     g->traffic_class << 20 |
						     (g->flow_label & 0xfffff));
		h->paylen = cpu_to_be16(rest);
		h->next_hdr = IPPROTO_UDP;
		h->hop_limit = g->hop_limit;
		h->sgid = *sgid;
		h->dgid = g->dgid;
	}
}

/*
 * A datagram of @len bytes for UD QP @t with Q_Key @qkey, from this
 * kernel or the wire: false when it is dropped (nothing held); true with
 * @t's RQ (or SRQ, *@srq) locked, an RQE taken into @rcqe, and @rsgl
 * holding its buffers when @rcqe->status is IB_WC_SUCCESS.
 */
static bool frdma_ud_recv_begin(struct frdma_qp *t, u32 qkey, u64 len,
				struct frdma_sgl *rsgl,
				struct frdma_cqe *rcqe, struct frdma_srq **srq)
{
	enum ib_wc_status status;
	enum ib_qp_state tstate;
	u32 tqkey;
	u64 room;
	int err;

	spin_lock(&t->lock);
	tstate = t->state;
	tqkey = t->attr.qkey;
	spin_unlock(&t->lock);
	if (!frdma_state_receives(tstate) || tqkey != qkey)
		return false;
	*srq = frdma_rx_srq(t, NULL);
	if (!frdma_rq_lock(t, *srq))
		return false;
	if (frdma_cq_failed(t->ibqp.recv_cq)) {
		frdma_rq_unlock(t, *srq);
		frdma_qp_to_error(t, IB_EVENT_QP_FATAL);
		return false;
	}
	err = frdma_recv_take(t, *srq, rsgl, &room, &status);
	if (err) {
		frdma_rq_unlock(t, *srq);
		if (err != -EAGAIN)
			frdma_qp_to_error(t, IB_EVENT_QP_FATAL);
		return false;
	}
	if (status == IB_WC_SUCCESS && room < len + FRDMA_GRH_SIZE)
		status = IB_WC_LOC_LEN_ERR;
	rcqe->wr_id = frdma_rqe(t, *srq)->wr_id;
	rcqe->qp_num = t->ibqp.qp_num;
	rcqe->opcode = FRDMA_WC_RECV;
	rcqe->status = status;
	return true;
}

/* Complete frdma_ud_recv_begin()'s receive, unlock, release @rsgl. */
static void frdma_ud_recv_end(struct frdma_qp *t, struct frdma_srq *srq,
			      struct frdma_sgl *rsgl,
			      const struct frdma_cqe *rcqe, bool solicited)
{
	int err;

	err = frdma_rq_complete(t, srq, rcqe,
				rcqe->status != IB_WC_SUCCESS || solicited);
	frdma_rq_unlock(t, srq);
	frdma_sgl_put(rsgl);
	if (err)			/* its receive CQ overran */
		frdma_qp_to_error(t, IB_EVENT_QP_FATAL);
	else if (rcqe->status != IB_WC_SUCCESS)
		frdma_qp_to_error(t, 0);
}

/*
 * Deliver @qp's UD datagram (@sqe, @len bytes in qp->lsgl or inline, with
 * Q_Key @qkey, addressed by @ah from @sgid) to the UD QP @t, or drop it.
 */
void frdma_ud_deliver(struct frdma_qp *qp, struct frdma_qp *t,
		      const struct frdma_sqe *sqe, const struct rdma_ah_attr *ah,
		      const union ib_gid *sgid, u64 len, u32 qkey)
{
	struct frdma_sgl *rsgl = &qp->rsgl;
	struct frdma_cqe rcqe = {};
	u8 grh[FRDMA_GRH_SIZE];
	struct frdma_srq *srq;

	if (!frdma_ud_recv_begin(t, qkey, len, rsgl, &rcqe, &srq))
		return;			/* dropped */
	if (rcqe.status == IB_WC_SUCCESS) {
		frdma_build_grh(grh, ah, sgid, len,
				sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM);
		frdma_sgl_write(rsgl, grh, FRDMA_GRH_SIZE);
		frdma_sgl_skip(rsgl, FRDMA_GRH_SIZE);
		/* At most FRDMA_UD_MAX_MSG: never stops midway. */
		if (sqe->flags & FRDMA_WQE_INLINE)
			frdma_sgl_write(rsgl, (const u8 *)(sqe + 1), len);
		else
			frdma_sgl_copy(rsgl, &qp->lsgl, len, qp, t);
		rcqe.byte_len = len + FRDMA_GRH_SIZE;
		rcqe.src_qp = qp->ibqp.qp_num;
		rcqe.wc_flags = FRDMA_WC_GRH;
		if (sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM) {
			rcqe.imm_data = sqe->imm_data;
			rcqe.wc_flags |= FRDMA_WC_WITH_IMM;
		}
	}
	frdma_ud_recv_end(t, srq, rsgl, &rcqe,
			  sqe->flags & FRDMA_WQE_SOLICITED);
}

/**
 * frdma_ud_recv_wire - deliver a datagram from another host to a UD QP
 * @t: the UD QP, referenced by the caller
 * @rsgl: an empty scatter/gather list for the receive buffers
 * @grh: the 40 bytes of the GRH area (frdma_build_grh())
 * @m: the datagram, its payload in @m->buf
 *
 * The datagram is dropped, as req.c's frdma_exec_ud() drops a local one,
 * when @t does not receive, its Q_Key differs or no receive is posted.
 *
 * Context: process (the wire's receive worker).
 * Return: true when a receive took it (or completed in error for it),
 * false when it was dropped.
 */
bool frdma_ud_recv_wire(struct frdma_qp *t, struct frdma_sgl *rsgl,
			const u8 *grh, const struct frdma_dgram *m)
{
	struct frdma_cqe rcqe = {};
	struct frdma_srq *srq;

	if (!m->buf || m->len > FRDMA_UD_MAX_MSG ||
	    !frdma_ud_recv_begin(t, m->qkey, m->len, rsgl, &rcqe, &srq))
		return false;		/* dropped */
	if (rcqe.status == IB_WC_SUCCESS) {
		frdma_sgl_write(rsgl, grh, FRDMA_GRH_SIZE);
		frdma_sgl_skip(rsgl, FRDMA_GRH_SIZE);
		frdma_sgl_write(rsgl, m->buf, m->len);
		rcqe.byte_len = m->len + FRDMA_GRH_SIZE;
		rcqe.src_qp = m->src_qp;
		rcqe.wc_flags = FRDMA_WC_GRH;
		if (m->imm) {
			rcqe.imm_data = (__force u32)m->imm_data;
			rcqe.wc_flags |= FRDMA_WC_WITH_IMM;
		}
	}
	frdma_ud_recv_end(t, srq, rsgl, &rcqe, m->se);
	return true;
}
