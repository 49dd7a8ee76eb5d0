// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vfio_test: an unmodified VFIO type1v2 program, as TAP.  It opens QEMU's
 * edu device through vfio-pci, maps buffers of every backing with
 * VFIO_IOMMU_MAP_DMA and has edu's DMA engine copy guest memory -> device
 * -> guest memory between IOVAs, through the emulated VT-d, then checks
 * the bytes; then the type1v2 error cases, a memlock limit and a process
 * killed with mappings alive.  The same program runs on frdma's backend
 * and on vfio_iommu_type1:
 *
 *   vfio_test --backend frdma|type1        the tests
 *   vfio_test --backend B --bench [--max-mb N]
 *                                          MAP_DMA + UNMAP_DMA timings
 *
 * --backend says which backend the container must be served by: frdma
 * when frdma_vfio's debugfs counts the container, type1 when it does not.
 *
 * edu (QEMU's docs/specs/edu.txt): BAR0 registers 0x80 DMA source, 0x88
 * destination, 0x90 count, 0x98 command (bit 0 start/busy, bit 1 from the
 * device into guest memory, clear: from guest memory into the device);
 * its 4 KiB buffer is at device address 0x40000.  Device-side ranges stay below its last byte (QEMU 7.2 aborts
 * on a DMA that ends exactly at the end of the buffer).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/procfs.h"

#define EDU_VENDOR	"0x1234"
#define EDU_DEVICE	"0x11e8"
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_CMD_START	0x1
#define EDU_CMD_TO_RAM	0x2
#define EDU_BUF		0x40000ULL
#define EDU_XFER	2048	/* bytes per DMA, well inside the buffer */

#define SZ_4K		4096ULL
#define SZ_1M		(1ULL << 20)
#define SZ_2M		(2ULL << 20)
#define BUF_SIZE	(4 * SZ_1M)
#define STATS		"/sys/kernel/debug/frdma_vfio/stats"

static int test_nr;
static int failed;
static bool want_frdma;

static void ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++test_nr);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		failed++;
}

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

/*
 * One line "NAME VALUE" of frdma_vfio's debugfs stats: 0 when there is no
 * such line, -1 when frdma_vfio is not loaded.
 */
