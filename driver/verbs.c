// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: device, port, user context and protection domain verbs.
 */

#include <linux/etherdevice.h>
#include <linux/moduleparam.h>
#include <linux/rtnetlink.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_mad.h>
#include <rdma/uverbs_ioctl.h>

#include "frdma.h"
#include "mr.h"
#include "qp.h"

/*
 * Object limits.  Each device counts its user objects of every kind in
 * @nres and refuses the one past its limit with -ENOMEM, the limit being
 * what query_device reports.  The "max_objects" parameter lowers every
 * limit of the devices created after it is set (a test lowers it to reach
 * the limits cheaply); 0, the default, leaves them alone.
 */
static unsigned int max_objects;
module_param(max_objects, uint, 0644);
MODULE_PARM_DESC(max_objects,
		 "Lower every object limit of devices created from now on to this (default 0: the built-in limits)");

static u32 frdma_cap(u32 limit, u32 cap)
{
	return cap && cap < limit ? cap : limit;
}

/**
 * frdma_res_limit() - how many objects of a kind a device may hold
 * @fdev: the device
 * @res: the kind
 *
 * Return: the limit query_device reports for @res.
 */
u32 frdma_res_limit(struct frdma_dev *fdev, enum frdma_res res)
{
	const struct ib_device_attr *attr = &fdev->attr;

	switch (res) {
	case FRDMA_RES_PD:
		return attr->max_pd;
	case FRDMA_RES_CQ:
		return attr->max_cq;
	case FRDMA_RES_QP:
		return attr->max_qp;
	case FRDMA_RES_MR:
		return attr->max_mr;
	case FRDMA_RES_MW:
		return attr->max_mw;
	case FRDMA_RES_AH:
		return attr->max_ah;
	default:
		return 0;
	}
}

/**
 * frdma_res_charge() - count a new user object against its limit
 * @fdev: the device
 * @res: the kind
 *
 * Undo with frdma_res_uncharge() when the object goes, or when its
 * creation fails later.
 *
 * Context: any.
 * Return: 0, or -ENOMEM if the device holds its limit already.
 */
int frdma_res_charge(struct frdma_dev *fdev, enum frdma_res res)
{
	if (atomic_inc_return(&fdev->nres[res]) > frdma_res_limit(fdev, res)) {
		atomic_dec(&fdev->nres[res]);
		return -ENOMEM;
	}
	return 0;
}

/**
 * frdma_res_uncharge() - forget a user object counted by frdma_res_charge()
 * @fdev: the device
 * @res: the kind
 *
 * Context: any.
 */
void frdma_res_uncharge(struct frdma_dev *fdev, enum frdma_res res)
{
	atomic_dec(&fdev->nres[res]);
}

/**
 * frdma_init_attr - fill the attributes query_device reports
 * @fdev: the device, whose node_guid is already set
 */
void frdma_init_attr(struct frdma_dev *fdev)
{
	struct ib_device_attr *attr = &fdev->attr;
	u32 cap = READ_ONCE(max_objects);

	memset(attr, 0, sizeof(*attr));
	attr->fw_ver = FRDMA_FW_VER;
	attr->sys_image_guid = fdev->ibdev.node_guid;
	attr->max_mr_size = FRDMA_MAX_MR_SIZE;
	attr->page_size_cap = FRDMA_PAGE_SIZE_CAP;
	attr->vendor_id = FRDMA_VENDOR_ID;
	attr->vendor_part_id = FRDMA_VENDOR_PART_ID;
	attr->hw_ver = FRDMA_HW_VER;
	attr->max_qp = frdma_cap(FRDMA_MAX_QP, cap);
	attr->max_qp_wr = FRDMA_MAX_QP_WR;
	attr->device_cap_flags = IB_DEVICE_PORT_ACTIVE_EVENT |
				 IB_DEVICE_SYS_IMAGE_GUID |
				 IB_DEVICE_RC_RNR_NAK_GEN |
				 IB_DEVICE_CURR_QP_STATE_MOD |
				 IB_DEVICE_MEM_WINDOW |
				 IB_DEVICE_MEM_WINDOW_TYPE_2B |
				 IB_DEVICE_XRC |
				 IB_DEVICE_ATOMIC_WRITE;
	attr->kernel_cap_flags = IBK_ALLOW_USER_UNREG;
	attr->max_send_sge = FRDMA_MAX_SGE;
	attr->max_recv_sge = FRDMA_MAX_SGE;
	attr->max_sge_rd = FRDMA_MAX_SGE;
	attr->max_cq = frdma_cap(FRDMA_MAX_CQ, cap);
	attr->max_cqe = FRDMA_MAX_CQE;
	attr->max_mr = frdma_cap(FRDMA_MAX_MR, cap);
	attr->max_mw = frdma_cap(FRDMA_MAX_MW, cap);
	attr->max_pd = frdma_cap(FRDMA_MAX_PD, cap);
	attr->max_qp_rd_atom = FRDMA_MAX_RD_ATOM;
	attr->max_qp_init_rd_atom = FRDMA_MAX_RD_ATOM;
	attr->max_res_rd_atom = FRDMA_MAX_RD_ATOM * attr->max_qp;
	attr->atomic_cap = IB_ATOMIC_HCA;
	attr->max_ah = frdma_cap(FRDMA_MAX_AH, cap);
	attr->max_srq = FRDMA_MAX_SRQ;
	attr->max_srq_wr = FRDMA_MAX_QP_WR;
	attr->max_srq_sge = FRDMA_MAX_SGE;
	attr->max_pkeys = FRDMA_PKEY_TBL_LEN;
	attr->max_mcast_grp = FRDMA_MAX_MCAST_GRP;
	attr->max_mcast_qp_attach = FRDMA_MAX_MCAST_QP_ATTACH;
	attr->max_total_mcast_qp_attach = FRDMA_MAX_TOT_MCAST_QP_ATTACH;
	attr->local_ca_ack_delay = 15;
	/* Completion timestamps: CLOCK_MONOTONIC in ns (frdma-abi.h). */
	attr->hca_core_clock = FRDMA_CLOCK_KHZ;
	attr->timestamp_mask = U64_MAX;
	/*
	 * Kernel work requests (the GSI QP's) name memory by kernel virtual
	 * address with the device's local_dma_lkey: the device has no DMA
	 * device, so ib_dma_map_*() return kernel virtual addresses.
	 */
	attr->kernel_cap_flags |= IBK_LOCAL_DMA_LKEY;
}

