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

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct frdma_device {
	struct verbs_device vdev;
};

struct frdma_context {
	struct verbs_context vctx;
	/* what the kernel told GET_CONTEXT about its formats and limits */
	struct frdma_alloc_ucontext_resp caps;
};

struct frdma_cq {
	struct verbs_cq vcq;
	pthread_spinlock_t lock;	/* serialises pollers */
	struct frdma_ring ring;		/* uidx is the consumer index */
};

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

static_assert(sizeof(struct frdma_cmd_get_context_resp) % 8 == 0,
	      "driver data keeps 8-byte alignment");
static_assert(offsetof(struct frdma_cmd_create_cq_resp, drv) ==
	      sizeof(struct ib_uverbs_create_cq_resp),
	      "driver data follows the core response");

/* cq.c */
struct ibv_cq *frdma_create_cq(struct ibv_context *ibctx, int cqe,
			       struct ibv_comp_channel *channel,
			       int comp_vector);
int frdma_destroy_cq(struct ibv_cq *ibcq);
int frdma_poll_cq(struct ibv_cq *ibcq, int ne, struct ibv_wc *wc);

#endif /* FRDMA_PROVIDER_H */
