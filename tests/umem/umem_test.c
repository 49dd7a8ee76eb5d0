// SPDX-License-Identifier: GPL-2.0
/*
 * umem_test: user-space tests of the umem library through
 * frdma_umem_test.ko (/dev/frdma_umem_test).  Runs inside the test VM as
 * root and prints TAP.
 *
 *   umem_test [--ext4-dir DIR] [--thp-size SIZE] [--only WORDS]
 *                                                 the umem suite, or only
 *                                                 its tests named with WORDS
 *   umem_test --movable                           the ZONE_MOVABLE test
 *   umem_test --fault-inject                      allocation failures
 *   umem_test --cma                               the CMA test (cma=)
 *   umem_test --use-after-free                    a deliberate KASAN report
 *   umem_test --bench SIZE                        pin+release figures
 *
 * Every pin's runs are compared with /proc/self/pagemap: expanded page by
 * page they must give exactly the PFN sequence of the range, and they must
 * be maximal.  Every test also checks that /proc/vmstat's
 * nr_foll_pin_acquired and nr_foll_pin_released advanced by the same
 * amount across it (once the VM's own I/O pins have settled).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "../lib/cma.h"
#include "../lib/procfs.h"
#include "umem_test_uapi.h"

#define PG		4096UL
#define HPAGE		(2UL << 20)
#define MiB		(1UL << 20)
#define GiB		(1UL << 30)

static int dev = -1;
static const char *ext4_dir;
static unsigned long thp_size;
static int test_nr, test_failed;
static bool cur_failed;
static const char *cur_skip;

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define FAIL(...) do { cur_failed = true; diag(__VA_ARGS__); } while (0)
#define EXPECT(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)

/* ---- /proc helpers ---- */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		n = -errno;
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : n < 0 ? n : -EIO;
}

/* ---- the test device ---- */

static int pin(unsigned long addr, unsigned long len, unsigned int flags,
	       struct fut_pin *p)
{
	memset(p, 0, sizeof(*p));
	p->addr = addr;
	p->len = len;
	p->flags = flags;
	return ioctl(dev, FUT_IOC_PIN, p) ? -errno : 0;
}

static int release(uint32_t h, bool dirty)
{
	struct fut_release r = { .handle = h, .dirty = dirty };

	return ioctl(dev, FUT_IOC_RELEASE, &r) ? -errno : 0;
}

static struct fut_run *get_runs(uint32_t h, uint32_t nr)
{
	struct fut_run *runs = calloc(nr + 1, sizeof(*runs));
	struct fut_runs a = {
		.handle = h, .count = nr, .ptr = (uintptr_t)runs,
	};

	if (!runs || ioctl(dev, FUT_IOC_RUNS, &a) || a.count != nr) {
		free(runs);
		return NULL;
	}
	return runs;
}

static int kwrite(uint32_t h, uint32_t seed, uint64_t off, uint64_t len)
{
	struct fut_rw a = { .handle = h, .seed = seed, .offset = off,
			    .len = len };

	return ioctl(dev, FUT_IOC_WRITE, &a) ? -errno : 0;
}

static int kread(uint32_t h, uint64_t off, uint64_t len, void *buf)
{
	struct fut_rw a = { .handle = h, .offset = off, .len = len,
			    .ptr = (uintptr_t)buf };

	return ioctl(dev, FUT_IOC_READ, &a) ? -errno : 0;
}

/*
 * The runs of pin @p over [addr, addr + len) against pagemap: expanded,
 * they are the PFN sequence; they are maximal and well formed.
 */
static void check_runs(const struct fut_pin *p, unsigned long addr,
		       unsigned long len, const char *what)
{
	unsigned long first = addr & ~(PG - 1);
	unsigned long npages = len ? (addr + len - 1) / PG - addr / PG + 1 : 0;
	uint64_t *pfn = calloc(npages + 1, 8), pg = 0, k;
	struct fut_run *runs;
	uint32_t i, maxr = 0;
	int err;

	EXPECT(p->npages == npages, "%s: %llu pages pinned, expected %lu", what,
	       (unsigned long long)p->npages, npages);
	runs = get_runs(p->handle, p->nr_runs);
	if (!runs || !pfn) {
		FAIL("%s: cannot read runs", what);
		goto out;
	}
	err = pagemap_pfns(first, npages, pfn);
	if (err) {
		FAIL("%s: pagemap: %s", what, strerror(-err));
		goto out;
	}
	for (i = 0; i < p->nr_runs; i++) {
		EXPECT(runs[i].npages > 0 && runs[i].pgoff == pg,
		       "%s: run %u malformed", what, i);
		if (i)
			EXPECT(runs[i - 1].pfn + runs[i - 1].npages != runs[i].pfn,
			       "%s: runs %u, %u not maximal", what, i - 1, i);
		for (k = 0; k < runs[i].npages && pg + k < npages; k++)
			if (pfn[pg + k] != runs[i].pfn + k) {
				FAIL("%s: page %llu: run says pfn %#llx, pagemap %#llx",
				     what, (unsigned long long)(pg + k),
				     (unsigned long long)(runs[i].pfn + k),
				     (unsigned long long)pfn[pg + k]);
				goto out;
			}
		pg += runs[i].npages;
		if (runs[i].npages > maxr)
			maxr = runs[i].npages;
	}
	EXPECT(pg == npages, "%s: runs cover %llu pages of %lu", what,
	       (unsigned long long)pg, npages);
	EXPECT(maxr == p->max_run, "%s: max_run %u, runs say %u", what,
	       p->max_run, maxr);
out:
	free(runs);
	free(pfn);
}

/* Pin, check the runs against pagemap, release; returns the pin's stats. */
static int pin_check(unsigned long addr, unsigned long len, unsigned int flags,
		     const char *what, struct fut_pin *out)
{
	struct fut_pin p;
	int err;

	err = pin(addr, len, flags, &p);
	if (err) {
		FAIL("%s: pin: %s", what, strerror(-err));
		return err;
	}
	check_runs(&p, addr, len, what);
	diag("%s: %lu bytes, %u runs, largest %u pages, %llu folio pins, %llu metadata bytes",
	     what, len, p.nr_runs, p.max_run,
	     (unsigned long long)p.nr_folio_pins,
	     (unsigned long long)p.meta_bytes);
	if (out)
		*out = p;
	EXPECT(!release(p.handle, false), "%s: release", what);
	return 0;
}

/* Two pins of the same range give identical runs. */
static void same_runs(unsigned long addr, unsigned long len, unsigned int fa,
		      unsigned int fb, const char *what)
{
	struct fut_run *ra = NULL, *rb = NULL;
	struct fut_pin a, b;

	if (pin(addr, len, fa, &a)) {
		FAIL("%s: first pin failed", what);
		return;
	}
	if (pin(addr, len, fb, &b)) {
		FAIL("%s: second pin failed", what);
		release(a.handle, false);
		return;
	}
	EXPECT(a.nr_runs == b.nr_runs, "%s: %u runs vs %u", what, a.nr_runs,
	       b.nr_runs);
	if (a.nr_runs == b.nr_runs) {
		ra = get_runs(a.handle, a.nr_runs);
		rb = get_runs(b.handle, b.nr_runs);
		EXPECT(ra && rb && !memcmp(ra, rb, a.nr_runs * sizeof(*ra)),
		       "%s: the runs differ", what);
	}
	EXPECT((a.nr_folio_pins != 0) != (b.nr_folio_pins != 0),
	       "%s: folio pins %llu and %llu: expected one path each", what,
	       (unsigned long long)a.nr_folio_pins,
	       (unsigned long long)b.nr_folio_pins);
	free(ra);
	free(rb);
	release(a.handle, false);
	release(b.handle, false);
}

static void *map_aligned(unsigned long size, unsigned long align, int advice)
{
	char *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		return NULL;
	a = (char *)(((uintptr_t)p + align - 1) & ~(align - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + size, p + align - a);
	if (advice >= 0)
		madvise(a, size, advice);
	return a;
}

static void fill(void *buf, unsigned long len, unsigned char seed)
{
	unsigned long i;

	for (i = 0; i < len; i += PG)
		memset((char *)buf + i, seed + i / PG, len - i < PG ? len - i : PG);
}

/* ---- tests ---- */

/* 20 pseudo-random sub-ranges of a buffer, each checked against pagemap. */
static void random_ranges(char *buf, unsigned long len, unsigned int flags,
			  const char *what)
{
	unsigned long long x = 0x2545f4914f6cdd1dULL;
	unsigned long off, n;
	char name[128];
	struct fut_pin p;
	int i;

	for (i = 0; i < 20 && !cur_failed; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		off = x % len;
		n = (x >> 20) % (len - off) + 1;
		if (i % 2)
			n = n % (4 * MiB) + 1;
		snprintf(name, sizeof(name), "%s [%lu, +%lu)", what, off, n);
		if (pin((uintptr_t)buf + off, n, flags | (i % 3 == 0 ? FUT_REMOTE : 0),
			&p)) {
			FAIL("%s: pin failed", name);
			break;
		}
		check_runs(&p, (uintptr_t)buf + off, n, name);
		release(p.handle, false);
	}
}

static void t_anon_4k(void)
{
	unsigned long len = 32 * MiB;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE), *back;
	struct fut_pin p;
	unsigned long i;

	if (!buf) {
		FAIL("mmap");
		return;
	}
	fill(buf, len, 1);
	pin_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, "4K anon", &p);
	pin_check((uintptr_t)buf + 100, len - 300, FUT_WRITE | FUT_LONGTERM,
		  "4K anon, unaligned", NULL);
	pin_check((uintptr_t)buf + PG - 1, 2, 0, "4K anon, 2 bytes, short-term",
		  NULL);
	pin_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM | FUT_REMOTE,
		  "4K anon, foreign mm", NULL);

	/* write through the pin from the kernel, read through it */
	if (!pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p)) {
		back = malloc(3 * PG + 5);
		EXPECT(!kwrite(p.handle, 7, 1000, 3 * PG + 5), "kernel write");
		for (i = 0; i < 3 * PG + 5; i++)
			if ((unsigned char)buf[1000 + i] != fut_pattern(7, 1000 + i)) {
				FAIL("byte %lu not written through the pin", i);
				break;
			}
		EXPECT(buf[999] == (char)1 && buf[1000 + 3 * PG + 5] == (char)4,
		       "kernel write went outside its bytes");
		EXPECT(back && !kread(p.handle, 1000, 3 * PG + 5, back) &&
		       !memcmp(back, buf + 1000, 3 * PG + 5), "read through the pin");
		EXPECT(kwrite(p.handle, 7, len - 10, 11) == -EINVAL,
		       "write past the end accepted");
		free(back);
		release(p.handle, true);
	}
	munmap(buf, len);
}

