// SPDX-License-Identifier: GPL-2.0
/*
 * memcpybench: the guest's own memcpy() bandwidth, the limit a one-copy
 * soft RDMA device can approach, for make bench (tests/bench/in-vm).
 *
 *   memcpybench -s SIZE [-t TOTAL] [-r REPS]
 *
 * Copies between two pre-faulted SIZE buffers until TOTAL bytes (default
 * 1 GiB, at least one copy) have moved, REPS times (default 5); prints
 * "memcpy SIZE median_MiB_per_s best_MiB_per_s REPS" (MiB = 2^20 bytes, the
 * unit perftest's "MB/sec" columns use).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if ((*end == 'b' || *end == 'B') && !end[1])
		end++;
	if (*end || !v) {
		fprintf(stderr, "memcpybench: bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

static void *get(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		perror("memcpybench: mmap");
		exit(1);
	}
	memset(p, 0x5a, len);
	return p;
}

int main(int argc, char **argv)
{
	size_t len = 65536, total = 1UL << 30, n, i;
	int reps = 5, c, r;
	double *rate, t0, t;
	char *src, *dst;

	while ((c = getopt(argc, argv, "s:t:r:")) != -1) {
		switch (c) {
		case 's': len = parse_size(optarg); break;
		case 't': total = parse_size(optarg); break;
		case 'r': reps = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: memcpybench -s SIZE [-t TOTAL] [-r REPS]\n");
			return 2;
		}
	}
	if (reps < 1)
		return 2;
	src = get(len);
	dst = get(len);
	rate = calloc(reps, sizeof(*rate));
	if (!rate)
		return 1;
	n = total / len ? total / len : 1;
	memcpy(dst, src, len);		/* warm */
	for (r = 0; r < reps; r++) {
		t0 = now_s();
		for (i = 0; i < n; i++) {
			src[i % len] = (char)i;
			memcpy(dst, src, len);
			/* the copy is used: the compiler may not drop it */
			__asm__ volatile("" : : "r"(dst) : "memory");
		}
		t = now_s() - t0;
		rate[r] = (double)len * n / t / (1 << 20);
	}
	qsort(rate, reps, sizeof(*rate), cmp_double);
	printf("memcpy %zu %.1f %.1f %d\n", len,
	       reps % 2 ? rate[reps / 2] : (rate[reps / 2 - 1] + rate[reps / 2]) / 2,
	       rate[reps - 1], reps);
	return 0;
}
