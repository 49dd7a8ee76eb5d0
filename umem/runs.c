// SPDX-License-Identifier: GPL-2.0
/*
 * Run folding for frdma umem.  See the comment at the top of
 * include/frdma/umem.h for the vocabulary and the invariants kept here.
 *
 * Pages arrive in VA order, one batch at a time.  Each batch is scanned
 * once: a stretch of pages whose PFNs go up by one is folded into the last
 * run when it starts right after that run's last PFN (which is how runs merge
 * across batch boundaries and across folios), and starts a new run
 * otherwise.  The run array grows when full (frdma_runs_grow(): it doubles,
 * or grows to the run count the pages folded so far extrapolate to) and is
 * copied to its exact size by frdma_runs_trim() once the last batch is in.
 */
#include <linux/errno.h>
#include <linux/export.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/string.h>

#include <frdma/compat.h>

#include "runs.h"

/* The first allocation: 8 runs, 128 bytes. */
#define FRDMA_RUNS_FIRST	8

/**
 * frdma_runs_span() - the pages a byte range touches
 * @start: first byte of the range
 * @length: bytes in the range, may be 0
 * @npages: set to the number of pages touched (0 for an empty range)
 * @first_off: set to the offset of @start in its page
 *
 * Return: 0, or -EINVAL when the range wraps around the end of the address
 * space or touches more than FRDMA_RUNS_MAX_PAGES pages.
 */
int frdma_runs_span(u64 start, u64 length, u32 *npages, u32 *first_off)
{
	u64 last, n;

	*first_off = start & ~PAGE_MASK;
	*npages = 0;
	if (!length)
		return 0;
	if (check_add_overflow(start, length - 1, &last))
		return -EINVAL;
	n = (last >> PAGE_SHIFT) - (start >> PAGE_SHIFT) + 1;
	if (n > FRDMA_RUNS_MAX_PAGES)
		return -EINVAL;
	*npages = n;
	return 0;
}

/**
 * frdma_runs_check() - check the invariants of a run array
 * @runs: the runs of a finished pin (or of a part)
 * @npages: the pages they must describe
 *
 * Checks what include/frdma/umem.h states of the runs: they start at pgidx
 * 0, each starts where the previous one ended, none is empty, no two
 * consecutive ones are physically adjacent (runs are maximal), they cover
 * exactly @npages pages, which is also the count of pages folded, and
 * max_run is the largest run.  O(runs).
 *
 * Return: NULL when they hold, otherwise the invariant that is broken.
 */
const char *frdma_runs_check(const struct frdma_runs *runs, u64 npages)
{
	const struct frdma_umem_run *run;
	u32 i, max_run = 0;
	u64 pgidx = 0;

	if (runs->nr > runs->cap || (runs->nr && !runs->run))
		return "more runs than room for them";
	for (i = 0; i < runs->nr; i++) {
		run = &runs->run[i];
		if (!run->npages)
			return "an empty run";
		if (run->pgoff != pgidx)
			return "a run does not start where the previous one ended";
		if (i && run[-1].pfn + run[-1].npages == run->pfn)
			return "two runs are physically adjacent (not maximal)";
		pgidx += run->npages;
		max_run = max(max_run, run->npages);
	}
	if (pgidx != npages || runs->npages != npages)
		return "the runs do not cover the pinned pages";
	if (max_run != runs->max_run)
		return "max_run is not the largest run";
	return NULL;
}

void frdma_runs_init(struct frdma_runs *runs)
{
	memset(runs, 0, sizeof(*runs));
}

/*
 * Doubling, or when the expected page count is known, the run count the
 * pages folded so far extrapolate to, if that is more: a range whose
 * pages are all scattered then reallocates its array once or twice
 * instead of at every doubling.  The estimate never exceeds one run per
 * expected page, and the array is trimmed to its runs at the end.  The
 * first array is no larger than the expected page count either, so that
 * a small range (a 4 KiB MR) allocates its array once, not once more to
 * trim it.
 */
