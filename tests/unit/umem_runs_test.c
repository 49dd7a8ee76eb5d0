// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of umem run folding (umem/runs.c), compiled against the
 * fake page layer in fake/.
 *
 * A synthetic address space is a sequence of folios in VA order, each at
 * a chosen PFN.  Ranges of it are folded the way umem.c does (pages in
 * batches through frdma_runs_add_pages(), or folios in batches through
 * frdma_runs_add_folios()) and the runs are compared with a reference
 * computed naively from the per-page PFN sequence.  Walks are checked
 * chunk by chunk against the same sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "runs.h"
#include "tap.h"

long fake_alloc_budget = -1;
long fake_alloc_calls;
long fake_alloc_live;

/* The batch umem.c uses: one page of pointers. */
#define KBATCH	((u32)(PAGE_SIZE / sizeof(void *)))

struct layout {
	u64 *pfn;		/* PFN of each VA page */
	u64 *folio_first;	/* first VA page of each folio */
	struct folio *folios;
	u64 npages;
	u32 nfolios;
	u32 cap_pages, cap_folios;
};

static void layout_init(struct layout *l)
{
	memset(l, 0, sizeof(*l));
}

static void layout_free(struct layout *l)
{
	free(l->pfn);
	free(l->folio_first);
	free(l->folios);
	layout_init(l);
}

static void layout_add(struct layout *l, u64 pfn, u64 nr)
{
	u64 i;

	if (l->nfolios == l->cap_folios) {
		l->cap_folios = l->cap_folios ? 2 * l->cap_folios : 16;
		l->folios = realloc(l->folios, l->cap_folios * sizeof(*l->folios));
		l->folio_first = realloc(l->folio_first,
					 l->cap_folios * sizeof(u64));
	}
	while (l->npages + nr > l->cap_pages) {
		l->cap_pages = l->cap_pages ? 2 * l->cap_pages : 1024;
		l->pfn = realloc(l->pfn, l->cap_pages * sizeof(u64));
	}
	if (!l->folios || !l->folio_first || !l->pfn)
		abort();
	l->folios[l->nfolios].pfn = pfn;
	l->folios[l->nfolios].nr_pages = nr;
	l->folio_first[l->nfolios++] = l->npages;
	for (i = 0; i < nr; i++)
		l->pfn[l->npages++] = pfn + i;
}

/* Reference: maximal runs of the PFN sequence, naively. */
static u32 ref_runs(const u64 *pfn, u64 n, struct frdma_umem_run *out)
{
	u32 nr = 0;
	u64 i;

	for (i = 0; i < n; i++) {
		if (nr && out[nr - 1].pfn + out[nr - 1].npages == pfn[i]) {
			out[nr - 1].npages++;
			continue;
		}
		out[nr].pfn = pfn[i];
		out[nr].pgoff = i;
		out[nr].npages = 1;
		nr++;
	}
	return nr;
}

/* Fold pages [first, first + n) of @l in batches of @batch, as umem.c. */
static int fold_pages(struct frdma_runs *r, const struct layout *l, u64 first,
		      u64 n, u32 batch)
{
	struct page **pages = malloc(batch * sizeof(*pages));
	u64 done = 0;
	u32 i, want;
	int err = 0;

	while (done < n) {
		want = n - done < batch ? n - done : batch;
		for (i = 0; i < want; i++)
			pages[i] = pfn_to_page(l->pfn[first + done + i]);
		err = frdma_runs_add_pages(r, pages, want);
		if (err)
			break;
		done += want;
	}
	free(pages);
	return err;
}

/*
 * Fold pages [first, first + n) of @l by folios, as memfd_pin_folios()
 * hands them out: up to @batch folios per call, the first one entered at
 * an offset.
 */
