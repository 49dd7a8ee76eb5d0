// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * frdma provider: queue pairs.
 *
 * A QP's send and receive queues are rings shared with the kernel (see
 * <rdma/frdma-abi.h>).  Posting writes entries into a ring and publishes
 * the producer index; a batch of sends then costs one doorbell write()
 * (none while the kernel polls the SQ), a batch of receives no system
 * call at all.  Each queue has a spinlock for its producers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frdma.h"

enum {
	FRDMA_QP_COMP_MASK = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_XRCD |
			     IBV_QP_INIT_ATTR_CREATE_FLAGS |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
	FRDMA_UD_SEND_OPS = IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM,
	FRDMA_UC_SEND_OPS = FRDMA_UD_SEND_OPS |
			    IBV_QP_EX_WITH_RDMA_WRITE |
			    IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
			    IBV_QP_EX_WITH_SEND_WITH_INV |
			    IBV_QP_EX_WITH_BIND_MW |
			    IBV_QP_EX_WITH_LOCAL_INV,
	FRDMA_RC_SEND_OPS = FRDMA_UC_SEND_OPS |
			    IBV_QP_EX_WITH_RDMA_READ |
			    IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
			    IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD |
			    IBV_QP_EX_WITH_ATOMIC_WRITE,
	/* XRC: RC's, but SEND with invalidate (the target QP has no PD) */
	FRDMA_XRC_SEND_OPS = FRDMA_RC_SEND_OPS & ~IBV_QP_EX_WITH_SEND_WITH_INV,
};

/*
 * Ring the doorbell of the QP with uverbs handle @handle on @cmd_fd: the
 * kernel consumes its SQ up to its prod.
 */
static int frdma_doorbell_handle(int cmd_fd, uint32_t handle)
{
	struct ib_uverbs_post_send_resp resp;
	struct frdma_cmd_doorbell db = {
		.hdr = {
			.command = IB_USER_VERBS_CMD_POST_SEND,
			.in_words = sizeof(db) / 4,
			.out_words = sizeof(resp) / 4,
		},
		.core = {
			.response = (uintptr_t)&resp,
			.qp_handle = handle,
			.wqe_size = sizeof(struct ib_uverbs_send_wr),
		},
	};

	if (write(cmd_fd, &db, sizeof(db)) != sizeof(db))
		return errno ? errno : EIO;
	return 0;
}

static int frdma_doorbell(struct frdma_qp *qp)
{
	return frdma_doorbell_handle(qp->vqp.qp.context->cmd_fd,
				     qp->vqp.qp.handle);
}

/*
 * Under the SQ lock, after publishing @n entries with the SQ's cons last
 * loaded as @cons: whether the doorbell must be rung even if the kernel
 * polls, because cons has not moved for frdma_ring_stall_limit() entries.
 */
static bool frdma_sq_note(struct frdma_qp *qp, uint32_t cons, uint32_t n)
{
	if (cons != qp->sq_seen_cons) {
		qp->sq_seen_cons = cons;
		qp->sq_unmoved = 0;
	}
	qp->sq_unmoved += n;
	if (qp->sq_unmoved < frdma_ring_stall_limit(&qp->sq.ring))
		return false;
	qp->sq_unmoved = 0;
	return true;
}

/*
 * After publishing prod: ring the doorbell unless the kernel's poller is
 * watching the SQ (<rdma/frdma-abi.h>, "Send queue polling") and keeps up.
 */
static int frdma_sq_kick(struct frdma_qp *qp, bool stalled)
{
	if (!stalled && !frdma_ring_sq_needs_doorbell(&qp->sq.ring))
		return 0;
	return frdma_doorbell(qp);
}

/*
 * Under @cq's lock, for the QPs whose send or receive CQ it is and whose
 * SQ the kernel polls and holds entries: note in @kick the doorbells to
 * ring (frdma_kick_ring(), after the lock is dropped, so that other
 * threads polling the CQ never wait on a system call).  When the CQ has
 * been polled empty FRDMA_CQ_KICK_POLLS times in a row, those whose SQ has
 * not moved since the last check; when it is being armed for an event
 * (@arming), all of them, as the caller is about to sleep on work those
 * SQs may be the start of.  At most FRDMA_KICK_MAX at a time; the others
 * are checked next time.  The poller may not get a CPU for a while (a
 * busy host, another task on its CPU); then the caller runs the queue
 * itself rather than wait.
 */