static void t_thp(void)
{
	unsigned long len = thp_size, max_runs = len / HPAGE + 1;
	char *buf = map_aligned(len, HPAGE, MADV_HUGEPAGE);
	struct fut_pin p;

	if (!buf) {
		FAIL("mmap %lu", len);
		return;
	}
	fill(buf, len, 3);
	if (!pin_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, "THP", &p)) {
		EXPECT(p.nr_runs <= max_runs, "%u runs for %lu MiB of THP, more than %lu",
		       p.nr_runs, len / MiB, max_runs);
		EXPECT(p.max_run >= 512, "largest run %u pages: no THP?", p.max_run);
		EXPECT(p.meta_bytes <= 16384 || len > GiB,
		       "%llu metadata bytes", (unsigned long long)p.meta_bytes);
	}
	pin_check((uintptr_t)buf + 3 * PG + 5, len - 10 * PG, FUT_LONGTERM,
		  "THP, unaligned start and end, read-only", &p);
	EXPECT(p.nr_runs <= max_runs, "%u runs", p.nr_runs);
	random_ranges(buf, len, 0, "THP");
	munmap(buf, len);
}

static long hugepages_reserve(long more)
{
	const char *path = "/proc/sys/vm/nr_hugepages";
	long now = read_long(path);
	char s[32];

	snprintf(s, sizeof(s), "%ld", now + more);
	write_file(path, s);
	return read_long(path) - now;
}

static void hugepages_unreserve(long n)
{
	const char *path = "/proc/sys/vm/nr_hugepages";
	char s[32];

	snprintf(s, sizeof(s), "%ld", read_long(path) - n);
	write_file(path, s);
}

static void t_hugetlb(void)
{
	unsigned long len = 16 * MiB;
	long got = hugepages_reserve(8);
	struct fut_pin p;
	char *buf;

	if (got < 8) {
		FAIL("only %ld of 8 huge pages could be reserved", got);
		goto out;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (buf == MAP_FAILED) {
		FAIL("mmap MAP_HUGETLB: %s", strerror(errno));
		goto out;
	}
	fill(buf, len, 5);
	if (!pin_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		       "hugetlb 2M", &p))
		EXPECT(p.nr_runs <= 8 && p.max_run >= 512, "%u runs, max %u",
		       p.nr_runs, p.max_run);
	pin_check((uintptr_t)buf + HPAGE - PG + 7, 2 * PG, FUT_WRITE | FUT_LONGTERM,
		  "hugetlb 2M, across a huge page boundary", NULL);
	munmap(buf, len);
out:
	hugepages_unreserve(got);
}

/* Whether frdma_umem was built with the memfd folio path (6.11+ kernels). */
static bool folio_path(void)
{
	char c = 'N';
	FILE *f = fopen("/sys/module/frdma_umem/parameters/folio_path", "r");

	if (f) {
		if (fscanf(f, " %c", &c) != 1)
			c = 'N';
		fclose(f);
	}
	return c == 'Y';
}

static void memfd_case(bool huge)
{
	const char *what = huge ? "memfd hugetlb" : "memfd shmem";
	unsigned long len = 8 * MiB, i;
	long got = 0;
	struct fut_pin p;
	char *buf = MAP_FAILED;
	int fd;

	if (!folio_path()) {
		cur_skip = "this kernel has no memfd_pin_folios(): memfd ranges take the generic path";
		return;
	}
	if (huge) {
		got = hugepages_reserve(4);
		if (got < 4) {
			FAIL("only %ld of 4 huge pages could be reserved", got);
			goto out;
		}
	}
	fd = memfd_create("umem_test", huge ? MFD_HUGETLB : 0);
	if (fd < 0 || ftruncate(fd, len)) {
		FAIL("memfd: %s", strerror(errno));
		goto out;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (buf == MAP_FAILED) {
		FAIL("mmap: %s", strerror(errno));
		goto out;
	}
	fill(buf, len, 9);
	if (!pin_check((uintptr_t)buf, len,
		       FUT_WRITE | FUT_LONGTERM | FUT_FOLIO_ONLY, what, &p)) {
		EXPECT(p.nr_folio_pins == (huge ? 4 : len / PG),
		       "%s: %llu folio pins", what,
		       (unsigned long long)p.nr_folio_pins);
	}
	same_runs((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM | FUT_FOLIO_ONLY,
		  FUT_WRITE | FUT_LONGTERM | FUT_NO_FOLIO, what);
	/* a sub-range entering its first folio at an offset */
	pin_check((uintptr_t)buf + MiB + 100, 3 * MiB, FUT_LONGTERM | FUT_FOLIO_ONLY,
		  huge ? "memfd hugetlb, unaligned" : "memfd shmem, unaligned", &p);
	if (huge)
		EXPECT(p.nr_folio_pins == 3, "%llu folio pins for 3 MiB from 1 MiB + 100",
		       (unsigned long long)p.nr_folio_pins);
	same_runs((uintptr_t)buf + MiB + 100, 3 * MiB, FUT_FOLIO_ONLY,
		  FUT_NO_FOLIO, "sub-range");
	pin_check((uintptr_t)buf, len, FUT_WRITE | FUT_FOLIO_ONLY | FUT_REMOTE,
		  "folio path, foreign mm", NULL);
	random_ranges(buf, len, FUT_FOLIO_ONLY, what);

	/* write through the folio pin, release dirty, the process sees it */
	if (!pin((uintptr_t)buf, len, FUT_WRITE | FUT_FOLIO_ONLY, &p)) {
		EXPECT(!kwrite(p.handle, 3, 5, len - 10), "kernel write");
		EXPECT(!release(p.handle, true), "dirty release");
		for (i = 5; i < len - 5; i++)
			if ((unsigned char)buf[i] != fut_pattern(3, i)) {
				FAIL("%s: byte %lu not written", what, i);
				break;
			}
	} else {
		FAIL("%s: pin for writing", what);
	}
out:
	if (buf != MAP_FAILED)
		munmap(buf, len);
	if (got)
		hugepages_unreserve(got);
}

static void t_memfd_shmem(void)
{
	memfd_case(false);
}

static void t_memfd_hugetlb(void)
{
	memfd_case(true);
}

/* HugePages_Rsvd and HugePages_Free must be @rsvd and @free. */
static void huge_counts(long rsvd, long free, const char *what,
			const char *when)
{
	long r = meminfo_kb("HugePages_Rsvd"), f = meminfo_kb("HugePages_Free");

	EXPECT(r == rsvd && f == free,
	       "%s, %s: HugePages_Rsvd %ld, HugePages_Free %ld; expected %ld, %ld",
	       what, when, r, f, rsvd, free);
}

/*
 * A writable long-term pin of untouched MAP_SHARED | MAP_NORESERVE hugetlb
 * memory of file @fd: the pages come from the fault path, which takes no
 * reservation for a MAP_NORESERVE mapping, so HugePages_Rsvd does not move
 * (memfd_pin_folios() on 6.12 would allocate the folios taking a
 * reservation nobody made: HugePages_Rsvd underflows, or the debug kernel
 * BUGs), and HugePages_Free drops by the pages pinned until the file goes.
 */
static void hugetlb_unfaulted_case(int fd, bool touch_first, const char *what)
{
	unsigned long len = 2 * HPAGE, i;
	long rsvd0 = meminfo_kb("HugePages_Rsvd");
	long free0 = meminfo_kb("HugePages_Free");
	struct fut_pin p;
	char *buf;
	int err;

	if (ftruncate(fd, len)) {
		FAIL("%s: ftruncate: %s", what, strerror(errno));
		return;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (buf == MAP_FAILED) {
		FAIL("%s: mmap: %s", what, strerror(errno));
		return;
	}
	huge_counts(rsvd0, free0, what, "mapped");
	if (touch_first) {
		buf[0] = 1;
		huge_counts(rsvd0, free0 - 1, what, "first huge page touched");
	}
	err = pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p);
	if (err) {
		FAIL("%s: pin: %s", what, strerror(-err));
	} else {
		huge_counts(rsvd0, free0 - 2, what, "pinned");
		EXPECT(p.nr_folio_pins == 0, "%s: %llu folio pins: not the generic path",
		       what, (unsigned long long)p.nr_folio_pins);
		check_runs(&p, (uintptr_t)buf, len, what);
		EXPECT(!kwrite(p.handle, 7, 0, len), "%s: kernel write", what);
		EXPECT(!release(p.handle, true), "%s: release", what);
		for (i = 0; i < len; i++)
			if ((unsigned char)buf[i] != fut_pattern(7, i)) {
				FAIL("%s: byte %lu not written", what, i);
				break;
			}
		huge_counts(rsvd0, free0 - 2, what, "released, still mapped");
	}
	munmap(buf, len);
	if (ftruncate(fd, 0))
		FAIL("%s: truncate: %s", what, strerror(errno));
	huge_counts(rsvd0, free0, what, "truncated");
}

static void t_hugetlb_unfaulted(void)
{
	const char *mnt = "/tmp/umem-hugetlbfs";
	char path[64];
	long got = hugepages_reserve(4);
	bool mounted = false;
	int fd;

	if (got < 4) {
		FAIL("only %ld of 4 huge pages could be reserved", got);
		goto out;
	}
	fd = memfd_create("umem_test", MFD_HUGETLB);
	if (fd < 0) {
		FAIL("memfd_create(MFD_HUGETLB): %s", strerror(errno));
	} else {
		hugetlb_unfaulted_case(fd, false, "MFD_HUGETLB memfd");
		hugetlb_unfaulted_case(fd, true,
				       "MFD_HUGETLB memfd, first huge page touched");
		close(fd);
	}
	mkdir(mnt, 0700);
	if (mount("none", mnt, "hugetlbfs", 0, NULL)) {
		FAIL("mount hugetlbfs: %s", strerror(errno));
		goto out;
	}
	mounted = true;
	snprintf(path, sizeof(path), "%s/umem", mnt);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		FAIL("%s: %s", path, strerror(errno));
	} else {
		unlink(path);
		hugetlb_unfaulted_case(fd, false, "hugetlbfs file");
		close(fd);
	}
out:
	if (mounted)
		umount(mnt);
	rmdir(mnt);
	if (got > 0)
		hugepages_unreserve(got);
}

/*
 * F_SEAL_WRITE racing a writable pin of a memfd: one thread pins the
 * mapping for writing while another unmaps it and seals the file against
 * writes.  The two never both succeed: the pin keeps the file writable
 * until it is released, or finds the mapping gone.
 */
struct seal_race {
	char *buf;
	unsigned long len;
	int fd;
	unsigned int delay;
	volatile int go;
	int seal_err;
};

static void *seal_race_thread(void *arg)
{
	struct seal_race *r = arg;
	volatile unsigned int i;

	while (!r->go)
		;
	for (i = 0; i < r->delay; i++)
		;
	munmap(r->buf, r->len);
	r->seal_err = fcntl(r->fd, F_ADD_SEALS, F_SEAL_WRITE) ? -errno : 0;
	return NULL;
}

static void t_seal_race(void)
{
	unsigned int iters = 2000, n, both = 0, pinned = 0, sealed = 0;
	struct seal_race r = { .len = 16 * PG };
	struct fut_pin p;
	pthread_t t;
	int err;

	/*
	 * Without the folio path the pin does not keep the file writable:
	 * the seal then waits for the pinned pages (about 150 ms) before it
	 * fails, every iteration the pin wins.  Fewer iterations cover the
	 * same window there.
	 */
	if (!folio_path())
		iters = 200;
	srand(1);
	for (n = 0; n < iters && !both; n++) {
		r.fd = memfd_create("umem_seal", MFD_ALLOW_SEALING);
		if (r.fd < 0 || ftruncate(r.fd, r.len)) {
			FAIL("memfd: %s", strerror(errno));
			break;
		}
		r.buf = mmap(NULL, r.len, PROT_READ | PROT_WRITE, MAP_SHARED,
			     r.fd, 0);
		if (r.buf == MAP_FAILED) {
			FAIL("mmap: %s", strerror(errno));
			close(r.fd);
			break;
		}
		fill(r.buf, r.len, 1);
		r.go = 0;
		r.delay = rand() % 4000;
		if (pthread_create(&t, NULL, seal_race_thread, &r)) {
			FAIL("pthread_create");
			munmap(r.buf, r.len);
			close(r.fd);
			break;
		}
		r.go = 1;
		err = pin((uintptr_t)r.buf, r.len, FUT_WRITE | FUT_LONGTERM, &p);
		pthread_join(t, NULL);
		if (!err && !r.seal_err) {
			both++;
			FAIL("iteration %u: the pin and F_SEAL_WRITE both succeeded",
			     n);
		}
		pinned += !err;
		sealed += !r.seal_err;
		EXPECT(err || r.seal_err == -EBUSY,
		       "iteration %u: F_SEAL_WRITE under a pin: %d, expected EBUSY",
		       n, r.seal_err);
		if (!err) {
			release(p.handle, false);
			/* released: the file can be sealed now */
			EXPECT(!fcntl(r.fd, F_ADD_SEALS, F_SEAL_WRITE),
			       "iteration %u: F_SEAL_WRITE after release: %s", n,
			       strerror(errno));
		}
		close(r.fd);
	}
	diag("%u iterations: %u pins succeeded, %u seals succeeded", n, pinned,
	     sealed);
}

static void t_folio_path_refusals(void)
{
	char *anon = map_aligned(MiB, HPAGE, -1);
	struct fut_pin p;
	int err;

	fill(anon, MiB, 1);
	err = pin((uintptr_t)anon, MiB, FUT_FOLIO_ONLY, &p);
	EXPECT(err == -EINVAL, "folio path on private anon memory: %d", err);
	if (!err)
		release(p.handle, false);
	err = pin((uintptr_t)anon, MiB, FUT_FOLIO_ONLY | FUT_NO_FOLIO, &p);
	EXPECT(err == -EINVAL, "contradictory flags: %d", err);
	if (!err)
		release(p.handle, false);
	munmap(anon, MiB);
}

static int set_ipc_lock(bool on)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	if (on)
		d[0].effective |= 1U << CAP_IPC_LOCK;
	else
		d[0].effective &= ~(1U << CAP_IPC_LOCK);
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static void t_memlock(void)
{
	struct rlimit old, lim = { MiB, MiB };
	unsigned long len = 4 * MiB;
	int64_t out0, out1;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	struct fut_pin p, q;
	long pin0;
	int err;

	fill(buf, len, 2);
	getrlimit(RLIMIT_MEMLOCK, &old);
	if (setrlimit(RLIMIT_MEMLOCK, &lim)) {
		FAIL("setrlimit: %s", strerror(errno));
		return;
	}
	pin0 = vmpin_kb();

	/* CAP_IPC_LOCK is exempt from the limit, but still charged */
	err = pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p);
	EXPECT(!err, "over the limit with CAP_IPC_LOCK: %s", strerror(-err));
	if (!err) {
		EXPECT(vmpin_kb() == pin0 + (long)(len / 1024), "VmPin %ld kB, expected %ld",
		       vmpin_kb(), pin0 + (long)(len / 1024));
		release(p.handle, false);
	}

	err = set_ipc_lock(false);
	if (err) {
		FAIL("dropping CAP_IPC_LOCK: %s", strerror(-err));
		goto out;
	}
	pins_settle(0, &out0);
	err = pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p);
	EXPECT(err == -ENOMEM, "4 MiB over a 1 MiB limit: %s", strerror(-err));
	if (!err)
		release(p.handle, false);
	EXPECT(pins_settle(out0, &out1), "pins outstanding after a refused pin: %lld, was %lld",
	       (long long)out1, (long long)out0);
	EXPECT(vmpin_kb() == pin0, "VmPin %ld kB after ENOMEM, was %ld", vmpin_kb(),
	       pin0);

	/* within the limit; then a second pin that would exceed it */
	err = pin((uintptr_t)buf, 512 * 1024, FUT_WRITE | FUT_LONGTERM, &p);
	EXPECT(!err, "512 KiB within 1 MiB: %s", strerror(-err));
	EXPECT(vmpin_kb() == pin0 + 512, "VmPin %ld kB, expected %ld", vmpin_kb(),
	       pin0 + 512);
	err = pin((uintptr_t)buf + MiB, 768 * 1024, FUT_WRITE, &q);
	EXPECT(err == -ENOMEM, "768 KiB more: %s", strerror(-err));
	if (!err)
		release(q.handle, false);
	EXPECT(vmpin_kb() == pin0 + 512, "VmPin %ld kB after refused second pin",
	       vmpin_kb());
	release(p.handle, false);
	EXPECT(vmpin_kb() == pin0, "VmPin %ld kB after release, was %ld",
	       vmpin_kb(), pin0);
	EXPECT(!set_ipc_lock(true), "restoring CAP_IPC_LOCK");
