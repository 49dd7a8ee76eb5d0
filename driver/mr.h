/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma memory regions: registration on umem/ and the primitives the data
 * path uses to reach registered memory.
 *
 * Keys
 *
 *   An MR's lkey and rkey are equal: the MR's index in its device's key
 *   table shifted left by 8, ORed with a random key byte.  A lookup
 *   matches all 32 bits, so a stale key (same index, old key byte) never
 *   finds a new MR except by a 1-in-256 chance that IBTA accepts.
 *
 * Lifetime
 *
 *   frdma_mr_get() returns a referenced MR; the data path holds that
 *   reference while it touches the MR's pages and drops it with
 *   frdma_mr_put().  dereg_mr removes the key first (no new lookup can
 *   succeed), then waits for every reference to be dropped, then releases
 *   the pin.  So the pages an in-flight operation copies to or from stay
 *   pinned until it is done.
 *
 * Memory windows (mw.c)
 *
 *   A memory window is a second rkey onto part of an MR, which the owner
 *   binds and invalidates through its send queue.  Its keys live in the
 *   same key table and key format as the MRs' (one key space: an rkey
 *   names an MR or an MW, never both; the MWs' indices are a range of
 *   their own), stored as xarray pointers tagged FRDMA_KEY_MW so a
 *   lookup knows which it found.  The invariants:
 *
 *   - frdma_mr_get() returns MRs only: an MW key is never an lkey.
 *   - An rkey reaches memory through frdma_rkey_get() only, which for an
 *     MW checks the window (bound, key byte, PD, type 2 QP, access,
 *     bounds) and hands out a reference on the MR under it.
 *   - A bound MW holds one reference on its MR and counts in its
 *     @num_mw; dereg_mr and rereg_mr fail with -EBUSY while @num_mw is
 *     not zero, and set it to -1 while they run, so a bind cannot race
 *     with them (binding to an MR at -1 fails).  So an MR never goes away
 *     under a bound window, and its PD, access and translation are the
 *     ones the bind checked.
 *   - A window is freed only after an RCU grace period (lookups read it
 *     under RCU); its state changes under its spinlock.
 */
#ifndef _FRDMA_MR_H
#define _FRDMA_MR_H

#include <linux/refcount.h>
#include <linux/completion.h>
#include <frdma/umem.h>

#include "frdma.h"

/**
 * struct frdma_mr - a memory region
 * @ibmr: the core's MR (lkey, rkey, pd, iova, length)
 * @umem: the pinned pages, from frdma_umem_pin()
 * @access: the IB_ACCESS_* flags it was registered with
 * @ref: references: one for the key table, one per frdma_mr_get()
 * @free: completed when @ref drops to zero
 * @pd: the PD it was registered in (set before the MR is published, unlike
 *	@ibmr.pd, which the core sets after reg_user_mr returns)
 * @mm: the address space it was registered from (mmgrab()ed): only it
 *	may have the range pinned again (rereg_mr)
 * @start: the user address of its first byte (what is pinned)
 * @iova: the address of its first byte in work requests (likewise)
 * @length: its length in bytes (likewise)
 * @rcu: frees it after the lookups that may still see it
 * @writable: its pages are pinned for writing (so @access may grant
 *	      writes; rereg_mr changes @access in place only within this)
 * @num_mw: memory windows bound to it, or -1 while it is being
 *	    deregistered or re-registered (see "Memory windows" above)
 */
struct frdma_mr {
	struct ib_mr ibmr;
	struct frdma_umem *umem;
	int access;
	refcount_t ref;
	struct completion free;
	struct ib_pd *pd;
	struct mm_struct *mm;
	u64 start;
	u64 iova;
	u64 length;
	struct rcu_head rcu;
	bool writable;
	atomic_t num_mw;
};

/* The tag of an MW's entry in the key table (xa_tag_pointer()). */
#define FRDMA_KEY_MW		1
#define FRDMA_KEY_SHIFT		8
/*
 * Key indices: MRs take 1 .. FRDMA_MAX_MR, windows their own range above,
 * so neither kind can use up the other's keys.  An index is 24 bits.
 */
#define FRDMA_MW_INDEX_MIN	BIT(23)
#define FRDMA_MW_INDEX_MAX	(FRDMA_MW_INDEX_MIN + FRDMA_MAX_MW - 1)
static_assert(FRDMA_MAX_MR < FRDMA_MW_INDEX_MIN);
static_assert(!(FRDMA_MW_INDEX_MAX >> (32 - FRDMA_KEY_SHIFT)));

/**
 * struct frdma_ibmw - the core's MW object (the core allocates and frees it)
 * @ibmw: the core's part
 * @mw: frdma's window, allocated and RCU-freed by mw.c, since lookups may
 *	still read it after the core has freed @ibmw
 */
