/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * frdma provider: building work queue entries (formats in <rdma/frdma-abi.h>).
 *
 * Pure functions of a work request and the queue's limits, with no
 * libibverbs calls and no system calls, so that the host unit test
 * (wqe_test.c) exercises exactly the code the provider runs.
 *
 * Validation follows the verbs rules: a work request the queue cannot
 * hold as described (unknown opcode or flag, too many SGEs, too much
 * inline data, inline data on an opcode that carries none) is refused with
 * EINVAL before anything is written; a full ring is ENOMEM.  What only the
 * kernel can check (keys, addresses, lengths against MRs, atomic operand
 * sizes) is left to it and completes in error.
 */
#ifndef FRDMA_WQE_H
#define FRDMA_WQE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <infiniband/verbs.h>
#include <rdma/frdma-abi.h>

#include "ring.h"

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/**
 * struct frdma_ah - an address handle
 * @ibv_ah: libibverbs' part
 * @ah_num: the kernel's number for it (struct frdma_sqe.ud.ah_num)
 */
struct frdma_ah {
	struct ibv_ah ibv_ah;
	uint32_t ah_num;
};

/*
 * What a send queue accepts: its capabilities as the kernel reported
 * them, checked at creation to fit the entry stride.
 */
struct frdma_sq_limits {
	uint32_t max_sge;
	uint32_t max_inline;
	uint8_t sig_all;	/* sq_sig_all: every entry is signaled */
	uint8_t qp_type;	/* enum ibv_qp_type: RC, UC, UD or XRC_SEND */
};

#define FRDMA_SEND_FLAGS (IBV_SEND_FENCE | IBV_SEND_SIGNALED | \
			  IBV_SEND_SOLICITED | IBV_SEND_INLINE)

/* log2 of the smallest power of two >= @bytes (bytes >= 1). */
static inline uint32_t frdma_order(size_t bytes)
{
	uint32_t s = 0;

	while (((size_t)1 << s) < bytes)
		s++;
	return s;
}

/*
 * The entry stride the uABI prescribes for a send queue with these
 * capabilities (log2): the smallest power of two holding the header and
 * the larger of the SGEs and the inline data.
 */
static inline uint32_t frdma_sq_shift(uint32_t max_sge, uint32_t max_inline)
{
	size_t body = (size_t)max_sge * sizeof(struct frdma_sge);

	if (max_inline > body)
		body = max_inline;
	return frdma_order(sizeof(struct frdma_sqe) + body);
}

static inline uint32_t frdma_rq_shift(uint32_t max_sge)
{
	return frdma_order(sizeof(struct frdma_rqe) +
			   (size_t)max_sge * sizeof(struct frdma_sge));
}

/* Does an entry of 1 << @shift bytes hold what the queue may put in it? */
static inline bool frdma_sq_stride_ok(uint32_t shift, uint32_t max_sge,
				      uint32_t max_inline)
{
	return shift < 16 && frdma_sq_shift(max_sge, max_inline) <= shift;
}

static inline bool frdma_rq_stride_ok(uint32_t shift, uint32_t max_sge)
{
	return shift < 16 && frdma_rq_shift(max_sge) <= shift;
}

static inline bool frdma_opcode_ok(const struct frdma_sq_limits *l,
				   enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		return true;
	case IBV_WR_SEND_WITH_INV:
		return l->qp_type == IBV_QPT_RC || l->qp_type == IBV_QPT_UC;
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
	case IBV_WR_BIND_MW:
	case IBV_WR_LOCAL_INV:
		return l->qp_type == IBV_QPT_RC || l->qp_type == IBV_QPT_UC ||
		       l->qp_type == IBV_QPT_XRC_SEND;
	case IBV_WR_RDMA_READ:
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
	case IBV_WR_ATOMIC_WRITE:
		return l->qp_type == IBV_QPT_RC ||
		       l->qp_type == IBV_QPT_XRC_SEND;
	default:
		return false;
	}
}

/* Opcodes whose data may be given inline (the ones that carry data out). */
static inline bool frdma_opcode_inline_ok(enum ibv_wr_opcode op)
{
	return op == IBV_WR_SEND || op == IBV_WR_SEND_WITH_IMM ||
	       op == IBV_WR_SEND_WITH_INV || op == IBV_WR_RDMA_WRITE ||
	       op == IBV_WR_RDMA_WRITE_WITH_IMM;
}

/*
 * Opcodes whose entry carries no SGEs: the memory window operations, and
 * ATOMIC_WRITE, whose 8 bytes travel in the header.
 */
static inline bool frdma_opcode_no_sge(enum ibv_wr_opcode op)
{
	return op == IBV_WR_BIND_MW || op == IBV_WR_LOCAL_INV ||
	       op == IBV_WR_ATOMIC_WRITE;
}

