// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * stress: memory-registration stress through libibverbs.
 *
 *   stress --device DEV [--seed S] [--duration SECONDS] [--procs N]
 *          [--threads N] [--max-live-mb MB] [--faults] [--no-kill]
 *          [--no-memlock] [--verbose]
 *
 * For the given duration, --procs worker processes with --threads
 * threads each register and deregister MRs of random sizes (4 KiB to
 * 256 MiB, bounded by --max-live-mb per process), alignments, backings
 * (4 KiB anonymous pages, THP, memfd, hugetlb memfd when huge pages are
 * reserved) and access flags, several MRs over the same pages, and
 * re-register them (ibv_rereg_mr; EOPNOTSUPP is logged as unsupported).
 * Every thread owns a loopback pair of RC QPs on the device's RoCE v2
 * GID and moves RDMA WRITE, READ and SEND traffic between its MRs,
 * verifying every payload and the bytes around it.  Meanwhile threads
 * fork children that touch the registered memory and exit (the parent's
 * MRs must keep showing the parent's pages), munmap, mremap and
 * MADV_DONTNEED registered ranges (the MR keeps the old pages: traffic on
 * it stays valid and never reaches the new mapping), and the main
 * process SIGKILLs victim processes that hold MRs and QPs mid-transfer.
 * A separate child without CAP_IPC_LOCK drives RLIMIT_MEMLOCK to
 * exhaustion: registration must then fail with ENOMEM, leave pinned_vm
 * (VmPin) unchanged, and succeed again once memory is released.
 *
 * With --faults the device is expected to fail some creations on purpose
 * (frdma's fail_every switch): ENOMEM from registration and object
 * creation is then counted instead of being an error.
 *
 * Every process checks that its VmPin is zero before it exits.  The
 * program prints its seed first and a summary last, and exits 0 only if
 * every payload was verified and nothing went wrong.  The kernel-side
 * oracle (pin counters, object counters, dmesg) is tests/stress/oracle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../lib/procfs.h"
#include "../verbs/loopback.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define KIB		1024UL
#define MIB		(1024UL * KIB)
#define HUGE_SZ		(2 * MIB)
#define MAX_BUFS	16
#define MAX_MRS		48
#define MAX_XFER	(1 * MIB)
#define QP_DEPTH	64

/* ---- options and shared statistics ------------------------------------ */

static struct {
	uint64_t seed;
	double duration;
	int procs, threads;
	const char *device;
	unsigned long max_live;
	bool faults, no_kill, no_memlock, verbose;
} opt = {
	.duration = 60, .procs = 3, .threads = 2,
};

enum stat_id {
	S_REG, S_REG_OVERLAP, S_DEREG, S_REG_EINVAL, S_REREG, S_REREG_UNSUP,
	S_IOVA, S_WRITE, S_READ, S_SEND, S_BYTES, S_FORK, S_MUNMAP,
	S_MREMAP, S_DONTNEED, S_ANON, S_THP, S_MEMFD, S_HUGETLB,
	S_HUGETLB_NONE, S_INJECTED, S_VICTIMS, S_MEMLOCK_CYCLES,
	S_MEMLOCK_ENOMEM, S_ERRORS, S_NSTATS
};

static const char *const stat_name[S_NSTATS] = {
	"reg", "reg_overlap", "dereg", "reg_einval", "rereg", "rereg_unsupported",
	"reg_iova", "write", "read", "send", "bytes_verified", "fork",
	"munmap", "mremap", "dontneed", "buf_4k", "buf_thp", "buf_memfd",
	"buf_hugetlb", "hugetlb_unavailable", "injected_enomem", "victims_killed",
	"memlock_cycles", "memlock_enomem", "errors",
};

static uint64_t *stats;		/* shared by every process (MAP_SHARED) */

/* What each worker thread is doing, for the progress lines. */
enum op_id {
	OP_START, OP_SETUP, OP_NEW, OP_OVERLAP, OP_DEREG, OP_REREG, OP_EINVAL,
	OP_FORK, OP_MM, OP_TRAFFIC, OP_CLEANUP, OP_DONE
};
static const char op_letter[] = "sSnodrefmtCD";
static uint8_t *opstate;	/* [procs * threads], shared */
#define SET_OP(t, op) (opstate[proc_id * opt.threads + (t)->id] = (op))
static struct timespec t0;
static double deadline;
static int proc_id = -1;	/* -1: main */
static unsigned long live_bytes;	/* this process's mapped budget */
static int rereg_unsup_logged;

static void count(enum stat_id s, uint64_t n)
{
	__atomic_fetch_add(&stats[s], n, __ATOMIC_RELAXED);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec - t0.tv_sec) + (ts.tv_nsec - t0.tv_nsec) / 1e9;
}

static void logmsg(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "stress[%d:%ld] %7.2fs: ", proc_id,
		     (long)syscall(SYS_gettid), now());
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

#define error(...) (count(S_ERRORS, 1), logmsg("ERROR: " __VA_ARGS__))
#define verbose(...) do { if (opt.verbose) logmsg(__VA_ARGS__); } while (0)

/* ---- random numbers (xorshift64*, one state per thread) ----------------- */

struct rng {
	uint64_t s;
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_init(struct rng *r, uint64_t seed)
{
	r->s = splitmix(&seed) | 1;
}

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n). */
static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned int one_in)
{
	return below(r, one_in) == 0;
}

static void fill_random(struct rng *r, void *p, size_t len)
{
	unsigned char *c = p;
	uint64_t v;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = rnd(r);
		memcpy(c + i, &v, 8);
	}
	v = rnd(r);
	for (; i < len; i++, v >>= 8)
		c[i] = v;
}

/* ---- device ------------------------------------------------------------- */

struct dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	int max_rd_atomic;
};

/* An allowed failure in --faults mode: ENOMEM, counted. */
static bool injected(int err)
{
	if (opt.faults && err == ENOMEM) {
		count(S_INJECTED, 1);
		return true;
	}
	return false;
}

/* Open the device and a PD; 0, or an errno (injected ones are retried). */
static int dev_open(struct dev *d)
{
	struct ibv_device_attr da;
	struct ibv_port_attr pa;
	int err;

	memset(d, 0, sizeof(*d));
	for (;;) {
		d->ctx = open_device_by_name(opt.device);
		if (d->ctx)
			break;
		err = errno;
		if (!injected(err))
			return err;
	}
	if (ibv_query_device(d->ctx, &da) || ibv_query_port(d->ctx, 1, &pa)) {
		err = errno;
		goto close;
	}
	d->mtu = pa.active_mtu;
	d->max_rd_atomic = da.max_qp_rd_atom < 4 ? da.max_qp_rd_atom : 4;
	if (d->max_rd_atomic < 1)
		d->max_rd_atomic = 1;
	if (lb_find_gid(d->ctx, &d->gid_index, &d->gid)) {
		err = ENOENT;
		goto close;
	}
	for (;;) {
		d->pd = ibv_alloc_pd(d->ctx);
		if (d->pd)
			return 0;
		err = errno;
		if (!injected(err))
			goto close;
	}
close:
	ibv_close_device(d->ctx);
	d->ctx = NULL;
	return err;
}