static int fold_folios(struct frdma_runs *r, const struct layout *l, u64 first,
		       u64 n, u32 batch)
{
	struct folio **ptrs = malloc(batch * sizeof(*ptrs));
	u64 pg = first, left = n, skip;
	u32 k = 0, cnt, i;
	int err = 0;
	long done;

	while (left) {
		while (k + 1 < l->nfolios && l->folio_first[k + 1] <= pg)
			k++;
		skip = pg - l->folio_first[k];
		/* the folios that overlap [pg, first + n), at most @batch */
		for (cnt = 0; cnt < batch && k + cnt < l->nfolios &&
		     l->folio_first[k + cnt] < first + n; cnt++)
			;
		for (i = 0; i < cnt; i++)
			ptrs[i] = &l->folios[k + i];
		err = frdma_runs_reserve(r, batch);
		if (!err) {
			done = frdma_runs_add_folios(r, ptrs, cnt, skip, left);
			err = done <= 0 ? (done ? (int)done : -EFAULT) : 0;
		}
		if (err)
			break;
		pg += done;
		left -= done;
	}
	free(ptrs);
	return err;
}

/* The runs of @r equal the reference for pages [first, first + n). */
static void check_runs(const struct frdma_runs *r, const struct layout *l,
		       u64 first, u64 n, const char *what)
{
	struct frdma_umem_run *ref = malloc((n + 1) * sizeof(*ref));
	u32 nref, i, maxr = 0;
	u64 sum = 0;

	nref = ref_runs(l->pfn + first, n, ref);
	CHECK(r->nr == nref, "%s: %u runs, expected %u", what, r->nr, nref);
	CHECK(r->npages == n, "%s: %llu pages, expected %llu", what,
	      (unsigned long long)r->npages, (unsigned long long)n);
	for (i = 0; i < r->nr && i < nref; i++) {
		CHECK(r->run[i].pfn == ref[i].pfn &&
		      r->run[i].pgoff == ref[i].pgoff &&
		      r->run[i].npages == ref[i].npages,
		      "%s: run %u is (%llu,%u,%u), expected (%llu,%u,%u)", what,
		      i, (unsigned long long)r->run[i].pfn, r->run[i].pgoff,
		      r->run[i].npages, (unsigned long long)ref[i].pfn,
		      ref[i].pgoff, ref[i].npages);
		if (r->run[i].npages > maxr)
			maxr = r->run[i].npages;
	}
	/* the invariants of include/frdma/umem.h */
	for (i = 0; i < r->nr; i++) {
		CHECK(r->run[i].npages > 0, "%s: empty run %u", what, i);
		CHECK(r->run[i].pgoff == sum, "%s: run %u pgoff %u, not %llu",
		      what, i, r->run[i].pgoff, (unsigned long long)sum);
		if (i)
			CHECK(r->run[i - 1].pfn + r->run[i - 1].npages !=
			      r->run[i].pfn, "%s: runs %u and %u not maximal",
			      what, i - 1, i);
		sum += r->run[i].npages;
	}
	CHECK(r->max_run == maxr, "%s: max_run %u, expected %u", what,
	      r->max_run, maxr);
	CHECK(r->cap >= r->nr, "%s: cap %u below nr %u", what, r->cap, r->nr);
	CHECK(!frdma_runs_check(r, n), "%s: frdma_runs_check: %s", what,
	      frdma_runs_check(r, n));
	free(ref);
}

/*
 * Walk bytes [off, off + len) of a range that starts @first_off bytes into
 * page @first of @l, and check every chunk: it starts at the right page
 * and offset, is physically contiguous, and ends at the end of the walk
 * or at a physical discontinuity (the end of a run).
 */