void frdma_cq_kick_sqs(struct frdma_cq *cq, bool arming,
		       struct frdma_kick *kick)
{
	struct frdma_cq_link *l;
	struct frdma_ring *r;
	uint32_t cons;

	kick->n = 0;
	for (l = cq->links; l && kick->n < FRDMA_KICK_MAX; l = l->next) {
		r = &l->qp->sq.ring;
		if (!r->hdr || frdma_ring_sq_needs_doorbell(r))
			continue;
		cons = frdma_ring_load_cons(r);
		if (cons != frdma_ring_load_prod(r) &&
		    (arming || cons == l->kick_cons))
			kick->handle[kick->n++] = l->qp->vqp.qp.handle;
		l->kick_cons = cons;
	}
}

/* Ring the doorbells frdma_cq_kick_sqs() noted, without @cq's lock. */
void frdma_kick_ring(struct frdma_cq *cq, const struct frdma_kick *kick)
{
	unsigned int i;

	for (i = 0; i < kick->n; i++)
		frdma_doorbell_handle(cq->vcq.cq.context->cmd_fd,
				      kick->handle[i]);
}

static void frdma_cq_link_add(struct ibv_cq *ibcq, struct frdma_cq_link *l,
			      struct frdma_qp *qp)
{
	struct frdma_cq *cq = to_fcq(ibcq);

	l->qp = qp;
	pthread_spin_lock(&cq->lock);
	l->next = cq->links;
	cq->links = l;
	pthread_spin_unlock(&cq->lock);
}

static void frdma_cq_link_del(struct ibv_cq *ibcq, struct frdma_cq_link *l)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_cq_link **pp;

	pthread_spin_lock(&cq->lock);
	for (pp = &cq->links; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	pthread_spin_unlock(&cq->lock);
}

/* Work requests may be posted to an SQ only from RTS on (IBTA o10-4.2.1). */
static bool frdma_sq_postable(struct ibv_qp *ibqp)
{
	return ibqp->state != IBV_QPS_RESET && ibqp->state != IBV_QPS_INIT &&
	       ibqp->state != IBV_QPS_RTR;
}

/*
 * The extended send interface.  wr_start takes the SQ lock; each opcode
 * call claims the next free slot and writes its header; the setters fill
 * in the body of that slot; wr_complete publishes everything and rings the
 * doorbell, wr_abort forgets it.  The first error is kept and returned by
 * wr_complete, and nothing of the batch is posted then.
 */
static inline struct frdma_qp *qpx_to_fqp(struct ibv_qp_ex *qpx)
{
	return container_of(qpx, struct frdma_qp, vqp.qp_ex);
}

static void frdma_wr_fail(struct frdma_qp *qp, int err)
{
	if (!qp->wr_err)
		qp->wr_err = err;
	qp->wr_cur = NULL;
}

static struct frdma_sqe *frdma_wr_next(struct ibv_qp_ex *qpx,
				       enum ibv_wr_opcode op)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);
	struct frdma_ring *r = &qp->sq.ring;
	struct frdma_sqe *sqe;

	qp->wr_cur = NULL;
	if (qp->wr_err)
		return NULL;
	if (qpx->wr_flags & ~(unsigned int)FRDMA_SEND_FLAGS) {
		frdma_wr_fail(qp, EINVAL);
		return NULL;
	}
	if (qp->wr_idx - qp->wr_cons >= r->num_entries) {
		qp->wr_cons = frdma_ring_load_cons(r);
		if (qp->wr_idx - qp->wr_cons >= r->num_entries) {
			frdma_wr_fail(qp, ENOMEM);
			return NULL;
		}
	}
	sqe = frdma_ring_entry(r, qp->wr_idx++);
	*sqe = (struct frdma_sqe){
		.wr_id = qpx->wr_id,
		.opcode = op,
		/* inline or not is decided by the setter called */
		.flags = frdma_sqe_flags(&qp->sql, qpx->wr_flags) &
			 ~FRDMA_WQE_INLINE,
	};
	qp->wr_cur = sqe;
	return sqe;
}

