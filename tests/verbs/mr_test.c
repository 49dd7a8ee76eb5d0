// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * mr_test [-d DEVICE]: memory regions on an frdma device.
 *
 * Registration pins exactly the pages a range touches (4 KiB buffers,
 * ranges starting and ending mid-page, a THP-backed 64 MiB buffer in a few
 * runs, a memfd) and deregistration releases them; an iova other than the
 * address is accepted; lkey == rkey, keys are unique and their low (key)
 * byte is random; the IBTA access rules and the length limits are enforced;
 * unmapped memory and writable registration of read-only memory fail with
 * EFAULT; RLIMIT_MEMLOCK is enforced for a process without CAP_IPC_LOCK;
 * "rdma res show mr -dd" shows each MR's runs; ibv_rereg_mr changes the
 * rights and the PD in place, keeping the keys, and the translation by a
 * new registration; the fault switch in
 * /sys/kernel/debug/frdma makes registration fail with ENOMEM at each of
 * its failure points, leaving nothing pinned.  Memory windows (type 1
 * and 2) grant remote access to part of an MR exactly while bound, within
 * their bounds, rights, PD and (type 2) QP; an access through an unbound,
 * invalidated or deallocated window completes with IBV_WC_REM_ACCESS_ERR
 * and writes nothing; bind rule violations complete with
 * IBV_WC_MW_BIND_ERR; an MR with a bound window cannot be deregistered;
 * ATOMIC_WRITE stores 8 bytes.  Around everything, frdma's
 * debugfs counters and the kernel's foll-pin counters come back to where
 * they started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include <infiniband/verbs.h>

#include "../lib/procfs.h"
#include "loopback.h"
#include "device.h"
#include "tap.h"

#define KIB		1024UL
#define MIB		(1024 * KIB)
#define PAGE		4096UL
#define DBG		"/sys/kernel/debug/frdma/"

#define RW_ALL	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

/*
 * The RDMA core refuses ON_DEMAND on a device without ODP before the
 * driver sees it: with EOPNOTSUPP, and with EINVAL in 6.1.
 */
static int core_odp_errno(void)
{
	struct utsname u;
	unsigned int major = 0, minor = 0;

	if (!uname(&u))
		sscanf(u.release, "%u.%u", &major, &minor);
	return major == 6 && minor == 1 ? EINVAL : EOPNOTSUPP;
}

static const char *dev_name = "frdma0";


/* A number read from a file, or -1 (with a diagnostic) if unreadable. */
static long long read_num(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (!f || fscanf(f, "%lld", &v) != 1) {
		diag("cannot read %s: %s", path, strerror(errno));
		v = -1;
	}
	if (f)
		fclose(f);
	return v;
}

static bool write_num(const char *path, long long v)
{
	FILE *f = fopen(path, "w");
	bool ret;

	if (!f) {
		diag("cannot open %s: %s", path, strerror(errno));
		return false;
	}
	ret = fprintf(f, "%lld\n", v) > 0;
	ret = !fclose(f) && ret;
	return ret;
}

/* What frdma and the kernel say is pinned and registered right now. */
struct snap {
	long long mr, mw, runs, pages, pd, acquired, released, vmpin;
};

static void snap(struct snap *s)
{
	uint64_t acq, rel;

	/* Fold the per-CPU vmstat deltas, or small changes stay invisible. */
	write_num("/proc/sys/vm/stat_refresh", 1);
	s->mr = read_num(DBG "mr");
	s->mw = read_num(DBG "mw");
	s->runs = read_num(DBG "runs");
	s->pages = read_num(DBG "pinned_pages");
	s->pd = read_num(DBG "pd");
	if (foll_pins(&acq, &rel)) {
		s->acquired = acq;
		s->released = rel;
	} else {
		s->acquired = s->released = -1;
	}
	s->vmpin = vmpin_kb();
}

/*
 * Pins taken and not released since @s, in the whole system.  The VM's
 * 9p root pins user buffers briefly for its own I/O, so this polls (a
 * bounded number of times) until the count is @want, and returns the last
 * count seen.
 */
static long long pins_held(const struct snap *s, long long want)
{
	struct snap now;
	long long held = 0;
	int i;

	for (i = 0; i < 200; i++) {
		snap(&now);
		held = (now.acquired - s->acquired) -
		       (now.released - s->released);
		if (held == want)
			break;
		usleep(10000);
	}
	return held;
}

static bool same_counters(const struct snap *a, const struct snap *b)
{
	return a->mr == b->mr && a->mw == b->mw && a->runs == b->runs &&
	       a->pages == b->pages && a->vmpin == b->vmpin;
}

static void *map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Register [addr, addr + len) and check the counters moved by one MR and
 * @pages pages; deregister and check they moved back.
 */
static void reg_dereg(struct ibv_pd *pd, void *addr, size_t len, int access,
		      long long pages, const char *what)
{
	struct snap before, during, after;
	struct ibv_mr *mr;
	long long held;

	snap(&before);
	mr = ibv_reg_mr(pd, addr, len, access);
	if (!ok(mr != NULL, "%s: ibv_reg_mr(%zu bytes, access %#x): %s", what,
		len, access, mr ? "ok" : strerror(errno)))
		return;
	snap(&during);
	ok(mr->lkey == mr->rkey, "  lkey %#x == rkey %#x", mr->lkey, mr->rkey);
	ok(mr->addr == addr && mr->length == len, "  addr and length reported");
	ok(during.mr == before.mr + 1 && during.pages == before.pages + pages &&
	   during.runs > before.runs && during.runs - before.runs <= pages,
	   "  debugfs: mr +%lld, pinned_pages +%lld (want %lld), runs +%lld",
	   during.mr - before.mr, during.pages - before.pages, pages,
	   during.runs - before.runs);
	held = pins_held(&before, pages);
	ok(held == pages,
	   "  vmstat: %lld pins held (want %lld)", held, pages);
	ok(during.vmpin - before.vmpin == pages * (long long)(PAGE / KIB),
	   "  VmPin +%lld kB", during.vmpin - before.vmpin);
	ok(!ibv_dereg_mr(mr), "  ibv_dereg_mr");
	snap(&after);
	held = pins_held(&before, 0);
	ok(same_counters(&before, &after) && !held,
	   "  after dereg: counters back, %lld pins held", held);
}

static void test_basic(struct ibv_pd *pd)
{
	int access[] = { 0, IBV_ACCESS_LOCAL_WRITE, IBV_ACCESS_REMOTE_READ,
			 IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
			 RW_ALL, RW_ALL | IBV_ACCESS_RELAXED_ORDERING };
	char *buf = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
	unsigned int i;

	if (!ok(buf != NULL, "map 64 KiB"))
		return;
	memset(buf, 0x5a, 16 * PAGE);
	for (i = 0; i < sizeof(access) / sizeof(access[0]); i++)
		reg_dereg(pd, buf, PAGE, access[i], 1, "4 KiB");
	reg_dereg(pd, buf + 100, 3 * PAGE, RW_ALL, 4,
		  "start mid-page, end mid-page");
	reg_dereg(pd, buf + PAGE - 1, 2, RW_ALL, 2, "2 bytes across a page edge");
	reg_dereg(pd, buf + 5 * PAGE + 17, 1, RW_ALL, 1, "1 byte");
	reg_dereg(pd, buf + PAGE, 7 * PAGE - 9, IBV_ACCESS_LOCAL_WRITE, 7,
		  "page start, end mid-page");
	munmap(buf, 16 * PAGE);
}

/* The line of "rdma res show mr -dd" for the MR with @lkey. */
static bool rdma_res_line(uint32_t lkey, char *line, size_t size)
{
	char want[32];
	bool found = false;
	FILE *p;

	p = popen("rdma res show mr -dd 2>&1", "r");
	if (!p)
		return false;
	snprintf(want, sizeof(want), "lkey 0x%x ", lkey);
	while (fgets(line, size, p))
		if (strstr(line, want)) {
			found = true;
			break;
		}
	while (!found && fgetc(p) != EOF)
		;
	pclose(p);
	line[strcspn(line, "\n")] = 0;
	return found;
}

/* A driver attribute, which rdma(8) prints with a "drv_" prefix. */
static long long attr_of(const char *line, const char *name)
{
	char key[40];
	const char *p;

	snprintf(key, sizeof(key), " drv_%s ", name);
	p = strstr(line, key);
	return p ? strtoll(p + strlen(key), NULL, 0) : -1;
}

