// SPDX-License-Identifier: GPL-2.0
/*
 * frdma on the wire: the requester and completer of an RC QP.
 *
 * The send queue (req.c) hands each work request whose destination is
 * not an frdma device in this kernel to frdma_wire_post(), which keeps a
 * copy of it (and the references on its local MRs) in the QP's ring of
 * FRDMA_WIRE_WQES requests in flight, gives it its PSNs and transmits
 * as much as the window of unacknowledged PSNs allows: FRDMA_WIRE_WINDOW,
 * halved (down to FRDMA_WIRE_CWND_MIN) when a loss shows, once per window,
 * and grown by one PSN per window acknowledged.
 * A message of N bytes is ceil(N / path MTU) packets (at least one),
 * FIRST/MIDDLE/LAST or ONLY; a READ is one request packet but uses one PSN
 * per response packet; an atomic is one packet.  AckReq is set on the last
 * packet of every message and at least every FRDMA_WIRE_ACK_EVERY packets.
 *
 * Acknowledgements complete work requests in order: an ACK of PSN p
 * completes every SEND and WRITE whose last PSN is at most p; a READ or
 * atomic completes when its response came.  At most max_rd_atomic READs
 * and atomics are unanswered at a time (the responder keeps that many for
 * duplicates).  A READ answered in part is asked for again from its first
 * missing response (a READ request at that PSN for the remaining address
 * and length), when its answer ended with a gap or an acknowledgment of a
 * later request passed it; only that request is sent again, and not once
 * more until a response came.  A sequence NAK has the packet it names
 * sent again alone, then everything after it too if the acknowledgment
 * shows the responder kept nothing after the gap (frdma_wire_repair());
 * an RNR NAK waits the responder's
 * timer, then retransmits, rnr_retry times (7: forever); other NAKs
 * complete the request in error (remote access, invalid request, remote
 * operational error) and move the QP to the error state.  When nothing is
 * acknowledged for the QP's local ACK timeout (4.096 us << timeout, at
 * least 500 ms here: emulated guests take longer than the usual 67 ms to
 * answer a burst, and a timeout that fires early makes a storm of
 * duplicates), everything unacknowledged is sent again, retry_cnt times,
 * then the oldest request completes with IB_WC_RETRY_EXC_ERR.  Every
 * sixteenth of that timeout without progress sends a probe: the oldest
 * unacknowledged packet alone, with AckReq, which the responder answers
 * whether it had the packet or not (frdma_wire_probe()).  The
 * timeout first has the packets received before it fired taken (a guest
 * that stalls runs its expired timers and its receive queue together),
 * and does nothing if they restarted the timer.
 */

#include <linux/hash.h>
#include <linux/slab.h>

#include "mr.h"
#include "wire.h"
#include "wire_ud.h"

static u8 frdma_wire_wc_opcode(u8 opcode)
{
	switch (opcode) {
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		return IB_UVERBS_WC_RDMA_WRITE;
	case IB_UVERBS_WR_RDMA_READ:
		return IB_UVERBS_WC_RDMA_READ;
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
		return IB_UVERBS_WC_COMP_SWAP;
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD:
		return IB_UVERBS_WC_FETCH_ADD;
	case IB_UVERBS_WR_ATOMIC_WRITE:
		return IB_UVERBS_WC_ATOMIC_WRITE;
	default:
		return IB_UVERBS_WC_SEND;
	}
}

static inline struct frdma_wwqe *frdma_wslot(struct frdma_wqp *w, u32 i)
{
	return &w->wqe[i % FRDMA_WIRE_WQES];
}

static inline const struct frdma_sqe *frdma_wsqe(struct frdma_wwqe *e)
{
	return (const struct frdma_sqe *)e->sqe;
}

static bool frdma_wire_needs_resp(u8 opcode)
{
	return opcode == IB_UVERBS_WR_RDMA_READ ||
	       opcode == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP ||
	       opcode == IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD;
}

static void frdma_wire_sgl_put(struct frdma_sgl *sgl)
{
	while (sgl->n)
		frdma_mr_put(sgl->mr[--sgl->n]);
}

/* The local ACK timeout of @qp, in jiffies. */
static unsigned long frdma_wire_rto(struct frdma_qp *qp)
{
	u8 t = READ_ONCE(qp->attr.timeout);

	if (!t || t > 20)
		t = 20;
	return max(nsecs_to_jiffies(4096ULL << t), (unsigned long)HZ / 2);
}

/*
 * The probe timeout of @qp, in jiffies: without progress for that long,
 * the requester probes (frdma_wire_probe()), well before the local ACK
 * timeout sends everything again.
 */
static unsigned long frdma_wire_pto(struct frdma_qp *qp)
{
	return max(frdma_wire_rto(qp) / FRDMA_WIRE_PTO_DIV, 1UL);
}

/*
 * A loss showed (a sequence NAK): halve the window, once per window of
 * packets, as a queue that overflowed is the likeliest cause, and a
 * window that keeps its size keeps it overflowing.  Against a responder
 * that does not keep the packets after a gap (frdma_wire_repair()), the
 * packets in flight are also what each loss costs.  The window grows
 * back by one PSN per window acknowledged (frdma_wire_cwnd_grow()).
 */