static void check_walk(const struct frdma_runs *r, const struct layout *l,
		       u64 first, u32 first_off, u64 off, u64 len, u64 step)
{
	u64 pos = first_off + off, end = first_off + off + len, pg, k, last;
	struct frdma_umem_chunk c;
	struct frdma_umem_iter it;
	u64 chunks = 0;

	frdma_runs_iter_init(&it, r, pos, len);
	while (frdma_umem_iter_peek(&it, &c)) {
		pg = pos >> PAGE_SHIFT;
		CHECK(c.len > 0, "empty chunk at %llu", (unsigned long long)pos);
		CHECK(c.page_off == (pos & ~PAGE_MASK), "chunk page_off %u at %llu",
		      c.page_off, (unsigned long long)pos);
		CHECK(pos + c.len <= end, "chunk past the end at %llu",
		      (unsigned long long)pos);
		last = (pos + c.len - 1) >> PAGE_SHIFT;
		for (k = 0; pg + k <= last; k++)
			CHECK(page_to_pfn(nth_page(c.page, k)) ==
			      l->pfn[first + pg + k],
			      "chunk at %llu page %llu: wrong pfn",
			      (unsigned long long)pos, (unsigned long long)k);
		if (pos + c.len < end)
			CHECK(l->pfn[first + last + 1] != l->pfn[first + last] + 1 &&
			      ((pos + c.len) & ~PAGE_MASK) == 0,
			      "chunk at %llu ends at %llu, inside a run",
			      (unsigned long long)pos,
			      (unsigned long long)(pos + c.len));
		chunks++;
		if (chunks > len + 1)
			break;
		/* consume in @step pieces (0: whole chunks) */
		if (step && step < c.len) {
			frdma_umem_iter_advance(&it, step);
			pos += step;
		} else {
			CHECK(frdma_umem_iter_next(&it, &c), "next after peek");
			pos += c.len;
		}
	}
	CHECK(pos == end, "walk ended at %llu, not %llu",
	      (unsigned long long)pos, (unsigned long long)end);
}

/* Fold a byte range of @l both ways and check runs, seeks and walks. */
static void check_range(const struct layout *l, u64 start, u64 length,
			u32 batch, u32 fbatch, const char *what)
{
	struct frdma_runs rp, rf;
	u32 npages, first_off, i;
	u64 first = start >> PAGE_SHIFT, pg;
	int err;

	err = frdma_runs_span(start, length, &npages, &first_off);
	CHECK(!err, "%s: span %d", what, err);
	if (err)
		return;
	CHECK(first + npages <= l->npages, "%s: range outside layout", what);

	frdma_runs_init(&rp);
	err = fold_pages(&rp, l, first, npages, batch);
	CHECK(!err, "%s: fold pages %d", what, err);
	frdma_runs_trim(&rp);
	CHECK(rp.cap == rp.nr, "%s: trim left cap %u for %u runs", what,
	      rp.cap, rp.nr);
	check_runs(&rp, l, first, npages, what);

	frdma_runs_init(&rf);
	rf.expect = npages;	/* as umem.c sets it */
	err = fold_folios(&rf, l, first, npages, fbatch);
	CHECK(!err, "%s: fold folios %d", what, err);
	frdma_runs_trim(&rf);
	check_runs(&rf, l, first, npages, what);
	CHECK(rf.nr == rp.nr && (!rp.nr ||
	      !memcmp(rf.run, rp.run, rp.nr * sizeof(*rp.run))),
	      "%s: folio path runs differ from page path runs", what);

	/* seek: every page is found in the run holding it */
	for (pg = 0; pg < npages && rp.nr; pg++) {
		i = frdma_runs_find(&rp, pg);
		CHECK(rp.run[i].pgoff <= pg &&
		      pg < (u64)rp.run[i].pgoff + rp.run[i].npages,
		      "%s: find(%llu) gave run %u", what,
		      (unsigned long long)pg, i);
	}
	/* walks: everything, whole chunks and small steps; a middle part */
	check_walk(&rp, l, first, first_off, 0, length, 0);
	check_walk(&rp, l, first, first_off, 0, length, 1000);
	if (length > 2)
		check_walk(&rp, l, first, first_off, length / 3, length / 2, 0);

	frdma_runs_destroy(&rp);
	frdma_runs_destroy(&rf);
}