static void test_thp(struct ibv_pd *pd)
{
	size_t len = 64 * MIB, huge = 2 * MIB;
	struct snap before, during, after;
	long long runs, thp_kb = -1;
	char line[1024], name[64];
	struct ibv_mr *mr;
	char *raw, *buf;
	long long v;
	FILE *f;

	raw = map_anon(len + huge, PROT_READ | PROT_WRITE);
	if (!ok(raw != NULL, "map 66 MiB"))
		return;
	buf = (char *)(((uintptr_t)raw + huge - 1) & ~(huge - 1));
	madvise(buf, len, MADV_HUGEPAGE);
	memset(buf, 1, len);
	f = fopen("/proc/self/smaps_rollup", "r");
	while (f && fscanf(f, "%63s", name) == 1)
		if (!strcmp(name, "AnonHugePages:") && fscanf(f, "%lld", &v) == 1)
			thp_kb = v;
	if (f)
		fclose(f);
	diag("AnonHugePages: %lld kB", thp_kb);

	snap(&before);
	mr = ibv_reg_mr(pd, buf, len, RW_ALL);
	if (!ok(mr != NULL, "64 MiB THP buffer: ibv_reg_mr: %s",
		mr ? "ok" : strerror(errno))) {
		munmap(raw, len + huge);
		return;
	}
	snap(&during);
	runs = during.runs - before.runs;
	ok(during.pages - before.pages == (long long)(len / PAGE),
	   "  pinned_pages +%lld", during.pages - before.pages);
	if (thp_kb >= (long long)(len / KIB))
		ok(runs >= 1 && runs <= (long long)(len / huge),
		   "  all THP: %lld runs, at most one per 2 MiB folio", runs);
	else
		diag("  not all THP (%lld kB): %lld runs", thp_kb, runs);

	if (ok(rdma_res_line(mr->lkey, line, sizeof(line)),
	       "  rdma res show mr -dd lists it")) {
		diag("  %s", line);
		ok(attr_of(line, "runs") == runs &&
		   attr_of(line, "pinned_pages") == (long long)(len / PAGE) &&
		   attr_of(line, "largest_run") >= (runs == 1 ? (long long)(len / PAGE) : 1) &&
		   attr_of(line, "meta_bytes") > 0 &&
		   attr_of(line, "meta_bytes") < 64 * (long long)KIB,
		   "  runs %lld, pinned_pages %lld, largest_run %lld, meta_bytes %lld",
		   attr_of(line, "runs"), attr_of(line, "pinned_pages"),
		   attr_of(line, "largest_run"), attr_of(line, "meta_bytes"));
	}
	ok(!ibv_dereg_mr(mr), "  ibv_dereg_mr");
	snap(&after);
	v = pins_held(&before, 0);
	ok(same_counters(&before, &after) && !v,
	   "  after dereg: counters back, %lld pins held", v);
	munmap(raw, len + huge);
}

static void test_memfd(struct ibv_pd *pd)
{
	size_t len = MIB;
	char *buf;
	int fd;

	fd = memfd_create("mr_test", 0);
	if (!ok(fd >= 0 && !ftruncate(fd, len), "memfd of 1 MiB"))
		return;
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ok(buf != MAP_FAILED, "  mmap it shared")) {
		memset(buf, 3, len);
		reg_dereg(pd, buf, len, RW_ALL, len / PAGE, "memfd");
		reg_dereg(pd, buf + 3 * PAGE + 5, 5 * PAGE, IBV_ACCESS_LOCAL_WRITE,
			  6, "memfd, mid-page");
		munmap(buf, len);
	}
	close(fd);
}

static void test_iova(struct ibv_pd *pd)
{
	char *buf = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	uint64_t iova = 0x7f0000000000ULL + 123;
	struct ibv_mr *mr;

	if (!ok(buf != NULL, "map 32 KiB"))
		return;
	mr = ibv_reg_mr_iova(pd, buf + 123, 4 * PAGE, iova, RW_ALL);
	ok(mr != NULL, "ibv_reg_mr_iova with iova %#" PRIx64 " != address %p: %s",
	   iova, (void *)(buf + 123), mr ? "ok" : strerror(errno));
	if (mr)
		ok(!ibv_dereg_mr(mr), "  ibv_dereg_mr");
	/* iova 0, a common choice for zero-based addressing */
	mr = ibv_reg_mr_iova(pd, buf, 4 * PAGE, 0, IBV_ACCESS_LOCAL_WRITE);
	ok(mr != NULL, "ibv_reg_mr_iova with iova 0: %s",
	   mr ? "ok" : strerror(errno));
	if (mr)
		ibv_dereg_mr(mr);
	/* an iova range that wraps around */
	errno = 0;
	mr = ibv_reg_mr_iova(pd, buf, 4 * PAGE, UINT64_MAX - PAGE + 1,
			     IBV_ACCESS_LOCAL_WRITE);
	ok(!mr && errno == EINVAL, "an iova range past 2^64 is EINVAL (%s)",
	   strerror(errno));
	if (mr)
		ibv_dereg_mr(mr);
	munmap(buf, 8 * PAGE);
}

/*
 * ibv_rereg_mr(): 0, the errno of a failure, or -1 when rereg_mr is not
 * supported (libibverbs says IBV_REREG_MR_ERR_* and sets errno).
 */
static int rereg(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr,
		 size_t len, int access)
{
	int ret;

	errno = 0;
	ret = ibv_rereg_mr(mr, flags, pd, addr, len, access);
	if (!ret)
		return 0;
	if (errno == EOPNOTSUPP)
		return -1;
	return errno ? errno : ret;
}

/* Post one work request on @qp and wait for its completion. */
static int post_wait(struct ibv_qp *qp, struct ibv_cq *cq,
		     struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad;
	struct ibv_wc wc;

	wr->send_flags = IBV_SEND_SIGNALED;
	if (ibv_post_send(qp, wr, &bad))
		return -1;
	if (lb_poll(cq, &wc, 1) != 1)
		return -2;
	return wc.status == IBV_WC_SUCCESS ? 0 : 1000 + wc.status;
}

/*
 * The data path addresses an MR by iova: register a buffer at an iova
 * unrelated to its address (same page offset, as the core requires) and
 * write, read and update it through a loopback connection.
 */
