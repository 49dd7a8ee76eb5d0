/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * frdma provider: the user side of a ring shared with the kernel
 * (layout and rules in <rdma/frdma-abi.h>).
 */
#ifndef FRDMA_RING_H
#define FRDMA_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#include <rdma/frdma-abi.h>

struct frdma_ring {
	struct frdma_ring_hdr *hdr;	/* the mapping; NULL when unmapped */
	size_t map_size;
	uint32_t num_entries;		/* power of two */
	uint32_t entry_shift;
	uint32_t uidx;			/* the index user space owns */
};

/*
 * Map the ring @desc describes on @cmd_fd, after checking that it is one
 * with entries of at least @min_entry_size bytes.  Returns 0 or an errno.
 */
static inline int frdma_ring_map(struct frdma_ring *r, int cmd_fd,
				 const struct frdma_ring_desc *desc,
				 size_t min_entry_size)
{
	size_t need;
	void *p;

	if (!desc->num_entries ||
	    (desc->num_entries & (desc->num_entries - 1)) ||
	    desc->entry_shift > 12 ||
	    ((size_t)1 << desc->entry_shift) < min_entry_size)
		return EPROTO;
	need = FRDMA_RING_HDR_SIZE +
	       ((size_t)desc->num_entries << desc->entry_shift);
	if (desc->mmap_size < need)
		return EPROTO;

	p = mmap(NULL, desc->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 cmd_fd, desc->mmap_offset);
	if (p == MAP_FAILED)
		return errno;
	r->hdr = p;
	r->map_size = desc->mmap_size;
	r->num_entries = desc->num_entries;
	r->entry_shift = desc->entry_shift;
	r->uidx = 0;
	return 0;
}

static inline void frdma_ring_unmap(struct frdma_ring *r)
{
	if (r->hdr)
		munmap(r->hdr, r->map_size);
	r->hdr = NULL;
}

static inline void *frdma_ring_entry(const struct frdma_ring *r, uint32_t idx)
{
	return (uint8_t *)r->hdr + FRDMA_RING_HDR_SIZE +
	       ((size_t)(idx & (r->num_entries - 1)) << r->entry_shift);
}

/* The kernel's index, loaded with acquire semantics. */
static inline uint32_t frdma_ring_load_prod(const struct frdma_ring *r)
{
	return atomic_load_explicit((_Atomic uint32_t *)&r->hdr->prod,
				    memory_order_acquire);
}

static inline uint32_t frdma_ring_load_cons(const struct frdma_ring *r)
{
	return atomic_load_explicit((_Atomic uint32_t *)&r->hdr->cons,
				    memory_order_acquire);
}

/* Publish user space's index with release semantics. */
static inline void frdma_ring_store_prod(struct frdma_ring *r)
{
	atomic_store_explicit((_Atomic uint32_t *)&r->hdr->prod, r->uidx,
			      memory_order_release);
}

static inline void frdma_ring_store_cons(struct frdma_ring *r)
{
	atomic_store_explicit((_Atomic uint32_t *)&r->hdr->cons, r->uidx,
			      memory_order_release);
}

/*
 * After publishing an SQ's prod: whether the doorbell is needed.  The full
 * fence orders the prod store before the flag load, as the kernel's fence
 * orders its flag clear before its last prod load (<rdma/frdma-abi.h>,
 * "Send queue polling").
 */
static inline bool frdma_ring_sq_needs_doorbell(const struct frdma_ring *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	return !(atomic_load_explicit((_Atomic uint32_t *)&r->hdr->sq_flags,
				      memory_order_relaxed) & FRDMA_SQ_POLLED);
}

/*
 * After publishing an RQ's prod: whether the kernel must be told, with the
 * send doorbell, to flush it (<rdma/frdma-abi.h>, "Receive queue
 * flushing").  The fence pairs with the kernel's between its flag store
 * and its prod load.
 */
static inline bool frdma_ring_rq_needs_flush(const struct frdma_ring *r)
{
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit((_Atomic uint32_t *)&r->hdr->sq_flags,
				    memory_order_relaxed) & FRDMA_RQ_FLUSHING;
}

/*
 * Entries an SQ may take while its cons stands still before the provider
 * rings the doorbell even though FRDMA_SQ_POLLED is set: the kernel's
 * poller may be slow to run (its CPU busy), and the doorbell then runs
 * the queue in the caller instead.  A quarter of the ring, at most 32.
 */
static inline uint32_t frdma_ring_stall_limit(const struct frdma_ring *r)
{
	uint32_t n = r->num_entries / 4;

	return n < 1 ? 1 : n > 32 ? 32 : n;
}

/* Free slots in a ring user space produces into (a work queue). */
static inline uint32_t frdma_ring_space(const struct frdma_ring *r)
{
	return r->num_entries - (r->uidx - frdma_ring_load_cons(r));
}

#endif /* FRDMA_RING_H */
