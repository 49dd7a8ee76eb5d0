/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The CMA areas of the debug kernel, for the tests that check that a
 * long-term pin migrates pages out of them (umem_test --cma and
 * tests/vm/debug-kernel/cma_mr, both run by tests/vm/suites/cma).
 *
 * Their PFN ranges come from /sys/kernel/debug/cma/AREA/{base_pfn,count}
 * (CONFIG_CMA_DEBUGFS).  The kernel also logs them at boot ("cma:
 * Reserved 1024 MiB at 0x...", the physical address of base_pfn); the
 * cma suite prints both.
 */
#ifndef FRDMA_TESTS_LIB_CMA_H
#define FRDMA_TESTS_LIB_CMA_H

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "procfs.h"

#define CMA_MAX_AREAS	8

/* PFNs [start, end) */
struct pfn_range {
	uint64_t start, end;
};

/* Fill @r (CMA_MAX_AREAS entries) with the CMA areas; returns how many. */
static inline int cma_areas(struct pfn_range *r)
{
	DIR *d = opendir("/sys/kernel/debug/cma");
	char path[512];
	struct dirent *e;
	long base, count;
	int n = 0;

	while (d && n < CMA_MAX_AREAS && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/debug/cma/%s/base_pfn",
			 e->d_name);
		base = read_long(path);
		snprintf(path, sizeof(path), "/sys/kernel/debug/cma/%s/count",
			 e->d_name);
		count = read_long(path);
		if (base > 0 && count > 0) {
			r[n].start = base;
			r[n++].end = base + count;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* @pfn lies in one of the @n ranges @r. */
static inline bool pfn_in_ranges(uint64_t pfn, const struct pfn_range *r,
				 int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (pfn >= r[i].start && pfn < r[i].end)
			return true;
	return false;
}

#endif /* FRDMA_TESTS_LIB_CMA_H */