static void test_run_size(void)
{
	CHECK(sizeof(struct frdma_umem_run) == 16, "run is %zu bytes",
	      sizeof(struct frdma_umem_run));
}

static void test_contiguous(void)
{
	struct layout l;

	layout_init(&l);
	layout_add(&l, 5000, 3000);
	check_range(&l, 0, 3000 * PAGE_SIZE, KBATCH, 64, "contiguous");
	check_range(&l, 17, 3000 * PAGE_SIZE - 17, KBATCH, 64, "contig+17");
	layout_free(&l);
}

static void test_scattered(void)
{
	struct layout l;
	u64 i;

	layout_init(&l);
	for (i = 0; i < 2000; i++)
		layout_add(&l, 100 + 3 * i, 1);
	check_range(&l, 0, 2000 * PAGE_SIZE, KBATCH, KBATCH, "ascending gaps");
	layout_free(&l);

	layout_init(&l);
	for (i = 0; i < 2000; i++)
		layout_add(&l, 100000 - i, 1);
	check_range(&l, 0, 2000 * PAGE_SIZE, KBATCH, KBATCH, "descending");
	layout_free(&l);
}

/* Four THPs at scattered, 2 MiB-aligned PFNs. */
static void thp_layout(struct layout *l)
{
	layout_init(l);
	layout_add(l, 512 * 10, 512);
	layout_add(l, 512 * 3, 512);
	layout_add(l, 512 * 40, 512);
	layout_add(l, 512 * 7, 512);
}

static void test_thp_aligned(void)
{
	struct layout l;
	struct frdma_runs r;

	thp_layout(&l);
	check_range(&l, 0, 4 * 512 * PAGE_SIZE, KBATCH, 16, "THP aligned");
	frdma_runs_init(&r);
	fold_pages(&r, &l, 0, 2048, KBATCH);
	CHECK(r.nr == 4 && r.max_run == 512, "%u runs, max %u", r.nr, r.max_run);
	frdma_runs_destroy(&r);
	layout_free(&l);
}

static void test_thp_unaligned(void)
{
	u64 size = 4 * 512 * PAGE_SIZE;
	struct layout l;

	thp_layout(&l);
	check_range(&l, 3 * PAGE_SIZE, size - 3 * PAGE_SIZE, KBATCH, 16,
		    "THP unaligned start");
	check_range(&l, 0, size - 5 * PAGE_SIZE, KBATCH, 16,
		    "THP unaligned end");
	check_range(&l, 3 * PAGE_SIZE + 100, size - 7 * PAGE_SIZE - 300,
		    KBATCH, 16, "THP unaligned both, byte offsets");
	check_range(&l, 511 * PAGE_SIZE, 2 * PAGE_SIZE, KBATCH, 16,
		    "across one THP boundary");
	layout_free(&l);
}

static void test_batch_boundary_in_folio(void)
{
	static const u32 batches[] = { 1, 2, 7, 100, 511, KBATCH, 513 };
	struct layout l;
	char what[64];
	unsigned int i;

	thp_layout(&l);
	for (i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		snprintf(what, sizeof(what), "batch %u from page 100",
			 batches[i]);
		/* starting 100 pages in, every kernel batch ends mid-THP */
		check_range(&l, 100 * PAGE_SIZE, 1800 * PAGE_SIZE, batches[i],
			    batches[i] % 5 + 1, what);
	}
	layout_free(&l);
}

