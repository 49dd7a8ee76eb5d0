/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma queue pairs, address handles and the data path that executes
 * their work requests.
 */
#ifndef _FRDMA_QP_H
#define _FRDMA_QP_H

#include "frdma.h"

/**
 * struct frdma_qp - a queue pair
 * @ibqp: the core's QP
 */
struct frdma_qp {
	struct ib_qp ibqp;
};

/**
 * struct frdma_ah - an address handle
 * @ibah: the core's AH
 */
struct frdma_ah {
	struct ib_ah ibah;
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

/* ah.c */
int frdma_create_ah(struct ib_ah *ibah, struct rdma_ah_init_attr *init,
		    struct ib_udata *udata);
int frdma_query_ah(struct ib_ah *ibah, struct rdma_ah_attr *attr);
int frdma_destroy_ah(struct ib_ah *ibah, u32 flags);

#endif /* _FRDMA_QP_H */
