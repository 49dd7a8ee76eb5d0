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
 * intact.  Prints TAP lines without a plan (the suite numbers them) and
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

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	for (i = 0; list && i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	return ctx;
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
		printf("not ok - %s: no CMA area (boot with cma=)\n", dev);
		return 1;
	}
	ctx = open_dev(dev);
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	if (!pd) {
		printf("not ok - %s: open and allocate a PD: %s\n", dev,
		       strerror(errno));
		return 1;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		printf("not ok - %s: mmap %lu MiB: %s\n", dev, mib, strerror(errno));
		return 1;
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
			printf("ok - %s: long-term MR migrates out of CMA # SKIP %s does not register memory yet (%s)\n",
			       dev, dev, strerror(err));
			return 0;
		}
		printf("not ok - %s: ibv_reg_mr of %lu MiB: %s\n", dev, mib,
		       strerror(err));
		return 1;
	}
	during = count_in_cma(buf, npages, r, nr);
	for (i = 0; i < npages; i++)
		if (!page_intact(buf + i * PG, i)) {
			intact = false;
			break;
		}
	err = ibv_dereg_mr(mr);
	after = count_in_cma(buf, npages, r, nr);

	printf("# cma-mr %s: CMA PFNs [%#llx, %#llx): %ld of %lu pages in CMA before ibv_reg_mr, %ld while registered, %ld after dereg\n",
	       dev, (unsigned long long)r[0].start,
	       (unsigned long long)r[0].end, before, npages, during, after);
	/* The premise: the buffer starts in CMA, or nothing is shown. */
	printf("%s - %s: most of the buffer starts in CMA (%ld of %lu pages)\n",
	       before >= (long)npages / 2 ? "ok" : "not ok", dev, before,
	       npages);
	printf("%s - %s: no page of a long-term MR stays in CMA (%ld)\n",
	       during == 0 ? "ok" : "not ok", dev, during);
	printf("%s - %s: data intact after migration, dereg %s\n",
	       intact && !err ? "ok" : "not ok", dev,
	       err ? strerror(err) : "ok");
	munmap(buf, len);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return before >= (long)npages / 2 && during == 0 && intact && !err ? 0 : 1;
}
