// SPDX-License-Identifier: GPL-2.0
/*
 * fi_verbs: every allocation a verbs session makes from frdma's own code
 * fails in turn, and each failure unwinds cleanly.  Runs inside the test
 * VM on the debug kernel (tests/vm/suites/failslab).
 *
 *   fi_verbs DEVICE LABEL [N]
 *
 * One session is: open the device (ucontext), a PD, a CQ, two MRs (2 MiB
 * of 4 KiB pages touched backwards, so hundreds of runs; 2 MiB of a
 * memfd, the folio path), two RC QPs connected to each other, an RDMA
 * WRITE from one MR to the other and a SEND, then everything destroyed.
 *
 * The suite points the kernel's failslab and fail_page_alloc at one
 * module's text (require-start/require-end: only allocations with that
 * module on the stack count) and turns off their GFP exemptions.  This
 * program then runs the session with /proc/thread-self/fail-nth = 1, 2,
 * 3, ...: run N makes the Nth counted allocation of this thread fail,
 * whichever step it is in, and is over when a session ends with the
 * counter not consumed (fewer than N allocations: every one has failed
 * once).  After every session, failed or not: no pin outstanding, VmPin
 * 0, frdma's debugfs counters where they were, and a session that
 * succeeded moved the right bytes.
 *
 * With N, only session N runs (to reproduce one failure).
 *
 * Steps the device does not implement (EOPNOTSUPP at the first,
 * uninjected session) end the session there and are reported as skips.
 * Prints TAP (tests/verbs/tap.h); the suite renumbers its lines into its
 * own stream.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../../lib/procfs.h"
#include "../../verbs/loopback.h"
#include "../../verbs/tap.h"

#define PG		4096UL
#define MR_LEN		(2UL << 20)
#define MAX_RUNS	5000
#define CQ_LEN		16

enum step {
	S_OPEN, S_PD, S_CQ, S_MR, S_QP, S_CONNECT, S_DATA, S_NR,
};

static const char *const step_name[S_NR] = {
	[S_OPEN] = "open (ucontext)",
	[S_PD] = "PD",
	[S_CQ] = "CQ",
	[S_MR] = "registration",
	[S_QP] = "QP creation",
	[S_CONNECT] = "QP connection",
	[S_DATA] = "data path",
};

static const char *const counters[] = {
	"pd", "cq", "qp", "srq", "ah", "mr", "runs", "pinned_pages",
};
#define NR_COUNTERS	(sizeof(counters) / sizeof(counters[0]))

static const char *dev_name, *label;
static struct ibv_device *dev;
static union ibv_gid gid;
static int gid_index;
static char *buf_a, *buf_b;
/* frdma's debugfs counters; false when there are none. */
static bool read_counters(long *v)
{
	char path[128];
	unsigned int i;

	for (i = 0; i < NR_COUNTERS; i++) {
		snprintf(path, sizeof(path), "/sys/kernel/debug/frdma/%s",
			 counters[i]);
		v[i] = read_long(path);
		if (v[i] < 0)
			return false;
	}
	return true;
}

struct session {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr_a, *mr_b;
	struct ibv_qp *qp_a, *qp_b;
};

static void teardown(struct session *s)
{
	if (s->qp_a)
		ibv_destroy_qp(s->qp_a);
	if (s->qp_b)
		ibv_destroy_qp(s->qp_b);
	if (s->mr_a)
		ibv_dereg_mr(s->mr_a);
	if (s->mr_b)
		ibv_dereg_mr(s->mr_b);
	if (s->cq)
		ibv_destroy_cq(s->cq);
	if (s->pd)
		ibv_dealloc_pd(s->pd);
	if (s->ctx)
		ibv_close_device(s->ctx);
	memset(s, 0, sizeof(*s));
}

static unsigned char pattern(unsigned long i, unsigned int seed)
{
	return (unsigned char)(i * 31 + (i >> 9) * 7 + seed);
}

/*
 * The data steps: an RDMA WRITE of the first half of A into B, then a
 * SEND of the second half of A into B's second half.  Returns 0 when both
 * completed successfully with the right bytes; a positive errno when a
 * verb failed; -1 when a work request completed in error (allowed under
 * injection); -2 when a completion never came or the bytes are wrong.
 */
