/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * frdma libibverbs provider: objects and command layouts.
 */
#ifndef FRDMA_PROVIDER_H
#define FRDMA_PROVIDER_H

#include <pthread.h>
#include <stddef.h>
#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/frdma-abi.h>

#include "ring.h"
#include "verbs_private.h"
#include "wqe.h"

struct frdma_device {
	struct verbs_device vdev;
};

struct frdma_context {
	struct verbs_context vctx;
	/* what the kernel told GET_CONTEXT about its formats and limits */
	struct frdma_alloc_ucontext_resp caps;
};

struct frdma_qp;

/*
 * A QP on the list of one of its CQs, under that CQ's lock: the QPs whose
 * polled SQ a poller of the CQ may have to run (frdma_cq_kick_sqs()), and
 * the SQ's cons as last seen from this CQ.
 */
struct frdma_cq_link {
	struct frdma_qp *qp;
	struct frdma_cq_link *next;
	uint32_t kick_cons;
};

struct frdma_cq {
	struct verbs_cq vcq;
	pthread_spinlock_t lock;	/* serialises pollers */
	struct frdma_ring ring;		/* uidx is the consumer index */
	/* extended polling: the CQE being read, under the lock */
	const struct frdma_cqe *cur;
	/*
	 * Under the lock: the QPs whose send or receive CQ this is, and
	 * polls in a row that found nothing (frdma_cq_kick_sqs()).
	 */
	struct frdma_cq_link *links;
	uint32_t empty_polls;
	/* entries are struct frdma_cqe_ts (completion timestamps) */
	bool timestamps;
};

/* The wc_flags an extended CQ can report. */
#define FRDMA_WC_EX_TIMESTAMPS (IBV_WC_EX_WITH_COMPLETION_TIMESTAMP | \
				IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK)
#define FRDMA_WC_EX_FLAGS (IBV_WC_STANDARD_FLAGS | FRDMA_WC_EX_TIMESTAMPS)

/* Empty polls of a CQ after which its QPs' polled SQs are checked. */
#define FRDMA_CQ_KICK_POLLS	1024

/*
 * The QPs whose doorbells a CQ's caller rings once it has dropped the CQ
 * lock (frdma_cq_kick_sqs(), frdma_kick_ring()): by handle, so that a QP
 * destroyed meanwhile is only a refused or spurious doorbell.
 */
#define FRDMA_KICK_MAX		16
struct frdma_kick {
	unsigned int n;
	uint32_t handle[FRDMA_KICK_MAX];
};

/*
 * A work queue of a QP: its ring (hdr NULL when the QP has none, e.g. the
 * RQ of a QP on an SRQ) and the lock that serialises its producers; uidx
 * is the producer index.
 */
struct frdma_wq {
	pthread_spinlock_t lock;
	struct frdma_ring ring;
	uint32_t max_sge;
};

/* A shared receive queue: its ring, produced into like a QP's RQ. */
struct frdma_srq {
	struct verbs_srq vsrq;		/* srq_num: an XRC SRQ's number */
	struct frdma_wq wq;
};

static inline struct frdma_srq *to_fsrq(struct ibv_srq *ibsrq)
{
	return container_of(ibsrq, struct frdma_srq, vsrq.srq);
}

struct frdma_qp {
	struct verbs_qp vqp;
	struct frdma_wq sq;
	struct frdma_wq rq;
	struct frdma_sq_limits sql;
	/*
	 * ibv_wr_*(), between wr_start and wr_complete/wr_abort, under the
	 * SQ lock: the entry being built (NULL once an error is recorded or
	 * before the first opcode), the index of the next entry, the
	 * consumer index last loaded, and the first error.
	 */
	struct frdma_sqe *wr_cur;
	uint32_t wr_idx;
	uint32_t wr_cons;
	int wr_err;
	/*
	 * Under the SQ lock: the SQ's cons as last loaded, and how many
	 * entries were posted since it last moved (frdma_sq_note()).
	 */
	uint32_t sq_seen_cons;
	uint32_t sq_unmoved;
	/* on the send CQ's list, and the receive CQ's when that is another */
	struct frdma_cq_link scq_link;
	struct frdma_cq_link rcq_link;
};