static void frdma_wire_cwnd_cut(struct frdma_wqp *w)
{
	if (frdma_psn_diff(w->una, w->recover) < 0)
		return;		/* cut already for a loss in this window */
	w->cwnd = max_t(u32, w->cwnd / 2, FRDMA_WIRE_CWND_MIN);
	w->cwnd_acc = 0;
	w->recover = w->psn;
}

static void frdma_wire_cwnd_grow(struct frdma_wqp *w, u32 acked)
{
	if (w->cwnd >= FRDMA_WIRE_WINDOW)
		return;
	w->cwnd_acc += acked;
	if (w->cwnd_acc >= w->cwnd) {
		w->cwnd_acc -= w->cwnd;
		w->cwnd++;
	}
}

/* Complete the oldest request with @status, unsignalled or not. */
static void frdma_wire_complete(struct frdma_wqp *w, struct frdma_wwqe *e,
				enum ib_wc_status status)
{
	struct frdma_qp *qp = w->qp;
	const struct frdma_sqe *sqe = frdma_wsqe(e);

	if (status != IB_WC_SUCCESS || qp->sq_sig_all ||
	    (sqe->flags & FRDMA_WQE_SIGNALED)) {
		struct frdma_cqe cqe = {
			.wr_id = sqe->wr_id,
			.qp_num = qp->ibqp.qp_num,
			.status = status,
			.opcode = frdma_wire_wc_opcode(sqe->opcode),
		};

		if (status == IB_WC_SUCCESS) {
			if (sqe->opcode == IB_UVERBS_WR_RDMA_READ)
				cqe.byte_len = e->len;
			else if (frdma_wire_needs_resp(sqe->opcode))
				cqe.byte_len = sizeof(u64);
		}
		frdma_cq_post(to_fcq(qp->ibqp.send_cq), &cqe,
			      status != IB_WC_SUCCESS);
	}
	frdma_wire_sgl_put(&e->sgl);
	w->tail++;
	if (w->sq_blocked) {
		w->sq_blocked = false;
		frdma_sq_kick(qp, 0);
	}
}

/*
 * Build and send packet @k of request @e: if @more, in the QP's burst
 * (the caller flushes it); else alone and now, asking for an
 * acknowledgment (a request asked for again, a probe).
 */
static void frdma_wire_send_pkt(struct frdma_wqp *w, struct frdma_wwqe *e,
				u32 k, bool more)
{
	const struct frdma_sqe *sqe = frdma_wsqe(e);
	struct frdma_xpkt x = {};
	u32 mtu = frdma_wire_mtu(w->qp);
	bool first = k == 0, last = k + 1 >= e->npsn;
	struct frdma_reth *reth;
	u8 *ext = x.ext;

	x.dqpn = READ_ONCE(w->qp->attr.dest_qp_num);
	x.psn = frdma_psn_add(e->first_psn, k);
	switch (sqe->opcode) {
	case IB_UVERBS_WR_RDMA_READ:
		/*
		 * Packet k of a READ asks for the bytes from the response of
		 * PSN first_psn + k on (k > 0: the first responses came).
		 */
		x.opcode = FRDMA_OP_READ_REQ;
		reth = (void *)ext;
		reth->va = cpu_to_be64(sqe->rdma.remote_addr + (u64)k * mtu);
		reth->rkey = cpu_to_be32(sqe->rdma.rkey);
		reth->len = cpu_to_be32(e->len - (u64)k * mtu);
		x.ext_len = sizeof(*reth);
		x.ackreq = true;
		goto send;
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD: {
		struct frdma_atheth *a = (void *)ext;

		x.opcode = sqe->opcode == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP ?
			   FRDMA_OP_CMP_SWAP : FRDMA_OP_FETCH_ADD;
		a->va = cpu_to_be64(sqe->atomic.remote_addr);
		a->rkey = cpu_to_be32(sqe->atomic.rkey);
		if (sqe->opcode == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP) {
			a->swap_add = cpu_to_be64(sqe->atomic.swap);
			a->compare = cpu_to_be64(sqe->atomic.compare_add);
		} else {
			a->swap_add = cpu_to_be64(sqe->atomic.compare_add);
			a->compare = 0;
		}
		x.ext_len = sizeof(*a);
		x.ackreq = true;
		goto send;
	}
	case IB_UVERBS_WR_ATOMIC_WRITE:
		/* The word as it is to be in memory: its bytes unchanged. */
		x.opcode = FRDMA_OP_ATOMIC_WRITE;
		reth = (void *)ext;
		reth->va = cpu_to_be64(sqe->atomic.remote_addr);
		reth->rkey = cpu_to_be32(sqe->atomic.rkey);
		reth->len = cpu_to_be32(sizeof(u64));
		x.ext_len = sizeof(*reth);
		x.buf = &sqe->atomic.compare_add;
		x.len = sizeof(u64);
		x.ackreq = true;
		goto send;
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		if (first && last)
			x.opcode = FRDMA_OP_WRITE_ONLY;
		else if (first)
			x.opcode = FRDMA_OP_WRITE_FIRST;
		else if (last)
			x.opcode = FRDMA_OP_WRITE_LAST;
		else
			x.opcode = FRDMA_OP_WRITE_MIDDLE;
		if (last && sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM)
			x.opcode++;	/* the _IMM form follows */
		if (first) {
			reth = (void *)ext;
			reth->va = cpu_to_be64(sqe->rdma.remote_addr);
			reth->rkey = cpu_to_be32(sqe->rdma.rkey);
			reth->len = cpu_to_be32(e->len);
			x.ext_len += sizeof(*reth);
		}
		break;
	default:	/* the SENDs */
		if (first && last)
			x.opcode = FRDMA_OP_SEND_ONLY;
		else if (first)
			x.opcode = FRDMA_OP_SEND_FIRST;
		else if (last)
			x.opcode = FRDMA_OP_SEND_LAST;
		else
			x.opcode = FRDMA_OP_SEND_MIDDLE;
		if (last && sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM)
			x.opcode++;
		if (last && sqe->opcode == IB_UVERBS_WR_SEND_WITH_INV)
			x.opcode = first ? FRDMA_OP_SEND_ONLY_INV :
					   FRDMA_OP_SEND_LAST_INV;
		break;
	}
	if (last && (sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM ||
		     sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM)) {
		/* The immediate is in network order already. */
		memcpy(ext + x.ext_len, &sqe->imm_data, 4);
		x.ext_len += 4;
	} else if (last && sqe->opcode == IB_UVERBS_WR_SEND_WITH_INV) {
		frdma_put_be32(sqe->invalidate_rkey, ext + x.ext_len);
		x.ext_len += 4;
	}
	x.off = (u64)k * mtu;
	x.len = min_t(u64, mtu, e->len - x.off);
	if (sqe->flags & FRDMA_WQE_INLINE)
		x.buf = (const u8 *)(sqe + 1) + x.off;
	else
		x.sgl = &e->sgl;
	x.se = last && (sqe->flags & FRDMA_WQE_SOLICITED);
	/* Twice per window at least, so that an ACK opens it in time. */
	x.ackreq = !more || last ||
		   w->noack + 1 >= min_t(u32, FRDMA_WIRE_ACK_EVERY, w->cwnd / 2);
send:
	w->noack = x.ackreq ? 0 : w->noack + 1;
	if (more)
		frdma_wire_xmit_more(w, &x);
	else
		frdma_wire_xmit(w, &x);
}

