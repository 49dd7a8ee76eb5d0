// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * frdma libibverbs provider: device matching, contexts, device and port
 * queries, protection domains, memory regions, address handles.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frdma.h"

static int frdma_query_device(struct ibv_context *ibctx,
			      const struct ibv_query_device_ex_input *input,
			      struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct ib_uverbs_ex_query_device_resp resp;
	size_t resp_size = sizeof(resp);
	uint64_t fw;
	int ret;

	ret = ibv_cmd_query_device_any(ibctx, input, attr, attr_size, &resp,
				       &resp_size);
	if (ret)
		return ret;

	fw = resp.base.fw_ver;
	snprintf(attr->orig_attr.fw_ver, sizeof(attr->orig_attr.fw_ver),
		 "%u.%u.%u", (unsigned int)(fw >> 32) & 0xffff,
		 (unsigned int)(fw >> 16) & 0xffff, (unsigned int)fw & 0xffff);
	return 0;
}

static int frdma_query_port(struct ibv_context *ibctx, uint8_t port,
			    struct ibv_port_attr *attr)
{
	struct frdma_cmd_query_port cmd = {};

	return ibv_cmd_query_port(ibctx, port, attr,
				  (struct ibv_query_port *)&cmd, sizeof(cmd));
}

/*
 * A PD, or a parent domain: a PD of the provider's only, which stands for
 * its protection domain (same kernel handle) and carries the allocators
 * the application wants the provider to use for the buffers of the
 * objects created through it.  frdma's queues are rings the kernel
 * allocates and the provider maps, so no allocation ever goes to them.
 */
struct frdma_pd {
	struct ibv_pd ibpd;
	struct ibv_pd *protection_domain;	/* a parent domain's, else NULL */
	void *pd_context;
};

static struct ibv_pd *frdma_alloc_pd(struct ibv_context *ibctx)
{
	struct frdma_cmd_alloc_pd cmd = {};
	struct ib_uverbs_alloc_pd_resp resp = {};
	struct frdma_pd *pd;
	int ret;

	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;
	ret = ibv_cmd_alloc_pd(ibctx, &pd->ibpd, (struct ibv_alloc_pd *)&cmd,
			       sizeof(cmd), &resp, sizeof(resp));
	if (ret) {
		free(pd);
		errno = ret;
		return NULL;
	}
	return &pd->ibpd;
}

static struct ibv_pd *
frdma_alloc_parent_domain(struct ibv_context *ibctx,
			  struct ibv_parent_domain_init_attr *attr)
{
	struct frdma_pd *pd, *parent;

	if (attr->comp_mask & ~(uint32_t)(IBV_PARENT_DOMAIN_INIT_ATTR_ALLOCATORS |
					  IBV_PARENT_DOMAIN_INIT_ATTR_PD_CONTEXT) ||
	    attr->td || !attr->pd || attr->pd->context != ibctx) {
		errno = attr->td ? EOPNOTSUPP : EINVAL;
		return NULL;
	}
	parent = container_of(attr->pd, struct frdma_pd, ibpd);
	if (parent->protection_domain) {	/* not a parent of a parent */
		errno = EINVAL;
		return NULL;
	}
	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;
	pd->ibpd.context = ibctx;
	pd->ibpd.handle = attr->pd->handle;
	pd->protection_domain = attr->pd;
	if (attr->comp_mask & IBV_PARENT_DOMAIN_INIT_ATTR_PD_CONTEXT)
		pd->pd_context = attr->pd_context;
	return &pd->ibpd;
}

/*
 * ibv_import_pd(): a PD of the context's command fd, by handle.  The
 * kernel checks the handle in every command that names the PD.
 */
static struct ibv_pd *frdma_import_pd(struct ibv_context *ibctx,
				      uint32_t pd_handle)
{
	struct frdma_pd *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return NULL;
	pd->ibpd.context = ibctx;
	pd->ibpd.handle = pd_handle;
	return &pd->ibpd;
}

static void frdma_unimport_pd(struct ibv_pd *ibpd)
{
	free(container_of(ibpd, struct frdma_pd, ibpd));
}