static long long stat_get(const char *name)
{
	char key[64];
	long long val, ret = 0;
	FILE *f = fopen(STATS, "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &val) == 2)
		if (!strcmp(key, name))
			ret = val;
	fclose(f);
	return ret;
}

/* The edu device: its PCI address and IOMMU group. */
static char edu_bdf[300];
static int edu_group;

static bool find_edu(void)
{
	char path[512], buf[64], link[256];
	struct dirent *de;
	DIR *d = opendir("/sys/bus/pci/devices");
	bool found = false;
	FILE *f;
	ssize_t n;

	while (d && (de = readdir(d)) && !found) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor",
			 de->d_name);
		f = fopen(path, "r");
		if (!f || !fgets(buf, sizeof(buf), f) ||
		    strncmp(buf, EDU_VENDOR, 6)) {
			if (f)
				fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device",
			 de->d_name);
		f = fopen(path, "r");
		if (f && fgets(buf, sizeof(buf), f) &&
		    !strncmp(buf, EDU_DEVICE, 6)) {
			snprintf(edu_bdf, sizeof(edu_bdf), "%s", de->d_name);
			snprintf(path, sizeof(path),
				 "/sys/bus/pci/devices/%s/iommu_group",
				 de->d_name);
			n = readlink(path, link, sizeof(link) - 1);
			if (n > 0) {
				link[n] = 0;
				edu_group = atoi(strrchr(link, '/') + 1);
				found = true;
			}
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* An open container with edu's group in it and its BAR0 mapped. */
struct vfio {
	int container;
	int group;
	int device;
	volatile uint8_t *bar0;
	size_t bar0_size;
	struct vfio_iova_range ranges[16];
	unsigned int nr_ranges;
	uint64_t pgsizes;
	uint32_t dma_avail;
};

static int vfio_info(struct vfio *v)
{
	struct vfio_iommu_type1_info *info;
	struct vfio_info_cap_header *hdr;
	struct vfio_iommu_type1_info_cap_iova_range *iova;
	struct vfio_iommu_type1_info_dma_avail *avail;
	uint32_t argsz = sizeof(*info);
	unsigned int i;
	int ret = -1;

	info = calloc(1, argsz);
	info->argsz = argsz;
	if (ioctl(v->container, VFIO_IOMMU_GET_INFO, info))
		goto out;
	if (info->argsz > argsz) {
		/* The capabilities need more room: ask again. */
		argsz = info->argsz;
		info = realloc(info, argsz);
		memset(info, 0, argsz);
		info->argsz = argsz;
		if (ioctl(v->container, VFIO_IOMMU_GET_INFO, info))
			goto out;
	}
	v->pgsizes = info->iova_pgsizes;
	v->nr_ranges = 0;
	v->dma_avail = 0;
	if (!(info->flags & VFIO_IOMMU_INFO_CAPS))
		goto done;
	for (hdr = (void *)((char *)info + info->cap_offset);;
	     hdr = (void *)((char *)info + hdr->next)) {
		if (hdr->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			iova = (void *)hdr;
			for (i = 0; i < iova->nr_iovas && i < 16; i++)
				v->ranges[i] = iova->iova_ranges[i];
			v->nr_ranges = i;
		} else if (hdr->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
			avail = (void *)hdr;
			v->dma_avail = avail->avail;
		}
		if (!hdr->next)
			break;
	}
done:
	ret = 0;
out:
	free(info);
	return ret;
}

static int vfio_open(struct vfio *v, bool quiet)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info reg = { .argsz = sizeof(reg) };
	char path[64];
	uint16_t cmd;
	int err = 0;

	memset(v, 0, sizeof(*v));
	v->container = open("/dev/vfio/vfio", O_RDWR);
	snprintf(path, sizeof(path), "/dev/vfio/%d", edu_group);
	v->group = open(path, O_RDWR);
	if (v->container < 0 || v->group < 0)
		return -errno;
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		return -ENOTTY;
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &status) ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EBUSY;
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) ||
	    ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, edu_bdf);
	if (v->device < 0)
		return -errno;
	reg.index = VFIO_PCI_BAR0_REGION_INDEX;
	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &reg))
		return -errno;
	v->bar0_size = reg.size;
	v->bar0 = mmap(NULL, reg.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       v->device, reg.offset);
	if (v->bar0 == MAP_FAILED)
		return -errno;
	/* Memory space and bus mastering on, through config space. */
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &reg) ||
	    pread(v->device, &cmd, 2, reg.offset + 4) != 2)
		return -errno;
	cmd |= 0x6;
	if (pwrite(v->device, &cmd, 2, reg.offset + 4) != 2)
		return -errno;
	if (vfio_info(v))
		return -errno;
	if (!quiet)
		diag("group %d device %s: pgsizes 0x%" PRIx64
		     ", %u IOVA ranges, %u mappings available",
		     edu_group, edu_bdf, v->pgsizes, v->nr_ranges,
		     v->dma_avail);
	return err;
}

static void vfio_close(struct vfio *v)
{
	if (v->bar0 && v->bar0 != MAP_FAILED)
		munmap((void *)v->bar0, v->bar0_size);
	if (v->device > 0)
		close(v->device);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	memset(v, 0, sizeof(*v));
}

static int map(struct vfio *v, void *vaddr, uint64_t iova, uint64_t size,
	       uint32_t flags)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = flags,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	return ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

#define RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/* Unmap; the bytes unmapped in *@done; -errno on failure. */
static int unmap(struct vfio *v, uint64_t iova, uint64_t size, uint32_t flags,
		 uint64_t *done)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.flags = flags,
		.iova = iova,
		.size = size,
	};

	if (ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u))
		return -errno;
	if (done)
		*done = u.size;
	return 0;
}

static void wr64(struct vfio *v, unsigned int off, uint64_t val)
{
	*(volatile uint64_t *)(v->bar0 + off) = val;
}

static uint32_t rd32(struct vfio *v, unsigned int off)
{
	return *(volatile uint32_t *)(v->bar0 + off);
}

/* One edu DMA; false when it did not finish within 20 s. */
static bool edu_dma(struct vfio *v, uint64_t src, uint64_t dst, uint64_t cnt,
		    bool from_ram)
{
	int i;

	wr64(v, EDU_DMA_SRC, src);
	wr64(v, EDU_DMA_DST, dst);
	wr64(v, EDU_DMA_CNT, cnt);
	wr64(v, EDU_DMA_CMD, EDU_CMD_START | (from_ram ? 0 : EDU_CMD_TO_RAM));
	for (i = 0; i < 20000; i++) {
		if (!(rd32(v, EDU_DMA_CMD) & EDU_CMD_START))
			return true;
		usleep(1000);
	}
	return false;
}

