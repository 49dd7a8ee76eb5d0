// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: memory windows.
 *
 * A memory window (MW) gives remote peers a second rkey onto a part of an
 * MR, with its own rights, that the owner can move and revoke through its
 * send queue without re-registering anything.  frdma implements IBTA's
 * type 1 and type 2B windows:
 *
 *   type 1   allocated valid and unbound; bound (and rebound, and unbound
 *            with a zero length) by ibv_bind_mw(), which the provider
 *            turns into a BIND_MW send queue entry with the next key byte;
 *            not invalidatable by LOCAL_INV or SEND_WITH_INV.
 *   type 2B  allocated free; bound by a BIND_MW entry (ibv_wr_bind_mw())
 *            only when free, which associates it with the binding QP:
 *            remote accesses through it must arrive at that QP; freed
 *            again by LOCAL_INV on any QP of its PD or by a
 *            SEND_WITH_INV arriving at the associated QP.
 *
 * Vocabulary and invariants (see also driver/mr.h):
 *
 *   key      the window's rkey: (index << 8) | key byte, index a slot in
 *            the device's key table shared with the MRs, from the
 *            windows' own range of indices (FRDMA_MW_INDEX_MIN on), the
 *            entry tagged FRDMA_KEY_MW.  The index never changes; each bind sets the
 *            key byte the bind names, so a key handed out before a
 *            rebind or invalidation no longer matches.
 *   bound    @mr is set: the window covers [@addr, @addr + @length) of
 *            @mr with @access, and holds one reference on @mr counted in
 *            mr->num_mw.  A bound window always has a non-zero length.
 *   qpn      type 2: the QP number the window is associated with while
 *            bound (a number, not a reference, so destroying the QP does
 *            not wait for windows; QPNs are allocated cyclically, so a
 *            new QP with the number is a different one for 2^24 QPs).
 *
 *   All of @mr, @addr, @length, @access, @qpn and the key change under
 *   @lock, together.  A lookup takes @lock inside an RCU read section and
 *   takes its MR reference before unlocking, so an unbind or dealloc
 *   either precedes it (the lookup fails) or follows it (the in-flight
 *   access keeps the pages pinned until it drops the reference).
 *
 * Errors are the IBTA ones: a bind that breaks a rule completes with
 * IB_WC_MW_BIND_ERR, a bad LOCAL_INV with IB_WC_LOC_QP_OP_ERR (both move
 * the QP to the error state, req.c), an access through a window that is
 * unbound, invalidated, deallocated, of another PD or QP, without the
 * right or out of its bounds with IB_WC_REM_ACCESS_ERR at the requester.
 */

#include <linux/slab.h>
#include <linux/random.h>
#include <rdma/ib_verbs.h>

#include "mr.h"

/* The rights a window can grant; LOCAL_WRITE is meaningless, tolerated. */
#define FRDMA_MW_ACCESS	(IB_ACCESS_REMOTE_READ | IB_ACCESS_REMOTE_WRITE | \
			 IB_ACCESS_REMOTE_ATOMIC | IB_ACCESS_LOCAL_WRITE)

/**
 * struct frdma_mw - a memory window
 * @lock: protects everything below it
 * @rkey: the current key
 * @mr: the MR it is bound to, referenced, or NULL when unbound
 * @addr: the window's first byte, an address in @mr
 * @length: bytes
 * @access: IB_ACCESS_REMOTE_* rights
 * @qpn: type 2: the associated QP's number while bound
 * @dead: deallocated: nothing binds it any more
 * @type: IB_MW_TYPE_1 or IB_MW_TYPE_2
 * @pd: its protection domain
 * @rcu: frees it after the lookups that may still see it
 */
struct frdma_mw {
	spinlock_t lock;	/* the binding and the key, see above */
	u32 rkey;
	struct frdma_mr *mr;
	u64 addr;
	u64 length;
	int access;
	u32 qpn;
	bool dead;
	enum ib_mw_type type;
	struct ib_pd *pd;
	struct rcu_head rcu;
};

