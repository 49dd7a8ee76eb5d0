// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: address handles (placeholder until implemented).
 */

#include "qp.h"

int frdma_create_ah(struct ib_ah *ibah, struct rdma_ah_init_attr *init,
		    struct ib_udata *udata)
{
	return -EOPNOTSUPP;
}

int frdma_query_ah(struct ib_ah *ibah, struct rdma_ah_attr *attr)
{
	return -EOPNOTSUPP;
}

int frdma_destroy_ah(struct ib_ah *ibah, u32 flags)
{
	return 0;
}