static void frdma_wr_send(struct ibv_qp_ex *qpx)
{
	frdma_wr_next(qpx, IBV_WR_SEND);
}

static void frdma_wr_send_imm(struct ibv_qp_ex *qpx, __be32 imm_data)
{
	struct frdma_sqe *sqe = frdma_wr_next(qpx, IBV_WR_SEND_WITH_IMM);

	if (sqe)
		sqe->imm_data = imm_data;
}

static void frdma_wr_rdma(struct ibv_qp_ex *qpx, enum ibv_wr_opcode op,
			  uint32_t rkey, uint64_t remote_addr, __be32 imm_data)
{
	struct frdma_sqe *sqe = frdma_wr_next(qpx, op);

	if (!sqe)
		return;
	sqe->imm_data = imm_data;
	sqe->rdma.remote_addr = remote_addr;
	sqe->rdma.rkey = rkey;
}

static void frdma_wr_rdma_write(struct ibv_qp_ex *qpx, uint32_t rkey,
				uint64_t remote_addr)
{
	frdma_wr_rdma(qpx, IBV_WR_RDMA_WRITE, rkey, remote_addr, 0);
}

static void frdma_wr_rdma_write_imm(struct ibv_qp_ex *qpx, uint32_t rkey,
				    uint64_t remote_addr, __be32 imm_data)
{
	frdma_wr_rdma(qpx, IBV_WR_RDMA_WRITE_WITH_IMM, rkey, remote_addr,
		      imm_data);
}

static void frdma_wr_rdma_read(struct ibv_qp_ex *qpx, uint32_t rkey,
			       uint64_t remote_addr)
{
	frdma_wr_rdma(qpx, IBV_WR_RDMA_READ, rkey, remote_addr, 0);
}

static void frdma_wr_atomic(struct ibv_qp_ex *qpx, enum ibv_wr_opcode op,
			    uint32_t rkey, uint64_t remote_addr,
			    uint64_t compare_add, uint64_t swap)
{
	struct frdma_sqe *sqe = frdma_wr_next(qpx, op);

	if (!sqe)
		return;
	sqe->atomic.remote_addr = remote_addr;
	sqe->atomic.compare_add = compare_add;
	sqe->atomic.swap = swap;
	sqe->atomic.rkey = rkey;
}

static void frdma_wr_atomic_cmp_swp(struct ibv_qp_ex *qpx, uint32_t rkey,
				    uint64_t remote_addr, uint64_t compare,
				    uint64_t swap)
{
	frdma_wr_atomic(qpx, IBV_WR_ATOMIC_CMP_AND_SWP, rkey, remote_addr,
			compare, swap);
}

static void frdma_wr_atomic_fetch_add(struct ibv_qp_ex *qpx, uint32_t rkey,
				      uint64_t remote_addr, uint64_t add)
{
	frdma_wr_atomic(qpx, IBV_WR_ATOMIC_FETCH_AND_ADD, rkey, remote_addr,
			add, 0);
}

static void frdma_wr_atomic_write(struct ibv_qp_ex *qpx, uint32_t rkey,
				  uint64_t remote_addr, const void *atomic_wr)
{
	struct frdma_sqe *sqe = frdma_wr_next(qpx, IBV_WR_ATOMIC_WRITE);

	if (!sqe)
		return;
	sqe->atomic.remote_addr = remote_addr;
	sqe->atomic.rkey = rkey;
	memcpy(&sqe->atomic.compare_add, atomic_wr, 8);
}

static void frdma_wr_send_inv(struct ibv_qp_ex *qpx, uint32_t invalidate_rkey)
{
	struct frdma_sqe *sqe = frdma_wr_next(qpx, IBV_WR_SEND_WITH_INV);

	if (sqe)
		sqe->invalidate_rkey = invalidate_rkey;
}

static void frdma_wr_local_inv(struct ibv_qp_ex *qpx, uint32_t invalidate_rkey)
{
	struct frdma_sqe *sqe = frdma_wr_next(qpx, IBV_WR_LOCAL_INV);

	if (sqe)
		sqe->invalidate_rkey = invalidate_rkey;
}

