// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * killed_test -d DEVICE: kill -9 of a process with QPs mid-transfer frees
 * everything.
 *
 * A child process opens DEVICE, registers 4 MiB MRs and connects four
 * loopback RC QP pairs (tests/verbs/loopback.h) that keep their send
 * queues full: one streams RDMA WRITEs, one RDMA READs, one SENDs whose
 * receives it keeps replenishing, and one SENDs to a QP with no receive
 * posted, so that it sits in RNR retry (rnr_retry 7: forever).  Once every
 * streaming pair has completed work, the parent checks that the child's
 * objects are visible, lets the transfers run a moment longer and kills
 * the child with SIGKILL.  Then, within a watchdog bound, everything must
 * return to where it was before the child started:
 *
 *   - the device's PDs, CQs, QPs and MRs as `rdma resource show` lists them;
 *   - on an frdma device, the driver's own counters in
 *     /sys/kernel/debug/frdma/{pd,cq,qp,mr,pinned_pages} (which must exist);
 *   - the balance of pinned pages: nr_foll_pin_acquired -
 *     nr_foll_pin_released in /proc/vmstat.
 *
 * Three rounds, killing at different moments.  Then one round of a huge
 * pass: the child fills a 64-entry send queue with 128 MiB SENDs (16
 * overlapping SGEs of one 8 MiB MR) to 128 MiB receives (likewise) of a
 * QP in the parent, rings the doorbell once and is killed as soon as the
 * first message has arrived: it must die, stop the pass (the parent counts
 * the messages delivered: not the whole ring) and free everything just
 * the same.  No verdict depends on how long anything takes.  The huge
 * round's waits have no bound at all: the first message arrives, the
 * killed child dies and its objects go whether or not the pass stops for
 * the kill; what tells the two apart is the number of messages delivered.
 * The harness's timeout catches a hang (the debug kernel's hung-task
 * detector a long uninterruptible wait).  The VM harness adds the
 * kernel's verdict: no warning, BUG or KASAN report in dmesg.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "../lib/procfs.h"
#include "loopback.h"
#include "tap.h"

#define PAIRS		4
#define MR_SIZE		(4UL << 20)
#define DEPTH		16
#define CHUNK		(256UL << 10)
#define SEND_CHUNK	(64UL << 10)

enum { P_WRITE, P_READ, P_SEND, P_RNR };

static const char *dev;
static bool is_frdma;

/* ---- the child: keep four QP pairs busy until killed ---- */

struct pair {
	int kind;
	struct ibv_cq *acq, *bcq;
	struct ibv_qp *a, *b;
	struct ibv_mr *amr, *bmr;
	uint8_t *abuf, *bbuf;
	unsigned long done;
};

static int post_one(struct pair *p, uint64_t id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)p->abuf + (id % 8) * CHUNK / 2,
		.length = p->kind >= P_SEND ? SEND_CHUNK : CHUNK,
		.lkey = p->amr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = id, .sg_list = &sge, .num_sge = 1,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	switch (p->kind) {
	case P_WRITE:
	case P_READ:
		wr.opcode = p->kind == P_WRITE ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
		wr.wr.rdma.remote_addr = (uintptr_t)p->bbuf + (id % 8) * CHUNK;
		wr.wr.rdma.rkey = p->bmr->rkey;
		break;
	default:
		wr.opcode = IBV_WR_SEND;
		break;
	}
	return ibv_post_send(p->a, &wr, &bad);
}

static int post_recv(struct pair *p, uint64_t id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)p->bbuf + (id % 8) * SEND_CHUNK,
		.length = SEND_CHUNK, .lkey = p->bmr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = id, .sg_list = &sge, .num_sge = 1 }, *bad;

	return ibv_post_recv(p->b, &wr, &bad);
}

static void __attribute__((noreturn)) child_fail(const char *what, int err)
{
	fprintf(stderr, "child: %s: %s\n", what, strerror(err));
	_exit(1);
}