static inline struct frdma_qp *to_fqp(struct ibv_qp *ibqp)
{
	return container_of(ibqp, struct frdma_qp, vqp.qp);
}

static inline struct frdma_ah *to_fah(struct ibv_ah *ibah)
{
	return container_of(ibah, struct frdma_ah, ibv_ah);
}

static inline struct frdma_cq *to_fcq(struct ibv_cq *ibcq)
{
	return container_of(ibcq, struct frdma_cq, vcq.cq);
}

static inline struct frdma_context *to_fctx(struct ibv_context *ibctx)
{
	return container_of(ibctx, struct frdma_context, vctx.context);
}

/*
 * Commands: the uverbs header, the core request, then the driver data
 * (none yet for these); responses: the core response, then driver data.
 */
struct frdma_cmd_get_context {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_get_context core;
};

struct frdma_cmd_get_context_resp {
	struct ib_uverbs_get_context_resp core;
	struct frdma_alloc_ucontext_resp drv;
};

struct frdma_cmd_query_port {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_query_port core;
};

struct frdma_cmd_alloc_pd {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_alloc_pd core;
};

struct frdma_cmd_create_cq {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_create_cq core;
};

struct frdma_cmd_create_cq_resp {
	struct ib_uverbs_create_cq_resp core;
	struct frdma_create_cq_resp drv;
};

struct frdma_cmd_create_cq_ex {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_ex_cmd_hdr ex_hdr;
	struct ib_uverbs_ex_create_cq core;
};

struct frdma_cmd_create_cq_ex_resp {
	struct ib_uverbs_ex_create_cq_resp core;
	struct frdma_create_cq_resp drv;
};

struct frdma_cmd_resize_cq {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_resize_cq core;
};

struct frdma_cmd_resize_cq_resp {
	struct ib_uverbs_resize_cq_resp core;
	struct frdma_resize_cq_resp drv;
};

struct frdma_cmd_reg_mr {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_reg_mr core;
};

struct frdma_cmd_rereg_mr {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_rereg_mr core;
};

struct frdma_cmd_alloc_mw {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_alloc_mw core;
};

struct frdma_cmd_create_qp {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_create_qp core;
};

struct frdma_cmd_create_qp_resp {
	struct ib_uverbs_create_qp_resp core;
	struct frdma_create_qp_resp drv;
};

struct frdma_cmd_create_qp_ex {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_ex_cmd_hdr ex_hdr;
	struct ib_uverbs_ex_create_qp core;
};

struct frdma_cmd_create_qp_ex_resp {
	struct ib_uverbs_ex_create_qp_resp core;
	struct frdma_create_qp_resp drv;
};

struct frdma_cmd_modify_qp {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_modify_qp core;
};

struct frdma_cmd_query_qp {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_query_qp core;
};

struct frdma_cmd_create_ah_resp {
	struct ib_uverbs_create_ah_resp core;
	struct frdma_create_ah_resp drv;
};

struct frdma_cmd_create_srq {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_create_srq core;
};

struct frdma_cmd_create_srq_resp {
	struct ib_uverbs_create_srq_resp core;
	struct frdma_create_srq_resp drv;
};

struct frdma_cmd_create_xsrq {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_create_xsrq core;
};

struct frdma_cmd_open_xrcd {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_open_xrcd core;
};

struct frdma_cmd_open_qp {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_open_qp core;
};

struct frdma_cmd_modify_srq {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_modify_srq core;
};

struct frdma_cmd_query_srq {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_query_srq core;
};

/* The doorbell: a POST_SEND with no work request (see the uABI header). */
struct frdma_cmd_doorbell {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_post_send core;
};

static_assert(sizeof(struct frdma_cmd_doorbell) % 4 == 0, "doorbell words");
static_assert(offsetof(struct frdma_cmd_create_qp_resp, drv) ==
	      sizeof(struct ib_uverbs_create_qp_resp) &&
	      offsetof(struct frdma_cmd_create_qp_ex_resp, drv) ==
	      sizeof(struct ib_uverbs_ex_create_qp_resp) &&
	      offsetof(struct frdma_cmd_create_ah_resp, drv) ==
	      sizeof(struct ib_uverbs_create_ah_resp),
	      "driver data follows the core response");
