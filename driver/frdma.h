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
#include <rdma/ib_verbs.h>
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
#define FRDMA_MAX_PD		65536
#define FRDMA_MAX_QP		16384
#define FRDMA_MAX_CQ		16384
#define FRDMA_MAX_MR		65536
#define FRDMA_MAX_AH		65536
#define FRDMA_MAX_SRQ		0	/* raised when SRQ is implemented */
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
#define FRDMA_MAX_RD_ATOM	16
#define FRDMA_MAX_MSG_SIZE	BIT(31)
#define FRDMA_PKEY_TBL_LEN	1
#define FRDMA_GID_TBL_LEN	32

/**
 * struct frdma_dev - one frdma device
 * @ibdev: the RDMA core's device; first, as ib_alloc_device() requires
 * @list: entry on frdma_dev_list, under frdma_dev_lock
 * @ndev: the netdev this device was created on.  Only compared, never
 *	  dereferenced through this field: the core holds the reference
 *	  (ib_device_set_netdev()) and ib_device_get_netdev() gives one out.
 * @port_active: the port state last announced by an event, under RTNL
 * @attr: the device attributes reported by query_device
 */
struct frdma_dev {
	struct ib_device ibdev;
	struct list_head list;
	struct net_device *ndev;
	bool port_active;
	struct ib_device_attr attr;
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

/* main.c */
bool frdma_port_is_active(struct net_device *ndev);

/* verbs.c */
extern const struct ib_device_ops frdma_dev_ops;
void frdma_init_attr(struct frdma_dev *fdev);

#endif /* _FRDMA_H */
