/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma queue pairs, address handles and the data path that executes
 * their work requests.
 *
 * Locks, outermost first (Documentation/driver.rst, "Queue pairs and the
 * data path"):
 *
 *   qp->sq_mutex   the send queue: its consumer index, the held SQE, the
 *                  RNR/retry state; taken by the doorbell, the retry work,
 *                  modify_qp and destroy_qp of that QP
 *   qp->rq_mutex   the receive queue: its consumer index and RQE buffer;
 *                  taken by whoever delivers to the QP (a sender holding
 *                  its own sq_mutex) and by flushes.  A QP on an SRQ
 *                  uses the SRQ's mutex (srq->mutex) instead.
 *   cq->lock       (cq.c) taken by frdma_cq_post()
 *   qp->lock       a leaf spinlock: the state and the attributes
 *
 * A sender holds its own sq_mutex, then at most one target's rq_mutex,
 * then CQ locks.  Nobody takes an sq_mutex while holding any other QP
 * lock, and nobody waits for anything with a QP lock held.
 */
#ifndef _FRDMA_QP_H
#define _FRDMA_QP_H

#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/sched/signal.h>
#include <linux/workqueue.h>

#include "frdma.h"

struct frdma_mr;
struct frdma_gsi;
struct frdma_wqp;

/**
 * struct frdma_sgl - the memory a work request touches on one side
 * @n: entries used
 * @mr: the MR of each entry, referenced (frdma_mr_get())
 * @addr: the first byte of each entry (iova)
 * @len: the bytes of each entry, never 0
 */
struct frdma_sgl {
	u32 n;
	struct frdma_mr *mr[FRDMA_MAX_SGE];
	u64 addr[FRDMA_MAX_SGE];
	u32 len[FRDMA_MAX_SGE];
};

/**
 * struct frdma_qp - a queue pair
 * @ibqp: the core's QP
 * @fdev: the device
 * @ref: references: one for the QPN table, one per frdma_qp_get()
 * @free: completed when @ref drops to zero
 * @lock: protects @state and the attributes below it (a leaf lock)
 * @state: the IBTA state; written under @lock (and by modify_qp also under
 *	   @sq_mutex), read with READ_ONCE() where @lock is not held
 * @attr: the attributes set by modify_qp (ah_attr without its sgid_attr)
 * @sgid: the source GID (from the AV's sgid_attr)
 * @sq_sig_all: every send WR is signalled
 * @sq_mutex: see the lock order above
 * @sq: the send queue ring
 * @sqe: the copy of the SQE being executed (under @sq_mutex):
 *	FRDMA_MAX_WQE_SIZE bytes allocated with the QP, the first half of
 *	one allocation with @rqe (kept out of the QP so that it fits a
 *	2 KiB slab object, not a 4 KiB one)
 * @sqe_held: @sqe holds the SQE at @sq.kidx, copied before an RNR or
 *	      transport retry wait; it is not copied again
 * @sqd_notify: the QP entered SQD, asking for IB_EVENT_SQ_DRAINED, while
 *		@sqe_held: the event is due when that SQE has completed
 * @retry_left: RNR retries left for the held SQE (7: infinite)
 * @tretry_left: transport retries left for the held SQE
 * @lsgl: the local side of the SQE being executed (under @sq_mutex)
 * @rsgl: its remote side: the target's MR or receive buffers (likewise)
 * @retry_work: runs the send queue after a retry delay, and flushes it
 *		when another QP moved this one to the error state
 * @poll_work: the send queue poller (req.c), armed by back-to-back
 *	       doorbells: runs the send queue while the provider keeps
 *	       posting, so the provider need not ring the doorbell
 * @poll_on: the poller is armed and FRDMA_SQ_POLLED is set in the ring
 *	     (under @sq_mutex)
 * @poll_streak: doorbells in a row that came soon after the previous one
 *		 (under @sq_mutex)
 * @poll_shift: backoff: the poller is armed after FRDMA_POLL_STREAK <<
 *		@poll_shift such doorbells (under @sq_mutex)
 * @last_db: local_clock() of the last doorbell (under @sq_mutex)
 * @rq_mutex: see the lock order above
 * @rq: the receive queue ring
 * @rqe: the copy of the RQE being consumed (under @rq_mutex):
 *	FRDMA_MAX_WQE_SIZE bytes, the second half of @sqe's allocation
 * @stopping: destroy_qp has begun: work requests of this QP, and those
 *	      towards it, stop between copy steps
 * @gsi: the kernel queues of the GSI QP (gsi.c), else NULL; a GSI QP has
 *	 no rings and uses none of the ring fields above
 * @wire: the RoCE v2 state of an RC QP whose peer is outside this kernel
 *	  (wire.h), else NULL; set once, at RTR, freed by destroy_qp
 * @mcast: the multicast groups the QP is a member of (mcast.c, under its
 *	   mutex)
 */
struct frdma_qp {
	struct ib_qp ibqp;
	struct frdma_dev *fdev;
	refcount_t ref;
	struct completion free;

	spinlock_t lock;	/* see above */
	enum ib_qp_state state;
	struct ib_qp_attr attr;
	union ib_gid sgid;
	bool sq_sig_all;

	struct mutex sq_mutex;	/* see above */
	struct frdma_queue sq;
	u64 *sqe;
	bool sqe_held;
	bool sqd_notify;
	u8 retry_left;
	u8 tretry_left;
	struct frdma_sgl lsgl;
	struct frdma_sgl rsgl;
	struct delayed_work retry_work;
	struct work_struct poll_work;
	bool poll_on;
	u8 poll_shift;
	u16 poll_streak;
	u64 last_db;

	struct mutex rq_mutex;	/* see above */
	struct frdma_queue rq;
	u64 *rqe;

	bool stopping;
	struct frdma_gsi *gsi;
	struct frdma_wqp *wire;
	u32 mcast;
};

/**
 * struct frdma_srq - a shared receive queue
 * @ibsrq: the core's SRQ
 * @mutex: the ring's consumer index, @rqe and @limit; taken, like a QP's
 *	   rq_mutex, by whoever delivers to a QP on this SRQ (see the lock
 *	   order above: an SRQ's mutex stands where a QP's rq_mutex would)
 * @rq: the ring, formatted like a QP's RQ
 * @rqe: the copy of the RQE being consumed (under @mutex)
 * @max_sge: SGEs an entry may carry
 * @limit: the armed limit (IB_EVENT_SRQ_LIMIT_REACHED when fewer entries
 *	   remain after one is taken), 0 when not armed (under @mutex)
 * @broken: the ring's producer index was found out of range and
 *	    IB_EVENT_SRQ_ERR reported (under @mutex)
 * @ref: an XRC SRQ's references: one for the SRQ number table, one per
 *	 frdma_xrc_srq_get()
 * @free: completed when @ref drops to zero
 *
 * An XRC SRQ (srq_type IB_SRQT_XRC) is found by its number, which the
 * sender names in each message, through the device's srq_table; its
 * completions go to ibsrq.ext.cq and its PD checks the receive buffers
 * and the remote keys of the messages it takes.
 */
struct frdma_srq {
	struct ib_srq ibsrq;
	refcount_t ref;
	struct completion free;
	struct mutex mutex;	/* see above */
	struct frdma_queue rq;
	u64 rqe[FRDMA_MAX_WQE_SIZE / sizeof(u64)];
	u32 max_sge;
	u32 limit;
	bool broken;
};

/**
 * struct frdma_xrcd - an XRC domain (srq.c)
 * @ibxrcd: the core's XRC domain, which holds all its state
 */
struct frdma_xrcd {
	struct ib_xrcd ibxrcd;
};

static inline struct frdma_srq *to_fsrq(struct ib_srq *ibsrq)
{
	return container_of(ibsrq, struct frdma_srq, ibsrq);
}

/**
 * struct frdma_ah - an address handle
 * @ibah: the core's AH
 * @attr: the address vector (without its sgid_attr reference)
 * @sgid: the source GID its sgid_attr named
 * @ah_num: the number user space puts in a UD SQE
 * @user: created by user space (counted in the debugfs counters)
 */
struct frdma_ah {
	struct ib_ah ibah;
	struct rdma_ah_attr attr;
	union ib_gid sgid;
	u32 ah_num;
	bool user;
};

static inline struct frdma_qp *to_fqp(struct ib_qp *ibqp)
{
	return container_of(ibqp, struct frdma_qp, ibqp);
}

static inline struct frdma_ah *to_fah(struct ib_ah *ibah)
{
	return container_of(ibah, struct frdma_ah, ibah);
}

/* qp.c */
int frdma_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
		    struct ib_udata *udata);