/*
 * The local ACK timer runs while anything is unacknowledged.  It starts
 * when the first packet goes out and starts again only on progress (an
 * acknowledgment or READ response in sequence, @restart): sending more
 * does not postpone the timeout of what was sent before.  It first runs
 * after the probe timeout (frdma_wire_rto_work()).
 */
static void frdma_wire_arm(struct frdma_wqp *w, bool restart)
{
	if (w->rnr_wait)
		return;
	if (w->una == w->psn && w->tail == w->head) {
		cancel_delayed_work(&w->rto_work);
	} else if (restart) {
		w->rto_start = jiffies;
		w->probe_at = jiffies + frdma_wire_pto(w->qp);
		mod_delayed_work(system_unbound_wq, &w->rto_work,
				 frdma_wire_pto(w->qp));
	} else if (queue_delayed_work(system_unbound_wq, &w->rto_work,
				      frdma_wire_pto(w->qp))) {
		w->rto_start = jiffies;
		w->probe_at = jiffies + frdma_wire_pto(w->qp);
	}
}

/*
 * The READ and atomic requests the QP may have outstanding: its
 * max_rd_atomic, at least one (0 would forbid them; a RoCE NIC takes it as
 * one too).
 */
static u32 frdma_wire_rd_max(struct frdma_qp *qp)
{
	return max_t(u32, READ_ONCE(qp->attr.max_rd_atomic), 1);
}

/* READ and atomic requests sent (before w->send) and not answered yet. */
static u32 frdma_wire_rd_busy(struct frdma_wqp *w)
{
	struct frdma_wwqe *e;
	u32 i, n = 0;

	for (i = w->tail; i != w->send && i != w->head; i++) {
		e = frdma_wslot(w, i);
		if (frdma_wire_needs_resp(frdma_wsqe(e)->opcode) && !e->done)
			n++;
	}
	return n;
}

/*
 * Transmit what the window allows, from (w->send, w->send_pkt) on.  A READ
 * or atomic waits while max_rd_atomic of them are unanswered; one already
 * answered (sent again by a go-back) is not sent again; a READ answered in
 * part asks for the rest only.
 */
static void frdma_wire_push(struct frdma_wqp *w)
{
	u32 rd_max = frdma_wire_rd_max(w->qp), rd_busy = frdma_wire_rd_busy(w);
	struct frdma_wwqe *e;
	bool sent = false, resp;

	while (!w->rnr_wait && w->send != w->head) {
		e = frdma_wslot(w, w->send);
		resp = frdma_wire_needs_resp(frdma_wsqe(e)->opcode);
		if (resp) {
			if (e->done) {
				w->send++;
				w->send_pkt = 0;
				continue;
			}
			if (rd_busy >= rd_max)
				break;
			w->send_pkt = 0;
			if (frdma_wsqe(e)->opcode == IB_UVERBS_WR_RDMA_READ)
				w->send_pkt = div_u64(e->read_off,
						      frdma_wire_mtu(w->qp));
		}
		/* A READ's request is in the window when its first PSN is. */
		if (frdma_psn_diff(frdma_psn_add(e->first_psn,
						 resp ? 0 : w->send_pkt),
				   w->una) >= w->cwnd)
			break;
		frdma_wire_send_pkt(w, e, w->send_pkt, true);
		sent = true;
		if (resp)
			rd_busy++;
		if (resp || ++w->send_pkt >= e->npsn) {
			w->send++;
			w->send_pkt = 0;
		}
	}
	frdma_wire_xmit_flush(w);
	if (sent)
		frdma_wire_arm(w, false);
}