static void dev_close(struct dev *d)
{
	if (d->pd && ibv_dealloc_pd(d->pd))
		error("ibv_dealloc_pd: %s", strerror(errno));
	if (d->ctx && ibv_close_device(d->ctx))
		error("ibv_close_device: %s", strerror(errno));
	d->pd = NULL;
	d->ctx = NULL;
}

/* A connected loopback pair of RC QPs on one CQ. */
struct qpair {
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];
};

static int qp_connect(struct dev *d, struct ibv_qp *qp, uint32_t dqpn)
{
	struct lb_conn c = LB_CONN(d->max_rd_atomic);

	c.path_mtu = d->mtu;
	c.hop_limit = 64;
	return lb_connect_attr(qp, dqpn, &d->gid, d->gid_index, &c);
}

static void qpair_destroy(struct qpair *p)
{
	int i;

	for (i = 0; i < 2; i++)
		if (p->qp[i] && ibv_destroy_qp(p->qp[i]))
			error("ibv_destroy_qp: %s", strerror(errno));
	if (p->cq && ibv_destroy_cq(p->cq))
		error("ibv_destroy_cq: %s", strerror(errno));
	memset(p, 0, sizeof(*p));
}

/* 0, or an errno; injected failures are retried. */
static int qpair_create(struct dev *d, struct qpair *p)
{
	int i, err;

again:
	memset(p, 0, sizeof(*p));
	p->cq = ibv_create_cq(d->ctx, 4 * QP_DEPTH, NULL, NULL, 0);
	if (!p->cq) {
		err = errno;
		if (injected(err))
			goto again;
		return err;
	}
	for (i = 0; i < 2; i++) {
		p->qp[i] = lb_create_qp(d->pd, p->cq, p->cq, QP_DEPTH, 1, 0);
		if (!p->qp[i]) {
			err = errno;
			qpair_destroy(p);
			if (injected(err))
				goto again;
			return err;
		}
	}
	for (i = 0; i < 2; i++) {
		err = qp_connect(d, p->qp[i], p->qp[!i]->qp_num);
		if (err) {
			qpair_destroy(p);
			if (injected(err))
				goto again;
			return err;
		}
	}
	return 0;
}

/* ---- buffers and MRs ---------------------------------------------------- */

enum backing { B_ANON, B_THP, B_MEMFD, B_HUGETLB, B_NKINDS };
static const char *const backing_name[] = { "4k", "thp", "memfd", "hugetlb" };

struct buf {
	enum backing kind;
	char *map;		/* the whole mapping */
	size_t maplen;
	char *addr;		/* the buffer, at some alignment in map */
	size_t len;
	int fd;
	int nmr;		/* MRs over its pages */
	bool used;
};

struct mr {
	struct ibv_mr *mr;
	struct buf *buf;
	size_t off, len;	/* the registered bytes, within buf */
	uint64_t iova;		/* the address SGEs and rkeys use */
	int access;
	bool used;
};

