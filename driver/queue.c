// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: rings shared with user space.
 *
 * A ring (see include/uapi/rdma/frdma-abi.h) is one zeroed vmalloc buffer:
 * a struct frdma_ring_hdr, then the entries.  A user ring is charged to the
 * memory cgroup of the task creating it, and fails with -ENOMEM when the
 * cgroup cannot hold it (no OOM kill: a ring is a large allocation the
 * caller sized).  For a user object the
 * buffer belongs to an rdma_user_mmap_entry, whose offset the create
 * response hands out as the mmap cookie: frdma_mmap() maps the buffer,
 * frdma_mmap_free() frees it once the object has removed the entry and no
 * mmap() call is still looking at it.  Pages already mapped into a process
 * hold their own references (vm_insert_page()), so a process that keeps its
 * mapping past the object's destruction only keeps those pages alive.
 *
 * The kernel owns one index of each ring (the consumer index of a work
 * queue, the producer index of a CQ) and keeps it in struct frdma_queue; it
 * publishes it to the header and never reads it back.  The other index is
 * read from the header, once per pass, and checked against the ring size.
 */

#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <rdma/uverbs_ioctl.h>

#include "frdma.h"

/* A user ring: zeroed, charged, and -ENOMEM rather than an OOM kill. */
#define FRDMA_GFP_RING	(FRDMA_GFP_USER | __GFP_ZERO | __GFP_NOWARN | \
			 __GFP_RETRY_MAYFAIL)

/**
 * struct frdma_mmap_entry - a ring buffer user space may map
 * @rdma: the core's entry; its offset is the mmap cookie
 * @buf: the vmalloc buffer, freed with the entry
 */
struct frdma_mmap_entry {
	struct rdma_user_mmap_entry rdma;
	void *buf;
};

static struct frdma_mmap_entry *to_fmentry(struct rdma_user_mmap_entry *e)
{
	return container_of(e, struct frdma_mmap_entry, rdma);
}

/**
 * frdma_queue_init - allocate a ring and make it mappable
 * @q: the queue to set up
 * @uctx: the user context that maps it, or NULL for a kernel-only ring
 * @num_entries: entries, a power of two no larger than 1 << 24
 * @entry_shift: log2 of the entry stride in bytes
 * @desc: filled with what user space needs to map the ring; may be NULL
 *	  when @uctx is NULL
 *
 * Return: 0, or -EINVAL for a bad geometry, -ENOMEM, or the error of
 * rdma_user_mmap_entry_insert().
 */
int frdma_queue_init(struct frdma_queue *q, struct ib_ucontext *uctx,
		     u32 num_entries, u32 entry_shift,
		     struct frdma_ring_desc *desc)
{
	struct frdma_mmap_entry *me = NULL;
	size_t size;
	void *buf;
	int err;

	if (!is_power_of_2(num_entries) || num_entries > (1U << 24) ||
	    entry_shift > 12)
		return -EINVAL;
	size = PAGE_ALIGN(FRDMA_RING_HDR_SIZE +
			  ((size_t)num_entries << entry_shift));

	buf = uctx ? __vmalloc(size, FRDMA_GFP_RING) : vzalloc(size);
	if (!buf)
		return -ENOMEM;

	if (uctx) {
		me = kzalloc(sizeof(*me), FRDMA_GFP_USER);
		if (!me) {
			vfree(buf);
			return -ENOMEM;
		}
		me->buf = buf;
		err = rdma_user_mmap_entry_insert(uctx, &me->rdma, size);
		if (err) {
			kfree(me);
			vfree(buf);
			return err;
		}
		if (desc) {
			memset(desc, 0, sizeof(*desc));
			desc->mmap_offset = rdma_user_mmap_get_offset(&me->rdma);
			desc->mmap_size = size;
			desc->num_entries = num_entries;
			desc->entry_shift = entry_shift;
		}
	}

	q->hdr = buf;
	q->num_entries = num_entries;
	q->entry_shift = entry_shift;
	q->kidx = 0;
	q->mentry = me ? &me->rdma : NULL;
	return 0;
}

/**
 * frdma_queue_destroy - stop using a ring and let it be freed
 * @q: the queue
 *
 * For a user ring the buffer is freed by frdma_mmap_free() when the core
 * drops the last reference to its mmap entry, possibly before this
 * returns; @q must not be used afterwards.
 */
void frdma_queue_destroy(struct frdma_queue *q)
{
	if (q->mentry)
		rdma_user_mmap_entry_remove(q->mentry);
	else
		vfree(q->hdr);
	q->hdr = NULL;
	q->mentry = NULL;
}

/**
 * frdma_queue_user_avail - entries the user side has produced
 * @q: a work queue (SQ, RQ, SRQ), whose producer is user space
 *
 * Loads the producer index once, with acquire semantics: the entries it
 * covers may be read after this returns (and must then be copied out and
 * validated, as user space can still write them).
 *
 * Return: the number of entries from @q->kidx on that user space has
 * published, or -EINVAL when its producer index is out of range.
 */
int frdma_queue_user_avail(struct frdma_queue *q)
{
	/* Pairs with the provider's release store of prod. */
	u32 n = smp_load_acquire(&q->hdr->prod) - q->kidx;

	return n > q->num_entries ? -EINVAL : n;
}

/**
 * frdma_queue_user_space - free slots in a ring the kernel produces into
 * @q: a completion queue, whose consumer is user space
 *
 * Return: the number of entries the kernel may write from @q->kidx on, or
 * -EINVAL when the user's consumer index is out of range.
 */
int frdma_queue_user_space(struct frdma_queue *q)
{
	/* Pairs with the provider's release store of cons. */
	u32 used = q->kidx - smp_load_acquire(&q->hdr->cons);

	return used > q->num_entries ? -EINVAL : q->num_entries - used;
}

/**
 * frdma_queue_publish - publish the kernel's index of a ring
 * @q: the queue
 * @producer: true if the kernel produces into @q (a CQ), false if it
 *	      consumes from it (a work queue)
 *
 * Stores @q->kidx with release semantics, after everything written to or
 * read from the entries it covers.
 */
void frdma_queue_publish(struct frdma_queue *q, bool producer)
{
	if (producer)	/* pairs with the provider's acquire load of prod */
		smp_store_release(&q->hdr->prod, q->kidx);
	else		/* pairs with the provider's acquire load of cons */
		smp_store_release(&q->hdr->cons, q->kidx);
}

/*
 * Map the whole vmalloc buffer @buf into @vma, which is exactly as large.
 * remap_vmalloc_range() wants a vmalloc_user() buffer, which cannot be
 * charged to a memory cgroup; the pages are inserted one by one instead.
 */
static int frdma_map_ring(struct vm_area_struct *vma, void *buf)
{
	unsigned long off, size = vma->vm_end - vma->vm_start;
	int err;

	for (off = 0; off < size; off += PAGE_SIZE) {
		err = vm_insert_page(vma, vma->vm_start + off,
				     vmalloc_to_page(buf + off));
		if (err)
			return err;
	}
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return 0;
}

int frdma_mmap(struct ib_ucontext *uctx, struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *e;
	int err;

	/* Checks the offset, the size and that the mapping is shared. */
	e = rdma_user_mmap_entry_get(uctx, vma);
	if (!e)
		return -EINVAL;
	err = frdma_map_ring(vma, to_fmentry(e)->buf);
	rdma_user_mmap_entry_put(e);
	return err;
}

void frdma_mmap_free(struct rdma_user_mmap_entry *e)
{
	struct frdma_mmap_entry *me = to_fmentry(e);

	vfree(me->buf);
	kfree(me);
}
