// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * res_test -d DEVICE: what one process can take from a device, and from
 * the others on it.
 *
 * - Every object limit ibv_query_device() reports is enforced exactly:
 *   with frdma's max_objects module parameter lowered, the device reports
 *   the lowered limits (on a device created afterwards), and exactly that
 *   many PDs, CQs, QPs, MRs, MWs and
 *   AHs can be created; the next one fails with ENOMEM, and succeeds
 *   again once one is gone.
 * - Memory windows have keys of their own: allocating windows until the
 *   device refuses one leaves ibv_reg_mr() working (on the device with
 *   lowered limits).
 * - A process in a memory cgroup of 64 MiB cannot create CQ rings worth
 *   far more: creation fails with ENOMEM, and its other objects keep
 *   working (an RDMA WRITE over its QPs after the failure).
 * - A process binding windows to another process's MR key (which must
 *   fail: another PD) never makes that process's ibv_dereg_mr() fail.
 *   All on one CPU, with the kernel fully preemptible and the victim a
 *   SCHED_FIFO task that wakes every 50 us: each wakeup preempts a
 *   binding process wherever it is, also in the middle of a bind, so a
 *   bind that holds the victim's MR even briefly is caught.
 * - ibv_rereg_mr() adding write access re-pins the MR's range: only the
 *   registering process may do that, not a child that inherited the
 *   context.
 *
 * Needs root (module parameter, cgroup) inside the test VM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "loopback.h"
#include "device.h"
#include "tap.h"

#define PAGE		4096UL
#define PARAM		"/sys/module/frdma/parameters/max_objects"
#define CGROOT		"/sys/fs/cgroup"
#define CG		CGROOT "/frdma-res-test"

static const char *dev_name = "frdma0";

static struct ibv_context *open_named(const char *name)
{
	struct ibv_context *ctx = open_device_by_name(name);

	if (!ctx)
		diag("cannot open %s: %s", name, strerror(errno));
	return ctx;
}

static struct ibv_context *open_dev(void)
{
	return open_named(dev_name);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static int set_max_objects(unsigned int n)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%u", n);
	return write_file(PARAM, buf);
}

/* --- exact limits, lowered with max_objects ----------------------------- */

#define LIM	24
#define LIMDEV	"frdmalim"

struct objs {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	char *buf;
	struct ibv_mr *mr;
	union ibv_gid gid;
	int gidx;
};

/* Create one object of kind @k into @slot; 0 or an errno. */
static int create_one(struct objs *o, int k, void **slot)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = o->cq, .recv_cq = o->cq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_ah_attr aa = {
		.is_global = 1, .port_num = LB_PORT,
		.grh = { .dgid = o->gid, .sgid_index = o->gidx,
			 .hop_limit = 1 },
	};

	errno = 0;
	switch (k) {
	case 0: *slot = ibv_alloc_pd(o->ctx); break;
	case 1: *slot = ibv_create_cq(o->ctx, 1, NULL, NULL, 0); break;
	case 2: *slot = ibv_create_qp(o->pd, &ia); break;
	case 3: *slot = ibv_reg_mr(o->pd, o->buf, PAGE, 0); break;
	case 4: *slot = ibv_alloc_mw(o->pd, IBV_MW_TYPE_2); break;
	default: *slot = ibv_create_ah(o->pd, &aa); break;
	}
	return *slot ? 0 : (errno ? errno : EIO);
}

static int destroy_one(int k, void *p)
{
	switch (k) {
	case 0: return ibv_dealloc_pd(p);
	case 1: return ibv_destroy_cq(p);
	case 2: return ibv_destroy_qp(p);
	case 3: return ibv_dereg_mr(p);
	case 4: return ibv_dealloc_mw(p);
	default: return ibv_destroy_ah(p);
	}
}

static void test_mw_keys(const char *name);

