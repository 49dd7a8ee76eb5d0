// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: memory regions (placeholder until implemented).
 */

#include "mr.h"

struct ib_mr *frdma_reg_user_mr(struct ib_pd *pd, u64 start, u64 length,
				u64 iova, int access, struct ib_udata *udata)
{
	return ERR_PTR(-EOPNOTSUPP);
}

int frdma_dereg_mr(struct ib_mr *ibmr, struct ib_udata *udata)
{
	return 0;
}

int frdma_fill_res_mr_entry(struct sk_buff *msg, struct ib_mr *ibmr)
{
	return 0;
}

void frdma_mr_table_init(struct frdma_dev *fdev)
{
}

void frdma_mr_table_destroy(struct frdma_dev *fdev)
{
}