static_assert(sizeof(struct frdma_cmd_get_context_resp) % 8 == 0,
	      "driver data keeps 8-byte alignment");
static_assert(sizeof(struct frdma_cmd_create_cq_ex) % 8 == 0 &&
	      sizeof(struct frdma_cmd_create_cq_ex_resp) % 8 == 0,
	      "extended commands keep 8-byte multiples");
static_assert(offsetof(struct frdma_cmd_create_cq_resp, drv) ==
	      sizeof(struct ib_uverbs_create_cq_resp),
	      "driver data follows the core response");
static_assert(offsetof(struct frdma_cmd_create_srq_resp, drv) ==
	      sizeof(struct ib_uverbs_create_srq_resp),
	      "driver data follows the core response");

/* The uABI formats, as the provider relies on them. */
static_assert(sizeof(struct frdma_ring_hdr) == FRDMA_RING_HDR_SIZE, "ring hdr");
static_assert(sizeof(struct frdma_ring_desc) == 24, "ring desc");
static_assert(sizeof(struct frdma_sge) == 16, "sge");
static_assert(sizeof(struct frdma_sqe) == 64, "sqe");
static_assert(sizeof(struct frdma_rqe) == 16, "rqe");
static_assert(sizeof(struct frdma_cqe) == 1 << FRDMA_CQE_SHIFT, "cqe");
static_assert(sizeof(struct frdma_sqe) + FRDMA_MAX_SGE * sizeof(struct frdma_sge)
	      <= FRDMA_MAX_WQE_SIZE, "largest SQE fits the largest stride");
static_assert(sizeof(struct frdma_sqe) + FRDMA_MAX_INLINE_DATA <=
	      FRDMA_MAX_WQE_SIZE, "largest inline SQE fits the largest stride");
static_assert(sizeof(struct frdma_create_qp_resp) % 8 == 0, "qp resp");
static_assert(sizeof(struct frdma_create_ah_resp) % 8 == 0, "ah resp");
/* CQE and SQE codes are libibverbs' own values */
#define FRDMA_SAME(a, b) ((int)(a) == (int)(b))
static_assert(FRDMA_SAME(FRDMA_WC_RECV, IBV_WC_RECV) &&
	      FRDMA_SAME(FRDMA_WC_RECV_RDMA_WITH_IMM, IBV_WC_RECV_RDMA_WITH_IMM),
	      "receive completion opcodes");
static_assert(FRDMA_SAME(IB_UVERBS_WC_SEND, IBV_WC_SEND) &&
	      FRDMA_SAME(IB_UVERBS_WC_RDMA_WRITE, IBV_WC_RDMA_WRITE) &&
	      FRDMA_SAME(IB_UVERBS_WC_RDMA_READ, IBV_WC_RDMA_READ) &&
	      FRDMA_SAME(IB_UVERBS_WC_COMP_SWAP, IBV_WC_COMP_SWAP) &&
	      FRDMA_SAME(IB_UVERBS_WC_FETCH_ADD, IBV_WC_FETCH_ADD),
	      "send completion opcodes");
static_assert(FRDMA_SAME(FRDMA_WC_GRH, IBV_WC_GRH) &&
	      FRDMA_SAME(FRDMA_WC_WITH_IMM, IBV_WC_WITH_IMM), "wc flags");
static_assert(FRDMA_SAME(IB_UVERBS_WR_SEND, IBV_WR_SEND) &&
	      FRDMA_SAME(IB_UVERBS_WR_SEND_WITH_IMM, IBV_WR_SEND_WITH_IMM) &&
	      FRDMA_SAME(IB_UVERBS_WR_RDMA_WRITE, IBV_WR_RDMA_WRITE) &&
	      FRDMA_SAME(IB_UVERBS_WR_RDMA_WRITE_WITH_IMM,
			 IBV_WR_RDMA_WRITE_WITH_IMM) &&
	      FRDMA_SAME(IB_UVERBS_WR_RDMA_READ, IBV_WR_RDMA_READ) &&
	      FRDMA_SAME(IB_UVERBS_WR_ATOMIC_CMP_AND_SWP,
			 IBV_WR_ATOMIC_CMP_AND_SWP) &&
	      FRDMA_SAME(IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD,
			 IBV_WR_ATOMIC_FETCH_AND_ADD), "work request opcodes");
