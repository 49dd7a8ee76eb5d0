// SPDX-License-Identifier: GPL-2.0
/*
 * frdma on the wire: UC, the unreliable connection.
 *
 * The requester sends a SEND or RDMA WRITE (with immediate) at once, as
 * FIRST/MIDDLE/LAST or ONLY packets of the UC transport with consecutive
 * PSNs, and completes it when its last packet is handed to IP: nothing is
 * acknowledged, nothing is sent twice.
 *
 * The responder takes packets in arrival order under the QP's wire lock.
 * A packet whose PSN is not the expected one means packets were lost: the
 * message being received is dropped (IBTA 9.7.6.1.3: a SEND's receive
 * stays posted and takes the next SEND; what a WRITE wrote stays
 * written), and the responder goes on from that packet's PSN, so a FIRST
 * or ONLY packet starts the next message and MIDDLE or LAST ones are
 * dropped until one does.  A SEND that finds no receive, a WRITE whose
 * R_Key, range or access is wrong, a packet of the wrong length or out of
 * order in its message are dropped too, silently, as UC does; only a
 * receive that cannot hold its message or whose buffers are bad completes
 * in error and fails the QP.
 */

#include "mr.h"
#include "wire_ud.h"

enum {
	FRDMA_UC_IDLE,		/* between messages */
	FRDMA_UC_SEND,		/* a SEND is being received into w->rcv */
	FRDMA_UC_WRITE,		/* an RDMA WRITE into w->wr_mr */
};

static u8 frdma_uc_base_opcode(u8 wr_opcode)
{
	switch (wr_opcode) {
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		return FRDMA_OP_WRITE_FIRST;
	default:
		return FRDMA_OP_SEND_FIRST;
	}
}

/* The opcode of packet @k of @npkt of a message of the SQE's kind. */
static u8 frdma_uc_opcode(const struct frdma_sqe *sqe, u32 k, u32 npkt)
{
	bool first = k == 0, last = k + 1 == npkt;
	bool imm = sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM ||
		   sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM;
	u8 op = frdma_uc_base_opcode(sqe->opcode);

	/* FIRST, MIDDLE, LAST, LAST_IMM, ONLY, ONLY_IMM from the base. */
	if (first && last)
		op += imm ? 5 : 4;
	else if (last)
		op += imm ? 3 : 2;
	else if (!first)
		op += 1;
	return FRDMA_OP_UC | op;
}

/**
 * frdma_wire_uc_post - send a UC work request to its peer
 * @qp: the UC QP, whose sq_mutex the caller holds; it has wire state
 * @sqe: the validated SQE copy: a SEND or RDMA WRITE, with or without
 *	 immediate
 * @lsgl: its local memory (left to the caller)
 * @len: the message length
 *
 * Every packet of the message is sent, then the work request completes.
 *
 * Return: 0 (completed here), or -EOPNOTSUPP for another operation.
 */
int frdma_wire_uc_post(struct frdma_qp *qp, const struct frdma_sqe *sqe,
		       struct frdma_sgl *lsgl, u64 len)
{
	struct frdma_wqp *w = qp->wire;
	u32 mtu = frdma_wire_mtu(qp);
	u32 npkt = max_t(u64, DIV_ROUND_UP_ULL(len, mtu), 1);
	bool write = false;
	u32 k;

	switch (sqe->opcode) {
	case IB_UVERBS_WR_RDMA_WRITE:
	case IB_UVERBS_WR_RDMA_WRITE_WITH_IMM:
		write = true;
		break;
	case IB_UVERBS_WR_SEND:
	case IB_UVERBS_WR_SEND_WITH_IMM:
		break;
	default:
		return -EOPNOTSUPP;
	}

