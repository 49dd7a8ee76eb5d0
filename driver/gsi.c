// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: the GSI QP (QP1), the one kernel QP.
 *
 * RoCE connection management runs in the kernel: rdma_cm and ib_cm
 * exchange MADs on each port's GSI QP, which the MAD layer (ib_mad)
 * creates when the device registers, with a kernel PD, a kernel CQ (cq.c)
 * and, per peer, kernel AHs (ah.c).  frdma gives it QP number 1 in the
 * device's QPN table, so that senders find it like any other QP: by the
 * destination GID (the device) and the QP number.
 *
 * Kernel work requests are trusted, but posted from atomic context (the
 * MAD layer posts under its spinlocks), so post_send and post_recv only
 * copy them into the QP's kernel queues.  Their SGEs name kernel memory:
 * the device has no DMA device, so ib_dma_map_*() returned kernel virtual
 * addresses, and the lkey is the PD's local_dma_lkey.
 *
 * Sends run in order in a work item, in process context.  Each gathers
 * its payload into the QP's staging buffer and goes, as a datagram, to the
 * QP its AH's destination GID and its remote QPN name.  Only a GSI QP
 * receives it (remote QPN 1; a GSI send to any other QP is dropped), and
 * only in a state that receives, with Q_Key IB_QP1_QKEY (a Q_Key with the
 * high bit set means the sender's own, as the MAD layer sends) and a
 * receive posted that can hold it; otherwise the datagram is dropped, like
 * a lost packet, and the send still completes successfully.  User UD QPs
 * reach a GSI QP through the data path (req.c calls
 * frdma_gsi_recv_user()); a user QP can only send with Q_Key IB_QP1_QKEY
 * if it was allowed to set that controlled Q_Key as its own.
 *
 * A datagram that does not fit the next receive, or that finds none, is
 * dropped and the receive stays posted: nobody can use up or fail QP1's
 * receives by sending to it.  A receive gets the 40-byte GRH area first,
 * which for an IPv4 GID holds the IPv4 header in its last 20 bytes
 * (frdma_build_grh()), and a work completion that says so (IB_WC_GRH,
 * IB_WC_WITH_NETWORK_HDR_TYPE), from which the CM builds the AH of its
 * reply (ib_init_ah_attr_from_wc()).
 *
 * Locks: gsi->sq_lock and gsi->rq_lock protect the two queues; both are
 * leaf locks taken with interrupts disabled, as kernel consumers may post
 * from any context.  Receives complete in the order they were posted,
 * however many senders deliver at once: gsi->recv_lock is held from taking
 * a receive (or flushing it) until its completion is in the CQ, and is
 * taken before rq_lock and before the CQ's lock.  The CQ's completion
 * handler may run under it; a handler may post receives (rq_lock) but
 * never delivers.  A deliverer holds a reference on the target QP.  The
 * send work holds no lock while it delivers.
 */

#include <linux/slab.h>
#include <net/ipv6.h>
#include <rdma/ib_mad.h>

#include "mr.h"
#include "qp.h"
#include "wire_ud.h"

/* Kernel SGEs are kernel virtual addresses only with the core's virt_dma. */
#if !IS_ENABLED(CONFIG_INFINIBAND_VIRT_DMA)
#error "frdma needs CONFIG_INFINIBAND_VIRT_DMA (kernel SGEs are virtual addresses)"
#endif

#define FRDMA_GSI_MAX_SGE	4
#define FRDMA_GSI_MAX_MSG	4096	/* a UD message: at most one MTU */

/**
 * struct frdma_gsi_swqe - a send work request, as posted
 * @wr_id: the work request's wr_id (or wr_cqe)
 * @ah: the AH's address vector, copied at post time (no sgid_attr)
 * @sgid: the source GID the AH's sgid_attr named
 * @remote_qpn: the destination QP
 * @remote_qkey: the Q_Key from the work request
 * @imm_data: immediate data (with @imm)
 * @imm: IB_WR_SEND_WITH_IMM
 * @signaled: completes with a work completion on success
 * @solicited: a solicited event at the receiver
 * @num_sge: entries of @sge used
 * @sge: the payload, in kernel memory
 */
struct frdma_gsi_swqe {
	u64 wr_id;
	struct rdma_ah_attr ah;
	union ib_gid sgid;
	u32 remote_qpn;
	u32 remote_qkey;
	__be32 imm_data;
	bool imm;
	bool signaled;
	bool solicited;
	u32 num_sge;
	struct ib_sge sge[FRDMA_GSI_MAX_SGE];
};

/**
 * struct frdma_gsi_rwqe - a receive work request, as posted
 * @wr_id: the work request's wr_id (or wr_cqe)
 * @num_sge: entries of @sge used
 * @sge: the buffers, in kernel memory
 */
struct frdma_gsi_rwqe {
	u64 wr_id;
	u32 num_sge;
	struct ib_sge sge[FRDMA_GSI_MAX_SGE];
};

/**
 * struct frdma_gsi - the kernel queues of a GSI QP
 * @qp: the QP
 * @sq_lock: protects @sq_head, @sq_tail and the entries of @sq
 * @sq_head: the next send to run (free-running)
 * @sq_tail: where the next send is posted (free-running)
 * @sq_mask: entries of @sq minus one (a power of two minus one)
 * @sq: the send queue
 * @rq_lock: protects @rq_head, @rq_tail and the entries of @rq
 * @rq_head: the next receive to fill
 * @rq_tail: where the next receive is posted
 * @rq_mask: entries of @rq minus one
 * @rq: the receive queue
 * @recv_lock: orders the completions of receives (see above)
 * @send_work: runs the send queue
 * @cur: the send being run (the send work's own)
 * @buf: its payload (likewise)
 */
struct frdma_gsi {
	struct frdma_qp *qp;
	spinlock_t sq_lock;	/* see above */
	u32 sq_head;
	u32 sq_tail;
	u32 sq_mask;
	struct frdma_gsi_swqe *sq;
	spinlock_t rq_lock;	/* see above */
	u32 rq_head;
	u32 rq_tail;
	u32 rq_mask;
	struct frdma_gsi_rwqe *rq;
	spinlock_t recv_lock;	/* see above */
	struct work_struct send_work;
	struct frdma_gsi_swqe cur;
	u8 buf[FRDMA_GSI_MAX_MSG];
};

/**
 * struct frdma_gsi_msg - a datagram arriving at a GSI QP
 * @src_qp: the sending QP's number
 * @ah: the sender's address vector (destination GID, traffic class...)
 * @sgid: the sender's source GID
 * @qkey: the Q_Key it was sent with (already resolved)
 * @imm: it carries immediate data, @imm_data
 * @imm_data: the immediate data
 * @solicited: it asks for a solicited event
 * @len: payload bytes
 * @buf: the payload in kernel memory, or NULL and
 * @sgl: the payload in a user sender's checked SGEs
 */
struct frdma_gsi_msg {
	u32 src_qp;
	const struct rdma_ah_attr *ah;
	const union ib_gid *sgid;
	u32 qkey;
	bool imm;
	__be32 imm_data;
	bool solicited;
	u32 len;
	const u8 *buf;
	const struct frdma_sgl *sgl;
};

static bool frdma_gsi_state_receives(enum ib_qp_state state)
{
	return state == IB_QPS_RTR || state == IB_QPS_RTS ||
	       state == IB_QPS_SQD || state == IB_QPS_SQE;
}

static void frdma_gsi_complete(struct frdma_qp *qp, struct ib_cq *cq,
			       u64 wr_id, enum ib_wc_opcode opcode,
			       enum ib_wc_status status)
{
	struct ib_wc wc = {
		.wr_id = wr_id,
		.status = status,
		.opcode = opcode,
		.qp = &qp->ibqp,
		.port_num = 1,
	};

	frdma_cq_post_wc(to_fcq(cq), &wc, status != IB_WC_SUCCESS);
}

static void frdma_gsi_flush_sq(struct frdma_qp *qp)
{
	struct frdma_gsi *gsi = qp->gsi;
	unsigned long flags;
	u64 wr_id;

	for (;;) {
		spin_lock_irqsave(&gsi->sq_lock, flags);
		if (gsi->sq_head == gsi->sq_tail) {
			spin_unlock_irqrestore(&gsi->sq_lock, flags);
			return;
		}
		wr_id = gsi->sq[gsi->sq_head++ & gsi->sq_mask].wr_id;
		spin_unlock_irqrestore(&gsi->sq_lock, flags);
		frdma_gsi_complete(qp, qp->ibqp.send_cq, wr_id, IB_WC_SEND,
				   IB_WC_WR_FLUSH_ERR);
	}
}

static void frdma_gsi_flush_rq(struct frdma_qp *qp)
{
	struct frdma_gsi *gsi = qp->gsi;
	unsigned long flags, rflags;
	u64 wr_id;

	spin_lock_irqsave(&gsi->recv_lock, flags);
	for (;;) {
		spin_lock_irqsave(&gsi->rq_lock, rflags);
		if (gsi->rq_head == gsi->rq_tail) {
			spin_unlock_irqrestore(&gsi->rq_lock, rflags);
			break;
		}
		wr_id = gsi->rq[gsi->rq_head++ & gsi->rq_mask].wr_id;
		spin_unlock_irqrestore(&gsi->rq_lock, rflags);
		frdma_gsi_complete(qp, qp->ibqp.recv_cq, wr_id, IB_WC_RECV,
				   IB_WC_WR_FLUSH_ERR);
	}
	spin_unlock_irqrestore(&gsi->recv_lock, flags);
}

/*
 * Receiving.
 */

/*
 * The bytes @r can hold (0 for a receive without SGEs), or -EFAULT if one
 * of its SGEs is not kernel memory.
 */
static s64 frdma_gsi_rwqe_room(struct frdma_qp *t,
			       const struct frdma_gsi_rwqe *r)
{
	s64 room = 0;
	u32 i;

	for (i = 0; i < r->num_sge; i++) {
		if (r->sge[i].lkey != t->ibqp.pd->local_dma_lkey)
			return -EFAULT;
		room += r->sge[i].length;
	}
	return room;
}

/* Where the next up to *@n bytes go in @r, after the first @off ones. */
static void *frdma_gsi_dst(const struct frdma_gsi_rwqe *r, u32 *i, u32 *off,
			   u64 *n)
{
	while (*off == r->sge[*i].length) {
		(*i)++;
		*off = 0;
	}
	*n = min_t(u64, *n, r->sge[*i].length - *off);
	return ib_virt_dma_to_ptr(r->sge[*i].addr + *off);
}

/* Copy the GRH and the payload of @m into @r, which can hold them. */
static void frdma_gsi_scatter(const struct frdma_gsi_rwqe *r, const u8 *grh,
			      const struct frdma_gsi_msg *m)
{
	u32 i = 0, off = 0, j;
	u64 left, n, done;
	void *dst;

	for (done = 0; done < sizeof(struct ib_grh); done += n) {
		n = sizeof(struct ib_grh) - done;
		dst = frdma_gsi_dst(r, &i, &off, &n);
		memcpy(dst, grh + done, n);
		off += n;
	}
	if (m->buf) {
		for (done = 0; done < m->len; done += n) {
			n = m->len - done;
			dst = frdma_gsi_dst(r, &i, &off, &n);
			memcpy(dst, m->buf + done, n);
			off += n;
		}
		return;
	}
	for (j = 0; j < m->sgl->n; j++) {
		for (done = 0, left = m->sgl->len[j]; left; left -= n) {
			n = left;
			dst = frdma_gsi_dst(r, &i, &off, &n);
			frdma_mr_read(m->sgl->mr[j], m->sgl->addr[j] + done,
				      dst, n);
			off += n;
			done += n;
		}
	}
}

/*
 * Deliver @m to @t, a GSI QP the caller holds a reference on, or drop it.
 * Return: true when a receive took it (or completed in error for it),
 * false when it was dropped.
 * Context: process or atomic; takes t's recv_lock and rq_lock.
 */
static bool frdma_gsi_recv(struct frdma_qp *t, const struct frdma_gsi_msg *m)
{
	struct frdma_gsi *gsi = t->gsi;
	struct frdma_gsi_rwqe r;
	u8 grh[sizeof(struct ib_grh)];
	struct ib_wc wc = {};
	unsigned long flags, rflags;
	bool taken = false;
	s64 room;

	if (!frdma_gsi_state_receives(READ_ONCE(t->state)) ||
	    m->qkey != IB_QP1_QKEY || m->len > FRDMA_GSI_MAX_MSG)
		return false;

	spin_lock_irqsave(&gsi->recv_lock, flags);
	spin_lock_irqsave(&gsi->rq_lock, rflags);
	if (gsi->rq_head == gsi->rq_tail) {
		spin_unlock_irqrestore(&gsi->rq_lock, rflags);
		goto out;
	}
	r = gsi->rq[gsi->rq_head & gsi->rq_mask];
	room = frdma_gsi_rwqe_room(t, &r);
	/* A bad receive is completed in error, one too short kept. */
	if (room >= 0 && room < sizeof(grh) + m->len) {
		spin_unlock_irqrestore(&gsi->rq_lock, rflags);
		goto out;
	}
	gsi->rq_head++;
	spin_unlock_irqrestore(&gsi->rq_lock, rflags);
	taken = true;

	wc.wr_id = r.wr_id;
	wc.opcode = IB_WC_RECV;
	wc.qp = &t->ibqp;
	wc.port_num = 1;
	if (room < 0) {
		wc.status = IB_WC_LOC_PROT_ERR;
		frdma_cq_post_wc(to_fcq(t->ibqp.recv_cq), &wc, true);
		goto out;
	}
	frdma_build_grh(grh, m->ah, m->sgid, m->len, m->imm);
	frdma_gsi_scatter(&r, grh, m);

	wc.status = IB_WC_SUCCESS;
	wc.byte_len = sizeof(grh) + m->len;
	wc.src_qp = m->src_qp;
	wc.wc_flags = IB_WC_GRH | IB_WC_WITH_NETWORK_HDR_TYPE;
	if (ipv6_addr_v4mapped((const struct in6_addr *)m->ah->grh.dgid.raw))
		wc.network_hdr_type = RDMA_NETWORK_IPV4;
	else
		wc.network_hdr_type = RDMA_NETWORK_IPV6;
	if (m->imm) {
		wc.wc_flags |= IB_WC_WITH_IMM;
		wc.ex.imm_data = m->imm_data;
	}
	wc.pkey_index = 0;
	frdma_cq_post_wc(to_fcq(t->ibqp.recv_cq), &wc, m->solicited);
out:
	spin_unlock_irqrestore(&gsi->recv_lock, flags);
	return taken;
}

/**
 * frdma_gsi_recv_user - deliver a user UD QP's datagram to a GSI QP
 * @gsi: the destination, a GSI QP the caller holds a reference on
 * @qp: the sending UD QP, whose sq_mutex the caller holds
 * @sqe: the validated copy of the send queue entry
 * @ah: the address vector of the SQE's AH
 * @sgid: its source GID
 * @len: payload bytes: inline data after @sqe, or qp->lsgl (checked)
 * @qkey: the Q_Key, with the QP's own substituted for a controlled one
 *
 * The datagram is dropped, and the sender is told nothing, when @gsi
 * cannot take it (see the top of this file).
 *
 * Context: process; does not sleep.
 */
void frdma_gsi_recv_user(struct frdma_qp *gsi, struct frdma_qp *qp,
			 const struct frdma_sqe *sqe, const struct rdma_ah_attr *ah,
			 const union ib_gid *sgid, u64 len, u32 qkey)
{
	struct frdma_gsi_msg m = {
		.src_qp = qp->ibqp.qp_num,
		.ah = ah,
		.sgid = sgid,
		.qkey = qkey,
		.imm = sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM,
		.imm_data = (__force __be32)sqe->imm_data,
		.solicited = sqe->flags & FRDMA_WQE_SOLICITED,
		.len = len,
	};

	if (len > FRDMA_GSI_MAX_MSG)
		return;
	if (sqe->flags & FRDMA_WQE_INLINE)
		m.buf = (const u8 *)(sqe + 1);
	else
		m.sgl = &qp->lsgl;
	frdma_gsi_recv(gsi, &m);
}

/**
 * frdma_gsi_recv_wire - deliver a datagram from another host to a GSI QP
 * @gsi: the destination, a GSI QP the caller holds a reference on
 * @ah: the address vector the sender used (its destination GID: ours)
 * @sgid: the sender's GID
 * @m: the datagram, its payload in @m->buf
 *
 * Dropped as any datagram (see the top of this file) when @gsi cannot
 * take it.
 *
 * Context: process (the wire's receive worker).
 * Return: true when a receive took it, false when it was dropped.
 */
bool frdma_gsi_recv_wire(struct frdma_qp *gsi, const struct rdma_ah_attr *ah,
			 const union ib_gid *sgid, const struct frdma_dgram *m)
{
	struct frdma_gsi_msg g = {
		.src_qp = m->src_qp,
		.ah = ah,
		.sgid = sgid,
		.qkey = m->qkey,
		.imm = m->imm,
		.imm_data = m->imm_data,
		.solicited = m->se,
		.len = m->len,
		.buf = m->buf,
	};

	return m->buf && m->len <= FRDMA_GSI_MAX_MSG && frdma_gsi_recv(gsi, &g);
}

/*
 * Sending.
 */

/* Run one send: gather its payload and deliver it, or drop it. */
static enum ib_wc_status frdma_gsi_send_one(struct frdma_qp *qp,
					    const struct frdma_gsi_swqe *e)
{
	struct frdma_gsi *gsi = qp->gsi;
	struct frdma_gsi_msg m = {
		.src_qp = qp->ibqp.qp_num,
		.ah = &e->ah,
		.sgid = &e->sgid,
		.qkey = e->remote_qkey,
		.imm = e->imm,
		.imm_data = e->imm_data,
		.solicited = e->solicited,
		.buf = gsi->buf,
	};
	struct frdma_dev *tdev;
	struct frdma_qp *t;
	u32 i;

	for (i = 0; i < e->num_sge; i++) {
		const struct ib_sge *sge = &e->sge[i];

		if (sge->lkey != qp->ibqp.pd->local_dma_lkey)
			return IB_WC_LOC_PROT_ERR;
		if (sge->length > FRDMA_GSI_MAX_MSG - m.len)
			return IB_WC_LOC_LEN_ERR;
		memcpy(gsi->buf + m.len, ib_virt_dma_to_ptr(sge->addr),
		       sge->length);
		m.len += sge->length;
	}
	if (m.len > frdma_ud_max_msg(qp->fdev))
		return IB_WC_LOC_LEN_ERR;	/* one packet: at most the MTU */
	/* IBTA: a Q_Key with the high bit set means the QP's own. */
	if (m.qkey & IB_QP_SET_QKEY)
		m.qkey = READ_ONCE(qp->attr.qkey);

	tdev = frdma_dev_get_by_gid(qp->fdev, &e->ah.grh.dgid);
	if (!tdev && qp->fdev->wire) {	/* another host: wire_ud.c */
		struct frdma_dgram d = {
			.src_qp = m.src_qp,
			.qkey = m.qkey,
			.imm = m.imm,
			.imm_data = m.imm_data,
			.se = m.solicited,
			.len = m.len,
			.buf = m.buf,
		};

		frdma_wire_ud_send(qp->fdev, &e->sgid, &e->ah, e->remote_qpn,
				   &d);
		return IB_WC_SUCCESS;
	}
	if (!tdev)
		return IB_WC_SUCCESS;		/* dropped */
	t = frdma_qp_get(tdev, e->remote_qpn);
	if (t) {
		if (t->gsi)
			frdma_gsi_recv(t, &m);
		frdma_qp_put(t);
	}
	ib_device_put(&tdev->ibdev);
	return IB_WC_SUCCESS;
}

static void frdma_gsi_send_work(struct work_struct *work)
{
	struct frdma_gsi *gsi = container_of(work, struct frdma_gsi,
					     send_work);
	struct frdma_qp *qp = gsi->qp;
	enum ib_wc_status status;
	enum ib_qp_state state;
	unsigned long flags;

	for (;;) {
		state = READ_ONCE(qp->state);
		if (state == IB_QPS_ERR) {
			frdma_gsi_flush_sq(qp);
			return;
		}
		if (state != IB_QPS_RTS)
			return;		/* resumed by the move back to RTS */

		spin_lock_irqsave(&gsi->sq_lock, flags);
		if (gsi->sq_head == gsi->sq_tail) {
			spin_unlock_irqrestore(&gsi->sq_lock, flags);
			return;
		}
		gsi->cur = gsi->sq[gsi->sq_head++ & gsi->sq_mask];
		spin_unlock_irqrestore(&gsi->sq_lock, flags);

		status = frdma_gsi_send_one(qp, &gsi->cur);
		if (status != IB_WC_SUCCESS || gsi->cur.signaled)
			frdma_gsi_complete(qp, qp->ibqp.send_cq,
					   gsi->cur.wr_id, IB_WC_SEND, status);
		cond_resched();
	}
}

/*
 * Posting.
 */

static int frdma_gsi_check_sges(const struct ib_sge *sge, int num_sge,
				u32 max_sge)
{
	return num_sge < 0 || num_sge > max_sge || (num_sge && !sge) ?
	       -EINVAL : 0;
}

/**
 * frdma_gsi_post_send - post kernel send work requests on a GSI QP
 * @qp: the GSI QP
 * @wr: the work requests: IB_WR_SEND or IB_WR_SEND_WITH_IMM, each with an
 *	AH of the QP's PD
 * @bad_wr: set to the first work request not posted
 *
 * Context: any; does not sleep.
 * Return: 0, -EINVAL for a work request the QP cannot take or a QP not
 * ready to send, -ENOMEM when the send queue is full.
 */
int frdma_gsi_post_send(struct frdma_qp *qp, const struct ib_send_wr *wr,
			const struct ib_send_wr **bad_wr)
{
	struct frdma_gsi *gsi = qp->gsi;
	enum ib_qp_state state = READ_ONCE(qp->state);
	struct frdma_gsi_swqe *e;
	const struct frdma_ah *ah;
	unsigned long flags;
	bool posted = false;
	int err = 0;

	/* IBTA: posting in SQD queues, in SQE or ERR flushes. */
	if (state != IB_QPS_RTS && state != IB_QPS_SQD &&
	    state != IB_QPS_SQE && state != IB_QPS_ERR) {
		*bad_wr = wr;
		return -EINVAL;
	}
	spin_lock_irqsave(&gsi->sq_lock, flags);
	for (; wr; wr = wr->next) {
		if ((wr->opcode != IB_WR_SEND &&
		     wr->opcode != IB_WR_SEND_WITH_IMM) || !ud_wr(wr)->ah ||
		    ud_wr(wr)->ah->pd != qp->ibqp.pd ||
		    frdma_gsi_check_sges(wr->sg_list, wr->num_sge,
					 qp->attr.cap.max_send_sge)) {
			err = -EINVAL;
			break;
		}
		if (gsi->sq_tail - gsi->sq_head > gsi->sq_mask) {
			err = -ENOMEM;
			break;
		}
		e = &gsi->sq[gsi->sq_tail & gsi->sq_mask];
		ah = to_fah(ud_wr(wr)->ah);
		e->wr_id = wr->wr_id;
		e->ah = ah->attr;
		e->sgid = ah->sgid;
		e->remote_qpn = ud_wr(wr)->remote_qpn;
		e->remote_qkey = ud_wr(wr)->remote_qkey;
		e->imm = wr->opcode == IB_WR_SEND_WITH_IMM;
		e->imm_data = wr->ex.imm_data;
		e->signaled = qp->sq_sig_all ||
			      (wr->send_flags & IB_SEND_SIGNALED);
		e->solicited = wr->send_flags & IB_SEND_SOLICITED;
		e->num_sge = wr->num_sge;
		if (wr->num_sge)
			memcpy(e->sge, wr->sg_list,
			       wr->num_sge * sizeof(*wr->sg_list));
		gsi->sq_tail++;
		posted = true;
	}
	spin_unlock_irqrestore(&gsi->sq_lock, flags);
	if (err)
		*bad_wr = wr;
	if (posted)
		queue_work(system_unbound_wq, &gsi->send_work);
	return err;
}

/**
 * frdma_gsi_post_recv - post kernel receive work requests on a GSI QP
 * @qp: the GSI QP
 * @wr: the work requests
 * @bad_wr: set to the first work request not posted
 *
 * Context: any; does not sleep.
 * Return: 0, -EINVAL for a work request the QP cannot take or a QP in the
 * RESET state, -ENOMEM when the receive queue is full.
 */
int frdma_gsi_post_recv(struct frdma_qp *qp, const struct ib_recv_wr *wr,
			const struct ib_recv_wr **bad_wr)
{
	struct frdma_gsi *gsi = qp->gsi;
	enum ib_qp_state state = READ_ONCE(qp->state);
	struct frdma_gsi_rwqe *r;
	unsigned long flags;
	int err = 0;

	if (state == IB_QPS_RESET) {
		*bad_wr = wr;
		return -EINVAL;
	}
	spin_lock_irqsave(&gsi->rq_lock, flags);
	for (; wr; wr = wr->next) {
		if (frdma_gsi_check_sges(wr->sg_list, wr->num_sge,
					 qp->attr.cap.max_recv_sge)) {
			err = -EINVAL;
			break;
		}
		if (gsi->rq_tail - gsi->rq_head > gsi->rq_mask) {
			err = -ENOMEM;
			break;
		}
		r = &gsi->rq[gsi->rq_tail & gsi->rq_mask];
		r->wr_id = wr->wr_id;
		r->num_sge = wr->num_sge;
		if (wr->num_sge)
			memcpy(r->sge, wr->sg_list,
			       wr->num_sge * sizeof(*wr->sg_list));
		gsi->rq_tail++;
	}
	spin_unlock_irqrestore(&gsi->rq_lock, flags);
	if (err)
		*bad_wr = wr;
	/* IBTA: receives posted in the error state are flushed. */
	if (state == IB_QPS_ERR)
		frdma_gsi_flush_rq(qp);
	return err;
}

/*
 * Life cycle.
 */

/**
 * frdma_gsi_create - set up the kernel queues of a GSI QP
 * @qp: the QP, whose common fields frdma_create_qp() has set
 * @init: the creation attributes; the capabilities are updated to what
 *	  the QP has
 *
 * Context: process.
 * Return: 0, -EINVAL or -EOPNOTSUPP for attributes a GSI QP cannot have,
 * -ENOMEM.
 */
int frdma_gsi_create(struct frdma_qp *qp, struct ib_qp_init_attr *init)
{
	struct ib_qp_cap *cap = &init->cap;
	struct frdma_gsi *gsi;
	u32 sq_size, rq_size;

	if (init->port_num != 1)
		return -EINVAL;
	if (init->srq || init->create_flags || init->rwq_ind_tbl)
		return -EOPNOTSUPP;
	if (cap->max_send_wr > FRDMA_MAX_QP_WR ||
	    cap->max_recv_wr > FRDMA_MAX_QP_WR ||
	    cap->max_send_sge > FRDMA_GSI_MAX_SGE ||
	    cap->max_recv_sge > FRDMA_GSI_MAX_SGE || cap->max_inline_data)
		return -EINVAL;
	sq_size = roundup_pow_of_two(max_t(u32, cap->max_send_wr, 1));
	rq_size = roundup_pow_of_two(max_t(u32, cap->max_recv_wr, 1));

	gsi = kzalloc(sizeof(*gsi), GFP_KERNEL);
	if (!gsi)
		return -ENOMEM;
	gsi->sq = kvcalloc(sq_size, sizeof(*gsi->sq), GFP_KERNEL);
	gsi->rq = kvcalloc(rq_size, sizeof(*gsi->rq), GFP_KERNEL);
	if (!gsi->sq || !gsi->rq) {
		kvfree(gsi->sq);
		kvfree(gsi->rq);
		kfree(gsi);
		return -ENOMEM;
	}
	gsi->qp = qp;
	spin_lock_init(&gsi->sq_lock);
	spin_lock_init(&gsi->rq_lock);
	spin_lock_init(&gsi->recv_lock);
	gsi->sq_mask = sq_size - 1;
	gsi->rq_mask = rq_size - 1;
	INIT_WORK(&gsi->send_work, frdma_gsi_send_work);

	cap->max_send_wr = sq_size;
	cap->max_recv_wr = rq_size;
	cap->max_send_sge = FRDMA_GSI_MAX_SGE;
	cap->max_recv_sge = FRDMA_GSI_MAX_SGE;
	qp->attr.cap = *cap;
	qp->gsi = gsi;
	return 0;
}

/**
 * frdma_gsi_destroy - free the kernel queues of a GSI QP
 * @qp: the QP, which nobody can look up or post to any more
 *
 * Work requests still queued are discarded without completions.
 *
 * Context: process.
 */
void frdma_gsi_destroy(struct frdma_qp *qp)
{
	struct frdma_gsi *gsi = qp->gsi;

	cancel_work_sync(&gsi->send_work);
	kvfree(gsi->sq);
	kvfree(gsi->rq);
	kfree(gsi);
	qp->gsi = NULL;
}

/**
 * frdma_gsi_state_changed - act on a GSI QP's new state
 * @qp: the QP; the caller holds its sq_mutex and has stored the state
 * @cur: the state before
 * @next: the state now
 *
 * RESET discards the queues, ERR flushes them, a return to RTS resumes
 * sending.
 */
void frdma_gsi_state_changed(struct frdma_qp *qp, enum ib_qp_state cur,
			     enum ib_qp_state next)
{
	struct frdma_gsi *gsi = qp->gsi;
	unsigned long flags;

	switch (next) {
	case IB_QPS_RESET:
		/* The send work may be between two sends: let it finish. */
		cancel_work_sync(&gsi->send_work);
		spin_lock_irqsave(&gsi->sq_lock, flags);
		gsi->sq_head = gsi->sq_tail;
		spin_unlock_irqrestore(&gsi->sq_lock, flags);
		/* No receive taken before the reset completes after it. */
		spin_lock_irqsave(&gsi->recv_lock, flags);
		spin_lock(&gsi->rq_lock);
		gsi->rq_head = gsi->rq_tail;
		spin_unlock(&gsi->rq_lock);
		spin_unlock_irqrestore(&gsi->recv_lock, flags);
		break;
	case IB_QPS_ERR:
		frdma_gsi_flush_rq(qp);
		/* The send work flushes what it has not run. */
		queue_work(system_unbound_wq, &gsi->send_work);
		break;
	case IB_QPS_RTS:
		if (cur != IB_QPS_RTS)
			queue_work(system_unbound_wq, &gsi->send_work);
		break;
	default:
		break;
	}
}
