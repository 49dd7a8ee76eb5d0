// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: UD multicast, on the local fabric and on the wire.
 *
 * A multicast group is named by its MGID: an IPv6 multicast address
 * (ff00::/8) or, for RoCE v2 over IPv4, an IPv4-mapped IPv4 multicast
 * address (::ffff:224.0.0.0/100), which is what the RDMA CM joins.  UD QPs
 * of any frdma device become members with attach_mcast and stop being
 * members with detach_mcast.  A UD SEND whose address handle names a
 * multicast GID (and whose remote QPN is 0xffffff, IBTA's multicast QPN,
 * though frdma does not require it) is delivered to every member on a
 * device of the sender's fabric (frdma_dev_same_net(): the devices that
 * frdma_dev_get_by_gid() would find), each member as if the datagram had
 * been sent to it alone: its Q_Key must match, it must be able to
 * receive, and it gets the GRH and work completion a unicast datagram
 * gives.  The sending QP receives its own datagram only when it is a
 * member itself, as on InfiniBand and with rdma_rxe (no multicast
 * loopback blocking).
 *
 * With the wire on (net.c), the send also leaves as one RoCE v2 packet
 * (wire_ud.c) to the group's IP address, its BTH naming QPN 0xffffff,
 * routed out of the netdev that owns the sending GID's address; IP maps
 * the address to the Ethernet multicast MAC.  A packet for QPN 0xffffff from another host
 * goes to the UD members of the group on the device of the netdev it
 * arrived on (frdma_mcast_members_wire()), each as a unicast datagram
 * from the wire.  A copy that IP loops back to this host, and a packet
 * whose source is a GID of a device here, are dropped: the local members
 * had the datagram from the local fabric.
 *
 * For packets of a group to reach port 4791, two things must hold on the
 * receiving host.  The netdev must take the group's frames: the first
 * member of a device in a group puts the group's multicast MAC (IPv4's
 * 01:00:5e mapping for an IPv4-mapped MGID, IPv6's 33:33 one otherwise)
 * into the netdev's filter, and the last one takes it out.  And IP must
 * be a member of the group on that netdev, or it drops the packet before
 * UDP sees it.  The RDMA CM's join of an IPv4 group does that (an IGMP
 * join on the netdev); a plain attach_mcast does not, nor does the RDMA
 * CM for an IPv6 group (it joins IPv4 only).  Their user joins the group
 * on the netdev as well (a socket that stays open after joining it with
 * IP_ADD_MEMBERSHIP or IPV6_JOIN_GROUP, or an address added with
 * iproute2's autojoin flag), as with rdma_rxe.  frdma keeps no IGMP or
 * MLD state of its own.
 *
 * Groups are module-wide, in one hash table under frdma_mcast_mutex, so
 * that a send finds the members of every device with one lookup.  The
 * limits are per device, as query_device reports them: the groups that
 * have at least one of the device's QPs (max_mcast_grp), the device's QPs
 * in one group (max_mcast_qp_attach), and the device's memberships in all
 * groups (max_total_mcast_qp_attach).
 *
 * A member holds no reference on its QP: the RDMA core detaches a user
 * QP's groups before it destroys the QP (uverbs refuses to destroy an
 * attached QP, and detaches them itself when the file goes), and a kernel
 * consumer must detach first too (ib_destroy_qp() refuses a QP whose
 * usecnt is raised).  destroy_qp still removes whatever is left,
 * before the QP's table reference goes, so a member never outlives its QP.
 * A send takes a reference on each member's QP under the mutex
 * (frdma_mcast_members()) and delivers without it, so detach and destroy
 * run concurrently with deliveries: a delivery in progress when detach
 * returns may still complete, none starts after it.
 *
 * frdma_mcast_mutex is taken by a sender that holds its own sq_mutex.
 * Under it only the netdev's own locks are taken (the port's netdev
 * lookup, and dev_mc_add()/dev_mc_del()'s address lock), none of which
 * waits for an frdma lock or for RTNL.
 */

#include <linux/hashtable.h>
#include <linux/jhash.h>
#include <linux/slab.h>
#include <net/if_inet6.h>
#include <net/ip.h>
#include <rdma/ib_addr.h>