/*
 * Bind @mw with the key byte of @rkey (the kernel checks the rules and
 * completes a bad bind with IBV_WC_MW_BIND_ERR).
 */
static void frdma_wr_bind_mw(struct ibv_qp_ex *qpx, struct ibv_mw *mw,
			     uint32_t rkey,
			     const struct ibv_mw_bind_info *bind_info)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);
	struct frdma_sqe *sqe = frdma_wr_next(qpx, IBV_WR_BIND_MW);

	if (!sqe)
		return;
	if (!mw || (bind_info->length && !bind_info->mr)) {
		frdma_wr_fail(qp, EINVAL);
		return;
	}
	sqe->bind.addr = bind_info->addr;
	sqe->bind.length = bind_info->length;
	sqe->bind.mr_lkey = bind_info->mr ? bind_info->mr->lkey : 0;
	sqe->bind.mw_rkey = mw->rkey;
	sqe->bind.new_rkey = rkey;
	sqe->bind.access = bind_info->mw_access_flags;
}

static void frdma_wr_set_ud_addr(struct ibv_qp_ex *qpx, struct ibv_ah *ah,
				 uint32_t remote_qpn, uint32_t remote_qkey)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);
	struct frdma_sqe *sqe = qp->wr_cur;

	if (!sqe)
		return;
	if (!ah) {
		frdma_wr_fail(qp, EINVAL);
		return;
	}
	sqe->ud.ah_num = to_fah(ah)->ah_num;
	sqe->ud.remote_qpn = remote_qpn;
	sqe->ud.remote_qkey = remote_qkey;
}

/* XRC: the SRQ, at the target, that receives the message. */
static void frdma_wr_set_xrc_srqn(struct ibv_qp_ex *qpx, uint32_t remote_srqn)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);

	if (qp->wr_cur)
		qp->wr_cur->xrc_srqn = remote_srqn;
}

static void frdma_wr_set_sge_list(struct ibv_qp_ex *qpx, size_t num_sge,
				  const struct ibv_sge *sg_list)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);
	struct frdma_sqe *sqe = qp->wr_cur;

	if (!sqe)
		return;
	if (num_sge > qp->sql.max_sge) {
		frdma_wr_fail(qp, EINVAL);
		return;
	}
	sqe->flags &= ~FRDMA_WQE_INLINE;
	sqe->inline_len = 0;
	sqe->num_sge = num_sge;
	frdma_put_sges(frdma_sqe_sges(sqe), sg_list, num_sge);
}

static void frdma_wr_set_sge(struct ibv_qp_ex *qpx, uint32_t lkey,
			     uint64_t addr, uint32_t length)
{
	struct ibv_sge sge = { .addr = addr, .length = length, .lkey = lkey };

	frdma_wr_set_sge_list(qpx, 1, &sge);
}

static void frdma_wr_set_inline_data_list(struct ibv_qp_ex *qpx,
					  size_t num_buf,
					  const struct ibv_data_buf *buf_list)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);
	struct frdma_sqe *sqe = qp->wr_cur;
	uint8_t *dst;
	size_t i, len = 0;

	if (!sqe)
		return;
	for (i = 0; i < num_buf; i++) {
		len += buf_list[i].length;
		if (len > qp->sql.max_inline)
			break;
	}
	if (len > qp->sql.max_inline ||
	    !frdma_opcode_inline_ok(sqe->opcode)) {
		frdma_wr_fail(qp, EINVAL);
		return;
	}
	dst = frdma_sqe_data(sqe);
	for (i = 0; i < num_buf; i++) {
		memcpy(dst, buf_list[i].addr, buf_list[i].length);
		dst += buf_list[i].length;
	}
	sqe->flags |= FRDMA_WQE_INLINE;
	sqe->num_sge = 0;
	sqe->inline_len = len;
}

static void frdma_wr_set_inline_data(struct ibv_qp_ex *qpx, void *addr,
				     size_t length)
{
	struct ibv_data_buf buf = { .addr = addr, .length = length };

	frdma_wr_set_inline_data_list(qpx, 1, &buf);
}