out:
	setrlimit(RLIMIT_MEMLOCK, &old);
	munmap(buf, len);
}

static void efault_case(char *buf, unsigned long len, unsigned int flags,
			const char *what)
{
	long pin0 = vmpin_kb();
	int64_t out0, out1;
	struct fut_pin p;
	int err;

	pins_settle(0, &out0);
	err = pin((uintptr_t)buf, len, flags, &p);
	EXPECT(err == -EFAULT, "%s: %s, expected EFAULT", what, strerror(-err));
	if (!err)
		release(p.handle, false);
	EXPECT(pins_settle(out0, &out1), "%s: %lld pins outstanding, was %lld", what,
	       (long long)out1, (long long)out0);
	EXPECT(vmpin_kb() == pin0, "%s: VmPin changed", what);
}

static void t_holes(void)
{
	unsigned long len = 2 * MiB;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);

	fill(buf, len, 1);
	munmap(buf + MiB, PG);
	efault_case(buf, len, FUT_WRITE | FUT_LONGTERM, "hole");
	efault_case(buf, len, FUT_LONGTERM | FUT_REMOTE, "hole, foreign mm");
	efault_case(buf + MiB, 1, 0, "a single unmapped byte");
	mmap(buf + MiB, PG, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	mprotect(buf + MiB + 100 * PG, PG, PROT_NONE);
	efault_case(buf, len, FUT_WRITE | FUT_LONGTERM, "PROT_NONE page");
	efault_case(buf, len, 0, "PROT_NONE page, read-only short-term");
	mprotect(buf + MiB + 100 * PG, PG, PROT_READ);
	efault_case(buf, len, FUT_WRITE, "read-only page pinned for writing");
	munmap(buf, len);

	/* a hole after several whole batches have been pinned and folded */
	len = 16 * MiB;
	buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	fill(buf, len, 1);
	munmap(buf + 13 * MiB + 5 * PG, PG);
	efault_case(buf, len, FUT_WRITE | FUT_LONGTERM, "hole after 3333 pages");
	efault_case(buf, len, FUT_REMOTE, "hole after 3333 pages, foreign mm");
	munmap(buf, len);
}

static void t_zero_and_overflow(void)
{
	struct fut_pin p;
	long pin0 = vmpin_kb();
	int err;

	err = pin(0x10000, 0, FUT_WRITE | FUT_LONGTERM, &p);
	EXPECT(!err && p.nr_runs == 0 && p.npages == 0, "zero length: %s, %u runs",
	       strerror(-err), p.nr_runs);
	EXPECT(vmpin_kb() == pin0, "zero length charged");
	if (!err)
		release(p.handle, false);
	err = pin(~0UL - 10, 20, 0, &p);
	EXPECT(err == -EINVAL, "wrapping range: %s", strerror(-err));
	err = pin(PG, ~0UL, 0, &p);
	EXPECT(err == -EINVAL, "huge length: %s", strerror(-err));
}

static void t_file_longterm_write(void)
{
	char path[512];
	struct fut_bench b = { 0 };
	struct fut_pin p;
	char *buf;
	int fd, err;

	if (!ext4_dir) {
		FAIL("no --ext4-dir: an ordinary file system is needed");
		return;
	}
	snprintf(path, sizeof(path), "%s/longterm", ext4_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, MiB)) {
		FAIL("%s: %s", path, strerror(errno));
		return;
	}
	buf = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (buf == MAP_FAILED) {
		FAIL("mmap: %s", strerror(errno));
		return;
	}
	fill(buf, MiB, 4);
	err = pin((uintptr_t)buf, MiB, FUT_WRITE | FUT_LONGTERM, &p);
	if (!err)
		release(p.handle, false);
	b.addr = (uintptr_t)buf;
	b.len = MiB;
	b.flags = FUT_WRITE | FUT_LONGTERM;
	EXPECT(!ioctl(dev, FUT_IOC_BENCH, &b), "plain pin: %s", strerror(errno));
	diag("writable long-term pin of an ext4 mapping: umem %d (%s), plain pin_user_pages_fast %d",
	     err, strerror(-err), b.plain_err);
	/* Kernels before 6.5 (Debian's 6.1) still allow it: then so must umem. */
	EXPECT(err != 0 || b.plain_err == 0,
	       "writable long-term pin of a file mapping accepted");
	EXPECT(err == b.plain_err && b.umem_err == b.plain_err,
	       "umem says %d, the kernel says %d", err, b.plain_err);
	/* read-only long-term and writable short-term pins are allowed */
	pin_check((uintptr_t)buf, MiB, FUT_LONGTERM, "ext4 file, read-only long-term",
		  NULL);
	pin_check((uintptr_t)buf, MiB, FUT_WRITE, "ext4 file, writable short-term",
		  NULL);
	munmap(buf, MiB);
}

