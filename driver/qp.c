// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: queue pairs and the data path (placeholder until implemented).
 */

#include "qp.h"

int frdma_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
		    struct ib_udata *udata)
{
	return -EOPNOTSUPP;
}

int frdma_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		    struct ib_udata *udata)
{
	return -EOPNOTSUPP;
}

int frdma_query_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr, int mask,
		   struct ib_qp_init_attr *init)
{
	return -EOPNOTSUPP;
}

int frdma_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata)
{
	return 0;
}

int frdma_post_send(struct ib_qp *ibqp, const struct ib_send_wr *wr,
		    const struct ib_send_wr **bad_wr)
{
	return -EOPNOTSUPP;
}

int frdma_post_recv(struct ib_qp *ibqp, const struct ib_recv_wr *wr,
		    const struct ib_recv_wr **bad_wr)
{
	return -EOPNOTSUPP;
}