static void test_run_spans_folios(void)
{
	struct frdma_runs r;
	struct layout l;

	layout_init(&l);
	layout_add(&l, 1024, 512);	/* two adjacent THPs: one run */
	layout_add(&l, 1536, 512);
	layout_add(&l, 2048, 1);	/* a small folio right after: same run */
	layout_add(&l, 2049, 4);	/* an order-2 folio: same run */
	layout_add(&l, 9000, 16);	/* a gap: new run */
	layout_add(&l, 9016, 16);
	check_range(&l, 0, l.npages * PAGE_SIZE, KBATCH, 2, "folios merge");
	frdma_runs_init(&r);
	fold_folios(&r, &l, 0, l.npages, 1);
	CHECK(r.nr == 2 && r.run[0].npages == 1029 && r.run[1].npages == 32,
	      "%u runs (%u, %u)", r.nr, r.nr ? r.run[0].npages : 0,
	      r.nr > 1 ? r.run[1].npages : 0);
	frdma_runs_destroy(&r);
	layout_free(&l);
}

static void test_partial_pages(void)
{
	struct layout l;
	u32 np, fo;

	layout_init(&l);
	layout_add(&l, 10, 2);
	layout_add(&l, 50, 2);
	check_range(&l, 4095, 2, KBATCH, 4, "2 bytes over a page boundary");
	frdma_runs_span(4095, 2, &np, &fo);
	CHECK(np == 2 && fo == 4095, "4095+2: %u pages, off %u", np, fo);
	check_range(&l, 1, 4094, KBATCH, 4, "inside one page");
	frdma_runs_span(1, 4094, &np, &fo);
	CHECK(np == 1 && fo == 1, "1+4094: %u pages, off %u", np, fo);
	check_range(&l, 4096 + 4000, 4096 + 200, KBATCH, 4,
		    "partial first and last page, across a gap");
	layout_free(&l);
}

static void test_span(void)
{
	static const struct {
		u64 start, len;
		int err;
		u32 npages, off;
	} t[] = {
		{ 0, 0, 0, 0, 0 },
		{ 4097, 0, 0, 0, 1 },
		{ 0, 1, 0, 1, 0 },
		{ 0, 4096, 0, 1, 0 },
		{ 0, 4097, 0, 2, 0 },
		{ 4095, 1, 0, 1, 4095 },
		{ 4095, 4097, 0, 2, 4095 },
		{ 4095, 4098, 0, 3, 4095 },
		{ 100, 3 * 4096, 0, 4, 100 },
		{ U64_MAX - 4095, 4096, 0, 1, 0 },	/* the very last page */
		{ U64_MAX - 4095, 4097, -EINVAL, 0, 0 },	/* wraps */
		{ U64_MAX - 10, 20, -EINVAL, 0, 0 },
		{ 4096, U64_MAX, -EINVAL, 0, 0 },
		{ 0, ((u64)U32_MAX) << 12, 0, U32_MAX, 0 },	/* 16 TiB */
		{ 1, ((u64)U32_MAX) << 12, -EINVAL, 0, 0 },	/* one page more */
	};
	u32 np, fo;
	unsigned int i;
	int err;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = frdma_runs_span(t[i].start, t[i].len, &np, &fo);
		CHECK(err == t[i].err, "case %u: err %d, expected %d", i, err,
		      t[i].err);
		if (!err && !t[i].err)
			CHECK(np == t[i].npages && fo == t[i].off,
			      "case %u: %u pages off %u, expected %u off %u", i,
			      np, fo, t[i].npages, t[i].off);
	}
}

static void test_zero_length(void)
{
	struct frdma_umem_chunk c;
	struct frdma_umem_iter it;
	struct frdma_runs r;
	struct layout l;

	layout_init(&l);
	layout_add(&l, 77, 1);
	frdma_runs_init(&r);
	CHECK(!fold_pages(&r, &l, 0, 0, KBATCH), "fold nothing");
	frdma_runs_trim(&r);
	CHECK(r.nr == 0 && r.npages == 0 && !r.run && frdma_runs_bytes(&r) == 0,
	      "empty: %u runs", r.nr);
	frdma_runs_iter_init(&it, &r, 5, 0);
	CHECK(!frdma_umem_iter_next(&it, &c), "empty walk yields a chunk");
	frdma_runs_destroy(&r);

	/* a zero-length walk of a non-empty range */
	frdma_runs_init(&r);
	fold_pages(&r, &l, 0, 1, KBATCH);
	frdma_runs_iter_init(&it, &r, 100, 0);
	CHECK(!frdma_umem_iter_peek(&it, &c), "zero-length walk yields a chunk");
	frdma_runs_destroy(&r);
	layout_free(&l);
}

