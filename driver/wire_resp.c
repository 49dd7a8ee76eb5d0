// SPDX-License-Identifier: GPL-2.0
/*
 * frdma on the wire: the responder of an RC QP.
 *
 * Request packets are taken in PSN order.  The expected PSN (epsn) starts
 * at the QP's rq_psn.  A packet at epsn is executed: a SEND's payload goes
 * into the receive buffers of the RQE its first packet took (no RQE: an
 * RNR NAK with the QP's min_rnr_timer, nothing consumed); a WRITE's into
 * the MR its RETH's rkey names, checked once for the whole message; a
 * READ is answered with its response packets at once;
 * an atomic is executed and answered, and its result kept for a duplicate;
 * an atomic write stores its 8 bytes at once and is answered by a READ
 * response without payload.
 * The last packet of a SEND or WRITE with immediate completes the RQE.
 * Packets with AckReq are acknowledged (coalescing: the requester decides
 * how often).
 *
 * A packet beyond epsn gets one sequence NAK (until epsn arrives); a packet
 * before it is a duplicate: a READ is answered again from its saved
 * request, an atomic replays its saved result (the last FRDMA_WIRE_READS
 * of them are kept, as many as max_dest_rd_atomic allows), an atomic write
 * is answered again (not done again), anything else is acknowledged again
 * if it asks.  An access violation, an invalid request
 * (a length or opcode sequence error, an operation the QP does not allow)
 * or a broken receive ring is NAKed and moves the QP to the error state.
 *
 * What an operation may do is decided by the responder's rules in resp.c,
 * the local fabric's too: frdma_resp_access() for remote memory,
 * frdma_resp_atomic() for the atomics, frdma_recv_take_one() for receive
 * queues.  This file adds only what packets add: PSN order, the message
 * a packet belongs to, duplicates and the answers.
 */

#include "mr.h"
#include "wire.h"

static void frdma_wire_ack_send(struct frdma_wqp *w, u8 syn, u32 psn)
{
	struct frdma_xpkt x = {
		.opcode = FRDMA_OP_ACK,
		.psn = psn,
		.dqpn = READ_ONCE(w->qp->attr.dest_qp_num),
		.ext_len = sizeof(struct frdma_aeth),
	};

	frdma_put_be32(((u32)syn << 24) | (w->msn & FRDMA_PSN_MASK), x.ext);
	frdma_wire_xmit(w, &x);
}

/* A fatal NAK: tell the requester, and fail this QP. */
static void frdma_wire_nak_fatal(struct frdma_wqp *w, u8 syn, u32 psn)
{
	frdma_wire_ack_send(w, syn, psn);
	frdma_wire_resp_reset(w);
	frdma_qp_to_error(w->qp, syn == FRDMA_NAK_REM_ACCESS ?
			  IB_EVENT_QP_ACCESS_ERR : IB_EVENT_QP_REQ_ERR);
}

/*
 * The fatal NAK for a responder's verdict (frdma_resp_access()): the
 * syndrome that makes the requester complete with @status.
 */
static void frdma_wire_nak_status(struct frdma_wqp *w,
				  enum ib_wc_status status, u32 psn)
{
	u8 syn = FRDMA_NAK_REM_OP;

	if (status == IB_WC_REM_ACCESS_ERR)
		syn = FRDMA_NAK_REM_ACCESS;
	else if (status == IB_WC_REM_INV_REQ_ERR)
		syn = FRDMA_NAK_INV_REQ;
	frdma_wire_nak_fatal(w, syn, psn);
}

void frdma_wire_rcv_put(struct frdma_wqp *w)
{
	while (w->rcv.n)
		frdma_mr_put(w->rcv.mr[--w->rcv.n]);
}