static void test_iova_data(struct ibv_context *ctx, struct ibv_pd *pd)
{
	size_t len = 16 * PAGE, off = 3 * PAGE - 40, n = 5 * PAGE + 80;
	struct ibv_mr *lmr = NULL, *rmr = NULL;
	struct ibv_qp *a = NULL, *b = NULL;
	struct ibv_cq *cq = NULL;
	struct ibv_send_wr wr;
	struct ibv_sge sge;
	char *lbuf, *rbuf, *want;
	uint64_t iova, v, *res;
	union ibv_gid gid;
	int gidx = 0, ret, st;
	size_t i;

	lbuf = map_anon(len, PROT_READ | PROT_WRITE);
	rbuf = map_anon(len, PROT_READ | PROT_WRITE);
	want = malloc(len);
	if (!ok(lbuf && rbuf && want, "iova data path: buffers"))
		return;
	for (i = 0; i < len; i++) {
		lbuf[i] = (char)(i * 7 + 1);
		rbuf[i] = (char)0xee;
	}
	memcpy(want, rbuf, len);
	iova = 0x100000000000ULL + 0x5000;	/* page offset 0, like rbuf */

	if (!ok(!lb_find_gid(ctx, &gidx, &gid), "  an IPv4 RoCE GID"))
		goto out;
	cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	a = cq ? lb_create_qp(pd, cq, cq, 8, 1, 0) : NULL;
	b = cq ? lb_create_qp(pd, cq, cq, 8, 1, 0) : NULL;
	if (!ok(a && b && !lb_connect_pair(a, b, &gid, gidx, 1),
		"  a connected pair of RC QPs"))
		goto out;
	lmr = ibv_reg_mr(pd, lbuf, len, IBV_ACCESS_LOCAL_WRITE);
	rmr = ibv_reg_mr_iova(pd, rbuf, len, iova, RW_ALL);
	if (!ok(lmr && rmr, "  local MR, and remote MR at iova %#" PRIx64,
		iova))
		goto out;

	memset(&wr, 0, sizeof(wr));
	wr.sg_list = &sge;
	wr.num_sge = 1;
	sge.addr = (uintptr_t)lbuf + 100;
	sge.length = n;
	sge.lkey = lmr->lkey;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.wr.rdma.remote_addr = iova + off;
	wr.wr.rdma.rkey = rmr->rkey;
	ret = post_wait(a, cq, &wr);
	memcpy(want + off, lbuf + 100, n);
	ok(!ret && !memcmp(rbuf, want, len),
	   "  RDMA WRITE of %zu bytes to iova + %zu lands at address + %zu, nothing else changes (%d)",
	   n, off, off, ret);

	memset(lbuf, 0, len);
	sge.addr = (uintptr_t)lbuf + 1;
	wr.opcode = IBV_WR_RDMA_READ;
	ret = post_wait(a, cq, &wr);
	ok(!ret && !memcmp(lbuf + 1, rbuf + off, n),
	   "  RDMA READ from iova + %zu reads address + %zu (%d)", off, off,
	   ret);

	res = (uint64_t *)lbuf;
	*(uint64_t *)(rbuf + 4 * PAGE + 8) = 1000;
	sge.addr = (uintptr_t)res;
	sge.length = 8;
	wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	wr.wr.atomic.remote_addr = iova + 4 * PAGE + 8;
	wr.wr.atomic.rkey = rmr->rkey;
	wr.wr.atomic.compare_add = 234;
	ret = post_wait(a, cq, &wr);
	v = *(uint64_t *)(rbuf + 4 * PAGE + 8);
	ok(!ret && *res == 1000 && v == 1234,
	   "  FETCH_AND_ADD at an iova: returned %" PRIu64 ", now %" PRIu64 " (%d)",
	   *res, v, ret);
	wr.opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
	wr.wr.atomic.compare_add = 1234;
	wr.wr.atomic.swap = 42;
	ret = post_wait(a, cq, &wr);
	v = *(uint64_t *)(rbuf + 4 * PAGE + 8);
	ok(!ret && *res == 1234 && v == 42,
	   "  CMP_AND_SWP at an iova (equal): returned %" PRIu64 ", now %" PRIu64 " (%d)",
	   *res, v, ret);
	ret = post_wait(a, cq, &wr);
	v = *(uint64_t *)(rbuf + 4 * PAGE + 8);
	ok(!ret && *res == 42 && v == 42,
	   "  CMP_AND_SWP at an iova (different): returned %" PRIu64 ", still %" PRIu64 " (%d)",
	   *res, v, ret);

	/* Taking REMOTE_WRITE away stops RDMA WRITEs at once. */
	ret = rereg(rmr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
		    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	if (ret == -1) {
		ok(true, "# SKIP the provider has no rereg_mr");
		goto out;
	}
	memcpy(want, rbuf, len);
	sge.addr = (uintptr_t)lbuf;
	sge.length = 64;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.wr.rdma.remote_addr = iova;
	wr.wr.rdma.rkey = rmr->rkey;
	memset(lbuf, 0x77, 64);
	st = post_wait(a, cq, &wr);
	ok(!ret && st == 1000 + IBV_WC_REM_ACCESS_ERR && !memcmp(rbuf, want, len),
	   "  after rereg without REMOTE_WRITE, RDMA WRITE completes with %s and writes nothing",
	   st >= 1000 ? ibv_wc_status_str(st - 1000) : "no error");
out:
	if (lmr)
		ibv_dereg_mr(lmr);
	if (rmr)
		ibv_dereg_mr(rmr);
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (cq)
		ibv_destroy_cq(cq);
	free(want);
	munmap(lbuf, len);
	munmap(rbuf, len);
}

/*
 * Memory windows and ATOMIC_WRITE.  The remote buffer is WIN_PAGES pages
 * of known bytes; the MR covers pages 1 .. WIN_PAGES - 2 with LOCAL_WRITE
 * and MW_BIND only (no remote right of its own), so every byte a remote
 * access reaches, it reaches through a window, and the first and last
 * pages are canaries.  After every step the whole buffer is compared with
 * what the successful operations alone should have made of it.
 */
#define WIN_PAGES	8
#define WIN_OFF		(2 * PAGE + 100)	/* window start in the buffer */
#define WIN_LEN		3000
#define DEV_ATOMIC_WRITE	(1ULL << 40)	/* IB_UVERBS_DEVICE_ATOMIC_WRITE */

struct mwt {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	union ibv_gid gid;
	int gidx;
	char *lbuf, *rbuf, *want;
	struct ibv_mr *lmr, *rmr;
	/* a fresh connected pair per step: errors leave QPs in error */
	struct ibv_cq *cq, *rcq;
	struct ibv_qp *a, *b;
};

static void mwt_pair_free(struct mwt *t)
{
	if (t->a)
		ibv_destroy_qp(t->a);
	if (t->b)
		ibv_destroy_qp(t->b);
	if (t->cq)
		ibv_destroy_cq(t->cq);
	if (t->rcq)
		ibv_destroy_cq(t->rcq);
	t->a = t->b = NULL;
	t->cq = t->rcq = NULL;
}

/* A connected pair: a (requester, CQ cq) and b (responder, CQ rcq). */
static bool mwt_pair(struct mwt *t)
{
	mwt_pair_free(t);
	t->cq = ibv_create_cq(t->ctx, 16, NULL, NULL, 0);
	t->rcq = ibv_create_cq(t->ctx, 16, NULL, NULL, 0);
	if (t->cq && t->rcq) {
		t->a = lb_create_qp(t->pd, t->cq, t->cq, 8, 1, 0);
		t->b = lb_create_qp(t->pd, t->rcq, t->rcq, 8, 1, 0);
	}
	return ok(t->a && t->b && !lb_connect_pair(t->a, t->b, &t->gid,
						      t->gidx, 1),
		  "  a connected pair of RC QPs");
}

/* Post @wr (signalled) on @qp, wait on @cq; 0, IBV_WC_* + 1000, or < 0. */
static int mwt_post(struct ibv_qp *qp, struct ibv_cq *cq,
		    struct ibv_send_wr *wr)
{
	return post_wait(qp, cq, wr);
}

/* An RDMA WRITE of @len bytes of pattern @c to @raddr with @rkey from a. */
static int mwt_write(struct mwt *t, uint32_t rkey, uint64_t raddr,
		     uint32_t len, char c)
{
	struct ibv_sge sge = { (uintptr_t)t->lbuf, len, t->lmr->lkey };
	struct ibv_send_wr wr = {
		.opcode = IBV_WR_RDMA_WRITE, .sg_list = &sge, .num_sge = 1,
	};

	memset(t->lbuf, c, len);
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return mwt_post(t->a, t->cq, &wr);
}

/* A type 2 bind (or any BIND_MW work request) posted on @qp. */
static int mwt_bind2(struct ibv_qp *qp, struct ibv_cq *cq, struct ibv_mw *mw,
		     uint32_t rkey, struct ibv_mr *mr, uint64_t addr,
		     uint64_t len, int access)
{
	struct ibv_send_wr wr = { .wr_id = 77, .opcode = IBV_WR_BIND_MW };

	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = mr;
	wr.bind_mw.bind_info.addr = addr;
	wr.bind_mw.bind_info.length = len;
	wr.bind_mw.bind_info.mw_access_flags = access;
	return mwt_post(qp, cq, &wr);
}

/* ibv_bind_mw() of a type 1 window on @qp and its completion. */
static int mwt_bind1(struct ibv_qp *qp, struct ibv_cq *cq, struct ibv_mw *mw,
		     struct ibv_mr *mr, uint64_t addr, uint64_t len,
		     int access)
{
	struct ibv_mw_bind b = {
		.wr_id = 78, .send_flags = IBV_SEND_SIGNALED,
		.bind_info = { .mr = mr, .addr = addr, .length = len,
			       .mw_access_flags = access },
	};
	struct ibv_wc wc;

	if (ibv_bind_mw(qp, mw, &b))
		return -1;
	if (lb_poll(cq, &wc, 1) != 1)
		return -2;
	if (wc.status == IBV_WC_SUCCESS && wc.opcode != IBV_WC_BIND_MW)
		return -3;
	return wc.status == IBV_WC_SUCCESS ? 0 : 1000 + wc.status;
}

static const char *st_str(int st)
{
	if (st >= 1000)
		return ibv_wc_status_str(st - 1000);
	return st ? "not posted or no completion" : "success";
}

/* Did the remote buffer change only as expected?  Names the first byte. */
static bool mwt_same(struct mwt *t, const char *what)
{
	size_t i;

	for (i = 0; i < WIN_PAGES * PAGE; i++)
		if (t->rbuf[i] != t->want[i])
			break;
	return ok(i == WIN_PAGES * PAGE,
		  "  %s: the remote buffer holds what it should%s", what,
		  i == WIN_PAGES * PAGE ? "" :
		  i < PAGE || i >= (WIN_PAGES - 1) * PAGE ?
		  " (NOT: a canary page changed)" : " (NOT: MR bytes changed)");
}

#define REM_ERR		(1000 + IBV_WC_REM_ACCESS_ERR)

static void test_mw(struct ibv_context *ctx, struct ibv_pd *pd)
{
	struct mwt t = { .ctx = ctx, .pd = pd };
	uint64_t win = 0, old1, *w;
	struct ibv_device_attr_ex ax = {};
	struct ibv_mw *mw1 = NULL, *mw2 = NULL, *mw3;
	struct ibv_mr *nobind = NULL;
	struct ibv_recv_wr rwr = { .wr_id = 5 }, *rbad;
	struct ibv_send_wr wr;
	struct ibv_wc wc;
	uint32_t k2;
	long long nmw;
	int st, ret;

	ok(!ibv_query_device_ex(ctx, NULL, &ax) &&
	   (ax.orig_attr.device_cap_flags & IBV_DEVICE_MEM_WINDOW) &&
	   (ax.orig_attr.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B) &&
	   (ax.device_cap_flags_ex & DEV_ATOMIC_WRITE) &&
	   ax.orig_attr.max_mw > 0,
	   "memory windows: the device reports MEM_WINDOW, TYPE_2B, ATOMIC_WRITE and max_mw %d",
	   ax.orig_attr.max_mw);
	t.lbuf = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
	t.rbuf = map_anon(WIN_PAGES * PAGE, PROT_READ | PROT_WRITE);
	t.want = malloc(WIN_PAGES * PAGE);
	if (!ok(t.lbuf && t.rbuf && t.want && !lb_find_gid(ctx, &t.gidx, &t.gid),
		"  buffers and an IPv4 RoCE GID"))
		goto out;
	memset(t.rbuf, 0xc5, WIN_PAGES * PAGE);
	memcpy(t.want, t.rbuf, WIN_PAGES * PAGE);
	t.lmr = ibv_reg_mr(pd, t.lbuf, 4 * PAGE, IBV_ACCESS_LOCAL_WRITE);
	t.rmr = ibv_reg_mr(pd, t.rbuf + PAGE, (WIN_PAGES - 2) * PAGE,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
	nobind = ibv_reg_mr(pd, t.rbuf + PAGE, (WIN_PAGES - 2) * PAGE,
			    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!ok(t.lmr && t.rmr && nobind,
		"  MRs registered, one with MW_BIND (%s)", strerror(errno)))
		goto out;
	win = (uintptr_t)t.rbuf + WIN_OFF;

	/* Type 1: bind, use, rebind with zero length (unbind). */
	nmw = read_num(DBG "mw");
	mw1 = ibv_alloc_mw(pd, IBV_MW_TYPE_1);
	if (!ok(mw1 != NULL, "ibv_alloc_mw type 1 (%s)", strerror(errno)) ||
	    !mwt_pair(&t))
		goto out;
	ok(nmw >= 0 && read_num(DBG "mw") == nmw + 1,
	   "  debugfs mw counts the window (%lld before)", nmw);
	old1 = mw1->rkey;
	st = mwt_bind1(t.b, t.rcq, mw1, t.rmr, win, WIN_LEN,
		       IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	ok(!st && (mw1->rkey >> 8) == (old1 >> 8) && mw1->rkey != old1,
	   "  ibv_bind_mw type 1 completes with IBV_WC_BIND_MW, a new key byte (%s)",
	   st_str(st));
	st = mwt_write(&t, mw1->rkey, win, WIN_LEN, 'a');
	memset(t.want + WIN_OFF, 'a', WIN_LEN);
	ok(st == 0, "  RDMA WRITE of the whole window through its rkey (%s)",
	   st_str(st));
	mwt_same(&t, "window written");
	st = mwt_write(&t, mw1->rkey, win + 1, WIN_LEN, 'x');
	ok(st == REM_ERR, "  one byte past the window: %s", st_str(st));
	mwt_same(&t, "past the window");

	if (!mwt_pair(&t))
		goto out;
	st = mwt_write(&t, mw1->rkey, win - 8, 16, 'x');
	ok(st == REM_ERR, "  8 bytes before the window (inside the MR): %s",
	   st_str(st));
	mwt_same(&t, "before the window");

	if (!mwt_pair(&t))
		goto out;
	st = mwt_write(&t, t.rmr->rkey, win, 16, 'x');
	ok(st == REM_ERR, "  the MR's own rkey (no remote rights): %s",
	   st_str(st));
	mwt_same(&t, "the MR's rkey");

	if (!mwt_pair(&t))
		goto out;
	old1 = mw1->rkey;
	st = mwt_bind1(t.b, t.rcq, mw1, t.rmr, win, 0, 0);
	ok(!st, "  ibv_bind_mw with length 0 unbinds the type 1 window (%s)",
	   st_str(st));
	st = mwt_write(&t, old1, win, 16, 'x');
	ok(st == REM_ERR, "  its old rkey after the unbind: %s", st_str(st));
	mwt_same(&t, "unbound type 1 window");

	if (!mwt_pair(&t))
		goto out;
	st = mwt_write(&t, mw1->rkey, win, 16, 'x');
	ok(st == REM_ERR, "  its new rkey while unbound: %s", st_str(st));
	mwt_same(&t, "unbound type 1 window, new rkey");

	/* dereg_mr refuses an MR with a bound window. */
	if (!mwt_pair(&t))
		goto out;
	st = mwt_bind1(t.b, t.rcq, mw1, t.rmr, win, 64, IBV_ACCESS_REMOTE_READ);
	ret = ibv_dereg_mr(t.rmr);
	ok(!st && ret == EBUSY,
	   "  ibv_dereg_mr of an MR with a bound window fails with EBUSY (%s)",
	   ret ? strerror(ret) : "deregistered");
	if (!ret) {
		t.rmr = NULL;
		goto out;
	}
	old1 = mw1->rkey;
	ret = ibv_dealloc_mw(mw1);
	mw1 = NULL;
	ok(!ret, "  ibv_dealloc_mw of the bound window");
	if (!mwt_pair(&t))
		goto out;
	{
		struct ibv_sge sge = { (uintptr_t)t.lbuf, 64, t.lmr->lkey };

		memset(&wr, 0, sizeof(wr));
		wr.opcode = IBV_WR_RDMA_READ;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.wr.rdma.remote_addr = win;
		wr.wr.rdma.rkey = old1;
		st = mwt_post(t.a, t.cq, &wr);
	}
	ok(st == REM_ERR, "  RDMA READ through a deallocated window: %s",
	   st_str(st));

	/* Type 2: bound by a work request, associated with that QP. */
	mw2 = ibv_alloc_mw(pd, IBV_MW_TYPE_2);
	if (!ok(mw2 != NULL, "ibv_alloc_mw type 2 (%s)", strerror(errno)) ||
	    !mwt_pair(&t))
		goto out;
	k2 = ibv_inc_rkey(mw2->rkey);
	st = mwt_bind2(t.b, t.rcq, mw2, k2, t.rmr, win, WIN_LEN,
		       IBV_ACCESS_REMOTE_WRITE);
	ok(!st, "  BIND_MW type 2 on the responder QP (%s)", st_str(st));
	st = mwt_write(&t, k2, win + 8, 8, 'b');
	memset(t.want + WIN_OFF + 8, 'b', 8);
	ok(st == 0, "  RDMA WRITE through it (%s)", st_str(st));
	mwt_same(&t, "type 2 window written");
	st = mwt_bind2(t.b, t.rcq, mw2, ibv_inc_rkey(k2), t.rmr, win, 8,
		       IBV_ACCESS_REMOTE_WRITE);
	ok(st == 1000 + IBV_WC_MW_BIND_ERR,
	   "  binding a bound type 2 window again: %s", st_str(st));

	/* The association: the same rkey arriving at another QP. */
	if (!mwt_pair(&t))
		goto out;
	st = mwt_write(&t, k2, win + 8, 8, 'x');
	ok(st == REM_ERR, "  its rkey arriving at another QP of the PD: %s",
	   st_str(st));
	mwt_same(&t, "type 2 window, another QP");
	/* (the window stays bound to the destroyed QP's number, unusable) */
	ret = ibv_dealloc_mw(mw2);
	mw2 = NULL;
	ok(!ret, "  ibv_dealloc_mw");

	/* LOCAL_INV, then SEND_WITH_INV. */
	mw2 = ibv_alloc_mw(pd, IBV_MW_TYPE_2);
	if (!ok(mw2 != NULL, "ibv_alloc_mw type 2 again") || !mwt_pair(&t))
		goto out;
	k2 = ibv_inc_rkey(mw2->rkey);
	st = mwt_bind2(t.b, t.rcq, mw2, k2, t.rmr, win, WIN_LEN,
		       IBV_ACCESS_REMOTE_WRITE);
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_LOCAL_INV;
	wr.invalidate_rkey = k2;
	ret = mwt_post(t.b, t.rcq, &wr);
	ok(!st && !ret, "  bound, then LOCAL_INV (%s, %s)", st_str(st),
	   st_str(ret));
	st = mwt_write(&t, k2, win, 8, 'x');
	ok(st == REM_ERR, "  its rkey after LOCAL_INV: %s", st_str(st));
	mwt_same(&t, "locally invalidated window");

	if (!mwt_pair(&t))
		goto out;
	k2 = ibv_inc_rkey(k2);
	st = mwt_bind2(t.b, t.rcq, mw2, k2, t.rmr, win, WIN_LEN,
		       IBV_ACCESS_REMOTE_WRITE);
	ok(!st, "  the invalidated window binds again (%s)", st_str(st));
	ret = ibv_post_recv(t.b, &rwr, &rbad);
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_SEND_WITH_INV;
	wr.invalidate_rkey = k2;
	st = ret ? -1 : mwt_post(t.a, t.cq, &wr);
	ret = lb_poll(t.rcq, &wc, 1);
	ok(!st && ret == 1 && wc.status == IBV_WC_SUCCESS &&
	   (wc.wc_flags & IBV_WC_WITH_INV) && wc.invalidated_rkey == k2,
	   "  SEND_WITH_INV: the receive completion has IBV_WC_WITH_INV and the rkey (%s)",
	   st_str(st));
	st = mwt_write(&t, k2, win, 8, 'x');
	ok(st == REM_ERR, "  its rkey after SEND_WITH_INV: %s", st_str(st));
	mwt_same(&t, "remotely invalidated window");

	/* Bind rules, each a IBV_WC_MW_BIND_ERR. */
	if (!mwt_pair(&t))
		goto out;
	st = mwt_bind2(t.b, t.rcq, mw2, ibv_inc_rkey(k2), nobind, win, 8,
		       IBV_ACCESS_REMOTE_READ);
	ok(st == 1000 + IBV_WC_MW_BIND_ERR,
	   "  binding to an MR without MW_BIND: %s", st_str(st));
	if (!mwt_pair(&t))
		goto out;
	st = mwt_bind2(t.b, t.rcq, mw2, ibv_inc_rkey(k2), t.rmr,
		       (uintptr_t)t.rbuf + (WIN_PAGES - 1) * PAGE - 8, 16,
		       IBV_ACCESS_REMOTE_READ);
	ok(st == 1000 + IBV_WC_MW_BIND_ERR,
	   "  binding a window that ends past the MR: %s", st_str(st));
	if (!mwt_pair(&t))
		goto out;
	st = mwt_bind2(t.b, t.rcq, mw2, ibv_inc_rkey(k2), t.rmr, win, 0,
		       IBV_ACCESS_REMOTE_READ);
	ok(st == 1000 + IBV_WC_MW_BIND_ERR,
	   "  binding a type 2 window with length 0: %s", st_str(st));
	if (!mwt_pair(&t))
		goto out;
	mw3 = ibv_alloc_mw(pd, IBV_MW_TYPE_1);
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_LOCAL_INV;
	wr.invalidate_rkey = mw3 ? mw3->rkey : 0;
	st = mw3 ? mwt_post(t.b, t.rcq, &wr) : -1;
	ok(st == 1000 + IBV_WC_LOC_QP_OP_ERR,
	   "  LOCAL_INV of a type 1 window: %s", st_str(st));
	if (mw3)
		ibv_dealloc_mw(mw3);
	mwt_same(&t, "after the bind errors");

	/* ATOMIC_WRITE: 8 aligned bytes, REMOTE_WRITE needed. */
	if (!mwt_pair(&t))
		goto out;
	k2 = ibv_inc_rkey(k2);
	st = mwt_bind2(t.b, t.rcq, mw2, k2, t.rmr, win, WIN_LEN,
		       IBV_ACCESS_REMOTE_WRITE);
	w = (uint64_t *)t.lbuf;
	*w = 0x1122334455667788ULL;
	{
		struct ibv_sge sge = { (uintptr_t)w, 8, t.lmr->lkey };
		uint64_t dst = (win + 7) & ~7ULL;

		memset(&wr, 0, sizeof(wr));
		wr.opcode = IBV_WR_ATOMIC_WRITE;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.wr.rdma.remote_addr = dst;
		wr.wr.rdma.rkey = k2;
		ret = mwt_post(t.a, t.cq, &wr);
		memcpy(t.want + (dst - (uintptr_t)t.rbuf), w, 8);
		ok(!st && !ret,
		   "  ATOMIC_WRITE of 8 bytes through a window (%s, %s)",
		   st_str(st), st_str(ret));
		mwt_same(&t, "atomic write");
		wr.wr.rdma.remote_addr = dst + 4;
		ret = mwt_post(t.a, t.cq, &wr);
		ok(ret == 1000 + IBV_WC_REM_INV_REQ_ERR,
		   "  ATOMIC_WRITE to a misaligned address: %s", st_str(ret));
		mwt_same(&t, "misaligned atomic write");
	}
	if (!mwt_pair(&t))
		goto out;
	{
		struct ibv_sge sge = { (uintptr_t)w, 8, t.lmr->lkey };

		memset(&wr, 0, sizeof(wr));
		wr.opcode = IBV_WR_ATOMIC_WRITE;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.wr.rdma.remote_addr = (win + 7) & ~7ULL;
		wr.wr.rdma.rkey = t.rmr->rkey;
		ret = mwt_post(t.a, t.cq, &wr);
		ok(ret == REM_ERR,
		   "  ATOMIC_WRITE through an rkey without REMOTE_WRITE: %s",
		   st_str(ret));
		mwt_same(&t, "atomic write without the right");
	}
out:
	mwt_pair_free(&t);
	if (mw1)
		ibv_dealloc_mw(mw1);
	if (mw2)
		ibv_dealloc_mw(mw2);
	ok(!t.rmr || !ibv_dereg_mr(t.rmr),
	   "  with its windows gone, the MR deregisters");
	if (nobind)
		ibv_dereg_mr(nobind);
	if (t.lmr)
		ibv_dereg_mr(t.lmr);
	free(t.want);
	if (t.lbuf)
		munmap(t.lbuf, 4 * PAGE);
	if (t.rbuf)
		munmap(t.rbuf, WIN_PAGES * PAGE);
}

/*
 * A process that dies with windows bound to its MR (the core destroys
 * the MR, which refuses while windows are bound, and retries it after
 * the windows): everything is freed, nothing stays pinned.
 */
static void test_mw_exit(void)
{
	struct snap before, after;
	int status = -1;
	pid_t pid;

	snap(&before);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct mwt t = {};
		struct ibv_mw *m1, *m2;

		/* Its verdict is its exit status; its helpers' TAP is not ours. */
		if (!freopen("/dev/null", "w", stdout))
			_exit(1);
		t.ctx = open_device_by_name(dev_name);
		t.pd = t.ctx ? ibv_alloc_pd(t.ctx) : NULL;
		t.lbuf = map_anon(4 * PAGE, PROT_READ | PROT_WRITE);
		t.rbuf = map_anon(WIN_PAGES * PAGE, PROT_READ | PROT_WRITE);
		if (!t.pd || !t.lbuf || !t.rbuf ||
		    lb_find_gid(t.ctx, &t.gidx, &t.gid))
			_exit(2);
		t.lmr = ibv_reg_mr(t.pd, t.lbuf, 4 * PAGE,
				   IBV_ACCESS_LOCAL_WRITE);
		t.rmr = ibv_reg_mr(t.pd, t.rbuf, WIN_PAGES * PAGE,
				   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
		m1 = ibv_alloc_mw(t.pd, IBV_MW_TYPE_1);
		m2 = ibv_alloc_mw(t.pd, IBV_MW_TYPE_2);
		if (!t.lmr || !t.rmr || !m1 || !m2 || !mwt_pair(&t))
			_exit(3);
		if (mwt_bind1(t.b, t.rcq, m1, t.rmr, (uintptr_t)t.rbuf, PAGE,
			      IBV_ACCESS_REMOTE_READ) ||
		    mwt_bind2(t.b, t.rcq, m2, ibv_inc_rkey(m2->rkey), t.rmr,
			      (uintptr_t)t.rbuf + PAGE, PAGE,
			      IBV_ACCESS_REMOTE_WRITE))
			_exit(4);
		_exit(0);	/* everything still allocated and bound */
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "memory windows: a child binds two windows to its MR and exits (status %#x)",
	   status);
	snap(&after);
	ok(same_counters(&before, &after) && after.pd == before.pd &&
	   pins_held(&before, 0) == 0,
	   "  after its exit: debugfs mr %lld pd %lld as before, nothing pinned",
	   after.mr, after.pd);
}

/*
 * Deregistration racing with the data path: one thread re-registers the
 * target of a stream of RDMA WRITEs (a new rkey each time) while the main
 * thread writes with whatever rkey it last saw.  Each WRITE lands or, with
 * a dead key, completes with a remote access error (the QPs are then reset
 * and reconnected); canaries around the MR never change.
 */
#define RACE_REGS	200
#define RACE_WRITES	400

struct race {
	struct ibv_pd *pd;
	char *mem;
	_Atomic uint32_t rkey;
	_Atomic int stop;
	int regs, fails;
};

static void *race_rereg(void *arg)
{
	struct race *r = arg;
	struct ibv_mr *mr, *old = NULL;
	int i;

	for (i = 0; i < RACE_REGS && !atomic_load(&r->stop); i++) {
		mr = ibv_reg_mr(r->pd, r->mem + 4 * PAGE, 8 * PAGE, RW_ALL);
		if (!mr) {
			r->fails++;
			break;
		}
		atomic_store(&r->rkey, mr->rkey);
		if (old && ibv_dereg_mr(old))
			r->fails++;
		old = mr;
		r->regs++;
		if (i % 4 == 0) {
			/* a dead key for a while */
			atomic_store(&r->rkey, mr->rkey);
			if (ibv_dereg_mr(mr))
				r->fails++;
			old = NULL;
			sched_yield();
		}
	}
	if (old && ibv_dereg_mr(old))
		r->fails++;
	return NULL;
}

static void test_dereg_race(struct ibv_context *ctx, struct ibv_pd *pd)
{
	struct ibv_qp_attr at = { .qp_state = IBV_QPS_RESET };
	struct race r = { .pd = pd };
	int gidx = 0, i, st, good = 0, denied = 0, other = 0, resets = 0;
	struct ibv_qp *a = NULL, *b = NULL;
	struct ibv_cq *cq = NULL;
	struct ibv_mr *lmr = NULL;
	struct snap before, after;
	struct ibv_send_wr wr;
	struct ibv_sge sge;
	union ibv_gid gid;
	pthread_t thr;
	char *src;
	bool canary = true;

	r.mem = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
	src = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	if (!ok(r.mem && src, "dereg race: buffers"))
		return;
	memset(r.mem, 0xcc, 16 * PAGE);
	memset(src, 0x33, 8 * PAGE);
	snap(&before);
	cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	a = cq ? lb_create_qp(pd, cq, cq, 8, 1, 0) : NULL;
	b = cq ? lb_create_qp(pd, cq, cq, 8, 1, 0) : NULL;
	lmr = ibv_reg_mr(pd, src, 8 * PAGE, 0);
	if (!ok(!lb_find_gid(ctx, &gidx, &gid) && a && b && lmr &&
		!lb_connect_pair(a, b, &gid, gidx, 1),
		"  a connected pair of RC QPs and a source MR"))
		goto out;
	if (!ok(!pthread_create(&thr, NULL, race_rereg, &r),
		"  a thread re-registering the target"))
		goto out;

	memset(&wr, 0, sizeof(wr));
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	sge.addr = (uintptr_t)src;
	sge.length = 8 * PAGE;
	sge.lkey = lmr->lkey;
	for (i = 0; i < RACE_WRITES; i++) {
		wr.wr.rdma.remote_addr = (uintptr_t)r.mem + 4 * PAGE;
		wr.wr.rdma.rkey = atomic_load(&r.rkey);
		st = post_wait(a, cq, &wr);
		if (!st) {
			good++;
			continue;
		}
		if (st == 1000 + IBV_WC_REM_ACCESS_ERR)
			denied++;
		else
			other++;
		/* Both QPs went to the error state: start them again. */
		if (ibv_modify_qp(a, &at, IBV_QP_STATE) ||
		    ibv_modify_qp(b, &at, IBV_QP_STATE) ||
		    lb_connect_pair(a, b, &gid, gidx, 1)) {
			other++;
			break;
		}
		resets++;
	}
	atomic_store(&r.stop, 1);
	pthread_join(thr, NULL);
	for (i = 0; i < 16 * (int)PAGE; i++)
		if ((i < 4 * (int)PAGE || i >= 12 * (int)PAGE) &&
		    r.mem[i] != (char)0xcc)
			canary = false;
	ok(!other && !r.fails && good + denied == RACE_WRITES,
	   "  %d RDMA WRITEs: %d landed, %d remote access errors, %d other; %d registrations (%d failed)",
	   RACE_WRITES, good, denied, other, r.regs, r.fails);
	ok(canary, "  nothing outside the MR was written (QPs restarted %d times)",
	   resets);
out:
	if (lmr)
		ibv_dereg_mr(lmr);
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (cq)
		ibv_destroy_cq(cq);
	snap(&after);
	ok(same_counters(&before, &after) && pins_held(&before, 0) == 0,
	   "  counters back, nothing pinned");
	munmap(r.mem, 16 * PAGE);
	munmap(src, 8 * PAGE);
}

static void test_rereg(struct ibv_context *ctx, struct ibv_pd *pd)
{
	char *buf = map_anon(16 * PAGE, PROT_READ | PROT_WRITE);
	char *ro = map_anon(4 * PAGE, PROT_READ);
	struct snap before, now;
	struct ibv_mr *mr, *mr2;
	struct ibv_pd *pd2;
	char line[1024];
	uint32_t key;
	int ret;

	if (!ok(buf && ro, "rereg: buffers"))
		return;
	memset(buf, 1, 16 * PAGE);
	snap(&before);
	mr = ibv_reg_mr(pd, buf, 4 * PAGE, IBV_ACCESS_LOCAL_WRITE);
	if (!ok(mr != NULL, "  an MR of 4 pages with LOCAL_WRITE"))
		return;
	key = mr->lkey;
	ret = rereg(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0, RW_ALL);
	if (ret == -1) {
		ok(true, "# SKIP the provider has no rereg_mr");
		ibv_dereg_mr(mr);
		return;
	}
	snap(&now);
	ok(!ret && mr->lkey == key && mr->rkey == key &&
	   now.mr == before.mr + 1 && now.pages == before.pages + 4,
	   "  CHANGE_ACCESS to all rights: %d, keys kept, still one MR of 4 pages",
	   ret);
	ret = rereg(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
		    IBV_ACCESS_REMOTE_WRITE);
	ok(ret == EINVAL, "  CHANGE_ACCESS to REMOTE_WRITE alone: %s",
	   strerror(ret));

	pd2 = ibv_alloc_pd(ctx);
	ret = pd2 ? rereg(mr, IBV_REREG_MR_CHANGE_PD, pd2, NULL, 0, 0) : -2;
	ok(!ret && mr->pd == pd2 && mr->lkey == key,
	   "  CHANGE_PD to a second PD: %d, keys kept", ret);
	ok(pd2 && ibv_dealloc_pd(pd2) == EBUSY,
	   "  the second PD is busy while the MR is in it");
	ret = rereg(mr, IBV_REREG_MR_CHANGE_PD, pd, NULL, 0, 0);
	ok(!ret && pd2 && !ibv_dealloc_pd(pd2),
	   "  CHANGE_PD back: %d; the second PD can go", ret);

	ret = rereg(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL, buf + 5 * PAGE + 100,
		    8 * PAGE, 0);
	snap(&now);
	ok(!ret && now.mr == before.mr + 1 && now.pages == before.pages + 9 &&
	   pins_held(&before, 9) == 9,
	   "  CHANGE_TRANSLATION to 8 pages at a mid-page address: %d, one MR, 9 pages pinned (%lld), new key %#x",
	   ret, now.pages - before.pages, mr->lkey);
	if (ok(rdma_res_line(mr->lkey, line, sizeof(line)),
	       "  rdma res show mr lists the new key")) {
		diag("  %s", line);
		ok(strstr(line, " mrlen 32768 ") &&
		   attr_of(line, "pinned_pages") == 9,
		   "  with the new length and 9 pinned pages");
	}
	ret = rereg(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL, ro, 4 * PAGE, 0);
	ok(ret == EFAULT, "  CHANGE_TRANSLATION of a LOCAL_WRITE MR to read-only memory: %s",
	   strerror(ret));
	snap(&now);
	ok(now.mr == before.mr + 1 && now.pages == before.pages + 9,
	   "  the MR is unchanged after the failure");
	ok(!ibv_dereg_mr(mr), "  ibv_dereg_mr");

	/*
	 * Write rights on an MR pinned read-only need a writable pin: a new
	 * registration of the same range, with new keys.
	 */
	mr2 = ibv_reg_mr(pd, buf, 4 * PAGE, IBV_ACCESS_REMOTE_READ);
	key = mr2 ? mr2->lkey : 0;
	ret = mr2 ? rereg(mr2, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE) : -2;
	snap(&now);
	ok(!ret && mr2->lkey != key && mr2->addr == buf &&
	   mr2->length == 4 * PAGE && now.mr == before.mr + 1 &&
	   now.pages == before.pages + 4 && pins_held(&before, 4) == 4,
	   "  CHANGE_ACCESS adding write rights to an MR pinned read-only: %d, new key %#x, still one MR of 4 pages",
	   ret, mr2 ? mr2->lkey : 0);
	if (mr2)
		ibv_dereg_mr(mr2);
	mr2 = ibv_reg_mr(pd, ro, 4 * PAGE, IBV_ACCESS_REMOTE_READ);
	key = mr2 ? mr2->lkey : 0;
	ret = mr2 ? rereg(mr2, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			  IBV_ACCESS_LOCAL_WRITE) : -2;
	snap(&now);
	ok(ret == EFAULT && mr2->lkey == key && now.mr == before.mr + 1 &&
	   now.pages == before.pages + 4,
	   "  CHANGE_ACCESS adding LOCAL_WRITE to read-only memory: %s, the MR unchanged",
	   strerror(ret));
	if (mr2)
		ibv_dereg_mr(mr2);
	snap(&now);
	ok(same_counters(&before, &now) && pins_held(&before, 0) == 0,
	   "  all deregistered: counters back, nothing pinned");
	munmap(buf, 16 * PAGE);
	munmap(ro, 4 * PAGE);
}

static void expect_fail(struct ibv_pd *pd, void *addr, size_t len, int access,
			int err, const char *what)
{
	struct ibv_mr *mr;
	struct snap before;

	snap(&before);
	errno = 0;
	mr = ibv_reg_mr(pd, addr, len, access);
	ok(!mr && errno == err, "%s: %s (want %s)", what,
	   mr ? "registered" : strerror(errno), strerror(err));
	if (mr)
		ibv_dereg_mr(mr);
	ok(pins_held(&before, 0) == 0, "  nothing left pinned");
}

static void test_errors(struct ibv_pd *pd)
{
	char *buf = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	char *ro = map_anon(4 * PAGE, PROT_READ);
	char *hole = map_anon(8 * PAGE, PROT_READ | PROT_WRITE);
	struct ibv_mr *mr;

	if (!ok(buf && ro && hole, "map test buffers"))
		return;
	memset(buf, 1, 8 * PAGE);
	memset(hole, 1, 8 * PAGE);
	munmap(hole + 4 * PAGE, PAGE);

	expect_fail(pd, buf, PAGE, IBV_ACCESS_REMOTE_WRITE, EINVAL,
		    "REMOTE_WRITE without LOCAL_WRITE");
	expect_fail(pd, buf, PAGE, IBV_ACCESS_REMOTE_ATOMIC, EINVAL,
		    "REMOTE_ATOMIC without LOCAL_WRITE");
	expect_fail(pd, buf, PAGE, IBV_ACCESS_REMOTE_WRITE |
		    IBV_ACCESS_REMOTE_READ, EINVAL,
		    "REMOTE_WRITE | REMOTE_READ without LOCAL_WRITE");
	expect_fail(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_ON_DEMAND,
		    core_odp_errno(), "ON_DEMAND");
	expect_fail(pd, buf, 0, IBV_ACCESS_LOCAL_WRITE, EINVAL, "length 0");
	expect_fail(pd, hole, 8 * PAGE, 0, EFAULT,
		    "a range with an unmapped page");
	expect_fail(pd, hole + 4 * PAGE, PAGE, IBV_ACCESS_LOCAL_WRITE, EFAULT,
		    "an unmapped page");
	expect_fail(pd, ro, 4 * PAGE, IBV_ACCESS_LOCAL_WRITE, EFAULT,
		    "a read-only mapping with LOCAL_WRITE");
	expect_fail(pd, ro, 4 * PAGE, IBV_ACCESS_LOCAL_WRITE |
		    IBV_ACCESS_REMOTE_WRITE, EFAULT,
		    "a read-only mapping with REMOTE_WRITE");

	/* A read-only mapping is fine for read-only access. */
	mr = ibv_reg_mr(pd, ro, 4 * PAGE, IBV_ACCESS_REMOTE_READ);
	ok(mr != NULL, "a read-only mapping with REMOTE_READ only: %s",
	   mr ? "ok" : strerror(errno));
	if (mr)
		ibv_dereg_mr(mr);

	munmap(buf, 8 * PAGE);
	munmap(ro, 4 * PAGE);
	munmap(hole, 8 * PAGE);
}

#define NKEYS 256

static void test_keys(struct ibv_pd *pd)
{
	static struct ibv_mr *mr[NKEYS];
	struct snap before, after;
	unsigned int bytes[256] = { 0 };
	int i, j, n = 0, distinct = 0, dup = 0, unequal = 0;
	char *buf = map_anon(PAGE, PROT_READ | PROT_WRITE);

	if (!ok(buf != NULL, "map 4 KiB"))
		return;
	snap(&before);
	for (i = 0; i < NKEYS; i++) {
		mr[i] = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE);
		if (!mr[i])
			break;
		n++;
		if (mr[i]->lkey != mr[i]->rkey)
			unequal++;
		if (!bytes[mr[i]->lkey & 0xff]++)
			distinct++;
		for (j = 0; j < i; j++)
			if (mr[j]->lkey == mr[i]->lkey)
				dup++;
	}
	ok(n == NKEYS, "%d MRs over the same page", n);
	ok(!unequal, "  lkey == rkey for each");
	ok(!dup, "  no two keys equal");
	/* 256 random bytes take fewer than 100 values with p < 1e-40. */
	ok(distinct >= 100, "  the key byte varies: %d distinct values", distinct);
	snap(&after);
	ok(after.mr == before.mr + n && after.pages == before.pages + n &&
	   pins_held(&before, n) == n, "  %d pins and MRs counted", n);
	for (i = 0; i < n; i++)
		ibv_dereg_mr(mr[i]);
	snap(&after);
	ok(same_counters(&before, &after) && pins_held(&before, 0) == 0,
	   "  all deregistered: counters back");

	/* A key is not reused at once: the next MR gets a new index. */
	mr[0] = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE);
	mr[1] = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE);
	if (ok(mr[0] && mr[1], "two more MRs")) {
		uint32_t k0 = mr[0]->lkey;

		ibv_dereg_mr(mr[0]);
		mr[0] = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE);
		ok(mr[0] && mr[0]->lkey >> 8 != k0 >> 8,
		   "  re-registering after dereg gives a new index (%#x, was %#x)",
		   mr[0] ? mr[0]->lkey : 0, k0);
	}
	for (i = 0; i < 2; i++)
		if (mr[i])
			ibv_dereg_mr(mr[i]);
	munmap(buf, PAGE);
}