static void __attribute__((noreturn)) child(int ready_fd)
{
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		     IBV_ACCESS_REMOTE_READ;
	struct ibv_context *ctx;
	struct ibv_device_attr da;
	struct pair pairs[PAIRS];
	struct ibv_pd *pd;
	union ibv_gid gid;
	struct ibv_wc wc[DEPTH];
	int gid_index, i, k, n, rd, told = 0;
	uint64_t id = 0;

	ctx = open_device_by_name(dev);
	if (!ctx)
		child_fail("open", errno);
	if (ibv_query_device(ctx, &da))
		child_fail("ibv_query_device", errno);
	rd = da.max_qp_rd_atom < 16 ? da.max_qp_rd_atom : 16;
	if (rd < 1)
		rd = 1;
	if (lb_find_gid(ctx, &gid_index, &gid))
		child_fail("no RoCE v2 GID", ENODEV);
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		child_fail("ibv_alloc_pd", errno);
	for (i = 0; i < PAIRS; i++) {
		struct pair *p = &pairs[i];

		memset(p, 0, sizeof(*p));
		p->kind = i;
		p->abuf = mmap(NULL, MR_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		p->bbuf = mmap(NULL, MR_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p->abuf == MAP_FAILED || p->bbuf == MAP_FAILED)
			child_fail("mmap", errno);
		memset(p->abuf, 0xa5, MR_SIZE);
		memset(p->bbuf, 0x5a, MR_SIZE);
		p->amr = ibv_reg_mr(pd, p->abuf, MR_SIZE, access);
		p->bmr = ibv_reg_mr(pd, p->bbuf, MR_SIZE, access);
		p->acq = ibv_create_cq(ctx, 2 * DEPTH, NULL, NULL, 0);
		p->bcq = ibv_create_cq(ctx, 2 * DEPTH, NULL, NULL, 0);
		if (!p->amr || !p->bmr || !p->acq || !p->bcq)
			child_fail("ibv_reg_mr/ibv_create_cq", errno);
		p->a = lb_create_qp(pd, p->acq, p->acq, DEPTH, 1, 0);
		p->b = lb_create_qp(pd, p->bcq, p->bcq, DEPTH, 1, 0);
		if (!p->a || !p->b)
			child_fail("ibv_create_qp", errno);
		k = lb_connect_pair(p->a, p->b, &gid, gid_index, rd);
		if (k)
			child_fail("connect", k);
		if (p->kind == P_SEND)
			for (k = 0; k < DEPTH; k++)
				if (post_recv(p, k))
					child_fail("ibv_post_recv", errno);
		for (k = 0; k < DEPTH; k++) {
			n = post_one(p, id++);
			if (n)
				child_fail("ibv_post_send", n);
		}
	}
	for (;;) {
		int busy = 0;

		for (i = 0; i < PAIRS; i++) {
			struct pair *p = &pairs[i];

			n = ibv_poll_cq(p->acq, DEPTH, wc);
			if (n < 0)
				child_fail("ibv_poll_cq", EIO);
			for (k = 0; k < n; k++) {
				if (wc[k].status != IBV_WC_SUCCESS) {
					fprintf(stderr, "child: pair %d: %s\n", i,
						ibv_wc_status_str(wc[k].status));
					_exit(1);
				}
				p->done++;
				if (post_one(p, id++))
					child_fail("ibv_post_send", errno);
			}
			busy += n;
			if (p->kind != P_SEND)
				continue;
			n = ibv_poll_cq(p->bcq, DEPTH, wc);
			for (k = 0; k < n; k++)
				if (wc[k].status != IBV_WC_SUCCESS ||
				    post_recv(p, id++))
					child_fail("receive", EIO);
		}
		if (!told && pairs[P_WRITE].done && pairs[P_READ].done &&
		    pairs[P_SEND].done) {
			if (write(ready_fd, "r", 1) != 1)
				child_fail("write", errno);
			told = 1;
		}
		if (!busy)
			usleep(100);
	}
}

/* ---- the huge pass: one doorbell for a ring of huge SENDs ---- */

/*
 * Each SEND and each receive is HUGE_SGES overlapping SGEs over one
 * HUGE_MR buffer: 128 MiB a message, twice what one pass may start after
 * (Documentation/driver.rst), and 8 GiB for the ring, minutes of copying
 * for a pass that would not stop.
 */
#define HUGE_MR		(8UL << 20)
#define HUGE_SGES	16
#define HUGE_DEPTH	64

struct huge_side {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	union ibv_gid gid;
	int gid_index;
	struct ibv_sge sge[HUGE_SGES];
};

/* A PD, CQ, HUGE_MR buffer and MR and an RC QP; 0 or an errno. */
static int huge_side_open(struct huge_side *s)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = {
			.max_send_wr = HUGE_DEPTH, .max_recv_wr = HUGE_DEPTH,
			.max_send_sge = HUGE_SGES, .max_recv_sge = HUGE_SGES,
		},
	};
	int i;

	memset(s, 0, sizeof(*s));
	s->ctx = lb_open(dev, &s->gid_index, &s->gid);
	if (!s->ctx)
		return ENODEV;
	s->pd = ibv_alloc_pd(s->ctx);
	s->cq = s->pd ? ibv_create_cq(s->ctx, 2 * HUGE_DEPTH, NULL, NULL, 0) :
			NULL;
	s->buf = mmap(NULL, HUGE_MR, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (!s->cq || s->buf == MAP_FAILED)
		return errno ? errno : ENOMEM;
	s->mr = ibv_reg_mr(s->pd, s->buf, HUGE_MR, IBV_ACCESS_LOCAL_WRITE);
	ia.send_cq = ia.recv_cq = s->cq;
	s->qp = s->mr ? ibv_create_qp(s->pd, &ia) : NULL;
	if (!s->qp)
		return errno ? errno : ENOMEM;
	for (i = 0; i < HUGE_SGES; i++)
		s->sge[i] = (struct ibv_sge){ (uintptr_t)s->buf, HUGE_MR,
					      s->mr->lkey };
	return 0;
}

