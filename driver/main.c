// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: module init/exit, rdma link ops and the netdev notifier.
 *
 * See frdma.h for the lifetime of a device.
 */

#include <linux/etherdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rtnetlink.h>
#include <linux/wait.h>
#include <net/addrconf.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_cache.h>
#include <rdma/rdma_netlink.h>

#include "frdma.h"
#include "mr.h"
#include "qp.h"
#include "wire.h"

/*
 * Every frdma_dev from before ib_register_device() to dealloc_driver.
 * Changed under frdma_dev_lock; may be walked under RCU, as the core frees
 * a device with kfree_rcu() after dealloc_driver has unlisted it.
 */
static LIST_HEAD(frdma_dev_list);
static DEFINE_MUTEX(frdma_dev_lock);
/* Devices whose dealloc_driver callback has not returned. */
static atomic_t frdma_ndevs = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(frdma_ndevs_wait);

/**
 * frdma_port_is_active - whether a port on @ndev can pass traffic
 * @ndev: the port's netdev
 *
 * Return: true when @ndev is up and its operational state is up.
 */
bool frdma_port_is_active(struct net_device *ndev)
{
	return netif_running(ndev) && netif_oper_up(ndev);
}

/**
 * frdma_port_mtu - the active MTU of a port on @ndev (query_port)
 * @ndev: the port's netdev
 *
 * Return: the largest IB MTU whose RoCE v2 packet fits @ndev's MTU, at
 * most IB_MTU_4096.
 */
enum ib_mtu frdma_port_mtu(struct net_device *ndev)
{
	return min(iboe_get_mtu(READ_ONCE(ndev->mtu)), IB_MTU_4096);
}

/**
 * frdma_ud_max_msg - the longest UD message of @fdev's port
 * @fdev: the device
 *
 * A UD message is one packet (IBTA), so it is at most the port's active
 * MTU: a longer send completes with IB_WC_LOC_LEN_ERR and sends nothing,
 * on the local fabric and on the wire alike (req.c, gsi.c), and a longer
 * datagram from the wire is dropped (wire_ud.c).  The MTU is read live.
 *
 * Return: that MTU in bytes, or 0 when the device has no netdev now.
 */
u32 frdma_ud_max_msg(struct frdma_dev *fdev)
{
	struct net_device *ndev;
	int mtu;

	ndev = frdma_ib_device_get_netdev(&fdev->ibdev, 1, fdev->ndev);
	if (!ndev)
		return 0;
	mtu = ib_mtu_enum_to_int(frdma_port_mtu(ndev));
	dev_put(ndev);
	return mtu > 0 ? mtu : 0;
}

static void frdma_port_event(struct frdma_dev *fdev, bool active)
{
	struct ib_event ev = {
		.device = &fdev->ibdev,
		.element.port_num = 1,
		.event = active ? IB_EVENT_PORT_ACTIVE : IB_EVENT_PORT_ERR,
	};

	ASSERT_RTNL();
	if (fdev->port_active == active)
		return;
	fdev->port_active = active;
	ib_dispatch_event(&ev);
}

/*
 * Find the registered frdma device on @ndev and take a registration
 * reference on it.  Devices that are registering or unregistering are
 * skipped: ib_device_try_get() fails for them.
 */
static struct frdma_dev *frdma_get_by_netdev(struct net_device *ndev)
{
	struct frdma_dev *fdev, *found = NULL;

	mutex_lock(&frdma_dev_lock);
	list_for_each_entry(fdev, &frdma_dev_list, list) {
		if (fdev->ndev == ndev && ib_device_try_get(&fdev->ibdev)) {
			found = fdev;
			break;
		}
	}
	mutex_unlock(&frdma_dev_lock);
	return found;
}

/* List @new unless its netdev already has an frdma device. */
static int frdma_list_add(struct frdma_dev *new)
{
	struct frdma_dev *fdev;
	int err = 0;

	mutex_lock(&frdma_dev_lock);
	list_for_each_entry(fdev, &frdma_dev_list, list) {
		if (fdev->ndev == new->ndev) {
			err = -EEXIST;
			break;
		}
	}
	if (!err) {
		list_add_tail_rcu(&new->list, &frdma_dev_list);
		atomic_inc(&frdma_ndevs);
	}
	mutex_unlock(&frdma_dev_lock);
	return err;
}