static u64 rnd_state = 0x9e3779b97f4a7c15ULL;

static u64 rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/*
 * Random layouts: folios of order 0..9, each either physically right after
 * the previous one or elsewhere; random byte ranges and batch sizes.
 */
static void test_random(void)
{
	struct layout l;
	u64 pfn, start, len, total;
	u32 order, batch;
	char what[80];
	int iter;

	for (iter = 0; iter < 200; iter++) {
		layout_init(&l);
		pfn = 1 << 20;
		while (l.npages < 3000) {
			order = rnd() % 10;
			if (rnd() % 3)
				pfn = (rnd() % (1 << 24)) & ~((1ULL << order) - 1);
			layout_add(&l, pfn, 1ULL << order);
			pfn += 1ULL << order;
		}
		total = l.npages * PAGE_SIZE;
		start = rnd() % total;
		len = rnd() % (total - start) + 1;
		batch = rnd() % 2 ? KBATCH : rnd() % 700 + 1;
		snprintf(what, sizeof(what), "random %d: start %llu len %llu batch %u",
			 iter, (unsigned long long)start,
			 (unsigned long long)len, batch);
		check_range(&l, start, len, batch, rnd() % 20 + 1, what);
		layout_free(&l);
		if (tap_checks_failed)
			break;
	}
}

static void test_seek_many_runs(void)
{
	struct frdma_umem_chunk c;
	struct frdma_umem_iter it;
	struct frdma_runs r;
	struct layout l;
	u64 i, off;

	/* 1..64-page runs with gaps, 20000 runs: walks from many offsets */
	layout_init(&l);
	for (i = 0; i < 20000; i++)
		layout_add(&l, i * 200, i % 64 + 1);
	frdma_runs_init(&r);
	fold_pages(&r, &l, 0, l.npages, KBATCH);
	CHECK(r.nr == 20000, "%u runs", r.nr);
	for (i = 0; i < 5000; i++) {
		off = rnd() % (l.npages * PAGE_SIZE);
		frdma_runs_iter_init(&it, &r, off, 1);
		CHECK(frdma_umem_iter_next(&it, &c) && c.len == 1 &&
		      page_to_pfn(c.page) == l.pfn[off >> PAGE_SHIFT] &&
		      c.page_off == (off & ~PAGE_MASK),
		      "seek to %llu", (unsigned long long)off);
		CHECK(!frdma_umem_iter_next(&it, &c), "walk of 1 byte went on");
	}
	check_walk(&r, &l, 0, 0, 12345, l.npages * PAGE_SIZE - 2 * 12345, 0);
	frdma_runs_destroy(&r);
	layout_free(&l);
}