static_assert(FRDMA_SAME(FRDMA_WQE_FENCE, IBV_SEND_FENCE) &&
	      FRDMA_SAME(FRDMA_WQE_SIGNALED, IBV_SEND_SIGNALED) &&
	      FRDMA_SAME(FRDMA_WQE_SOLICITED, IBV_SEND_SOLICITED) &&
	      FRDMA_SAME(FRDMA_WQE_INLINE, IBV_SEND_INLINE), "send flags");
static_assert(FRDMA_SAME(IBV_WC_SUCCESS, 0) &&
	      FRDMA_SAME(IBV_WC_WR_FLUSH_ERR, 5) &&
	      FRDMA_SAME(IBV_WC_REM_ACCESS_ERR, 10), "wc status = ib_wc_status");

/* cq.c */
struct ibv_cq *frdma_create_cq(struct ibv_context *ibctx, int cqe,
			       struct ibv_comp_channel *channel,
			       int comp_vector);
int frdma_destroy_cq(struct ibv_cq *ibcq);
int frdma_poll_cq(struct ibv_cq *ibcq, int ne, struct ibv_wc *wc);
int frdma_req_notify_cq(struct ibv_cq *ibcq, int solicited_only);
int frdma_resize_cq(struct ibv_cq *ibcq, int cqe);
void frdma_cq_clean(struct ibv_cq *ibcq, uint32_t qpn);
struct ibv_cq_ex *frdma_create_cq_ex(struct ibv_context *ibctx,
				     struct ibv_cq_init_attr_ex *attr);
int frdma_query_rt_values(struct ibv_context *ibctx,
			  struct ibv_values_ex *values);

/* srq.c */
struct ibv_srq *frdma_create_srq_ex(struct ibv_context *ibctx,
				    struct ibv_srq_init_attr_ex *attr);
int frdma_get_srq_num(struct ibv_srq *ibsrq, uint32_t *srq_num);
struct ibv_xrcd *frdma_open_xrcd(struct ibv_context *ibctx,
				 struct ibv_xrcd_init_attr *attr);
int frdma_close_xrcd(struct ibv_xrcd *ibxrcd);
struct ibv_qp *frdma_open_qp(struct ibv_context *ibctx,
			     struct ibv_qp_open_attr *attr);
struct ibv_srq *frdma_create_srq(struct ibv_pd *pd,
				 struct ibv_srq_init_attr *attr);
int frdma_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
		     int attr_mask);
int frdma_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr);
int frdma_destroy_srq(struct ibv_srq *ibsrq);
int frdma_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
			struct ibv_recv_wr **bad_wr);

/* qp.c */
struct ibv_qp *frdma_create_qp(struct ibv_pd *pd,
			       struct ibv_qp_init_attr *attr);
struct ibv_qp *frdma_create_qp_ex(struct ibv_context *ibctx,
				  struct ibv_qp_init_attr_ex *attr);
int frdma_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
		    int attr_mask);
int frdma_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
		   int attr_mask, struct ibv_qp_init_attr *init_attr);
int frdma_destroy_qp(struct ibv_qp *ibqp);
void frdma_cq_kick_sqs(struct frdma_cq *cq, bool arming,
		       struct frdma_kick *kick);
void frdma_kick_ring(struct frdma_cq *cq, const struct frdma_kick *kick);
int frdma_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		    struct ibv_send_wr **bad_wr);
int frdma_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		    struct ibv_recv_wr **bad_wr);
int frdma_bind_mw(struct ibv_qp *ibqp, struct ibv_mw *mw,
		  struct ibv_mw_bind *mw_bind);

#endif /* FRDMA_PROVIDER_H */
