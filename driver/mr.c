// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: memory regions.
 *
 * An MR is a umem (user memory pinned long-term as runs of physically
 * contiguous pages, see include/frdma/umem.h) plus the access rights it was
 * registered with, the protection domain it belongs to and the address
 * range (iova, length) work requests name it by.  The iova need not be the
 * user virtual address the memory was registered from: the byte at
 * iova + o is the byte at offset o of the umem.
 *
 * Keys
 *
 *   lkey == rkey == (index << 8) | key byte, where index (1 ..
 *   FRDMA_MAX_MR) is the MR's slot in its device's mr_table, handed out
 *   cyclically so a freed slot is not reused at once, and the key byte is
 *   random.  frdma_mr_get() matches all 32 bits.
 *
 * Publication and lifetime
 *
 *   Registration reserves a slot (NULL entry), fills the MR in, then
 *   stores it: a lookup never sees a half-built MR.  The table holds one
 *   reference; each frdma_mr_get() takes another, under RCU with
 *   refcount_inc_not_zero().  Deregistration erases the slot, drops the
 *   table's reference and waits for the others to go, so the pages stay
 *   pinned while any operation copies to or from them; the structure itself
 *   is freed after an RCU grace period, since a lookup may still be reading
 *   it when its count is already zero.
 *
 * Copies
 *
 *   Every copy walks the umem with its iterator, which hands out one
 *   physically contiguous chunk per run: on kernels without highmem the
 *   chunk is one memmove() through the direct map; otherwise each page is
 *   mapped with kmap_local_page() in turn.  Nothing here sleeps, so the data
 *   path may call these functions under its queue spinlocks.
 */

#include <linux/highmem.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <rdma/ib_user_verbs.h>
#include <rdma/restrack.h>

#include "mr.h"
#include "qp.h"

/* The access bits an MR can be registered with, and checked against. */
#define FRDMA_MR_ACCESS	(IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | \
			 IB_ACCESS_REMOTE_READ | IB_ACCESS_REMOTE_ATOMIC | \
			 IB_ACCESS_MW_BIND)
/* Hints a device may ignore (IB_ACCESS_OPTIONAL is defined that way). */
#define FRDMA_MR_HINTS	(IB_ACCESS_HUGETLB | IB_ACCESS_OPTIONAL)
/* The access bits that let something write into the MR's memory. */
#define FRDMA_MR_WRITES	(IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | \
			 IB_ACCESS_REMOTE_ATOMIC)

/* Serialises every frdma atomic operation against every other. */
static DEFINE_SPINLOCK(frdma_atomic_lock);