static int frdma_netdev_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *ndev = netdev_notifier_info_to_dev(ptr);
	struct frdma_dev *fdev;

	fdev = frdma_get_by_netdev(ndev);
	if (!fdev)
		return NOTIFY_DONE;

	switch (event) {
	case NETDEV_UNREGISTER:
		/* Unregistration sleeps and must not run under RTNL. */
		ib_unregister_device_queued(&fdev->ibdev);
		break;
	case NETDEV_UP:
	case NETDEV_DOWN:
	case NETDEV_CHANGE:
		frdma_port_event(fdev, frdma_port_is_active(ndev));
		break;
	default:
		/* GID changes are the core's (roce_gid_mgmt); MTU is read live. */
		break;
	}
	ib_device_put(&fdev->ibdev);
	return NOTIFY_DONE;
}

/* The network namespace of @fdev's netdev, or NULL when it has none now. */
static struct net *frdma_dev_netns(struct frdma_dev *fdev)
{
	struct net_device *ndev = frdma_ib_device_get_netdev(&fdev->ibdev, 1,
							       fdev->ndev);
	struct net *net;

	if (!ndev)
		return NULL;
	net = dev_net(ndev);
	dev_put(ndev);
	return net;
}

/**
 * frdma_dev_same_net - whether two devices are on one fabric
 * @a: a device
 * @b: another, or the same
 *
 * Their netdevs are in the same network namespace, and so are the devices
 * themselves (in the RDMA core's exclusive netns mode a device belongs to
 * one namespace; in the shared mode every device is in init_net).  The
 * namespaces are only compared, never dereferenced.
 *
 * Context: any; does not sleep.
 * Return: true when @a's QPs reach @b's over the local fabric.
 */
bool frdma_dev_same_net(struct frdma_dev *a, struct frdma_dev *b)
{
	struct net *na, *nb;

	if (a == b)
		return true;
	if (!net_eq(read_pnet(&a->ibdev.coredev.rdma_net),
		    read_pnet(&b->ibdev.coredev.rdma_net)))
		return false;
	na = frdma_dev_netns(a);
	nb = frdma_dev_netns(b);
	return na && net_eq(na, nb);
}

/*
 * The registered device whose GID table holds @gid and which is in the
 * same network namespaces as @from (frdma_dev_same_net()), or, when @from
 * is NULL, whose netdev is in @net.
 */
static struct frdma_dev *frdma_dev_find_gid(struct frdma_dev *from,
					    struct net *net,
					    const union ib_gid *gid)
{
	const struct ib_gid_attr *attr;
	struct frdma_dev *fdev;
	bool same;

	rcu_read_lock();
	list_for_each_entry_rcu(fdev, &frdma_dev_list, list) {
		if (!ib_device_try_get(&fdev->ibdev))
			continue;
		attr = rdma_find_gid(&fdev->ibdev, gid,
				     IB_GID_TYPE_ROCE_UDP_ENCAP, NULL);
		if (!IS_ERR(attr)) {
			rdma_put_gid_attr(attr);
			if (from)
				same = frdma_dev_same_net(from, fdev);
			else
				same = net_eq(frdma_dev_netns(fdev), net);
			if (same) {
				rcu_read_unlock();
				return fdev;
			}
		}
		ib_device_put(&fdev->ibdev);
	}
	rcu_read_unlock();
	return NULL;
}

/**
 * frdma_dev_get_by_gid - find the frdma device that owns a RoCE v2 GID
 * @from: the device the lookup is for (the sender's)
 * @gid: the GID
 *
 * This is how a QP finds the device of its destination: the fabric is the
 * set of frdma devices in this kernel whose netdevs are in @from's netdev's
 * network namespace (and, in the RDMA core's exclusive netns mode, which
 * are in @from's namespace themselves).  A device elsewhere is not found,
 * as a host in another namespace is not reached without a route.
 *
 * Context: any; does not sleep.
 * Return: the registered device whose GID table holds @gid, with a
 * registration reference the caller drops with ib_device_put(), or NULL.
 */
struct frdma_dev *frdma_dev_get_by_gid(struct frdma_dev *from,
				       const union ib_gid *gid)
{
	return frdma_dev_find_gid(from, NULL, gid);
}