#include "frdma.h"
#include "qp.h"

#define FRDMA_MCAST_HASH_BITS	8

/**
 * struct frdma_mcg - a multicast group
 * @node: entry in frdma_mcast_table
 * @mgid: the group's GID
 * @members: its members (struct frdma_mcm), of any device
 */
struct frdma_mcg {
	struct hlist_node node;
	union ib_gid mgid;
	struct list_head members;
};

/**
 * struct frdma_mcm - a QP's membership of a group
 * @node: entry in the group's @members
 * @qp: the QP
 * @count: successful attaches not yet undone by a detach (the core may
 *	   attach one QP to one MGID twice, with two multicast LIDs, which
 *	   RoCE ignores)
 */
struct frdma_mcm {
	struct list_head node;
	struct frdma_qp *qp;
	unsigned int count;
};

static DEFINE_MUTEX(frdma_mcast_mutex);
static DEFINE_HASHTABLE(frdma_mcast_table, FRDMA_MCAST_HASH_BITS);

static u32 frdma_mcast_hash(const union ib_gid *mgid)
{
	return jhash(mgid->raw, sizeof(mgid->raw), 0);
}

/* The group named @mgid, or NULL; under frdma_mcast_mutex. */
static struct frdma_mcg *frdma_mcg_find(const union ib_gid *mgid)
{
	struct frdma_mcg *grp;

	hash_for_each_possible(frdma_mcast_table, grp, node,
			       frdma_mcast_hash(mgid))
		if (!memcmp(&grp->mgid, mgid, sizeof(*mgid)))
			return grp;
	return NULL;
}

/*
 * @qp's membership of @grp, or NULL, and in @ndev the members @grp has
 * on @qp's device; under frdma_mcast_mutex.
 */
static struct frdma_mcm *frdma_mcm_find(struct frdma_mcg *grp,
					struct frdma_qp *qp, u32 *ndev)
{
	struct frdma_mcm *m, *found = NULL;

	*ndev = 0;
	list_for_each_entry(m, &grp->members, node) {
		if (m->qp == qp)
			found = m;
		if (m->qp->fdev == qp->fdev)
			(*ndev)++;
	}
	return found;
}

/*
 * With the wire on, let @fdev's netdev take the Ethernet frames of group
 * @mgid (@add), or stop taking them: the group's multicast MAC (IPv4's
 * 01:00:5e or IPv6's 33:33 mapping of the address) in the netdev's
 * filter, one reference per device in the group.  IP must have joined
 * the group as well for the packets to reach port 4791 (mcast.c's header).
 */
static int frdma_mcast_filter(struct frdma_dev *fdev,
			      const union ib_gid *mgid, bool add)
{
	const struct in6_addr *a = (const struct in6_addr *)mgid->raw;
	struct net_device *ndev;
	u8 mac[ETH_ALEN];
	int err;

	if (!fdev->wire)
		return 0;
	ndev = frdma_ib_device_get_netdev(&fdev->ibdev, 1, fdev->ndev);
	if (!ndev)
		return add ? -ENODEV : 0;
	if (ipv6_addr_v4mapped(a))
		ip_eth_mc_map(a->s6_addr32[3], mac);
	else
		ipv6_eth_mc_map(a, mac);
	err = add ? dev_mc_add(ndev, mac) : dev_mc_del(ndev, mac);
	dev_put(ndev);
	return err;
}

/* Remove @m from @grp, and @grp when it is empty; under the mutex. */
static void frdma_mcm_remove(struct frdma_mcg *grp, struct frdma_mcm *m,
			     u32 ndev)
{
	struct frdma_dev *fdev = m->qp->fdev;

	list_del(&m->node);
	m->qp->mcast--;
	fdev->mcast_attach--;
	if (ndev == 1) {
		fdev->mcast_groups--;
		frdma_mcast_filter(fdev, &grp->mgid, false);
	}
	kfree(m);
	frdma_count(FRDMA_CNT_MCAST, -1);
	if (list_empty(&grp->members)) {
		hash_del(&grp->node);
		kfree(grp);
	}
}

static bool frdma_mgid_valid(struct ib_qp *ibqp, const union ib_gid *gid)
{
	return ibqp->qp_type == IB_QPT_UD &&
	       rdma_is_multicast_addr((struct in6_addr *)gid->raw);
}