int frdma_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		    struct ib_udata *udata);
int frdma_query_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		   struct ib_qp_init_attr *init);
int frdma_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata);
int frdma_post_send(struct ib_qp *ibqp, const struct ib_send_wr *wr,
		    const struct ib_send_wr **bad_wr);
int frdma_post_recv(struct ib_qp *ibqp, const struct ib_recv_wr *wr,
		    const struct ib_recv_wr **bad_wr);
void frdma_qp_table_init(struct frdma_dev *fdev);
void frdma_qp_table_destroy(struct frdma_dev *fdev);
struct frdma_qp *frdma_qp_get(struct frdma_dev *fdev, u32 qpn);
void frdma_qp_put(struct frdma_qp *qp);
void frdma_qp_event(struct frdma_qp *qp, enum ib_event_type type);

/* srq.c */
int frdma_create_srq(struct ib_srq *ibsrq, struct ib_srq_init_attr *init,
		     struct ib_udata *udata);
int frdma_modify_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr,
		     enum ib_srq_attr_mask mask, struct ib_udata *udata);
int frdma_query_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr);
int frdma_destroy_srq(struct ib_srq *ibsrq, struct ib_udata *udata);
int frdma_srq_take(struct frdma_srq *srq);
struct frdma_srq *frdma_xrc_srq_get(struct frdma_dev *fdev, u32 srqn,
				    struct ib_xrcd *xrcd);