static struct frdma_mw *to_mw(struct ib_mw *ibmw)
{
	return container_of(ibmw, struct frdma_ibmw, ibmw)->mw;
}

/**
 * frdma_alloc_mw() - allocate a memory window (the alloc_mw verb)
 * @ibmw: the core's object, with type and pd set
 * @udata: the user's command; frdma takes no driver data
 *
 * Context: process context; sleeps.
 * Return: 0, -EINVAL for an unknown type or driver data, -ENOMEM.
 */
int frdma_alloc_mw(struct ib_mw *ibmw, struct ib_udata *udata)
{
	struct frdma_dev *fdev = to_fdev(ibmw->device);
	struct frdma_ibmw *fmw = container_of(ibmw, struct frdma_ibmw, ibmw);
	struct frdma_mw *mw;
	u32 index;
	int err;

	if (ibmw->type != IB_MW_TYPE_1 && ibmw->type != IB_MW_TYPE_2)
		return -EINVAL;
	if (udata && udata->inlen &&
	    !ib_is_udata_cleared(udata, 0, udata->inlen))
		return -EINVAL;
	if (frdma_should_fail())
		return -ENOMEM;
	err = frdma_res_charge(fdev, FRDMA_RES_MW);
	if (err)
		return err;
	mw = kzalloc(sizeof(*mw), FRDMA_GFP_USER);
	if (!mw) {
		err = -ENOMEM;
		goto err_count;
	}
	spin_lock_init(&mw->lock);
	mw->type = ibmw->type;
	mw->pd = ibmw->pd;

	/* The windows' own part of the key table: MRs never run out. */
	err = xa_alloc_cyclic(&fdev->mr_table, &index, NULL,
			      XA_LIMIT(FRDMA_MW_INDEX_MIN, FRDMA_MW_INDEX_MAX),
			      &fdev->mw_next, FRDMA_GFP_USER);
	if (err < 0) {
		kfree(mw);
		err = err == -EBUSY ? -ENOMEM : err;
		goto err_count;
	}
	mw->rkey = (index << FRDMA_KEY_SHIFT) | get_random_u8();
	ibmw->rkey = mw->rkey;
	fmw->mw = mw;
	/* Replaces the reservation: allocates nothing, cannot fail. */
	xa_store(&fdev->mr_table, index, xa_tag_pointer(mw, FRDMA_KEY_MW),
		 GFP_KERNEL);
	frdma_count(FRDMA_CNT_MW, 1);
	return 0;

err_count:
	frdma_res_uncharge(fdev, FRDMA_RES_MW);
	return err;
}

/* Drop the binding of @mw, whose lock the caller holds; returns the MR. */
static struct frdma_mr *frdma_mw_unbind(struct frdma_mw *mw)
{
	struct frdma_mr *mr = mw->mr;

	lockdep_assert_held(&mw->lock);
	mw->mr = NULL;
	mw->addr = 0;
	mw->length = 0;
	mw->access = 0;
	mw->qpn = 0;
	return mr;
}

/* Release what frdma_mw_unbind() returned, outside the window's lock. */
static void frdma_mw_release_mr(struct frdma_mr *mr)
{
	if (!mr)
		return;
	atomic_dec(&mr->num_mw);
	frdma_mr_put(mr);
}

/**
 * frdma_dealloc_mw() - free a memory window (the dealloc_mw verb)
 * @ibmw: the window
 *
 * The key dies first, then the binding (a bound window is unbound: its MR
 * may be deregistered afterwards); the structure goes after a grace
 * period.
 *
 * Context: process context.
 * Return: 0.
 */
int frdma_dealloc_mw(struct ib_mw *ibmw)
{
	struct frdma_dev *fdev = to_fdev(ibmw->device);
	struct frdma_mw *mw = to_mw(ibmw);
	struct frdma_mr *mr;

	/* ibmw->rkey is the key given at allocation: its index never changes. */
	xa_erase(&fdev->mr_table, ibmw->rkey >> FRDMA_KEY_SHIFT);
	spin_lock(&mw->lock);
	mw->dead = true;
	mr = frdma_mw_unbind(mw);
	spin_unlock(&mw->lock);
	frdma_mw_release_mr(mr);
	kfree_rcu(mw, rcu);
	frdma_res_uncharge(fdev, FRDMA_RES_MW);
	frdma_count(FRDMA_CNT_MW, -1);
	return 0;
}