static int frdma_runs_grow(struct frdma_runs *runs)
{
	struct frdma_umem_run *run;
	u64 est;
	u32 cap;

	if (runs->cap > U32_MAX / 2)
		return -ENOMEM;
	cap = runs->cap ? runs->cap * 2 : FRDMA_RUNS_FIRST;
	if (!runs->cap && runs->expect && runs->expect < cap)
		cap = runs->expect;
	if (runs->expect > runs->npages && runs->npages) {
		est = div64_u64((u64)runs->nr * runs->expect, runs->npages);
		est = min_t(u64, est + est / 16, runs->expect);
		cap = max_t(u64, cap, est);
	}
	run = frdma_kvrealloc(runs->run, array_size(runs->cap, sizeof(*run)),
			      array_size(cap, sizeof(*run)), GFP_KERNEL_ACCOUNT);
	if (!run)
		return -ENOMEM;
	runs->run = run;
	runs->cap = cap;
	return 0;
}

/**
 * frdma_runs_reserve() - make room for more runs
 * @runs: the run array
 * @extra: runs that must fit without another allocation
 *
 * A batch of n pages or folios adds at most n runs: reserving n before
 * pinning a batch makes folding it unable to fail for lack of memory.
 *
 * Return: 0 or -ENOMEM.
 */
int frdma_runs_reserve(struct frdma_runs *runs, u32 extra)
{
	int err;

	/* every run is at least a page: no more runs than pages to come */
	if (runs->expect > runs->npages)
		extra = min_t(u64, extra, runs->expect - runs->npages);
	while (runs->cap - runs->nr < extra) {
		err = frdma_runs_grow(runs);
		if (err)
			return err;
	}
	return 0;
}

/**
 * frdma_runs_add() - fold physically contiguous pages into the runs
 * @runs: the run array
 * @pfn: PFN of the first page
 * @npages: number of pages, the next @npages pgidx in order
 *
 * Return: 0, -ENOMEM, or -EINVAL past FRDMA_RUNS_MAX_PAGES pages.
 */
int frdma_runs_add(struct frdma_runs *runs, u64 pfn, u64 npages)
{
	struct frdma_umem_run *tail;
	int err;

	if (!npages)
		return 0;
	if (npages > FRDMA_RUNS_MAX_PAGES - runs->npages)
		return -EINVAL;

	tail = runs->nr ? &runs->run[runs->nr - 1] : NULL;
	if (tail && tail->pfn + tail->npages == pfn) {
		tail->npages += npages;
	} else {
		if (runs->nr == runs->cap) {
			err = frdma_runs_grow(runs);
			if (err)
				return err;
		}
		tail = &runs->run[runs->nr++];
		tail->pfn = pfn;
		tail->pgoff = runs->npages;
		tail->npages = npages;
	}
	runs->npages += npages;
	runs->max_run = max(runs->max_run, tail->npages);
	return 0;
}

/**
 * frdma_runs_add_pages() - fold a batch of pinned pages into the runs
 * @runs: the run array
 * @pages: the pages, in VA order, following the pages folded before
 * @nr: number of pages in @pages
 *
 * Return: 0 or -errno as for frdma_runs_add().  On error a prefix of
 * @pages may already be folded (as many pages as @runs->npages grew by):
 * those are in the runs, the rest of the batch is not.
 */
int frdma_runs_add_pages(struct frdma_runs *runs, struct page **pages,
			 unsigned int nr)
{
	unsigned int i = 0, n;
	struct page *first;
	int err;

	/* The only per-page work of a pin: one pointer comparison. */
	while (i < nr) {
		first = pages[i];
		for (n = 1; i + n < nr; n++)
			if (pages[i + n] != nth_page(first, n))
				break;
		err = frdma_runs_add(runs, page_to_pfn(first), n);
		if (err)
			return err;
		i += n;
	}
	return 0;
}

/**
 * frdma_runs_add_folios() - fold a batch of pinned folios into the runs
 * @runs: the run array
 * @folios: folios holding consecutive file pages, in file order
 * @nr: number of folios
 * @skip: pages of the first folio that precede the pages to fold
 * @limit: fold at most this many pages (the rest of the range)
 *
 * Return: the number of pages folded, or -errno as for frdma_runs_add()
 * (-EINVAL also when @skip is not inside the first folio, before anything
 * is folded).  With room reserved for @nr runs (frdma_runs_reserve()) and
 * @runs->npages + @limit at most FRDMA_RUNS_MAX_PAGES, as the folio path
 * ensures, no other error is possible.
 */