static int frdma_query_device(struct ib_device *ibdev,
			      struct ib_device_attr *attr,
			      struct ib_udata *udata)
{
	if (udata->inlen || udata->outlen)
		return -EINVAL;
	*attr = to_fdev(ibdev)->attr;
	return 0;
}

static int frdma_query_port(struct ib_device *ibdev, u32 port,
			    struct ib_port_attr *attr)
{
	struct net_device *ndev;
	bool active;
	int err;

	/* The core has checked @port and zeroed @attr. */
	ndev = frdma_ib_device_get_netdev(ibdev, port, to_fdev(ibdev)->ndev);
	if (!ndev)
		return -ENODEV;

	active = frdma_port_is_active(ndev);
	attr->state = active ? IB_PORT_ACTIVE : IB_PORT_DOWN;
	if (active)
		attr->phys_state = IB_PORT_PHYS_STATE_LINK_UP;
	else if (dev_get_flags(ndev) & IFF_UP)
		attr->phys_state = IB_PORT_PHYS_STATE_POLLING;
	else
		attr->phys_state = IB_PORT_PHYS_STATE_DISABLED;
	attr->max_mtu = IB_MTU_4096;
	attr->active_mtu = frdma_port_mtu(ndev);
	attr->gid_tbl_len = FRDMA_GID_TBL_LEN;
	attr->port_cap_flags = IB_PORT_CM_SUP;
	attr->max_msg_sz = FRDMA_MAX_MSG_SIZE;
	attr->pkey_tbl_len = FRDMA_PKEY_TBL_LEN;
	attr->max_vl_num = 1;
	attr->ip_gids = true;
	dev_put(ndev);

	err = ib_get_eth_speed(ibdev, port, &attr->active_speed,
			       &attr->active_width);
	return err;
}

static int frdma_get_port_immutable(struct ib_device *ibdev, u32 port,
				    struct ib_port_immutable *immutable)
{
	immutable->core_cap_flags = RDMA_CORE_PORT_IBA_ROCE_UDP_ENCAP;
	immutable->pkey_tbl_len = FRDMA_PKEY_TBL_LEN;
	immutable->gid_tbl_len = FRDMA_GID_TBL_LEN;
	immutable->max_mad_size = IB_MGMT_MAD_SIZE;
	return 0;
}

static enum rdma_link_layer frdma_get_link_layer(struct ib_device *ibdev,
						 u32 port)
{
	return IB_LINK_LAYER_ETHERNET;
}

static int frdma_query_pkey(struct ib_device *ibdev, u32 port, u16 index,
			    u16 *pkey)
{
	if (index >= FRDMA_PKEY_TBL_LEN)
		return -EINVAL;
	*pkey = IB_DEFAULT_PKEY_FULL;
	return 0;
}

static int frdma_alloc_ucontext(struct ib_ucontext *ibuc,
				struct ib_udata *udata)
{
	struct frdma_alloc_ucontext_resp resp = {
		.abi_version = FRDMA_ABI_VERSION,
		.sq_wqe_hdr_size = sizeof(struct frdma_sqe),
		.rq_wqe_hdr_size = sizeof(struct frdma_rqe),
		.cqe_size = sizeof(struct frdma_cqe),
		.ring_hdr_size = FRDMA_RING_HDR_SIZE,
		.max_sge = FRDMA_MAX_SGE,
		.max_inline_data = FRDMA_MAX_INLINE_DATA,
		.max_wqe_size = FRDMA_MAX_WQE_SIZE,
	};
	int err;