static void frdma_wr_start(struct ibv_qp_ex *qpx)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);

	pthread_spin_lock(&qp->sq.lock);
	qp->wr_idx = qp->sq.ring.uidx;
	qp->wr_cons = qp->sq.ring.hdr ? frdma_ring_load_cons(&qp->sq.ring) :
					qp->wr_idx;
	qp->wr_cur = NULL;
	qp->wr_err = 0;
	if (!frdma_sq_postable(&qp->vqp.qp))
		qp->wr_err = EINVAL;
	else if (!qp->sq.ring.hdr)
		qp->wr_err = ENOMEM;
}

static int frdma_wr_complete(struct ibv_qp_ex *qpx)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);
	struct frdma_ring *r = &qp->sq.ring;
	bool posted = false, stalled = false;
	int ret = qp->wr_err;

	if (!ret && qp->wr_idx != r->uidx) {
		stalled = frdma_sq_note(qp, qp->wr_cons, qp->wr_idx - r->uidx);
		r->uidx = qp->wr_idx;
		frdma_ring_store_prod(r);
		posted = true;
	}
	qp->wr_cur = NULL;
	pthread_spin_unlock(&qp->sq.lock);
	if (posted)
		ret = frdma_sq_kick(qp, stalled);
	return ret;
}

static void frdma_wr_abort(struct ibv_qp_ex *qpx)
{
	struct frdma_qp *qp = qpx_to_fqp(qpx);

	qp->wr_cur = NULL;
	pthread_spin_unlock(&qp->sq.lock);
}

static void frdma_set_qp_ex_ops(struct frdma_qp *qp, enum ibv_qp_type type)
{
	struct ibv_qp_ex *qpx = &qp->vqp.qp_ex;

	qpx->wr_send = frdma_wr_send;
	qpx->wr_send_imm = frdma_wr_send_imm;
	if (type == IBV_QPT_UD)
		qpx->wr_set_ud_addr = frdma_wr_set_ud_addr;
	if (type == IBV_QPT_XRC_SEND)
		qpx->wr_set_xrc_srqn = frdma_wr_set_xrc_srqn;
	if (type == IBV_QPT_RC || type == IBV_QPT_UC ||
	    type == IBV_QPT_XRC_SEND) {
		qpx->wr_rdma_write = frdma_wr_rdma_write;
		qpx->wr_rdma_write_imm = frdma_wr_rdma_write_imm;
		qpx->wr_local_inv = frdma_wr_local_inv;
		qpx->wr_bind_mw = frdma_wr_bind_mw;
	}
	if (type == IBV_QPT_RC || type == IBV_QPT_UC)
		qpx->wr_send_inv = frdma_wr_send_inv;
	if (type == IBV_QPT_RC || type == IBV_QPT_XRC_SEND) {
		qpx->wr_rdma_read = frdma_wr_rdma_read;
		qpx->wr_atomic_cmp_swp = frdma_wr_atomic_cmp_swp;
		qpx->wr_atomic_fetch_add = frdma_wr_atomic_fetch_add;
		qpx->wr_atomic_write = frdma_wr_atomic_write;
	}
	qpx->wr_set_sge = frdma_wr_set_sge;
	qpx->wr_set_sge_list = frdma_wr_set_sge_list;
	qpx->wr_set_inline_data = frdma_wr_set_inline_data;
	qpx->wr_set_inline_data_list = frdma_wr_set_inline_data_list;
	qpx->wr_start = frdma_wr_start;
	qpx->wr_complete = frdma_wr_complete;
	qpx->wr_abort = frdma_wr_abort;
}

static int frdma_check_qp_init_attr(struct ibv_qp_init_attr_ex *attr)
{
	uint64_t ops;

	if (attr->comp_mask & ~(uint32_t)FRDMA_QP_COMP_MASK)
		return EOPNOTSUPP;
	if ((attr->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) &&
	    attr->create_flags)
		return EOPNOTSUPP;
	switch (attr->qp_type) {
	case IBV_QPT_RC:
		ops = FRDMA_RC_SEND_OPS;
		break;
	case IBV_QPT_UC:
		ops = FRDMA_UC_SEND_OPS;
		break;
	case IBV_QPT_UD:
		ops = FRDMA_UD_SEND_OPS;
		break;
	case IBV_QPT_XRC_SEND:
		ops = FRDMA_XRC_SEND_OPS;
		break;
	case IBV_QPT_XRC_RECV:
		/* no send queue: the RDMA core creates it, with no rings */
		ops = 0;
		break;
	default:
		return EOPNOTSUPP;
	}
	if ((attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) &&
	    (attr->send_ops_flags & ~ops))
		return EOPNOTSUPP;
	return 0;
}