/* Copy @cnt bytes from IOVA @from to IOVA @to through edu's buffer. */
static bool edu_copy(struct vfio *v, uint64_t from, uint64_t to, uint64_t cnt)
{
	return edu_dma(v, from, EDU_BUF, cnt, true) &&
	       edu_dma(v, EDU_BUF, to, cnt, false);
}

enum backing { B_4K, B_THP, B_HUGETLB, B_MEMFD, B_MEMFD_HUGETLB, B_NR };
static const char *const backing_name[B_NR] = {
	"4 KiB pages", "THP", "hugetlb", "memfd", "memfd hugetlb",
};

/* A buffer of @size bytes with the backing @b, touched; NULL on failure. */
static void *buf_alloc(enum backing b, size_t size)
{
	int fd = -1, mflags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p, *raw;

	switch (b) {
	case B_4K:
	case B_THP:
		/* 2 MiB aligned, so that THPs can back it */
		raw = mmap(NULL, size + SZ_2M, PROT_READ | PROT_WRITE, mflags,
			   -1, 0);
		if (raw == MAP_FAILED)
			return NULL;
		p = (void *)(((uintptr_t)raw + SZ_2M - 1) & ~(SZ_2M - 1));
		if (p != raw)
			munmap(raw, (char *)p - (char *)raw);
		munmap((char *)p + size, SZ_2M - ((char *)p - (char *)raw));
		madvise(p, size, b == B_THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		break;
	case B_HUGETLB:
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 mflags | MAP_HUGETLB, -1, 0);
		break;
	case B_MEMFD:
	case B_MEMFD_HUGETLB:
		fd = memfd_create("vfio_test",
				  b == B_MEMFD_HUGETLB ? MFD_HUGETLB : 0);
		if (fd < 0 || ftruncate(fd, size)) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		break;
	default:
		return NULL;
	}
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, size);
	return p;
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 12));
}

static int64_t pins0;

/* Every FOLL_PIN taken since the last pins_mark() is released. */
static bool pins_balanced(void)
{
	int64_t now;

	return pins_settle(pins0, &now);
}

static void pins_mark(void)
{
	pins0 = pins_outstanding();
}

/* Base of the IOVA window the tests use: the start of the first range. */
static uint64_t iova_base(struct vfio *v)
{
	uint64_t base = v->nr_ranges ? v->ranges[0].start : 0;

	/* 1 GiB aligned and above 0, so 1 GiB pages could be used. */
	return (base + (1ULL << 30)) & ~((1ULL << 30) - 1);
}

static bool movable_span(uint64_t *start, uint64_t *end);
static unsigned long pages_in(void *p, size_t len, uint64_t s, uint64_t e);

/*
 * Kernels whose GUP still walks hugetlb mappings with follow_hugetlb_page()
 * (Debian's 6.1) cannot pin a hugetlb page in ZONE_MOVABLE long-term: the
 * grab fails instead of migrating the page, with a kernel WARNING and
 * ENOMEM, on every VFIO backend.  True when @p (a hugetlb buffer of @len
 * bytes) could not be mapped for that reason.
 */
static bool hugetlb_unpinnable(enum backing b, void *p, size_t len)
{
	static int old_walk = -1;
	char line[256];
	uint64_t s, e;
	FILE *f;

	if (b != B_HUGETLB && b != B_MEMFD_HUGETLB)
		return false;
	if (old_walk < 0) {
		old_walk = 0;
		f = fopen("/proc/kallsyms", "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, " follow_hugetlb_page\n")) {
				old_walk = 1;
				break;
			}
		if (f)
			fclose(f);
	}
	return old_walk && movable_span(&s, &e) && pages_in(p, len, s, e);
}

/*
 * Per backing: map a source buffer (device may read) and a destination
 * buffer (device may write), copy through edu at several offsets
 * (first page, across a 2 MiB boundary, last bytes), check what arrived
 * and that nothing else changed, unmap.
 */