void frdma_wire_post_recv(struct frdma_wqp *w, u64 wr_id,
			  enum ib_wc_status status, u32 byte_len, u8 opcode,
			  const struct frdma_pkt *pkt)
{
	struct frdma_qp *qp = w->qp;
	struct frdma_cqe cqe = {
		.wr_id = wr_id,
		.qp_num = qp->ibqp.qp_num,
		.src_qp = READ_ONCE(qp->attr.dest_qp_num),
		.status = status,
		.opcode = opcode,
		.byte_len = status == IB_WC_SUCCESS ? byte_len : 0,
	};

	if (status == IB_WC_SUCCESS && pkt) {
		const u8 *p = pkt->hdr;

		if (pkt->ops & FRDMA_H_RETH)
			p += sizeof(struct frdma_reth);
		if (pkt->ops & FRDMA_H_IMM) {
			memcpy(&cqe.imm_data, p, 4);
			cqe.wc_flags = FRDMA_WC_WITH_IMM;
		} else if (pkt->ops & FRDMA_H_IETH) {
			cqe.imm_data = frdma_get_be32(p);
			cqe.wc_flags = FRDMA_WC_WITH_INV;
		}
	}
	frdma_cq_post(to_fcq(qp->ibqp.recv_cq), &cqe,
		      status != IB_WC_SUCCESS || (pkt && pkt->se));
}

/**
 * frdma_wire_resp_reset - forget the message being received
 * @w: the QP's wire state, locked
 *
 * An RQE taken by a SEND not yet complete is completed with
 * IB_WC_WR_FLUSH_ERR; the packets kept ahead are freed.
 */
void frdma_wire_resp_reset(struct frdma_wqp *w)
{
	if (w->rcv_active)
		frdma_wire_post_recv(w, w->rcv_wr_id, IB_WC_WR_FLUSH_ERR, 0,
				     FRDMA_WC_RECV, NULL);
	w->rcv_active = false;
	frdma_wire_rcv_put(w);
	if (w->wr_mr)
		frdma_mr_put(w->wr_mr);
	w->wr_mr = NULL;
	w->wr_left = 0;
	frdma_wire_kept_purge(w);
}

/*
 * Take the next RQE for a message (frdma_recv_take_one()): its buffers,
 * checked and resolved, into w->rcv when @sgl.  Returns 0, -EAGAIN when
 * none is posted, -ENODEV when the QP no longer receives, or -EINVAL (a
 * broken ring, or an RQE whose buffers the rules refuse, which is then
 * completed in error: the receiver's error).
 */
int frdma_wire_rqe_take(struct frdma_wqp *w, u64 *room, bool sgl)
{
	enum ib_wc_status status;
	int err;

	err = frdma_recv_take_one(w->qp, sgl ? &w->rcv : NULL, room,
				  &w->rcv_wr_id, &status);
	if (err || status == IB_WC_SUCCESS)
		return err;
	frdma_wire_rcv_put(w);
	frdma_wire_post_recv(w, w->rcv_wr_id, status, 0, FRDMA_WC_RECV, NULL);
	return -EINVAL;
}

static void frdma_wire_rnr(struct frdma_wqp *w, u32 psn)
{
	frdma_wire_count(FRDMA_WS_RNR_TX);
	frdma_wire_ack_send(w, FRDMA_AETH_T_RNR |
			    (READ_ONCE(w->qp->attr.min_rnr_timer) & 31), psn);
}

/* Write @len bytes from @src at byte @off of the receive buffers. */
void frdma_wire_rcv_write(struct frdma_wqp *w, u64 off, const u8 *src,
			  u32 len)
{
	struct frdma_sgl *s = &w->rcv;
	u32 i, n;

	for (i = 0; i < s->n && len; i++) {
		if (off >= s->len[i]) {
			off -= s->len[i];
			continue;
		}
		n = min_t(u64, len, s->len[i] - off);
		frdma_mr_write(s->mr[i], s->addr[i] + off, src, n);
		src += n;
		len -= n;
		off = 0;
	}
}