/*
 * Check @wr against the queue's limits.  Returns 0 or EINVAL; on success
 * *@inline_len is the total inline length (0 without IBV_SEND_INLINE).
 */
static inline int frdma_send_wr_check(const struct frdma_sq_limits *l,
				      const struct ibv_send_wr *wr,
				      uint32_t *inline_len)
{
	uint64_t len = 0;
	int i;

	*inline_len = 0;
	if (!frdma_opcode_ok(l, wr->opcode) ||
	    (wr->send_flags & ~(unsigned int)FRDMA_SEND_FLAGS) ||
	    wr->num_sge < 0 || (l->qp_type == IBV_QPT_UD && !wr->wr.ud.ah))
		return EINVAL;
	switch (wr->opcode) {
	case IBV_WR_ATOMIC_WRITE:
		/* one buffer of exactly the 8 bytes to write */
		return !(wr->send_flags & IBV_SEND_INLINE) &&
		       wr->num_sge == 1 && wr->sg_list[0].length == 8 ?
		       0 : EINVAL;
	case IBV_WR_BIND_MW:
		return wr->bind_mw.mw && !(wr->send_flags & IBV_SEND_INLINE) &&
		       (!wr->bind_mw.bind_info.length ||
			wr->bind_mw.bind_info.mr) ? 0 : EINVAL;
	case IBV_WR_LOCAL_INV:
		return wr->send_flags & IBV_SEND_INLINE ? EINVAL : 0;
	default:
		break;
	}
	if (!(wr->send_flags & IBV_SEND_INLINE))
		return (uint32_t)wr->num_sge <= l->max_sge ? 0 : EINVAL;

	if (!frdma_opcode_inline_ok(wr->opcode))
		return EINVAL;
	for (i = 0; i < wr->num_sge; i++) {
		len += wr->sg_list[i].length;
		if (len > l->max_inline)
			return EINVAL;
	}
	*inline_len = len;
	return 0;
}

static inline uint8_t frdma_sqe_flags(const struct frdma_sq_limits *l,
				      unsigned int send_flags)
{
	return (send_flags & FRDMA_SEND_FLAGS) |
	       (l->sig_all ? FRDMA_WQE_SIGNALED : 0);
}

/* The SGEs or inline data that follow an SQE's header. */
static inline struct frdma_sge *frdma_sqe_sges(struct frdma_sqe *sqe)
{
	return (struct frdma_sge *)(sqe + 1);
}

static inline uint8_t *frdma_sqe_data(struct frdma_sqe *sqe)
{
	return (uint8_t *)(sqe + 1);
}

static inline void frdma_put_sges(struct frdma_sge *dst,
				  const struct ibv_sge *src, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		dst[i].addr = src[i].addr;
		dst[i].length = src[i].length;
		dst[i].lkey = src[i].lkey;
	}
}

/* Copy the buffers @sg names, back to back, to @dst. */
static inline void frdma_pack_inline(uint8_t *dst, const struct ibv_sge *sg,
				     uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		memcpy(dst, (const void *)(uintptr_t)sg[i].addr, sg[i].length);
		dst += sg[i].length;
	}
}

/*
 * Write the SQE for @wr, already checked by frdma_send_wr_check() (which
 * returned @inline_len), into @sqe.  Every header byte is written, the
 * reserved ones zero.
 */