/*
 * Map a work queue's ring after checking that it holds what the QP's
 * capabilities let the application put in it.  A queue with no entries
 * and no capacity asked for (a QP on an SRQ, a receive-only QP) has no
 * ring.
 */
static int frdma_wq_map(struct frdma_wq *wq, int cmd_fd,
			const struct frdma_ring_desc *desc, uint32_t max_wr,
			bool stride_ok, size_t hdr_size)
{
	if (!desc->num_entries && !desc->mmap_size)
		return max_wr ? EPROTO : 0;
	if (desc->num_entries < max_wr || !stride_ok)
		return EPROTO;
	return frdma_ring_map(&wq->ring, cmd_fd, desc, hdr_size);
}

static struct ibv_qp *frdma_create_qp_common(struct ibv_context *ibctx,
					     struct ibv_qp_init_attr_ex *attr)
{
	struct frdma_cmd_create_qp_ex cmd = {};
	struct frdma_cmd_create_qp_ex_resp resp = {};
	const struct frdma_alloc_ucontext_resp *caps = &to_fctx(ibctx)->caps;
	const struct frdma_create_qp_resp *drv = &resp.drv;
	struct frdma_qp *qp;
	int ret;

	ret = frdma_check_qp_init_attr(attr);
	if (ret)
		goto err;

	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		ret = ENOMEM;
		goto err;
	}
	pthread_spin_init(&qp->sq.lock, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_init(&qp->rq.lock, PTHREAD_PROCESS_PRIVATE);

	ret = ibv_cmd_create_qp_ex2(ibctx, &qp->vqp, attr,
				    (struct ibv_create_qp_ex *)&cmd,
				    sizeof(cmd), &resp.core, sizeof(resp));
	if (ret)
		goto err_free;

	/* attr->cap now holds the QP's actual capabilities. */
	qp->sql.max_sge = attr->cap.max_send_sge;
	qp->sql.max_inline = drv->max_inline_data;
	qp->sql.sig_all = !!attr->sq_sig_all;
	qp->sql.qp_type = attr->qp_type;
	qp->sq.max_sge = attr->cap.max_send_sge;
	qp->rq.max_sge = attr->cap.max_recv_sge;
	if (attr->cap.max_inline_data > drv->max_inline_data ||
	    drv->max_inline_data > caps->max_inline_data ||
	    attr->cap.max_send_sge > caps->max_sge ||
	    attr->cap.max_recv_sge > caps->max_sge) {
		ret = EPROTO;
		goto err_destroy;
	}

	ret = frdma_wq_map(&qp->sq, ibctx->cmd_fd, &drv->sq,
			   attr->cap.max_send_wr,
			   frdma_sq_stride_ok(drv->sq.entry_shift,
					      qp->sql.max_sge,
					      qp->sql.max_inline),
			   sizeof(struct frdma_sqe));
	if (ret)
		goto err_destroy;
	if (!attr->srq) {
		ret = frdma_wq_map(&qp->rq, ibctx->cmd_fd, &drv->rq,
				   attr->cap.max_recv_wr,
				   frdma_rq_stride_ok(drv->rq.entry_shift,
						      qp->rq.max_sge),
				   sizeof(struct frdma_rqe));
		if (ret)
			goto err_unmap;
	}

	frdma_set_qp_ex_ops(qp, attr->qp_type);
	qp->vqp.comp_mask |= VERBS_QP_EX;
	if (attr->send_cq)
		frdma_cq_link_add(attr->send_cq, &qp->scq_link, qp);
	if (attr->recv_cq && attr->recv_cq != attr->send_cq)
		frdma_cq_link_add(attr->recv_cq, &qp->rcq_link, qp);
	return &qp->vqp.qp;

err_unmap:
	frdma_ring_unmap(&qp->sq.ring);
err_destroy:
	ibv_cmd_destroy_qp(&qp->vqp.qp);
err_free:
	pthread_spin_destroy(&qp->sq.lock);
	pthread_spin_destroy(&qp->rq.lock);
	free(qp);
err:
	errno = ret;
	return NULL;
}