static void test_limits(void)
{
	static const char *const name[] = { "PD", "CQ", "QP", "MR", "MW", "AH" };
	struct ibv_device_attr da;
	struct objs o = { 0 };
	void *slot[LIM + 4];
	int k, i, n, err, held;

	/* A second device on the veth's other end, created with it set. */
	if (!ok(set_max_objects(LIM) == 0, "max_objects set to %d", LIM))
		return;
	err = system("rdma link add " LIMDEV " type frdma netdev veth1");
	ok(set_max_objects(0) == 0, "max_objects back to 0");
	if (!ok(err == 0, "device " LIMDEV " created with it"))
		return;
	o.ctx = open_named(LIMDEV);
	if (!o.ctx)
		goto out;
	if (ok(!ibv_query_device(o.ctx, &da), "ibv_query_device"))
		ok(da.max_pd == LIM && da.max_cq == LIM && da.max_qp == LIM &&
		   da.max_mr == LIM && da.max_mw == LIM && da.max_ah == LIM,
		   "  it reports them: pd %d cq %d qp %d mr %d mw %d ah %d",
		   da.max_pd, da.max_cq, da.max_qp, da.max_mr, da.max_mw,
		   da.max_ah);
	o.buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lb_find_gid(o.ctx, &o.gidx, &o.gid))
		diag("no RoCE v2 GID");

	for (k = 0; k < 6; k++) {
		/* The CQ the QPs need counts too (the PD came after PDs). */
		held = k == 1;
		for (n = 0, err = 0; n < LIM + 4 && !err; n++)
			err = create_one(&o, k, &slot[n]);
		n -= err ? 1 : 0;
		ok(n + held == LIM && err == ENOMEM,
		   "  %d %ss exist, the next one fails with ENOMEM (%d, %s)",
		   LIM, name[k], n + held, strerror(err));
		if (n > 0) {
			destroy_one(k, slot[--n]);
			ok(!create_one(&o, k, &slot[n]),
			   "  one more %s once one is gone", name[k]);
			n++;
		}
		for (i = 0; i < n; i++)
			destroy_one(k, slot[i]);
		if (k == 0)
			o.pd = ibv_alloc_pd(o.ctx);
		if (k == 0)
			o.cq = ibv_create_cq(o.ctx, 4, NULL, NULL, 0);
		if (!o.pd || !o.cq) {
			ok(0, "  a PD and a CQ for the other kinds");
			break;
		}
	}
	if (o.cq)
		ibv_destroy_cq(o.cq);
	if (o.pd)
		ibv_dealloc_pd(o.pd);
	ibv_close_device(o.ctx);
	test_mw_keys(LIMDEV);
out:
	ok(system("rdma link delete " LIMDEV) == 0, LIMDEV " deleted");
}

/* --- memory windows do not use up MR keys -------------------------------- */

static void test_mw_keys(const char *name)
{
	struct ibv_device_attr da;
	struct ibv_context *ctx;
	struct ibv_mw **mw;
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	int n = 0, cap, err = 0, i;
	char *buf;

	ctx = open_named(name);
	if (!ctx)
		return;
	pd = ibv_alloc_pd(ctx);
	ibv_query_device(ctx, &da);
	/* Past every key the device has, MRs' and MWs' together. */
	cap = da.max_mw + da.max_mr + 1;
	mw = calloc(cap, sizeof(*mw));
	buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!pd || !mw || buf == MAP_FAILED) {
		ok(0, "memory windows: setup");
		return;
	}
	while (n < cap) {
		mw[n] = ibv_alloc_mw(pd, IBV_MW_TYPE_1);
		if (!mw[n]) {
			err = errno;
			break;
		}
		n++;
	}
	ok(n == da.max_mw && err == ENOMEM,
	   "memory windows: %d allocated (max_mw %d), then ENOMEM (%s)", n,
	   da.max_mw, strerror(err));
	mr = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE);
	ok(mr != NULL, "  ibv_reg_mr still works with every window allocated (%s)",
	   mr ? "ok" : strerror(errno));
	if (mr)
		ibv_dereg_mr(mr);
	for (i = 0; i < n; i++)
		ibv_dealloc_mw(mw[i]);
	free(mw);
	munmap(buf, PAGE);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
}

/* --- a memory cgroup bounds ring memory ---------------------------------- */

/* Set up CG with memory.max 64M; 0 or -1. */
static int cgroup_setup(void)
{
	if (access(CGROOT "/cgroup.controllers", F_OK) &&
	    mount("cgroup2", CGROOT, "cgroup2", 0, NULL)) {
		diag("cannot mount cgroup2: %s", strerror(errno));
		return -1;
	}
	write_file(CGROOT "/cgroup.subtree_control", "+memory");
	if (mkdir(CG, 0755) && errno != EEXIST)
		return -1;
	return write_file(CG "/memory.max", "64M");
}

