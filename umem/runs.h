/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Run folding: turn a stream of pinned pages (or folios), in VA order, into
 * the run array of a umem, and find and walk byte offsets in it.
 *
 * This file and runs.c are plain C over the page layer (page_to_pfn(),
 * pfn_to_page(), nth_page(), folio_pfn(), folio_nr_pages()) and the
 * kvmalloc family (kvrealloc(), kvmalloc_array(), kvfree()); the host unit
 * tests compile them unchanged against a fake kernel in tests/unit/fake/.
 */
#ifndef _FRDMA_UMEM_RUNS_H
#define _FRDMA_UMEM_RUNS_H

#include <linux/types.h>
#include <frdma/umem.h>

struct page;
struct folio;

/* Runs store pgidx as u32: a umem pins at most this many pages (16 TiB). */
#define FRDMA_RUNS_MAX_PAGES	((u64)U32_MAX)

/**
 * struct frdma_runs - a growing run array
 * @run: the runs, kvmalloc()ed, @cap entries
 * @nr: runs in use
 * @cap: entries allocated
 * @npages: pages folded so far (== pgidx of the next page)
 * @max_run: pages in the largest run
 * @expect: pages expected in all (0: unknown), to size growth by
 */
struct frdma_runs {
	struct frdma_umem_run *run;
	u32 nr;
	u32 cap;
	u64 npages;
	u32 max_run;
	u32 expect;
};

int frdma_runs_span(u64 start, u64 length, u32 *npages, u32 *first_off);

const char *frdma_runs_check(const struct frdma_runs *runs, u64 npages);
void frdma_runs_init(struct frdma_runs *runs);
int frdma_runs_reserve(struct frdma_runs *runs, u32 extra);
int frdma_runs_add(struct frdma_runs *runs, u64 pfn, u64 npages);
int frdma_runs_add_pages(struct frdma_runs *runs, struct page **pages,
			 unsigned int nr);
long frdma_runs_add_folios(struct frdma_runs *runs, struct folio **folios,
			   unsigned int nr, u64 skip, u64 limit);
int frdma_runs_resize(struct frdma_runs *runs, u32 cap);
int frdma_runs_join(struct frdma_runs *dst, const struct frdma_runs *src);
void frdma_runs_trim(struct frdma_runs *runs);
void frdma_runs_destroy(struct frdma_runs *runs);
size_t frdma_runs_bytes(const struct frdma_runs *runs);

u32 frdma_runs_find(const struct frdma_runs *runs, u64 pgidx);
void frdma_runs_iter_init(struct frdma_umem_iter *iter,
			  const struct frdma_runs *runs, u64 pos, u64 len);

#endif /* _FRDMA_UMEM_RUNS_H */