static void test_backing(struct vfio *v, enum backing b)
{
	static const uint64_t offs[] = {
		0, SZ_2M - EDU_XFER / 2, BUF_SIZE - EDU_XFER,
	};
	const char *name = backing_name[b];
	uint64_t src_iova = iova_base(v), dst_iova = src_iova + (1ULL << 30);
	uint8_t *src, *dst, *want;
	uint64_t done1 = 0, done2 = 0;
	bool good = true, dma = true;
	unsigned int i;
	int e1, e2;

	pins_mark();
	src = buf_alloc(b, BUF_SIZE);
	dst = buf_alloc(b, BUF_SIZE);
	want = malloc(BUF_SIZE);
	if (!src || !dst) {
		ok(false, "%s: allocate two %llu MiB buffers (vm.nr_hugepages?)",
		   name, BUF_SIZE >> 20);
		return;
	}
	if (hugetlb_unpinnable(b, src, BUF_SIZE) ||
	    hugetlb_unpinnable(b, dst, BUF_SIZE)) {
		for (i = 0; i < 4; i++)
			ok(true, "# SKIP %s: the pool is in ZONE_MOVABLE, which this kernel cannot pin long-term (follow_hugetlb_page)",
			   name);
		munmap(src, BUF_SIZE);
		munmap(dst, BUF_SIZE);
		free(want);
		return;
	}
	fill(src, BUF_SIZE, b + 1);
	fill(dst, BUF_SIZE, 0x80 + b);
	memcpy(want, dst, BUF_SIZE);

	e1 = map(v, src, src_iova, BUF_SIZE, VFIO_DMA_MAP_FLAG_READ);
	e2 = map(v, dst, dst_iova, BUF_SIZE, RW);
	ok(!e1 && !e2, "%s: MAP_DMA a read-only and a read-write buffer (%d %d)",
	   name, e1, e2);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]) && !e1 && !e2; i++) {
		dma &= edu_copy(v, src_iova + offs[i], dst_iova + offs[i],
				EDU_XFER);
		memcpy(want + offs[i], src + offs[i], EDU_XFER);
	}
	if (!e1 && !e2) {
		good = dma && !memcmp(dst, want, BUF_SIZE);
		ok(good, "%s: edu DMA memory -> device -> memory at %zu offsets: bytes copied, nothing else written",
		   name, sizeof(offs) / sizeof(offs[0]));
	}
	e1 = unmap(v, src_iova, BUF_SIZE, 0, &done1);
	e2 = unmap(v, dst_iova, BUF_SIZE, 0, &done2);
	ok(!e1 && !e2 && done1 == BUF_SIZE && done2 == BUF_SIZE,
	   "%s: UNMAP_DMA both (%d %d, %" PRIu64 " %" PRIu64 " bytes)", name,
	   e1, e2, done1, done2);
	munmap(src, BUF_SIZE);
	munmap(dst, BUF_SIZE);
	free(want);
	ok(pins_balanced(), "%s: pins balanced", name);
}