struct memcg_result {
	int setup, created, err, write_ok;
};

/* The child in the cgroup: a working QP pair, then as many big CQs as it gets. */
static void memcg_child(int fd)
{
	struct memcg_result r = { 0 };
	struct ibv_context *ctx;
	struct ibv_cq *cq, **big;
	struct ibv_qp *a, *b;
	struct ibv_send_wr wr = { .opcode = IBV_WR_RDMA_WRITE,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_send_wr *bad;
	struct ibv_sge sge;
	struct ibv_mr *mr;
	union ibv_gid gid;
	struct ibv_wc wc;
	struct ibv_pd *pd;
	char *buf, pid[32];
	int gidx, i;

	snprintf(pid, sizeof(pid), "%d", getpid());
	if (write_file(CG "/cgroup.procs", pid))
		goto out;
	ctx = open_dev();
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	cq = pd ? ibv_create_cq(ctx, 16, NULL, NULL, 0) : NULL;
	buf = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mr = cq ? ibv_reg_mr(pd, buf, 2 * PAGE, IBV_ACCESS_LOCAL_WRITE |
			     IBV_ACCESS_REMOTE_WRITE) : NULL;
	a = mr ? lb_create_qp(pd, cq, cq, 4, 1, 0) : NULL;
	b = a ? lb_create_qp(pd, cq, cq, 4, 1, 0) : NULL;
	if (!b || lb_find_gid(ctx, &gidx, &gid) ||
	    lb_connect_pair(a, b, &gid, gidx, 1))
		goto out;
	r.setup = 1;

	big = calloc(257, sizeof(*big));
	for (i = 0; i < 257; i++) {
		big[i] = ibv_create_cq(ctx, 65536, NULL, NULL, 0);
		if (!big[i]) {
			r.err = errno;
			break;
		}
		r.created++;
	}

	memset(buf, 'x', PAGE);
	memset(buf + PAGE, 0, PAGE);
	sge = (struct ibv_sge){ (uintptr_t)buf, PAGE, mr->lkey };
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.wr.rdma.remote_addr = (uintptr_t)buf + PAGE;
	wr.wr.rdma.rkey = mr->rkey;
	r.write_ok = !ibv_post_send(a, &wr, &bad) && lb_poll(cq, &wc, 1) == 1 &&
		     wc.status == IBV_WC_SUCCESS &&
		     !memcmp(buf, buf + PAGE, PAGE);
	for (i = 0; i < r.created; i++)
		ibv_destroy_cq(big[i]);
out:
	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(2);
	_exit(0);
}

/* Does the kernel have cgroup v2 (and a place to mount it) at all? */
static bool have_memcg(void)
{
	char line[256];
	bool cg2 = false;
	FILE *f = fopen("/proc/filesystems", "r");

	while (f && fgets(line, sizeof(line), f))
		cg2 |= strstr(line, "\tcgroup2") != NULL;
	if (f)
		fclose(f);
	return cg2 && !access(CGROOT, F_OK);
}

static void test_memcg(void)
{
	struct memcg_result r = { 0 };
	int p[2], st;
	pid_t pid;

	if (!have_memcg()) {
		/* A kernel built without cgroups (the debug kernel's tinyconfig). */
		ok(true, "a cgroup v2 with memory.max 64M # SKIP the kernel has no cgroup v2 (%s)",
		   access(CGROOT, F_OK) ? "no " CGROOT : "no cgroup2 file system");
		return;
	}
	if (!ok(cgroup_setup() == 0, "a cgroup v2 with memory.max 64M") ||
	    pipe(p))
		return;
	pid = fork();
	if (!pid) {
		close(p[0]);
		memcg_child(p[1]);
	}
	close(p[1]);
	if (read(p[0], &r, sizeof(r)) != sizeof(r))
		diag("no result from the child");
	close(p[0]);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && r.setup,
	   "  the process in it has a connected QP pair (status %#x)", st);
	/* A 65,536-entry CQ ring is 2 MiB: 32 of them are the cgroup's 64M. */
	ok(r.created < 32 && r.err == ENOMEM,
	   "  2 MiB CQ rings: creation fails with ENOMEM after %d (%s)",
	   r.created, strerror(r.err));
	ok(r.write_ok, "  its QPs and MR keep working afterwards");
	rmdir(CG);
}