static struct ibv_mr *frdma_import_mr(struct ibv_pd *pd, uint32_t mr_handle)
{
	struct verbs_mr *vmr = calloc(1, sizeof(*vmr));
	int ret;

	if (!vmr)
		return NULL;
	ret = ibv_cmd_query_mr(pd, vmr, mr_handle);
	if (ret) {
		free(vmr);
		errno = ret;
		return NULL;
	}
	return &vmr->ibv_mr;
}

static void frdma_unimport_mr(struct ibv_mr *mr)
{
	free(container_of(mr, struct verbs_mr, ibv_mr));
}

static int frdma_dealloc_pd(struct ibv_pd *ibpd)
{
	struct frdma_pd *pd = container_of(ibpd, struct frdma_pd, ibpd);
	int ret;

	if (!pd->protection_domain) {
		ret = ibv_cmd_dealloc_pd(ibpd);
		if (ret)
			return ret;
	}
	free(pd);
	return 0;
}

static struct ibv_mr *frdma_reg_mr(struct ibv_pd *pd, void *addr,
				   size_t length, uint64_t hca_va, int access)
{
	struct frdma_cmd_reg_mr cmd = {};
	struct ib_uverbs_reg_mr_resp resp = {};
	struct verbs_mr *vmr;
	int ret;

	vmr = calloc(1, sizeof(*vmr));
	if (!vmr)
		return NULL;
	ret = ibv_cmd_reg_mr(pd, addr, length, hca_va, access, vmr,
			     (struct ibv_reg_mr *)&cmd, sizeof(cmd), &resp,
			     sizeof(resp));
	if (ret) {
		free(vmr);
		errno = ret;
		return NULL;
	}
	return &vmr->ibv_mr;
}

static int frdma_dereg_mr(struct verbs_mr *vmr)
{
	int ret;

	ret = ibv_cmd_dereg_mr(vmr);
	if (ret)
		return ret;
	free(vmr);
	return 0;
}

/*
 * Change an MR's PD, rights or translation; the kernel keeps the keys
 * unless the translation changes (then the MR gets new ones, which the
 * command's response carries and libibverbs stores).  libibverbs has
 * checked @flags.
 */
static int frdma_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
			  void *addr, size_t length, int access)
{
	struct frdma_cmd_rereg_mr cmd = {};
	struct ib_uverbs_rereg_mr_resp resp = {};
	int ret;

	ret = ibv_cmd_rereg_mr(vmr, flags, addr, length, (uintptr_t)addr,
			       access, pd, (struct ibv_rereg_mr *)&cmd,
			       sizeof(cmd), &resp, sizeof(resp));
	if (ret)
		errno = ret;
	return ret;
}

/*
 * Memory windows: the kernel allocates the window and its key; binding
 * and invalidation go through the send queue (frdma_bind_mw() in qp.c).
 */
static struct ibv_mw *frdma_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type)
{
	struct frdma_cmd_alloc_mw cmd = {};
	struct ib_uverbs_alloc_mw_resp resp = {};
	struct ibv_mw *mw;
	int ret;

	mw = calloc(1, sizeof(*mw));
	if (!mw)
		return NULL;
	ret = ibv_cmd_alloc_mw(pd, type, mw, (struct ibv_alloc_mw *)&cmd,
			       sizeof(cmd), &resp, sizeof(resp));
	if (ret) {
		free(mw);
		errno = ret;
		return NULL;
	}
	return mw;
}

static int frdma_dealloc_mw(struct ibv_mw *mw)
{
	int ret;

	ret = ibv_cmd_dealloc_mw(mw);
	if (ret)
		return ret;
	free(mw);
	return 0;
}

static struct ibv_ah *frdma_create_ah(struct ibv_pd *pd,
				      struct ibv_ah_attr *attr)
{
	struct frdma_cmd_create_ah_resp resp = {};
	struct frdma_ah *ah;
	int ret;

	ah = calloc(1, sizeof(*ah));
	if (!ah)
		return NULL;
	ret = ibv_cmd_create_ah(pd, &ah->ibv_ah, attr, &resp.core,
				sizeof(resp));
	if (ret) {
		free(ah);
		errno = ret;
		return NULL;
	}
	ah->ah_num = resp.drv.ah_num;
	return &ah->ibv_ah;
}