static void huge_side_close(struct huge_side *s)
{
	if (s->qp)
		ibv_destroy_qp(s->qp);
	if (s->mr)
		ibv_dereg_mr(s->mr);
	if (s->buf && s->buf != MAP_FAILED)
		munmap(s->buf, HUGE_MR);
	if (s->cq)
		ibv_destroy_cq(s->cq);
	if (s->pd)
		ibv_dealloc_pd(s->pd);
	if (s->ctx)
		ibv_close_device(s->ctx);
}

/*
 * The child sends, to the parent's QP (QPN from @in, its own to @out),
 * and rings the doorbell once for the whole ring: it is killed in there.
 */
static void __attribute__((noreturn)) child_huge(int in, int out)
{
	struct ibv_send_wr swr[HUGE_DEPTH], *sbad;
	struct huge_side s;
	uint32_t qpn;
	int i, err;

	err = huge_side_open(&s);
	if (err)
		child_fail("PD, CQ, MR, QP", err);
	qpn = s.qp->qp_num;
	if (write(out, &qpn, sizeof(qpn)) != sizeof(qpn) ||
	    read(in, &qpn, sizeof(qpn)) != sizeof(qpn))
		child_fail("QPN exchange", errno);
	if (lb_connect(s.qp, qpn, &s.gid, s.gid_index, 1))
		child_fail("connect", errno);
	for (i = 0; i < HUGE_DEPTH; i++)
		swr[i] = (struct ibv_send_wr){
			.wr_id = i, .sg_list = s.sge, .num_sge = HUGE_SGES,
			.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
			.next = i + 1 < HUGE_DEPTH ? &swr[i + 1] : NULL,
		};
	ibv_post_send(s.qp, swr, &sbad);
	for (;;)
		pause();
}

/* ---- the parent: counters before, during and after ---- */

struct counts {
	long res[4];		/* pd cq qp mr from rdma resource */
	long dbg[5];		/* frdma debugfs: pd cq qp mr pinned_pages */
	long pins;		/* acquired - released */
	long acquired, released;
};

static const char *const res_name[] = { "pd", "cq", "qp", "mr" };
static const char *const dbg_name[] = { "pd", "cq", "qp", "mr", "pinned_pages" };

static long res_count(const char *type)
{
	char cmd[128], line[512];
	long n = 0;
	FILE *f;

	/* iproute2 filters QPs by "link DEV", the other objects by "dev DEV". */
	snprintf(cmd, sizeof(cmd), "rdma resource show %s %s %s 2>&1", type,
		 strcmp(type, "qp") ? "dev" : "link", dev);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "dev ", 4) || !strncmp(line, "link ", 5))
			n++;
		else
			diag("%s: %s", cmd, strtok(line, "\n"));
	}
	if (pclose(f))
		return -1;
	return n;
}

static void vmstat_pins(struct counts *c)
{
	uint64_t acq, rel;

	if (!foll_pins(&acq, &rel)) {
		c->acquired = c->released = c->pins = -1;
		return;
	}
	c->acquired = acq;
	c->released = rel;
	c->pins = c->acquired - c->released;
}

static void take(struct counts *c)
{
	char path[128];
	int i;

	for (i = 0; i < 4; i++)
		c->res[i] = res_count(res_name[i]);
	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "/sys/kernel/debug/frdma/%s", dbg_name[i]);
		c->dbg[i] = is_frdma ? read_long(path) : 0;
	}
	vmstat_pins(c);
}