static int frdma_mr_check_access(int access)
{
	if ((access & (IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IB_ACCESS_LOCAL_WRITE))
		return -EINVAL;
	if (access & ~(FRDMA_MR_ACCESS | FRDMA_MR_HINTS))
		return -EOPNOTSUPP;
	return 0;
}

static void frdma_mr_count(struct frdma_mr *mr, long sign)
{
	struct frdma_umem_stats st;

	frdma_umem_get_stats(mr->umem, &st);
	frdma_count(FRDMA_CNT_MR, sign);
	frdma_count(FRDMA_CNT_RUNS, sign * st.nr_runs);
	frdma_count(FRDMA_CNT_PINNED_PAGES, sign * (long)st.npages);
}

/*
 * MRs come from a cache of their own: struct frdma_mr is a little larger
 * than 256 bytes, and kmalloc() would round every one up to 512.  The RDMA
 * core copies fields of the embedded struct ib_mr straight to user space
 * (QUERY_MR of an imported MR), so that member is the cache's usercopy
 * region: hardened usercopy refuses any copy out of the rest.
 */
static struct kmem_cache *frdma_mr_cache;

/**
 * frdma_mr_cache_init() - create the cache MRs are allocated from
 *
 * Return: 0 or -ENOMEM.
 */
int frdma_mr_cache_init(void)
{
	frdma_mr_cache = KMEM_CACHE_USERCOPY(frdma_mr, 0, ibmr);
	return frdma_mr_cache ? 0 : -ENOMEM;
}

/**
 * frdma_mr_cache_destroy() - destroy it, once every MR is freed
 *
 * Waits for the MRs still waiting for an RCU grace period.
 */
void frdma_mr_cache_destroy(void)
{
	rcu_barrier();
	kmem_cache_destroy(frdma_mr_cache);
}

static void frdma_mr_free_rcu(struct rcu_head *head)
{
	kmem_cache_free(frdma_mr_cache, container_of(head, struct frdma_mr, rcu));
}

/**
 * frdma_reg_user_mr() - register user memory (the reg_user_mr verb)
 * @pd: the protection domain
 * @start: user virtual address of the first byte
 * @length: bytes, 1 to FRDMA_MAX_MR_SIZE
 * @iova: the address work requests use for the first byte
 * @access: IB_ACCESS_* flags
 * @udata: the user's command; frdma takes no driver data
 *
 * Pins [@start, @start + @length) of the calling process long-term, for
 * writing if @access allows any write, and gives it a key.
 *
 * Context: process context; sleeps.
 * Return: the MR, or an ERR_PTR(): -EINVAL for a zero or too large length,
 * an iova range that wraps, or a remote write or atomic right without local
 * write; -EOPNOTSUPP for access bits frdma does not implement (on-demand
 * paging, zero-based, flush); -ENOMEM when out of memory
 * or keys, over RLIMIT_MEMLOCK or when fault injection fires; -EFAULT for
 * memory that is not mapped with the needed protection; or the error of
 * the pin (see frdma_umem_pin()).
 */
struct ib_mr *frdma_reg_user_mr(struct ib_pd *pd, u64 start, u64 length,
				u64 iova, int access, struct ib_udata *udata)
{
	struct frdma_dev *fdev = to_fdev(pd->device);
	unsigned int flags = FRDMA_UMEM_LONGTERM;
	struct frdma_umem *umem;
	struct frdma_mr *mr;
	u32 index, key;
	u64 last;
	int err;

	err = frdma_mr_check_access(access);
	if (err)
		return ERR_PTR(err);
	/* The core asks this too; frdma_mr_atomic() relies on it. */
	if (!length || length > FRDMA_MAX_MR_SIZE ||
	    ((start ^ iova) & ~PAGE_MASK) ||
	    check_add_overflow(iova, length - 1, &last) ||
	    check_add_overflow(start, length - 1, &last))
		return ERR_PTR(-EINVAL);
	if (udata && udata->inlen &&
	    !ib_is_udata_cleared(udata, 0, udata->inlen))
		return ERR_PTR(-EINVAL);
	if (access & FRDMA_MR_WRITES)
		flags |= FRDMA_UMEM_WRITE;

	if (frdma_should_fail())
		return ERR_PTR(-ENOMEM);
	err = frdma_res_charge(fdev, FRDMA_RES_MR);
	if (err)
		return ERR_PTR(err);
	mr = kmem_cache_zalloc(frdma_mr_cache, FRDMA_GFP_USER);
	if (!mr) {
		err = -ENOMEM;
		goto err_count;
	}

	if (frdma_should_fail()) {
		err = -ENOMEM;
		goto err_free;
	}
	umem = frdma_umem_pin(current->mm, start, length, flags);
	if (IS_ERR(umem)) {
		err = PTR_ERR(umem);
		goto err_free;
	}
	mr->umem = umem;
	mr->access = access & FRDMA_MR_ACCESS;
	mr->pd = pd;
	mr->start = start;
	mr->iova = iova;
	mr->length = length;
	mr->writable = flags & FRDMA_UMEM_WRITE;
	refcount_set(&mr->ref, 1);
	atomic_set(&mr->num_mw, 0);
	init_completion(&mr->free);

	/* Reserve a slot, then publish the MR once its key is known. */
	if (frdma_should_fail()) {
		err = -ENOMEM;
		goto err_unpin;
	}
	err = xa_alloc_cyclic(&fdev->mr_table, &index, NULL,
			      XA_LIMIT(1, FRDMA_MAX_MR), &fdev->mr_next,
			      FRDMA_GFP_USER);
	if (err < 0) {
		err = err == -EBUSY ? -ENOMEM : err;
		goto err_unpin;
	}
	key = (index << FRDMA_KEY_SHIFT) | get_random_u8();
	mr->ibmr.lkey = key;
	mr->ibmr.rkey = key;
	/* The core sets these after reg_mr, but not after a rereg_mr. */
	mr->ibmr.iova = iova;
	mr->ibmr.length = length;
	mr->mm = current->mm;
	mmgrab(mr->mm);
	/* Replaces the reservation: allocates nothing, cannot fail. */
	xa_store(&fdev->mr_table, index, mr, GFP_KERNEL);

	frdma_mr_count(mr, 1);
	return &mr->ibmr;

err_unpin:
	frdma_umem_release(umem, false);
err_free:
	kmem_cache_free(frdma_mr_cache, mr);
err_count:
	frdma_res_uncharge(fdev, FRDMA_RES_MR);
	return ERR_PTR(err);
}

/**
 * frdma_rereg_user_mr() - change an MR (the rereg_mr verb)
 * @ibmr: the MR
 * @flags: IB_MR_REREG_PD, IB_MR_REREG_ACCESS and/or IB_MR_REREG_TRANS
 * @start: with IB_MR_REREG_TRANS, the new user address
 * @length: with IB_MR_REREG_TRANS, the new length
 * @iova: with IB_MR_REREG_TRANS, the new iova
 * @access: with IB_MR_REREG_ACCESS, the new IB_ACCESS_* flags
 * @pd: the PD the MR is to be in (its own unless IB_MR_REREG_PD)
 * @udata: the user's command
 *
 * A new PD or new rights are set in place, keeping the keys and the pin:
 * an operation already past frdma_mr_check() finishes under the old ones.
 * What the pin cannot carry is a new registration, with new keys, which
 * the core swaps in for the old MR (and then deregisters the old one); if
 * it fails the old MR stays.  That is a new translation, and new rights
 * that write to memory the MR pinned read-only: those are a registration
 * of the MR's own range, pinned for writing.  An MR with memory windows
 * bound to it is not changed (-EBUSY): the windows were checked against
 * its PD, rights and range.
 *
 * New write rights without IB_MR_REREG_TRANS keep the translation (IBTA),
 * so the range is pinned again from the process that registered the MR:
 * asked by any other process (a child that inherited the context, or one
 * the uverbs file was passed to), they fail with -EPERM instead of pinning
 * whatever that process has mapped at the MR's address.
 *
 * Context: process context; sleeps.
 * Return: NULL when changed in place, the new MR, or an ERR_PTR() as for
 * frdma_reg_user_mr(), or -EBUSY, or -EPERM.
 */
struct ib_mr *frdma_rereg_user_mr(struct ib_mr *ibmr, int flags, u64 start,
				  u64 length, u64 iova, int access,
				  struct ib_pd *pd, struct ib_udata *udata)
{
	struct frdma_mr *mr = to_fmr(ibmr);
	int err;

	if (flags & ~(IB_MR_REREG_PD | IB_MR_REREG_ACCESS | IB_MR_REREG_TRANS))
		return ERR_PTR(-EOPNOTSUPP);
	if (!(flags & IB_MR_REREG_ACCESS))
		access = mr->access;
	if (!(flags & IB_MR_REREG_TRANS) &&
	    (access & FRDMA_MR_WRITES) && !mr->writable) {
		/* The same translation: the registering process's pages. */
		if (current->mm != mr->mm)
			return ERR_PTR(-EPERM);
		start = mr->start;
		length = mr->length;
		iova = mr->iova;
		flags |= IB_MR_REREG_TRANS;
	}
	if (flags & IB_MR_REREG_TRANS) {
		struct ib_mr *new_mr;

		/*
		 * No window may bind to the old MR from here on: the core
		 * deregisters it once this succeeds (num_mw stays -1 then).
		 */
		if (atomic_cmpxchg(&mr->num_mw, 0, -1))
			return ERR_PTR(-EBUSY);
		new_mr = frdma_reg_user_mr(pd, start, length, iova, access,
					   udata);
		if (IS_ERR(new_mr))
			atomic_set_release(&mr->num_mw, 0);
		return new_mr;
	}

	err = frdma_mr_check_access(access);
	if (err)
		return ERR_PTR(err);
	if (udata && udata->inlen &&
	    !ib_is_udata_cleared(udata, 0, udata->inlen))
		return ERR_PTR(-EINVAL);
	/* No window may bind while the MR changes. */
	if (atomic_cmpxchg(&mr->num_mw, 0, -1))
		return ERR_PTR(-EBUSY);
	WRITE_ONCE(mr->pd, pd);
	WRITE_ONCE(mr->access, access & FRDMA_MR_ACCESS);
	atomic_set_release(&mr->num_mw, 0);
	return NULL;
}

/**
 * frdma_dereg_mr() - deregister an MR (the dereg_mr verb)
 * @ibmr: the MR
 * @udata: the user's command
 *
 * The key dies first; then this waits until no data-path operation holds
 * the MR, and unpins its memory (dirtying it if the MR was writable).
 * An MR with memory windows bound to it stays registered (IBTA
 * 10.6.7.2.6): the core retries at context teardown, after the windows.
 *
 * Context: process context; sleeps.
 * Return: 0, or -EBUSY while memory windows are bound to the MR.
 */
int frdma_dereg_mr(struct ib_mr *ibmr, struct ib_udata *udata)
{
	struct frdma_dev *fdev = to_fdev(ibmr->device);
	struct frdma_mr *mr = to_fmr(ibmr);

	/*
	 * From here on no window binds to it (frdma_mw_bind()); -1 already
	 * is a rereg_mr that replaced this MR.
	 */
	if (atomic_cmpxchg(&mr->num_mw, 0, -1) > 0)
		return -EBUSY;

	xa_erase(&fdev->mr_table, mr->ibmr.lkey >> FRDMA_KEY_SHIFT);
	frdma_mr_put(mr);
	wait_for_completion(&mr->free);

	frdma_mr_count(mr, -1);
	frdma_umem_release(mr->umem, mr->writable);
	mmdrop(mr->mm);
	frdma_res_uncharge(fdev, FRDMA_RES_MR);
	call_rcu(&mr->rcu, frdma_mr_free_rcu);
	return 0;
}

/**
 * frdma_fill_res_mr_entry() - driver attributes of an MR for netlink
 * @msg: the message being built
 * @ibmr: the MR
 *
 * Adds "runs", "pinned_pages", "largest_run" (pages) and "meta_bytes" (the
 * umem's own memory), shown by "rdma res show mr -dd".
 *
 * Return: 0, or -EMSGSIZE.
 */
int frdma_fill_res_mr_entry(struct sk_buff *msg, struct ib_mr *ibmr)
{
	struct frdma_mr *mr = to_fmr(ibmr);
	struct frdma_umem_stats st;
	struct nlattr *table;

	frdma_umem_get_stats(mr->umem, &st);
	table = nla_nest_start_noflag(msg, RDMA_NLDEV_ATTR_DRIVER);
	if (!table)
		return -EMSGSIZE;
	if (rdma_nl_put_driver_u32(msg, "runs", st.nr_runs) ||
	    rdma_nl_put_driver_u64(msg, "pinned_pages", st.npages) ||
	    rdma_nl_put_driver_u32(msg, "largest_run", st.max_run) ||
	    rdma_nl_put_driver_u64(msg, "meta_bytes", st.meta_bytes)) {
		nla_nest_cancel(msg, table);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, table);
	return 0;
}

/**
 * frdma_mr_table_init() - set up a device's key table
 * @fdev: the device
 */
void frdma_mr_table_init(struct frdma_dev *fdev)
{
	xa_init_flags(&fdev->mr_table, XA_FLAGS_ALLOC);
	fdev->mr_next = 1;
	fdev->mw_next = FRDMA_MW_INDEX_MIN;
}

/**
 * frdma_mr_table_destroy() - tear down a device's key table
 * @fdev: the device, whose MRs the core has all deregistered
 */
void frdma_mr_table_destroy(struct frdma_dev *fdev)
{
	WARN_ON(!xa_empty(&fdev->mr_table));
	xa_destroy(&fdev->mr_table);
}

/*
 * The MR of key-table entry @entry if it is one (a memory window's entry
 * is tagged), live and named by all 32 bits of @key, referenced; or NULL.
 * Under rcu_read_lock().
 */
static struct frdma_mr *frdma_mr_entry_get(void *entry, u32 key)
{
	struct frdma_mr *mr = xa_pointer_tag(entry) ? NULL : entry;

	if (mr && (mr->ibmr.lkey != key || !refcount_inc_not_zero(&mr->ref)))
		mr = NULL;
	return mr;
}

/**
 * frdma_mr_get() - look an MR up by key
 * @fdev: the device
 * @key: an lkey or rkey, all 32 bits of which must match
 *
 * Context: any; does not sleep.
 * Return: the MR with a reference the caller drops with frdma_mr_put(),
 * or NULL if no live MR has this key.
 */
struct frdma_mr *frdma_mr_get(struct frdma_dev *fdev, u32 key)
{
	struct frdma_mr *mr;
	void *entry;

	rcu_read_lock();
	entry = xa_load(&fdev->mr_table, key >> FRDMA_KEY_SHIFT);
	mr = frdma_mr_entry_get(entry, key);
	rcu_read_unlock();
	return mr;
}

/**
 * frdma_mr_get_pd() - look an MR of a given PD up by key
 * @fdev: the device
 * @key: an lkey, all 32 bits of which must match
 * @pd: the PD the MR must be in
 *
 * Takes no reference on an MR of another PD, so an MR key named by
 * another process never holds up that MR's deregistration.
 *
 * Context: any; does not sleep.
 * Return: the MR with a reference the caller drops with frdma_mr_put(),
 * or NULL if no live MR of @pd has this key.
 */
struct frdma_mr *frdma_mr_get_pd(struct frdma_dev *fdev, u32 key,
				 struct ib_pd *pd)
{
	struct frdma_mr *mr;
	void *entry;

	rcu_read_lock();
	entry = xa_load(&fdev->mr_table, key >> FRDMA_KEY_SHIFT);
	mr = xa_pointer_tag(entry) ? NULL : entry;
	if (mr && READ_ONCE(mr->pd) != pd)
		mr = NULL;
	mr = frdma_mr_entry_get(mr, key);
	rcu_read_unlock();
	return mr;
}

/**
 * frdma_rkey_get() - resolve a remote key for the responder
 * @fdev: the responder's device
 * @rkey: an MR's or a bound MW's rkey
 * @qp: the responder QP the access arrives at
 * @pd: the PD that checks the access: @qp's, or an XRC SRQ's for an XRC
 *	target QP
 * @addr: the first byte accessed, an address in the MR (or window)
 * @len: bytes, at least 1
 * @access: the IB_ACCESS_REMOTE_* right the access needs
 * @mrp: on success, the MR to access, referenced
 *
 * An MR key is checked with frdma_mr_check() against @pd; an MW key
 * against the window (frdma_mw_resolve()), whose MR the bind checked.
 *
 * Context: any; does not sleep.
 * Return: 0, -ENOENT, -EACCES or -ERANGE; *@mrp is set only on success.
 */
int frdma_rkey_get(struct frdma_dev *fdev, u32 rkey, struct ib_qp *qp,
		   struct ib_pd *pd, u64 addr, u64 len, int access,
		   struct frdma_mr **mrp)
{
	struct frdma_mr *mr;
	void *entry;
	int err;

	rcu_read_lock();
	entry = xa_load(&fdev->mr_table, rkey >> FRDMA_KEY_SHIFT);
	if (xa_pointer_tag(entry) == FRDMA_KEY_MW) {
		err = frdma_mw_resolve(xa_untag_pointer(entry), rkey, qp, pd,
				       addr, len, access, mrp);
		rcu_read_unlock();
		return err;
	}
	mr = frdma_mr_entry_get(entry, rkey);
	rcu_read_unlock();
	if (!mr)
		return -ENOENT;
	err = frdma_mr_check(mr, pd, addr, len, access);
	if (err) {
		frdma_mr_put(mr);
		return err;
	}
	*mrp = mr;
	return 0;
}

/**
 * frdma_mr_put() - drop a reference taken by frdma_mr_get()
 * @mr: the MR
 *
 * Context: any; does not sleep.
 */
void frdma_mr_put(struct frdma_mr *mr)
{
	if (refcount_dec_and_test(&mr->ref))
		complete(&mr->free);
}

/**
 * frdma_mr_check() - may this access touch these bytes of an MR?
 * @mr: the MR
 * @pd: the protection domain of the QP asking
 * @addr: the first byte, an iova address
 * @len: bytes (0 is allowed anywhere from iova to iova + length)
 * @access: IB_ACCESS_* bits the access needs; 0 for a local read
 *
 * Context: any; does not sleep.
 * Return: 0, -EACCES if @mr is in another PD or lacks a right in @access,
 * or -ERANGE if the bytes are not all inside the MR.
 */
int frdma_mr_check(struct frdma_mr *mr, struct ib_pd *pd, u64 addr, u64 len,
		   int access)
{
	u64 off;

	/* rereg_mr may change both at any time; either value is fine. */
	if (READ_ONCE(mr->pd) != pd || (access & ~READ_ONCE(mr->access)))
		return -EACCES;
	if (addr < mr->iova)
		return -ERANGE;
	off = addr - mr->iova;
	if (off > mr->length || len > mr->length - off)
		return -ERANGE;
	return 0;
}

/*
 * Copy @len bytes between physically contiguous memory starting at byte
 * @doff of page @dpage and at byte @soff of page @spage.  Either side may be
 * NULL for a kernel buffer (@dbuf, @sbuf).  Source and destination may
 * overlap (an MR copied onto itself, two MRs over the same pages).
 */
static void frdma_copy_contig(struct page *dpage, size_t doff, void *dbuf,
			      struct page *spage, size_t soff, const void *sbuf,
			      size_t len)
{
	size_t n, dpg, spg;
	void *d, *s;

	if (!IS_ENABLED(CONFIG_HIGHMEM)) {
		/* The direct map is linear: one call per chunk. */
		d = dpage ? page_address(dpage) + doff : dbuf;
		s = spage ? page_address(spage) + soff : (void *)sbuf;
		memmove(d, s, len);
		return;
	}

	while (len) {
		n = len;
		dpg = doff & ~PAGE_MASK;
		spg = soff & ~PAGE_MASK;
		if (dpage)
			n = min(n, PAGE_SIZE - dpg);
		if (spage)
			n = min(n, PAGE_SIZE - spg);
		d = dpage ? kmap_local_page(nth_page(dpage, doff >> PAGE_SHIFT)) +
			    dpg : dbuf + doff;
		s = spage ? kmap_local_page(nth_page(spage, soff >> PAGE_SHIFT)) +
			    spg : (void *)sbuf + soff;
		memmove(d, s, n);
		if (spage)
			kunmap_local(s);
		if (dpage) {
			flush_dcache_page(nth_page(dpage, doff >> PAGE_SHIFT));
			kunmap_local(d);
		}
		doff += n;
		soff += n;
		len -= n;
	}
}

/* Start a walk over [@addr, @addr + @len) of @mr, already checked. */
static bool frdma_mr_iter(struct frdma_mr *mr, struct frdma_umem_iter *it,
			  u64 addr, u64 len)
{
	/* A range frdma_mr_check() passed never fails here. */
	return !WARN_ON_ONCE(addr < mr->iova ||
			     frdma_umem_iter_init(it, mr->umem,
						  addr - mr->iova, len));
}

/**
 * frdma_mr_copy() - copy bytes from one MR to another
 * @dst: the destination MR, writable
 * @dst_addr: iova address in @dst
 * @src: the source MR
 * @src_addr: iova address in @src
 * @len: bytes; both ranges checked with frdma_mr_check()
 *
 * Steps by the smaller of the two current chunks, so each step is one
 * physically contiguous piece on both sides.
 *
 * Context: any; does not sleep.
 */
void frdma_mr_copy(struct frdma_mr *dst, u64 dst_addr,
		   struct frdma_mr *src, u64 src_addr, u64 len)
{
	struct frdma_umem_chunk dc, sc;
	struct frdma_umem_iter di, si;
	size_t n;

	if (!len)
		return;
	if (WARN_ON_ONCE(!dst->writable) ||
	    !frdma_mr_iter(dst, &di, dst_addr, len) ||
	    !frdma_mr_iter(src, &si, src_addr, len))
		return;
	while (frdma_umem_iter_peek(&di, &dc) &&
	       frdma_umem_iter_peek(&si, &sc)) {
		n = min(dc.len, sc.len);
		frdma_copy_contig(dc.page, dc.page_off, NULL,
				  sc.page, sc.page_off, NULL, n);
		frdma_umem_iter_advance(&di, n);
		frdma_umem_iter_advance(&si, n);
	}
}

/**
 * frdma_mr_write() - copy a kernel buffer into an MR
 * @dst: the MR, writable
 * @addr: iova address in @dst
 * @buf: the bytes
 * @len: how many; the range checked with frdma_mr_check()
 *
 * Context: any; does not sleep.
 */
void frdma_mr_write(struct frdma_mr *dst, u64 addr, const void *buf,
		    u64 len)
{
	struct frdma_umem_chunk c;
	struct frdma_umem_iter it;
	size_t done = 0;

	if (!len)
		return;
	if (WARN_ON_ONCE(!dst->writable) ||
	    !frdma_mr_iter(dst, &it, addr, len))
		return;
	while (frdma_umem_iter_next(&it, &c)) {
		frdma_copy_contig(c.page, c.page_off, NULL, NULL, 0, buf + done,
				  c.len);
		done += c.len;
	}
}

/**
 * frdma_mr_read() - copy bytes of an MR into a kernel buffer
 * @src: the MR
 * @addr: iova address in @src
 * @buf: where the bytes go
 * @len: how many; the range checked with frdma_mr_check()
 *
 * Context: any; does not sleep.
 */
void frdma_mr_read(struct frdma_mr *src, u64 addr, void *buf, u64 len)
{
	struct frdma_umem_chunk c;
	struct frdma_umem_iter it;
	size_t done = 0;

	if (!frdma_mr_iter(src, &it, addr, len))
		return;
	while (frdma_umem_iter_next(&it, &c)) {
		frdma_copy_contig(NULL, 0, buf + done, c.page, c.page_off, NULL,
				  c.len);
		done += c.len;
	}
}

/*
 * Store @val at @addr of @mr (checked, 8 bytes) with one 8-byte store;
 * -EINVAL if the word were not aligned in memory (the core's page-offset
 * rule for iovas rules that out).  Release order: the data an earlier
 * operation wrote is visible before the word.
 */
static int frdma_mr_store_u64(struct frdma_mr *mr, u64 addr, u64 val)
{
	struct frdma_umem_chunk c;
	struct frdma_umem_iter it;
	u64 *p;

	if (!frdma_mr_iter(mr, &it, addr, sizeof(val)) ||
	    !frdma_umem_iter_peek(&it, &c))
		return -ERANGE;
	if (c.len < sizeof(val) || (c.page_off & (sizeof(val) - 1)))
		return -EINVAL;
	p = kmap_local_page(c.page) + c.page_off;
	/* Pairs with the reader's load: earlier writes are seen first. */
	smp_store_release(p, val);
	kunmap_local(p);
	return 0;
}

/**
 * frdma_mr_atomic() - compare-and-swap, fetch-and-add or atomic write on
 *	an MR
 * @mr: the MR, registered with IB_ACCESS_REMOTE_ATOMIC (or, for an
 *	atomic write, IB_ACCESS_REMOTE_WRITE)
 * @addr: iova address of the 64-bit word, 8-byte aligned
 * @opcode: IB_UVERBS_WR_ATOMIC_CMP_AND_SWP, IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD
 *	    or IB_UVERBS_WR_ATOMIC_WRITE
 * @compare_add: the value compared (CMP_AND_SWP), added (FETCH_AND_ADD) or
 *		 written (ATOMIC_WRITE)
 * @swap: the value stored if the comparison succeeds (CMP_AND_SWP)
 * @orig: the word's value before the operation (not for ATOMIC_WRITE)
 *
 * The word is in host byte order.  The operation is atomic against every
 * other frdma atomic on any MR (one global lock), as IB_ATOMIC_HCA
 * promises, not against CPU accesses.  The core registers an MR only at
 * an iova with the same offset in the page as its address, so an aligned
 * iova is an aligned word in one page of memory.  An atomic write stores
 * it with one 8-byte store, so no CPU or frdma reader sees half of it
 * (IBTA oA19-28).
 *
 * Context: any; does not sleep.
 * Return: 0, -EINVAL for a misaligned address or an unknown opcode, or
 * -ERANGE if the word is not inside the MR.
 */
int frdma_mr_atomic(struct frdma_mr *mr, u64 addr, u8 opcode,
		    u64 compare_add, u64 swap, u64 *orig)
{
	unsigned long irqflags;
	u64 old, new;

	if (addr & (sizeof(u64) - 1))
		return -EINVAL;
	if (opcode != IB_UVERBS_WR_ATOMIC_CMP_AND_SWP &&
	    opcode != IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD &&
	    opcode != IB_UVERBS_WR_ATOMIC_WRITE)
		return -EINVAL;
	if (addr < mr->iova || addr - mr->iova > mr->length ||
	    mr->length - (addr - mr->iova) < sizeof(u64))
		return -ERANGE;
	if (WARN_ON_ONCE(!mr->writable))
		return -EINVAL;

	if (opcode == IB_UVERBS_WR_ATOMIC_WRITE) {
		int err;

		spin_lock_irqsave(&frdma_atomic_lock, irqflags);
		err = frdma_mr_store_u64(mr, addr, compare_add);
		spin_unlock_irqrestore(&frdma_atomic_lock, irqflags);
		return err;
	}

	spin_lock_irqsave(&frdma_atomic_lock, irqflags);
	frdma_mr_read(mr, addr, &old, sizeof(old));
	if (opcode == IB_UVERBS_WR_ATOMIC_FETCH_AND_ADD)
		new = old + compare_add;
	else
		new = old == compare_add ? swap : old;
	if (new != old)
		frdma_mr_write(mr, addr, &new, sizeof(new));
	spin_unlock_irqrestore(&frdma_atomic_lock, irqflags);
	*orig = old;
	return 0;
}

/*
 * Scatter/gather lists: the checked MR ranges one side of a work request
 * touches (struct frdma_sgl), for the requester and the responder alike.
 */

/* Copy at most this much between two chances to reschedule or stop. */
#define FRDMA_COPY_STEP		SZ_4M

void frdma_sgl_put(struct frdma_sgl *sgl)
{
	while (sgl->n)
		frdma_mr_put(sgl->mr[--sgl->n]);
}

/* Add [@addr, @addr + @len) of the MR named @key to @sgl, checked. */
static int frdma_sgl_add(struct frdma_sgl *sgl, struct frdma_dev *fdev,
			 struct ib_pd *pd, u32 key, u64 addr, u64 len,
			 int access)
{
	struct frdma_mr *mr;

	mr = frdma_mr_get(fdev, key);
	if (!mr)
		return -ENOENT;
	sgl->mr[sgl->n] = mr;
	sgl->addr[sgl->n] = addr;
	sgl->len[sgl->n] = len;
	sgl->n++;
	return frdma_mr_check(mr, pd, addr, len, access);
}

/*
 * Build @sgl from @n SGEs of a validated WQE copy.  Zero-length SGEs are
 * skipped without a lookup.  On error the caller still puts @sgl.
 */
int frdma_sgl_get(struct frdma_sgl *sgl, struct frdma_dev *fdev,
		  struct ib_pd *pd, const struct frdma_sge *sge, u32 n,
		  int access, u64 *total)
{
	u32 i;
	int err;

	*total = 0;
	for (i = 0; i < n; i++) {
		if (!sge[i].length)
			continue;
		*total += sge[i].length;
		err = frdma_sgl_add(sgl, fdev, pd, sge[i].lkey, sge[i].addr,
				    sge[i].length, access);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Drop the first @n bytes of @sgl (the room a UD receive leaves for the
 * GRH), keeping every entry's MR reference; entries may become empty.
 */
void frdma_sgl_skip(struct frdma_sgl *sgl, u32 n)
{
	u32 i, k;

	for (i = 0; i < sgl->n && n; i++) {
		k = min(n, sgl->len[i]);
		sgl->addr[i] += k;
		sgl->len[i] -= k;
		n -= k;
	}
}

/*
 * Copy the first @len bytes of @src to @dst, both long enough, for @qp's
 * work request towards @t.  Returns 0, or -EINTR when it stopped midway
 * (frdma_wr_stopping()).
 */
int frdma_sgl_copy(struct frdma_sgl *dst, struct frdma_sgl *src, u64 len,
		   const struct frdma_qp *qp, const struct frdma_qp *t)
{
	u64 doff = 0, soff = 0, since = 0, n;
	u32 di = 0, si = 0;

	while (len) {
		n = min3(len, dst->len[di] - doff, src->len[si] - soff);
		n = min_t(u64, n, FRDMA_COPY_STEP);
		if (n)
			frdma_mr_copy(dst->mr[di], dst->addr[di] + doff,
				      src->mr[si], src->addr[si] + soff, n);
		len -= n;
		doff += n;
		soff += n;
		if (doff == dst->len[di]) {
			di++;
			doff = 0;
		}
		if (soff == src->len[si]) {
			si++;
			soff = 0;
		}
		since += n;
		if (len && since >= FRDMA_COPY_STEP) {
			if (frdma_wr_stopping(qp, t))
				return -EINTR;
			cond_resched();
			since = 0;
		}
	}
	return 0;
}

/* Copy @len bytes of kernel memory (inline data) to @dst. */
void frdma_sgl_write(struct frdma_sgl *dst, const u8 *buf, u32 len)
{
	u32 i, n;

	for (i = 0; len; i++) {
		n = min(len, dst->len[i]);
		if (n)
			frdma_mr_write(dst->mr[i], dst->addr[i], buf, n);
		buf += n;
		len -= n;
	}
}