static void test_enomem(void)
{
	struct frdma_runs r;
	struct layout l;
	long budget;
	int err;
	u64 i;

	layout_init(&l);
	/* 600 runs need 8 allocations: 8, 16, ... 1024 entries */
	for (i = 0; i < 600; i++)
		layout_add(&l, 10 * i, 2);
	for (budget = 0; budget < 8; budget++) {
		frdma_runs_init(&r);
		fake_alloc_budget = budget;
		err = fold_pages(&r, &l, 0, l.npages, KBATCH);
		fake_alloc_budget = -1;
		CHECK(err == -ENOMEM, "budget %ld: err %d", budget, err);
		/* what was folded is exactly a consistent prefix */
		check_runs(&r, &l, 0, r.npages, "after ENOMEM");
		frdma_runs_destroy(&r);
	}
	CHECK(fake_alloc_live == 0, "%ld allocations leaked", fake_alloc_live);

	/* a reserve makes folding the reserved number of runs infallible */
	frdma_runs_init(&r);
	CHECK(!frdma_runs_reserve(&r, KBATCH), "reserve");
	fake_alloc_budget = 0;
	err = fold_pages(&r, &l, 0, 2 * KBATCH, KBATCH);
	fake_alloc_budget = -1;
	CHECK(!err && r.nr == KBATCH, "after reserve: err %d, %u runs", err,
	      r.nr);
	frdma_runs_trim(&r);
	CHECK(r.cap == r.nr && frdma_runs_bytes(&r) == r.nr * 16,
	      "trim: cap %u nr %u", r.cap, r.nr);
	frdma_runs_destroy(&r);
	CHECK(fake_alloc_live == 0, "%ld allocations leaked", fake_alloc_live);
	layout_free(&l);
}

static void test_growth_estimate(void)
{
	struct frdma_runs r;
	struct layout l;
	long calls;
	u64 i;

	/* 100000 scattered pages: doubling would take 14 allocations */
	layout_init(&l);
	for (i = 0; i < 100000; i++)
		layout_add(&l, 7 * i, 1);
	frdma_runs_init(&r);
	r.expect = l.npages;
	calls = fake_alloc_calls;
	CHECK(!fold_pages(&r, &l, 0, l.npages, KBATCH), "fold");
	calls = fake_alloc_calls - calls;
	CHECK(calls <= 8, "%ld allocations", calls);
	CHECK(r.cap <= l.npages, "cap %u beyond one run per page", r.cap);
	frdma_runs_trim(&r);
	check_runs(&r, &l, 0, l.npages, "scattered with estimate");
	frdma_runs_destroy(&r);
	layout_free(&l);

	/* contiguous: the estimate stays small */
	layout_init(&l);
	layout_add(&l, 1000, 100000);
	frdma_runs_init(&r);
	r.expect = l.npages;
	CHECK(!fold_pages(&r, &l, 0, l.npages, KBATCH), "fold");
	CHECK(r.nr == 1 && r.cap == 8, "%u runs, cap %u", r.nr, r.cap);
	frdma_runs_destroy(&r);
	layout_free(&l);
}

static void test_page_limit(void)
{
	struct frdma_runs r;

	frdma_runs_init(&r);
	CHECK(!frdma_runs_add(&r, 0, U32_MAX - 1), "add 2^32 - 2 pages");
	CHECK(!frdma_runs_add(&r, 1ULL << 40, 1), "add one more");
	CHECK(frdma_runs_add(&r, 1ULL << 41, 1) == -EINVAL, "past the limit");
	CHECK(r.npages == U32_MAX && r.nr == 2 && r.max_run == U32_MAX - 1,
	      "%llu pages, %u runs", (unsigned long long)r.npages, r.nr);
	frdma_runs_destroy(&r);
}

/*
 * A range folded in parts, each into runs of its own, then joined in
 * order (umem.c's pins split across CPUs): the same runs as one fold,
 * merged across the part boundaries; a failed join changes nothing.
 */
