// SPDX-License-Identifier: GPL-2.0
/*
 * regbench: the raw pin floor under a registration, and an MR held while a
 * command runs, for make bench (tests/bench/in-vm).  The registration
 * times themselves come from perftest's ib_reg_mr (perftest-patches/).
 *
 *   regbench pin  -b BACKING -s SIZE [-r REPS]
 *   regbench hold -d DEV -b BACKING -s SIZE -- COMMAND...
 *
 * BACKING is the memory under the buffer, always pre-faulted (written)
 * before any timing, so that the time is registration, not page faults:
 *
 *   4k       anonymous, madvise(MADV_NOHUGEPAGE): 4 KiB pages only
 *   thp      anonymous, 2 MiB aligned, madvise(MADV_HUGEPAGE)
 *   hugetlb  a memfd_create(MFD_HUGETLB | MFD_HUGE_2MB) file, mapped
 *            shared (needs /proc/sys/vm/nr_hugepages reserved)
 *
 * pin:  the range through frdma_umem_test.ko's FUT_IOC_BENCH (when
 *       the module is loaded): plain pin_user_pages_fast(FOLL_LONGTERM |
 *       FOLL_WRITE) + unpin_user_pages(), the floor any registration pays,
 *       and frdma's umem pin + release; prints
 *       "pin BACKING SIZE plain_median_ns umem_median_ns umem_meta_bytes
 *        plain_meta_bytes nr_runs REPS plain_min_ns umem_min_ns"
 * hold: registers the buffer, runs COMMAND (e.g. rdma res show mr -dd)
 *       while the MR exists, prints "hold DEV BACKING SIZE LKEY RKEY"
 *       first, then deregisters; exits with COMMAND's status.
 *
 * Each backing also reports how much of the buffer really sits in huge
 * pages ("# ... AnonHugePages ..."), so a THP figure is never a 4 KiB one
 * in disguise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#if __has_include("../umem/umem_test_uapi.h")
#include "../umem/umem_test_uapi.h"
#define HAVE_UMEM_TEST 1
#endif

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

#define HUGE_2M (2UL << 20)

struct buffer {
	void *map;		/* what to munmap */
	size_t map_len;
	void *addr;		/* the buffer itself */
	size_t len;
	int fd;
};

static void die(const char *what)
{
	fprintf(stderr, "regbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	if (n % 2)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
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
		fprintf(stderr, "regbench: bad size '%s'\n", s);
		exit(2);
	}
	return v;
}

/* Sum of a /proc/self/smaps field over the mapping that starts at addr. */
static unsigned long smaps_kb(void *addr, const char *field)
{
	char line[256], want[32];
	unsigned long kb = 0, v;
	bool in = false;
	FILE *f;

	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') &&
		    strchr(line, ' ')) {
			in = !strncmp(line, want, strlen(want));
			continue;
		}
		if (in && !strncmp(line, field, strlen(field)) &&
		    sscanf(line + strlen(field), ": %lu", &v) == 1)
			kb += v;
	}
	fclose(f);
	return kb;
}

static void prefault(struct buffer *b)
{
	volatile char *p = b->addr;
	size_t off;

	for (off = 0; off < b->len; off += 4096)
		p[off] = (char)off;
	p[b->len - 1] = 1;
}

static void buffer_get(struct buffer *b, const char *backing, size_t len)
{
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->len = len;
	if (!strcmp(backing, "4k")) {
		b->map_len = len;
		b->map = mmap(NULL, len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b->map == MAP_FAILED)
			die("mmap");
		if (madvise(b->map, len, MADV_NOHUGEPAGE))
			die("madvise(MADV_NOHUGEPAGE)");
		b->addr = b->map;
	} else if (!strcmp(backing, "thp")) {
		uintptr_t a;

		b->map_len = ((len + HUGE_2M - 1) & ~(HUGE_2M - 1)) + HUGE_2M;
		b->map = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b->map == MAP_FAILED)
			die("mmap");
		a = ((uintptr_t)b->map + HUGE_2M - 1) & ~(HUGE_2M - 1);
		b->addr = (void *)a;
		if (madvise(b->addr, (len + HUGE_2M - 1) & ~(HUGE_2M - 1),
			    MADV_HUGEPAGE))
			die("madvise(MADV_HUGEPAGE)");
	} else if (!strcmp(backing, "hugetlb")) {
		b->map_len = (len + HUGE_2M - 1) & ~(HUGE_2M - 1);
		b->fd = memfd_create("regbench", MFD_HUGETLB | MFD_HUGE_2MB);
		if (b->fd < 0)
			die("memfd_create(MFD_HUGETLB)");
		if (ftruncate(b->fd, b->map_len))
			die("ftruncate(hugetlb memfd)");
		b->map = mmap(NULL, b->map_len, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_POPULATE, b->fd, 0);
		if (b->map == MAP_FAILED)
			die("mmap(hugetlb memfd): are /proc/sys/vm/nr_hugepages reserved?");
		b->addr = b->map;
	} else {
		fprintf(stderr, "regbench: backing is 4k, thp or hugetlb\n");
		exit(2);
	}
	prefault(b);
	if (!strcmp(backing, "thp"))
		printf("# thp %zu: AnonHugePages %lu kB of %zu kB\n", len,
		       smaps_kb(b->addr, "AnonHugePages"), len >> 10);
	else if (!strcmp(backing, "4k"))
		printf("# 4k %zu: AnonHugePages %lu kB (want 0)\n", len,
		       smaps_kb(b->map, "AnonHugePages"));
}