/**
 * frdma_dev_get_by_gid_net - find the device a received packet is for
 * @net: the network namespace of the netdev the packet arrived on
 * @gid: its destination GID
 *
 * Context: any; does not sleep.
 * Return: the registered device whose GID table holds @gid and whose
 * netdev is in @net, with a registration reference the caller drops with
 * ib_device_put(), or NULL.
 */
struct frdma_dev *frdma_dev_get_by_gid_net(struct net *net,
					   const union ib_gid *gid)
{
	return frdma_dev_find_gid(NULL, net, gid);
}

static struct notifier_block frdma_netdev_nb = {
	.notifier_call = frdma_netdev_event,
};

static void frdma_dealloc_driver(struct ib_device *ibdev)
{
	struct frdma_dev *fdev = to_fdev(ibdev);

	frdma_mr_table_destroy(fdev);
	frdma_qp_table_destroy(fdev);
	frdma_wire_dev_del(fdev);
	mutex_lock(&frdma_dev_lock);
	list_del_rcu(&fdev->list);
	mutex_unlock(&frdma_dev_lock);
	if (atomic_dec_and_test(&frdma_ndevs))
		wake_up(&frdma_ndevs_wait);
}

static const struct ib_device_ops frdma_link_dev_ops = {
	.dealloc_driver = frdma_dealloc_driver,
};

static void frdma_set_guid(struct ib_device *ibdev, struct net_device *ndev)
{
	u8 mac[ETH_ALEN];

	/* A netdev without a unicast MAC (lo) still needs a unique GUID. */
	if (ndev->addr_len == ETH_ALEN && is_valid_ether_addr(ndev->dev_addr))
		ether_addr_copy(mac, ndev->dev_addr);
	else
		eth_random_addr(mac);
	addrconf_addr_eui48((u8 *)&ibdev->node_guid, mac);
}

/*
 * The netdev's parent (a virtio or PCI device) becomes the ib_device's
 * too, so that sysfs leads from the ib_device to its interface
 * (/sys/class/infiniband/NAME/device/net/), where rdma-core's tests and
 * other tools look for it.  A netdev without a parent (veth, lo, bridges)
 * leaves the ib_device without one.  Neither does a netdev that already
 * has an RDMA device of another driver: libibverbs matches providers
 * against the parent's modalias, and that device's own provider would
 * then claim the frdma device as well.
 */
static void frdma_set_parent(struct ib_device *ibdev, struct net_device *ndev)
{
	struct ib_device *other;

	other = ib_device_get_by_netdev(ndev, RDMA_DRIVER_UNKNOWN);
	if (other) {
		ib_device_put(other);
		return;
	}
	ibdev->dev.parent = ndev->dev.parent;
}