/*
 * In a child without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 64 KiB:
 * 16 pages register, 17 do not, with ENOMEM; after a dereg they do.
 * Returns 0 or the number of the step that went wrong.
 */
static int memlock_child(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct cap[2];
	struct rlimit rl = { 64 * KIB, 64 * KIB };
	struct ibv_mr *a, *b, *c;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char *buf;

	if (syscall(SYS_capget, &hdr, cap))
		return 1;
	cap[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	cap[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
	cap[CAP_IPC_LOCK / 32].inheritable &= ~(1U << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &hdr, cap) || setrlimit(RLIMIT_MEMLOCK, &rl))
		return 2;
	buf = map_anon(64 * PAGE, PROT_READ | PROT_WRITE);
	ctx = open_device_by_name(dev_name);
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	if (!buf || !pd)
		return 3;
	memset(buf, 1, 64 * PAGE);
	a = ibv_reg_mr(pd, buf, 8 * PAGE, IBV_ACCESS_LOCAL_WRITE);
	b = ibv_reg_mr(pd, buf + 8 * PAGE, 8 * PAGE, IBV_ACCESS_LOCAL_WRITE);
	if (!a || !b) {
		diag("child: 16 pages within the limit: %s", strerror(errno));
		return 4;
	}
	errno = 0;
	c = ibv_reg_mr(pd, buf + 16 * PAGE, PAGE, IBV_ACCESS_LOCAL_WRITE);
	if (c || errno != ENOMEM) {
		diag("child: page 17: %s", c ? "registered" : strerror(errno));
		return 5;
	}
	/* 16 pages over memory already registered count again: still over. */
	errno = 0;
	c = ibv_reg_mr(pd, buf, PAGE, 0);
	if (c || errno != ENOMEM) {
		diag("child: page 17 (already pinned by a): %s",
		     c ? "registered" : strerror(errno));
		return 6;
	}
	if (ibv_dereg_mr(a))
		return 7;
	c = ibv_reg_mr(pd, buf + 16 * PAGE, 8 * PAGE, IBV_ACCESS_LOCAL_WRITE);
	if (!c) {
		diag("child: after a dereg: %s", strerror(errno));
		return 8;
	}
	if (ibv_dereg_mr(b) || ibv_dereg_mr(c) || ibv_dealloc_pd(pd) ||
	    ibv_close_device(ctx))
		return 9;
	return 0;
}

static void test_memlock(void)
{
	struct snap before, after;
	int status;
	pid_t pid;

	snap(&before);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(memlock_child());
	if (!ok(pid > 0, "fork"))
		return;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "without CAP_IPC_LOCK, RLIMIT_MEMLOCK 64 KiB: 16 pages register, the 17th is ENOMEM, a dereg makes room (child status %#x)",
	   status);
	snap(&after);
	ok(same_counters(&before, &after) && pins_held(&before, 0) == 0,
	   "  counters back, nothing pinned");
}