static int frdma_destroy_ah(struct ibv_ah *ibah)
{
	int ret;

	ret = ibv_cmd_destroy_ah(ibah);
	if (ret)
		return ret;
	free(to_fah(ibah));
	return 0;
}

static void frdma_free_context(struct ibv_context *ibctx)
{
	struct frdma_context *ctx = to_fctx(ibctx);

	verbs_uninit_context(&ctx->vctx);
	free(ctx);
}

static const struct verbs_context_ops frdma_ctx_ops = {
	.alloc_mw = frdma_alloc_mw,
	.alloc_parent_domain = frdma_alloc_parent_domain,
	.alloc_pd = frdma_alloc_pd,
	.attach_mcast = ibv_cmd_attach_mcast,
	.bind_mw = frdma_bind_mw,
	.close_xrcd = frdma_close_xrcd,
	.create_ah = frdma_create_ah,
	.create_cq = frdma_create_cq,
	.create_cq_ex = frdma_create_cq_ex,
	.create_qp = frdma_create_qp,
	.create_qp_ex = frdma_create_qp_ex,
	.create_srq = frdma_create_srq,
	.create_srq_ex = frdma_create_srq_ex,
	.dealloc_mw = frdma_dealloc_mw,
	.dealloc_pd = frdma_dealloc_pd,
	.dereg_mr = frdma_dereg_mr,
	.destroy_ah = frdma_destroy_ah,
	.destroy_cq = frdma_destroy_cq,
	.destroy_qp = frdma_destroy_qp,
	.destroy_srq = frdma_destroy_srq,
	.detach_mcast = ibv_cmd_detach_mcast,
	.free_context = frdma_free_context,
	.get_srq_num = frdma_get_srq_num,
	.import_mr = frdma_import_mr,
	.import_pd = frdma_import_pd,
	.modify_qp = frdma_modify_qp,
	.modify_srq = frdma_modify_srq,
	.open_qp = frdma_open_qp,
	.open_xrcd = frdma_open_xrcd,
	.poll_cq = frdma_poll_cq,
	.post_recv = frdma_post_recv,
	.post_send = frdma_post_send,
	.post_srq_recv = frdma_post_srq_recv,
	.query_device_ex = frdma_query_device,
	.query_port = frdma_query_port,
	.query_qp = frdma_query_qp,
	.query_rt_values = frdma_query_rt_values,
	.query_srq = frdma_query_srq,
	.reg_mr = frdma_reg_mr,
	.rereg_mr = frdma_rereg_mr,
	.req_notify_cq = frdma_req_notify_cq,
	.resize_cq = frdma_resize_cq,
	.unimport_mr = frdma_unimport_mr,
	.unimport_pd = frdma_unimport_pd,
};

/* Refuse a kernel whose formats differ from the ones compiled in here. */
static bool frdma_caps_ok(const struct frdma_alloc_ucontext_resp *caps)
{
	return caps->abi_version == FRDMA_ABI_VERSION &&
	       caps->sq_wqe_hdr_size == sizeof(struct frdma_sqe) &&
	       caps->rq_wqe_hdr_size == sizeof(struct frdma_rqe) &&
	       caps->cqe_size == sizeof(struct frdma_cqe) &&
	       caps->ring_hdr_size == FRDMA_RING_HDR_SIZE &&
	       caps->max_sge <= FRDMA_MAX_SGE &&
	       caps->max_inline_data <= FRDMA_MAX_INLINE_DATA &&
	       caps->max_wqe_size <= FRDMA_MAX_WQE_SIZE;
}