static void test_errors(struct vfio *v)
{
	uint64_t base = iova_base(v), done = 0, last_end;
	uint8_t *buf = buf_alloc(B_THP, BUF_SIZE);
	uint8_t *saved = malloc(BUF_SIZE);
	int e;

	pins_mark();
	fill(buf, BUF_SIZE, 3);

	ok(!map(v, buf, base, SZ_2M, RW), "map 2 MiB at the base IOVA");
	ok(map(v, buf, base, SZ_2M, RW) == -EEXIST,
	   "the same map again: EEXIST");
	ok(map(v, buf + SZ_1M, base + SZ_1M, SZ_2M, RW) == -EEXIST,
	   "a map overlapping its second half: EEXIST");
	ok(map(v, buf, base - SZ_1M, SZ_2M, RW) == -EEXIST,
	   "a map overlapping its first half: EEXIST");
	ok(map(v, buf, base - SZ_4K * 4, SZ_4K * 4, RW) == 0 &&
	   unmap(v, base - SZ_4K * 4, SZ_4K * 4, 0, &done) == 0 &&
	   done == SZ_4K * 4, "a map just below it: fine, and unmapped");
	ok(map(v, buf, base + SZ_2M + 1, SZ_4K, RW) == -EINVAL,
	   "unaligned IOVA: EINVAL");
	ok(map(v, buf + 1, base + SZ_2M * 2, SZ_4K, RW) == -EINVAL,
	   "unaligned vaddr: EINVAL");
	ok(map(v, buf, base + SZ_2M * 2, SZ_4K + 1, RW) == -EINVAL,
	   "unaligned size: EINVAL");
	ok(map(v, buf, base + SZ_2M * 2, 0, RW) == -EINVAL, "size 0: EINVAL");
	ok(map(v, buf, base + SZ_2M * 2, SZ_4K, 0) == -EINVAL,
	   "neither READ nor WRITE: EINVAL");
	ok(map(v, buf, UINT64_MAX - SZ_4K + 1, SZ_2M, RW) == -EINVAL,
	   "an IOVA range that wraps: EINVAL");
	if (v->nr_ranges) {
		last_end = v->ranges[v->nr_ranges - 1].end;
		ok(map(v, buf, last_end + 1 - SZ_4K, SZ_4K * 2, RW) == -EINVAL,
		   "a map crossing the end of the last IOVA range (0x%" PRIx64 "): EINVAL",
		   (uint64_t)last_end);
		if (v->nr_ranges > 1)
			ok(map(v, buf, v->ranges[0].end + 1, SZ_4K, RW) == -EINVAL,
			   "a map in the reserved hole after the first range (0x%" PRIx64 "): EINVAL",
			   (uint64_t)v->ranges[0].end + 1);
		else
			ok(true, "# SKIP one IOVA range only");
	} else {
		ok(false, "the IOVA range capability is reported");
		ok(false, "the IOVA range capability is reported");
	}

	ok(unmap(v, base, SZ_1M, 0, &done) == -EINVAL,
	   "unmap of the first half of a mapping: EINVAL");
	ok(unmap(v, base + SZ_1M, SZ_1M, 0, &done) == -EINVAL,
	   "unmap of the second half of a mapping: EINVAL");
	ok(unmap(v, base - SZ_1M, SZ_2M, 0, &done) == -EINVAL,
	   "unmap of a range ending inside a mapping: EINVAL");
	ok(unmap(v, base + SZ_1M + 1, SZ_4K, 0, &done) == -EINVAL,
	   "unaligned unmap: EINVAL");
	done = 1;
	ok(unmap(v, base + SZ_2M * 8, SZ_2M, 0, &done) == 0 && done == 0,
	   "unmap of a range with no mapping: success, 0 bytes");
	ok(unmap(v, base - SZ_2M, SZ_2M * 4, 0, &done) == 0 && done == SZ_2M,
	   "unmap of a range holding the whole mapping: 2 MiB");

	/* FLAG_ALL */
	e = map(v, buf, base, SZ_1M, RW) ||
	    map(v, buf + SZ_1M, base + SZ_2M, SZ_1M, VFIO_DMA_MAP_FLAG_READ) ||
	    map(v, buf + SZ_2M, base + (1ULL << 32), SZ_2M, RW);
	ok(!e, "three mappings");
	ok(unmap(v, 4096, 0, VFIO_DMA_UNMAP_FLAG_ALL, &done) == -EINVAL,
	   "UNMAP_FLAG_ALL with an IOVA: EINVAL");
	e = unmap(v, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &done);
	ok(!e && done == SZ_1M * 2 + SZ_2M,
	   "UNMAP_FLAG_ALL: all three (%d, %" PRIu64 " bytes)", e, done);

	/* The IOMMU blocks DMA where nothing, or nothing writable, is mapped. */
	memcpy(saved, buf, BUF_SIZE);
	e = map(v, buf, base, SZ_2M, VFIO_DMA_MAP_FLAG_READ) ||
	    map(v, buf + SZ_2M, base + SZ_2M, SZ_2M, RW);
	ok(!e, "map a read-only and a read-write half");
	ok(!e && edu_dma(v, base + SZ_2M, EDU_BUF, EDU_XFER, true),
	   "edu reads the read-write half");
	ok(!e && edu_dma(v, EDU_BUF, base + 8192, EDU_XFER, false) &&
	   !memcmp(buf, saved, BUF_SIZE),
	   "edu writing into the read-only half is blocked: memory untouched");
	ok(unmap(v, base + SZ_2M, SZ_2M, 0, &done) == 0 && done == SZ_2M,
	   "unmap the read-write half");
	ok(edu_dma(v, EDU_BUF, base + SZ_2M + 4096, EDU_XFER, false) &&
	   !memcmp(buf, saved, BUF_SIZE),
	   "edu writing into the unmapped half is blocked: memory untouched");
	ok(unmap(v, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &done) == 0 &&
	   done == SZ_2M, "unmap the rest");
	munmap(buf, BUF_SIZE);
	free(saved);
	ok(pins_balanced(), "errors: pins balanced");
}

