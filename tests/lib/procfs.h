/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * What the test programs read from /proc, sysfs and debugfs: one reader
 * for each, shared by tests/umem/umem_test, tests/stress/stress and the
 * debug-kernel programs (tests/vm/debug-kernel/).
 *
 *   read_long(PATH)           a file holding one decimal number; -1 if
 *                             it cannot be opened
 *   vmpin_kb()                this process's VmPin (/proc/self/status)
 *   meminfo_kb(KEY)           a /proc/meminfo field ("MemAvailable")
 *   foll_pins(&ACQ, &REL)     /proc/vmstat's nr_foll_pin_acquired and
 *                             nr_foll_pin_released
 *   pins_outstanding()        their difference: FOLL_PIN pins held in
 *                             the whole system
 *   pins_settle(WANT, &NOW)   wait until pins_outstanding() is WANT
 *   pagemap_pfns(ADDR, N, PFN)  the PFNs of N pages of this process
 */
#ifndef FRDMA_TESTS_LIB_PROCFS_H
#define FRDMA_TESTS_LIB_PROCFS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The number in the file at @path; -1 if it cannot be opened. */
static inline long read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return atol(buf);
}

/* VmPin of this process in kB, or -1. */
static inline long vmpin_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The /proc/meminfo field @key (kB, or a count for HugePages_*), or -1. */
static inline long meminfo_kb(const char *key)
{
	char line[256];
	long kb = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			kb = atol(line + n + 1);
			break;
		}
	fclose(f);
	return kb;
}

/*
 * /proc/vmstat's FOLL_PIN counters; false (and both 0) when it cannot be
 * read.
 */
static inline bool foll_pins(uint64_t *acq, uint64_t *rel)
{
	char name[64];
	unsigned long long v;
	FILE *f = fopen("/proc/vmstat", "r");

	*acq = *rel = 0;
	if (!f)
		return false;
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			*acq = v;
		else if (!strcmp(name, "nr_foll_pin_released"))
			*rel = v;
	}
	fclose(f);
	return true;
}

/* FOLL_PIN pins outstanding in the whole system; -1 if unreadable. */
static inline int64_t pins_outstanding(void)
{
	uint64_t a, r;

	if (!foll_pins(&a, &r))
		return -1;
	return (int64_t)(a - r);
}

/*
 * The VM's 9p root and output share pin user buffers for their own I/O,
 * briefly, so a test compares the outstanding count once that background
 * I/O has settled: poll until pins_outstanding() is @want, a bounded
 * number of times (500 x 10 ms).  *@now is the last count read.
 */
static inline bool pins_settle(int64_t want, int64_t *now)
{
	int i;

	for (i = 0; i < 500; i++) {
		*now = pins_outstanding();
		if (*now == want)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * The PFNs of the @npages 4 KiB pages from @addr, from /proc/self/pagemap
 * (root only: others read zeros); 0 for a page that is not present.
 * Returns 0 or a negative errno.
 */
static inline int pagemap_pfns(unsigned long addr, unsigned long npages,
			       uint64_t *pfn)
{
	unsigned long i;
	ssize_t n;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	n = pread(fd, pfn, npages * 8, (addr / 4096) * 8);
	close(fd);
	if (n != (ssize_t)(npages * 8))
		return -EIO;
	for (i = 0; i < npages; i++)
		pfn[i] = (pfn[i] >> 63) ? pfn[i] & ((1ULL << 55) - 1) : 0;
	return 0;
}

#endif /* FRDMA_TESTS_LIB_PROCFS_H */