	mutex_lock(&w->lock);
	for (k = 0; k < npkt; k++) {
		struct frdma_xpkt x = {
			.opcode = frdma_uc_opcode(sqe, k, npkt),
			.psn = w->psn,
			.dqpn = READ_ONCE(qp->attr.dest_qp_num),
			.off = (u64)k * mtu,
		};

		x.len = min_t(u64, mtu, len - x.off);
		if (write && k == 0) {
			struct frdma_reth *reth = (void *)x.ext;

			reth->va = cpu_to_be64(sqe->rdma.remote_addr);
			reth->rkey = cpu_to_be32(sqe->rdma.rkey);
			reth->len = cpu_to_be32(len);
			x.ext_len = sizeof(*reth);
		}
		if (k + 1 == npkt &&
		    (sqe->opcode == IB_UVERBS_WR_SEND_WITH_IMM ||
		     sqe->opcode == IB_UVERBS_WR_RDMA_WRITE_WITH_IMM)) {
			/* In network order already. */
			memcpy(x.ext + x.ext_len, &sqe->imm_data, 4);
			x.ext_len += 4;
		}
		if (sqe->flags & FRDMA_WQE_INLINE)
			x.buf = (const u8 *)(sqe + 1) + x.off;
		else
			x.sgl = lsgl;
		x.se = k + 1 == npkt && (sqe->flags & FRDMA_WQE_SOLICITED);
		frdma_wire_xmit_more(w, &x);
		w->psn = frdma_psn_add(w->psn, 1);
	}
	frdma_wire_xmit_flush(w);
	mutex_unlock(&w->lock);

	if (qp->sq_sig_all || (sqe->flags & FRDMA_WQE_SIGNALED)) {
		struct frdma_cqe cqe = {
			.wr_id = sqe->wr_id,
			.qp_num = qp->ibqp.qp_num,
			.status = IB_WC_SUCCESS,
			.opcode = write ? IB_UVERBS_WC_RDMA_WRITE :
					  IB_UVERBS_WC_SEND,
		};

		if (frdma_cq_post(to_fcq(qp->ibqp.send_cq), &cqe, false))
			frdma_qp_to_error(qp, IB_EVENT_QP_FATAL);
	}
	return 0;
}

/* Drop the message being received (its SEND's receive stays taken). */
static void frdma_uc_abort(struct frdma_wqp *w)
{
	if (w->wr_mr)
		frdma_mr_put(w->wr_mr);
	w->wr_mr = NULL;
	w->wr_left = 0;
	w->uc_msg = FRDMA_UC_IDLE;
}

/* The room of the receive held in w->rcv. */
static u64 frdma_uc_room(struct frdma_wqp *w)
{
	u64 room = 0;
	u32 i;

	for (i = 0; i < w->rcv.n; i++)
		room += w->rcv.len[i];
	return room;
}

/* The first packet of a SEND: its receive.  Returns false to drop it. */
static bool frdma_uc_send_first(struct frdma_wqp *w)
{
	u64 room;
	int err;

	if (!w->rcv_active) {
		err = frdma_wire_rqe_take(w, &room, true);
		if (err == -EAGAIN || err == -ENODEV)
			return false;		/* no receive: dropped */
		if (err) {			/* completed in error */
			frdma_qp_to_error(w->qp, 0);
			return false;
		}
		w->rcv_active = true;
	}
	w->rcv_off = 0;
	w->wr_left = frdma_uc_room(w);
	w->uc_msg = FRDMA_UC_SEND;
	return true;
}

/* The first packet of an RDMA WRITE.  Returns false to drop it. */
static bool frdma_uc_write_first(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	const struct frdma_reth *reth = (const void *)pkt->hdr;
	struct frdma_qp *qp = w->qp;
	u64 va = frdma_get_be64(&reth->va);
	u32 len = frdma_get_be32(&reth->len);

	/* UC: a message the responder's rules refuse is dropped. */
	if (frdma_resp_access(qp, qp->ibqp.pd, IB_UVERBS_WR_RDMA_WRITE,
			      frdma_get_be32(&reth->rkey), va, len,
			      &w->wr_mr) != IB_WC_SUCCESS)
		return false;
	w->wr_va = va;
	w->wr_left = len;
	w->rcv_off = 0;
	w->uc_msg = FRDMA_UC_WRITE;
	return true;
}