/*
 * Take the next RQE (frdma_wire_rqe_take()) for the message at @psn, or
 * answer the requester: an RNR NAK when there is none, a remote
 * operational error NAK when the ring or the RQE is broken.  Returns
 * whether an RQE was taken.
 */
static bool frdma_wire_rqe_take_or_nak(struct frdma_wqp *w, u32 psn,
				       u64 *room, bool sgl)
{
	int err = frdma_wire_rqe_take(w, room, sgl);

	if (err == -EAGAIN)
		frdma_wire_rnr(w, psn);
	else if (err && err != -ENODEV)	/* -ENODEV: being reset, dropped */
		frdma_wire_nak_fatal(w, FRDMA_NAK_REM_OP, psn);
	return !err;
}

/* A SEND packet at epsn.  Returns false when it was not consumed. */
static bool frdma_wire_recv_send(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	u32 mtu = frdma_wire_mtu(w->qp);
	u64 room;

	if (pkt->ops & FRDMA_F_FIRST) {
		/* Not inside another SEND, nor inside an RDMA WRITE. */
		if (w->rcv_active || w->wr_mr) {
			frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
			return false;
		}
		if (!frdma_wire_rqe_take_or_nak(w, pkt->psn, &room, true))
			return false;
		w->rcv_active = true;
		w->rcv_off = 0;
		w->wr_left = room;	/* the room left, for a SEND */
	} else if (!w->rcv_active) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return false;
	}
	if (pkt->paylen > w->wr_left) {
		w->rcv_active = false;
		frdma_wire_rcv_put(w);
		frdma_wire_post_recv(w, w->rcv_wr_id, IB_WC_LOC_LEN_ERR, 0,
				     FRDMA_WC_RECV, NULL);
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return false;
	}
	if (!(pkt->ops & FRDMA_F_LAST) && pkt->paylen != mtu) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return false;
	}
	frdma_wire_rcv_write(w, w->rcv_off, pkt->payload, pkt->paylen);
	w->rcv_off += pkt->paylen;
	w->wr_left -= pkt->paylen;
	if (pkt->ops & FRDMA_F_LAST) {
		enum ib_wc_status status = IB_WC_SUCCESS;

		if ((pkt->ops & FRDMA_H_IETH) &&
		    frdma_mw_invalidate(&w->qp->ibqp,
					frdma_get_be32(pkt->hdr), true))
			status = IB_WC_REM_INV_REQ_ERR;
		w->rcv_active = false;
		frdma_wire_rcv_put(w);
		w->wr_left = 0;
		frdma_wire_post_recv(w, w->rcv_wr_id, status, w->rcv_off,
				     FRDMA_WC_RECV, pkt);
		w->msn++;
	}
	return true;
}