/**
 * frdma_mw_lookup() - the window with index @rkey >> 8, not referenced
 * @fdev: the device
 * @rkey: a key
 *
 * Context: under rcu_read_lock(), which keeps the result valid.
 * Return: the window, whose key may differ from @rkey, or NULL.
 */
struct frdma_mw *frdma_mw_lookup(struct frdma_dev *fdev, u32 rkey)
{
	void *entry = xa_load(&fdev->mr_table, rkey >> FRDMA_KEY_SHIFT);

	return xa_pointer_tag(entry) == FRDMA_KEY_MW ?
	       xa_untag_pointer(entry) : NULL;
}

/**
 * frdma_mw_resolve() - check a remote access through a window
 * @mw: the window, from the key table under RCU
 * @rkey: the key the access named
 * @qp: the responder QP it arrives at
 * @pd: the PD the window must be in (frdma_rkey_get())
 * @addr: first byte
 * @len: bytes, at least 1
 * @access: the IB_ACCESS_REMOTE_* right needed
 * @mrp: on success, the window's MR, referenced
 *
 * Context: under rcu_read_lock(); does not sleep.
 * Return: 0, -EACCES (key, state, PD, QP or rights) or -ERANGE.
 */
int frdma_mw_resolve(struct frdma_mw *mw, u32 rkey, struct ib_qp *qp,
		     struct ib_pd *pd, u64 addr, u64 len, int access,
		     struct frdma_mr **mrp)
{
	int err = 0;

	spin_lock(&mw->lock);
	if (mw->rkey != rkey || !mw->mr || mw->pd != pd ||
	    (mw->type == IB_MW_TYPE_2 && mw->qpn != qp->qp_num) ||
	    (access & ~mw->access))
		err = -EACCES;
	else if (addr < mw->addr || addr - mw->addr > mw->length ||
		 len > mw->length - (addr - mw->addr))
		err = -ERANGE;
	if (!err) {
		/* The window's own reference keeps the count above zero. */
		refcount_inc(&mw->mr->ref);
		*mrp = mw->mr;
	}
	spin_unlock(&mw->lock);
	return err;
}

/*
 * Check a bind of @mw (locked) to [@addr, @addr + @length) of @mr with
 * @access, posted on @qp.  With @mr NULL only the window's own rules are
 * checked (all there is to a zero-length type 1 unbind).
 */
static int frdma_mw_bind_ok(struct frdma_mw *mw, struct ib_qp *qp,
			    struct frdma_mr *mr, u64 addr, u64 length,
			    int access)
{
	u64 off;

	if (mw->dead || mw->pd != qp->pd)	/* C10-72 */
		return -EINVAL;
	if (access & ~FRDMA_MW_ACCESS)		/* zero-based, unknown */
		return -EINVAL;
	if (mw->type == IB_MW_TYPE_2 && (mw->mr || !length))
		return -EINVAL;			/* o10-37.2.30, o10-37.2.40 */
	if (!mr)
		return 0;
	if (READ_ONCE(mr->pd) != mw->pd ||
	    !(READ_ONCE(mr->access) & IB_ACCESS_MW_BIND))	/* C10-73 */
		return -EINVAL;
	if ((access & (IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC)) &&
	    !(READ_ONCE(mr->access) & IB_ACCESS_LOCAL_WRITE))	/* C10-74 */
		return -EINVAL;
	if (addr < mr->iova)				/* C10-75 */
		return -EINVAL;
	off = addr - mr->iova;
	if (off > mr->length || length > mr->length - off)
		return -EINVAL;
	return 0;
}