/* The last packet of a message has been placed: complete it. */
static void frdma_uc_last(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	u64 room;
	int err;

	if (w->uc_msg == FRDMA_UC_SEND) {
		w->rcv_active = false;
		frdma_wire_rcv_put(w);
		frdma_wire_post_recv(w, w->rcv_wr_id, IB_WC_SUCCESS, w->rcv_off,
				     FRDMA_WC_RECV, pkt);
	} else if (pkt->ops & FRDMA_H_IMM) {
		/* A receive a dropped SEND left taken serves, else the next. */
		err = 0;
		if (w->rcv_active) {
			w->rcv_active = false;
			frdma_wire_rcv_put(w);
		} else {
			err = frdma_wire_rqe_take(w, &room, false);
		}
		if (!err)
			frdma_wire_post_recv(w, w->rcv_wr_id, IB_WC_SUCCESS,
					     w->rcv_off,
					     FRDMA_WC_RECV_RDMA_WITH_IMM, pkt);
		else if (err != -EAGAIN && err != -ENODEV)
			frdma_qp_to_error(w->qp, 0);
	}
	frdma_uc_abort(w);
}

/**
 * frdma_wire_uc_recv - take a UC packet for a QP
 * @w: the UC QP's wire state, locked
 * @pkt: the packet, checked by net.c: a UC SEND or RDMA WRITE opcode
 *
 * Context: the receive worker (net.c), process.
 * Return: false when the packet was dropped.
 */
bool frdma_wire_uc_recv(struct frdma_wqp *w, struct frdma_pkt *pkt)
{
	struct frdma_qp *qp = w->qp;
	enum ib_qp_state state = READ_ONCE(qp->state);
	u8 kind = (pkt->ops & FRDMA_F_SEND) ? FRDMA_UC_SEND : FRDMA_UC_WRITE;
	u32 mtu = frdma_wire_mtu(qp);

	if (state != IB_QPS_RTR && state != IB_QPS_RTS &&
	    state != IB_QPS_SQD && state != IB_QPS_SQE)
		return false;
	/* A reset or flush (frdma_wire_resp_reset()) ended a SEND. */
	if (w->uc_msg == FRDMA_UC_SEND && !w->rcv_active)
		w->uc_msg = FRDMA_UC_IDLE;
	if (pkt->psn != w->epsn)		/* packets were lost */
		frdma_uc_abort(w);
	w->epsn = frdma_psn_add(pkt->psn, 1);
	if (pkt->paylen > mtu) {	/* no packet is longer: malformed */
		frdma_uc_abort(w);
		return false;
	}

	if (pkt->ops & FRDMA_F_FIRST) {
		frdma_uc_abort(w);	/* an unfinished one lost its end */
		if (kind == FRDMA_UC_SEND ? !frdma_uc_send_first(w) :
					    !frdma_uc_write_first(w, pkt))
			return false;
	} else if (w->uc_msg != kind) {
		return false;		/* the rest of a dropped message */
	}

	if (pkt->paylen > w->wr_left && kind == FRDMA_UC_SEND) {
		/* The receive cannot hold the message: its error. */
		w->rcv_active = false;
		frdma_wire_rcv_put(w);
		frdma_wire_post_recv(w, w->rcv_wr_id, IB_WC_LOC_LEN_ERR, 0,
				     FRDMA_WC_RECV, NULL);
		frdma_uc_abort(w);
		frdma_qp_to_error(qp, 0);
		return false;
	}
	if (pkt->paylen > w->wr_left ||
	    (!(pkt->ops & FRDMA_F_LAST) && pkt->paylen != mtu) ||
	    (kind == FRDMA_UC_WRITE && (pkt->ops & FRDMA_F_LAST) &&
	     pkt->paylen != w->wr_left)) {
		frdma_uc_abort(w);
		return false;
	}
	if (kind == FRDMA_UC_SEND)
		frdma_wire_rcv_write(w, w->rcv_off, pkt->payload, pkt->paylen);
	else if (pkt->paylen)
		frdma_mr_write(w->wr_mr, w->wr_va, pkt->payload, pkt->paylen);
	w->wr_va += pkt->paylen;
	w->wr_left -= pkt->paylen;
	w->rcv_off += pkt->paylen;
	if (pkt->ops & FRDMA_F_LAST)
		frdma_uc_last(w, pkt);
	return true;
}