/* An RDMA WRITE packet at epsn.  Returns false when it was not consumed. */
static bool frdma_wire_recv_write(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	struct frdma_qp *qp = w->qp;
	u32 mtu = frdma_wire_mtu(qp);
	u64 room;

	if (pkt->ops & FRDMA_F_FIRST) {
		const struct frdma_reth *reth = (const void *)pkt->hdr;
		u64 va = frdma_get_be64(&reth->va);
		u32 len = frdma_get_be32(&reth->len);
		enum ib_wc_status status;

		if (w->wr_mr || w->rcv_active) {
			frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
			return false;
		}
		status = frdma_resp_access(qp, qp->ibqp.pd,
					   IB_UVERBS_WR_RDMA_WRITE,
					   frdma_get_be32(&reth->rkey), va, len,
					   &w->wr_mr);
		if (status != IB_WC_SUCCESS) {
			frdma_wire_nak_status(w, status, pkt->psn);
			return false;
		}
		w->wr_va = va;
		w->wr_left = len;
		w->rcv_off = 0;
	} else if (!w->wr_mr) {
		/*
		 * A MIDDLE or LAST packet belongs to an RDMA WRITE whose FIRST
		 * found its MR (a message of more than one packet is never
		 * empty): not to a SEND being received, nor to nothing.
		 */
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return false;
	}
	if (pkt->paylen > w->wr_left ||
	    (!(pkt->ops & FRDMA_F_LAST) && pkt->paylen != mtu) ||
	    ((pkt->ops & FRDMA_F_LAST) && pkt->paylen != w->wr_left)) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return false;
	}
	if ((pkt->ops & FRDMA_F_LAST) && (pkt->ops & FRDMA_H_IMM)) {
		/* The RQE first: without one nothing of this packet is done. */
		if (!frdma_wire_rqe_take_or_nak(w, pkt->psn, &room, false))
			return false;
	}
	if (pkt->paylen)
		frdma_mr_write(w->wr_mr, w->wr_va, pkt->payload, pkt->paylen);
	w->wr_va += pkt->paylen;
	w->wr_left -= pkt->paylen;
	w->rcv_off += pkt->paylen;
	if (pkt->ops & FRDMA_F_LAST) {
		if (w->wr_mr)
			frdma_mr_put(w->wr_mr);
		w->wr_mr = NULL;
		if (pkt->ops & FRDMA_H_IMM)
			frdma_wire_post_recv(w, w->rcv_wr_id, IB_WC_SUCCESS,
					     w->rcv_off,
					     FRDMA_WC_RECV_RDMA_WITH_IMM, pkt);
		w->msn++;
	}
	return true;
}

/*
 * Send the responses of READ request @r from @mr, the MR
 * frdma_resp_access() gave for it (NULL for a zero-length READ), and put
 * @mr.
 */
static void frdma_wire_read_send(struct frdma_wqp *w,
				 const struct frdma_wread *r,
				 struct frdma_mr *mr)
{
	struct frdma_qp *qp = w->qp;
	struct frdma_sgl sgl = { .mr[0] = mr };
	struct frdma_xpkt x = {};
	u32 mtu = frdma_wire_mtu(qp), k;

	if (mr) {
		sgl.n = 1;
		sgl.addr[0] = r->va;
		sgl.len[0] = r->len;
	}
	x.dqpn = READ_ONCE(qp->attr.dest_qp_num);
	x.sgl = &sgl;
	for (k = 0; k < r->npsn; k++) {
		bool first = k == 0, last = k + 1 == r->npsn;

		if (first && last)
			x.opcode = FRDMA_OP_READ_RESP_ONLY;
		else if (first)
			x.opcode = FRDMA_OP_READ_RESP_FIRST;
		else if (last)
			x.opcode = FRDMA_OP_READ_RESP_LAST;
		else
			x.opcode = FRDMA_OP_READ_RESP_MIDDLE;
		x.psn = frdma_psn_add(r->psn, k);
		x.ext_len = 0;
		if (first || last) {
			frdma_put_be32((FRDMA_AETH_ACK << 24) |
					   (w->msn & FRDMA_PSN_MASK), x.ext);
			x.ext_len = sizeof(struct frdma_aeth);
		}
		x.off = (u64)k * mtu;
		x.len = r->len ? min_t(u64, mtu, r->len - x.off) : 0;
		frdma_wire_xmit_more(w, &x);
		if (k % 64 == 63)
			cond_resched();
	}
	frdma_wire_xmit_flush(w);
	if (sgl.n)
		frdma_mr_put(sgl.mr[0]);
}

/*
 * Answer a duplicate READ request @r again: checked again like a new one
 * (the MR may be gone, the QP's rights revoked), NAKed when it fails.
 */
static void frdma_wire_read_respond(struct frdma_wqp *w,
				    const struct frdma_wread *r)
{
	enum ib_wc_status status;
	struct frdma_mr *mr;

	status = frdma_resp_access(w->qp, w->qp->ibqp.pd,
				   IB_UVERBS_WR_RDMA_READ, r->rkey, r->va,
				   r->len, &mr);
	if (status != IB_WC_SUCCESS)
		frdma_wire_nak_status(w, status, r->psn);
	else
		frdma_wire_read_send(w, r, mr);
}