/**
 * frdma_attach_mcast - make a UD QP a member of a multicast group
 * @ibqp: the QP
 * @gid: the group's MGID
 * @lid: its multicast LID, which RoCE ignores
 *
 * Context: process; takes frdma_mcast_mutex.
 * Return: 0; -EINVAL for a QP that is not UD or a GID that is not
 * multicast; -ENOMEM past one of the device's limits or when out of
 * memory.
 */
int frdma_attach_mcast(struct ib_qp *ibqp, union ib_gid *gid, u16 lid)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	struct frdma_dev *fdev = qp->fdev;
	struct frdma_mcg *grp, *new = NULL;
	struct frdma_mcm *m;
	u32 ndev = 0;
	int err = -ENOMEM;

	if (!frdma_mgid_valid(ibqp, gid))
		return -EINVAL;

	mutex_lock(&frdma_mcast_mutex);
	grp = frdma_mcg_find(gid);
	if (grp) {
		m = frdma_mcm_find(grp, qp, &ndev);
		if (m) {
			m->count++;
			err = 0;
			goto out;
		}
	}
	if ((!ndev && fdev->mcast_groups >= fdev->attr.max_mcast_grp) ||
	    ndev >= fdev->attr.max_mcast_qp_attach ||
	    fdev->mcast_attach >= fdev->attr.max_total_mcast_qp_attach)
		goto out;
	/* As for objects, faults are injected for user space's only. */
	if (ibqp->uobject && frdma_should_fail())
		goto out;
	m = kzalloc(sizeof(*m), FRDMA_GFP_USER);
	if (!m)
		goto out;
	if (!ndev) {
		err = frdma_mcast_filter(fdev, gid, true);
		if (err) {
			kfree(m);
			goto out;
		}
	}
	if (!grp) {
		new = kzalloc(sizeof(*new), FRDMA_GFP_USER);
		if (!new) {
			if (!ndev)
				frdma_mcast_filter(fdev, gid, false);
			kfree(m);
			err = -ENOMEM;
			goto out;
		}
		new->mgid = *gid;
		INIT_LIST_HEAD(&new->members);
		hash_add(frdma_mcast_table, &new->node, frdma_mcast_hash(gid));
		grp = new;
	}
	m->qp = qp;
	m->count = 1;
	list_add_tail(&m->node, &grp->members);
	qp->mcast++;
	fdev->mcast_attach++;
	if (!ndev)
		fdev->mcast_groups++;
	frdma_count(FRDMA_CNT_MCAST, 1);
	err = 0;
out:
	mutex_unlock(&frdma_mcast_mutex);
	return err;
}

/**
 * frdma_detach_mcast - undo an attach of a UD QP to a multicast group
 * @ibqp: the QP
 * @gid: the group's MGID
 * @lid: its multicast LID, which RoCE ignores
 *
 * The QP stops being a member when every attach has been undone.
 *
 * Context: process; takes frdma_mcast_mutex.
 * Return: 0, or -EINVAL when the QP is not a member of the group.
 */
int frdma_detach_mcast(struct ib_qp *ibqp, union ib_gid *gid, u16 lid)
{
	struct frdma_qp *qp = to_fqp(ibqp);
	struct frdma_mcg *grp;
	struct frdma_mcm *m = NULL;
	u32 ndev;

	if (!frdma_mgid_valid(ibqp, gid))
		return -EINVAL;

	mutex_lock(&frdma_mcast_mutex);
	grp = frdma_mcg_find(gid);
	if (grp)
		m = frdma_mcm_find(grp, qp, &ndev);
	if (m && !--m->count)
		frdma_mcm_remove(grp, m, ndev);
	mutex_unlock(&frdma_mcast_mutex);
	return m ? 0 : -EINVAL;
}

/**
 * frdma_mcast_qp_destroy - remove a QP that is being destroyed from its groups
 * @qp: the QP, before destroy_qp drops its table reference
 *
 * The core detaches first, so there is nothing to do but in a caller's
 * bug; then the QP leaves every group it is still in.
 *
 * Context: process; takes frdma_mcast_mutex when @qp is a member.
 */