/* --- binds naming another process's MR ----------------------------------- */

struct shared {
	_Atomic uint32_t key;
	_Atomic int stop;
	_Atomic long binds, bind_errs, other;
};

static void attacker(struct shared *sh)
{
	struct ibv_send_wr wr = { .wr_id = 1, .opcode = IBV_WR_BIND_MW,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_context *ctx = open_dev();
	struct ibv_send_wr *bad;
	struct ibv_qp *a, *b;
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_RESET };
	struct ibv_mr *own, fake;
	int gidx;
	union ibv_gid gid;
	struct ibv_mw *mw;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_wc wc;
	char *buf;

	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	cq = pd ? ibv_create_cq(ctx, 16, NULL, NULL, 0) : NULL;
	buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	own = cq ? ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE |
			      IBV_ACCESS_MW_BIND) : NULL;
	mw = own ? ibv_alloc_mw(pd, IBV_MW_TYPE_2) : NULL;
	a = mw ? lb_create_qp(pd, cq, cq, 4, 1, 0) : NULL;
	b = a ? lb_create_qp(pd, cq, cq, 4, 1, 0) : NULL;
	if (!b || lb_find_gid(ctx, &gidx, &gid) ||
	    lb_connect_pair(a, b, &gid, gidx, 1))
		_exit(1);
	fake = *own;
	wr.bind_mw.mw = mw;
	wr.bind_mw.bind_info.mr = &fake;
	wr.bind_mw.bind_info.length = PAGE;
	wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_READ;
	while (!atomic_load(&sh->stop)) {
		fake.lkey = fake.rkey = atomic_load(&sh->key);
		wr.bind_mw.rkey = ibv_inc_rkey(mw->rkey);
		if (ibv_post_send(a, &wr, &bad) || lb_poll(cq, &wc, 1) != 1) {
			atomic_fetch_add(&sh->other, 1);
			break;
		}
		atomic_fetch_add(&sh->binds, 1);
		if (wc.status == IBV_WC_MW_BIND_ERR)
			atomic_fetch_add(&sh->bind_errs, 1);
		else
			atomic_fetch_add(&sh->other, 1);
		/* The failed bind moved a to the error state: back to RTS. */
		if (ibv_modify_qp(a, &qa, IBV_QP_STATE) ||
		    lb_connect(a, b->qp_num, &gid, gidx, 1)) {
			atomic_fetch_add(&sh->other, 1);
			break;
		}
	}
	_exit(0);
}

#define PREEMPT		"/sys/kernel/debug/sched/preempt"

/* The preemption model in effect ("none (voluntary) full"), or "". */
static void preempt_mode(char *mode, size_t size)
{
	char line[128] = "", *open_, *close_;
	FILE *f = fopen(PREEMPT, "r");

	mode[0] = 0;
	if (!f)
		return;
	open_ = fgets(line, sizeof(line), f) ? strchr(line, '(') : NULL;
	fclose(f);
	close_ = open_ ? strchr(open_, ')') : NULL;
	if (close_ && (size_t)(close_ - open_) <= size) {
		*close_ = 0;
		snprintf(mode, size, "%s", open_ + 1);
	}
}

