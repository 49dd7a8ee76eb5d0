// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: address handles.
 *
 * An AH stores its address vector (a RoCE v2 GRH: destination GID, source
 * GID index, traffic class, hop limit, flow label) for UD sends.  User
 * space names it in a UD SQE by the ah_num of its create response; the
 * number indexes the device's AH table.  Kernel AHs (the CM's, built from
 * path records and from received work completions) are the same objects;
 * a kernel UD work request names its AH by pointer (gsi.c).
 */

#include <rdma/uverbs_ioctl.h>

#include "qp.h"

#define FRDMA_AH_NUM_MAX	0xffffff

int frdma_create_ah(struct ib_ah *ibah, struct rdma_ah_init_attr *init,
		    struct ib_udata *udata)
{
	struct frdma_dev *fdev = to_fdev(ibah->device);
	struct frdma_ah *ah = to_fah(ibah);
	struct frdma_create_ah_resp resp = {};
	struct rdma_ah_attr *attr = init->ah_attr;
	unsigned long flags;
	gfp_t gfp;
	int err;

	if (attr->type != RDMA_AH_ATTR_TYPE_ROCE ||
	    !(rdma_ah_get_ah_flags(attr) & IB_AH_GRH))
		return -EINVAL;
	if (udata) {
		if (udata->inlen &&
		    !ib_is_udata_cleared(udata, 0, udata->inlen))
			return -EINVAL;
		if (udata->outlen < sizeof(resp))
			return -EINVAL;
	}
	/* Faults are injected, and objects counted, for user space's only. */
	if (udata && frdma_should_fail())
		return -ENOMEM;
	if (udata) {
		err = frdma_res_charge(fdev, FRDMA_RES_AH);
		if (err)
			return err;
	}

	ah->user = udata;
	ah->attr = *attr;
	ah->attr.grh.sgid_attr = NULL;
	if (attr->grh.sgid_attr)
		ah->sgid = attr->grh.sgid_attr->gid;
	gfp = (init->flags & RDMA_CREATE_AH_SLEEPABLE) ? GFP_KERNEL :
							 GFP_ATOMIC;
	if (udata)
		gfp |= __GFP_ACCOUNT;
	/* Kernel AHs may be created and destroyed in atomic context. */
	xa_lock_irqsave(&fdev->ah_table, flags);
	err = __xa_alloc_cyclic(&fdev->ah_table, &ah->ah_num, ah,
				XA_LIMIT(1, FRDMA_AH_NUM_MAX), &fdev->ah_next,
				gfp);
	xa_unlock_irqrestore(&fdev->ah_table, flags);
	if (err < 0)
		goto err_count;

	if (udata) {
		resp.ah_num = ah->ah_num;
		err = ib_copy_to_udata(udata, &resp, sizeof(resp));
		if (err) {
			xa_erase_irq(&fdev->ah_table, ah->ah_num);
			goto err_count;
		}
		frdma_count(FRDMA_CNT_AH, 1);
	}
	return 0;

err_count:
	if (udata)
		frdma_res_uncharge(fdev, FRDMA_RES_AH);
	return err;
}

/**
 * frdma_ah_lookup - copy the address vector of an AH named by number
 * @fdev: the device
 * @ah_num: the number, from a UD SQE
 * @pd: the PD the AH must belong to (the sending QP's)
 * @attr: receives the address vector
 * @sgid: receives the source GID
 *
 * Context: any; does not sleep.
 * Return: true if an AH of @pd has that number.
 */
bool frdma_ah_lookup(struct frdma_dev *fdev, u32 ah_num, struct ib_pd *pd,
		     struct rdma_ah_attr *attr, union ib_gid *sgid)
{
	unsigned long irqflags;
	struct frdma_ah *ah;
	bool found = false;

	/* destroy_ah erases under the lock before the AH is freed. */
	xa_lock_irqsave(&fdev->ah_table, irqflags);
	ah = xa_load(&fdev->ah_table, ah_num);
	if (ah && ah->ibah.pd == pd) {
		*attr = ah->attr;
		*sgid = ah->sgid;
		found = true;
	}
	xa_unlock_irqrestore(&fdev->ah_table, irqflags);
	return found;
}

int frdma_query_ah(struct ib_ah *ibah, struct rdma_ah_attr *attr)
{
	struct frdma_ah *ah = to_fah(ibah);

	*attr = ah->attr;
	attr->grh.sgid_attr = NULL;
	return 0;
}

int frdma_destroy_ah(struct ib_ah *ibah, u32 flags)
{
	struct frdma_dev *fdev = to_fdev(ibah->device);
	struct frdma_ah *ah = to_fah(ibah);
	unsigned long irqflags;

	xa_lock_irqsave(&fdev->ah_table, irqflags);
	__xa_erase(&fdev->ah_table, ah->ah_num);
	xa_unlock_irqrestore(&fdev->ah_table, irqflags);
	if (ah->user) {
		frdma_res_uncharge(fdev, FRDMA_RES_AH);
		frdma_count(FRDMA_CNT_AH, -1);
	}
	return 0;
}
