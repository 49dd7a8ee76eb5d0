/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma umem: pin a range of user memory as runs of physically contiguous
 * pages.
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
 *           The byte at offset o lives in page pgidx (first_off + o) >> PAGE_SHIFT
 *           at in-page offset (first_off + o) & ~PAGE_MASK, where first_off
 *           is @start's offset in its page.
 *   chunk   what an iterator hands out: a physically contiguous piece of the
 *           range that lies inside one run, as (first page, offset in that
 *           page, length).  Touch its pages with nth_page() and
 *           kmap_local_page() one page at a time.
 *
 * Invariants of a pinned umem (it is immutable until released)
 *
 *   - runs[0].pgoff == 0, runs[i + 1].pgoff == runs[i].pgoff + runs[i].npages,
 *     and the sum of npages over all runs is the umem's npages;
 *   - runs[i].npages > 0, and runs[i + 1].pfn != runs[i].pfn + runs[i].npages
 *     (runs are maximal, so the run array is the unique description of the
 *     PFN sequence);
 *   - every page of every run holds exactly one FOLL_PIN reference owned by
 *     the umem (generic path), or every folio touched by the runs holds
 *     exactly one (folio path); nothing else is pinned and nothing is pinned
 *     twice;
 *   - npages pages are charged to the owning mm's pinned_vm until release.
 *
 * frdma_umem_check() (umem.c) checks these after every pin and before every
 * release when frdma_umem's "check" parameter is on (the default on
 * CONFIG_DEBUG_VM kernels), and WARNs on the first one broken; the host
 * unit tests check the run array with frdma_runs_check().
 *
 * Intervals
 *
 *   Every interval is half-open, [start, end): a variable named end (or
 *   next) is exclusive.  Where an inclusive bound is needed (as
 *   memfd_pin_folios() takes one) it is named last.  Byte positions have
 *   two origins with two names: an offset counts from @start (the API's,
 *   and the iterator's arguments), a pos counts from the start of the page
 *   holding @start (the iterator's private fields): pos = first_off +
 *   offset.
 *
 * The run array is the only allocation proportional to the size of the
 * range: 16 bytes per run, kvmalloc()ed and sized exactly to the runs once
 * pinning is complete.  Pages are pinned through one page-sized batch of
 * page (or folio) pointers, each batch folded into the runs as it arrives.
 *
 * A umem may be walked concurrently by any number of iterators; pinning and
 * releasing need process context (they sleep).  A large pin or release is
 * split into parts done at the same time on the online CPUs, every part by
 * the same code, all finished before the call returns; the pages are
 * charged once before any part is pinned, and a failure in any part
 * unpins every part.  See Documentation/umem.rst.
 */
#ifndef _FRDMA_UMEM_H
#define _FRDMA_UMEM_H

#include <linux/types.h>

struct mm_struct;
struct page;
struct frdma_umem;

/**
 * struct frdma_umem_run - physically contiguous pinned pages
 * @pfn: PFN of the first page of the run
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
	/* the pin lives for an unbounded time (FOLL_LONGTERM) */
	FRDMA_UMEM_LONGTERM	= 1 << 1,
	/* never use the memfd folio path, always pin page by page */
	FRDMA_UMEM_NO_FOLIO	= 1 << 2,
	/* use the memfd folio path or fail with -EINVAL (for tests) */
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
 * @offset: offset of the first byte in @page, below PAGE_SIZE
 * @len: length of the chunk in bytes, at least 1; the chunk's bytes are
 *	 in @page and the pages that follow it physically (nth_page())
 */
struct frdma_umem_chunk {
	struct page *page;
	unsigned int offset;
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
