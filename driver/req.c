// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: the requester.  Send queues into operations.
 *
 * The provider writes SQEs into a QP's send queue and rings the doorbell (a
 * post_send with no work request).  The doorbell runs the send queue
 * synchronously, in the caller's context, under the QP's sq_mutex: it
 * loads the provider's producer index once, and for each new SQE copies
 * the whole entry once into qp->sqe, validates that copy, resolves its
 * local SGEs (frdma_sgl_get()) and hands the operation to a transport:
 *
 *   - the local fabric, when the destination GID is an frdma device in
 *     this kernel: the destination QP is found by GID and QP number and
 *     the responder (resp.c) executes the operation against it at once,
 *     in this thread;
 *   - the wire (wire_req.c, wire_ud.c), when it is not: the operation
 *     leaves as RoCE v2 packets and completes when it is acknowledged.
 *
 * Nothing read from a ring is used before it has been copied and checked.
 *
 * Outcomes on the local fabric, as IBTA defines them for a reliable
 * connection (the wire's requester follows the same rules, from NAKs and
 * timers):
 *
 *   - success: a send completion if the SQE is signalled (or the QP
 *     signals all), a receive completion at the target for SEND and
 *     RDMA WRITE with immediate;
 *   - a local error (bad opcode, SGE or length): the SQE completes in
 *     error and the QP enters the error state;
 *   - a remote error (access, invalid request, the receiver's own error):
 *     both QPs enter the error state;
 *   - receiver not ready (no RQE): the SQE is held and retried after the
 *     target's min_rnr_timer, rnr_retry times (7: forever), then completes
 *     with IB_WC_RNR_RETRY_EXC_ERR;
 *   - target unreachable (no such GID or QP, not connected to us, not
 *     ready to receive): retried after the QP's timeout, retry_cnt times,
 *     then IB_WC_RETRY_EXC_ERR.
 *
 * While an SQE is held for a retry the send queue does not advance, so
 * work requests complete in order.  A QP in the error state completes
 * everything queued with IB_WC_WR_FLUSH_ERR (comp.c).
 *
 * The poller.  A doorbell is a system call, and most of a small message's
 * cost.  When an RC QP's doorbells come back to back, the doorbell arms
 * the QP's poller: a work item on frdma_poll_wq (unbound) that runs the
 * send queue, under the same sq_mutex, for as long as it finds work, and
 * sets FRDMA_SQ_POLLED in the ring meanwhile so the provider skips the
 * doorbell (the protocol is in <rdma/frdma-abi.h>).  It stops when the
 * queue has been idle for FRDMA_POLL_IDLE_NS, after the pass in which
 * another task wants its CPU (so two busy-polling processes on two CPUs
 * are not slowed by it), and when the QP leaves RTS or holds an SQE for a
 * retry; then it clears the flag, fences and runs the queue once more.
 * A session that did little doubles the streak of doorbells the next
 * arming needs.
 * modify_qp and destroy_qp disarm it (frdma_sq_poll_stop()), destroy_qp
 * then waits for it.  The kernel never reads the flag back: what user
 * space writes there only changes when its own provider rings.
 */

#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/stat.h>
#include <linux/sizes.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_cache.h>

#include "mr.h"
#include "qp.h"
#include "wire.h"
#include "wire_ud.h"

/*
 * The budget of one pass over a send queue (a doorbell's, a poller's, the
 * QP's work's): it starts no SQE after FRDMA_PASS_WQES of them, or after
 * FRDMA_PASS_BYTES of messages; the QP's work runs the rest.
 */
#define FRDMA_PASS_WQES		256
#define FRDMA_PASS_BYTES	SZ_64M

/*
 * The poller: doorbells closer than FRDMA_POLL_GAP_NS are back to back;
 * FRDMA_POLL_STREAK << qp->poll_shift of them in a row arm it; it stops
 * after FRDMA_POLL_IDLE_NS without work; a session that ran fewer than
 * FRDMA_POLL_USEFUL SQEs raises poll_shift, up to FRDMA_POLL_MAX_SHIFT.
 */
#define FRDMA_POLL_GAP_NS	(50 * NSEC_PER_USEC)
#define FRDMA_POLL_STREAK	8
#define FRDMA_POLL_IDLE_NS	(500 * NSEC_PER_USEC)
#define FRDMA_POLL_USEFUL	64
#define FRDMA_POLL_MAX_SHIFT	9

/* Where pollers run (frdma_sq_poll_init()). */
static struct workqueue_struct *frdma_poll_wq;

/* Off: no poller is armed any more; every doorbell is a system call. */
static bool sq_poll = true;
module_param(sq_poll, bool, 0644);
MODULE_PARM_DESC(sq_poll, "Run busy send queues from a kernel poller (default on)");

/**
 * struct frdma_dest - the destination of one pass over a send queue
 * @resolved: the lookup was done (it is done once per pass)
 * @fdev: the target's device, with a registration reference, or NULL
 * @qp: the target QP, referenced, or NULL when unreachable
 * @rnr_delay: jiffies to wait before an RNR retry (frdma_resp_exec())
 * @gid: the destination GID (UD: to tell whether the next datagram goes
 *	 to the same place)
 * @bytes: the message bytes of the pass so far (its budget)
 */
struct frdma_dest {
	bool resolved;
	u64 bytes;
	union ib_gid gid;
	struct frdma_dev *fdev;
	struct frdma_qp *qp;
	unsigned long rnr_delay;
};

/**
 * frdma_sq_kick - run a send queue from the QP's work
 * @qp: the QP
 * @delay: in jiffies
 *
 * The work (frdma_sq_retry_work()) runs on frdma's own unbound workqueue,
 * the pollers': it retries a held SQE, continues a pass that spent its
 * budget, resumes the queue after RTS and flushes it in ERR.
 */
void frdma_sq_kick(struct frdma_qp *qp, unsigned long delay)
{
	mod_delayed_work(frdma_poll_wq, &qp->retry_work, delay);
}

/*
 * Destinations.
 */

/* Is @gid one of @qp's device's GIDs? */
static bool frdma_gid_is_local(struct frdma_qp *qp, const union ib_gid *gid)
{
	const struct ib_gid_attr *attr;

	if (!memcmp(gid, &qp->sgid, sizeof(*gid)))
		return true;
	attr = rdma_find_gid(&qp->fdev->ibdev, gid, IB_GID_TYPE_ROCE_UDP_ENCAP,
			     NULL);
	if (IS_ERR(attr))
		return false;
	rdma_put_gid_attr(attr);
	return true;
}

/*
 * Find the QP @qp is connected to: the QP numbered dest_qp_num on the
 * device that owns the destination GID, whose own destination is @qp.
 */
static void frdma_dest_resolve(struct frdma_qp *qp, struct frdma_dest *d)
{
	union ib_gid dgid, tdgid;
	struct frdma_qp *t;
	u32 dqpn, tdqpn;

	d->resolved = true;
	spin_lock(&qp->lock);
	dgid = qp->attr.ah_attr.grh.dgid;
	dqpn = qp->attr.dest_qp_num;
	spin_unlock(&qp->lock);

	d->fdev = frdma_dev_get_by_gid(qp->fdev, &dgid);
	if (!d->fdev)
		return;
	t = frdma_qp_get(d->fdev, dqpn);
	if (!t)
		return;
	spin_lock(&t->lock);
	tdgid = t->attr.ah_attr.grh.dgid;
	tdqpn = t->attr.dest_qp_num;
	spin_unlock(&t->lock);
	if (t->ibqp.qp_type != (qp->ibqp.qp_type == IB_QPT_XRC_INI ?
				IB_QPT_XRC_TGT : qp->ibqp.qp_type) ||
	    tdqpn != qp->ibqp.qp_num || !frdma_gid_is_local(qp, &tdgid)) {
		frdma_qp_put(t);
		return;
	}
	d->qp = t;
}

static void frdma_dest_release(struct frdma_dest *d)
{
	if (d->qp)
		frdma_qp_put(d->qp);
	if (d->fdev)
		ib_device_put(&d->fdev->ibdev);
	memset(d, 0, sizeof(*d));
}

/* Send @qp's UD datagram (@sqe, @len bytes) to another host: wire_ud.c. */
static void frdma_ud_wire_send(struct frdma_qp *qp,
			       const struct frdma_sqe *sqe,
			       const struct rdma_ah_attr *ah,
			       const union ib_gid *sgid, u32 dqpn, u64 len,
			       u32 qkey)
{
	struct frdma_dgram m = {
		.src_qp = qp->ibqp.qp_num,
		.qkey = qkey,
		.imm = sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM,
		.imm_data = (__force __be32)sqe->imm_data,
		.se = sqe->flags & FRDMA_WQE_SOLICITED,
		.len = len,
	};

	if (sqe->flags & FRDMA_WQE_INLINE)
		m.buf = (const u8 *)(sqe + 1);
	else
		m.sgl = &qp->lsgl;
	frdma_wire_ud_send(qp->fdev, sgid, ah, dqpn, &m);
}

static void frdma_exec_ud(struct frdma_qp *qp, struct frdma_dest *d,
			  const struct frdma_sqe *sqe, u64 len,
			  struct frdma_cqe *cqe)
{
	struct rdma_ah_attr ah;
	struct frdma_qp **mqps;
	union ib_gid sgid;
	struct frdma_qp *t;
	u32 qkey, i, n;

	if (!frdma_ah_lookup(qp->fdev, sqe->ud.ah_num, qp->ibqp.pd, &ah,
			     &sgid)) {
		cqe->status = IB_WC_LOC_QP_OP_ERR;
		return;
	}
	/* One packet: at most the port's MTU, nothing sent otherwise. */
	if (len > frdma_ud_max_msg(qp->fdev)) {
		cqe->status = IB_WC_LOC_LEN_ERR;
		return;
	}
	/* IBTA: a Q_Key with the high bit set means the QP's own. */
	qkey = sqe->ud.remote_qkey;
	if (qkey & 0x80000000)
		qkey = READ_ONCE(qp->attr.qkey);

	/*
	 * A multicast GID: every member in the fabric (mcast.c), and with
	 * the wire on, one packet to the IP multicast address for the
	 * members on other hosts.
	 */
	if (rdma_is_multicast_addr((struct in6_addr *)ah.grh.dgid.raw)) {
		mqps = frdma_mcast_members(qp, &ah.grh.dgid, &n);
		for (i = 0; i < n; i++)
			if (mqps[i]->ibqp.qp_type == IB_QPT_UD)
				frdma_ud_deliver(qp, mqps[i], sqe, &ah, &sgid,
						 len, qkey);
		frdma_mcast_members_put(mqps, n);
		if (qp->fdev->wire)
			frdma_ud_wire_send(qp, sqe, &ah, &sgid,
					   IB_MULTICAST_QPN, len, qkey);
		return;
	}

	/* Each datagram may go elsewhere: keep the last destination. */
	if (d->resolved && (!d->fdev || !d->qp ||
			    d->qp->ibqp.qp_num != sqe->ud.remote_qpn ||
			    memcmp(&d->gid, &ah.grh.dgid, sizeof(d->gid))))
		frdma_dest_release(d);
	if (!d->resolved) {
		d->resolved = true;
		d->gid = ah.grh.dgid;
		d->fdev = frdma_dev_get_by_gid(qp->fdev, &ah.grh.dgid);
		if (d->fdev)
			d->qp = frdma_qp_get(d->fdev, sqe->ud.remote_qpn);
	}
	if (!d->fdev && qp->fdev->wire) {	/* another host */
		frdma_ud_wire_send(qp, sqe, &ah, &sgid, sqe->ud.remote_qpn,
				   len, qkey);
		return;
	}
	t = d->qp;
	if (t && t->gsi) {		/* QP1: gsi.c delivers or drops */
		frdma_gsi_recv_user(t, qp, sqe, &ah, &sgid, len, qkey);
		return;
	}
	if (!t || t->ibqp.qp_type != IB_QPT_UD)
		return;			/* dropped */
	frdma_ud_deliver(qp, t, sqe, &ah, &sgid, len, qkey);
}

/*
 * BIND_MW and LOCAL_INV: memory window operations on the sender's own
 * device, in send queue order (mw.c checks the rules).  Not on UD QPs.
 */
static enum frdma_outcome frdma_exec_local(struct frdma_qp *qp,
					   const struct frdma_sqe *sqe,
					   struct frdma_cqe *cqe)
{
	if (qp->ibqp.qp_type == IB_QPT_UD) {
		cqe->status = IB_WC_LOC_QP_OP_ERR;
		return FRDMA_DONE;
	}
	if (sqe->opcode == IB_UVERBS_WR_BIND_MW) {
		if (frdma_mw_bind(&qp->ibqp, sqe->bind.mw_rkey,
				  sqe->bind.new_rkey, sqe->bind.mr_lkey,
				  sqe->bind.addr, sqe->bind.length,
				  sqe->bind.access))
			cqe->status = IB_WC_MW_BIND_ERR;
	} else if (frdma_mw_invalidate(&qp->ibqp, sqe->invalidate_rkey,
				       false)) {
		cqe->status = IB_WC_LOC_QP_OP_ERR;
	}
	return FRDMA_DONE;
}

/*
 * Validate the SQE copy in qp->sqe, resolve its local SGEs and execute it.
 * Returns how it ended; @cqe has the status when FRDMA_DONE.
 */
static enum frdma_outcome frdma_exec(struct frdma_qp *qp,
				     struct frdma_dest *d,
				     struct frdma_cqe *cqe)
{
	const struct frdma_sqe *sqe = (const void *)qp->sqe;
	struct frdma_sgl *lsgl = &qp->lsgl;
	struct frdma_srq *xsrq = NULL;
	enum frdma_outcome out;
	int access = 0, err;
	bool inline_data, rc_only = false, no_sge = false;
	u64 len;

	switch (sqe->opcode) {
	case IB_UVERBS_WR_BIND_MW:
	case IB_UVERBS_WR_LOCAL_INV:
		/* Local operations: nothing reaches the destination. */
		return frdma_exec_local(qp, sqe, cqe);
	case IB_UVERBS_WR_ATOMIC_WRITE:
		/* The 8 bytes travel in the header: no SGEs, no inline. */
		rc_only = true;
		no_sge = true;
		inline_data = false;
		break;
	case IB_UVERBS_WR_RDMA_READ:
		access = IB_ACCESS_LOCAL_WRITE;
		inline_data = false;
		break;
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD:
		access = IB_ACCESS_LOCAL_WRITE;
		inline_data = false;
		break;
	case IB_UVERBS_WR_SEND:
	case IB_UVERBS_WR_SEND_WITH_IMM:
	case IB_UVERBS_WR_SEND_WITH_INV:
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		inline_data = sqe->flags & FRDMA_WQE_INLINE;
		break;
	default:
		cqe->status = IB_WC_LOC_QP_OP_ERR;
		return FRDMA_DONE;
	}
	if ((qp->ibqp.qp_type == IB_QPT_UD &&
	     sqe->opcode != IB_UVERBS_WR_SEND &&
	     sqe->opcode != IB_UVERBS_WR_SEND_WITH_IMM) ||
	    (qp->ibqp.qp_type == IB_QPT_UC && (access || rc_only)) ||
	    (qp->ibqp.qp_type == IB_QPT_XRC_INI &&
	     sqe->opcode == IB_UVERBS_WR_SEND_WITH_INV)) {
		/*
		 * UD sends only; UC has no READ or atomics; XRC no SEND with
		 * invalidate (its target QP has no PD to find the key in).
		 */
		cqe->status = IB_WC_LOC_QP_OP_ERR;
		return FRDMA_DONE;
	}

	if (no_sge) {
		len = sizeof(u64);
	} else if (inline_data) {
		/* max_inline_data fits the stride (frdma_create_qp()). */
		if (sqe->inline_len > qp->attr.cap.max_inline_data) {
			cqe->status = IB_WC_LOC_LEN_ERR;
			return FRDMA_DONE;
		}
		len = sqe->inline_len;
	} else {
		/* So does max_send_sge. */
		if (sqe->num_sge > qp->attr.cap.max_send_sge) {
			cqe->status = IB_WC_LOC_QP_OP_ERR;
			return FRDMA_DONE;
		}
		err = frdma_sgl_get(lsgl, qp->fdev, qp->ibqp.pd,
				    (const struct frdma_sge *)(sqe + 1),
				    sqe->num_sge, access, &len);
		if (err) {
			frdma_sgl_put(lsgl);
			cqe->status = IB_WC_LOC_PROT_ERR;
			return FRDMA_DONE;
		}
	}
	if (len > FRDMA_MAX_MSG_SIZE ||
	    (access && sqe->opcode != IB_UVERBS_WR_RDMA_READ &&
	     (len != sizeof(u64) || lsgl->n != 1))) {
		frdma_sgl_put(lsgl);
		cqe->status = IB_WC_LOC_LEN_ERR;
		return FRDMA_DONE;
	}

	d->bytes += len;
	if (qp->ibqp.qp_type == IB_QPT_UD) {
		frdma_exec_ud(qp, d, sqe, len, cqe);
		frdma_sgl_put(lsgl);
		return FRDMA_DONE;
	}
	if (!d->resolved)
		frdma_dest_resolve(qp, d);
	if (!d->fdev && frdma_wire_is_remote(qp)) {
		err = frdma_wire_post(qp, sqe, lsgl, len);
		frdma_sgl_put(lsgl);
		if (!err || err == -EBUSY)
			return err ? FRDMA_WIRE_BUSY : FRDMA_WIRE;
		cqe->status = IB_WC_LOC_QP_OP_ERR;
		return FRDMA_DONE;
	}
	if (!d->qp || !frdma_state_receives(READ_ONCE(d->qp->state))) {
		frdma_sgl_put(lsgl);
		/* UC: lost, as on the wire; RC: retried. */
		return qp->ibqp.qp_type == IB_QPT_UC ? FRDMA_DONE : FRDMA_RETRY;
	}
	if (qp->ibqp.qp_type == IB_QPT_XRC_INI) {
		/*
		 * The XRC SRQ the message names, in the target QP's XRC
		 * domain: otherwise an invalid request, as a responder NAKs
		 * it (the target QP fails too).
		 */
		xsrq = frdma_xrc_srq_get(d->fdev, sqe->xrc_srqn,
					 d->qp->ibqp.xrcd);
		if (!xsrq) {
			frdma_sgl_put(lsgl);
			cqe->status = IB_WC_REM_INV_REQ_ERR;
			frdma_qp_to_error(d->qp, IB_EVENT_QP_REQ_ERR);
			return FRDMA_DONE;
		}
	}
	out = frdma_resp_exec(qp, d->qp, xsrq, sqe, len, cqe, &d->rnr_delay);
	if (xsrq)
		frdma_srq_put(xsrq);
	frdma_sgl_put(lsgl);
	return out;
}

/* Wait @delay jiffies before retrying the held SQE. */
static void frdma_sq_hold(struct frdma_qp *qp, unsigned long delay)
{
	qp->sqe_held = true;
	frdma_sq_kick(qp, max(delay, 1UL));
}

/* The delay of a transport retry: 4.096 us << timeout (0: the longest). */
static unsigned long frdma_retry_delay(struct frdma_qp *qp)
{
	u8 timeout = READ_ONCE(qp->attr.timeout);

	if (!timeout || timeout > 20)
		timeout = 20;		/* about 4 s */
	return nsecs_to_jiffies(4096ULL << timeout);
}

/*
 * Run the send queue: execute what the provider has posted, in order,
 * until it is empty, an SQE waits for a retry, or the QP fails.  Under
 * qp->sq_mutex.  @resume is true when called by the retry work.
 */
static int frdma_sq_run(struct frdma_qp *qp, bool resume)
{
	struct frdma_dest d = {};
	struct frdma_cqe cqe;
	enum frdma_outcome out;
	enum ib_qp_state run_state;
	struct frdma_sqe *sqe;
	unsigned int n = 0;
	bool lost;
	int avail;

	lockdep_assert_held(&qp->sq_mutex);
	run_state = READ_ONCE(qp->state);
	switch (run_state) {
	case IB_QPS_RTS:
		break;
	case IB_QPS_ERR:
		qp->sqd_notify = false;
		frdma_wire_flush(qp);
		frdma_flush_sq(qp);
		/* RQEs posted in the error state are flushed here too. */
		frdma_flush_rq(qp);
		return 0;
	case IB_QPS_SQD:
		/*
		 * SQD starts nothing new, but the SQE held for a retry when
		 * the QP entered it is outstanding: it runs to completion.
		 */
		if (qp->sqe_held && resume)
			break;
		return 0;
	case IB_QPS_SQE:
		return 0;
	default:	/* nothing may be posted before RTS */
		return resume ? 0 : -EINVAL;
	}
	if (qp->sqe_held && !resume)
		return 0;	/* the retry work will carry on */

	avail = frdma_queue_user_avail(&qp->sq);
	if (avail < 0) {
		frdma_qp_to_error(qp, IB_EVENT_QP_FATAL);
		return -EINVAL;
	}
	if (run_state == IB_QPS_SQD)
		avail = min(avail, 1);
	sqe = (struct frdma_sqe *)qp->sqe;
	while (avail-- > 0) {
		/* A sender that found an error here may have failed us. */
		if (READ_ONCE(qp->state) != run_state) {
			if (READ_ONCE(qp->state) == IB_QPS_ERR) {
				frdma_wire_flush(qp);
				frdma_flush_sq(qp);
			}
			break;
		}
		/*
		 * The thread is being killed (a doorbell's) or the QP
		 * destroyed: the rest waits for a next pass, if any.
		 */
		if (frdma_wr_stopping(qp, NULL))
			break;
		/* The pass spent its budget: the QP's work runs the rest. */
		if (n && (n >= FRDMA_PASS_WQES || d.bytes >= FRDMA_PASS_BYTES)) {
			frdma_sq_kick(qp, 0);
			break;
		}
		n++;
		/* Its send CQ overran: the QP fails before it runs more. */
		if (frdma_cq_failed(qp->ibqp.send_cq)) {
			frdma_qp_to_error(qp, IB_EVENT_QP_FATAL);
			frdma_flush_sq(qp);
			break;
		}
		if (!qp->sqe_held) {
			memcpy(qp->sqe, frdma_queue_entry(&qp->sq, qp->sq.kidx),
			       1U << qp->sq.entry_shift);
			qp->retry_left = qp->attr.rnr_retry;
			qp->tretry_left = qp->attr.retry_cnt;
		}
		qp->sqe_held = false;

		memset(&cqe, 0, sizeof(cqe));
		out = frdma_exec(qp, &d, &cqe);
		if (out == FRDMA_ABORT)
			break;	/* not consumed: copied again next time */
		if (out == FRDMA_WIRE_BUSY) {
			qp->sqe_held = true;	/* until a completion frees room */
			break;
		}
		if (out == FRDMA_RNR) {
			if (!qp->retry_left) {
				cqe.status = IB_WC_RNR_RETRY_EXC_ERR;
			} else {
				if (qp->retry_left != 7)
					qp->retry_left--;
				frdma_sq_hold(qp, d.rnr_delay);
				break;
			}
		} else if (out == FRDMA_RETRY) {
			if (!qp->tretry_left) {
				cqe.status = IB_WC_RETRY_EXC_ERR;
			} else {
				qp->tretry_left--;
				frdma_sq_hold(qp, frdma_retry_delay(qp));
				break;
			}
		}

		qp->sq.kidx++;
		frdma_queue_publish(&qp->sq, false);
		lost = false;
		if (out == FRDMA_WIRE)
			continue;
		if (cqe.status != IB_WC_SUCCESS || qp->sq_sig_all ||
		    (sqe->flags & FRDMA_WQE_SIGNALED)) {
			cqe.wr_id = sqe->wr_id;
			cqe.qp_num = qp->ibqp.qp_num;
			cqe.opcode = frdma_sqe_wc_opcode(sqe->opcode);
			if (cqe.status != IB_WC_SUCCESS)
				cqe.byte_len = 0;
			lost = frdma_cq_post(to_fcq(qp->ibqp.send_cq), &cqe,
					     cqe.status != IB_WC_SUCCESS);
		}
		if (cqe.status != IB_WC_SUCCESS || lost) {
			/* Its send CQ overran: a fatal error of the QP. */
			frdma_qp_to_error(qp, lost ? IB_EVENT_QP_FATAL : 0);
			frdma_flush_sq(qp);
			break;
		}
		/* A ring of large SQEs is long work: let others run between. */
		cond_resched();
	}
	frdma_dest_release(&d);
	/* SQD: the SQE that was outstanding has completed. */
	if (qp->sqd_notify && !qp->sqe_held &&
	    READ_ONCE(qp->state) == IB_QPS_SQD) {
		qp->sqd_notify = false;
		frdma_qp_event(qp, IB_EVENT_SQ_DRAINED);
	}
	return 0;
}

/*
 * Disarm the poller: clear the flag, then fence, so that whoever runs the
 * send queue next under sq_mutex (the poller's last pass, a flush, a reset)
 * loads a prod that covers every SQE whose provider saw the flag set.
 */
static void frdma_sq_poll_clear(struct frdma_qp *qp)
{
	WRITE_ONCE(qp->poll_on, false);
	WRITE_ONCE(qp->sq.hdr->sq_flags, 0);
	/* Pairs with the provider's fence between its prod store and flag load. */
	smp_mb();
}

/**
 * frdma_sq_poll_stop - disarm a QP's send queue poller
 * @qp: the QP, whose sq_mutex the caller holds
 *
 * The poller's work may still be queued or running; it finds itself
 * disarmed at its next pass and returns without touching the queue.
 * destroy_qp then waits for it with cancel_work_sync().
 */
void frdma_sq_poll_stop(struct frdma_qp *qp)
{
	lockdep_assert_held(&qp->sq_mutex);
	if (qp->poll_on)
		frdma_sq_poll_clear(qp);
}

/*
 * After a doorbell's pass, under sq_mutex: arm the poller when doorbells
 * have come back to back long enough.  RC only; UD and UC keep the
 * synchronous doorbell.
 */
static void frdma_sq_poll_consider(struct frdma_qp *qp)
{
	u64 now = local_clock();
	bool soon = now - qp->last_db < FRDMA_POLL_GAP_NS;

	qp->last_db = now;
	if (qp->poll_on || (qp->ibqp.qp_type != IB_QPT_RC &&
			    qp->ibqp.qp_type != IB_QPT_XRC_INI) ||
	    !READ_ONCE(sq_poll))
		return;
	if (!soon) {
		qp->poll_streak = 0;
		return;
	}
	if (++qp->poll_streak < (FRDMA_POLL_STREAK << qp->poll_shift))
		return;
	qp->poll_streak = 0;
	if (READ_ONCE(qp->state) != IB_QPS_RTS || qp->sqe_held)
		return;
	WRITE_ONCE(qp->poll_on, true);
	WRITE_ONCE(qp->sq.hdr->sq_flags, FRDMA_SQ_POLLED);
	queue_work(frdma_poll_wq, &qp->poll_work);
}

/* Whether the poller should give its CPU up now. */
static bool frdma_sq_poll_yield(void)
{
	return need_resched() || !single_task_running();
}

/**
 * frdma_sq_poll_work - the send queue poller
 * @work: qp->poll_work
 *
 * Runs the send queue, pass after pass under sq_mutex, while the provider
 * keeps posting (and so skips the doorbell, FRDMA_SQ_POLLED being set).
 * Between passes it watches the producer index without the mutex, which
 * is only a hint: each pass loads it again.  It stops after
 * FRDMA_POLL_IDLE_NS without work, as soon as another task wants the CPU,
 * when the QP leaves RTS or holds an SQE for a retry (the retry work
 * carries on), or when modify_qp or destroy_qp disarmed it.
 */
void frdma_sq_poll_work(struct work_struct *work)
{
	struct frdma_qp *qp = container_of(work, struct frdma_qp, poll_work);
	u64 idle_since = local_clock();
	unsigned int done = 0, spins;
	bool stop = false;
	u32 kidx;

	for (;;) {
		mutex_lock(&qp->sq_mutex);
		if (!qp->poll_on) {	/* disarmed: not ours any more */
			mutex_unlock(&qp->sq_mutex);
			return;
		}
		kidx = qp->sq.kidx;
		frdma_sq_run(qp, false);
		if (qp->sq.kidx != kidx) {
			done += qp->sq.kidx - kidx;
			idle_since = local_clock();
		}
		if (stop || READ_ONCE(qp->state) != IB_QPS_RTS ||
		    qp->sqe_held || READ_ONCE(qp->stopping) ||
		    frdma_sq_poll_yield())
			break;
		kidx = qp->sq.kidx;
		mutex_unlock(&qp->sq_mutex);

		/* Wait for the next SQE, for a while. */
		for (spins = 0; !stop; spins++) {
			if (READ_ONCE(qp->sq.hdr->prod) != kidx)
				break;
			if (!READ_ONCE(qp->poll_on) || frdma_sq_poll_yield() ||
			    ((spins & 63) == 63 &&
			     local_clock() - idle_since > FRDMA_POLL_IDLE_NS))
				stop = true;
			cpu_relax();
		}
		cond_resched();
	}

	/* Stop: nothing the provider posted before it saw the flag clear is left. */
	frdma_sq_poll_clear(qp);
	frdma_sq_run(qp, false);
	if (done >= FRDMA_POLL_USEFUL)
		qp->poll_shift = 0;
	else if (qp->poll_shift < FRDMA_POLL_MAX_SHIFT)
		qp->poll_shift++;
	mutex_unlock(&qp->sq_mutex);
}

/**
 * frdma_sq_poll_init - create the pollers' workqueue
 *
 * The pollers run on a workqueue of their own, so that many armed QPs
 * never hold up other users of the system's unbound workqueue.
 *
 * Return: 0 or -ENOMEM.
 */
int frdma_sq_poll_init(void)
{
	frdma_poll_wq = alloc_workqueue("frdma_sq_poll", WQ_UNBOUND, 0);
	return frdma_poll_wq ? 0 : -ENOMEM;
}

/**
 * frdma_sq_poll_exit - destroy the pollers' workqueue
 *
 * Every QP is destroyed by then, and destroy_qp waits for its poller.
 */
void frdma_sq_poll_exit(void)
{
	destroy_workqueue(frdma_poll_wq);
}

/**
 * frdma_sq_doorbell - the provider rang a QP's send doorbell
 * @qp: the QP
 *
 * Context: process; takes qp->sq_mutex.
 * Return: 0, -EINVAL if the QP is not ready to send or its send ring is
 * broken (the QP is then in the error state), or -EINTR if the caller was
 * killed while waiting for the send queue.
 */
int frdma_sq_doorbell(struct frdma_qp *qp)
{
	int err;

	/* Another thread may be in a long copy: a dying caller need not wait. */
	if (mutex_lock_killable(&qp->sq_mutex))
		return -EINTR;
	err = frdma_sq_run(qp, false);
	if (!err)
		frdma_sq_poll_consider(qp);
	mutex_unlock(&qp->sq_mutex);
	return err;
}

/**
 * frdma_sq_retry_work - run a send queue from a workqueue
 * @work: qp->retry_work
 *
 * Retries the held SQE after an RNR or transport retry delay, resumes the
 * queue after a transition to RTS, and flushes it after another QP moved
 * this one to the error state.
 */
void frdma_sq_retry_work(struct work_struct *work)
{
	struct frdma_qp *qp = container_of(to_delayed_work(work),
					   struct frdma_qp, retry_work);

	mutex_lock(&qp->sq_mutex);
	frdma_sq_run(qp, true);
	mutex_unlock(&qp->sq_mutex);
}