static struct verbs_context *frdma_alloc_context(struct ibv_device *ibdev,
						 int cmd_fd,
						 void *private_data)
{
	struct frdma_cmd_get_context cmd = {};
	struct frdma_cmd_get_context_resp resp = {};
	struct frdma_context *ctx;

	ctx = frdma_init_and_alloc_context(ibdev, cmd_fd, ctx, vctx);
	if (!ctx)
		return NULL;

	if (ibv_cmd_get_context(&ctx->vctx, (struct ibv_get_context *)&cmd,
				sizeof(cmd), &resp.core, sizeof(resp)))
		goto err;
	if (!frdma_caps_ok(&resp.drv)) {
		fprintf(stderr,
			"frdma: %s: kernel ABI %u does not match the provider's %u\n",
			ibdev->name, resp.drv.abi_version, FRDMA_ABI_VERSION);
		errno = EPROTO;
		goto err;
	}
	ctx->caps = resp.drv;
	verbs_set_ops(&ctx->vctx, &frdma_ctx_ops);
	return &ctx->vctx;

err:
	verbs_uninit_context(&ctx->vctx);
	free(ctx);
	return NULL;
}

/*
 * ibv_import_device(): a context on a command fd another context (of this
 * or another process) opened.  The kernel's formats and limits are those
 * of the uABI header, which GET_CONTEXT reports and the exporter checked;
 * the device's ABI version was matched before this is called.
 */
static struct verbs_context *frdma_import_context(struct ibv_device *ibdev,
						  int cmd_fd)
{
	struct frdma_context *ctx;

	ctx = frdma_init_and_alloc_context(ibdev, cmd_fd, ctx, vctx);
	if (!ctx)
		return NULL;
	if (ibv_cmd_query_context(&ctx->vctx.context, NULL)) {
		verbs_uninit_context(&ctx->vctx);
		free(ctx);
		return NULL;
	}
	ctx->caps = (struct frdma_alloc_ucontext_resp){
		.abi_version = FRDMA_ABI_VERSION,
		.sq_wqe_hdr_size = sizeof(struct frdma_sqe),
		.rq_wqe_hdr_size = sizeof(struct frdma_rqe),
		.cqe_size = sizeof(struct frdma_cqe),
		.ring_hdr_size = FRDMA_RING_HDR_SIZE,
		.max_sge = FRDMA_MAX_SGE,
		.max_inline_data = FRDMA_MAX_INLINE_DATA,
		.max_wqe_size = FRDMA_MAX_WQE_SIZE,
	};
	verbs_set_ops(&ctx->vctx, &frdma_ctx_ops);
	return &ctx->vctx;
}

/*
 * An frdma device is one whose node description is FRDMA_NODE_DESC, whatever
 * its name.  When node_desc cannot be read, fall back to the name match
 * from the table (devices named frdma*).
 */
static bool frdma_match_device(struct verbs_sysfs_dev *sysfs_dev)
{
	char desc[128];

	if (ibv_read_ibdev_sysfs_file(desc, sizeof(desc), sysfs_dev,
				      "node_desc") > 0)
		return strcmp(desc, FRDMA_NODE_DESC) == 0;
	return sysfs_dev->match != NULL;
}

static struct verbs_device *frdma_alloc_device(struct verbs_sysfs_dev *sysfs_dev)
{
	struct frdma_device *dev;

	/*
	 * libibverbs matched the ABI version against ours before calling
	 * here: reading it back checks the declared layout at run time.
	 */
	if (sysfs_dev->abi_ver != FRDMA_ABI_VERSION) {
		fprintf(stderr, "frdma: libibverbs' private layout is not the one this provider was built for\n");
		return NULL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	return &dev->vdev;
}

static void frdma_uninit_device(struct verbs_device *vdev)
{
	free(container_of(vdev, struct frdma_device, vdev));
}

static const struct verbs_match_ent frdma_match_table[] = {
	{
		/* libibverbs matches "rdma_device:N<name>" against this */
		.u.modalias = "rdma_device:*Nfrdma*",
		.kind = VERBS_MATCH_MODALIAS,
	},
	{}
};

static const struct verbs_device_ops frdma_dev_ops = {
	.name = "frdma",
	.match_min_abi_version = FRDMA_ABI_VERSION,
	.match_max_abi_version = FRDMA_ABI_VERSION,
	.match_table = frdma_match_table,
	.match_device = frdma_match_device,
	.alloc_device = frdma_alloc_device,
	.uninit_device = frdma_uninit_device,
	.alloc_context = frdma_alloc_context,
	.import_context = frdma_import_context,
};

static void __attribute__((constructor)) frdma_register_driver(void)
{
	verbs_register_driver_34(&frdma_dev_ops);
}