/*
 * The request holding PSN @psn among those transmission has reached (up
 * to and with w->send), with @i its slot and @k the PSN's index in it;
 * else NULL.
 */
static struct frdma_wwqe *frdma_wire_started_wqe(struct frdma_wqp *w,
						 u32 psn, u32 *i, u32 *k)
{
	struct frdma_wwqe *e;
	s32 d;

	for (*i = w->tail; *i != w->head; (*i)++) {
		e = frdma_wslot(w, *i);
		d = frdma_psn_diff(psn, e->first_psn);
		if (d >= 0 && d < e->npsn) {
			*k = d;
			return e;
		}
		if (*i == w->send)
			break;		/* not sent yet */
	}
	return NULL;
}

/*
 * Go back to PSN @psn: transmit again from the request that holds it.  A
 * READ is asked for again from its first missing response (the bytes
 * before it came), an atomic whole; either is marked as asked again, so
 * that further hints of the same loss do not ask once more before the
 * answer starts to come.  frdma_wire_rewind() only moves the send position
 * and returns false when no request in flight holds @psn;
 * frdma_wire_go_back() transmits too.
 */
static bool frdma_wire_rewind(struct frdma_wqp *w, u32 psn)
{
	struct frdma_wwqe *e;
	u32 i, k;

	e = frdma_wire_started_wqe(w, psn, &i, &k);
	if (!e)
		return false;
	w->send = i;
	w->send_pkt = k;
	if (frdma_wire_needs_resp(frdma_wsqe(e)->opcode)) {
		w->send_pkt = 0;	/* push() decides */
		e->read_again = true;
	}
	return true;
}

static void frdma_wire_go_back(struct frdma_wqp *w, u32 psn)
{
	frdma_wire_rewind(w, psn);
	frdma_wire_push(w);
}

/*
 * Ask again for what READ or atomic @e (sent already) has not been
 * answered: a READ from its first missing response on, an atomic whole.
 * Only @e is asked again: the responder received the requests around it.
 */
static void frdma_wire_ask_again(struct frdma_wqp *w, struct frdma_wwqe *e)
{
	u32 k = 0;

	if (frdma_wsqe(e)->opcode == IB_UVERBS_WR_RDMA_READ)
		k = div_u64(e->read_off, frdma_wire_mtu(w->qp));
	e->read_again = true;
	frdma_wire_send_pkt(w, e, k, false);
}

/*
 * The request holding PSN @psn, if the packet of that PSN was sent (a
 * READ's or atomic's: its request), with @k that packet's index in it;
 * else NULL.
 */
static struct frdma_wwqe *frdma_wire_sent_wqe(struct frdma_wqp *w, u32 psn,
					      u32 *k)
{
	struct frdma_wwqe *e;
	u32 i;

	e = frdma_wire_started_wqe(w, psn, &i, k);
	if (e && i == w->send &&
	    (frdma_wire_needs_resp(frdma_wsqe(e)->opcode) || *k >= w->send_pkt))
		return NULL;
	return e;
}

/*
 * Send the packet of PSN @psn again, alone, with AckReq (a READ or
 * atomic: ask again for what was not answered).  Returns false when it
 * was not sent yet (or its answer came); else true, with @end the last
 * PSN its acknowledgment or answer covers.
 */
static bool frdma_wire_resend(struct frdma_wqp *w, u32 psn, u32 *end)
{
	struct frdma_wwqe *e;
	u32 k;

	e = frdma_wire_sent_wqe(w, psn, &k);
	if (!e)
		return false;
	if (frdma_wire_needs_resp(frdma_wsqe(e)->opcode)) {
		if (e->done)
			return false;
		frdma_wire_ask_again(w, e);
		*end = frdma_psn_add(e->first_psn, e->npsn - 1);
		return true;
	}
	frdma_wire_send_pkt(w, e, k, false);
	*end = psn;
	return true;
}

/*
 * A sequence NAK of PSN @psn: the responder lost that packet.  It is
 * sent again alone, and the requester goes on sending what the window
 * allows: a responder that kept the packets after the gap (frdma's)
 * takes them behind it and acknowledges all it has; one that dropped
 * them (rdma_rxe's) acknowledges the packet only, and the requester
 * then goes back to the packet after it (frdma_wire_ack()).  A packet
 * not sent yet (the send position went back already) goes by going
 * back.
 */
static void frdma_wire_repair(struct frdma_wqp *w, u32 psn)
{
	u32 end;

	if (!frdma_wire_resend(w, psn, &end)) {
		frdma_wire_go_back(w, psn);
		return;
	}
	w->repair = true;
	w->repair_end = end;
	frdma_wire_push(w);
	frdma_wire_arm(w, false);
}

/*
 * An acknowledgment of PSN @psn passed READs or atomics without their
 * whole response: ask again for each, unless it was already and nothing
 * came since.
 */