static bool same(const struct counts *a, const struct counts *b)
{
	return !memcmp(a->res, b->res, sizeof(a->res)) &&
	       !memcmp(a->dbg, b->dbg, sizeof(a->dbg)) && a->pins == b->pins;
}

static void show(const char *when, const struct counts *c)
{
	diag("%s: rdma resource pd %ld cq %ld qp %ld mr %ld; %s%ld %ld %ld %ld %ld; "
	     "pins acquired %ld released %ld", when, c->res[0], c->res[1],
	     c->res[2], c->res[3],
	     is_frdma ? "debugfs pd cq qp mr pinned_pages " : "(no frdma debugfs) ",
	     c->dbg[0], c->dbg[1], c->dbg[2], c->dbg[3], c->dbg[4],
	     c->acquired, c->released);
}

static void round_(int r, int settle_ms)
{
	struct counts start, during, after;
	int fds[2], status, i;
	struct timespec t0;
	pid_t pid;
	char ch;
	bool back;

	take(&start);
	show("before", &start);
	if (pipe(fds))
		return (void)ok(false, "pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		child(fds[1]);
	}
	close(fds[1]);
	if (!ok(pid > 0, "round %d: fork", r))
		return;
	i = read(fds[0], &ch, 1);
	close(fds[0]);
	if (!ok(i == 1, "round %d: the child's %d QP pairs are transferring "
		"(WRITE, READ, SEND, SEND in RNR retry)", r, PAIRS)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return;
	}
	take(&during);
	show("during", &during);
	ok(during.res[2] >= start.res[2] + 2 * PAIRS &&
	   during.res[3] >= start.res[3] + 2 * PAIRS,
	   "round %d: rdma resource shows its QPs and MRs", r);
	if (is_frdma)
		ok(during.dbg[2] >= start.dbg[2] + 2 * PAIRS &&
		   during.dbg[3] >= start.dbg[3] + 2 * PAIRS &&
		   during.dbg[4] > start.dbg[4],
		   "round %d: frdma's counters show its QPs, MRs and pinned pages", r);
	usleep(settle_ms * 1000);
	ok(waitpid(pid, &status, WNOHANG) == 0, "round %d: the child is still "
	   "running after %d ms more", r, settle_ms);
	kill(pid, SIGKILL);
	ok(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	   WTERMSIG(status) == SIGKILL, "round %d: kill -9 of the child", r);

	/* Teardown may be deferred (the uverbs file's release): wait for it. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		take(&after);
		back = same(&start, &after);
		if (!back)
			usleep(100000);
	} while (!back && lb_ms_since(&t0) < 30000);
	show("after", &after);
	for (i = 0; i < 4; i++)
		ok(after.res[i] == start.res[i], "round %d: %s: %ld listed by rdma "
		   "resource, as before", r, res_name[i], after.res[i]);
	if (is_frdma)
		for (i = 0; i < 5; i++)
			ok(after.dbg[i] == start.dbg[i] && after.dbg[i] >= 0,
			   "round %d: debugfs frdma/%s back to %ld (is %ld)", r,
			   dbg_name[i], start.dbg[i], after.dbg[i]);
	ok(after.pins == start.pins && after.acquired >= 0,
	   "round %d: pins balanced: acquired - released = %ld, as before (%ld)",
	   r, after.pins, start.pins);
}

/*
 * One completion of @cq, however long it takes (the harness's timeout
 * catches a hang); a line of diagnostics every 30 s while it waits.
 * Returns 1, or -1 when polling failed.
 */
static int poll_unbounded(struct ibv_cq *cq, struct ibv_wc *wc,
			  const char *what)
{
	struct timespec t0;
	long said = 0;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!(n = ibv_poll_cq(cq, 1, wc))) {
		if (lb_ms_since(&t0) / 30000 > said)
			diag("still waiting for %s after %ld s", what,
			     ++said * 30);
		usleep(1000);
	}
	return n;
}

/*
 * The receiving QP is the parent's, so that what the child's pass
 * delivered can be counted after the child is gone: its receive
 * completions.  The child is killed as soon as the first message has
 * arrived, with the rest of the ring still to copy.  A pass that stops for
 * the kill delivers one or two more messages at most (the one it was
 * copying is given back); a pass that ignores it delivers the whole ring
 * before the child can die.
 */
