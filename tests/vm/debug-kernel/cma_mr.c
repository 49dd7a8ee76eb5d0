// SPDX-License-Identifier: GPL-2.0
/*
 * cma_mr: a long-term memory registration (ibv_reg_mr) migrates every
 * page of the buffer out of CMA.  Runs inside the test VM on the debug
 * kernel booted with cma=SIZE (tests/vm/suites/cma), once per RDMA
 * device: frdma0, and rdma_rxe and siw as the references.
 *
 *   cma_mr DEVICE [MIB]
 *
 * A MIB-sized (default 256) anonymous buffer of 4 KiB pages is written
 * while CMA holds about half the guest's memory, so the page allocator
 * serves it from CMA; /proc/self/pagemap says which pages are there.
 * ibv_reg_mr() with local and remote write access is a FOLL_LONGTERM |
 * FOLL_WRITE pin, which must migrate them all out before pinning: with
 * the MR registered, no page of the buffer is in CMA and the data is
 * intact.  Prints TAP (tests/verbs/tap.h; the suite renumbers it) and
 * the figures as a "# cma-mr" line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../../lib/cma.h"
#include "../../verbs/device.h"
#include "../../verbs/tap.h"

#define PG		4096UL
#define MiB		(1UL << 20)

/* Pages of [buf, buf + npages pages) in CMA; -1 if pagemap failed. */
static long count_in_cma(const char *buf, unsigned long npages,
			 const struct pfn_range *r, int nr)
{
	uint64_t *pfn = calloc(npages, 8);
	unsigned long i;
	long c = 0;

	if (!pfn || pagemap_pfns((uintptr_t)buf, npages, pfn)) {
		free(pfn);
		return -1;
	}
	for (i = 0; i < npages; i++)
		c += pfn[i] && pfn_in_ranges(pfn[i], r, nr);
	free(pfn);
	return c;
}

/* Page @pg of the buffer is filled with this byte. */
static unsigned char pattern(unsigned long pg)
{
	return (unsigned char)(pg * 7 + (pg >> 8) * 13 + 0x5a);
}

/* Every byte of page @pg is pattern(@pg). */
static bool page_intact(const char *page, unsigned long pg)
{
	return page[0] == (char)pattern(pg) && !memcmp(page, page + 1, PG - 1);
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 256;
	unsigned long len = mib * MiB, npages = len / PG, i;
	const char *dev = argc > 1 ? argv[1] : NULL;
	long before, during, after;
	struct pfn_range r[CMA_MAX_AREAS];
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	bool intact = true;
	int nr, err;
	char *buf;

	if (!dev || !len) {
		fprintf(stderr, "usage: %s DEVICE [MIB]\n", argv[0]);
		return 2;
	}
	nr = cma_areas(r);
	if (!nr) {
		ok(false, "%s: no CMA area (boot with cma=)", dev);
		return tap_done();
	}
	ctx = open_device_by_name(dev);
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	if (!pd) {
		ok(false, "%s: open and allocate a PD: %s", dev, strerror(errno));
		return tap_done();
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		ok(false, "%s: mmap %lu MiB: %s", dev, mib, strerror(errno));
		return tap_done();
	}
	madvise(buf, len, MADV_NOHUGEPAGE);
	for (i = 0; i < npages; i++)
		memset(buf + i * PG, pattern(i), PG);
	before = count_in_cma(buf, npages, r, nr);

	mr = ibv_reg_mr(pd, buf, len, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!mr) {
		err = errno;
		if (err == EOPNOTSUPP || err == ENOSYS) {
			ok(true, "%s: long-term MR migrates out of CMA # SKIP %s does not register memory yet (%s)",
			   dev, dev, strerror(err));
			return tap_done();
		}
		ok(false, "%s: ibv_reg_mr of %lu MiB: %s", dev, mib,
		   strerror(err));
		return tap_done();
	}
	during = count_in_cma(buf, npages, r, nr);
	for (i = 0; i < npages; i++)
		if (!page_intact(buf + i * PG, i)) {
			intact = false;
			break;
		}
	err = ibv_dereg_mr(mr);
	after = count_in_cma(buf, npages, r, nr);

	diag("cma-mr %s: CMA PFNs [%#llx, %#llx): %ld of %lu pages in CMA before ibv_reg_mr, %ld while registered, %ld after dereg",
	     dev, (unsigned long long)r[0].start,
	     (unsigned long long)r[0].end, before, npages, during, after);
	/* The premise: the buffer starts in CMA, or nothing is shown. */
	ok(before >= (long)npages / 2,
	   "%s: most of the buffer starts in CMA (%ld of %lu pages)", dev,
	   before, npages);
	ok(during == 0, "%s: no page of a long-term MR stays in CMA (%ld)",
	   dev, during);
	ok(intact && !err, "%s: data intact after migration, dereg %s", dev,
	   err ? strerror(err) : "ok");
	munmap(buf, len);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return tap_done();
}