struct ibv_qp *frdma_create_qp_ex(struct ibv_context *ibctx,
				  struct ibv_qp_init_attr_ex *attr)
{
	return frdma_create_qp_common(ibctx, attr);
}

/*
 * ibv_open_qp(): another handle on an XRC receive QP of an XRC domain this
 * process shares.  Such a QP has no rings; the handle only modifies,
 * queries and closes it.
 */
struct ibv_qp *frdma_open_qp(struct ibv_context *ibctx,
			     struct ibv_qp_open_attr *attr)
{
	struct frdma_cmd_open_qp cmd = {};
	struct ib_uverbs_create_qp_resp resp = {};
	struct frdma_qp *qp;
	int ret;

	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return NULL;
	pthread_spin_init(&qp->sq.lock, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_init(&qp->rq.lock, PTHREAD_PROCESS_PRIVATE);
	ret = ibv_cmd_open_qp(ibctx, &qp->vqp, sizeof(qp->vqp), attr,
			      (struct ibv_open_qp *)&cmd, sizeof(cmd),
			      &resp, sizeof(resp));
	if (ret) {
		pthread_spin_destroy(&qp->sq.lock);
		pthread_spin_destroy(&qp->rq.lock);
		free(qp);
		errno = ret;
		return NULL;
	}
	qp->sql.qp_type = attr->qp_type;
	return &qp->vqp.qp;
}

struct ibv_qp *frdma_create_qp(struct ibv_pd *pd,
			       struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_init_attr_ex attr_ex = {
		.qp_context = attr->qp_context,
		.send_cq = attr->send_cq,
		.recv_cq = attr->recv_cq,
		.srq = attr->srq,
		.cap = attr->cap,
		.qp_type = attr->qp_type,
		.sq_sig_all = attr->sq_sig_all,
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = pd,
	};
	struct ibv_qp *qp;

	qp = frdma_create_qp_common(pd->context, &attr_ex);
	if (qp)
		attr->cap = attr_ex.cap;
	return qp;
}

/*
 * After a transition to RESET the kernel has emptied the queues and
 * published its consumer indices: produce from there on.
 */
static void frdma_wq_reset(struct frdma_wq *wq)
{
	pthread_spin_lock(&wq->lock);
	if (wq->ring.hdr) {
		wq->ring.uidx = frdma_ring_load_cons(&wq->ring);
		frdma_ring_store_prod(&wq->ring);
	}
	pthread_spin_unlock(&wq->lock);
}

int frdma_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
		    int attr_mask)
{
	struct frdma_cmd_modify_qp cmd = {};
	struct frdma_qp *qp = to_fqp(ibqp);
	int ret;

	ret = ibv_cmd_modify_qp(ibqp, attr, attr_mask,
				(struct ibv_modify_qp *)&cmd, sizeof(cmd));
	if (ret)
		return ret;
	if ((attr_mask & IBV_QP_STATE) && attr->qp_state == IBV_QPS_RESET) {
		frdma_wq_reset(&qp->sq);
		frdma_wq_reset(&qp->rq);
		/*
		 * A QP leaves RESET with no past: drop the completions of its
		 * old life (flushes, errors) that are still in its CQs.  The
		 * kernel produces none for it after the transition returned
		 * (its queues are empty and it executes nothing in RESET), and
		 * only the provider, under the CQ lock, may rewrite the
		 * unconsumed part of a CQ ring.
		 */
		if (ibqp->send_cq)
			frdma_cq_clean(ibqp->send_cq, ibqp->qp_num);
		if (ibqp->recv_cq && ibqp->recv_cq != ibqp->send_cq)
			frdma_cq_clean(ibqp->recv_cq, ibqp->qp_num);
	}
	return 0;
}