void frdma_mcast_qp_destroy(struct frdma_qp *qp)
{
	struct frdma_mcm *found;
	struct frdma_mcg *grp;
	struct hlist_node *tmp;
	unsigned int bkt;
	u32 ndev;

	mutex_lock(&frdma_mcast_mutex);
	hash_for_each_safe(frdma_mcast_table, bkt, tmp, grp, node) {
		if (!qp->mcast)
			break;
		found = frdma_mcm_find(grp, qp, &ndev);
		if (found)
			frdma_mcm_remove(grp, found, ndev);
	}
	mutex_unlock(&frdma_mcast_mutex);
}

/* Whether @fdev has the wire on and its netdev is init_net's @ifindex. */
static bool frdma_mcast_on_netdev(struct frdma_dev *fdev, int ifindex)
{
	struct net_device *ndev;
	bool on;

	if (!fdev->wire)
		return false;
	ndev = frdma_ib_device_get_netdev(&fdev->ibdev, 1, fdev->ndev);
	if (!ndev)
		return false;
	on = net_eq(dev_net(ndev), &init_net) && ndev->ifindex == ifindex;
	dev_put(ndev);
	return on;
}

/*
 * The members of @mgid on the devices of @from's fabric or, when @from is
 * NULL, on the device of netdev @ifindex, each referenced.
 */
static struct frdma_qp **frdma_mcast_collect(const union ib_gid *mgid,
					     struct frdma_dev *from,
					     int ifindex, u32 *n)
{
	struct frdma_qp **qps = NULL;
	struct frdma_mcg *grp;
	struct frdma_mcm *m;
	bool in;
	u32 max = 0;

	*n = 0;
	mutex_lock(&frdma_mcast_mutex);
	grp = frdma_mcg_find(mgid);
	if (!grp)
		goto out;
	list_for_each_entry(m, &grp->members, node)
		max++;
	qps = kmalloc_array(max, sizeof(*qps), GFP_KERNEL);
	if (!qps)
		goto out;
	list_for_each_entry(m, &grp->members, node) {
		if (from)
			in = frdma_dev_same_net(from, m->qp->fdev);
		else
			in = frdma_mcast_on_netdev(m->qp->fdev, ifindex);
		if (!in || !refcount_inc_not_zero(&m->qp->ref))
			continue;
		qps[(*n)++] = m->qp;
	}
out:
	mutex_unlock(&frdma_mcast_mutex);
	if (qps && !*n) {
		kfree(qps);
		qps = NULL;
	}
	return qps;
}

/**
 * frdma_mcast_members - the QPs a multicast datagram from a QP reaches
 * @from: the sending QP
 * @mgid: the group
 * @n: set to the number of QPs returned
 *
 * Context: process; takes frdma_mcast_mutex.
 * Return: an array of @n QPs, the members of @mgid on a device of
 * @from's fabric, each referenced (frdma_qp_get()), for
 * frdma_mcast_members_put(); NULL (and @n 0) when there are none or
 * memory is short (the datagram is then lost, as UD allows).
 */
struct frdma_qp **frdma_mcast_members(struct frdma_qp *from,
				      const union ib_gid *mgid, u32 *n)
{
	return frdma_mcast_collect(mgid, from->fdev, 0, n);
}

/**
 * frdma_mcast_members_wire - the QPs a multicast datagram from the wire
 * reaches
 * @mgid: the group, the packet's destination GID
 * @ifindex: the index of the init_net netdev the packet arrived on
 * @n: set to the number of QPs returned
 *
 * Context: process; takes frdma_mcast_mutex.
 * Return: as frdma_mcast_members(), the members of @mgid on the device
 * (with the wire on) whose netdev is @ifindex.
 */
struct frdma_qp **frdma_mcast_members_wire(const union ib_gid *mgid,
					   int ifindex, u32 *n)
{
	return frdma_mcast_collect(mgid, NULL, ifindex, n);
}

/**
 * frdma_mcast_members_put - drop what frdma_mcast_members() returned
 * @qps: the array, or NULL
 * @n: its QPs
 */
void frdma_mcast_members_put(struct frdma_qp **qps, u32 n)
{
	while (n)
		frdma_qp_put(qps[--n]);
	kfree(qps);
}