/* Registration with the fault switch armed at its Nth call. */
static void test_faults(struct ibv_pd *pd)
{
	char *buf = map_anon(64 * PAGE, PROT_READ | PROT_WRITE);
	long long injected, left, held;
	struct snap before, after;
	struct ibv_mr *mr;
	int nth, i, k, calls, fails, want;

	if (!ok(buf != NULL, "map 256 KiB"))
		return;
	memset(buf, 1, 64 * PAGE);
	if (!ok(access(DBG "fail_nth", W_OK) == 0, "fault switch " DBG "fail_nth"))
		return;

	/*
	 * One registration asks the switch three times: before allocating
	 * the MR, before pinning, and before taking a key (with the pages
	 * pinned).  Each failure leaves nothing behind.
	 */
	for (nth = 1; nth <= 3; nth++) {
		injected = read_num(DBG "injected");
		snap(&before);
		if (!ok(write_num(DBG "fail_nth", nth), "fail_nth = %d", nth))
			continue;
		errno = 0;
		mr = ibv_reg_mr(pd, buf, 64 * PAGE, IBV_ACCESS_LOCAL_WRITE);
		ok(!mr && errno == ENOMEM, "  ibv_reg_mr of 64 pages: %s",
		   mr ? "registered" : strerror(errno));
		if (mr)
			ibv_dereg_mr(mr);
		left = read_num(DBG "fail_nth");
		ok(left == 0 && read_num(DBG "injected") == injected + 1,
		   "  fired once (%lld calls left, %lld injected)", left,
		   read_num(DBG "injected") - injected);
		held = pins_held(&before, 0);
		snap(&after);
		ok(same_counters(&before, &after) && !held &&
		   (nth < 3 || after.acquired - before.acquired >= 64),
		   "  %s; counters unchanged (foll_pin +%lld/-%lld)",
		   nth == 3 ? "the 64 pages pinned were unpinned" :
		   "nothing left pinned",
		   after.acquired - before.acquired,
		   after.released - before.released);
	}
	write_num(DBG "fail_nth", 0);

	/* fail_every */
	snap(&before);
	ok(write_num(DBG "fail_every", 1), "fail_every = 1");
	errno = 0;
	mr = ibv_reg_mr(pd, buf, PAGE, 0);
	ok(!mr && errno == ENOMEM, "  every registration fails: %s",
	   mr ? "registered" : strerror(errno));
	if (mr)
		ibv_dereg_mr(mr);
	ok(write_num(DBG "fail_every", 7), "fail_every = 7");
	/* Each registration calls the switch up to 3 times, to its failure. */
	for (i = 0, calls = 0, want = 0; i < 21; i++)
		for (k = 0; k < 3; k++)
			if (++calls % 7 == 0) {
				want++;
				break;
			}
	fails = 0;
	for (i = 0; i < 21; i++) {
		mr = ibv_reg_mr(pd, buf + (i % 64) * PAGE, PAGE,
				IBV_ACCESS_LOCAL_WRITE);
		if (mr)
			ibv_dereg_mr(mr);
		else if (errno == ENOMEM)
			fails++;
	}
	ok(fails == want, "  21 registrations: %d fail (want %d)", fails, want);
	ok(write_num(DBG "fail_every", 0), "fail_every = 0");
	mr = ibv_reg_mr(pd, buf, PAGE, 0);
	ok(mr != NULL, "  registration works again");
	if (mr)
		ibv_dereg_mr(mr);
	snap(&after);
	ok(same_counters(&before, &after) && pins_held(&before, 0) == 0,
	   "  counters back, nothing pinned");
	munmap(buf, 64 * PAGE);
}