static void t_coherence_untouched(void)
{
	unsigned long len = 64 * PG;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	char *back = malloc(len);
	struct fut_pin p;
	int err;

	/* never touched: a read-only long-term pin must not pin the zero page */
	err = pin((uintptr_t)buf, len, FUT_LONGTERM, &p);
	if (err) {
		FAIL("pin: %s", strerror(-err));
		return;
	}
	fill(buf, len, 0x41);
	check_runs(&p, (uintptr_t)buf, len, "untouched anon, then written");
	EXPECT(!kread(p.handle, 0, len, back) && !memcmp(back, buf, len),
	       "the process's writes are not seen through the pin");
	release(p.handle, false);
	free(back);
	munmap(buf, len);
}

static void fork_case(unsigned int flags, const char *what)
{
	unsigned long len = 64 * PG;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	char *back = malloc(len), *want = malloc(len);
	struct fut_pin p;
	pid_t pid;
	int st;

	fill(buf, len, 0x10);
	memcpy(want, buf, len);
	if (pin((uintptr_t)buf, len, flags, &p)) {
		FAIL("%s: pin", what);
		return;
	}
	pid = fork();
	if (pid == 0) {
		memset(buf, 'C', len);
		_exit(buf[len - 1] == 'C' ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	EXPECT(WIFEXITED(st) && !WEXITSTATUS(st), "%s: child failed", what);
	EXPECT(!kread(p.handle, 0, len, back) && !memcmp(back, want, len),
	       "%s: the child's writes are seen through the parent's pin", what);
	memset(buf, 'P', len);
	EXPECT(!kread(p.handle, 0, len, back) && !memcmp(back, buf, len),
	       "%s: the parent's writes are not seen through its pin", what);
	check_runs(&p, (uintptr_t)buf, len, what);
	release(p.handle, false);
	free(back);
	free(want);
	munmap(buf, len);
}

static void t_fork(void)
{
	fork_case(FUT_WRITE | FUT_LONGTERM, "fork, writable long-term pin");
	fork_case(FUT_LONGTERM, "fork, read-only long-term pin");
}

static void t_dirty_release_ext4(void)
{
	unsigned long len = 4 * PG, i;
	char path[512], *buf, *back = calloc(1, len);
	struct fut_pin p;
	int fd;

	if (!ext4_dir) {
		FAIL("no --ext4-dir: an ordinary file system is needed");
		return;
	}
	snprintf(path, sizeof(path), "%s/dirty", ext4_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || pwrite(fd, back, len, 0) != (ssize_t)len || fsync(fd)) {
		FAIL("%s: %s", path, strerror(errno));
		return;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (buf == MAP_FAILED) {
		FAIL("mmap: %s", strerror(errno));
		return;
	}
	if (pin((uintptr_t)buf + 10, len - 20, FUT_WRITE, &p)) {
		FAIL("short-term writable pin: %s", strerror(errno));
		return;
	}
	EXPECT(!kwrite(p.handle, 11, 0, len - 20), "kernel write");
	EXPECT(!release(p.handle, true), "dirty release");
	munmap(buf, len);
	sync();
	EXPECT(!write_file("/proc/sys/vm/drop_caches", "3"), "drop_caches");
	fd = open(path, O_RDONLY);
	EXPECT(fd >= 0 && pread(fd, back, len, 0) == (ssize_t)len, "read back");
	close(fd);
	for (i = 10; i < len - 10; i++)
		if ((unsigned char)back[i] != fut_pattern(11, i - 10)) {
			FAIL("file byte %lu is %#x after sync and drop_caches", i,
			     (unsigned char)back[i]);
			break;
		}
	EXPECT(!back[0] && !back[len - 1], "bytes outside the pin changed");
	free(back);
}

static void t_munmap_while_pinned(void)
{
	unsigned long len = MiB;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE), *back = malloc(len);
	char *want = malloc(len);
	struct fut_pin p;

	fill(buf, len, 0x20);
	memcpy(want, buf, len);
	if (pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p)) {
		FAIL("pin");
		return;
	}
	munmap(buf, len);
	EXPECT(!kread(p.handle, 0, len, back) && !memcmp(back, want, len),
	       "pinned pages changed after munmap");
	EXPECT(!kwrite(p.handle, 1, 0, len), "write after munmap");
	EXPECT(!release(p.handle, true), "release after munmap");
	free(back);
	free(want);
}

static void t_exit_with_pins(void)
{
	unsigned long len = MiB;
	pid_t pid;
	int st;

	pid = fork();
	if (pid == 0) {
		char *buf = map_aligned(len, HPAGE, -1);
		int fd = open(FUT_DEVICE, O_RDWR);
		struct fut_pin p = { .addr = (uintptr_t)buf, .len = len,
				     .flags = FUT_WRITE | FUT_LONGTERM };

		fill(buf, len, 1);
		close(dev);
		if (fd < 0 || ioctl(fd, FUT_IOC_PIN, &p))
			_exit(1);
		p.addr += PG;
		p.flags = FUT_FOLIO_ONLY;
		_exit(2 + (ioctl(fd, FUT_IOC_PIN, &p) == 0)); /* exit pinned */
	}
	waitpid(pid, &st, 0);
	EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 2, "child: status %#x", st);
}

/*
 * Pins of 32 MiB and more are split into parts of at least 16 MiB, up to
 * four per CPU (at most 16 CPUs), pinned at the same time by the pinning
 * task and helpers on the other CPUs; the helpers never fault pages in,
 * and leave what they cannot pin to the pinning task.  Every layout must
 * still give exactly the pagemap's runs, maximal across part boundaries,
 * and every failure must leave nothing pinned or charged.
 */
static unsigned int parts_expected(unsigned long addr, unsigned long len)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long n = ((addr + len - 1) / PG - addr / PG + 1) / (16 * MiB / PG);

	if (cpus > 16)
		cpus = 16;
	if (cpus < 2 || !n)
		return 1;
	return n > 4UL * cpus ? 4 * cpus : n;
}

static void parts_check(unsigned long addr, unsigned long len,
			unsigned int flags, const char *what)
{
	struct fut_pin p;

	if (pin_check(addr, len, flags, what, &p))
		return;
	EXPECT(p.nr_parts == parts_expected(addr, len),
	       "%s: %u parts, expected %u", what, p.nr_parts,
	       parts_expected(addr, len));
}

/*
 * A task whose cpuset restricts its memory nodes pins long-term alone: the
 * pages a long-term pin migrates are allocated under the cpuset of the
 * task that runs GUP, and helpers are kworkers of the root cpuset.  Needs
 * two memory nodes (the umem suite boots with numa=fake=2).  In a child
 * moved to a cgroup with cpuset.mems 0: a long-term pin of 64 MiB is one
 * part, a short-term one is still split.
 */
#define CG_ROOT		"/sys/fs/cgroup"
#define CG_DIR		CG_ROOT "/umem-cpuset"

static int cpuset_child(void)
{
	unsigned long len = 64 * MiB;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	struct fut_pin p;
	int rc = 0;

	if (!buf)
		return 2;
	fill(buf, len, 4);
	if (write_file(CG_DIR "/cgroup.procs", "0")) {
		diag("cannot join %s", CG_DIR);
		return 2;
	}
	if (pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p))
		return 2;
	if (p.nr_parts != 1) {
		diag("long-term pin with cpuset.mems 0: %u parts, expected 1",
		     p.nr_parts);
		rc = 1;
	}
	release(p.handle, false);
	if (pin((uintptr_t)buf, len, FUT_WRITE, &p))
		return 2;
	if (p.nr_parts != parts_expected((uintptr_t)buf, len)) {
		diag("short-term pin with cpuset.mems 0: %u parts, expected %u",
		     p.nr_parts, parts_expected((uintptr_t)buf, len));
		rc = 1;
	}
	release(p.handle, false);
	return rc;
}

static void t_cpuset_mems(void)
{
	char nodes[64] = "";
	int status, fd;
	ssize_t n;
	pid_t pid;

	fd = open("/sys/devices/system/node/has_memory", O_RDONLY);
	n = fd >= 0 ? read(fd, nodes, sizeof(nodes) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || !strpbrk(nodes, ",-")) {
		cur_skip = "one memory node (boot with numa=fake=2)";
		return;
	}
	if (access(CG_ROOT "/cgroup.controllers", F_OK) &&
	    mount("none", CG_ROOT, "cgroup2", 0, NULL)) {
		FAIL("mount cgroup2: %s", strerror(errno));
		return;
	}
	if (write_file(CG_ROOT "/cgroup.subtree_control", "+cpuset") ||
	    (mkdir(CG_DIR, 0755) && errno != EEXIST) ||
	    write_file(CG_DIR "/cpuset.mems", "0")) {
		FAIL("cannot set up a cpuset cgroup with mems 0");
		rmdir(CG_DIR);
		return;
	}
	fflush(stdout);
	pid = fork();
	if (!pid)
		_exit(cpuset_child());
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		FAIL("fork: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		FAIL("child: status %#x", status);
	if (rmdir(CG_DIR))
		FAIL("rmdir %s: %s", CG_DIR, strerror(errno));
}

static void t_parts(void)
{
	unsigned long len = 64 * MiB, pg, i;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE), *back;
	struct fut_pin p;
	pid_t pid;
	int st;

	if (!buf) {
		FAIL("mmap");
		return;
	}
	if (parts_expected(0, len) < 2)
		diag("one CPU: pins are not split, the test shows little");
	/* nothing faulted in: the pinning task pins every part */
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		    "untouched, parts");
	munmap(buf, len);

	buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	/* every other MiB faulted in, backwards: helpers stop midway */
	for (pg = len / PG; pg-- > 0;)
		if (pg / 256 % 2)
			buf[pg * PG] = 1;
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		    "half touched, parts");
	/* all faulted in, backwards: scattered PFNs, thousands of runs */
	for (pg = len / PG; pg-- > 0;)
		buf[pg * PG] = 2;
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		    "scattered, parts");
	parts_check((uintptr_t)buf + 100, len - 300, FUT_WRITE | FUT_LONGTERM,
		    "scattered, unaligned, parts");
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM | FUT_REMOTE,
		    "scattered, foreign mm, parts");
	parts_check((uintptr_t)buf, len, FUT_LONGTERM, "read-only, parts");

	/* after fork every page is COW: helpers cannot unshare, the task can */
	fill(buf, len, 3);
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	parts_check((uintptr_t)buf, len, FUT_LONGTERM, "COW, read-only, parts");
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		    "COW, writable, parts");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);

	/* written and read through a split pin, across the part boundary */
	if (!pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p)) {
		back = malloc(4 * MiB);
		EXPECT(!kwrite(p.handle, 9, len / 2 - 2 * MiB, 4 * MiB),
		       "kernel write");
		for (i = 0; i < 4 * MiB; i++)
			if ((unsigned char)buf[len / 2 - 2 * MiB + i] !=
			    fut_pattern(9, len / 2 - 2 * MiB + i)) {
				FAIL("byte %lu not written through the pin", i);
				break;
			}
		EXPECT(back && !kread(p.handle, len / 2 - 2 * MiB, 4 * MiB, back) &&
		       !memcmp(back, buf + len / 2 - 2 * MiB, 4 * MiB),
		       "read through the pin");
		free(back);
		release(p.handle, true);
	}

	/* a failure in the last part, or in the first, fails the whole pin */
	mprotect(buf + len - 3 * MiB, PG, PROT_NONE);
	efault_case(buf, len, FUT_WRITE | FUT_LONGTERM, "PROT_NONE page in the last part");
	efault_case(buf, len, FUT_WRITE | FUT_LONGTERM | FUT_REMOTE,
		    "PROT_NONE page in the last part, foreign mm");
	mprotect(buf + len - 3 * MiB, PG, PROT_READ | PROT_WRITE);
	munmap(buf + 5 * MiB, PG);
	efault_case(buf, len, FUT_WRITE | FUT_LONGTERM, "hole in the first part");
	munmap(buf, len);

	/* THP: parts split on 2 MiB boundaries, runs merged across them */
	buf = map_aligned(len, HPAGE, MADV_HUGEPAGE);
	fill(buf, len, 4);
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, "THP, parts");
	parts_check((uintptr_t)buf + 3 * PG, len - 5 * PG,
		    FUT_WRITE | FUT_LONGTERM, "THP, unaligned, parts");
	munmap(buf, len);
}