long frdma_runs_add_folios(struct frdma_runs *runs, struct folio **folios,
			   unsigned int nr, u64 skip, u64 limit)
{
	u64 done = 0, first, fpages, n;
	unsigned int i;
	int err;

	for (i = 0; i < nr && done < limit; i++) {
		fpages = folio_nr_pages(folios[i]);
		first = i ? 0 : skip;
		if (first >= fpages)
			return -EINVAL;
		n = min(fpages - first, limit - done);
		err = frdma_runs_add(runs, folio_pfn(folios[i]) + first, n);
		if (err)
			return err;
		done += n;
	}
	return done;
}

/**
 * frdma_runs_resize() - give the run array room for @cap runs
 * @runs: the run array
 * @cap: runs it is to have room for
 *
 * Grows the array to exactly @cap entries when it has fewer; never shrinks
 * it (frdma_runs_trim() is the one way to do that).
 *
 * Return: 0, or -ENOMEM (the array is unchanged).
 */
int frdma_runs_resize(struct frdma_runs *runs, u32 cap)
{
	struct frdma_umem_run *run;

	if (cap <= runs->cap)
		return 0;
	run = frdma_kvrealloc(runs->run, array_size(runs->cap, sizeof(*run)),
			      array_size(cap, sizeof(*run)), GFP_KERNEL_ACCOUNT);
	if (!run)
		return -ENOMEM;
	runs->run = run;
	runs->cap = cap;
	return 0;
}

/**
 * frdma_runs_join() - append a run array to another
 * @dst: the run array appended to
 * @src: the runs of the pages that follow @dst's pages in VA order
 *	 (pgoff counted from @src's own first page)
 *
 * @src's runs are folded into @dst as if their pages had come after @dst's
 * one batch later: the first one merges with @dst's last run when it
 * starts at the PFN after it.  @dst grows once, to the exact number of
 * runs the two make together.  @src is left unchanged.
 *
 * Return: 0, -ENOMEM (then @dst is unchanged), or -EINVAL past
 * FRDMA_RUNS_MAX_PAGES pages.
 */
int frdma_runs_join(struct frdma_runs *dst, const struct frdma_runs *src)
{
	const struct frdma_umem_run *tail, *head;
	struct frdma_umem_run *run;
	u32 i, need;
	int err;

	if (!src->nr)
		return 0;
	if (src->npages > FRDMA_RUNS_MAX_PAGES - dst->npages)
		return -EINVAL;
	tail = dst->nr ? &dst->run[dst->nr - 1] : NULL;
	head = &src->run[0];
	need = src->nr - (tail && tail->pfn + tail->npages == head->pfn);
	if (need > dst->cap - dst->nr) {
		run = frdma_kvrealloc(dst->run,
				      array_size(dst->cap, sizeof(*run)),
				      array_size((size_t)dst->nr + need,
						 sizeof(*run)),
				      GFP_KERNEL_ACCOUNT);
		if (!run)
			return -ENOMEM;
		dst->run = run;
		dst->cap = dst->nr + need;
	}
	/* Allocates nothing: there is room for every run. */
	for (i = 0; i < src->nr; i++) {
		err = frdma_runs_add(dst, src->run[i].pfn, src->run[i].npages);
		if (err)
			return err;
	}
	return 0;
}

/**
 * frdma_runs_trim() - size the run array exactly to its runs
 * @runs: the run array
 *
 * Best effort: when the smaller copy cannot be allocated the larger array
 * stays, which is still correct.
 */
