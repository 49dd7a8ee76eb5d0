/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma umem: pin a range of user memory as runs of physically contiguous
 * pages, for a driver that reads or writes it from the kernel (through
 * the iterators below) or maps it for a device (through the runs).
 *
 * Vocabulary
 *
 *   range   the user virtual address range [start, start + length) the
 *           caller asked for.  It need not be page aligned.
 *   page    a PAGE_SIZE unit.  The pinned pages are the pages the range
 *           touches, from the page holding @start to the page holding the
 *           last byte; their count is the umem's npages.
 *   pgidx   the index of a page within the umem: 0 for the page holding
 *           @start, npages - 1 for the page holding the last byte.
 *   run     a maximal group of pages that are consecutive both in pgidx and
 *           in PFN: { pfn, pgoff, npages } says that pages pgoff ..
 *           pgoff + npages - 1 are the physical pages pfn .. pfn + npages - 1.
 *           A run may span several folios (two THPs that happen to be
 *           physically adjacent form one run); it never spans a physical gap.
 *   offset  a byte offset into the range: offset 0 is the byte at @start.
 *           The byte at offset o lives in page pgidx
 *           (first_off + o) >> PAGE_SHIFT at in-page offset
 *           (first_off + o) & ~PAGE_MASK, where first_off is @start's
 *           offset in its page.
 *   chunk   what an iterator hands out: a physically contiguous piece of the
 *           range that lies inside one run, as (first page, offset in that
 *           page, length).  Touch its pages with nth_page() and
 *           kmap_local_page() one page at a time.
 *   path    how the pages were pinned (umem.c): the generic path pins page
 *           by page with pin_user_pages_fast() or pin_user_pages_remote();
 *           the folio path pins a range that lies in one shared mapping of
 *           a shmem file, or of a hugetlbfs file whose pages are all
 *           present, folio by folio with memfd_pin_folios().  Both give
 *           the same runs.
 *
 * Invariants of a pinned umem (it is immutable until released)
 *
 *   - runs[0].pgoff == 0, runs[i + 1].pgoff == runs[i].pgoff + runs[i].npages,
 *     and the sum of npages over all runs is the umem's npages;
 *   - runs[i].npages > 0, and runs[i + 1].pfn != runs[i].pfn + runs[i].npages
 *     (runs are maximal, so the run array is the unique description of the
 *     PFN sequence);
 *   - the umem owns one FOLL_PIN reference per page of the range on the
 *     generic path (a physical page the range maps at two addresses holds
 *     two), or one per folio the runs touch on the folio path, and no
 *     other pin;
 *   - npages pages are charged to the pinning mm's pinned_vm until release.
 *
 * frdma_umem_check() (umem.c) checks, in O(runs), what of these can be
 * checked from the outside after every pin and before every release when
 * frdma_umem's "check" parameter is on (the default on CONFIG_DEBUG_VM
 * kernels): the runs are well formed and maximal and cover exactly the
 * pages charged, the first and last page of every run are pinned (or are
 * the zero page, whose pins GUP does not count), and only the folio path
 * counts folio pins.  It WARNs on the first one
 * broken.  The host unit tests check the run array with frdma_runs_check().
 *
 * Intervals
 *
 *   Every interval is half-open, [start, end): a variable named end (or
 *   next) is exclusive.  Where an inclusive bound is needed (as
 *   memfd_pin_folios() takes one) it is named last.  Byte positions have
 *   three origins with three names: an offset counts from @start (the
 *   API's, and the iterator's arguments), a pos counts from the start of
 *   the page holding @start (the iterator's private fields): pos =
 *   first_off + offset; a page_off counts from the start of a chunk's
 *   page (struct frdma_umem_chunk).  A position in a file (the folio
 *   path) is a file_pos.
 *
 * Memory and concurrency
 *
 *   The run array is the only allocation proportional to the size of the
 *   range: 16 bytes per run, kvmalloc()ed, and copied to its exact size
 *   once pinning is complete (when that smaller copy can be allocated).
 *   Pages are pinned through a batch of page (or folio) pointers per
 *   pinning task or helper, each batch folded into the runs as it
 *   arrives: one page of pointers, except for a generic pin of at most 8
 *   pages, whose batch is an 8-entry array on the pinning task's stack.
 *
 *   A umem may be walked concurrently by any number of iterators; pinning
 *   and releasing need process context (they sleep).  A large pin or
 *   release on the generic path is split into parts done at the same time
 *   on several online CPUs (at most the "max_cpus" parameter), every part
 *   by the same code, all finished before the call returns; the pages are
 *   charged once before any part is pinned, and a failure in any part
 *   unpins every part.
 *
 * Mapping a umem for a device (an IOMMU, a VFIO backend)
 *
 *   Pin the page-aligned range with FRDMA_UMEM_LONGTERM, plus
 *   FRDMA_UMEM_WRITE only when the device may write it.  Each run of
 *   frdma_umem_runs() is npages << PAGE_SHIFT bytes at physical address
 *   PFN_PHYS(pfn), to be mapped at IOVA iova + (pgoff << PAGE_SHIFT) with
 *   one iommu_map(): runs are maximal, so that call can use the largest
 *   IOMMU pages that the common alignment of the address and the IOVA
 *   allows.  Unmap before frdma_umem_release(), whose @dirty says whether
 *   the device could write (a pin without FRDMA_UMEM_WRITE is never
 *   dirtied).
 *
 * See Documentation/umem.rst.
 */
#ifndef _FRDMA_UMEM_H
#define _FRDMA_UMEM_H

#include <linux/types.h>

struct mm_struct;
struct page;
struct frdma_umem;

/**
 * struct frdma_umem_run - physically contiguous pinned pages
 * @pfn: PFN of the first page of the run (PFN_PHYS() gives its address)
 * @pgoff: pgidx of the first page of the run within its umem
 * @npages: number of pages in the run, at least 1
 */
struct frdma_umem_run {
	u64 pfn;
	u32 pgoff;
	u32 npages;
};

/* Flags for frdma_umem_pin() */
enum {
	/* the pinned memory will be written (FOLL_WRITE) */
	FRDMA_UMEM_WRITE	= 1 << 0,
	/*
	 * the pin lives for an unbounded time (FOLL_LONGTERM), and every
	 * pinned folio must be long-term pinnable; the folio path migrates
	 * folios out of ZONE_MOVABLE and CMA with or without this flag
	 */
	FRDMA_UMEM_LONGTERM	= 1 << 1,
	/* never use the folio path, always pin page by page */
	FRDMA_UMEM_NO_FOLIO	= 1 << 2,
	/* use the folio path or fail with -EINVAL (for tests) */
	FRDMA_UMEM_FOLIO_ONLY	= 1 << 3,
};

/**
 * struct frdma_umem_stats - what a umem holds
 * @nr_runs: number of runs
 * @max_run: pages in the largest run
 * @npages: pages pinned (and charged to pinned_vm)
 * @nr_folio_pins: folios pinned through the folio path (0 on the generic path)
 * @meta_bytes: bytes of metadata: the umem object plus its run array
 * @nr_parts: parts the generic path split the pin into, to be pinned at
 *	      the same time on several CPUs when helpers could be queued
 *	      (1: not split; 0: the folio path or an empty range)
 */
struct frdma_umem_stats {
	u32 nr_runs;
	u32 max_run;
	u64 npages;
	u64 nr_folio_pins;
	u64 meta_bytes;
	u32 nr_parts;
};

/**
 * struct frdma_umem_chunk - a physically contiguous piece of a umem
 * @page: page holding the first byte of the chunk
 * @page_off: position of the first byte in @page, in bytes from the start
 *	      of @page, below PAGE_SIZE
 * @len: length of the chunk in bytes, at least 1; the chunk's bytes are
 *	 in @page and the pages that follow it physically (nth_page())
 */
struct frdma_umem_chunk {
	struct page *page;
	unsigned int page_off;
	size_t len;
};

/**
 * struct frdma_umem_iter - a walk over part of a umem, chunk by chunk
 * @run: the run holding @pos (private)
 * @pos: the walk's position, in bytes from the start of the umem's first
 *	 page (private)
 * @end: where the walk ends, in the same unit (private)
 *
 * Initialise with frdma_umem_iter_init().
 */
struct frdma_umem_iter {
	const struct frdma_umem_run *run;
	u64 pos;
	u64 end;
};

struct frdma_umem *frdma_umem_pin(struct mm_struct *mm, unsigned long start,
				  u64 length, unsigned int flags);
void frdma_umem_release(struct frdma_umem *umem, bool dirty);

void frdma_umem_get_stats(const struct frdma_umem *umem,
			  struct frdma_umem_stats *stats);
u64 frdma_umem_length(const struct frdma_umem *umem);
u32 frdma_umem_nr_runs(const struct frdma_umem *umem);
const struct frdma_umem_run *frdma_umem_runs(const struct frdma_umem *umem);

int frdma_umem_iter_init(struct frdma_umem_iter *iter,
			 const struct frdma_umem *umem, u64 offset, u64 length);
bool frdma_umem_iter_peek(const struct frdma_umem_iter *iter,
			  struct frdma_umem_chunk *chunk);
void frdma_umem_iter_advance(struct frdma_umem_iter *iter, u64 bytes);
bool frdma_umem_iter_next(struct frdma_umem_iter *iter,
			  struct frdma_umem_chunk *chunk);

int frdma_umem_copy_to(struct frdma_umem *umem, u64 offset, const void *src,
		       size_t len);
int frdma_umem_copy_from(const struct frdma_umem *umem, u64 offset, void *dst,
			 size_t len);

#endif /* _FRDMA_UMEM_H */