int frdma_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
		   int attr_mask, struct ibv_qp_init_attr *init_attr)
{
	struct frdma_cmd_query_qp cmd = {};

	return ibv_cmd_query_qp(ibqp, attr, attr_mask, init_attr,
				(struct ibv_query_qp *)&cmd, sizeof(cmd));
}

int frdma_destroy_qp(struct ibv_qp *ibqp)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	int ret;

	ret = ibv_cmd_destroy_qp(ibqp);
	if (ret)
		return ret;
	if (ibqp->send_cq)
		frdma_cq_link_del(ibqp->send_cq, &qp->scq_link);
	if (ibqp->recv_cq && ibqp->recv_cq != ibqp->send_cq)
		frdma_cq_link_del(ibqp->recv_cq, &qp->rcq_link);
	frdma_ring_unmap(&qp->sq.ring);
	frdma_ring_unmap(&qp->rq.ring);
	pthread_spin_destroy(&qp->sq.lock);
	pthread_spin_destroy(&qp->rq.lock);
	free(qp);
	return 0;
}

int frdma_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		    struct ibv_send_wr **bad_wr)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	struct frdma_ring *r = &qp->sq.ring;
	uint32_t start, cons;
	bool posted, stalled = false;
	int ret, db;

	if (!frdma_sq_postable(ibqp)) {
		*bad_wr = wr;
		return EINVAL;
	}

	pthread_spin_lock(&qp->sq.lock);
	if (!r->hdr) {
		pthread_spin_unlock(&qp->sq.lock);
		*bad_wr = wr;
		return ENOMEM;
	}
	start = r->uidx;
	cons = frdma_ring_load_cons(r);
	ret = frdma_sq_write(r, &cons, &qp->sql, wr, bad_wr);
	posted = r->uidx != start;
	if (posted) {
		stalled = frdma_sq_note(qp, cons, r->uidx - start);
		frdma_ring_store_prod(r);
	}
	pthread_spin_unlock(&qp->sq.lock);

	/* one doorbell for the list, outside the lock */
	if (posted) {
		db = frdma_sq_kick(qp, stalled);
		if (db && !ret) {
			/* published, but the kernel refused to look */
			*bad_wr = wr;
			ret = db;
		}
	}
	return ret;
}

int frdma_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		    struct ibv_recv_wr **bad_wr)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	struct frdma_ring *r = &qp->rq.ring;
	uint32_t start, cons;
	bool posted;
	int ret;

	if (ibqp->state == IBV_QPS_RESET || !r->hdr) {
		*bad_wr = wr;
		return EINVAL;
	}

	pthread_spin_lock(&qp->rq.lock);
	start = r->uidx;
	cons = frdma_ring_load_cons(r);
	ret = frdma_rq_write(r, &cons, qp->rq.max_sge, wr, bad_wr);
	posted = r->uidx != start;
	if (posted)
		frdma_ring_store_prod(r);
	pthread_spin_unlock(&qp->rq.lock);

	/* a QP in the error state: the doorbell flushes what was posted */
	if (posted && frdma_ring_rq_needs_flush(r))
		frdma_doorbell(qp);
	return ret;
}

/*
 * ibv_bind_mw(): a type 1 window is bound by a BIND_MW send queue entry
 * with the next key byte, which becomes the window's rkey once posted
 * (the application undoes it if the bind completes in error).
 * libibverbs has checked the type, the MR and the PDs.
 */
int frdma_bind_mw(struct ibv_qp *ibqp, struct ibv_mw *mw,
		  struct ibv_mw_bind *mw_bind)
{
	struct ibv_send_wr wr = {}, *bad;
	int ret;

	if (mw->type != IBV_MW_TYPE_1 ||
	    (mw_bind->bind_info.mw_access_flags & IBV_ACCESS_ZERO_BASED))
		return errno = EINVAL;
	wr.wr_id = mw_bind->wr_id;
	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = mw_bind->send_flags;
	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = ibv_inc_rkey(mw->rkey);
	wr.bind_mw.bind_info = mw_bind->bind_info;
	ret = frdma_post_send(ibqp, &wr, &bad);
	if (ret)
		return errno = ret;
	mw->rkey = wr.bind_mw.rkey;
	return 0;
}