static void frdma_wire_ask_passed(struct frdma_wqp *w, u32 psn)
{
	struct frdma_wwqe *e;
	u32 i;

	for (i = w->tail; i != w->send && i != w->head; i++) {
		e = frdma_wslot(w, i);
		if (frdma_psn_diff(frdma_psn_add(e->first_psn, e->npsn - 1),
				   psn) > 0)
			break;
		if (frdma_wire_needs_resp(frdma_wsqe(e)->opcode) && !e->done &&
		    !e->read_again)
			frdma_wire_ask_again(w, e);
	}
}

/*
 * Everything up to PSN @psn is acknowledged: complete what that finishes.
 * A READ or atomic the acknowledgment passes without its response lost
 * the response (or some of it): it is asked for again.
 */
static void frdma_wire_ack(struct frdma_wqp *w, u32 psn)
{
	struct frdma_wwqe *e;
	u32 next = frdma_psn_add(psn, 1);

	if (frdma_psn_diff(next, w->una) <= 0 ||
	    frdma_psn_diff(next, w->psn) > 0)
		return;		/* old, or beyond what was sent */
	frdma_wire_cwnd_grow(w, frdma_psn_diff(next, w->una));
	w->una = next;
	w->retry_left = READ_ONCE(w->qp->attr.retry_cnt);
	while (w->tail != w->head) {
		e = frdma_wslot(w, w->tail);
		if (frdma_psn_diff(frdma_psn_add(e->first_psn, e->npsn - 1),
				   psn) > 0)
			break;
		if (frdma_wire_needs_resp(frdma_wsqe(e)->opcode) && !e->done) {
			w->una = e->first_psn;
			frdma_wire_ask_passed(w, psn);
			break;
		}
		frdma_wire_complete(w, e, IB_WC_SUCCESS);
	}
	if (frdma_psn_diff(w->send, w->tail) < 0) {
		w->send = w->tail;
		w->send_pkt = 0;
	}
	/* Progress through the packet a sequence NAK had sent again. */
	if (w->repair && frdma_psn_diff(next, w->repair_end) > 0)
		w->repair = false;
	w->rnr_left = READ_ONCE(w->qp->attr.rnr_retry);
	frdma_wire_arm(w, true);
}

/* The request holding @psn failed: complete it and fail the QP. */
static void frdma_wire_fail(struct frdma_wqp *w, enum ib_wc_status status)
{
	if (w->tail == w->head)
		return;
	frdma_wire_complete(w, frdma_wslot(w, w->tail), status);
	cancel_delayed_work(&w->rto_work);
	frdma_qp_to_error(w->qp, 0);
}