static void test_join(void)
{
	struct frdma_runs parts[5];
	struct layout l;
	u64 cut[6], pfn;
	u32 nparts, i, order, nr;
	int iter, err;
	char what[80];

	for (iter = 0; iter < 200 && !tap_checks_failed; iter++) {
		layout_init(&l);
		pfn = 1 << 20;
		while (l.npages < 3000) {
			order = rnd() % 10;
			if (rnd() % 3)
				pfn = (rnd() % (1 << 24)) & ~((1ULL << order) - 1);
			layout_add(&l, pfn, 1ULL << order);
			pfn += 1ULL << order;
		}
		nparts = rnd() % 5 + 1;
		cut[0] = 0;
		cut[nparts] = l.npages;
		for (i = 1; i < nparts; i++)
			cut[i] = cut[i - 1] + rnd() % (l.npages - cut[i - 1]);
		for (i = 0; i < nparts; i++) {
			frdma_runs_init(&parts[i]);
			CHECK(!fold_pages(&parts[i], &l, cut[i], cut[i + 1] - cut[i],
					  KBATCH), "fold part %u", i);
		}
		for (i = 1; i < nparts; i++) {
			nr = parts[0].nr;
			fake_alloc_budget = 0;
			err = frdma_runs_join(&parts[0], &parts[i]);
			fake_alloc_budget = -1;
			if (err) {
				CHECK(err == -ENOMEM && parts[0].nr == nr &&
				      parts[0].npages == cut[i],
				      "failed join changed the runs");
				CHECK(!frdma_runs_join(&parts[0], &parts[i]),
				      "join %u", i);
			}
		}
		snprintf(what, sizeof(what), "join %d: %u parts", iter, nparts);
		check_runs(&parts[0], &l, 0, l.npages, what);
		for (i = 0; i < nparts; i++)
			frdma_runs_destroy(&parts[i]);
		layout_free(&l);
	}
	CHECK(fake_alloc_live == 0, "%ld allocations leaked", fake_alloc_live);
}

/* frdma_runs_check() finds each invariant broken on purpose. */
static void test_check_broken(void)
{
	static const struct {
		int what;
		const char *name;
	} cases[] = {
		{ 0, "an empty run" },
		{ 1, "a run starting past the previous one's end" },
		{ 2, "two physically adjacent runs" },
		{ 3, "a page count that disagrees" },
		{ 4, "a wrong max_run" },
	};
	struct frdma_runs r;
	struct layout l;
	unsigned int c;

	layout_init(&l);
	layout_add(&l, 1000, 3);
	layout_add(&l, 2000, 5);
	layout_add(&l, 3000, 2);
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		frdma_runs_init(&r);
		CHECK(!fold_pages(&r, &l, 0, l.npages, 4), "fold");
		frdma_runs_trim(&r);
		CHECK(r.nr == 3 && !frdma_runs_check(&r, l.npages),
		      "the unbroken runs pass");
		switch (cases[c].what) {
		case 0:
			r.run[1].npages = 0;
			break;
		case 1:
			r.run[2].pgoff++;
			break;
		case 2:
			r.run[1].pfn = r.run[0].pfn + r.run[0].npages;
			break;
		case 3:
			r.npages++;
			break;
		case 4:
			r.max_run--;
			break;
		}
		CHECK(frdma_runs_check(&r, l.npages),
		      "%s: not reported", cases[c].name);
		frdma_runs_destroy(&r);
	}
	layout_free(&l);
}

int main(void)
{
	TEST(test_run_size, "a run is 16 bytes");
	TEST(test_contiguous, "all contiguous: one run");
	TEST(test_scattered, "all scattered: one run per page");
	TEST(test_thp_aligned, "THP-aligned range: one run per THP");
	TEST(test_thp_unaligned, "THP-unaligned starts and ends");
	TEST(test_batch_boundary_in_folio,
	     "batch boundaries inside folios merge");
	TEST(test_run_spans_folios, "a run spans physically adjacent folios");
	TEST(test_partial_pages, "partial first and last pages");
	TEST(test_span, "zero, overflowing and unaligned lengths");
	TEST(test_zero_length, "empty range and empty walks");
	TEST(test_random, "random layouts: page and folio paths equal reference");
	TEST(test_seek_many_runs, "seek by binary search among 20000 runs");
	TEST(test_enomem, "allocation failure leaves a consistent prefix");
	TEST(test_growth_estimate, "growth sized by the expected page count");
	TEST(test_page_limit, "2^32 - 1 pages at most");
	TEST(test_join, "parts folded apart and joined: the runs of one fold");
	TEST(test_check_broken, "the invariant check reports each broken invariant");
	return tap_done();
}