/* The answer to an atomic write: a READ response without payload. */
static void frdma_wire_awrite_ack(struct frdma_wqp *w, u32 psn)
{
	struct frdma_xpkt x = {
		.opcode = FRDMA_OP_READ_RESP_ONLY,
		.psn = psn,
		.dqpn = READ_ONCE(w->qp->attr.dest_qp_num),
		.ext_len = sizeof(struct frdma_aeth),
	};

	frdma_put_be32((FRDMA_AETH_ACK << 24) | (w->msn & FRDMA_PSN_MASK), x.ext);
	frdma_wire_xmit(w, &x);
}

static void frdma_wire_atomic_ack(struct frdma_wqp *w, u32 psn, u64 orig)
{
	struct frdma_xpkt x = {
		.opcode = FRDMA_OP_ATOMIC_ACK,
		.psn = psn,
		.dqpn = READ_ONCE(w->qp->attr.dest_qp_num),
		.ext_len = sizeof(struct frdma_aeth) + sizeof(u64),
	};

	frdma_put_be32((FRDMA_AETH_ACK << 24) | (w->msn & FRDMA_PSN_MASK), x.ext);
	frdma_put_be64(orig, x.ext + sizeof(struct frdma_aeth));
	frdma_wire_xmit(w, &x);
}

/*
 * The kept READ (@atomic false) or atomic (@atomic true) request whose
 * PSNs hold @psn, or NULL.
 */
static struct frdma_wread *frdma_wire_kept(struct frdma_wqp *w, u32 psn,
					   bool atomic)
{
	struct frdma_wread *r;
	u32 i;
	s32 d;

	for (i = 0; i < FRDMA_WIRE_READS; i++) {
		r = &w->reads[i];
		d = frdma_psn_diff(psn, r->psn);
		if (r->npsn && r->atomic == atomic && d >= 0 && d < r->npsn)
			return r;
	}
	return NULL;
}

/* A duplicate request (PSN before epsn). */
static void frdma_wire_recv_dup(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	const struct frdma_reth *reth = (const void *)pkt->hdr;
	u32 mtu = frdma_wire_mtu(w->qp);
	struct frdma_wread part, *r;
	s32 d;

	if (pkt->opcode == FRDMA_OP_READ_REQ) {
		r = frdma_wire_kept(w, pkt->psn, false);
		if (!r)
			return;
		d = frdma_psn_diff(pkt->psn, r->psn);
		if (!d) {
			frdma_wire_read_respond(w, r);
			return;
		}
		/*
		 * A requester that got the first responses asks for the rest
		 * only, from the PSN of the first one lost: its RETH says
		 * which bytes (checked again like any READ), within the PSNs
		 * of the first answer.
		 */
		part.psn = pkt->psn;
		part.va = frdma_get_be64(&reth->va);
		part.rkey = frdma_get_be32(&reth->rkey);
		part.len = frdma_get_be32(&reth->len);
		part.npsn = max_t(u32, 1, DIV_ROUND_UP(part.len, mtu));
		if (part.npsn <= r->npsn - d)
			frdma_wire_read_respond(w, &part);
		return;
	}
	if (pkt->ops & FRDMA_F_ATOMIC) {
		r = frdma_wire_kept(w, pkt->psn, true);
		if (r)
			frdma_wire_atomic_ack(w, pkt->psn, r->orig);
		return;
	}
	if (pkt->opcode == FRDMA_OP_ATOMIC_WRITE) {
		frdma_wire_awrite_ack(w, pkt->psn);
		return;
	}
	if (pkt->ackreq)
		frdma_wire_ack_send(w, FRDMA_AETH_ACK,
				    frdma_psn_add(w->epsn, -1));
}