/*
 * max_cpus takes 1 to 16 and refuses anything else; 1 keeps a large pin in
 * one part on the calling CPU.
 */
#define MAX_CPUS_PARAM	"/sys/module/frdma_umem/parameters/max_cpus"

static void t_max_cpus(void)
{
	static const char *const bad[] = { "0", "17", "-1", "x" };
	unsigned long len = 64 * MiB;
	long was = read_long(MAX_CPUS_PARAM);
	struct fut_pin p;
	unsigned int i;
	char s[32];
	char *buf;
	int err;

	if (was < 1) {
		FAIL("read %s: %ld", MAX_CPUS_PARAM, was);
		return;
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = write_file(MAX_CPUS_PARAM, bad[i]);
		EXPECT(err == -EINVAL, "max_cpus=%s: %d, expected EINVAL",
		       bad[i], err);
	}
	EXPECT(read_long(MAX_CPUS_PARAM) == was,
	       "max_cpus changed by refused writes: %ld, was %ld",
	       read_long(MAX_CPUS_PARAM), was);

	buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	if (!buf) {
		FAIL("mmap");
		return;
	}
	fill(buf, len, 5);
	EXPECT(!write_file(MAX_CPUS_PARAM, "1"), "max_cpus=1");
	if (!pin_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		       "max_cpus=1", &p))
		EXPECT(p.nr_parts == 1, "max_cpus=1: %u parts", p.nr_parts);
	snprintf(s, sizeof(s), "%ld", was);
	EXPECT(!write_file(MAX_CPUS_PARAM, s), "max_cpus restored");
	parts_check((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM,
		    "max_cpus restored, parts");
	munmap(buf, len);
}

/* Killed while pinning 512 MiB it has not touched: nothing stays pinned. */
static void t_parts_killed(void)
{
	unsigned long len = 512 * MiB;
	int64_t out0, out1;
	int i, st, killed = 0;
	pid_t pid;

	for (i = 0; i < 4; i++) {
		pins_settle(0, &out0);
		pid = fork();
		if (pid == 0) {
			char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
			struct fut_pin p;

			if (!buf || pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p))
				_exit(1);
			_exit(2);
		}
		usleep(20000 << i);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		killed += WIFSIGNALED(st);
		EXPECT(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 2),
		       "child: status %#x", st);
		EXPECT(pins_settle(out0, &out1), "kill after %d ms: %lld pins outstanding, was %lld",
		       20 << i, (long long)out1, (long long)out0);
	}
	diag("%d of 4 children killed before their pin returned", killed);
}

/*
 * Release unpins a long run of small folios in bounded chunks.  A run of
 * 4 KiB folios can be gigabytes long; umem hands it to
 * unpin_user_page_range_dirty_lock() at most RESCHED_CHUNK pages at a
 * time (FRDMA_UMEM_UNPIN_PAGES in umem/umem.c) with a cond_resched()
 * after each call, instead of the whole run in one call with no
 * reschedule point inside it.
 *
 * Counted, not timed: FUT_IOC_RELEASE_TRACED watches the releasing task
 * with kprobes on unpin_user_page_range_dirty_lock() and __cond_resched()
 * and reports the most pages it gave to unpin calls between two
 * reschedule points.  max_cpus=1 keeps the whole release in that task (no
 * helpers on other CPUs), and the preemption model "none" (with dynamic
 * preemption) makes cond_resched() the only way into __cond_resched()
 * and keeps "full" from compiling it out; the release does not dirty, so
 * no folio_lock() is involved either.
 *
 * The run is made, not hoped for: RESCHED_POOL of 2 MiB THPs is faulted
 * in, the longest chain of physically adjacent ones (up to
 * RESCHED_MAX_THPS) is moved next to each other in virtual memory with
 * mremap() (which moves page tables, not pages) and split there into
 * 4 KiB folios through debugfs split_huge_pages, which keeps their PFNs;
 * pagemap and /proc/kpageflags confirm the result.  Pinned, it is one run
 * of at least RESCHED_MIN_THPS x 512 small folios.  Automatic NUMA
 * balancing (the suite boots with fake NUMA nodes) is off meanwhile: its
 * hinting faults make PMDs PROT_NONE, which 6.1's split_huge_pages
 * skips, and its migrations would move pages out of the run.
 */
#define PREEMPT_PATH	"/sys/kernel/debug/sched/preempt"
#define NUMA_BALANCING_PATH	"/proc/sys/kernel/numa_balancing"
#define SPLIT_PATH	"/sys/kernel/debug/split_huge_pages"
#define KPAGEFLAGS_PATH	"/proc/kpageflags"
#define KPF_COMPOUND_HEAD	15
#define KPF_COMPOUND_TAIL	16
#define KPF_THP			22
#define RESCHED_CHUNK	1024
#define RESCHED_POOL	(256 * MiB)
#define RESCHED_MIN_THPS	4
#define RESCHED_MAX_THPS	16

/* The preemption model in effect, from "none (voluntary) full". */
static bool preempt_mode(char *mode, size_t size)
{
	char line[128], *open_, *close_;
	FILE *f = fopen(PREEMPT_PATH, "r");

	if (!f)
		return false;
	open_ = fgets(line, sizeof(line), f) ? strchr(line, '(') : NULL;
	fclose(f);
	close_ = open_ ? strchr(open_, ')') : NULL;
	if (!close_ || (size_t)(close_ - open_) > size)
		return false;
	*close_ = 0;
	snprintf(mode, size, "%s", open_ + 1);
	return true;
}

/* The /proc/kpageflags words of @n pages from @pfn; 0 or a negative errno. */
static int kpageflags(uint64_t pfn, unsigned long n, uint64_t *flags)
{
	int fd = open(KPAGEFLAGS_PATH, O_RDONLY), err = 0;
	ssize_t got;

	if (fd < 0)
		return -errno;
	got = pread(fd, flags, n * 8, pfn * 8);
	if (got < 0)
		err = -errno;
	else if (got != (ssize_t)(n * 8))
		err = -EIO;
	close(fd);
	return err;
}

struct thp_at {
	uint64_t pfn;
	unsigned long idx;
};