static void buffer_put(struct buffer *b)
{
	munmap(b->map, b->map_len);
	if (b->fd >= 0)
		close(b->fd);
}

static struct ibv_pd *open_pd(const char *name, struct ibv_context **ctxp)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list)
		die("ibv_get_device_list");
	for (i = 0; i < n; i++) {
		if (!strcmp(ibv_get_device_name(list[i]), name)) {
			ctx = ibv_open_device(list[i]);
			if (!ctx)
				die("ibv_open_device");
			break;
		}
	}
	ibv_free_device_list(list);
	if (!ctx) {
		fprintf(stderr, "regbench: no RDMA device %s\n", name);
		exit(1);
	}
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		die("ibv_alloc_pd");
	*ctxp = ctx;
	return pd;
}

static const int mr_access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			     IBV_ACCESS_REMOTE_READ;

static int do_pin(const char *backing, size_t len, int reps)
{
#ifdef HAVE_UMEM_TEST
	uint64_t *plain, *umem, plain_min, umem_min;
	struct fut_bench fb;
	struct buffer b;
	int fd, i;

	fd = open(FUT_DEVICE, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "regbench: %s: %s (frdma_umem_test.ko not loaded)\n",
			FUT_DEVICE, strerror(errno));
		return 3;
	}
	/* The ioctl pins whole pages. */
	len = (len + 4095) & ~4095UL;
	buffer_get(&b, backing, len);
	plain = calloc(reps, sizeof(*plain));
	umem = calloc(reps, sizeof(*umem));
	if (!plain || !umem)
		die("calloc");
	for (i = 0; i < reps; i++) {
		memset(&fb, 0, sizeof(fb));
		fb.addr = (uintptr_t)b.addr;
		fb.len = len;
		fb.flags = FUT_WRITE | FUT_LONGTERM;
		if (ioctl(fd, FUT_IOC_BENCH, &fb))
			die("FUT_IOC_BENCH");
		if (fb.plain_err || fb.umem_err) {
			fprintf(stderr, "regbench: FUT_IOC_BENCH: plain %d, umem %d\n",
				fb.plain_err, fb.umem_err);
			return 1;
		}
		plain[i] = fb.plain_ns;
		umem[i] = fb.umem_ns;
		if (!i || plain[i] < plain_min)
			plain_min = plain[i];
		if (!i || umem[i] < umem_min)
			umem_min = umem[i];
	}
	printf("pin %s %zu %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %d %" PRIu64 " %" PRIu64 "\n",
	       backing, len, median(plain, reps), median(umem, reps),
	       (uint64_t)fb.umem_meta_bytes, (uint64_t)fb.plain_meta_bytes,
	       fb.nr_runs, reps, plain_min, umem_min);
	buffer_put(&b);
	close(fd);
	return 0;
#else
	(void)backing;
	(void)len;
	(void)reps;
	fprintf(stderr, "regbench: built without tests/umem/umem_test_uapi.h\n");
	return 3;
#endif
}

static int do_hold(const char *dev, const char *backing, size_t len,
		   char **cmd)
{
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct buffer b;
	struct ibv_mr *mr;
	int status;
	pid_t pid;

	pd = open_pd(dev, &ctx);
	buffer_get(&b, backing, len);
	mr = ibv_reg_mr(pd, b.addr, len, mr_access);
	if (!mr)
		die("ibv_reg_mr");
	printf("hold %s %s %zu %u %u\n", dev, backing, len, mr->lkey, mr->rkey);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		execvp(cmd[0], cmd);
		die(cmd[0]);
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	ibv_dereg_mr(mr);
	buffer_put(&b);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: regbench pin  -b 4k|thp|hugetlb -s SIZE [-r REPS]\n"
		"       regbench hold -d DEV -b 4k|thp|hugetlb -s SIZE -- COMMAND...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dev = NULL, *backing = "4k", *mode;
	size_t len = 4096;
	int reps = 5, c;

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "d:b:s:r:")) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'b': backing = optarg; break;
		case 's': len = parse_size(optarg); break;
		case 'r': reps = atoi(optarg); break;
		default: usage();
		}
	}
	if (reps < 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "pin"))
		return do_pin(backing, len, reps);
	if (!strcmp(mode, "hold") && dev && optind < argc)
		return do_hold(dev, backing, len, argv + optind);
	usage();
	return 2;
}