static int frdma_newlink(const char *ibdev_name, struct net_device *ndev)
{
	struct frdma_dev *fdev;
	struct ib_device *ibdev;
	int err;

	/* The core would say ENFILE; a name in use is EEXIST to a user. */
	ibdev = ib_device_get_by_name(ibdev_name, RDMA_DRIVER_UNKNOWN);
	if (ibdev) {
		ib_device_put(ibdev);
		pr_err("frdma: an RDMA device named %s exists\n", ibdev_name);
		return -EEXIST;
	}

	fdev = ib_alloc_device(frdma_dev, ibdev);
	if (!fdev)
		return -ENOMEM;
	ibdev = &fdev->ibdev;
	frdma_mr_table_init(fdev);
	frdma_qp_table_init(fdev);
	fdev->ndev = ndev;
	err = frdma_list_add(fdev);
	if (err) {
		pr_err("frdma: %s already has an frdma device\n", ndev->name);
		ib_dealloc_device(ibdev);
		return err;
	}
	/* From here on, ib_dealloc_device() unlists the device. */
	ib_set_device_ops(ibdev, &frdma_link_dev_ops);
	err = frdma_wire_dev_add(fdev);
	if (err) {
		ib_dealloc_device(ibdev);
		return err;
	}

	ibdev->node_type = RDMA_NODE_IB_CA;
	ibdev->phys_port_cnt = 1;
	ibdev->num_comp_vectors = num_possible_cpus();
	ibdev->local_dma_lkey = 0;
	strscpy(ibdev->node_desc, FRDMA_NODE_DESC, sizeof(ibdev->node_desc));
	frdma_set_guid(ibdev, ndev);
	frdma_set_parent(ibdev, ndev);
	/*
	 * The send doorbell is a post_send with no work requests; completion
	 * notification requests go through the command channel.
	 */
	ibdev->uverbs_cmd_mask |= BIT_ULL(IB_USER_VERBS_CMD_POST_SEND) |
				  BIT_ULL(IB_USER_VERBS_CMD_REQ_NOTIFY_CQ);
	frdma_init_attr(fdev);
	ib_set_device_ops(ibdev, &frdma_dev_ops);
	ib_set_device_ops(ibdev, &frdma_stats_ops);

	err = ib_device_set_netdev(ibdev, ndev, 1);
	if (err) {
		ib_dealloc_device(ibdev);
		return err;
	}

	rtnl_lock();
	fdev->port_active = frdma_port_is_active(ndev);
	rtnl_unlock();

	/* The device may be unregistered and freed once registered. */
	get_device(&ibdev->dev);
	ib_mark_name_assigned_by_user(ibdev);
	err = ib_register_device(ibdev, ibdev_name, NULL);
	if (err) {
		pr_err("frdma: registering %s on %s failed: %d\n", ibdev_name,
		       ndev->name, err);
		ib_dealloc_device(ibdev);
		put_device(&ibdev->dev);
		return err == -ENFILE ? -EEXIST : err;
	}

	/*
	 * The netdev may have started unregistering before the device was
	 * registered, when the notifier could not take a reference on it.
	 * Under RTNL the netdev's state and the notifier's view agree.
	 */
	rtnl_lock();
	if (ndev->reg_state != NETREG_REGISTERED &&
	    ib_device_try_get(ibdev)) {
		ib_unregister_device_queued(ibdev);
		ib_device_put(ibdev);
		err = -ENODEV;
	}
	rtnl_unlock();
	put_device(&ibdev->dev);
	return err;
}

static struct rdma_link_ops frdma_link_ops = {
	.type = "frdma",
	.newlink = frdma_newlink,
};

/*
 * Unregister every frdma device and wait until the core has finished with
 * each, so that no callback into this module runs after it is unloaded.
 * Devices already unregistering (their registration reference cannot be
 * taken) are only waited for.
 */
static void frdma_remove_all(void)
{
	struct frdma_dev *fdev;

	for (;;) {
		struct frdma_dev *victim = NULL;

		mutex_lock(&frdma_dev_lock);
		list_for_each_entry(fdev, &frdma_dev_list, list) {
			if (ib_device_try_get(&fdev->ibdev)) {
				victim = fdev;
				break;
			}
		}
		mutex_unlock(&frdma_dev_lock);
		if (!victim)
			break;
		ib_unregister_device_and_put(&victim->ibdev);
	}

	wait_event(frdma_ndevs_wait, !atomic_read(&frdma_ndevs));
}

static int __init frdma_init(void)
{
	int err;

	err = frdma_mr_cache_init();
	if (err)
		return err;
	err = frdma_sq_poll_init();
	if (err) {
		frdma_mr_cache_destroy();
		return err;
	}
	frdma_debugfs_init();
	err = register_netdevice_notifier(&frdma_netdev_nb);
	if (err) {
		frdma_debugfs_exit();
		frdma_sq_poll_exit();
		frdma_mr_cache_destroy();
		return err;
	}
	rdma_link_register(&frdma_link_ops);
	return 0;
}

static void __exit frdma_exit(void)
{
	/* No newlink runs after this returns; then no notifier call. */
	rdma_link_unregister(&frdma_link_ops);
	unregister_netdevice_notifier(&frdma_netdev_nb);
	frdma_remove_all();
	frdma_debugfs_exit();
	frdma_sq_poll_exit();
	frdma_mr_cache_destroy();
}

module_init(frdma_init);
module_exit(frdma_exit);

MODULE_DESCRIPTION("frdma: soft-RDMA device with folio-range memory registration");
MODULE_LICENSE("GPL");
MODULE_ALIAS_RDMA_LINK("frdma");