static int thp_at_cmp(const void *a, const void *b)
{
	const struct thp_at *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/*
 * The THPs of @pool (RESCHED_POOL bytes, faulted in) sorted by PFN in @at;
 * returns the length of the longest chain of physically adjacent ones,
 * which starts at @at[*@first].
 */
static unsigned long thp_chain(const char *pool, uint64_t *pfn,
			       struct thp_at *at, unsigned long *first)
{
	unsigned long i, j, k, nr = 0, best = 0;
	const uint64_t *p;
	uint64_t f;

	if (pagemap_pfns((uintptr_t)pool, RESCHED_POOL / PG, pfn))
		return 0;
	for (i = 0; i < RESCHED_POOL / HPAGE; i++) {
		p = pfn + i * (HPAGE / PG);
		if (!p[0] || p[0] % (HPAGE / PG) || kpageflags(p[0], 1, &f) ||
		    !(f & (1ULL << KPF_THP)))
			continue;
		for (k = 1; k < HPAGE / PG && p[k] == p[0] + k; k++)
			;
		if (k == HPAGE / PG) {
			at[nr].pfn = p[0];
			at[nr++].idx = i;
		}
	}
	qsort(at, nr, sizeof(*at), thp_at_cmp);
	for (i = 0; i < nr; i = j) {
		for (j = i + 1; j < nr && at[j].pfn == at[j - 1].pfn + HPAGE / PG; j++)
			;
		if (j - i > best) {
			best = j - i;
			*first = i;
		}
	}
	diag("%lu MiB: %lu THPs, at most %lu physically adjacent",
	     RESCHED_POOL / MiB, nr, best);
	return best;
}

/* Whether none of the @n kpageflags words @flags is part of a large folio. */
static bool small_folios(const uint64_t *flags, unsigned long n)
{
	const uint64_t large = 1ULL << KPF_COMPOUND_HEAD |
			       1ULL << KPF_COMPOUND_TAIL | 1ULL << KPF_THP;
	unsigned long i;

	for (i = 0; i < n; i++)
		if (flags[i] & large)
			return false;
	return true;
}

/*
 * One run of physically contiguous 4 KiB folios, *@len bytes of it (from
 * RESCHED_MIN_THPS to RESCHED_MAX_THPS THPs' worth) at the returned
 * address, filled with non-zero bytes (6.12's split maps zero-filled
 * pages to the zero page).  NULL with cur_skip or a failure set when it
 * cannot be had.
 */
static char *small_folio_run(unsigned long *len)
{
	unsigned long i, first = 0, best = 0, npages, nthp;
	struct thp_at *at = calloc(RESCHED_POOL / HPAGE, sizeof(*at));
	uint64_t *pfn = calloc(RESCHED_POOL / PG, 8);
	uint64_t *flags = calloc(RESCHED_POOL / PG, 8);
	char *pool = NULL, *run = NULL, s[128];
	int attempt, err;

	*len = 0;
	if (!at || !pfn || !flags) {
		FAIL("calloc");
		goto out;
	}
	if (access(SPLIT_PATH, W_OK) || access(KPAGEFLAGS_PATH, R_OK)) {
		cur_skip = "no " SPLIT_PATH " or " KPAGEFLAGS_PATH " to make small folios of THPs";
		goto out;
	}
	/* a second attempt after compaction if the THPs are scattered */
	for (attempt = 0; attempt < 2 && best < RESCHED_MIN_THPS; attempt++) {
		if (pool)
			munmap(pool, RESCHED_POOL);
		if (attempt)
			write_file("/proc/sys/vm/compact_memory", "1");
		pool = map_aligned(RESCHED_POOL, HPAGE, MADV_HUGEPAGE);
		if (!pool) {
			FAIL("mmap %lu MiB", RESCHED_POOL / MiB);
			goto out;
		}
		memset(pool, 0x5a, RESCHED_POOL);
		best = thp_chain(pool, pfn, at, &first);
	}
	if (best < RESCHED_MIN_THPS) {
		cur_skip = "too few physically adjacent THPs (THP off, or memory too fragmented)";
		goto out;
	}
	nthp = best < RESCHED_MAX_THPS ? best : RESCHED_MAX_THPS;
	*len = nthp * HPAGE;
	run = map_aligned(*len, HPAGE, -1);
	if (!run) {
		FAIL("mmap %lu MiB", *len / MiB);
		goto out;
	}
	for (i = 0; i < nthp; i++)
		if (mremap(pool + at[first + i].idx * HPAGE, HPAGE, HPAGE,
			   MREMAP_MAYMOVE | MREMAP_FIXED,
			   run + i * HPAGE) == MAP_FAILED) {
			FAIL("mremap THP %lu: %s", i, strerror(errno));
			goto fail;
		}
	/* the THPs left in the pool go, not to be split for nothing */
	munmap(pool, RESCHED_POOL);
	pool = NULL;
	/* no khugepaged collapse of the small folios */
	madvise(run, *len, MADV_NOHUGEPAGE);
	snprintf(s, sizeof(s), "%d,0x%lx,0x%lx", getpid(), (unsigned long)run,
		 (unsigned long)run + *len);
	err = write_file(SPLIT_PATH, s);
	if (err) {
		FAIL("split_huge_pages %s: %s", s, strerror(-err));
		goto fail;
	}
	/* the same PFNs, in order, now each its own folio */
	npages = *len / PG;
	if (kpageflags(at[first].pfn, npages, flags) ||
	    pagemap_pfns((uintptr_t)run, npages, pfn)) {
		FAIL("pagemap, kpageflags");
		goto fail;
	}
	if (!small_folios(flags, npages)) {
		/*
		 * Debian's 6.1 takes the per-process write and may split
		 * only some of the THPs; its whole-system form splits every
		 * THP on the LRU, the run's among them.
		 */
		diag("%s %s left THPs whole: splitting every THP", SPLIT_PATH, s);
		err = write_file(SPLIT_PATH, "1");
		if (err) {
			FAIL("split_huge_pages 1: %s", strerror(-err));
			goto fail;
		}
		if (kpageflags(at[first].pfn, npages, flags) ||
		    pagemap_pfns((uintptr_t)run, npages, pfn)) {
			FAIL("pagemap, kpageflags");
			goto fail;
		}
	}
	for (i = 0; i < npages; i++) {
		if (pfn[i] != at[first].pfn + i) {
			FAIL("page %lu: pfn %#llx after the split, was %#llx",
			     i, (unsigned long long)pfn[i],
			     (unsigned long long)(at[first].pfn + i));
			goto fail;
		}
		if (flags[i] & (1ULL << KPF_COMPOUND_HEAD |
				1ULL << KPF_COMPOUND_TAIL | 1ULL << KPF_THP)) {
			FAIL("page %lu: kpageflags %#llx after the split: not a small folio",
			     i, (unsigned long long)flags[i]);
			goto fail;
		}
	}
	goto out;
fail:
	munmap(run, *len);
	run = NULL;
out:
	if (pool)
		munmap(pool, RESCHED_POOL);
	free(flags);
	free(pfn);
	free(at);
	return run;
}

static int release_traced(uint32_t h, bool dirty, struct fut_release_traced *t)
{
	memset(t, 0, sizeof(*t));
	t->handle = h;
	t->dirty = dirty;
	return ioctl(dev, FUT_IOC_RELEASE_TRACED, t) ? -errno : 0;
}

static void t_release_chunks(void)
{
	long was = read_long(MAX_CPUS_PARAM);
	long numa = read_long(NUMA_BALANCING_PATH);
	struct fut_release_traced t;
	unsigned long len = 0;
	char mode[32] = "", s[32];
	struct fut_pin p;
	char *buf = NULL;
	int err;

	if (was < 1) {
		FAIL("read %s: %ld", MAX_CPUS_PARAM, was);
		return;
	}
	/* can this kernel count reschedule points?  (~0: no such pin) */
	err = release_traced(~0U, false, &t);
	if (err == -EOPNOTSUPP) {
		cur_skip = "reschedule points cannot be counted: a kernel without kprobes, or built for full preemption (cond_resched() empty)";
		return;
	}
	if (err != -ENOENT) {
		FAIL("FUT_IOC_RELEASE_TRACED of no pin: %s, not ENOENT", strerror(-err));
		return;
	}
	if (preempt_mode(mode, sizeof(mode)) && write_file(PREEMPT_PATH, "none")) {
		FAIL("cannot write none to %s", PREEMPT_PATH);
		return;
	}
	if (numa > 0 && write_file(NUMA_BALANCING_PATH, "0")) {
		FAIL("cannot write 0 to %s", NUMA_BALANCING_PATH);
		numa = -1;
		goto out;
	}
	buf = small_folio_run(&len);
	if (!buf)
		goto out;
	EXPECT(!write_file(MAX_CPUS_PARAM, "1"), "max_cpus=1");
	if (pin((uintptr_t)buf, len, FUT_WRITE, &p)) {
		FAIL("pin");
		goto out;
	}
	if (p.nr_runs != 1 || p.npages != len / PG) {
		FAIL("%u runs of %llu pages, the longest %u: not one run of %lu",
		     p.nr_runs, (unsigned long long)p.npages, p.max_run, len / PG);
		release(p.handle, false);
		goto out;
	}
	err = release_traced(p.handle, false, &t);
	if (err) {
		FAIL("FUT_IOC_RELEASE_TRACED: %s", strerror(-err));
		goto out;
	}
	diag("release of one run of %llu 4 KiB folios: %llu unpin calls for %llu pages, the largest %llu pages; %llu cond_resched() calls, at most %llu pages between two",
	     (unsigned long long)p.npages, (unsigned long long)t.unpin_calls,
	     (unsigned long long)t.unpin_pages,
	     (unsigned long long)t.max_call_pages,
	     (unsigned long long)t.resched,
	     (unsigned long long)t.max_pages_between);
	EXPECT(t.unpin_pages == p.npages,
	       "the probe saw %llu of the %llu pages unpinned",
	       (unsigned long long)t.unpin_pages,
	       (unsigned long long)p.npages);
	EXPECT(t.max_pages_between <= RESCHED_CHUNK,
	       "%llu pages unpinned with no reschedule point between them, more than %u",
	       (unsigned long long)t.max_pages_between, RESCHED_CHUNK);
	EXPECT(t.resched >= p.npages / RESCHED_CHUNK,
	       "%llu reschedule points for %llu pages, fewer than one per %u",
	       (unsigned long long)t.resched,
	       (unsigned long long)p.npages, RESCHED_CHUNK);
out:
	snprintf(s, sizeof(s), "%ld", was);
	EXPECT(!write_file(MAX_CPUS_PARAM, s), "max_cpus restored");
	if (mode[0])
		EXPECT(!write_file(PREEMPT_PATH, mode), "preempt %s restored", mode);
	if (numa > 0) {
		snprintf(s, sizeof(s), "%ld", numa);
		EXPECT(!write_file(NUMA_BALANCING_PATH, s),
		       "numa_balancing %ld restored", numa);
	}
	if (buf)
		munmap(buf, len);
}

struct test {
	void (*fn)(void);
	const char *name;
};

static const struct test tests[] = {
	{ t_anon_4k, "4 KiB anonymous pages: runs equal pagemap; write and read through the pin" },
	{ t_thp, "THP: runs equal pagemap, at most one run per 2 MiB plus one" },
	{ t_hugetlb, "hugetlb 2 MiB pages: runs equal pagemap" },
	{ t_memfd_shmem, "memfd shmem through the folio path: runs equal pagemap and the generic path's" },
	{ t_memfd_hugetlb, "memfd hugetlb through the folio path: one pin per folio, same runs" },
	{ t_hugetlb_unfaulted, "untouched MAP_NORESERVE hugetlb memfd and hugetlbfs file: HugePages_Rsvd and _Free exact" },
	{ t_seal_race, "F_SEAL_WRITE racing a writable memfd pin: never both succeed" },
	{ t_folio_path_refusals, "folio path refused where it does not apply" },
	{ t_memlock, "RLIMIT_MEMLOCK: ENOMEM beyond it, nothing charged or pinned, VmPin restored" },
	{ t_holes, "holes and PROT_NONE: EFAULT, nothing left pinned" },
	{ t_zero_and_overflow, "zero length is empty, wrapping lengths are EINVAL" },
	{ t_file_longterm_write, "writable long-term pin of an ext4 file mapping: the kernel's errno" },
	{ t_coherence_untouched, "read-only long-term pin of untouched memory sees later writes" },
	{ t_fork, "after fork the parent's writes are seen through its pin, the child's not" },
	{ t_dirty_release_ext4, "dirty release to an ext4 MAP_SHARED file survives sync and drop_caches" },
	{ t_munmap_while_pinned, "munmap while pinned: pages stay pinned until release" },
	{ t_exit_with_pins, "a process exiting with pins releases them" },
	{ t_parts, "pins split across CPUs: runs equal pagemap, failures in any part leave nothing pinned" },
	{ t_max_cpus, "max_cpus refuses 0 and more than 16; 1 keeps a pin in one part" },
	{ t_parts_killed, "killed while a split pin faults pages in: nothing stays pinned" },
	{ t_cpuset_mems, "a task whose cpuset restricts its memory nodes pins long-term alone" },
	{ t_release_chunks, "release unpins a long run of 4 KiB folios at most 1024 pages between cond_resched() calls" },
};

/* Run one test with the pin balance checked around it. */
static void run(void (*fn)(void), const char *name)
{
	int64_t out0, out1;

	cur_failed = false;
	cur_skip = NULL;
	if (!pins_settle(0, &out0))
		diag("%lld pins outstanding in the system before the test",
		     (long long)out0);
	fn();
	if (!pins_settle(out0, &out1))
		FAIL("pin balance: %lld pins outstanding after the test, %lld before",
		     (long long)out1, (long long)out0);
	test_nr++;
	if (cur_failed)
		test_failed++;
	if (cur_skip && !cur_failed)
		printf("ok %d - %s # SKIP %s\n", test_nr, name, cur_skip);
	else
		printf("%s %d - %s\n", cur_failed ? "not ok" : "ok", test_nr, name);
	fflush(stdout);
}

/* ZONE_MOVABLE: [start, end) PFNs of the Movable zone(s) of node 0. */
static int movable_span(uint64_t *start, uint64_t *end)
{
	char line[256];
	bool in = false;
	unsigned long long v, spanned = 0, s = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node", 4)) {
			in = strstr(line, "zone  Movable") || strstr(line, "zone Movable");
			continue;
		}
		if (!in)
			continue;
		if (sscanf(line, " spanned %llu", &v) == 1)
			spanned = v;
		if (sscanf(line, " start_pfn: %llu", &v) == 1)
			s = v;
	}
	fclose(f);
	*start = s;
	*end = s + spanned;
	return spanned ? 0 : -ENOENT;
}