int main(int argc, char **argv)
{
	struct snap start, end;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int opt;

	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd') {
			fprintf(stderr, "usage: %s [-d DEVICE]\n", argv[0]);
			return 2;
		}
		dev_name = optarg;
	}

	snap(&start);
	if (!ok(start.mr >= 0 && start.pd >= 0 && start.acquired >= 0,
		"debugfs counters and vmstat foll_pin counters readable"))
		return tap_done();
	ctx = open_device_by_name(dev_name);
	if (!ok(ctx != NULL, "open %s", dev_name))
		return tap_done();
	pd = ibv_alloc_pd(ctx);
	if (!ok(pd != NULL, "ibv_alloc_pd"))
		return tap_done();
	ok(read_num(DBG "pd") == start.pd + 1, "  debugfs pd counts it");

	test_basic(pd);
	test_memfd(pd);
	test_thp(pd);
	test_iova(pd);
	test_iova_data(ctx, pd);
	test_rereg(ctx, pd);
	test_mw(ctx, pd);
	test_mw_exit();
	test_dereg_race(ctx, pd);
	test_errors(pd);
	test_keys(pd);
	test_memlock();
	test_faults(pd);

	ok(!ibv_dealloc_pd(pd), "ibv_dealloc_pd");
	ok(!ibv_close_device(ctx), "ibv_close_device");
	snap(&end);
	ok(same_counters(&start, &end) && end.pd == start.pd &&
	   end.acquired - start.acquired == end.released - start.released,
	   "at the end: debugfs mr %lld runs %lld pinned_pages %lld pd %lld as at the start; foll_pin balanced",
	   end.mr, end.runs, end.pages, end.pd);
	return tap_done();
}