	if (udata->inlen && !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (udata->outlen) {
		err = ib_copy_to_udata(udata, &resp,
				       min(udata->outlen, sizeof(resp)));
		if (err)
			return err;
	}
	return 0;
}

/*
 * UVERBS_METHOD_QUERY_CONTEXT, which ibv_import_device() issues: the core
 * answers it.  frdma's formats and limits are those of the uABI header
 * (struct frdma_alloc_ucontext_resp); a provider importing a context uses
 * them and has nothing more to ask.
 */
static int frdma_query_ucontext(struct ib_ucontext *ibuc,
				struct uverbs_attr_bundle *attrs)
{
	return 0;
}

static void frdma_dealloc_ucontext(struct ib_ucontext *ibuc)
{
}

/*
 * The counters and the limit count user space's objects, not the MAD
 * layer's PD.
 */
static int frdma_alloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	int err;

	if (rdma_is_kernel_res(&ibpd->res))
		return 0;
	err = frdma_res_charge(to_fdev(ibpd->device), FRDMA_RES_PD);
	if (err)
		return err;
	frdma_count(FRDMA_CNT_PD, 1);
	return 0;
}

static int frdma_dealloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	if (!rdma_is_kernel_res(&ibpd->res)) {
		frdma_res_uncharge(to_fdev(ibpd->device), FRDMA_RES_PD);
		frdma_count(FRDMA_CNT_PD, -1);
	}
	return 0;
}

/*
 * The core lists get_dma_mr among the verbs a device needs before kernel
 * clients (the MAD layer, ib_cm, rdma_cm) will use it.  Kernel memory is
 * named by the local_dma_lkey (IBK_LOCAL_DMA_LKEY), so ib_alloc_pd() never
 * asks for a DMA MR; one with remote access (IB_PD_UNSAFE_GLOBAL_RKEY)
 * would expose all of memory and is refused.
 */
static struct ib_mr *frdma_get_dma_mr(struct ib_pd *ibpd, int access)
{
	return ERR_PTR(-EOPNOTSUPP);
}

const struct ib_device_ops frdma_dev_ops = {
	.owner = THIS_MODULE,
	.uverbs_abi_ver = FRDMA_ABI_VERSION,

	.alloc_mw = frdma_alloc_mw,
	.alloc_pd = frdma_alloc_pd,
	.alloc_ucontext = frdma_alloc_ucontext,
	.alloc_xrcd = frdma_alloc_xrcd,
	.attach_mcast = frdma_attach_mcast,
	.create_ah = frdma_create_ah,
	.create_cq = frdma_create_cq,
	.create_qp = frdma_create_qp,
	.create_srq = frdma_create_srq,
	.create_user_ah = frdma_create_ah,
	.dealloc_mw = frdma_dealloc_mw,
	.dealloc_pd = frdma_dealloc_pd,
	.dealloc_ucontext = frdma_dealloc_ucontext,
	.dealloc_xrcd = frdma_dealloc_xrcd,
	.dereg_mr = frdma_dereg_mr,
	.destroy_ah = frdma_destroy_ah,
	.destroy_cq = frdma_destroy_cq,
	.destroy_qp = frdma_destroy_qp,
	.destroy_srq = frdma_destroy_srq,
	.detach_mcast = frdma_detach_mcast,
	.fill_res_mr_entry = frdma_fill_res_mr_entry,
	.get_dma_mr = frdma_get_dma_mr,
	.get_link_layer = frdma_get_link_layer,
	.get_port_immutable = frdma_get_port_immutable,
	.mmap = frdma_mmap,
	.mmap_free = frdma_mmap_free,
	.modify_qp = frdma_modify_qp,
	.modify_srq = frdma_modify_srq,
	.poll_cq = frdma_poll_cq,
	.post_recv = frdma_post_recv,
	.post_send = frdma_post_send,
	.query_ah = frdma_query_ah,
	.query_device = frdma_query_device,
	.query_pkey = frdma_query_pkey,
	.query_port = frdma_query_port,
	.query_qp = frdma_query_qp,
	.query_srq = frdma_query_srq,
	.query_ucontext = frdma_query_ucontext,
	.reg_user_mr = frdma_reg_user_mr,
	.rereg_user_mr = frdma_rereg_user_mr,
	.req_notify_cq = frdma_req_notify_cq,
	.resize_cq = frdma_resize_cq,

	INIT_RDMA_OBJ_SIZE(ib_ah, frdma_ah, ibah),
	INIT_RDMA_OBJ_SIZE(ib_cq, frdma_cq, ibcq),
	INIT_RDMA_OBJ_SIZE(ib_mw, frdma_ibmw, ibmw),
	INIT_RDMA_OBJ_SIZE(ib_pd, frdma_pd, ibpd),
	INIT_RDMA_OBJ_SIZE(ib_qp, frdma_qp, ibqp),
	INIT_RDMA_OBJ_SIZE(ib_srq, frdma_srq, ibsrq),
	INIT_RDMA_OBJ_SIZE(ib_ucontext, frdma_ucontext, ibuc),
	INIT_RDMA_OBJ_SIZE(ib_xrcd, frdma_xrcd, ibxrcd),
};