static unsigned long count_in(const uint64_t *pfn, unsigned long n,
			      uint64_t s, uint64_t e)
{
	unsigned long i, c = 0;

	for (i = 0; i < n; i++)
		c += pfn[i] >= s && pfn[i] < e;
	return c;
}

static void t_movable(void)
{
	unsigned long len = 256 * MiB, npages = len / PG, before, after = 0, i;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE), *back;
	uint64_t s = 0, e = 0, *pfn = calloc(npages, 8), k;
	struct fut_run *runs;
	struct fut_pin p;

	if (movable_span(&s, &e)) {
		FAIL("no Movable zone: boot with movablecore=");
		return;
	}
	fill(buf, len, 0x33);
	pagemap_pfns((uintptr_t)buf, npages, pfn);
	before = count_in(pfn, npages, s, e);
	if (pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p)) {
		FAIL("long-term pin: %s", strerror(errno));
		return;
	}
	runs = get_runs(p.handle, p.nr_runs);
	for (i = 0; runs && i < p.nr_runs; i++)
		for (k = 0; k < runs[i].npages; k++)
			after += runs[i].pfn + k >= s && runs[i].pfn + k < e;
	diag("Movable zone PFNs [%#llx, %#llx): %lu of %lu pages there before the long-term pin, %lu after",
	     (unsigned long long)s, (unsigned long long)e, before, npages, after);
	EXPECT(before > 0, "no page of the buffer was in ZONE_MOVABLE before the pin");
	EXPECT(runs && after == 0, "%lu pinned pages in ZONE_MOVABLE", after);
	check_runs(&p, (uintptr_t)buf, len, "after migration");
	back = malloc(len);
	for (i = 0; i < len; i += PG)
		if (buf[i] != (char)(0x33 + i / PG) ||
		    buf[i + PG - 1] != (char)(0x33 + i / PG)) {
			FAIL("data lost in migration at %lu", i);
			break;
		}
	EXPECT(back && !kread(p.handle, 0, len, back) && !memcmp(back, buf, len),
	       "the pin does not see the process's data");
	release(p.handle, false);
	free(back);
	free(runs);
	free(pfn);
	munmap(buf, len);
}

/*
 * A 256 MiB anonymous buffer allocated while CMA holds half the memory
 * lies in CMA (the page allocator serves movable allocations from CMA
 * first once free CMA pages exceed half the free pages); a long-term
 * writable pin must leave none of its pages there, neither in the runs
 * nor in what the process maps, and the data must survive migration.
 */
static void cma_case(int advice, const char *what)
{
	unsigned long len = 256 * MiB, npages = len / PG, before = 0, after = 0;
	unsigned long mapped = 0, i, k;
	char *buf = map_aligned(len, HPAGE, advice), *back = NULL;
	uint64_t *pfn = calloc(npages, 8);
	struct pfn_range r[CMA_MAX_AREAS];
	struct fut_run *runs = NULL;
	struct fut_pin p;
	int n = cma_areas(r);

	if (!n) {
		FAIL("no CMA area in /sys/kernel/debug/cma: boot with cma=");
		goto out;
	}
	if (!buf || !pfn) {
		FAIL("%s: out of memory", what);
		goto out;
	}
	fill(buf, len, 0x5a);
	pagemap_pfns((uintptr_t)buf, npages, pfn);
	for (i = 0; i < npages; i++)
		before += pfn_in_ranges(pfn[i], r, n);
	if (pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p)) {
		FAIL("%s: long-term pin: %s", what, strerror(errno));
		goto out;
	}
	runs = get_runs(p.handle, p.nr_runs);
	for (i = 0; runs && i < p.nr_runs; i++)
		for (k = 0; k < runs[i].npages; k++)
			after += pfn_in_ranges(runs[i].pfn + k, r, n);
	pagemap_pfns((uintptr_t)buf, npages, pfn);
	for (i = 0; i < npages; i++)
		mapped += pfn_in_ranges(pfn[i], r, n);
	diag("%s: CMA PFNs [%#llx, %#llx): %lu of %lu pages there before the long-term pin, %lu after (runs), %lu after (pagemap); %u runs",
	     what, (unsigned long long)r[0].start, (unsigned long long)r[0].end,
	     before, npages, after, mapped, p.nr_runs);
	/*
	 * The premise: most of the buffer starts in CMA, or the test shows
	 * nothing.  With cma=1G in a 2 GiB guest all of it does.
	 */
	EXPECT(before >= npages / 2,
	       "%s: only %lu of %lu pages were in CMA before the pin", what,
	       before, npages);
	EXPECT(runs && after == 0, "%s: %lu pinned pages in CMA", what, after);
	EXPECT(mapped == 0, "%s: %lu mapped pages in CMA", what, mapped);
	check_runs(&p, (uintptr_t)buf, len, what);
	for (i = 0; i < len; i += PG)
		if (buf[i] != (char)(0x5a + i / PG) ||
		    buf[i + PG - 1] != (char)(0x5a + i / PG)) {
			FAIL("%s: data lost in migration at %lu", what, i);
			break;
		}
	back = malloc(len);
	EXPECT(back && !kread(p.handle, 0, len, back) && !memcmp(back, buf, len),
	       "%s: the pin does not see the process's data", what);
	release(p.handle, false);
out:
	free(back);
	free(runs);
	free(pfn);
	if (buf)
		munmap(buf, len);
}

static void t_cma_4k(void)
{
	cma_case(MADV_NOHUGEPAGE, "CMA, 4 KiB pages");
}

static void t_cma_thp(void)
{
	cma_case(MADV_HUGEPAGE, "CMA, THP");
}

/*
 * The deliberate use-after-free: with frdma_umem_test's uaf_runs switch
 * on, FUT_IOC_RUNS releases the pin (freeing its run array) and then
 * reads the runs.  The test passes here; KASAN must report the read, and
 * that report must fail the VM run (tests/vm/debug-kernel/selftest).
 */
#define UAF_PARAM	"/sys/module/frdma_umem_test/parameters/uaf_runs"

static void t_use_after_free(void)
{
	unsigned long len = 64 * PG, pg;
	char *buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	struct fut_run runs[64];
	struct fut_runs a = { .count = 64, .ptr = (uintptr_t)runs };
	struct fut_pin p;

	if (!buf || write_file(UAF_PARAM, "1")) {
		FAIL("cannot switch %s on", UAF_PARAM);
		return;
	}
	/* touched backwards: scattered PFNs, many runs */
	for (pg = len / PG; pg-- > 0;)
		buf[pg * PG] = 1;
	if (pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM, &p)) {
		FAIL("pin: %s", strerror(errno));
	} else {
		a.handle = p.handle;
		EXPECT(!ioctl(dev, FUT_IOC_RUNS, &a), "FUT_IOC_RUNS: %s",
		       strerror(errno));
		/* the pin is gone: released by the ioctl */
		EXPECT(release(p.handle, false) == -ENOENT,
		       "the pin outlived its use-after-free");
	}
	write_file(UAF_PARAM, "0");
	munmap(buf, len);
}

/*
 * Fault injection (kernels with CONFIG_FAILSLAB and CONFIG_FAIL_PAGE_ALLOC,
 * such as the debug kernel): allocations made by this task fail once a
 * budget of bytes ("space") is used up, so pins fail at many different
 * points, midway through the range included.  Every pin must either
 * succeed or fail cleanly: nothing left pinned or charged.
 */
static int fi_set(const char *fi, const char *knob, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/kernel/debug/%s/%s", fi, knob);
	return write_file(path, val);
}

static void fi_case(const char *fi, char *buf, unsigned long len,
		    unsigned int flags, const char *what)
{
	/* failslab counts bytes, fail_page_alloc pages */
	static const long slab_space[] = {
		0, 64, 200, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000,
		128000, 256000, 1000000,
	};
	static const long page_space[] = {
		0, 1, 2, 3, 5, 8, 12, 16, 20, 24, 32, 40, 48, 1000,
	};
	const long *space = strcmp(fi, "failslab") ? page_space : slab_space;
	int ok = 0, nomem = 0, other = 0, err, mif;
	long pin0 = vmpin_kb();
	int64_t out0, out1;
	struct fut_pin p;
	unsigned int i;
	char v[32];

	/*
	 * Opened beforehand: once make-it-fail is set, opening a file may be
	 * one of the allocations that fail.
	 */
	mif = open("/proc/self/make-it-fail", O_WRONLY);
	if (mif < 0) {
		FAIL("make-it-fail: %s", strerror(errno));
		return;
	}
	for (i = 0; i < sizeof(slab_space) / sizeof(slab_space[0]); i++) {
		snprintf(v, sizeof(v), "%ld", space[i]);
		fi_set(fi, "space", v);
		pins_settle(0, &out0);
		EXPECT(pwrite(mif, "1", 1, 0) == 1, "make-it-fail: %s", strerror(errno));
		err = pin((uintptr_t)buf, len, flags, &p);
		EXPECT(pwrite(mif, "0", 1, 0) == 1, "make-it-fail: %s", strerror(errno));
		if (!err) {
			ok++;
			check_runs(&p, (uintptr_t)buf, len, what);
			release(p.handle, false);
		} else if (err == -ENOMEM) {
			nomem++;
		} else {
			other++;
			diag("%s: space %ld: %s", what, space[i], strerror(-err));
		}
		EXPECT(pins_settle(out0, &out1), "%s: space %ld: %lld pins outstanding, was %lld",
		       what, space[i], (long long)out1, (long long)out0);
		EXPECT(vmpin_kb() == pin0, "%s: space %ld: VmPin %ld kB, was %ld", what,
		       space[i], vmpin_kb(), pin0);
	}
	close(mif);
	diag("%s: %d pins succeeded, %d failed with ENOMEM, %d otherwise", what,
	     ok, nomem, other);
	EXPECT(nomem > 0 && ok > 0, "%s: injection never failed or never passed",
	       what);
}