/* ZONE_MOVABLE's PFNs [*start, *end) on node 0; false without one. */
static bool movable_span(uint64_t *start, uint64_t *end)
{
	unsigned long long val, spanned = 0, first = 0;
	char line[256];
	bool in = false;
	FILE *f = fopen("/proc/zoneinfo", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node", 4)) {
			in = strstr(line, " Movable") != NULL;
			continue;
		}
		if (in && sscanf(line, " spanned %llu", &val) == 1)
			spanned = val;
		if (in && sscanf(line, " start_pfn: %llu", &val) == 1)
			first = val;
	}
	if (f)
		fclose(f);
	*start = first;
	*end = first + spanned;
	return spanned;
}

/* Pages of [p, p + len) whose PFN is in [s, e). */
static unsigned long pages_in(void *p, size_t len, uint64_t s, uint64_t e)
{
	unsigned long i, n = len / SZ_4K, c = 0;
	uint64_t *pfn = calloc(n, sizeof(*pfn));

	if (!pfn || pagemap_pfns((uintptr_t)p, n, pfn)) {
		free(pfn);
		return ~0UL;
	}
	for (i = 0; i < n; i++)
		c += pfn[i] >= s && pfn[i] < e;
	free(pfn);
	return c;
}

/*
 * Booted with movablecore=: a buffer that starts in ZONE_MOVABLE leaves it
 * when mapped (a long-term pin migrates it first), and the device reads
 * the process's data from where it went.
 */
static void test_movable(struct vfio *v)
{
	const size_t len = 64 * SZ_1M;
	uint64_t s, e, base = iova_base(v), done = 0;
	unsigned long before, after;
	uint8_t *buf, *dst;
	int e1, e2;

	if (!movable_span(&s, &e)) {
		ok(true, "# SKIP no ZONE_MOVABLE (boot with movablecore=)");
		ok(true, "# SKIP no ZONE_MOVABLE");
		ok(true, "# SKIP no ZONE_MOVABLE");
		ok(true, "# SKIP no ZONE_MOVABLE");
		return;
	}
	pins_mark();
	buf = buf_alloc(B_4K, len);
	dst = buf_alloc(B_4K, SZ_2M);
	if (!buf || !dst) {
		ok(false, "movable: allocate the buffers");
		return;
	}
	fill(buf, len, 9);
	before = pages_in(buf, len, s, e);
	ok(before > 0 && before != ~0UL,
	   "movable: %lu of %zu pages of a buffer start in ZONE_MOVABLE",
	   before, len / SZ_4K);
	e1 = map(v, buf, base, len, VFIO_DMA_MAP_FLAG_READ);
	e2 = map(v, dst, base + (1ULL << 30), SZ_2M, RW);
	after = pages_in(buf, len, s, e);
	ok(!e1 && !e2 && after == 0,
	   "movable: MAP_DMA (%d %d) left %lu of its pages in ZONE_MOVABLE",
	   e1, e2, after);
	ok(!e1 && !e2 &&
	   edu_copy(v, base + len - SZ_2M, base + (1ULL << 30), EDU_XFER) &&
	   !memcmp(dst, buf + len - SZ_2M, EDU_XFER),
	   "movable: edu reads the process's data from the migrated pages");
	unmap(v, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &done);
	munmap(buf, len);
	munmap(dst, SZ_2M);
	ok(pins_balanced(), "movable: pins balanced");
}

/* Drop CAP_IPC_LOCK, so that RLIMIT_MEMLOCK applies to this process. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -1;
	data[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	data[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &hdr, data);
}

/*
 * In a child sharing the container: no CAP_IPC_LOCK, RLIMIT_MEMLOCK of
 * 1 MiB: a 4 MiB map fails with ENOMEM, a 512 KiB one works.
 */