static void round_huge(void)
{
	struct ibv_recv_wr rwr[HUGE_DEPTH], *rbad;
	struct ibv_wc wc[HUGE_DEPTH];
	struct counts start, after;
	int to_child[2], from_child[2], status, i, n, got = 0, bad = 0;
	struct huge_side s;
	struct timespec t0;
	uint32_t qpn;
	long said;
	pid_t pid;
	bool back;

	i = huge_side_open(&s);
	if (!ok(!i, "huge pass: the receiving side: PD, CQ, %lu MiB MR, QP (%s)",
		HUGE_MR >> 20, strerror(i))) {
		huge_side_close(&s);
		return;
	}
	if (pipe(to_child) || pipe(from_child)) {
		huge_side_close(&s);
		return (void)ok(false, "pipe: %s", strerror(errno));
	}
	take(&start);
	show("before", &start);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(to_child[1]);
		close(from_child[0]);
		child_huge(to_child[0], from_child[1]);
	}
	close(to_child[0]);
	close(from_child[1]);
	for (i = 0; i < HUGE_DEPTH; i++)
		rwr[i] = (struct ibv_recv_wr){
			.wr_id = i, .sg_list = s.sge, .num_sge = HUGE_SGES,
			.next = i + 1 < HUGE_DEPTH ? &rwr[i + 1] : NULL,
		};
	i = pid > 0 && read(from_child[0], &qpn, sizeof(qpn)) == sizeof(qpn) &&
	    !lb_connect(s.qp, qpn, &s.gid, s.gid_index, 1) &&
	    !ibv_post_recv(s.qp, rwr, &rbad) &&
	    write(to_child[1], &s.qp->qp_num, sizeof(qpn)) == sizeof(qpn);
	close(to_child[1]);
	close(from_child[0]);
	/* The first message arrived: the pass is running, the ring ahead. */
	n = i ? poll_unbounded(s.cq, wc, "the first message") : 0;
	if (!ok(n == 1 && wc[0].status == IBV_WC_SUCCESS,
		"huge pass: the child rang the doorbell once for %d SENDs of %lu MiB; the first arrived",
		HUGE_DEPTH, HUGE_SGES * HUGE_MR >> 20)) {
		diag("setup %d, polled %d, status %s", i, n,
		     n == 1 ? ibv_wc_status_str(wc[0].status) : "-");
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		huge_side_close(&s);
		return;
	}
	kill(pid, SIGKILL);
	/* No bound here: the VM harness's timeout catches a child that hangs. */
	ok(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	   WTERMSIG(status) == SIGKILL,
	   "huge pass: kill -9 in the middle of it ends the child");
	/*
	 * Its objects went with its files as it exited; should a counter
	 * lag, wait for it without a bound, saying what differs.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (said = 0;; usleep(100000)) {
		take(&after);
		back = same(&start, &after);
		if (back)
			break;
		if (lb_ms_since(&t0) / 30000 > said) {
			said++;
			show("still waiting for", &after);
		}
	}
	show("after", &after);
	ok(back, "huge pass: objects, counters and pins back to where they were");
	ok(after.pins == start.pins && after.acquired >= 0,
	   "huge pass: pins balanced: acquired - released = %ld, as before (%ld)",
	   after.pins, start.pins);
	/* The child's QP is gone: nothing more can arrive. */
	while ((n = ibv_poll_cq(s.cq, HUGE_DEPTH, wc)) > 0)
		for (i = 0; i < n; i++) {
			if (wc[i].status == IBV_WC_SUCCESS)
				got++;
			else
				bad++;
		}
	ok(got < HUGE_DEPTH - 1 && !bad,
	   "huge pass: the pass stopped at the kill: %d more of the %d messages arrived after the first (%d errors)",
	   got, HUGE_DEPTH - 1, bad);
	huge_side_close(&s);
}

int main(int argc, char **argv)
{
	char path[256], desc[64] = "";
	FILE *f;
	int settle[] = { 0, 200, 1000 };
	unsigned int r;

	dev = lb_args(argc, argv, NULL);
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/node_desc", dev);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(desc, sizeof(desc), f))
			desc[0] = 0;
		fclose(f);
	}
	if (!ok(f != NULL, "%s exists", dev))
		return tap_done();
	is_frdma = !strncmp(desc, "frdma", 5);
	if (is_frdma)
		ok(read_long("/sys/kernel/debug/frdma/qp") >= 0,
		   "frdma's debugfs counters are readable (/sys/kernel/debug/frdma)");
	else
		diag("%s is not an frdma device: rdma resource and pins only", dev);
	ok(res_count("qp") >= 0, "rdma resource show qp dev %s works", dev);

	for (r = 0; r < sizeof(settle) / sizeof(settle[0]); r++)
		round_(r + 1, settle[r]);
	round_huge();
	return tap_done();
}