/**
 * frdma_mw_bind() - execute a BIND_MW send queue entry
 * @qp: the QP it was posted on
 * @mw_rkey: names the window by its index; the key byte is not checked
 *	     (the owner binds its own window, which must be of the QP's PD;
 *	     the key byte guards remote access, not the owner's)
 * @new_rkey: its key after the bind (only the key byte is used)
 * @mr_lkey: the MR to bind to (unused for a zero @length)
 * @addr: the window's first byte in the MR
 * @length: its length; 0 unbinds a type 1 window
 * @access: the rights it grants
 *
 * Context: process context, under the QP's sq_mutex; does not sleep.
 * Return: 0, or -EINVAL for any broken rule (the caller completes the
 * entry with IB_WC_MW_BIND_ERR).
 */
int frdma_mw_bind(struct ib_qp *qp, u32 mw_rkey, u32 new_rkey, u32 mr_lkey,
		  u64 addr, u64 length, int access)
{
	struct frdma_dev *fdev = to_fdev(qp->device);
	struct frdma_mr *mr = NULL, *old = NULL;
	struct frdma_mw *mw;
	int err;

	rcu_read_lock();
	mw = frdma_mw_lookup(fdev, mw_rkey);
	if (!mw) {
		rcu_read_unlock();
		return -EINVAL;
	}
	spin_lock(&mw->lock);
	/*
	 * The window's own rules first, then the MR, looked up only in the
	 * window's PD: a bind that fails never touches an MR it could not
	 * bind to, so other processes' MRs are never held up by it.
	 */
	err = frdma_mw_bind_ok(mw, qp, NULL, addr, length, access);
	if (!err && length) {
		mr = frdma_mr_get_pd(fdev, mr_lkey, mw->pd);
		err = mr ? frdma_mw_bind_ok(mw, qp, mr, addr, length, access) :
			   -EINVAL;
		/* Fails while the MR is being deregistered or changed. */
		if (!err && !atomic_inc_unless_negative(&mr->num_mw))
			err = -EINVAL;
		if (err && mr) {
			frdma_mr_put(mr);
			mr = NULL;
		}
	}
	if (!err) {
		old = frdma_mw_unbind(mw);
		mw->rkey = (mw->rkey & ~0xffU) | (new_rkey & 0xff);
		if (mr) {
			/* The MR's get and count become the window's. */
			mw->mr = mr;
			mw->addr = addr;
			mw->length = length;
			mw->access = access & ~IB_ACCESS_LOCAL_WRITE;
			if (mw->type == IB_MW_TYPE_2)
				mw->qpn = qp->qp_num;
		}
	}
	spin_unlock(&mw->lock);
	rcu_read_unlock();
	frdma_mw_release_mr(old);
	return err;
}

/**
 * frdma_mw_invalidate() - invalidate a type 2 window (LOCAL_INV, or a
 *	SEND_WITH_INV arriving at @qp)
 * @qp: for LOCAL_INV the QP it was posted on, for SEND_WITH_INV the
 *	responder QP
 * @rkey: the window's key
 * @remote: a SEND_WITH_INV: @qp must be the window's associated QP
 *
 * The window must be a bound type 2 window of @qp's PD with this key.
 * Afterwards the window is free and the key dead.
 *
 * Context: process context; does not sleep.
 * Return: 0, or -EINVAL (no such window, an MR key, a type 1 window, not
 * bound, another PD or QP).
 */
int frdma_mw_invalidate(struct ib_qp *qp, u32 rkey, bool remote)
{
	struct frdma_dev *fdev = to_fdev(qp->device);
	struct frdma_mr *mr = NULL;
	struct frdma_mw *mw;
	int err = -EINVAL;

	rcu_read_lock();
	mw = frdma_mw_lookup(fdev, rkey);
	if (mw) {
		spin_lock(&mw->lock);
		if (mw->rkey == rkey && mw->type == IB_MW_TYPE_2 && mw->mr &&
		    mw->pd == qp->pd && (!remote || mw->qpn == qp->qp_num)) {
			mr = frdma_mw_unbind(mw);
			err = 0;
		}
		spin_unlock(&mw->lock);
	}
	rcu_read_unlock();
	frdma_mw_release_mr(mr);
	return err;
}