static const u32 frdma_wire_rnr_usecs[32] = {
	655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960,
	1280, 1920, 2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720,
	40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

/* A READ response or atomic acknowledgment: data for request @e. */
static void frdma_wire_resp_data(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	struct frdma_wwqe *e = NULL;
	u32 i, mtu, expect;

	for (i = w->tail; i != w->send && i != w->head; i++) {
		struct frdma_wwqe *c = frdma_wslot(w, i);

		if (frdma_psn_diff(pkt->psn, c->first_psn) >= 0 &&
		    frdma_psn_diff(pkt->psn, c->first_psn) < c->npsn) {
			e = c;
			break;
		}
	}
	if (!e || e->done)
		return;
	if (pkt->ops & FRDMA_F_ATOMIC) {
		u64 orig;

		/* Only an atomic has the 8-byte buffer its result goes to. */
		if (frdma_wsqe(e)->opcode != IB_UVERBS_WR_ATOMIC_CMP_AND_SWP &&
		    frdma_wsqe(e)->opcode != IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD)
			return;
		orig = frdma_get_be64(pkt->hdr + sizeof(struct frdma_aeth));
		frdma_mr_write(e->sgl.mr[0], e->sgl.addr[0], &orig,
			       sizeof(orig));
		e->done = true;
		frdma_wire_ack(w, pkt->psn);
		return;
	}
	/*
	 * An atomic write is answered by a READ response without payload,
	 * as IBTA has it (and rdma_rxe sends): an acknowledgment.  A later
	 * ACK acknowledges it too.
	 */
	if (frdma_wsqe(e)->opcode == IB_UVERBS_WR_ATOMIC_WRITE &&
	    pkt->opcode == FRDMA_OP_READ_RESP_ONLY && !pkt->paylen) {
		frdma_wire_ack(w, pkt->psn);
		return;
	}
	if (frdma_wsqe(e)->opcode != IB_UVERBS_WR_RDMA_READ)
		return;
	mtu = frdma_wire_mtu(w->qp);
	expect = frdma_psn_add(e->first_psn, e->read_off / mtu);
	if (pkt->psn != expect) {
		/*
		 * A response was lost (or comes late): once the answer has
		 * ended, ask for the rest from the first missing response,
		 * unless that was asked for already and nothing came since.
		 * Waiting for the last response of the answer keeps one
		 * request per answer, however many responses it lost or
		 * reordered.
		 */
		if (frdma_psn_diff(pkt->psn, expect) > 0 &&
		    (pkt->ops & FRDMA_F_LAST) && !e->read_again) {
			frdma_wire_ask_again(w, e);
			frdma_wire_arm(w, false);
		}
		return;
	}
	e->read_again = false;
	if (pkt->paylen > e->len - e->read_off ||
	    (!(pkt->ops & FRDMA_F_LAST) && pkt->paylen != mtu))
		return;		/* malformed: dropped, the timer recovers */
	if (pkt->paylen) {
		struct frdma_sgl *s = &e->sgl;
		u64 off = e->read_off;
		const u8 *src = pkt->payload;
		u32 left = pkt->paylen, n;

		for (i = 0; i < s->n && left; i++) {
			if (off >= s->len[i]) {
				off -= s->len[i];
				continue;
			}
			n = min_t(u64, left, s->len[i] - off);
			frdma_mr_write(s->mr[i], s->addr[i] + off, src, n);
			src += n;
			left -= n;
			off = 0;
		}
	}
	e->read_off += pkt->paylen;
	/* Each response in sequence is progress: the timer starts again. */
	w->retry_left = READ_ONCE(w->qp->attr.retry_cnt);
	frdma_wire_arm(w, true);
	if (pkt->ops & FRDMA_F_LAST) {
		if (e->read_off != e->len)
			return;
		e->done = true;
		frdma_wire_ack(w, pkt->psn);
	} else if (pkt->ops & FRDMA_H_AETH) {
		frdma_wire_ack(w, frdma_psn_add(e->first_psn, -1));
	}
}

/* Was @psn sent and is it not acknowledged yet? */
static bool frdma_wire_in_flight(const struct frdma_wqp *w, u32 psn)
{
	return frdma_psn_diff(psn, w->una) >= 0 &&
	       frdma_psn_diff(psn, w->psn) < 0;
}

/**
 * frdma_wire_recv_resp - the completer: a response packet for this QP
 * @w: the QP's wire state, locked
 * @pkt: the packet
 */
void frdma_wire_recv_resp(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	u32 aeth, syn;
	bool repair;

	if (!w->wqe || READ_ONCE(w->qp->state) != IB_QPS_RTS)
		return;
	if (pkt->ops & (FRDMA_F_READ | FRDMA_F_ATOMIC)) {
		frdma_wire_resp_data(w, pkt);
		frdma_wire_push(w);
		return;
	}
	aeth = frdma_get_be32(pkt->hdr);
	syn = aeth >> 24;
	switch (syn & FRDMA_AETH_TYPE) {
	case FRDMA_AETH_T_ACK:
		repair = w->repair;
		frdma_wire_ack(w, pkt->psn);
		/*
		 * An ACK that ends exactly at the packet a sequence NAK had
		 * sent again, with more sent after it: the responder kept none
		 * of those (frdma_wire_repair()).  Only an ACK says so: the
		 * acknowledgment a READ response or NAK implies does not.
		 */
		if (repair && !w->repair && pkt->psn == w->repair_end &&
		    frdma_psn_diff(w->psn, frdma_psn_add(pkt->psn, 1)) > 0)
			frdma_wire_rewind(w, frdma_psn_add(pkt->psn, 1));
		break;
	case FRDMA_AETH_T_RNR:
		frdma_wire_count(FRDMA_WS_RNR_RX);
		/* Only for a PSN in flight: else stale. */
		if (!frdma_wire_in_flight(w, pkt->psn))
			break;
		w->repair = false;	/* it goes back from there anyway */
		frdma_wire_ack(w, frdma_psn_add(pkt->psn, -1));
		if (!w->rnr_left) {
			frdma_wire_fail(w, IB_WC_RNR_RETRY_EXC_ERR);
			return;
		}
		if (w->rnr_left != 7)
			w->rnr_left--;
		if (!frdma_wire_rewind(w, pkt->psn))
			break;
		w->rnr_wait = true;
		mod_delayed_work(system_unbound_wq, &w->rto_work,
				 usecs_to_jiffies(frdma_wire_rnr_usecs[syn & 31]));
		return;
	case FRDMA_AETH_T_NAK:
		/*
		 * One that ends a request in error only for a PSN sent and not
		 * acknowledged: else it is stale (or forged), and would fail
		 * the oldest request, whichever it is.
		 */
		if (syn != FRDMA_NAK_PSN_SEQ &&
		    !frdma_wire_in_flight(w, pkt->psn))
			break;
		/* A NAK acknowledges what precedes it, and nothing after. */
		if (syn == FRDMA_NAK_PSN_SEQ)
			w->repair = false;
		frdma_wire_ack(w, frdma_psn_add(pkt->psn, -1));
		switch (syn) {
		case FRDMA_NAK_PSN_SEQ:
			frdma_wire_count(FRDMA_WS_SEQ_NAK_RX);
			frdma_wire_cwnd_cut(w);
			frdma_wire_repair(w, pkt->psn);
			return;
		case FRDMA_NAK_INV_REQ:
			frdma_wire_fail(w, IB_WC_REM_INV_REQ_ERR);
			return;
		case FRDMA_NAK_REM_ACCESS:
			frdma_wire_fail(w, IB_WC_REM_ACCESS_ERR);
			return;
		default:
			frdma_wire_fail(w, IB_WC_REM_OP_ERR);
			return;
		}
	default:
		return;
	}
	frdma_wire_push(w);
}

/*
 * The probe: send the oldest unacknowledged packet again, alone, asking
 * for an acknowledgment (frdma_wire_resend()).  The responder answers it
 * whatever became of the packets around it: if it had it, with an
 * acknowledgment (one that was lost, or was never asked for: the
 * window's last packets were lost); if not, by taking it, and a sequence
 * NAK for the next gap follows (the NAK that was lost).  One packet,
 * where a timeout resends the window.
 */
static void frdma_wire_probe(struct frdma_wqp *w)
{
	u32 end;

	frdma_wire_resend(w, w->una, &end);
}

static void frdma_wire_rto_work(struct work_struct *work)
{
	struct frdma_wqp *w = container_of(to_delayed_work(work),
					   struct frdma_wqp, rto_work);
	unsigned long due, next;

	/*
	 * Acknowledgments that arrived before the timer fired are taken
	 * first: a guest or host that stalled for longer than the timeout
	 * runs its timers and its receive queue at once, and the timeout
	 * then finds them waiting.
	 */
	frdma_wire_rx_flush();
	mutex_lock(&w->lock);
	due = w->rto_start + frdma_wire_rto(w->qp);
	if (!w->wqe || READ_ONCE(w->qp->state) != IB_QPS_RTS) {
		w->rnr_wait = false;
	} else if (w->rnr_wait) {
		w->rnr_wait = false;
		frdma_wire_push(w);
	} else if (w->tail != w->head && time_before(jiffies, due)) {
		/*
		 * Not expired (progress may have restarted the timer
		 * meanwhile): a probe every probe timeout without progress.
		 */
		if (!time_before(jiffies, w->probe_at)) {
			frdma_wire_count(FRDMA_WS_PROBE);
			frdma_wire_probe(w);
			w->probe_at = jiffies + frdma_wire_pto(w->qp);
		}
		next = time_before(w->probe_at, due) ? w->probe_at : due;
		queue_delayed_work(system_unbound_wq, &w->rto_work,
				   next - jiffies);
	} else if (w->tail != w->head) {
		if (!w->retry_left) {
			frdma_wire_fail(w, IB_WC_RETRY_EXC_ERR);
		} else {
			w->retry_left--;
			frdma_wire_count(FRDMA_WS_RETRANS);
			frdma_wire_go_back(w, w->una);
			frdma_wire_arm(w, true);
		}
	}
	mutex_unlock(&w->lock);
}

/**
 * frdma_wire_is_remote - whether a QP's work requests go on the wire
 * @qp: the QP
 *
 * Return: true when the QP has wire state (its peer was not an frdma
 * device of this kernel when it went to RTR).
 */
bool frdma_wire_is_remote(struct frdma_qp *qp)
{
	return READ_ONCE(qp->wire);
}

/**
 * frdma_wire_post - queue a validated work request for the wire
 * @qp: the QP, whose sq_mutex the caller holds
 * @sqe: the validated SQE copy
 * @lsgl: its local memory; taken over (emptied) on success
 * @len: the message length
 *
 * Return: 0 when the request was taken (it completes later), -EBUSY when
 * FRDMA_WIRE_WQES requests are in flight (the send queue is run again
 * when one completes), or -EOPNOTSUPP for an operation the wire does not
 * carry.
 */
int frdma_wire_post(struct frdma_qp *qp, const struct frdma_sqe *sqe,
		    struct frdma_sgl *lsgl, u64 len)
{
	struct frdma_wqp *w = qp->wire;
	struct frdma_wwqe *e;
	u32 mtu = frdma_wire_mtu(qp);

	if (qp->ibqp.qp_type == IB_QPT_UC)	/* no ACKs: wire_uc.c */
		return frdma_wire_uc_post(qp, sqe, lsgl, len);
	switch (sqe->opcode) {
	case IB_UVERBS_WR_SEND:
	case IB_UVERBS_WR_SEND_WITH_IMM:
	case IB_UVERBS_WR_SEND_WITH_INV:
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
	case IB_UVERBS_WR_RDMA_READ:
	case IB_UVERBS_WR_ATOMIC_CMP_AND_SWP:
	case IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD:
	case IB_UVERBS_WR_ATOMIC_WRITE:
		break;
	default:
		return -EOPNOTSUPP;
	}
	mutex_lock(&w->lock);
	if (!w->wqe) {
		w->wqe = kvcalloc(FRDMA_WIRE_WQES, sizeof(*w->wqe),
				  GFP_KERNEL_ACCOUNT);
		if (!w->wqe) {
			mutex_unlock(&w->lock);
			return -ENOMEM;
		}
	}
	if (w->head - w->tail >= FRDMA_WIRE_WQES) {
		w->sq_blocked = true;
		mutex_unlock(&w->lock);
		return -EBUSY;
	}
	e = frdma_wslot(w, w->head);
	memcpy(e->sqe, sqe, 1U << qp->sq.entry_shift);
	e->sgl = *lsgl;
	lsgl->n = 0;
	e->len = len;
	e->first_psn = w->psn;
	if (sqe->opcode == IB_UVERBS_WR_ATOMIC_CMP_AND_SWP ||
	    sqe->opcode == IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD ||
	    sqe->opcode == IB_UVERBS_WR_ATOMIC_WRITE)
		e->npsn = 1;
	else
		e->npsn = max_t(u64, 1, DIV_ROUND_UP_ULL(len, mtu));
	e->done = false;
	e->read_again = false;
	e->read_off = 0;
	w->psn = frdma_psn_add(w->psn, e->npsn);
	if (w->tail == w->head) {
		w->retry_left = READ_ONCE(qp->attr.retry_cnt);
		w->rnr_left = READ_ONCE(qp->attr.rnr_retry);
	}
	w->head++;
	frdma_wire_push(w);
	mutex_unlock(&w->lock);
	return 0;
}

/* Drop every request in flight, completing them with @status if set. */
static void frdma_wire_drop(struct frdma_wqp *w, bool flush)
{
	struct frdma_wwqe *e;

	while (w->tail != w->head) {
		e = frdma_wslot(w, w->tail);
		if (flush) {
			frdma_wire_complete(w, e, IB_WC_WR_FLUSH_ERR);
		} else {
			frdma_wire_sgl_put(&e->sgl);
			w->tail++;
		}
	}
	w->send = w->tail;
	w->send_pkt = 0;
	w->rnr_wait = false;
	w->repair = false;
	w->una = w->psn;
	cancel_delayed_work(&w->rto_work);
	frdma_wire_resp_reset(w);
}

/**
 * frdma_wire_flush - complete every request in flight with
 *	IB_WC_WR_FLUSH_ERR (the QP is in the error state)
 * @qp: the QP, whose sq_mutex the caller holds
 */
void frdma_wire_flush(struct frdma_qp *qp)
{
	struct frdma_wqp *w = qp->wire;

	if (!w)
		return;
	mutex_lock(&w->lock);
	frdma_wire_drop(w, true);
	mutex_unlock(&w->lock);
}

/* Is the destination of @qp an frdma device of this kernel? */
static bool frdma_wire_peer_local(struct frdma_qp *qp)
{
	struct frdma_dev *fdev;
	union ib_gid dgid;

	spin_lock(&qp->lock);
	dgid = qp->attr.ah_attr.grh.dgid;
	spin_unlock(&qp->lock);
	fdev = frdma_dev_get_by_gid(to_fdev(qp->ibqp.device), &dgid);
	if (!fdev)
		return false;
	ib_device_put(&fdev->ibdev);
	return true;
}

/**
 * frdma_wire_qp_modified - modify_qp changed a QP's attributes
 * @qp: the QP, whose sq_mutex the caller holds
 * @attr: the attributes
 * @mask: which of them changed
 *
 * An RC QP whose peer is not an frdma device of this kernel gets its wire
 * state when it goes to RTR (with the wire on); PSNs follow the
 * attributes; RESET drops what is in flight, ERR flushes it.
 */
void frdma_wire_qp_modified(struct frdma_qp *qp, const struct ib_qp_attr *attr,
			    int mask)
{
	struct frdma_wqp *w = qp->wire;

	if (!w && frdma_wire_enabled && qp->fdev->wire && !qp->gsi &&
	    (qp->ibqp.qp_type == IB_QPT_RC ||
	     qp->ibqp.qp_type == IB_QPT_UC) && (mask & IB_QP_STATE) &&
	    attr->qp_state == IB_QPS_RTR && !frdma_wire_peer_local(qp)) {
		w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
		if (!w)
			return;		/* the QP reaches local peers only */
		w->qp = qp;
		mutex_init(&w->lock);
		INIT_DELAYED_WORK(&w->rto_work, frdma_wire_rto_work);
		w->sport = 0xc000 | (hash_32(qp->ibqp.qp_num, 14) & 0x3fff);
		w->epsn = qp->attr.rq_psn & FRDMA_PSN_MASK;
		w->psn = qp->attr.sq_psn & FRDMA_PSN_MASK;
		w->una = w->psn;
		w->recover = w->psn;
		w->cwnd = FRDMA_WIRE_WINDOW;
		/* Published after it is whole: the receive worker reads it. */
		smp_store_release(&qp->wire, w);
	}
	if (!w)
		return;
	mutex_lock(&w->lock);
	if (mask & IB_QP_RQ_PSN) {
		w->epsn = attr->rq_psn & FRDMA_PSN_MASK;
		w->nak_sent = false;
		frdma_wire_kept_purge(w);
	}
	if (mask & IB_QP_SQ_PSN && w->tail == w->head) {
		w->psn = attr->sq_psn & FRDMA_PSN_MASK;
		w->una = w->psn;
		w->recover = w->psn;
		w->repair = false;
	}
	if (mask & IB_QP_STATE) {
		if (attr->qp_state == IB_QPS_RESET)
			frdma_wire_drop(w, false);
		else if (attr->qp_state == IB_QPS_ERR)
			frdma_wire_drop(w, true);
	}
	mutex_unlock(&w->lock);
}

/**
 * frdma_wire_qp_destroy - free a QP's wire state
 * @qp: the QP, whose sq_mutex the caller holds; no lookup finds it any
 *	more and nobody holds a reference
 *
 * The timer never takes sq_mutex, so it is waited for here.
 */
void frdma_wire_qp_destroy(struct frdma_qp *qp)
{
	struct frdma_wqp *w = qp->wire;

	lockdep_assert_held(&qp->sq_mutex);
	if (!w)
		return;
	WRITE_ONCE(qp->wire, NULL);
	cancel_delayed_work_sync(&w->rto_work);
	mutex_lock(&w->lock);
	frdma_wire_drop(w, false);
	mutex_unlock(&w->lock);
	cancel_delayed_work_sync(&w->rto_work);
	mutex_destroy(&w->lock);
	kfree(w->kept);
	kvfree(w->wqe);
	kfree(w);
}