static void write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, s, strlen(s)) < 0)
		diag("write %s to %s: %s", s, path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Let the binding processes run a moment; the wakeup preempts them. */
static void victim_nap(void)
{
	struct timespec ts = { 0, 50000 };

	nanosleep(&ts, NULL);
}

static void test_foreign_bind(void)
{
	struct ibv_context *ctx = open_dev();
	struct shared *sh;
	struct timespec t0;
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	long regs = 0, busy = 0, other = 0;
	struct sched_param fifo = { .sched_priority = 1 }, normal = { 0 };
	cpu_set_t cpus, one;
	char mode[32];
	pid_t pid[2];
	int i, st;
	char *buf;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	if (!pd || sh == MAP_FAILED || buf == MAP_FAILED) {
		ok(0, "foreign binds: setup");
		return;
	}
	/* One CPU, fully preemptible; the children inherit the affinity. */
	preempt_mode(mode, sizeof(mode));
	if (mode[0])
		write_str(PREEMPT, "full");
	sched_getaffinity(0, sizeof(cpus), &cpus);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		diag("sched_setaffinity: %s", strerror(errno));
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (!pid[i])
			attacker(sh);
	}
	if (sched_setscheduler(0, SCHED_FIFO, &fifo))
		diag("SCHED_FIFO: %s", strerror(errno));
	/* Until both bind (the victim would otherwise starve their setup). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&sh->binds) < 2 && !atomic_load(&sh->other) &&
	       lb_ms_since(&t0) < LB_WAIT_MS)
		victim_nap();
	/*
	 * Change the MR in place (ibv_rereg_mr() fails with EBUSY, like
	 * ibv_dereg_mr(), while a window holds the MR) while the others bind
	 * to its key, then register and deregister MRs while they do.
	 */
	mr = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_MW_BIND);
	if (mr) {
		atomic_store(&sh->key, mr->lkey);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; lb_ms_since(&t0) < 4000; i++) {
			if (ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL,
					 NULL, 0, IBV_ACCESS_LOCAL_WRITE |
					 IBV_ACCESS_MW_BIND |
					 (i & 1 ? IBV_ACCESS_REMOTE_READ : 0)))
				busy++;
			regs++;
			victim_nap();
		}
		if (ibv_dereg_mr(mr))
			busy++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (lb_ms_since(&t0) < 4000) {
		mr = ibv_reg_mr(pd, buf, PAGE, IBV_ACCESS_LOCAL_WRITE |
				IBV_ACCESS_MW_BIND | IBV_ACCESS_REMOTE_READ);
		if (!mr) {
			other++;
			break;
		}
		atomic_store(&sh->key, mr->lkey);
		regs++;
		victim_nap();
		for (i = 0; i < 1000 && ibv_dereg_mr(mr); i++)
			busy++;
		if (i == 1000)
			other++;
	}
	atomic_store(&sh->stop, 1);
	sched_setscheduler(0, SCHED_OTHER, &normal);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (mode[0])
		write_str(PREEMPT, mode);
	for (i = 0; i < 2; i++) {
		waitpid(pid[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			other++;
	}
	ok(atomic_load(&sh->binds) > 0 &&
	   atomic_load(&sh->binds) == atomic_load(&sh->bind_errs) &&
	   !atomic_load(&sh->other),
	   "foreign binds: two processes bound windows to our MR key %ld times, each IBV_WC_MW_BIND_ERR",
	   atomic_load(&sh->binds));
	ok(regs > 0 && !busy && !other,
	   "  none of our %ld ibv_rereg_mr() and ibv_dereg_mr() calls failed (%ld EBUSY, %ld other)",
	   regs, busy, other);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	munmap(sh, sizeof(*sh));
	munmap(buf, PAGE);
}

/* --- rereg_mr adding write access from another process -------------------- */

static void test_rereg_child(void)
{
	struct ibv_context *ctx = open_dev();
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	int st, ret;
	pid_t pid;
	char *buf;

	buf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 'p', PAGE);
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	mr = pd ? ibv_reg_mr(pd, buf, PAGE, 0) : NULL;
	if (!ok(mr != NULL, "rereg: a read-only MR"))
		return;
	pid = fork();
	if (!pid) {
		/* The child's page at the MR's address is its own copy. */
		memset(buf, 'c', PAGE);
		ret = ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
				   0, IBV_ACCESS_LOCAL_WRITE);
		_exit(ret ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "  a forked child cannot add write access (re-pin from its memory) (status %#x)",
	   st);
	ret = ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			   IBV_ACCESS_LOCAL_WRITE);
	ok(!ret, "  the registering process can (%d)", ret);
	ok(!ibv_dereg_mr(mr), "  ibv_dereg_mr");
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	munmap(buf, PAGE);
}

int main(int argc, char **argv)
{
	dev_name = lb_args(argc, argv, NULL);
	signal(SIGPIPE, SIG_IGN);
	test_foreign_bind();
	test_rereg_child();
	test_limits();
	test_memcg();
	return tap_done();
}
