/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma: a soft-RDMA device over a net_device.
 *
 * One frdma_dev exists per "rdma link add NAME type frdma netdev DEV".  It
 * has one port, whose link layer is Ethernet and whose GID table holds the
 * RoCE v2 GIDs the RDMA core derives from the netdev's addresses.  The port
 * is active while the netdev is running with its carrier up.
 *
 * Lifetime
 *
 *   A device is created by frdma_newlink() and is on frdma_dev_list from
 *   just before ib_register_device() until its dealloc_driver callback
 *   (frdma_dealloc_driver()), which the RDMA core calls exactly once, after
 *   unregistration or when registration failed.  It is unregistered by
 *   "rdma link delete" (the core calls ib_unregister_device_and_put()), by
 *   the netdev going away (NETDEV_UNREGISTER queues the unregistration, as
 *   the notifier runs under RTNL), or by module unload, which unregisters
 *   every device left and then waits until every dealloc_driver callback
 *   has returned before the module text goes away.
 */
#ifndef _FRDMA_H
#define _FRDMA_H

#include <linux/list.h>
#include <linux/netdevice.h>
#include <linux/xarray.h>
#include <rdma/ib_verbs.h>
#include <frdma/compat.h>
#include <rdma/frdma-abi.h>

/*
 * Device limits, reported by query_device.  They describe what the driver
 * implements; the ring and WQE limits shared with the provider live in
 * <rdma/frdma-abi.h>.
 */
#define FRDMA_VENDOR_ID		0xffffff	/* no IEEE OUI: a software device */
#define FRDMA_VENDOR_PART_ID	0x0f1d
#define FRDMA_HW_VER		1
#define FRDMA_FW_VER		(((u64)1 << 32) | ((u64)0 << 16) | 0)
/*
 * Object limits: at least rdma_rxe's.  No table is sized by them (each
 * is an xarray that grows with use); memory cgroups bound what one user
 * takes (Documentation/driver.rst, "Object limits and memory accounting").
 */
#define FRDMA_MAX_PD		BIT(20)
#define FRDMA_MAX_QP		BIT(20)
#define FRDMA_MAX_CQ		BIT(20)
#define FRDMA_MAX_MR		(BIT(19) - 1)
#define FRDMA_MAX_MW		(BIT(19) - 1)
#define FRDMA_MAX_AH		65536
#define FRDMA_MAX_SRQ		16384
/*
 * Multicast (mcast.c), per device: the groups with one of its QPs, its QPs
 * in one group, and its memberships in all.  rdma_rxe's group and
 * per-group limits; a smaller total, so that memberships stay a few MiB.
 */
#define FRDMA_MAX_MCAST_GRP		8192
#define FRDMA_MAX_MCAST_QP_ATTACH	56
#define FRDMA_MAX_TOT_MCAST_QP_ATTACH	65536
/*
 * An MR is pinned by umem/, whose page index is 32 bits wide: 16 TiB with
 * 4 KiB pages.  Report a quarter of that, which no test machine reaches.
 */
#define FRDMA_MAX_MR_SIZE	BIT_ULL(42)
/*
 * The data path copies through kernel mappings of pinned pages, so it has
 * no page-size restriction of its own: any power of two from PAGE_SIZE up.
 */
#define FRDMA_PAGE_SIZE_CAP	(~((u64)PAGE_SIZE - 1))
/*
 * READ and atomic requests a QP may have outstanding, as requester
 * (max_rd_atomic) and responder (max_dest_rd_atomic): rdma_rxe's limit,
 * so that a peer that asks for all it advertises (perftest does) connects.
 */
#define FRDMA_MAX_RD_ATOM	128
#define FRDMA_MAX_MSG_SIZE	BIT(31)
#define FRDMA_PKEY_TBL_LEN	1
#define FRDMA_GID_TBL_LEN	32

/*
 * The objects whose number per device is limited (query_device reports
 * the limits).  Objects of kernel consumers (the MAD layer's PD, CQs, QPs
 * and AHs) are not counted.
 */
enum frdma_res {
	FRDMA_RES_PD,
	FRDMA_RES_CQ,
	FRDMA_RES_QP,
	FRDMA_RES_MR,
	FRDMA_RES_MW,
	FRDMA_RES_AH,
	FRDMA_NR_RES
};