static bool budget_take(size_t n)
{
	unsigned long old = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);

	do {
		if (old + n > opt.max_live)
			return false;
	} while (!__atomic_compare_exchange_n(&live_bytes, &old, old + n, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

static void budget_give(size_t n)
{
	__atomic_fetch_sub(&live_bytes, n, __ATOMIC_RELAXED);
}

static bool hugetlb_available;

/*
 * Map a buffer of len bytes with the given backing and an alignment of
 * the buffer's first byte chosen by the caller (byte offset into the
 * first page); 0 or -1 (no memory under the budget, or no huge page).
 */
static int buf_map(struct buf *b, enum backing kind, size_t len, size_t align_off)
{
	size_t gran = (kind == B_THP || kind == B_HUGETLB) ? HUGE_SZ : 4096;
	size_t maplen = (align_off + len + gran - 1) / gran * gran;
	char *p;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	if (!budget_take(maplen + (kind == B_THP ? HUGE_SZ : 0)))
		return -1;
	switch (kind) {
	case B_ANON:
		p = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			goto fail;
		madvise(p, maplen, MADV_NOHUGEPAGE);
		b->map = p;
		break;
	case B_THP: {
		/* Over-map by one huge page and trim to a 2 MiB boundary. */
		char *raw = mmap(NULL, maplen + HUGE_SZ, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uintptr_t a;

		if (raw == MAP_FAILED)
			goto fail;
		a = ((uintptr_t)raw + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
		if (a > (uintptr_t)raw)
			munmap(raw, a - (uintptr_t)raw);
		if (a + maplen < (uintptr_t)raw + maplen + HUGE_SZ)
			munmap((char *)a + maplen,
			       (uintptr_t)raw + maplen + HUGE_SZ - (a + maplen));
		p = (char *)a;
		madvise(p, maplen, MADV_HUGEPAGE);
		b->map = p;
		budget_give(HUGE_SZ);
		break;
	}
	case B_MEMFD:
	case B_HUGETLB:
		b->fd = memfd_create("stress", MFD_CLOEXEC |
				     (kind == B_HUGETLB ? MFD_HUGETLB : 0));
		if (b->fd < 0)
			goto fail;
		if (ftruncate(b->fd, maplen))
			goto fail;
		p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED,
			 b->fd, 0);
		if (p == MAP_FAILED)
			goto fail;
		b->map = p;
		break;
	default:
		goto fail;
	}
	b->kind = kind;
	b->maplen = maplen;
	b->addr = b->map + align_off;
	b->len = len;
	b->used = true;
	/*
	 * Populate now; for hugetlb a SIGBUS here would mean the pool ran
	 * dry, so fault hugetlb in with MAP_POPULATE-like madvise first.
	 */
	if (kind == B_HUGETLB &&
	    madvise(b->map, maplen, MADV_POPULATE_WRITE)) {
		munmap(b->map, maplen);
		b->map = NULL;
		goto fail;
	}
	memset(b->addr, 0xa5, len);
	return 0;
fail:
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	b->used = false;
	budget_give(maplen + (kind == B_THP ? HUGE_SZ : 0));
	return -1;
}

static void buf_unmap(struct buf *b)
{
	if (b->map && munmap(b->map, b->maplen))
		error("munmap: %s", strerror(errno));
	if (b->fd >= 0)
		close(b->fd);
	budget_give(b->maplen);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

static int random_access(struct rng *r)
{
	int a = 0;

	if (!chance(r, 4))
		a |= IBV_ACCESS_LOCAL_WRITE;
	if (a && !chance(r, 3))
		a |= IBV_ACCESS_REMOTE_WRITE;
	if (!chance(r, 3))
		a |= IBV_ACCESS_REMOTE_READ;
	if (a & IBV_ACCESS_LOCAL_WRITE && chance(r, 4))
		a |= IBV_ACCESS_REMOTE_ATOMIC;
	return a;
}

/* ---- per-thread state --------------------------------------------------- */

struct thr {
	int id;
	struct rng r;
	struct dev *d;
	struct qpair qp;
	bool have_qp;
	struct buf bufs[MAX_BUFS];
	struct mr mrs[MAX_MRS];
	uint64_t wr_id;
	/* While a forked child lives: the ranges the parent's CPU wrote. */
	struct { char *p; size_t len; } touched[16];
	int ntouched;
	bool journal;
	bool stop;
	pthread_t tid;
};

static struct buf *buf_slot(struct thr *t)
{
	int i;

	for (i = 0; i < MAX_BUFS; i++)
		if (!t->bufs[i].used)
			return &t->bufs[i];
	return NULL;
}

static struct mr *mr_slot(struct thr *t)
{
	int i;

	for (i = 0; i < MAX_MRS; i++)
		if (!t->mrs[i].used)
			return &t->mrs[i];
	return NULL;
}

static int n_mrs(struct thr *t)
{
	int i, n = 0;

	for (i = 0; i < MAX_MRS; i++)
		n += t->mrs[i].used;
	return n;
}

/*
 * Register [off, off + len) of b with the given access; an iova other
 * than the address now and then (same offset within the page).  Returns
 * 0, or the errno of the failure.
 */
static int mr_reg(struct thr *t, struct mr *m, struct buf *b, size_t off,
		  size_t len, int access)
{
	char *addr = b->addr + off;
	uint64_t iova = (uintptr_t)addr;
	struct ibv_mr *mr;

	if (chance(&t->r, 8)) {
		iova = ((rnd(&t->r) & 0xffffffff000ULL) + (1ULL << 44)) |
		       ((uintptr_t)addr & 4095);
		mr = ibv_reg_mr_iova(t->d->pd, addr, len, iova, access);
		if (mr)
			count(S_IOVA, 1);
	} else {
		mr = ibv_reg_mr(t->d->pd, addr, len, access);
	}
	if (!mr)
		return errno ? errno : EIO;
	if (mr->lkey != mr->rkey && (access & (IBV_ACCESS_REMOTE_READ |
					       IBV_ACCESS_REMOTE_WRITE)))
		verbose("lkey %#x != rkey %#x", mr->lkey, mr->rkey);
	m->mr = mr;
	m->buf = b;
	m->off = off;
	m->len = len;
	m->iova = iova;
	m->access = access;
	m->used = true;
	b->nmr++;
	count(S_REG, 1);
	return 0;
}

static void mr_dereg(struct thr *t, struct mr *m)
{
	(void)t;
	if (ibv_dereg_mr(m->mr))
		error("ibv_dereg_mr(lkey %#x): %s", m->mr->lkey, strerror(errno));
	m->buf->nmr--;
	memset(m, 0, sizeof(*m));
	count(S_DEREG, 1);
}

/* Random size, 4 KiB .. 256 MiB, log-uniform, smaller ones likelier. */
static size_t random_size(struct rng *r)
{
	unsigned int shift = 12 + below(r, 17);	/* 4 KiB .. 256 MiB */
	size_t sz;

	if (shift > 22 && !chance(r, 3))
		shift = 12 + below(r, 11);	/* mostly up to 4 MiB */
	sz = 1UL << shift;
	sz += below(r, sz);			/* anything up to 2x */
	if (sz > 256 * MIB)
		sz = 256 * MIB;
	return sz;
}

static enum backing random_backing(struct rng *r)
{
	enum backing k = below(r, B_NKINDS);

	if (k == B_HUGETLB && !hugetlb_available)
		k = B_ANON;
	return k;
}

static void op_new_buf(struct thr *t)
{
	struct buf *b = buf_slot(t);
	struct mr *m = mr_slot(t);
	size_t len, align, off, mlen;
	enum backing kind;
	int tries, err;

	if (!b || !m)
		return;
	kind = random_backing(&t->r);
	switch (below(&t->r, 3)) {
	case 0: align = 0; break;
	case 1: align = below(&t->r, 64) * 64; break;
	default: align = below(&t->r, 4096); break;
	}
	for (tries = 0; tries < 4; tries++) {
		len = random_size(&t->r) >> tries;
		if (len < 4096)
			len = 4096;
		if (!buf_map(b, kind, len, align))
			break;
		if (kind == B_HUGETLB) {
			count(S_HUGETLB_NONE, 1);
			kind = B_ANON;
		}
	}
	if (!b->used)
		return;
	count(S_ANON + kind, 1);
	/* The whole buffer, or a random part of it. */
	if (chance(&t->r, 2)) {
		off = 0;
		mlen = b->len;
	} else {
		off = below(&t->r, b->len);
		mlen = 1 + below(&t->r, b->len - off);
	}
	err = mr_reg(t, m, b, off, mlen, random_access(&t->r) |
		     (chance(&t->r, 2) ? IBV_ACCESS_LOCAL_WRITE |
		      IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ : 0));
	if (err) {
		if (!injected(err))
			error("ibv_reg_mr(%s, %zu bytes at +%zu): %s",
			      backing_name[kind], mlen,
			      (size_t)((uintptr_t)b->addr & 4095) + off,
			      strerror(err));
		buf_unmap(b);
		return;
	}
	verbose("reg %s buffer %zu bytes, MR %zu at +%zu lkey %#x",
		backing_name[kind], b->len, mlen, off, m->mr->lkey);
}

static struct buf *random_buf(struct thr *t)
{
	int i, n = 0;
	struct buf *pick = NULL;

	for (i = 0; i < MAX_BUFS; i++)
		if (t->bufs[i].used && chance(&t->r, ++n))
			pick = &t->bufs[i];
	return pick;
}

static struct mr *random_mr(struct thr *t, int need)
{
	int i, n = 0;
	struct mr *pick = NULL;

	for (i = 0; i < MAX_MRS; i++)
		if (t->mrs[i].used && (t->mrs[i].access & need) == need &&
		    chance(&t->r, ++n))
			pick = &t->mrs[i];
	return pick;
}

/* Another MR over pages that already have one (or several). */
static void op_overlap(struct thr *t)
{
	struct buf *b = random_buf(t);
	struct mr *m = mr_slot(t);
	size_t off, len;
	int err;

	if (!b || !m)
		return;
	off = below(&t->r, b->len);
	len = 1 + below(&t->r, b->len - off);
	err = mr_reg(t, m, b, off, len, random_access(&t->r));
	if (err) {
		if (!injected(err))
			error("overlapping ibv_reg_mr(%zu at +%zu): %s", len, off,
			      strerror(err));
		return;
	}
	count(S_REG_OVERLAP, 1);
}

/* Remote write without local write is refused (IBTA). */
static void op_einval(struct thr *t)
{
	struct buf *b = random_buf(t);
	struct ibv_mr *mr;

	if (!b)
		return;
	errno = 0;
	mr = ibv_reg_mr(t->d->pd, b->addr, b->len, IBV_ACCESS_REMOTE_WRITE);
	if (mr) {
		error("ibv_reg_mr(REMOTE_WRITE without LOCAL_WRITE) succeeded");
		ibv_dereg_mr(mr);
		return;
	}
	if (errno != EINVAL && !injected(errno))
		error("ibv_reg_mr(REMOTE_WRITE without LOCAL_WRITE): %s, not EINVAL",
		      strerror(errno));
	else
		count(S_REG_EINVAL, 1);
}

static void op_dereg(struct thr *t)
{
	struct mr *m = random_mr(t, 0);
	struct buf *b;

	if (!m)
		return;
	b = m->buf;
	mr_dereg(t, m);
	if (!b->nmr && !chance(&t->r, 4))
		buf_unmap(b);
}

static void rereg_unsupported(const char *what)
{
	count(S_REREG_UNSUP, 1);
	if (!__atomic_exchange_n(&rereg_unsup_logged, 1, __ATOMIC_RELAXED))
		logmsg("ibv_rereg_mr(%s): not supported by %s (EOPNOTSUPP); "
		       "counted as unsupported, not as a pass", what, opt.device);
}

/*
 * Re-register: new access flags, or new pages (another part of the same
 * or another buffer).  A failed re-registration leaves an MR we do not
 * trust; it is deregistered.
 */
static void op_rereg(struct thr *t)
{
	struct mr *m = random_mr(t, 0);
	struct buf *nb;
	size_t off, len;
	int access, flags, ret;
	const char *what;

	if (!m)
		return;
	access = random_access(&t->r);
	if (chance(&t->r, 2)) {
		flags = IBV_REREG_MR_CHANGE_ACCESS;
		what = "CHANGE_ACCESS";
		nb = m->buf;
		off = m->off;
		len = m->len;
	} else {
		flags = IBV_REREG_MR_CHANGE_TRANSLATION |
			(chance(&t->r, 2) ? IBV_REREG_MR_CHANGE_ACCESS : 0);
		what = "CHANGE_TRANSLATION";
		nb = random_buf(t);
		off = below(&t->r, nb->len);
		len = 1 + below(&t->r, nb->len - off);
		if (!(flags & IBV_REREG_MR_CHANGE_ACCESS))
			access = m->access;
	}
	errno = 0;
	/* libibverbs wants access 0 unless it changes. */
	ret = ibv_rereg_mr(m->mr, flags, NULL, nb->addr + off, len,
			   flags & IBV_REREG_MR_CHANGE_ACCESS ? access : 0);
	if (!ret) {
		m->buf->nmr--;
		m->buf = nb;
		nb->nmr++;
		m->off = off;
		m->len = len;
		/* A new translation is addressed by its virtual address. */
		if (flags & IBV_REREG_MR_CHANGE_TRANSLATION)
			m->iova = (uintptr_t)(nb->addr + off);
		m->access = access;
		count(S_REREG, 1);
		return;
	}
	if (errno == EOPNOTSUPP)
		rereg_unsupported(what);
	else if (!injected(errno))
		error("ibv_rereg_mr(%s): %d (%s)", what, ret, strerror(errno));
	mr_dereg(t, m);
}

/* ---- traffic ------------------------------------------------------------ */

/* Wait for n completions with ids in [first, first + n); 0 or -1. */
static int wait_wcs(struct thr *t, uint64_t first, int n, uint32_t *recv_len)
{
	struct ibv_wc wc[8];
	double t_last = now();
	int got = 0, i, k;
	unsigned long spins = 0;
	int bad = 0;

	while (got < n) {
		k = ibv_poll_cq(t->qp.cq, 8, wc);
		if (k < 0) {
			error("ibv_poll_cq: %d", k);
			return -1;
		}
		for (i = 0; i < k; i++) {
			if (wc[i].wr_id < first || wc[i].wr_id >= first + n) {
				error("stray completion wr_id %" PRIu64, wc[i].wr_id);
				bad = 1;
				continue;
			}
			if (wc[i].status != IBV_WC_SUCCESS) {
				struct ibv_qp_attr qa[2];
				struct ibv_qp_init_attr qi;

				memset(qa, 0, sizeof(qa));
				ibv_query_qp(t->qp.qp[0], &qa[0], IBV_QP_STATE, &qi);
				ibv_query_qp(t->qp.qp[1], &qa[1], IBV_QP_STATE, &qi);
				error("completion %" PRIu64 " (qpn %#x, vendor_err %#x): %s; QP states %d %d",
				      wc[i].wr_id, wc[i].qp_num, wc[i].vendor_err,
				      ibv_wc_status_str(wc[i].status),
				      qa[0].qp_state, qa[1].qp_state);
				bad = 1;
			}
			if (wc[i].opcode == IBV_WC_RECV && recv_len)
				*recv_len = wc[i].byte_len;
			got++;
		}
		if (k) {
			t_last = now();
			continue;
		}
		if (++spins > 1000)
			usleep(50);
		else
			sched_yield();
		/*
		 * Once a completion has failed, here or anywhere (the run has
		 * failed already), the rest may never come: stop waiting for
		 * them after a while so that the run ends and reports.
		 */
		if ((bad || __atomic_load_n(&stats[S_ERRORS], __ATOMIC_RELAXED)) &&
		    now() - t_last > 10) {
			error("%d completion(s) from wr_id %" PRIu64
			      " never came (and the run has failed)", n - got, first);
			return -1;
		}
		/* Not a test threshold: a note for whoever watches a hang. */
		if (now() - t_last > 60) {
			logmsg("still waiting for %d completion(s) from wr_id %" PRIu64,
			       n - got, first);
			t_last = now();
		}
	}
	return bad ? -1 : 0;
}

enum xfer { X_WRITE, X_READ, X_SEND };
static const char *const xfer_name[] = { "WRITE", "READ", "SEND" };

/*
 * Post one transfer of len bytes from src (at soff within that MR) to
 * dst (at doff) and wait for its completions.  For WRITE and SEND src is
 * local and dst remote (or the receive buffer); for READ dst is local
 * and src remote.  0, or -1 with the error reported.
 */
static int xfer_post(struct thr *t, enum xfer op, struct mr *src, size_t soff,
		     struct mr *dst, size_t doff, size_t len)
{
	struct ibv_send_wr wr, *bad_wr;
	struct ibv_recv_wr rwr, *bad_rwr;
	struct ibv_sge sge, rsge;
	uint32_t recv_len = 0;
	int side = below(&t->r, 2), ret, n = 1;
	uint64_t id = t->wr_id;

	memset(&wr, 0, sizeof(wr));
	memset(&sge, 0, sizeof(sge));
	wr.wr_id = id;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.send_flags = IBV_SEND_SIGNALED;
	sge.length = len;
	switch (op) {
	case X_WRITE:
		wr.opcode = IBV_WR_RDMA_WRITE;
		sge.addr = src->iova + soff;
		sge.lkey = src->mr->lkey;
		wr.wr.rdma.remote_addr = dst->iova + doff;
		wr.wr.rdma.rkey = dst->mr->rkey;
		break;
	case X_READ:
		wr.opcode = IBV_WR_RDMA_READ;
		sge.addr = dst->iova + doff;
		sge.lkey = dst->mr->lkey;
		wr.wr.rdma.remote_addr = src->iova + soff;
		wr.wr.rdma.rkey = src->mr->rkey;
		break;
	case X_SEND:
		wr.opcode = IBV_WR_SEND;
		sge.addr = src->iova + soff;
		sge.lkey = src->mr->lkey;
		memset(&rwr, 0, sizeof(rwr));
		rwr.wr_id = id + 1;
		rwr.sg_list = &rsge;
		rwr.num_sge = 1;
		rsge.addr = dst->iova + doff;
		rsge.length = len;
		rsge.lkey = dst->mr->lkey;
		if (ibv_post_recv(t->qp.qp[!side], &rwr, &bad_rwr)) {
			error("ibv_post_recv: %s", strerror(errno));
			return -1;
		}
		n = 2;
		break;
	}
	t->wr_id += n;
	ret = ibv_post_send(t->qp.qp[side], &wr, &bad_wr);
	if (ret) {
		error("ibv_post_send(%s): %s", xfer_name[op], strerror(ret));
		return -1;
	}
	if (wait_wcs(t, id, n, &recv_len)) {
		error("%s of %zu bytes failed: %s MR %#x (+%zu of %zu, iova %s) -> %s MR %#x (+%zu of %zu, iova %s)",
		      xfer_name[op], len, backing_name[src->buf->kind],
		      src->mr->lkey, soff, src->len,
		      src->iova == (uintptr_t)(src->buf->addr + src->off) ? "= address" : "other",
		      backing_name[dst->buf->kind], dst->mr->lkey, doff, dst->len,
		      dst->iova == (uintptr_t)(dst->buf->addr + dst->off) ? "= address" : "other");
		return -1;
	}
	if (op == X_SEND && recv_len != len) {
		error("SEND of %zu bytes received %u", len, recv_len);
		return -1;
	}
	count(S_WRITE + op, 1);
	return 0;
}

static void journal(struct thr *t, char *p, size_t len)
{
	if (t->journal && t->ntouched < 16) {
		t->touched[t->ntouched].p = p;
		t->touched[t->ntouched].len = len;
		t->ntouched++;
	}
}

/*
 * One verified transfer (see xfer_post).  The source bytes are fresh
 * random data, the destination bytes their complement, so every byte
 * must change; 16 bytes on either side must not.
 */
static int xfer(struct thr *t, enum xfer op, struct mr *src, size_t soff,
		struct mr *dst, size_t doff, size_t len)
{
	char *s = src->buf->addr + src->off + soff;
	char *dp = dst->buf->addr + dst->off + doff;
	char *lo = dst->buf->addr, *hi = dst->buf->addr + dst->buf->len;
	unsigned char before[16], after[16], nb, na;
	size_t i;

	nb = dp - lo < 16 ? dp - lo : 16;
	na = hi - (dp + len) < 16 ? hi - (dp + len) : 16;
	journal(t, s, len);
	journal(t, dp, len);
	fill_random(&t->r, s, len);
	for (i = 0; i < len; i++)
		dp[i] = ~s[i];
	memcpy(before, dp - nb, nb);
	memcpy(after, dp + len, na);

	if (xfer_post(t, op, src, soff, dst, doff, len))
		return -1;
	if (memcmp(dp, s, len)) {
		for (i = 0; i < len && dp[i] == s[i]; i++)
			;
		error("%s of %zu bytes (%s+%zu -> %s+%zu): byte %zu is %#x, not %#x",
		      xfer_name[op], len, backing_name[src->buf->kind], soff,
		      backing_name[dst->buf->kind], doff, i,
		      (unsigned char)dp[i], (unsigned char)s[i]);
		return -1;
	}
	if (memcmp(before, dp - nb, nb) || memcmp(after, dp + len, na)) {
		error("%s of %zu bytes wrote outside its destination",
		      xfer_name[op], len);
		return -1;
	}
	count(S_BYTES, len);
	return 0;
}

/* Do [a, a+al) and [b, b+bl) share a byte? */
static bool overlap(const char *a, size_t al, const char *b, size_t bl)
{
	return a < b + bl && b < a + al;
}

/* One random verified transfer between this thread's MRs; 0 if none fit. */
static int op_traffic(struct thr *t)
{
	enum xfer op = below(&t->r, 3);
	struct mr *src, *dst;
	size_t len, soff, doff;
	int tries;

	for (tries = 0; tries < 8; tries++) {
		switch (op) {
		case X_WRITE:
			src = random_mr(t, 0);
			dst = random_mr(t, IBV_ACCESS_REMOTE_WRITE);
			break;
		case X_READ:
			src = random_mr(t, IBV_ACCESS_REMOTE_READ);
			dst = random_mr(t, IBV_ACCESS_LOCAL_WRITE);
			break;
		default:
			src = random_mr(t, 0);
			dst = random_mr(t, IBV_ACCESS_LOCAL_WRITE);
			break;
		}
		if (!src || !dst)
			return 0;
		len = src->len < dst->len ? src->len : dst->len;
		if (len > MAX_XFER)
			len = MAX_XFER;
		len = chance(&t->r, 4) ? len : 1 + below(&t->r, len);
		soff = below(&t->r, src->len - len + 1);
		doff = below(&t->r, dst->len - len + 1);
		if (!overlap(src->buf->addr + src->off + soff, len,
			     dst->buf->addr + dst->off + doff - 16, len + 32))
			break;
	}
	if (tries == 8)
		return 0;
	return xfer(t, op, src, soff, dst, doff, len);
}

/* ---- fork, munmap, mremap, MADV_DONTNEED --------------------------------- */

#define FORK_POKES 64

/*
 * Fork a child that checks and scribbles over this thread's private
 * buffers and exits, while the parent keeps moving traffic through its
 * MRs: the parent's registered pages must stay the parent's (the data
 * the device writes is what the parent reads), and the child's writes
 * must never show up in the parent.
 */
static void op_fork(struct thr *t)
{
	struct { char *p; unsigned char v; } poke[FORK_POKES];
	int npoke = 0, i, j, status;
	static int forking;
	pid_t pid;

	/* One child at a time per process: each copies the pinned pages. */
	if (__atomic_exchange_n(&forking, 1, __ATOMIC_ACQUIRE))
		return;

	for (i = 0; i < FORK_POKES; i++) {
		struct buf *b = random_buf(t);

		if (!b || (b->kind != B_ANON && b->kind != B_THP))
			continue;
		poke[npoke].p = b->addr + below(&t->r, b->len);
		poke[npoke].v = *poke[npoke].p;
		npoke++;
	}
	pid = fork();
	if (pid < 0) {
		error("fork: %s", strerror(errno));
		__atomic_store_n(&forking, 0, __ATOMIC_RELEASE);
		return;
	}
	if (pid == 0) {
		/* The child's view is the memory as it was at fork. */
		for (i = 0; i < npoke; i++)
			if ((unsigned char)*poke[i].p != poke[i].v)
				_exit(3);
		/* Then scribble (a byte may be poked twice: check first). */
		for (i = 0; i < npoke; i++)
			*poke[i].p = ~poke[i].v;
		_exit(0);
	}
	count(S_FORK, 1);
	t->journal = true;
	t->ntouched = 0;
	for (i = 0; i < 4; i++)
		if (op_traffic(t))
			break;
	t->journal = false;
	if (waitpid(pid, &status, 0) != pid)
		error("waitpid: %s", strerror(errno));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		error("forked child saw memory other than the parent's at fork (status %#x)",
		      status);
	for (i = 0; i < npoke; i++) {
		bool hit = false;

		for (j = 0; j < t->ntouched; j++)
			hit |= overlap(poke[i].p, 1, t->touched[j].p,
				       t->touched[j].len);
		if (!hit && (unsigned char)*poke[i].p != poke[i].v) {
			error("a forked child's write reached the parent's memory");
			break;
		}
	}
	__atomic_store_n(&forking, 0, __ATOMIC_RELEASE);
}

/*
 * Register an anonymous (4 KiB or THP) range, then munmap it and map new
 * memory at the same address, or mremap it elsewhere, or MADV_DONTNEED
 * it.  The MR keeps the pages it pinned: a READ through it returns the
 * old data, a WRITE through it lands in the old pages (visible at the
 * mremap destination, which has them) and never in whatever the process
 * now sees at the old address.
 */
static void op_mm(struct thr *t)
{
	enum { MM_MUNMAP, MM_MREMAP, MM_DONTNEED } mode = below(&t->r, 3);
	static const char *const mode_name[] = { "munmap", "mremap", "dontneed" };
	size_t len = (4 + below(&t->r, 509)) * 4096;	/* 16 KiB .. 2 MiB */
	struct buf v, s;
	struct mr vm, sm;
	char *expect = NULL, *moved = NULL, *remap = NULL;
	bool fresh = false;
	int err, full = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			IBV_ACCESS_REMOTE_READ;
	size_t i;

	memset(&vm, 0, sizeof(vm));
	memset(&sm, 0, sizeof(sm));
	if (buf_map(&v, chance(&t->r, 2) ? B_THP : B_ANON, len, 0))
		return;
	len = v.maplen;		/* whole huge pages for THP */
	if (buf_map(&s, B_ANON, len, 0)) {
		buf_unmap(&v);
		return;
	}
	expect = malloc(len);
	if (!expect)
		goto out;
	fill_random(&t->r, v.addr, len);
	memcpy(expect, v.addr, len);
	err = mr_reg(t, &vm, &v, 0, len, full);
	if (!err)
		err = mr_reg(t, &sm, &s, 0, len, full);
	if (err) {
		if (!injected(err))
			error("ibv_reg_mr for %s: %s", mode_name[mode], strerror(err));
		goto out;
	}

	switch (mode) {
	case MM_MUNMAP:
		if (munmap(v.addr, len)) {
			error("munmap: %s", strerror(errno));
			goto out;
		}
		count(S_MUNMAP, 1);
		break;
	case MM_MREMAP:
		moved = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (moved == MAP_FAILED) {
			moved = NULL;
			goto out;
		}
		remap = mremap(v.addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, moved);
		if (remap == MAP_FAILED) {
			error("mremap: %s", strerror(errno));
			remap = NULL;
			goto out;
		}
		count(S_MREMAP, 1);
		break;
	case MM_DONTNEED:
		if (madvise(v.addr, len, MADV_DONTNEED)) {
			error("madvise(MADV_DONTNEED): %s", strerror(errno));
			goto out;
		}
		count(S_DONTNEED, 1);
		break;
	}
	if (mode != MM_DONTNEED) {
		/* New memory at the old address, if nobody took it meanwhile. */
		char *p = mmap(v.addr, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		if (p == v.addr) {
			memset(p, 0x5a, len);
			fresh = true;
		} else if (p != MAP_FAILED) {
			munmap(p, len);		/* old kernel: hint only */
		}
		if (!fresh) {
			/* The range is gone from this process: unmap nothing. */
			v.map = NULL;
		}
	}

	/* The MR still reads the old data. */
	memset(s.addr, 0x11, len);
	if (xfer_post(t, X_READ, &vm, 0, &sm, 0, len))
		goto out;
	if (memcmp(s.addr, expect, len)) {
		error("%s: READ through the MR returned other data than it pinned",
		      mode_name[mode]);
		goto out;
	}
	/* A WRITE through it goes to the old pages only. */
	fill_random(&t->r, s.addr, len);
	memcpy(expect, s.addr, len);
	if (xfer_post(t, X_WRITE, &sm, 0, &vm, 0, len))
		goto out;
	memset(s.addr, 0x22, len);
	if (xfer_post(t, X_READ, &vm, 0, &sm, 0, len))
		goto out;
	if (memcmp(s.addr, expect, len)) {
		error("%s: READ after WRITE through the MR differs", mode_name[mode]);
		goto out;
	}
	count(S_BYTES, 3 * len);
	if (fresh || mode == MM_DONTNEED) {
		int want = mode == MM_DONTNEED ? 0 : 0x5a;

		for (i = 0; i < len; i++)
			if (v.addr[i] != (char)want)
				break;
		if (i < len)
			error("%s: traffic on the MR reached the new memory at its old address (byte %zu is %#x)",
			      mode_name[mode], i, (unsigned char)v.addr[i]);
	}
	if (remap && memcmp(remap, expect, len))
		error("mremap: the moved range does not show the pages the MR wrote");
out:
	if (vm.used)
		mr_dereg(t, &vm);
	if (sm.used)
		mr_dereg(t, &sm);
	if (remap)
		munmap(remap, len);
	else if (moved)
		munmap(moved, len);
	if (v.used)
		buf_unmap(&v);
	buf_unmap(&s);
	free(expect);
}

/* ---- worker threads and processes -------------------------------------- */

static void thread_cleanup(struct thr *t)
{
	int i;

	for (i = 0; i < MAX_MRS; i++)
		if (t->mrs[i].used)
			mr_dereg(t, &t->mrs[i]);
	for (i = 0; i < MAX_BUFS; i++)
		if (t->bufs[i].used)
			buf_unmap(&t->bufs[i]);
	if (t->have_qp)
		qpair_destroy(&t->qp);
	t->have_qp = false;
}

static void *worker_thread(void *arg)
{
	struct thr *t = arg;
	uint64_t errs0;
	unsigned int w;
	int err;

	SET_OP(t, OP_SETUP);
	err = qpair_create(t->d, &t->qp);
	if (err) {
		error("creating a QP pair on %s: %s", opt.device, strerror(err));
		SET_OP(t, OP_DONE);
		return NULL;
	}
	t->have_qp = true;
	while (now() < deadline) {
		errs0 = __atomic_load_n(&stats[S_ERRORS], __ATOMIC_RELAXED);
		w = below(&t->r, 100);
		if (n_mrs(t) < 4 || w < 12) {
			SET_OP(t, OP_NEW);
			op_new_buf(t);
		} else if (w < 22) {
			SET_OP(t, OP_OVERLAP);
			op_overlap(t);
		} else if (w < 34) {
			SET_OP(t, OP_DEREG);
			op_dereg(t);
		} else if (w < 38) {
			SET_OP(t, OP_REREG);
			op_rereg(t);
		} else if (w < 39) {
			SET_OP(t, OP_EINVAL);
			op_einval(t);
		} else if (w < 42) {
			SET_OP(t, OP_FORK);
			op_fork(t);
		} else if (w < 46) {
			SET_OP(t, OP_MM);
			op_mm(t);
		} else {
			SET_OP(t, OP_TRAFFIC);
			op_traffic(t);
		}
		if (__atomic_load_n(&stats[S_ERRORS], __ATOMIC_RELAXED) != errs0 &&
		    !opt.faults)
			break;	/* one report per thread, not a flood */
	}
	SET_OP(t, OP_CLEANUP);
	thread_cleanup(t);
	SET_OP(t, OP_DONE);
	return NULL;
}

static int worker_process(int id)
{
	struct thr *thr;
	struct dev d;
	long pin;
	int i, err;

	proc_id = id;
	err = dev_open(&d);
	if (err) {
		error("opening %s: %s", opt.device, strerror(err));
		return 1;
	}
	thr = calloc(opt.threads, sizeof(*thr));
	if (!thr)
		return 1;
	for (i = 0; i < opt.threads; i++) {
		thr[i].id = i;
		thr[i].d = &d;
		rng_init(&thr[i].r, opt.seed ^ ((uint64_t)(id + 1) << 32) ^ (i + 1));
		if (pthread_create(&thr[i].tid, NULL, worker_thread, &thr[i])) {
			error("pthread_create");
			thr[i].tid = 0;
		}
	}
	for (i = 0; i < opt.threads; i++)
		if (thr[i].tid)
			pthread_join(thr[i].tid, NULL);
	dev_close(&d);
	pin = vmpin_kb();
	if (pin != 0)
		error("VmPin is %ld kB after every MR was deregistered", pin);
	free(thr);
	return 0;
}

/*
 * A victim: its own context, QP pair and MRs, RDMA WRITE and READ
 * traffic as fast as it can post it, until the main process SIGKILLs it.
 * It writes one byte to ready_fd once traffic is flowing.
 */
static int victim_process(int ready_fd, uint64_t seed)
{
	struct dev d;
	struct qpair p;
	struct rng r;
	struct ibv_mr *mr[4] = { 0 };
	char *mem[4];
	size_t len[4];
	int i, err, posted = 0;
	uint64_t id = 0;
	bool told = false;

	proc_id = 1000;
	rng_init(&r, seed);
	err = dev_open(&d);
	if (err)
		return injected(err) ? 0 : (error("victim: open: %s", strerror(err)), 1);
	err = qpair_create(&d, &p);
	if (err)
		return injected(err) ? 0 : (error("victim: QPs: %s", strerror(err)), 1);
	for (i = 0; i < 4; i++) {
		len[i] = (16 + below(&r, 1024)) * 4096;	/* 64 KiB .. 4 MiB */
		mem[i] = mmap(NULL, len[i], PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem[i] == MAP_FAILED)
			return 1;
		if (i & 1)
			madvise(mem[i], len[i], MADV_HUGEPAGE);
		memset(mem[i], i, len[i]);
		mr[i] = ibv_reg_mr(d.pd, mem[i], len[i], IBV_ACCESS_LOCAL_WRITE |
				   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
		if (!mr[i])
			return injected(errno) ? 0 : (error("victim: reg: %s", strerror(errno)), 1);
	}
	for (;;) {
		struct ibv_wc wc[16];
		struct ibv_send_wr wr, *bad;
		struct ibv_sge sge;
		int a = below(&r, 4), b = (a + 1 + below(&r, 3)) % 4, k;
		size_t l = 1 + below(&r, len[a] < len[b] ? len[a] : len[b]);

		while (posted < QP_DEPTH / 2) {
			memset(&wr, 0, sizeof(wr));
			wr.wr_id = id++;
			wr.sg_list = &sge;
			wr.num_sge = 1;
			wr.send_flags = IBV_SEND_SIGNALED;
			wr.opcode = chance(&r, 2) ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
			sge.addr = (uintptr_t)mem[a];
			sge.length = l;
			sge.lkey = mr[a]->lkey;
			wr.wr.rdma.remote_addr = (uintptr_t)mem[b];
			wr.wr.rdma.rkey = mr[b]->rkey;
			if (ibv_post_send(p.qp[id & 1], &wr, &bad))
				break;
			posted++;
		}
		k = ibv_poll_cq(p.cq, 16, wc);
		for (i = 0; i < k; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				error("victim: completion: %s",
				      ibv_wc_status_str(wc[i].status));
				return 1;
			}
			posted--;
			if (!told) {
				told = true;
				if (write(ready_fd, "r", 1) != 1)
					return 1;
			}
		}
		if (!k)
			sched_yield();
	}
}

/* Fork victims and SIGKILL them mid-transfer until the deadline. */
static void print_stats(const char *prefix);

static void killer_loop(struct rng *r)
{
	double next_report = 30;

	while (now() < deadline) {
		if (now() >= next_report) {
			print_stats("stress: progress");
			next_report = now() + 30;
		}
		int fds[2], status;
		struct pollfd pfd;
		pid_t pid;
		char c;

		usleep(200000 + below(r, 800000));
		if (now() >= deadline)
			break;
		if (pipe(fds)) {
			error("pipe: %s", strerror(errno));
			return;
		}
		pid = fork();
		if (pid < 0) {
			error("fork: %s", strerror(errno));
			return;
		}
		if (pid == 0) {
			close(fds[0]);
			_exit(victim_process(fds[1], rnd(r)));
		}
		close(fds[1]);
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		/* Traffic flowing (or the victim died): then kill. */
		for (int waits = 1; poll(&pfd, 1, 1000) == 0; waits++)
			if (waits % 30 == 0)
				logmsg("victim %d is not transferring yet", pid);
		if (read(fds[0], &c, 1) == 1)
			usleep(below(r, 50000));
		close(fds[0]);
		kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid) {
			error("waitpid(victim): %s", strerror(errno));
			continue;
		}
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			count(S_VICTIMS, 1);
		else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			error("victim exited with status %#x before it was killed",
			      status);
	}
}

/* ---- RLIMIT_MEMLOCK ----------------------------------------------------- */

static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct c[2];

	if (syscall(SYS_capget, &h, c))
		return -1;
	c[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	c[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
	c[CAP_IPC_LOCK / 32].inheritable &= ~(1U << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, c);
}

#define ML_LIMIT	(16 * MIB)
#define ML_CHUNK	(1 * MIB)
#define ML_MAX		32

/*
 * Without CAP_IPC_LOCK and with RLIMIT_MEMLOCK at 16 MiB: register 1 MiB
 * MRs until one fails.  It must fail with ENOMEM at the limit (not
 * before), leave VmPin where it was, and registration must work again
 * after one MR is released; after all are, VmPin is zero.
 */
static int memlock_process(uint64_t seed)
{
	struct rlimit rl = { ML_LIMIT, ML_LIMIT };
	struct ibv_mr *mr[ML_MAX];
	struct rng r;
	struct dev d;
	char *mem;
	int n, i, err;
	long pin;

	proc_id = 999;
	rng_init(&r, seed);
	if (drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &rl)) {
		error("memlock: dropping CAP_IPC_LOCK / setrlimit: %s", strerror(errno));
		return 1;
	}
	mem = mmap(NULL, ML_MAX * ML_CHUNK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	memset(mem, 1, ML_MAX * ML_CHUNK);
	err = dev_open(&d);
	if (err) {
		error("memlock: opening %s: %s", opt.device, strerror(err));
		return 1;
	}
	while (now() < deadline) {
		long pin0 = vmpin_kb();

		for (n = 0; n < ML_MAX; n++) {
			mr[n] = ibv_reg_mr(d.pd, mem + n * ML_CHUNK, ML_CHUNK,
					   IBV_ACCESS_LOCAL_WRITE |
					   IBV_ACCESS_REMOTE_WRITE);
			if (!mr[n])
				break;
		}
		err = errno;
		pin = vmpin_kb();
		if (n == ML_MAX) {
			error("memlock: %d MiB registered under a %lu MiB RLIMIT_MEMLOCK",
			      n, ML_LIMIT / MIB);
		} else if (err != ENOMEM) {
			error("memlock: registration over the limit failed with %s, not ENOMEM",
			      strerror(err));
		} else if (!opt.faults && n != (int)(ML_LIMIT / ML_CHUNK) - (int)(pin0 * KIB / ML_CHUNK)) {
			error("memlock: ENOMEM after %d MiB, the limit is %lu MiB (VmPin was %ld kB)",
			      n, ML_LIMIT / MIB, pin0);
		} else if (pin != pin0 + (long)(n * ML_CHUNK / KIB)) {
			error("memlock: VmPin %ld kB after a failed registration, %d MiB registered",
			      pin, n);
		} else {
			count(S_MEMLOCK_ENOMEM, 1);
		}
		/* Release one: registration works again. */
		if (n > 0) {
			i = below(&r, n);
			if (ibv_dereg_mr(mr[i]))
				error("memlock: dereg: %s", strerror(errno));
			mr[i] = ibv_reg_mr(d.pd, mem + n * ML_CHUNK, ML_CHUNK,
					   IBV_ACCESS_LOCAL_WRITE);
			if (!mr[i] && !injected(errno)) {
				error("memlock: registration after a release: %s",
				      strerror(errno));
			}
			if (!mr[i]) {
				mr[i] = mr[--n];
			}
		}
		for (i = 0; i < n; i++)
			if (ibv_dereg_mr(mr[i]))
				error("memlock: dereg: %s", strerror(errno));
		pin = vmpin_kb();
		if (pin != pin0)
			error("memlock: VmPin %ld kB after releasing every MR (was %ld)",
			      pin, pin0);
		count(S_MEMLOCK_CYCLES, 1);
		if (stats[S_ERRORS])
			break;
		usleep(below(&r, 200000));
	}
	dev_close(&d);
	pin = vmpin_kb();
	if (pin != 0)
		error("memlock: VmPin %ld kB at exit", pin);
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: stress --device DEV [--seed S] [--duration SECONDS]\n"
		"              [--procs N] [--threads N] [--max-live-mb MB]\n"
		"              [--faults] [--no-kill] [--no-memlock] [--verbose]\n");
	exit(2);
}

static void print_stats(const char *prefix)
{
	int i;

	printf("%s", prefix);
	for (i = 0; i < S_NSTATS; i++)
		printf(" %s=%" PRIu64, stat_name[i], stats[i]);
	if (strstr(prefix, "progress")) {
		printf(" threads=");
		for (i = 0; i < opt.procs * opt.threads; i++)
			putchar(op_letter[opstate[i]]);
	}
	printf("\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 't' },
		{ "procs", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 'T' },
		{ "device", required_argument, NULL, 'd' },
		{ "max-live-mb", required_argument, NULL, 'm' },
		{ "faults", no_argument, NULL, 'f' },
		{ "no-kill", no_argument, NULL, 'K' },
		{ "no-memlock", no_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	struct rng r;
	pid_t *pids, mlpid = 0;
	int c, i, status, bad = 0;
	bool seeded = false;
	long hp_free;
	double next_report;

	while ((c = getopt_long(argc, argv, "s:t:p:T:d:m:fKMv", lo, NULL)) != -1) {
		switch (c) {
		case 's': opt.seed = strtoull(optarg, NULL, 0); seeded = true; break;
		case 't': opt.duration = atof(optarg); break;
		case 'p': opt.procs = atoi(optarg); break;
		case 'T': opt.threads = atoi(optarg); break;
		case 'd': opt.device = optarg; break;
		case 'm': opt.max_live = strtoul(optarg, NULL, 0) * MIB; break;
		case 'f': opt.faults = true; break;
		case 'K': opt.no_kill = true; break;
		case 'M': opt.no_memlock = true; break;
		case 'v': opt.verbose = true; break;
		default: usage();
		}
	}
	if (!opt.device || optind != argc || opt.procs < 1 || opt.threads < 1 ||
	    opt.duration < 0)
		usage();
	if (!seeded) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		opt.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ getpid();
	}
	if (!opt.max_live) {
		/*
		 * A sixth of the memory, shared by the workers: a fork copies
		 * a process's pinned pages, and victims and hugetlb need some.
		 */
		long total = meminfo_kb("MemTotal");

		opt.max_live = total > 0 ? total * KIB / 6 / opt.procs : 128 * MIB;
		if (opt.max_live > 512 * MIB)
			opt.max_live = 512 * MIB;
	}
	hp_free = meminfo_kb("HugePages_Free");
	hugetlb_available = hp_free > 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	deadline = opt.duration;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("stress: seed=%" PRIu64 " device=%s duration=%g procs=%d threads=%d "
	       "max_live_mb=%lu hugetlb_free=%ld faults=%d\n", opt.seed, opt.device,
	       opt.duration, opt.procs, opt.threads, opt.max_live / MIB, hp_free,
	       opt.faults);
	printf("stress: reproduce with: tests/stress/stress --device %s --seed %" PRIu64
	       " --duration %g --procs %d --threads %d%s\n", opt.device, opt.seed,
	       opt.duration, opt.procs, opt.threads, opt.faults ? " --faults" : "");

	stats = mmap(NULL, sizeof(*stats) * S_NSTATS, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED)
		return 1;
	opstate = mmap(NULL, opt.procs * opt.threads, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (opstate == MAP_FAILED)
		return 1;
	rng_init(&r, opt.seed);
	pids = calloc(opt.procs, sizeof(*pids));
	if (!pids)
		return 1;
	fflush(NULL);
	for (i = 0; i < opt.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("fork");
			return 1;
		}
		if (pids[i] == 0)
			_exit(worker_process(i));
	}
	if (!opt.no_memlock) {
		uint64_t s = rnd(&r);

		mlpid = fork();
		if (mlpid == 0)
			_exit(memlock_process(s));
	}
	if (!opt.no_kill) {
		killer_loop(&r);
	}
	next_report = now() + (opt.no_kill ? 30 : 5);
	for (i = 0; i < opt.procs; i++) {
		while (waitpid(pids[i], &status, WNOHANG) == 0) {
			if (now() >= next_report) {
				print_stats("stress: progress");
				next_report = now() + 30;
			}
			usleep(100000);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "stress: worker %d exited with status %#x\n",
				i, status);
			bad = 1;
		}
	}
	if (mlpid > 0) {
		waitpid(mlpid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "stress: memlock child exited with status %#x\n",
				status);
			bad = 1;
		}
	}
	if (vmpin_kb() != 0) {
		fprintf(stderr, "stress: main process VmPin %ld kB\n", vmpin_kb());
		bad = 1;
	}
	print_stats("stress: totals");
	if (!stats[S_WRITE] || !stats[S_READ] || !stats[S_SEND]) {
		fprintf(stderr, "stress: not every kind of transfer was verified\n");
		bad = 1;
	}
	if (!opt.no_memlock && !stats[S_MEMLOCK_ENOMEM]) {
		fprintf(stderr, "stress: RLIMIT_MEMLOCK was never hit cleanly\n");
		bad = 1;
	}
	if (stats[S_ERRORS] || bad) {
		printf("stress: FAILED seed=%" PRIu64 " errors=%" PRIu64 "\n",
		       opt.seed, stats[S_ERRORS]);
		return 1;
	}
	printf("stress: PASSED seed=%" PRIu64 " verified=%" PRIu64 " payloads (%" PRIu64
	       " bytes)\n", opt.seed, stats[S_WRITE] + stats[S_READ] + stats[S_SEND],
	       stats[S_BYTES]);
	return 0;
}