static int data_path(struct session *s, unsigned int seed)
{
	struct ibv_sge sge_w = {
		.addr = (uintptr_t)buf_a, .length = MR_LEN / 2,
		.lkey = s->mr_a->lkey,
	};
	struct ibv_sge sge_s = {
		.addr = (uintptr_t)buf_a + MR_LEN / 2, .length = MR_LEN / 2,
		.lkey = s->mr_a->lkey,
	};
	struct ibv_sge sge_r = {
		.addr = (uintptr_t)buf_b + MR_LEN / 2, .length = MR_LEN / 2,
		.lkey = s->mr_b->lkey,
	};
	struct ibv_send_wr w = {
		.wr_id = 1, .sg_list = &sge_w, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = (uintptr_t)buf_b,
			     .rkey = s->mr_b->rkey },
	};
	struct ibv_send_wr snd = {
		.wr_id = 2, .sg_list = &sge_s, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	};
	struct ibv_recv_wr r = { .wr_id = 3, .sg_list = &sge_r, .num_sge = 1 };
	struct ibv_send_wr *bad = NULL;
	struct ibv_recv_wr *badr;
	int ret, sends, sends_done = 0, recv_done = 0;
	struct ibv_wc wc;
	unsigned long i;

	for (i = 0; i < MR_LEN; i++)
		buf_a[i] = pattern(i, seed);
	memset(buf_b, 0, MR_LEN);
	ret = ibv_post_recv(s->qp_b, &r, &badr);
	if (ret)
		return ret;
	w.next = &snd;
	ret = ibv_post_send(s->qp_a, &w, &bad);
	/* what was not posted does not complete */
	sends = !ret ? 2 : bad == &snd ? 1 : 0;
	/*
	 * The sends first: once one fails, the receive may complete only
	 * when its QP is destroyed, so it is waited for only after both
	 * sends succeeded.
	 */
	while (sends_done < sends || (!ret && !recv_done)) {
		if (lb_poll(s->cq, &wc, 1) != 1) {
			diag("%s: %d of %d sends and %d of 1 receive completed",
			     label, sends_done, sends, recv_done);
			return -2;
		}
		if (wc.wr_id == 3)
			recv_done++;
		else
			sends_done++;
		if (wc.status != IBV_WC_SUCCESS)
			return -1;
	}
	if (ret)
		return ret;
	for (i = 0; i < MR_LEN; i++)
		if (buf_b[i] != (char)pattern(i, seed)) {
			diag("%s: byte %lu of B is %#x, want %#x", label, i,
			     (unsigned char)buf_b[i], pattern(i, seed));
			return -2;
		}
	return 0;
}

/*
 * One session, up to step @upto (exclusive).  Returns the step that
 * failed (S_NR when none did) and its errno in @err.
 */
static enum step session(enum step upto, unsigned int seed, int *err)
{
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		     IBV_ACCESS_REMOTE_READ;
	struct session s = { 0 };
	enum step st;

	*err = 0;
	for (st = 0; st < upto; st++) {
		switch (st) {
		case S_OPEN:
			s.ctx = ibv_open_device(dev);
			if (!s.ctx)
				goto fail;
			break;
		case S_PD:
			s.pd = ibv_alloc_pd(s.ctx);
			if (!s.pd)
				goto fail;
			break;
		case S_CQ:
			s.cq = ibv_create_cq(s.ctx, CQ_LEN, NULL, NULL, 0);
			if (!s.cq)
				goto fail;
			break;
		case S_MR:
			s.mr_a = ibv_reg_mr(s.pd, buf_a, MR_LEN, access);
			if (!s.mr_a)
				goto fail;
			s.mr_b = ibv_reg_mr(s.pd, buf_b, MR_LEN, access);
			if (!s.mr_b)
				goto fail;
			break;
		case S_QP:
			s.qp_a = lb_create_qp(s.pd, s.cq, s.cq, 4, 1, 0);
			if (!s.qp_a)
				goto fail;
			s.qp_b = lb_create_qp(s.pd, s.cq, s.cq, 4, 1, 0);
			if (!s.qp_b)
				goto fail;
			break;
		case S_CONNECT:
			*err = lb_connect_pair(s.qp_a, s.qp_b, &gid, gid_index, 1);
			if (*err)
				goto out;
			break;
		case S_DATA:
			*err = data_path(&s, seed);
			if (*err)
				goto out;
			break;
		case S_NR:
			break;
		}
	}
	teardown(&s);
	return S_NR;
fail:
	*err = errno ? errno : EIO;
out:
	teardown(&s);
	return st;
}

/* 4 KiB pages touched last first: scattered PFNs, hundreds of runs. */
static char *scattered(unsigned long len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long pg;

	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	for (pg = len / PG; pg-- > 0;)
		p[pg * PG] = 1;
	return p;
}

static char *memfd_area(unsigned long len)
{
	int fd = memfd_create("fi_verbs", 0);
	char *p;

	if (fd < 0 || ftruncate(fd, len))
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 1, len);
	return p;
}

