// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: the data path.
 *
 * The provider writes SQEs into a QP's send queue and rings the doorbell (a
 * post_send with no work request).  The doorbell runs the send queue
 * synchronously, in the caller's context, under the QP's sq_mutex: it
 * loads the provider's producer index once, and for each new SQE copies
 * the whole entry once into qp->sqe, validates that copy and executes it
 * against the destination QP, which it finds by the destination GID (the
 * device) and QP number (the QP in that device's table).  Nothing read
 * from a ring is used before it has been copied and checked.
 *
 * Execution touches only registered memory: every SGE and every remote
 * range is looked up once by key (frdma_mr_get()), checked for PD, access
 * and bounds (frdma_mr_check()) and then copied run by run
 * (frdma_mr_copy()).  The receiver's side of a SEND is an RQE consumed
 * from the target's receive queue under its rq_mutex.
 *
 * Outcomes, as IBTA defines them for a reliable connection:
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
 * everything queued with IB_WC_WR_FLUSH_ERR.
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

#include <linux/ip.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/sched/stat.h>
#include <linux/sizes.h>
#include <net/checksum.h>
#include <net/ipv6.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_cache.h>

#include "mr.h"
#include "qp.h"
#include "wire.h"
#include "wire_ud.h"

/* Copy at most this much between two chances to reschedule or stop. */
#define FRDMA_COPY_STEP		SZ_4M

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

enum frdma_outcome {
	FRDMA_DONE,		/* completed, successfully or not */
	FRDMA_RNR,		/* receiver not ready: retry later */
	FRDMA_RETRY,		/* target unreachable: retry later */
	FRDMA_ABORT,		/* stopped midway: the SQE is run again */
	FRDMA_WIRE,		/* on the wire: completes later (wire_req.c) */
	FRDMA_WIRE_BUSY,	/* the wire has no room: run again later */
};

/**
 * struct frdma_dest - the destination of one pass over a send queue
 * @resolved: the lookup was done (it is done once per pass)
 * @fdev: the target's device, with a registration reference, or NULL
 * @qp: the target QP, referenced, or NULL when unreachable
 * @rnr_delay: jiffies to wait before an RNR retry
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

/* IBTA's RNR NAK timer codes, in microseconds (code 0 is the longest). */
static const u32 frdma_rnr_usecs[32] = {
	655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960,
	1280, 1920, 2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720,
	40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

static u8 frdma_sqe_wc_opcode(u8 opcode)
{
	return opcode < ARRAY_SIZE(frdma_wc_opcode) ?
	       frdma_wc_opcode[opcode] : IB_UVERBS_WC_SEND;
}

/* Whether @ibcq overran and refuses completions (cq.c). */
static bool frdma_cq_failed(struct ib_cq *ibcq)
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

/* Whether a QP in @state accepts incoming requests (IBTA: RTR and on). */
static bool frdma_state_receives(enum ib_qp_state state)
{
	return state == IB_QPS_RTR || state == IB_QPS_RTS ||
	       state == IB_QPS_SQD || state == IB_QPS_SQE;
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
 * Scatter/gather lists.
 */

static void frdma_sgl_put(struct frdma_sgl *sgl)
{
	while (sgl->n)
		frdma_mr_put(sgl->mr[--sgl->n]);
}

/* Add [@addr, @addr + @len) of the MR named @key to @sgl, checked. */
static int frdma_sgl_add(struct frdma_sgl *sgl, struct frdma_dev *fdev,
			 struct ib_pd *pd, u32 key, u64 addr, u64 len,
			 int access)
{
	struct frdma_mr *mr;

	mr = frdma_mr_get(fdev, key);
	if (!mr)
		return -ENOENT;
	sgl->mr[sgl->n] = mr;
	sgl->addr[sgl->n] = addr;
	sgl->len[sgl->n] = len;
	sgl->n++;
	return frdma_mr_check(mr, pd, addr, len, access);
}

/*
 * Build @sgl from @n SGEs of a validated WQE copy.  Zero-length SGEs are
 * skipped without a lookup.  On error the caller still puts @sgl.
 */
static int frdma_sgl_get(struct frdma_sgl *sgl, struct frdma_dev *fdev,
			 struct ib_pd *pd, const struct frdma_sge *sge, u32 n,
			 int access, u64 *total)
{
	u32 i;
	int err;

	*total = 0;
	for (i = 0; i < n; i++) {
		if (!sge[i].length)
			continue;
		*total += sge[i].length;
		err = frdma_sgl_add(sgl, fdev, pd, sge[i].lkey, sge[i].addr,
				    sge[i].length, access);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Drop the first @n bytes of @sgl (the room a UD receive leaves for the
 * GRH), keeping every entry's MR reference; entries may become empty.
 */
static void frdma_sgl_skip(struct frdma_sgl *sgl, u32 n)
{
	u32 i, k;

	for (i = 0; i < sgl->n && n; i++) {
		k = min(n, sgl->len[i]);
		sgl->addr[i] += k;
		sgl->len[i] -= k;
		n -= k;
	}
}

/*
 * Whether the work request in progress on @qp (towards @t, or NULL) must
 * stop midway: the thread running it is being killed (a doorbell's), or
 * @qp or @t is being destroyed.
 */
static bool frdma_exec_stop(const struct frdma_qp *qp,
			    const struct frdma_qp *t)
{
	return fatal_signal_pending(current) || READ_ONCE(qp->stopping) ||
	       (t && READ_ONCE(t->stopping));
}

/*
 * Copy the first @len bytes of @src to @dst, both long enough, for @qp's
 * work request towards @t.  Returns 0, or -EINTR when it stopped midway
 * (frdma_exec_stop()).
 */
static int frdma_sgl_copy(struct frdma_sgl *dst, struct frdma_sgl *src,
			  u64 len, const struct frdma_qp *qp,
			  const struct frdma_qp *t)
{
	u64 doff = 0, soff = 0, since = 0, n;
	u32 di = 0, si = 0;

	while (len) {
		n = min3(len, dst->len[di] - doff, src->len[si] - soff);
		n = min_t(u64, n, FRDMA_COPY_STEP);
		if (n)
			frdma_mr_copy(dst->mr[di], dst->addr[di] + doff,
				      src->mr[si], src->addr[si] + soff, n);
		len -= n;
		doff += n;
		soff += n;
		if (doff == dst->len[di]) {
			di++;
			doff = 0;
		}
		if (soff == src->len[si]) {
			si++;
			soff = 0;
		}
		since += n;
		if (len && since >= FRDMA_COPY_STEP) {
			if (frdma_exec_stop(qp, t))
				return -EINTR;
			cond_resched();
			since = 0;
		}
	}
	return 0;
}

/* Copy @len bytes of kernel memory (inline data) to @dst. */
static void frdma_sgl_write(struct frdma_sgl *dst, const u8 *buf, u32 len)
{
	u32 i, n;

	for (i = 0; len; i++) {
		n = min(len, dst->len[i]);
		if (n)
			frdma_mr_write(dst->mr[i], dst->addr[i], buf, n);
		buf += n;
		len -= n;
	}
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

/*
 * Execution.
 */

/**
 * struct frdma_rx - the receiver's side of a message that consumes an RQE
 * @status: the receiver's completion status
 * @rqe_taken: an RQE was consumed (a receive completion is due)
 * @wr_id: its wr_id
 * @aborted: the copy stopped midway (frdma_exec_stop())
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
 * Take the next RQE of @t, under frdma_rq_lock(), into frdma_rqe().
 * Returns 0, -EAGAIN when there is none, or -EINVAL when the ring is
 * broken.  The new cons is published with the receive completion
 * (frdma_rq_complete()) or by frdma_rq_unlock(), so that a message
 * stopped midway can give the RQE back (frdma_rq_queue()->kidx--).
 */
static int frdma_rqe_take(struct frdma_qp *t, struct frdma_srq *srq)
{
	int avail;

	if (srq)
		return frdma_srq_take(srq);
	avail = frdma_queue_user_avail(&t->rq);

	if (avail <= 0)
		return avail ? avail : -EAGAIN;
	memcpy(t->rqe, frdma_queue_entry(&t->rq, t->rq.kidx),
	       1U << t->rq.entry_shift);
	t->rq.kidx++;
	return 0;
}

/*
 * Deliver a SEND (@write false) or the immediate of an RDMA WRITE with
 * immediate (@write true, the data already written) to @t, whose receive
 * queue the caller holds (frdma_rq_lock()).  Returns the sender's status, or -EAGAIN through
 * @rnr when no RQE was posted.
 */
static enum ib_wc_status frdma_deliver(struct frdma_qp *qp, struct frdma_qp *t,
				       struct frdma_srq *srq,
				       const struct frdma_sqe *sqe, u64 len,
				       bool write, struct frdma_rx *rx,
				       bool *rnr)
{
	const struct frdma_rqe *rqe = frdma_rqe(t, srq);
	struct frdma_sgl *rsgl = &qp->rsgl;
	u64 room;
	int err;

	/* A receive CQ in error: the receiver's QP fails, nothing is taken. */
	if (frdma_cq_failed(frdma_rx_cq(t, srq))) {
		rx->status = IB_WC_GENERAL_ERR;
		return IB_WC_REM_OP_ERR;
	}
	err = frdma_rqe_take(t, srq);
	if (err == -EAGAIN) {
		*rnr = true;
		return IB_WC_SUCCESS;
	}
	if (err) {
		rx->status = IB_WC_LOC_QP_OP_ERR;	/* t's ring is broken */
		return IB_WC_REM_OP_ERR;
	}
	rx->rqe_taken = true;
	rx->wr_id = rqe->wr_id;
	if (write)
		return IB_WC_SUCCESS;

	if (rqe->num_sge > frdma_rq_max_sge(t, srq)) {
		rx->status = IB_WC_LOC_QP_OP_ERR;
		return IB_WC_REM_OP_ERR;
	}
	err = frdma_sgl_get(rsgl, t->fdev, frdma_rx_pd(t, srq),
			    (const struct frdma_sge *)(rqe + 1), rqe->num_sge,
			    IB_ACCESS_LOCAL_WRITE, &room);
	if (err) {
		rx->status = IB_WC_LOC_PROT_ERR;
		return IB_WC_REM_OP_ERR;
	}
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
 * The remote range of an RDMA or atomic operation, checked: the sender's
 * status, IB_WC_REM_INV_REQ_ERR for an operation the responder QP does not
 * allow (as rxe), IB_WC_REM_ACCESS_ERR for a key, PD, access or bounds
 * violation.  The rkey may name an MR or a memory window
 * (frdma_rkey_get()); either way the range lands in qp->rsgl as an MR's.
 */
static enum ib_wc_status frdma_remote_get(struct frdma_qp *qp,
					  struct frdma_qp *t,
					  struct frdma_srq *srq, u32 rkey,
					  u64 addr, u64 len, int access)
{
	struct frdma_sgl *rsgl = &qp->rsgl;
	struct frdma_mr *mr;

	if (!(READ_ONCE(t->attr.qp_access_flags) & access))
		return IB_WC_REM_INV_REQ_ERR;
	if (!len)	/* IBTA: a zero-length access checks no key */
		return IB_WC_SUCCESS;
	if (frdma_rkey_get(t->fdev, rkey, &t->ibqp, frdma_rx_pd(t, srq), addr,
			   len, access, &mr))
		return IB_WC_REM_ACCESS_ERR;
	rsgl->mr[rsgl->n] = mr;
	rsgl->addr[rsgl->n] = addr;
	rsgl->len[rsgl->n] = len;
	rsgl->n++;
	return IB_WC_SUCCESS;
}

/* Execute one validated opcode against the target; fills @cqe's status. */
static enum frdma_outcome frdma_exec_remote(struct frdma_qp *qp,
					    struct frdma_dest *d,
					    struct frdma_srq *xsrq,
					    const struct frdma_sqe *sqe,
					    u64 len, struct frdma_cqe *cqe)
{
	struct frdma_qp *t = d->qp;
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
		status = frdma_remote_get(qp, t, srq, sqe->rdma.rkey,
					  sqe->rdma.remote_addr, len,
					  IB_ACCESS_REMOTE_WRITE);
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
		status = frdma_remote_get(qp, t, srq, sqe->rdma.rkey,
					  sqe->rdma.remote_addr, len,
					  IB_ACCESS_REMOTE_READ);
		if (status != IB_WC_SUCCESS)
			break;
		if (len && frdma_sgl_copy(&qp->lsgl, rsgl, len, qp, t))
			rx.aborted = true;
		cqe->byte_len = len;
		break;
	case IB_UVERBS_WR_ATOMIC_WRITE:
		/* IBTA oA19-28: an aligned 8-byte RDMA WRITE, done at once. */
		if (sqe->atomic.remote_addr & (sizeof(u64) - 1)) {
			status = IB_WC_REM_INV_REQ_ERR;
			break;
		}
		status = frdma_remote_get(qp, t, srq, sqe->atomic.rkey,
					  sqe->atomic.remote_addr, sizeof(u64),
					  IB_ACCESS_REMOTE_WRITE);
		if (status != IB_WC_SUCCESS)
			break;
		if (frdma_mr_atomic(rsgl->mr[0], sqe->atomic.remote_addr,
				    sqe->opcode, sqe->atomic.compare_add, 0,
				    &orig))
			status = IB_WC_REM_ACCESS_ERR;
		break;
	default:	/* the atomics */
		if (sqe->atomic.remote_addr & (sizeof(u64) - 1)) {
			status = IB_WC_REM_INV_REQ_ERR;
			break;
		}
		status = frdma_remote_get(qp, t, srq, sqe->atomic.rkey,
					  sqe->atomic.remote_addr, sizeof(u64),
					  IB_ACCESS_REMOTE_ATOMIC);
		if (status != IB_WC_SUCCESS)
			break;
		if (frdma_mr_atomic(rsgl->mr[0], sqe->atomic.remote_addr,
				    sqe->opcode, sqe->atomic.compare_add,
				    sqe->atomic.swap, &orig)) {
			status = IB_WC_REM_ACCESS_ERR;
			break;
		}
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

		d->rnr_delay = usecs_to_jiffies(frdma_rnr_usecs[timer]);
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
	const struct frdma_rqe *rqe;
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
	err = frdma_rqe_take(t, *srq);
	if (err) {
		frdma_rq_unlock(t, *srq);
		if (err != -EAGAIN)
			frdma_qp_to_error(t, IB_EVENT_QP_FATAL);
		return false;
	}
	rqe = frdma_rqe(t, *srq);
	rcqe->wr_id = rqe->wr_id;
	rcqe->qp_num = t->ibqp.qp_num;
	rcqe->opcode = FRDMA_WC_RECV;
	rcqe->status = IB_WC_SUCCESS;
	if (rqe->num_sge > frdma_rq_max_sge(t, *srq)) {
		rcqe->status = IB_WC_LOC_QP_OP_ERR;
	} else {
		err = frdma_sgl_get(rsgl, t->fdev, t->ibqp.pd,
				    (const struct frdma_sge *)(rqe + 1),
				    rqe->num_sge, IB_ACCESS_LOCAL_WRITE, &room);
		if (err)
			rcqe->status = IB_WC_LOC_PROT_ERR;
		else if (room < len + FRDMA_GRH_SIZE)
			rcqe->status = IB_WC_LOC_LEN_ERR;
	}
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
static void frdma_ud_deliver(struct frdma_qp *qp, struct frdma_qp *t,
			     const struct frdma_sqe *sqe,
			     const struct rdma_ah_attr *ah,
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

	/* A multicast GID: every member in the fabric (mcast.c). */
	if (rdma_is_multicast_addr((struct in6_addr *)ah.grh.dgid.raw)) {
		mqps = frdma_mcast_members(qp, &ah.grh.dgid, &n);
		for (i = 0; i < n; i++)
			if (mqps[i]->ibqp.qp_type == IB_QPT_UD)
				frdma_ud_deliver(qp, mqps[i], sqe, &ah, &sgid,
						 len, qkey);
		frdma_mcast_members_put(mqps, n);
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
	if (!d->fdev && qp->fdev->wire) {	/* another host: wire_ud.c */
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
		frdma_wire_ud_send(qp->fdev, &sgid, &ah, sqe->ud.remote_qpn,
				   &m);
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

/**
 * frdma_ud_recv_wire - deliver a datagram from another host to a UD QP
 * @t: the UD QP, referenced by the caller
 * @rsgl: an empty scatter/gather list for the receive buffers
 * @grh: the 40 bytes of the GRH area (frdma_build_grh())
 * @m: the datagram, its payload in @m->buf
 *
 * The datagram is dropped, as frdma_exec_ud() drops a local one, when @t
 * does not receive, its Q_Key differs or no receive is posted.
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
	out = frdma_exec_remote(qp, d, xsrq, sqe, len, cqe);
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
		if (frdma_exec_stop(qp, NULL))
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