struct frdma_ibmw {
	struct ib_mw ibmw;
	struct frdma_mw *mw;
};

static inline struct frdma_mr *to_fmr(struct ib_mr *ibmr)
{
	return container_of(ibmr, struct frdma_mr, ibmr);
}

/* The verbs (ib_device_ops). */
struct ib_mr *frdma_reg_user_mr(struct ib_pd *pd, u64 start, u64 length,
				u64 iova, int access, struct ib_udata *udata);
struct ib_mr *frdma_rereg_user_mr(struct ib_mr *ibmr, int flags, u64 start,
				  u64 length, u64 iova, int access,
				  struct ib_pd *pd, struct ib_udata *udata);
int frdma_dereg_mr(struct ib_mr *ibmr, struct ib_udata *udata);
int frdma_fill_res_mr_entry(struct sk_buff *msg, struct ib_mr *ibmr);

/* The key table of a device, set up and torn down with the device. */
int frdma_mr_cache_init(void);
void frdma_mr_cache_destroy(void);
void frdma_mr_table_init(struct frdma_dev *fdev);
void frdma_mr_table_destroy(struct frdma_dev *fdev);

/*
 * The data path's primitives.  Addresses are the application's (iova)
 * addresses inside the MR.
 *
 * frdma_mr_get() - the MR with key @key on @fdev, referenced, or NULL.
 * frdma_mr_check() - whether [@addr, @addr + @len) lies inside @mr, @mr
 *	belongs to @pd and allows every IB_ACCESS_* bit of @access (0 for
 *	a local read).  Returns 0, -EACCES (PD or access) or -ERANGE.
 * frdma_mr_copy() - copy @len bytes between two checked ranges, one
 *	physically contiguous chunk at a time (never page by page).
 * frdma_mr_write(), frdma_mr_read() - copy between a checked range and
 *	kernel memory (inline data, atomics' results).
 * frdma_mr_atomic() - IB_UVERBS_WR_ATOMIC_CMP_AND_SWP or _FETCH_AND_ADD
 *	on the 8-byte aligned word at @addr, atomic against every other
 *	frdma atomic; the original value goes to @orig.
 */
struct frdma_mr *frdma_mr_get(struct frdma_dev *fdev, u32 key);
struct frdma_mr *frdma_mr_get_pd(struct frdma_dev *fdev, u32 key,
				 struct ib_pd *pd);
void frdma_mr_put(struct frdma_mr *mr);
int frdma_mr_check(struct frdma_mr *mr, struct ib_pd *pd, u64 addr, u64 len,
		   int access);
void frdma_mr_copy(struct frdma_mr *dst, u64 dst_addr,
		   struct frdma_mr *src, u64 src_addr, u64 len);
void frdma_mr_write(struct frdma_mr *dst, u64 addr, const void *buf,
		    u64 len);
void frdma_mr_read(struct frdma_mr *src, u64 addr, void *buf, u64 len);
int frdma_mr_atomic(struct frdma_mr *mr, u64 addr, u8 opcode,
		    u64 compare_add, u64 swap, u64 *orig);

/*
 * Remote keys (MR or MW), for the responder's side of RDMA and atomics.
 *
 * frdma_rkey_get() - resolve @rkey for an access of @len bytes at @addr
 *	needing @access, arriving at @qp and checked against @pd (@qp's,
 *	or an XRC SRQ's for an XRC target QP): on success *@mrp is the MR to
 *	copy to or from (referenced; drop with frdma_mr_put()), with @addr
 *	inside it.  Returns 0, -ENOENT (no such key), -EACCES (PD, QP,
 *	access or window state) or -ERANGE (bounds).
 */
int frdma_rkey_get(struct frdma_dev *fdev, u32 rkey, struct ib_qp *qp,
		   struct ib_pd *pd, u64 addr, u64 len, int access,
		   struct frdma_mr **mrp);

/* Memory windows (mw.c): the verbs and the send queue's operations. */
int frdma_alloc_mw(struct ib_mw *ibmw, struct ib_udata *udata);
int frdma_dealloc_mw(struct ib_mw *ibmw);
int frdma_mw_bind(struct ib_qp *qp, u32 mw_rkey, u32 new_rkey, u32 mr_lkey,
		  u64 addr, u64 length, int access);
int frdma_mw_invalidate(struct ib_qp *qp, u32 rkey, bool remote);
struct frdma_mw *frdma_mw_lookup(struct frdma_dev *fdev, u32 rkey);
int frdma_mw_resolve(struct frdma_mw *mw, u32 rkey, struct ib_qp *qp,
		     struct ib_pd *pd, u64 addr, u64 len, int access,
		     struct frdma_mr **mrp);

#endif /* _FRDMA_MR_H */