static void test_memlock(struct vfio *v)
{
	uint64_t base = iova_base(v), done = 0;
	int status = -1;
	pid_t pid;

	pins_mark();
	pid = fork();
	if (!pid) {
		struct rlimit rl = { SZ_1M, SZ_1M };
		uint8_t *buf = buf_alloc(B_4K, BUF_SIZE);
		int code = 0;

		if (!buf || drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &rl))
			_exit(10);
		if (map(v, buf, base, BUF_SIZE, RW) != -ENOMEM)
			code |= 1;
		if (map(v, buf, base, SZ_1M / 2, RW))
			code |= 2;
		if (map(v, buf + SZ_1M, base + SZ_1M, SZ_1M, RW) != -ENOMEM)
			code |= 4;
		if (unmap(v, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL, &done) ||
		    done != SZ_1M / 2)
			code |= 8;
		_exit(code);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "RLIMIT_MEMLOCK 1 MiB without CAP_IPC_LOCK: 4 MiB map ENOMEM, 512 KiB fine, 1 MiB more ENOMEM (status 0x%x)",
	   status);
	ok(pins_balanced(), "memlock: pins balanced");
}

/*
 * A child opens the group, maps buffers of every backing and is killed
 * with them mapped: every pin is released, and the group can be opened
 * again.
 */