/* A READ request at epsn: answered at once. */
static void frdma_wire_recv_read(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	struct frdma_qp *qp = w->qp;
	const struct frdma_reth *reth = (const void *)pkt->hdr;
	struct frdma_wread *r = &w->reads[w->nreads % FRDMA_WIRE_READS];
	u64 va = frdma_get_be64(&reth->va);
	u32 rkey = frdma_get_be32(&reth->rkey), len = frdma_get_be32(&reth->len);
	u32 mtu = frdma_wire_mtu(qp);
	enum ib_wc_status status;
	struct frdma_mr *mr;

	/* Not inside another message, and allowed: else NAKed, nothing kept. */
	if (w->rcv_active || w->wr_mr) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return;
	}
	status = frdma_resp_access(qp, qp->ibqp.pd, IB_UVERBS_WR_RDMA_READ,
				   rkey, va, len, &mr);
	if (status != IB_WC_SUCCESS) {
		frdma_wire_nak_status(w, status, pkt->psn);
		return;
	}
	r->psn = pkt->psn;
	r->atomic = false;
	r->va = va;
	r->rkey = rkey;
	r->len = len;
	r->npsn = max_t(u32, 1, DIV_ROUND_UP(r->len, mtu));
	w->nreads++;
	w->epsn = frdma_psn_add(w->epsn, r->npsn);
	w->msn++;
	frdma_wire_read_send(w, r, mr);
}

/* An atomic request at epsn: executed and answered. */
static void frdma_wire_recv_atomic(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	const struct frdma_atheth *a = (const void *)pkt->hdr;
	u64 orig, cmp_add, swap;
	enum ib_wc_status status;
	struct frdma_wread *r;
	u8 op;

	if (w->rcv_active || w->wr_mr) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return;
	}
	if (pkt->opcode == FRDMA_OP_CMP_SWAP) {
		op = IB_UVERBS_WR_ATOMIC_CMP_AND_SWP;
		cmp_add = frdma_get_be64(&a->compare);
		swap = frdma_get_be64(&a->swap_add);
	} else {
		op = IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD;
		cmp_add = frdma_get_be64(&a->swap_add);
		swap = 0;
	}
	status = frdma_resp_atomic(w->qp, w->qp->ibqp.pd, op,
				   frdma_get_be32(&a->rkey),
				   frdma_get_be64(&a->va), cmp_add, swap, &orig);
	if (status != IB_WC_SUCCESS) {
		frdma_wire_nak_status(w, status, pkt->psn);
		return;
	}
	r = &w->reads[w->nreads++ % FRDMA_WIRE_READS];
	r->psn = pkt->psn;
	r->npsn = 1;
	r->atomic = true;
	r->orig = orig;
	w->epsn = frdma_psn_add(w->epsn, 1);
	w->msn++;
	frdma_wire_atomic_ack(w, pkt->psn, orig);
}

/*
 * An atomic write at epsn: its 8-byte payload, stored at once; then
 * answered.
 */
static void frdma_wire_recv_awrite(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	const struct frdma_reth *reth = (const void *)pkt->hdr;
	enum ib_wc_status status;
	u64 val, unused;

	if (frdma_get_be32(&reth->len) != sizeof(u64) ||
	    pkt->paylen != sizeof(u64) || w->rcv_active || w->wr_mr) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return;
	}
	memcpy(&val, pkt->payload, sizeof(val));
	status = frdma_resp_atomic(w->qp, w->qp->ibqp.pd,
				   IB_UVERBS_WR_ATOMIC_WRITE,
				   frdma_get_be32(&reth->rkey),
				   frdma_get_be64(&reth->va), val, 0, &unused);
	if (status != IB_WC_SUCCESS) {
		frdma_wire_nak_status(w, status, pkt->psn);
		return;
	}
	w->epsn = frdma_psn_add(w->epsn, 1);
	w->msn++;
	frdma_wire_awrite_ack(w, pkt->psn);
}

/*
 * Take packet @pkt, at the expected PSN.  Returns true when it was a SEND
 * or WRITE packet and was taken (an acknowledgment may follow it).
 */