void frdma_srq_put(struct frdma_srq *srq);
int frdma_alloc_xrcd(struct ib_xrcd *ibxrcd, struct ib_udata *udata);
int frdma_dealloc_xrcd(struct ib_xrcd *ibxrcd, struct ib_udata *udata);

/*
 * The data path: req.c (the requester), resp.c (the responder), comp.c
 * (completions and the error state); Documentation/driver.rst says why
 * it is split so.
 */

/* How the requester's handling of one work request ended. */
enum frdma_outcome {
	FRDMA_DONE,		/* completed, successfully or not */
	FRDMA_RNR,		/* receiver not ready: retry later */
	FRDMA_RETRY,		/* target unreachable: retry later */
	FRDMA_ABORT,		/* stopped midway: the SQE is run again */
	FRDMA_WIRE,		/* on the wire: completes later (wire_req.c) */
	FRDMA_WIRE_BUSY,	/* the wire has no room: run again later */
};

/* Whether a QP in @state accepts incoming requests (IBTA: RTR and on). */
static inline bool frdma_state_receives(enum ib_qp_state state)
{
	return state == IB_QPS_RTR || state == IB_QPS_RTS ||
	       state == IB_QPS_SQD || state == IB_QPS_SQE;
}

/*
 * Whether the work request in progress on @qp (towards @t, or NULL) must
 * stop midway: the thread running it is being killed (a doorbell's), or
 * @qp or @t is being destroyed.
 */
static inline bool frdma_wr_stopping(const struct frdma_qp *qp,
				     const struct frdma_qp *t)
{
	return fatal_signal_pending(current) || READ_ONCE(qp->stopping) ||
	       (t && READ_ONCE(t->stopping));
}

/* mr.c: scatter/gather lists */
void frdma_sgl_put(struct frdma_sgl *sgl);
int frdma_sgl_get(struct frdma_sgl *sgl, struct frdma_dev *fdev,
		  struct ib_pd *pd, const struct frdma_sge *sge, u32 n,
		  int access, u64 *total);
void frdma_sgl_skip(struct frdma_sgl *sgl, u32 n);
int frdma_sgl_copy(struct frdma_sgl *dst, struct frdma_sgl *src, u64 len,
		   const struct frdma_qp *qp, const struct frdma_qp *t);
void frdma_sgl_write(struct frdma_sgl *dst, const u8 *buf, u32 len);