/**
 * struct frdma_dev - one frdma device
 * @ibdev: the RDMA core's device; first, as ib_alloc_device() requires
 * @list: entry on frdma_dev_list, under frdma_dev_lock
 * @ndev: the netdev this device was created on.  Only compared, never
 *	  dereferenced through this field: the core holds the reference
 *	  (ib_device_set_netdev()) and frdma_ib_device_get_netdev() gives one
 *	  out.
 * @port_active: the port state last announced by an event, under RTNL
 * @attr: the device attributes reported by query_device
 * @mr_table: the MRs by key index (mr.c)
 * @mr_next: where the next key index search starts (mr.c)
 * @qp_table: the QPs by QP number (qp.c)
 * @qp_next: where the next cyclic QPN search starts (qp.c)
 * @mw_next: where the next memory window key index search starts (mw.c)
 * @ah_table: the AHs by ah_num (ah.c)
 * @ah_next: where the next cyclic ah_num search starts (ah.c)
 * @srq_table: the XRC SRQs by SRQ number (srq.c)
 * @srq_next: where the next cyclic SRQ number search starts (srq.c)
 * @nres: user objects of each kind on this device, each at most its
 *	  limit in @attr (frdma_res_charge())
 * @wire: the device holds a reference on the wire's UDP socket (net.c)
 * @mcast_groups: multicast groups with at least one of this device's QPs
 *		  (mcast.c, under its mutex)
 * @mcast_attach: memberships of this device's QPs in all groups (likewise)
 */
struct frdma_dev {
	struct ib_device ibdev;
	struct list_head list;
	struct net_device *ndev;
	bool port_active;
	struct ib_device_attr attr;
	struct xarray mr_table;
	u32 mr_next;
	struct xarray qp_table;
	u32 qp_next;
	u32 mw_next;
	struct xarray ah_table;
	u32 ah_next;
	struct xarray srq_table;
	u32 srq_next;
	atomic_t nres[FRDMA_NR_RES];
	bool wire;
	u32 mcast_groups;
	u32 mcast_attach;
};

/**
 * struct frdma_ucontext - a user context
 * @ibuc: the core's context
 */
struct frdma_ucontext {
	struct ib_ucontext ibuc;
};

/**
 * struct frdma_pd - a protection domain
 * @ibpd: the core's PD
 */
struct frdma_pd {
	struct ib_pd ibpd;
};

/**
 * struct frdma_queue - the kernel's side of a ring shared with user space
 * @hdr: the start of the ring buffer (kernel mapping)
 * @num_entries: entries in the ring, a power of two; the kernel's copy,
 *		 never read from shared memory
 * @entry_shift: log2 of the entry stride
 * @kidx: the index the kernel owns (a CQ's producer index, a work queue's
 *	  consumer index), free-running
 * @mentry: the mmap entry that owns the buffer of a user ring, else NULL
 */
struct frdma_queue {
	struct frdma_ring_hdr *hdr;
	u32 num_entries;
	u32 entry_shift;
	u32 kidx;
	struct rdma_user_mmap_entry *mentry;
};

/**
 * struct frdma_cq - a completion queue
 * @ibcq: the core's CQ
 * @lock: serialises producers and the notification state
 * @q: the ring of struct frdma_cqe
 * @notify: IB_CQ_SOLICITED or IB_CQ_NEXT_COMP while armed, else 0
 * @overrun: a completion was lost because the ring was full: a user CQ
 *	     is in error until resize_cq (under @lock)
 * @kernel: a kernel consumer's CQ: @q is a kernel-only ring of struct
 *	    ib_wc, read by poll_cq, instead of a ring of struct frdma_cqe
 *	    shared with user space
 */
struct frdma_cq {
	struct ib_cq ibcq;
	spinlock_t lock;	/* see above */
	struct frdma_queue q;
	u8 notify;
	bool overrun;
	bool kernel;
};

static inline struct frdma_dev *to_fdev(struct ib_device *ibdev)
{
	return container_of(ibdev, struct frdma_dev, ibdev);
}

static inline struct frdma_ucontext *to_fuc(struct ib_ucontext *ibuc)
{
	return container_of(ibuc, struct frdma_ucontext, ibuc);
}