int main(int argc, char **argv)
{
	long c0[NR_COUNTERS], c1[NR_COUNTERS];
	unsigned int n, first = 1, last = 5000, injected = 0, failed_at[S_NR + 1] = { 0 }, i;
	struct ibv_device **list;
	struct ibv_context *ctx;
	enum step upto = S_NR, st;
	bool have_counters, clean = true, done = false;
	int64_t out0, out1;
	char v[32];
	int fd, err, nr;
	ssize_t len;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s DEVICE LABEL [N]\n", argv[0]);
		return 2;
	}
	if (argc == 4)
		first = last = strtoul(argv[3], NULL, 0);
	dev_name = argv[1];
	label = argv[2];
	list = ibv_get_device_list(&nr);
	for (i = 0; list && i < (unsigned int)nr; i++)
		if (!strcmp(ibv_get_device_name(list[i]), dev_name))
			dev = list[i];
	ctx = dev ? ibv_open_device(dev) : NULL;
	if (!ctx || lb_find_gid(ctx, &gid_index, &gid)) {
		ok(false, "%s: %s is there and has a RoCE v2 IPv4 GID", label,
		   dev_name);
		return tap_done();
	}
	ibv_close_device(ctx);
	buf_a = scattered(MR_LEN);
	buf_b = memfd_area(MR_LEN);
	fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (!buf_a || !buf_b || fd < 0) {
		ok(false, "%s: buffers and /proc/thread-self/fail-nth: %s",
		   label, strerror(errno));
		return tap_done();
	}

	/* The uninjected session: what the device implements. */
	pins_settle(0, &out0);
	have_counters = read_counters(c0);
	st = session(S_NR, 0, &err);
	if (st < S_NR && (err == EOPNOTSUPP || err == ENOSYS) &&
	    (st == S_MR || st == S_QP)) {
		upto = st;
	} else if (st < S_NR) {
		ok(false, "%s: an uninjected session: %s failed: %s", label,
		   step_name[st], err > 0 ? strerror(err) : "bad completion or data");
		return tap_done();
	}
	ok(true, "%s: an uninjected session runs through %s", label,
	   step_name[upto - 1]);
	if (!strncmp(dev_name, "frdma", 5))
		ok(have_counters, "%s: frdma's debugfs counters are there",
		   label);

	for (n = first; n <= last && !done; n++) {
		snprintf(v, sizeof(v), "%u", n);
		if (pwrite(fd, v, strlen(v), 0) != (ssize_t)strlen(v)) {
			ok(false, "%s: write fail-nth: %s", label,
			   strerror(errno));
			return tap_done();
		}
		st = session(upto, n, &err);
		len = pread(fd, v, sizeof(v) - 1, 0);
		v[len > 0 ? len : 0] = 0;
		if (atoi(v) != 0) {
			/* fewer than n allocations: none failed */
			pwrite(fd, "0", 1, 0);
			done = true;
			if (st != S_NR) {
				ok(false, "%s: the last session failed in %s with nothing injected: %s",
				   label, step_name[st],
				   err > 0 ? strerror(err) : "bad completion or data");
				clean = false;
			}
		} else {
			injected++;
			failed_at[st]++;
			if (st == S_NR)
				diag("%s: fail-nth %u: the session recovered", label, n);
			if (err == -2) {
				diag("%s: fail-nth %u: %s lost a completion or corrupted data",
				     label, n, step_name[st]);
				clean = false;
			}
		}
		if (!pins_settle(out0, &out1)) {
			diag("%s: fail-nth %u: %lld pins outstanding, %lld before",
			     label, n, (long long)out1, (long long)out0);
			clean = false;
		}
		if (vmpin_kb() != 0) {
			diag("%s: fail-nth %u: VmPin %ld kB", label, n,
			     vmpin_kb());
			clean = false;
		}
		if (have_counters && read_counters(c1) &&
		    memcmp(c0, c1, sizeof(c0))) {
			for (i = 0; i < NR_COUNTERS; i++)
				if (c0[i] != c1[i])
					diag("%s: fail-nth %u (failed in %s): frdma counter %s %ld, was %ld",
					     label, n, step_name[st],
					     counters[i], c1[i], c0[i]);
			clean = false;
			memcpy(c0, c1, sizeof(c0));
		}
	}
	close(fd);
	for (i = 0; i <= S_NR; i++)
		if (failed_at[i])
			diag("%s: %u injected failures ended the session in %s",
			     label, failed_at[i],
			     i == S_NR ? "nothing (recovered)" : step_name[i]);
	if (first == 1) {
		ok(done, "%s: the sweep ended (%u allocations failed, one per session)",
		   label, injected);
		ok(injected > 0, "%s: injection reached the module's allocations",
		   label);
	}
	ok(clean, "%s: every injected failure unwound: pins, VmPin, counters, data",
	   label);
	for (st = upto; st < S_NR; st++)
		if (st == S_MR || st == S_QP || st == S_DATA)
			ok(true, "%s: %s under injection # SKIP %s does not implement %s yet",
			   label, step_name[st], dev_name, step_name[upto]);
	return tap_done();
}