/* req.c: the requester */
int frdma_sq_doorbell(struct frdma_qp *qp);
void frdma_sq_retry_work(struct work_struct *work);
void frdma_sq_kick(struct frdma_qp *qp, unsigned long delay);
void frdma_sq_poll_work(struct work_struct *work);
void frdma_sq_poll_stop(struct frdma_qp *qp);
int frdma_sq_poll_init(void);
void frdma_sq_poll_exit(void);

/* resp.c: the responder */
enum frdma_outcome frdma_resp_exec(struct frdma_qp *qp, struct frdma_qp *t,
				   struct frdma_srq *xsrq,
				   const struct frdma_sqe *sqe, u64 len,
				   struct frdma_cqe *cqe,
				   unsigned long *rnr_delay);
enum ib_wc_status frdma_resp_access(struct frdma_qp *t, struct ib_pd *pd,
				    u8 opcode, u32 rkey, u64 va, u64 len,
				    struct frdma_mr **mrp);
enum ib_wc_status frdma_resp_atomic(struct frdma_qp *t, struct ib_pd *pd,
				    u8 opcode, u32 rkey, u64 va,
				    u64 compare_add, u64 swap, u64 *orig);
int frdma_recv_take_one(struct frdma_qp *t, struct frdma_sgl *rsgl,
			u64 *room, u64 *wr_id, enum ib_wc_status *status);
void frdma_ud_deliver(struct frdma_qp *qp, struct frdma_qp *t,
		      const struct frdma_sqe *sqe, const struct rdma_ah_attr *ah,
		      const union ib_gid *sgid, u64 len, u32 qkey);
void frdma_build_grh(u8 *grh, const struct rdma_ah_attr *ah,
		     const union ib_gid *sgid, u32 len, bool imm);

/* comp.c: completions and the error state */
u8 frdma_sqe_wc_opcode(u8 opcode);
bool frdma_cq_failed(struct ib_cq *ibcq);
void frdma_qp_to_error(struct frdma_qp *qp, enum ib_event_type event);
void frdma_flush_sq(struct frdma_qp *qp);
void frdma_flush_rq(struct frdma_qp *qp);

/* gsi.c: the GSI QP (QP1), a kernel QP */
#define FRDMA_GSI_QPN	1
int frdma_gsi_create(struct frdma_qp *qp, struct ib_qp_init_attr *init);
void frdma_gsi_destroy(struct frdma_qp *qp);
void frdma_gsi_state_changed(struct frdma_qp *qp, enum ib_qp_state cur,
			     enum ib_qp_state next);
int frdma_gsi_post_send(struct frdma_qp *qp, const struct ib_send_wr *wr,
			const struct ib_send_wr **bad_wr);
int frdma_gsi_post_recv(struct frdma_qp *qp, const struct ib_recv_wr *wr,
			const struct ib_recv_wr **bad_wr);
void frdma_gsi_recv_user(struct frdma_qp *gsi, struct frdma_qp *qp,
			 const struct frdma_sqe *sqe, const struct rdma_ah_attr *ah,
			 const union ib_gid *sgid, u64 len, u32 qkey);

/* mcast.c: UD multicast on the local fabric */
int frdma_attach_mcast(struct ib_qp *ibqp, union ib_gid *gid, u16 lid);
int frdma_detach_mcast(struct ib_qp *ibqp, union ib_gid *gid, u16 lid);
void frdma_mcast_qp_destroy(struct frdma_qp *qp);
struct frdma_qp **frdma_mcast_members(struct frdma_qp *from,
				      const union ib_gid *mgid, u32 *n);
struct frdma_qp **frdma_mcast_members_wire(const union ib_gid *mgid,
					   int ifindex, u32 *n);
void frdma_mcast_members_put(struct frdma_qp **qps, u32 n);

/* ah.c */
bool frdma_ah_lookup(struct frdma_dev *fdev, u32 ah_num, struct ib_pd *pd,
		     struct rdma_ah_attr *attr, union ib_gid *sgid);
int frdma_create_ah(struct ib_ah *ibah, struct rdma_ah_init_attr *init,
		    struct ib_udata *udata);
int frdma_query_ah(struct ib_ah *ibah, struct rdma_ah_attr *attr);
int frdma_destroy_ah(struct ib_ah *ibah, u32 flags);

#endif /* _FRDMA_QP_H */