static inline struct frdma_pd *to_fpd(struct ib_pd *ibpd)
{
	return container_of(ibpd, struct frdma_pd, ibpd);
}

static inline struct frdma_cq *to_fcq(struct ib_cq *ibcq)
{
	return container_of(ibcq, struct frdma_cq, ibcq);
}

/* The entry at free-running index @idx of @q. */
static inline void *frdma_queue_entry(struct frdma_queue *q, u32 idx)
{
	return (u8 *)q->hdr + FRDMA_RING_HDR_SIZE +
	       ((size_t)(idx & (q->num_entries - 1)) << q->entry_shift);
}

/* main.c */
bool frdma_port_is_active(struct net_device *ndev);
enum ib_mtu frdma_port_mtu(struct net_device *ndev);
u32 frdma_ud_max_msg(struct frdma_dev *fdev);
struct frdma_dev *frdma_dev_get_by_gid(struct frdma_dev *from,
				       const union ib_gid *gid);
struct frdma_dev *frdma_dev_get_by_gid_net(struct net *net,
					   const union ib_gid *gid);
bool frdma_dev_same_net(struct frdma_dev *a, struct frdma_dev *b);

/* queue.c */
int frdma_queue_init(struct frdma_queue *q, struct ib_ucontext *uctx,
		     u32 num_entries, u32 entry_shift,
		     struct frdma_ring_desc *desc);
void frdma_queue_destroy(struct frdma_queue *q);
int frdma_queue_user_avail(struct frdma_queue *q);
int frdma_queue_user_space(struct frdma_queue *q);
void frdma_queue_publish(struct frdma_queue *q, bool producer);
int frdma_mmap(struct ib_ucontext *uctx, struct vm_area_struct *vma);
void frdma_mmap_free(struct rdma_user_mmap_entry *e);

/* cq.c */
int frdma_create_cq(struct ib_cq *ibcq, const struct ib_cq_init_attr *attr,
		    FRDMA_CREATE_CQ_ARG *attrs);
int frdma_destroy_cq(struct ib_cq *ibcq, struct ib_udata *udata);
int frdma_resize_cq(struct ib_cq *ibcq, int cqe, struct ib_udata *udata);
int frdma_req_notify_cq(struct ib_cq *ibcq, enum ib_cq_notify_flags flags);
int frdma_cq_post(struct frdma_cq *cq, const struct frdma_cqe *cqe,
		  bool solicited);
int frdma_cq_post_wc(struct frdma_cq *cq, const struct ib_wc *wc,
		     bool solicited);
int frdma_poll_cq(struct ib_cq *ibcq, int num_entries, struct ib_wc *wc);

/*
 * debugfs.c: module-wide object counters (read by the stress oracle in
 * /sys/kernel/debug/frdma/) and the fault-injection switch that makes
 * frdma_should_fail() true at chosen calls, so failure paths can be
 * exercised on the stock kernel.
 */
enum frdma_counter {
	FRDMA_CNT_PD,
	FRDMA_CNT_CQ,
	FRDMA_CNT_QP,
	FRDMA_CNT_SRQ,
	FRDMA_CNT_AH,
	FRDMA_CNT_MR,
	FRDMA_CNT_RUNS,
	FRDMA_CNT_PINNED_PAGES,
	FRDMA_CNT_MW,
	FRDMA_CNT_MCAST,
	FRDMA_NR_COUNTERS
};

void frdma_count(enum frdma_counter c, long delta);
bool frdma_should_fail(void);
void frdma_debugfs_init(void);
void frdma_debugfs_exit(void);

/* verbs.c */
extern const struct ib_device_ops frdma_dev_ops;
void frdma_init_attr(struct frdma_dev *fdev);
u32 frdma_res_limit(struct frdma_dev *fdev, enum frdma_res res);
int frdma_res_charge(struct frdma_dev *fdev, enum frdma_res res);
void frdma_res_uncharge(struct frdma_dev *fdev, enum frdma_res res);

/*
 * The allocation flags of memory that a user object owns (its ring, its
 * kernel-side structure, its table slot): charged to the creating task's
 * memory cgroup.
 */
#define FRDMA_GFP_USER		GFP_KERNEL_ACCOUNT

#endif /* _FRDMA_H */