static void t_fault_inject(void)
{
	static const char *const fis[] = { "failslab", "fail_page_alloc" };
	unsigned long len = 16 * MiB, pg;
	char *buf, *shm;
	unsigned int i;
	int fd;

	if (access("/sys/kernel/debug/failslab/space", W_OK) ||
	    access("/sys/kernel/debug/fail_page_alloc/space", W_OK) ||
	    access("/proc/self/make-it-fail", W_OK)) {
		cur_skip = "this kernel has no slab and page allocator fault injection";
		return;
	}
	/* scattered pages: thousands of runs, so the run array grows often */
	buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	for (pg = len / PG; pg-- > 0;)
		buf[pg * PG] = 1;
	fd = memfd_create("umem_fi", 0);
	if (fd < 0 || ftruncate(fd, len)) {
		FAIL("memfd: %s", strerror(errno));
		return;
	}
	shm = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	fill(shm, len, 1);

	for (i = 0; i < 2; i++) {
		fi_set(fis[i], "probability", "100");
		fi_set(fis[i], "interval", "1");
		fi_set(fis[i], "times", "-1");
		fi_set(fis[i], "verbose", "0");
		fi_set(fis[i], "task-filter", "Y");
		fi_set(fis[i], "ignore-gfp-wait", "N");
		if (i == 1) {
			fi_set(fis[i], "ignore-gfp-highmem", "N");
			fi_set(fis[i], "min-order", "0");
		}
		fi_case(fis[i], buf, len, FUT_WRITE | FUT_LONGTERM, fis[i]);
		fi_case(fis[i], shm, len, FUT_WRITE | FUT_FOLIO_ONLY,
			i ? "fail_page_alloc, folio path" : "failslab, folio path");
		fi_set(fis[i], "probability", "0");
		fi_set(fis[i], "times", "0");
	}
	munmap(buf, len);
	munmap(shm, len);
}

/*
 * umem's own fault injection point (/sys/kernel/debug/frdma_umem/fail_pin,
 * a fault_attr: CONFIG_FAULT_INJECTION_DEBUG_FS): one batch of the generic
 * path fails with ENOMEM, after a budget of batches ("space") has passed,
 * in whichever part reaches it, the pinning task's or a helper's.  A
 * 64 MiB pin is split into parts on several CPUs; the failure hits each
 * of them at many points.  Every pin either succeeds with the right runs
 * or fails with ENOMEM, leaving nothing pinned or charged.
 */
#define FAIL_PIN	"/sys/kernel/debug/frdma_umem/fail_pin"

static void t_fault_inject_parts(void)
{
	unsigned long len = 64 * MiB, pg;
	int ok = 0, nomem = 0, err, space;
	long pin0 = vmpin_kb();
	int64_t out0, out1;
	struct fut_pin p;
	char *buf, v[32];

	if (access(FAIL_PIN "/space", W_OK)) {
		cur_skip = "this kernel has no fault injection debugfs";
		return;
	}
	buf = map_aligned(len, HPAGE, MADV_NOHUGEPAGE);
	for (pg = len / PG; pg-- > 0;)
		buf[pg * PG] = 1;
	write_file(FAIL_PIN "/verbose", "0");
	write_file(FAIL_PIN "/task-filter", "N");
	write_file(FAIL_PIN "/interval", "1");
	write_file(FAIL_PIN "/probability", "100");
	for (space = 0; space <= 40; space += space < 4 ? 1 : 3) {
		snprintf(v, sizeof(v), "%d", space);
		write_file(FAIL_PIN "/space", v);
		write_file(FAIL_PIN "/times", "1");
		pins_settle(0, &out0);
		err = pin((uintptr_t)buf, len, FUT_WRITE | FUT_LONGTERM |
			  (space % 2 ? FUT_REMOTE : 0), &p);
		write_file(FAIL_PIN "/times", "0");
		if (!err) {
			ok++;
			check_runs(&p, (uintptr_t)buf, len, "fail_pin");
			EXPECT(p.nr_parts == parts_expected(0, len),
			       "%u parts, expected %u", p.nr_parts,
			       parts_expected(0, len));
			release(p.handle, false);
		} else {
			nomem += err == -ENOMEM;
			EXPECT(err == -ENOMEM, "space %d: %s", space, strerror(-err));
		}
		EXPECT(pins_settle(out0, &out1),
		       "space %d: %lld pins outstanding, was %lld", space,
		       (long long)out1, (long long)out0);
		EXPECT(vmpin_kb() == pin0, "space %d: VmPin %ld kB, was %ld",
		       space, vmpin_kb(), pin0);
	}
	write_file(FAIL_PIN "/probability", "0");
	diag("fail_pin: %d pins succeeded, %d failed with ENOMEM", ok, nomem);
	EXPECT(nomem > 0 && ok > 0, "injection never failed or never passed");
	munmap(buf, len);
}

static unsigned long parse_size(const char *s)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	switch (*end) {
	case 'G': case 'g':
		return v << 30;
	case 'M': case 'm':
		return v << 20;
	case 'K': case 'k':
		return v << 10;
	}
	return v;
}

/*
 * kind: "thp" (MADV_HUGEPAGE), "4k" (MADV_NOHUGEPAGE, touched in address
 * order), "4k-reverse" (touched from the last page down, which scatters
 * the PFNs: the worst case for runs).
 */
static int bench_one(unsigned long len, const char *kind)
{
	bool thp = !strcmp(kind, "thp");
	char *buf = map_aligned(len, HPAGE, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	struct fut_bench b, best = { 0 };
	unsigned long pg;
	int i;

	if (!buf) {
		fprintf(stderr, "bench: mmap %lu failed\n", len);
		return 1;
	}
	if (!strcmp(kind, "4k-reverse"))
		for (pg = len / PG; pg-- > 0;)
			buf[pg * PG] = 1;
	else
		fill(buf, len, 1);
	for (i = 0; i < 16; i++) {
		memset(&b, 0, sizeof(b));
		b.addr = (uintptr_t)buf;
		b.len = len;
		b.flags = FUT_WRITE | FUT_LONGTERM | (i % 2 ? FUT_UMEM_FIRST : 0);
		if (ioctl(dev, FUT_IOC_BENCH, &b) || b.umem_err || b.plain_err) {
			fprintf(stderr, "bench: %s umem %d plain %d\n",
				strerror(errno), b.umem_err, b.plain_err);
			munmap(buf, len);
			return 1;
		}
		if (!i || b.umem_ns < best.umem_ns) {
			best.umem_ns = b.umem_ns;
			best.nr_runs = b.nr_runs;
			best.umem_meta_bytes = b.umem_meta_bytes;
		}
		if (!i || b.plain_ns < best.plain_ns)
			best.plain_ns = b.plain_ns;
		if (!i || b.plain_alloc_ns < best.plain_alloc_ns)
			best.plain_alloc_ns = b.plain_alloc_ns;
		best.plain_meta_bytes = b.plain_meta_bytes;
	}
	printf("umem-bench %s size=%lu runs=%u umem_ns=%llu plain_ns=%llu ratio=%.3f plain_alloc_ns=%llu ratio_with_alloc=%.3f umem_meta_bytes=%llu plain_meta_bytes=%llu\n",
	       kind, len, best.nr_runs,
	       (unsigned long long)best.umem_ns,
	       (unsigned long long)best.plain_ns,
	       (double)best.umem_ns / (double)best.plain_ns,
	       (unsigned long long)best.plain_alloc_ns,
	       (double)best.umem_ns /
	       (double)(best.plain_ns + best.plain_alloc_ns),
	       (unsigned long long)best.umem_meta_bytes,
	       (unsigned long long)best.plain_meta_bytes);
	fflush(stdout);
	munmap(buf, len);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long bench = 0;
	bool movable = false, fault_inject = false, cma = false, uaf = false;
	const char *only = NULL;
	unsigned int i;
	long avail;

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--ext4-dir") && i + 1 < (unsigned int)argc)
			ext4_dir = argv[++i];
		else if (!strcmp(argv[i], "--thp-size") && i + 1 < (unsigned int)argc)
			thp_size = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--bench") && i + 1 < (unsigned int)argc)
			bench = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < (unsigned int)argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--movable"))
			movable = true;
		else if (!strcmp(argv[i], "--fault-inject"))
			fault_inject = true;
		else if (!strcmp(argv[i], "--cma"))
			cma = true;
		else if (!strcmp(argv[i], "--use-after-free"))
			uaf = true;
		else {
			fprintf(stderr, "usage: %s [--ext4-dir DIR] [--thp-size SIZE] [--only WORDS] | --movable | --fault-inject | --cma | --use-after-free | --bench SIZE\n",
				argv[0]);
			return 2;
		}
	}
	dev = open(FUT_DEVICE, O_RDWR);
	if (dev < 0) {
		printf("1..1\nnot ok 1 - open %s: %s\n", FUT_DEVICE, strerror(errno));
		return 1;
	}
	if (bench) {
		bench &= ~(HPAGE - 1);
		return bench_one(bench, "thp") | bench_one(bench, "4k") |
		       bench_one(bench, "4k-reverse");
	}
	if (uaf) {
		run(t_use_after_free, "use-after-free of a pin's run array (KASAN must report it)");
	} else if (cma) {
		run(t_cma_4k, "CMA, 4 KiB pages: no long-term pinned page stays in CMA, data intact");
		run(t_cma_thp, "CMA, THP: no long-term pinned page stays in CMA, data intact");
	} else if (fault_inject) {
		run(t_fault_inject, "allocation failures anywhere in a pin leave nothing pinned or charged");
		run(t_fault_inject_parts, "a failure in any part of a pin split across CPUs leaves nothing pinned or charged");
	} else if (movable) {
		run(t_movable, "ZONE_MOVABLE: no long-term pinned page stays there, data intact");
	} else {
		if (!thp_size) {
			/* 1 GiB when the VM has room for it, less otherwise */
			avail = meminfo_kb("MemAvailable") * 1024;
			thp_size = GiB;
			while (thp_size > 64 * MiB && (long)thp_size > avail / 2)
				thp_size /= 2;
		}
		thp_size &= ~(HPAGE - 1);
		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			if (!only || strstr(tests[i].name, only))
				run(tests[i].fn, tests[i].name);
	}
	printf("1..%d\n", test_nr);
	close(dev);
	return test_failed ? 1 : 0;
}