static void test_killed(void)
{
	int pipefd[2], status = -1;
	struct vfio v2;
	char c[2] = { 0, 0 };
	pid_t pid;

	pins_mark();
	if (pipe(pipefd))
		return;
	pid = fork();
	if (!pid) {
		struct vfio v;
		uint64_t iova;
		void *buf;
		int b, n = 0;

		close(pipefd[0]);
		if (vfio_open(&v, true))
			_exit(1);
		iova = iova_base(&v);
		for (b = 0; b < B_NR; b++) {
			buf = buf_alloc(b, BUF_SIZE);
			if (buf && hugetlb_unpinnable(b, buf, BUF_SIZE))
				c[1]++;
			else if (buf && !map(&v, buf, iova, BUF_SIZE, RW))
				n++;
			iova += 1ULL << 30;
		}
		c[0] = n;
		if (write(pipefd[1], c, 2) != 2)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pipefd[1]);
	if (read(pipefd[0], c, 2) != 2)
		c[0] = -1;
	close(pipefd[0]);
	ok(c[0] >= 0 && c[0] + c[1] == B_NR,
	   "a child maps a buffer of every backing (%d; %d hugetlb in ZONE_MOVABLE left out, which this kernel cannot pin long-term)",
	   c[0], c[1]);
	ok(pins_outstanding() > pins0, "its pins are held");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(pins_balanced(), "SIGKILL with mappings alive: every pin released");
	ok(vfio_open(&v2, true) == 0, "the group opens again");
	vfio_close(&v2);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double median(double *t, int n)
{
	double x;
	int i, j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (t[j] < t[i]) {
				x = t[i];
				t[i] = t[j];
				t[j] = x;
			}
	return t[n / 2];
}

/*
 * MAP_DMA + UNMAP_DMA of 4 KiB .. max_mb MiB per backing, one line each:
 * the medians over several rounds, and with frdma's backend the
 * iommu_map() calls and IOMMU pages of one map.
 */
static int bench(struct vfio *v, unsigned long max_mb, const char *label)
{
	static const char *const pg[] = { "pages_4096", "pages_2097152",
					  "pages_1073741824" };
	static const char *const tag[B_NR] = {
		"4k", "thp", "hugetlb", "memfd", "memfd-hugetlb",
	};
	static const uint64_t sizes[] = {
		SZ_4K, 64 * SZ_4K, SZ_1M, 16 * SZ_1M, 256 * SZ_1M, 1024 * SZ_1M,
	};
	uint64_t size, iova = iova_base(v), done = 0;
	double tm[9], tu[9], t0, t1;
	long long c0, c1, p0[3], p1[3];
	int b, r, rounds, j;
	unsigned int k;
	uint8_t *buf;

	printf("# backend backing bytes map_ms unmap_ms iommu_map_calls pages_4k pages_2m pages_1g\n");
	for (b = 0; b < B_NR; b++) {
		buf = buf_alloc(b, max_mb << 20);
		if (!buf) {
			printf("# %s %s: no buffer of %lu MiB\n", label,
			       backing_name[b], max_mb);
			continue;
		}
		for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			size = sizes[k];
			if (size > (uint64_t)max_mb << 20)
				break;
			if ((b == B_HUGETLB || b == B_MEMFD_HUGETLB) &&
			    size < SZ_2M)
				continue;
			rounds = size <= (64ULL << 20) ? 9 : 3;
			c0 = stat_get("iommu_map_calls");
			for (j = 0; j < 3; j++)
				p0[j] = stat_get(pg[j]);
			for (r = 0; r < rounds; r++) {
				t0 = now_ms();
				if (map(v, buf, iova, size, RW)) {
					printf("# map failed: %s\n",
					       strerror(errno));
					return 1;
				}
				t1 = now_ms();
				if (unmap(v, iova, size, 0, &done) ||
				    done != size)
					return 1;
				tm[r] = t1 - t0;
				tu[r] = now_ms() - t1;
			}
			c1 = stat_get("iommu_map_calls");
			for (j = 0; j < 3; j++)
				p1[j] = stat_get(pg[j]);
			printf("vfio-bench %s %s %" PRIu64 " %.3f %.3f", label,
			       tag[b], size, median(tm, rounds),
			       median(tu, rounds));
			if (want_frdma && c0 >= 0)
				printf(" %lld %lld %lld %lld",
				       (c1 - c0) / rounds,
				       (p1[0] - p0[0]) / rounds,
				       (p1[1] - p0[1]) / rounds,
				       (p1[2] - p0[2]) / rounds);
			else
				printf(" - - - -");
			printf("\n");
			fflush(stdout);
		}
		munmap(buf, max_mb << 20);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *backend = NULL;
	unsigned long max_mb = 1024;
	bool do_bench = false;
	struct vfio v;
	long long containers;
	int i, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			backend = argv[++i];
		else if (!strcmp(argv[i], "--bench"))
			do_bench = true;
		else if (!strcmp(argv[i], "--max-mb") && i + 1 < argc)
			max_mb = strtoul(argv[++i], NULL, 0);
		else
			backend = NULL, i = argc;
	}
	if (!backend || (strcmp(backend, "frdma") && strcmp(backend, "type1"))) {
		fprintf(stderr, "usage: vfio_test --backend frdma|type1 [--bench [--max-mb N]]\n");
		return 2;
	}
	want_frdma = !strcmp(backend, "frdma");
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!find_edu()) {
		printf("1..1\nnot ok 1 - the edu device is there, in an IOMMU group (tests/vm/run --iommu)\n");
		return 1;
	}
	containers = stat_get("containers");
	err = vfio_open(&v, false);
	if (do_bench) {
		if (err) {
			printf("# vfio_open: %s\n", strerror(-err));
			return 1;
		}
		return bench(&v, max_mb, backend);
	}
	printf("1..%d\n", 4 + B_NR * 4 + 29 + 4 + 2 + 4);
	ok(!err, "open group %d (%s) in a type1v2 container, BAR0 mapped (%s)",
	   edu_group, edu_bdf, strerror(-err));
	if (err)
		return 1;
	ok((stat_get("containers") == containers + 1) == want_frdma,
	   "the container is served by %s",
	   want_frdma ? "frdma_vfio" : "another backend (vfio_iommu_type1)");
	ok((v.pgsizes & SZ_4K) && !(v.pgsizes & (SZ_4K - 1)),
	   "GET_INFO: 4 KiB IOVA pages, none smaller (0x%" PRIx64 ")",
	   v.pgsizes);
	ok(v.nr_ranges >= 1 && v.dma_avail > 0,
	   "GET_INFO: IOVA ranges (%u) and DMA mappings available (%u)",
	   v.nr_ranges, v.dma_avail);
	for (i = 0; i < (int)v.nr_ranges; i++)
		diag("IOVA range 0x%llx..0x%llx",
		     (unsigned long long)v.ranges[i].start,
		     (unsigned long long)v.ranges[i].end);

	for (i = 0; i < B_NR; i++)
		test_backing(&v, i);
	test_errors(&v);
	test_movable(&v);
	test_memlock(&v);
	if (want_frdma)
		diag("frdma_vfio: %lld iommu_map() calls, %lld 4 KiB, %lld 2 MiB, %lld 1 GiB IOMMU pages",
		     stat_get("iommu_map_calls"), stat_get("pages_4096"),
		     stat_get("pages_2097152"), stat_get("pages_1073741824"));
	vfio_close(&v);
	test_killed();
	return failed ? 1 : 0;
}