static bool frdma_wire_recv_next(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	w->nak_sent = false;

	/* No packet carries more than the path MTU (IBTA C9-92). */
	if (pkt->paylen > frdma_wire_mtu(w->qp)) {
		frdma_wire_nak_fatal(w, FRDMA_NAK_INV_REQ, pkt->psn);
		return false;
	}
	if (pkt->opcode == FRDMA_OP_READ_REQ) {
		frdma_wire_recv_read(w, pkt);
		return false;
	}
	if (pkt->ops & FRDMA_F_ATOMIC) {
		frdma_wire_recv_atomic(w, pkt);
		return false;
	}
	if (pkt->opcode == FRDMA_OP_ATOMIC_WRITE) {
		frdma_wire_recv_awrite(w, pkt);
		return false;
	}
	if ((pkt->ops & FRDMA_F_SEND) ? !frdma_wire_recv_send(w, pkt) :
					!frdma_wire_recv_write(w, pkt))
		return false;
	w->epsn = frdma_psn_add(w->epsn, 1);
	return true;
}

/*
 * Packets ahead of the expected PSN.  A lost packet shows as a gap: the
 * responder NAKs the missing PSN once and keeps the packets that follow,
 * up to FRDMA_WIRE_KEEP PSNs ahead, where it used to drop them.  When
 * the missing packet comes, the kept ones are taken behind it, in order,
 * and one acknowledgment says how far that went.  A requester that sends
 * the NAKed packet alone (frdma's) goes on from there; one that goes
 * back and sends everything again (rdma_rxe's) finds the rest taken, as
 * duplicates.  The kept packet is the one taken, not its copy sent again:
 * a PSN carries the same packet every time.
 *
 * A kept packet holds its skb.  At most FRDMA_WIRE_KEPT_MAX are kept over
 * all QPs, against a peer that opens gaps everywhere; past it, packets
 * ahead are dropped, as before.  A slot holds the packet of one PSN; one
 * found behind the expected PSN (a READ used its PSN) is freed.
 */
static atomic_t frdma_wire_kept_total = ATOMIC_INIT(0);

static void frdma_wire_kept_free(struct frdma_pkt *pkt)
{
	kfree_skb(pkt->skb);
	pkt->skb = NULL;
	atomic_dec(&frdma_wire_kept_total);
}

/* Keep @pkt, @d PSNs ahead of the expected one. */
static void frdma_wire_keep(struct frdma_wqp *w, const struct frdma_pkt *pkt,
			    s32 d)
{
	struct frdma_pkt *k;

	BUILD_BUG_ON(!is_power_of_2(FRDMA_WIRE_KEEP) ||
		     FRDMA_WIRE_KEEP > FRDMA_PSN_MASK);
	if (d >= FRDMA_WIRE_KEEP)
		return;
	if (!w->kept) {
		w->kept = kcalloc(FRDMA_WIRE_KEEP, sizeof(*w->kept),
				  GFP_KERNEL_ACCOUNT);
		if (!w->kept)
			return;
	}
	k = &w->kept[pkt->psn % FRDMA_WIRE_KEEP];
	if (k->skb) {
		if (k->psn == pkt->psn)
			return;		/* kept already */
		frdma_wire_kept_free(k);	/* behind: stale */
		w->nkept--;
	}
	if (atomic_inc_return(&frdma_wire_kept_total) > FRDMA_WIRE_KEPT_MAX) {
		atomic_dec(&frdma_wire_kept_total);
		return;
	}
	*k = *pkt;
	k->skb = skb_get(pkt->skb);
	/* Held for a while: not the route's or conntrack's references. */
	skb_dst_drop(k->skb);
	nf_reset_ct(k->skb);
	w->nkept++;
	frdma_wire_count(FRDMA_WS_KEPT);
}