void frdma_runs_trim(struct frdma_runs *runs)
{
	struct frdma_umem_run *run;

	if (runs->cap == runs->nr)
		return;
	if (!runs->nr) {
		kvfree(runs->run);
		runs->run = NULL;
		runs->cap = 0;
		return;
	}
	run = kvmalloc_array(runs->nr, sizeof(*run), GFP_KERNEL_ACCOUNT);
	if (!run)
		return;
	memcpy(run, runs->run, runs->nr * sizeof(*run));
	kvfree(runs->run);
	runs->run = run;
	runs->cap = runs->nr;
}

void frdma_runs_destroy(struct frdma_runs *runs)
{
	kvfree(runs->run);
	frdma_runs_init(runs);
}

/* Bytes allocated for the run array. */
size_t frdma_runs_bytes(const struct frdma_runs *runs)
{
	return (size_t)runs->cap * sizeof(*runs->run);
}

/**
 * frdma_runs_find() - the run holding a page, by binary search
 * @runs: the run array, at least one run
 * @pgidx: a pgidx below @runs->npages
 *
 * Return: the index of the run holding @pgidx.
 */
u32 frdma_runs_find(const struct frdma_runs *runs, u64 pgidx)
{
	u32 lo = 0, hi = runs->nr - 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo + 1) / 2;
		if (runs->run[mid].pgoff <= pgidx)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static u64 frdma_run_end(const struct frdma_umem_run *run)
{
	return ((u64)run->pgoff + run->npages) << PAGE_SHIFT;
}

/**
 * frdma_runs_iter_init() - start a walk at a byte position
 * @iter: the iterator
 * @runs: the run array
 * @pos: byte position counted from the start of page 0 (not from the
 *	 first byte of the range); @pos + @len at most @runs->npages pages
 * @len: bytes to walk
 */
void frdma_runs_iter_init(struct frdma_umem_iter *iter,
			  const struct frdma_runs *runs, u64 pos, u64 len)
{
	iter->pos = pos;
	iter->end = pos + len;
	iter->run = len ? &runs->run[frdma_runs_find(runs, pos >> PAGE_SHIFT)] :
			  NULL;
}

/**
 * frdma_umem_iter_peek() - the chunk at the iterator's position
 * @iter: the iterator
 * @chunk: filled with the chunk: from the current position to the end of
 *	   the current run or of the walk, whichever comes first
 *
 * Return: false when the walk is over (@chunk is not touched).
 */
bool frdma_umem_iter_peek(const struct frdma_umem_iter *iter,
			  struct frdma_umem_chunk *chunk)
{
	const struct frdma_umem_run *run = iter->run;
	u64 pgidx;

	if (iter->pos >= iter->end)
		return false;
	pgidx = iter->pos >> PAGE_SHIFT;
	chunk->page = pfn_to_page(run->pfn + (pgidx - run->pgoff));
	chunk->page_off = iter->pos & ~PAGE_MASK;
	chunk->len = min(iter->end, frdma_run_end(run)) - iter->pos;
	return true;
}
EXPORT_SYMBOL_GPL(frdma_umem_iter_peek);

/**
 * frdma_umem_iter_advance() - move the iterator forward
 * @iter: the iterator
 * @bytes: bytes to move, normally at most the length of the current chunk
 *	   (larger values work, in time linear in the runs crossed); the
 *	   walk ends at its end whatever @bytes says
 */
void frdma_umem_iter_advance(struct frdma_umem_iter *iter, u64 bytes)
{
	if (iter->pos >= iter->end)
		return;
	iter->pos += min(bytes, iter->end - iter->pos);
	while (iter->pos < iter->end && iter->pos >= frdma_run_end(iter->run))
		iter->run++;
}
EXPORT_SYMBOL_GPL(frdma_umem_iter_advance);

/**
 * frdma_umem_iter_next() - take the next chunk of a walk
 * @iter: the iterator
 * @chunk: filled as by frdma_umem_iter_peek()
 *
 * Return: false when the walk is over.
 */
bool frdma_umem_iter_next(struct frdma_umem_iter *iter,
			  struct frdma_umem_chunk *chunk)
{
	if (!frdma_umem_iter_peek(iter, chunk))
		return false;
	frdma_umem_iter_advance(iter, chunk->len);
	return true;
}
EXPORT_SYMBOL_GPL(frdma_umem_iter_next);