static inline void frdma_build_sqe(struct frdma_sqe *sqe,
				   const struct frdma_sq_limits *l,
				   const struct ibv_send_wr *wr,
				   uint32_t inline_len)
{
	bool inl = wr->send_flags & IBV_SEND_INLINE;
	bool no_sge = frdma_opcode_no_sge(wr->opcode);
	const struct ibv_mw_bind_info *bi;

	*sqe = (struct frdma_sqe){
		.wr_id = wr->wr_id,
		.opcode = wr->opcode,
		.flags = frdma_sqe_flags(l, wr->send_flags),
		.num_sge = inl || no_sge ? 0 : wr->num_sge,
		.inline_len = inline_len,
	};
	if (l->qp_type == IBV_QPT_XRC_SEND)
		sqe->xrc_srqn = wr->qp_type.xrc.remote_srqn;

	switch (wr->opcode) {
	case IBV_WR_SEND_WITH_IMM:
		sqe->imm_data = wr->imm_data;
		/* fall through */
	case IBV_WR_SEND:
		if (l->qp_type == IBV_QPT_UD) {
			sqe->ud.ah_num = container_of(wr->wr.ud.ah,
						      struct frdma_ah,
						      ibv_ah)->ah_num;
			sqe->ud.remote_qpn = wr->wr.ud.remote_qpn;
			sqe->ud.remote_qkey = wr->wr.ud.remote_qkey;
		}
		break;
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		sqe->imm_data = wr->imm_data;
		/* fall through */
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_READ:
		sqe->rdma.remote_addr = wr->wr.rdma.remote_addr;
		sqe->rdma.rkey = wr->wr.rdma.rkey;
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		sqe->atomic.remote_addr = wr->wr.atomic.remote_addr;
		sqe->atomic.compare_add = wr->wr.atomic.compare_add;
		sqe->atomic.swap = wr->wr.atomic.swap;
		sqe->atomic.rkey = wr->wr.atomic.rkey;
		break;
	case IBV_WR_ATOMIC_WRITE:
		/* like RDMA WRITE, with the 8 bytes copied in now */
		sqe->atomic.remote_addr = wr->wr.rdma.remote_addr;
		sqe->atomic.rkey = wr->wr.rdma.rkey;
		memcpy(&sqe->atomic.compare_add,
		       (const void *)(uintptr_t)wr->sg_list[0].addr, 8);
		break;
	case IBV_WR_SEND_WITH_INV:
	case IBV_WR_LOCAL_INV:
		sqe->invalidate_rkey = wr->invalidate_rkey;
		break;
	case IBV_WR_BIND_MW:
		bi = &wr->bind_mw.bind_info;
		sqe->bind.addr = bi->addr;
		sqe->bind.length = bi->length;
		sqe->bind.mr_lkey = bi->mr ? bi->mr->lkey : 0;
		sqe->bind.mw_rkey = wr->bind_mw.mw->rkey;
		sqe->bind.new_rkey = wr->bind_mw.rkey;
		sqe->bind.access = bi->mw_access_flags;
		break;
	default:
		break;
	}

	if (no_sge)
		return;
	if (inl)
		frdma_pack_inline(frdma_sqe_data(sqe), wr->sg_list,
				  wr->num_sge);
	else
		frdma_put_sges(frdma_sqe_sges(sqe), wr->sg_list, wr->num_sge);
}

/* Check and write a receive entry.  Returns 0 or EINVAL. */
static inline int frdma_build_rqe(struct frdma_rqe *rqe, uint32_t max_sge,
				  const struct ibv_recv_wr *wr)
{
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > max_sge)
		return EINVAL;
	rqe->wr_id = wr->wr_id;
	rqe->num_sge = wr->num_sge;
	rqe->rsvd = 0;
	frdma_put_sges((struct frdma_sge *)(rqe + 1), wr->sg_list,
		       wr->num_sge);
	return 0;
}

/* Is there a free slot at r->uidx?  Reloads the consumer index if not. */
static inline bool frdma_wq_has_room(const struct frdma_ring *r,
				     uint32_t *cons)
{
	if (r->uidx - *cons < r->num_entries)
		return true;
	*cons = frdma_ring_load_cons(r);
	return r->uidx - *cons < r->num_entries;
}

/*
 * Write the send work requests of the list @wr into the SQ ring @r, from
 * its producer index r->uidx on, given the consumer index last loaded in
 * *@cons.  Stops at the first request refused (EINVAL by
 * frdma_send_wr_check(), ENOMEM when the ring is full), returns that error
 * and points *@bad at it; the requests before it are written and r->uidx
 * is past them.  The caller holds the queue's lock and publishes prod.
 */
static inline int frdma_sq_write(struct frdma_ring *r, uint32_t *cons,
				 const struct frdma_sq_limits *l,
				 struct ibv_send_wr *wr,
				 struct ibv_send_wr **bad)
{
	uint32_t inline_len;
	int ret;

	for (; wr; wr = wr->next) {
		ret = frdma_send_wr_check(l, wr, &inline_len);
		if (!ret && !frdma_wq_has_room(r, cons))
			ret = ENOMEM;
		if (ret) {
			*bad = wr;
			return ret;
		}
		frdma_build_sqe(frdma_ring_entry(r, r->uidx), l, wr,
				inline_len);
		r->uidx++;
	}
	return 0;
}

/* The same for receive work requests and an RQ (or SRQ) ring. */
static inline int frdma_rq_write(struct frdma_ring *r, uint32_t *cons,
				 uint32_t max_sge, struct ibv_recv_wr *wr,
				 struct ibv_recv_wr **bad)
{
	int ret;

	for (; wr; wr = wr->next) {
		ret = frdma_wq_has_room(r, cons) ?
		      frdma_build_rqe(frdma_ring_entry(r, r->uidx), max_sge,
				      wr) : ENOMEM;
		if (ret) {
			*bad = wr;
			return ret;
		}
		r->uidx++;
	}
	return 0;
}

#endif /* FRDMA_WQE_H */