/* Take the kept packet of the expected PSN into @pkt, if there is one. */
static bool frdma_wire_kept_take(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	struct frdma_pkt *k;

	if (!w->nkept)
		return false;
	k = &w->kept[w->epsn % FRDMA_WIRE_KEEP];
	if (!k->skb)
		return false;
	*pkt = *k;
	k->skb = NULL;
	w->nkept--;
	if (pkt->psn == w->epsn)
		return true;
	frdma_wire_kept_free(pkt);	/* behind: stale */
	return false;
}

/**
 * frdma_wire_kept_purge - free a QP's kept packets
 * @w: the QP's wire state, locked
 */
void frdma_wire_kept_purge(struct frdma_wqp *w)
{
	u32 i;

	for (i = 0; w->nkept && i < FRDMA_WIRE_KEEP; i++) {
		if (w->kept[i].skb) {
			frdma_wire_kept_free(&w->kept[i]);
			w->nkept--;
		}
	}
}

/* Whether a packet ahead of the expected PSN is kept. */
static bool frdma_wire_kept_ahead(const struct frdma_wqp *w)
{
	u32 i;

	for (i = 0; w->nkept && i < FRDMA_WIRE_KEEP; i++)
		if (w->kept[i].skb &&
		    frdma_psn_diff(w->kept[i].psn, w->epsn) > 0)
			return true;
	return false;
}

/*
 * Take @pkt, at the expected PSN, then the kept packets behind it.  The
 * SEND and WRITE packets taken are acknowledged once, after the last of
 * them, when one asked for it or kept packets were taken; the answer to a
 * READ or atomic taken after them acknowledges them instead.  Kept
 * packets still ahead after that mean another gap (the next packet was
 * lost too): it is NAKed at once, which acknowledges the same.
 */
static void frdma_wire_recv_run(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	bool ack = false, kept = false, stuck;
	struct frdma_pkt next;
	u32 ack_psn = 0, epsn;

	for (;;) {
		epsn = w->epsn;
		if (frdma_wire_recv_next(w, pkt)) {
			if (pkt->ackreq || kept) {
				ack = true;
				ack_psn = pkt->psn;
			}
		} else if (w->epsn != epsn) {
			/* A READ or atomic: its answer acknowledges the rest. */
			ack = false;
		}
		/* Not taken: NAKed (RNR, or fatal). */
		stuck = w->epsn == epsn;
		if (kept)
			frdma_wire_kept_free(pkt);
		if (stuck || !frdma_wire_kept_take(w, &next))
			break;
		pkt = &next;
		kept = true;
	}
	if (!stuck && frdma_wire_kept_ahead(w)) {
		frdma_wire_count(FRDMA_WS_SEQ_NAK_TX);
		frdma_wire_ack_send(w, FRDMA_NAK_PSN_SEQ, w->epsn);
		w->nak_sent = true;
	} else if (ack) {
		frdma_wire_ack_send(w, FRDMA_AETH_ACK, ack_psn);
	}
}

/**
 * frdma_wire_recv_req - the responder: a request packet for this QP
 * @w: the QP's wire state, locked
 * @pkt: the packet
 */
void frdma_wire_recv_req(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	struct frdma_qp *qp = w->qp;
	enum ib_qp_state state = READ_ONCE(qp->state);
	s32 d;

	if (state != IB_QPS_RTR && state != IB_QPS_RTS &&
	    state != IB_QPS_SQD && state != IB_QPS_SQE)
		return;
	d = frdma_psn_diff(pkt->psn, w->epsn);
	if (d > 0) {
		if (!w->nak_sent) {
			frdma_wire_count(FRDMA_WS_SEQ_NAK_TX);
			frdma_wire_ack_send(w, FRDMA_NAK_PSN_SEQ, w->epsn);
			w->nak_sent = true;
		}
		frdma_wire_keep(w, pkt, d);
		return;
	}
	if (d < 0) {
		frdma_wire_count(FRDMA_WS_DUP);
		frdma_wire_recv_dup(w, pkt);
		return;
	}
	frdma_wire_recv_run(w, pkt);
}
