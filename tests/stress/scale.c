// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * scale --device DEV [--mrs N|max] [--qps N|max] [--cqs N|max]: many live
 * objects on one device, as TAP.
 *
 * Registers 4 KiB MRs (over a buffer of SCALE_PAGES pages, round-robin)
 * until N are live, or with "max" until the device's max_mr are and then
 * checks that one more fails with ENOMEM; likewise QPs (RC, one-entry
 * queues, on shared CQs) and CQs.  With every object still live, each
 * kind must still work: an RDMA WRITE through a QP pair created last,
 * naming the MR registered first and the one registered last.  Reports,
 * as diagnostics, the time per registration and per deregistration at
 * 1k, 10k, 100k and 500k live MRs, per QP create and destroy at 1k, 10k
 * and 100k live QPs, and the kernel memory per live MR and per QP (the
 * growth of MemAvailable, divided by the count): numbers to read, never
 * compared with a threshold.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../lib/procfs.h"
#include "../verbs/loopback.h"
#include "../verbs/device.h"
#include "../verbs/tap.h"

#define PAGE		4096UL
#define SCALE_PAGES	256

static const long marks[] = { 1000, 10000, 100000, 500000 };

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Is @n one of the marks?  Returns its index or -1. */
static int mark_of(long n)
{
	unsigned int i;

	for (i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (marks[i] == n)
			return i;
	return -1;
}

/*
 * Time the 100 operations up to each mark: the cost per operation at that
 * many live objects.  @t0 is when the 100 before the mark started.
 */
static void report(const char *what, long n, double t0)
{
	if (mark_of(n) >= 0)
		diag("%s at %ld live: %.1f us each (last 100)", what, n,
		     (now_us() - t0) / 100);
}

static long parse(const char *s, long max)
{
	return !strcmp(s, "max") ? -1 : strtol(s, NULL, 0) > max ? max :
	       strtol(s, NULL, 0);
}

static void scale_mrs(struct ibv_context *ctx, struct ibv_pd *pd,
		      long want, long max, struct ibv_mr ***mrsp, long *np)
{
	struct ibv_mr **mrs;
	long n, m0, m1, lim = want < 0 ? max : want;
	double t0 = now_us();
	char *buf;
	int err = 0;

	(void)ctx;
	buf = mmap(NULL, SCALE_PAGES * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	mrs = calloc(lim + 1, sizeof(*mrs));
	if (!mrs || buf == MAP_FAILED) {
		ok(0, "MRs: setup");
		return;
	}
	m0 = meminfo_kb("MemAvailable");
	for (n = 0; n < lim; n++) {
		if (mark_of(n + 100) >= 0)
			t0 = now_us();
		mrs[n] = ibv_reg_mr(pd, buf + (n % SCALE_PAGES) * PAGE, PAGE,
				    IBV_ACCESS_LOCAL_WRITE |
				    IBV_ACCESS_REMOTE_WRITE);
		if (!mrs[n]) {
			err = errno;
			break;
		}
		report("ibv_reg_mr (4 KiB)", n + 1, t0);
	}
	m1 = meminfo_kb("MemAvailable");
	ok(n == lim, "%ld 4 KiB MRs registered (max_mr %ld) (%s)", n, max,
	   n == lim ? "ok" : strerror(err));
	if (n > 0 && m0 > 0 && m1 > 0)
		diag("memory per live 4 KiB MR: %ld bytes", (m0 - m1) * 1024 / n);
	if (want < 0 && n == lim) {
		struct ibv_mr *x = ibv_reg_mr(pd, buf, PAGE, 0);

		ok(!x && errno == ENOMEM, "  MR number %ld fails with ENOMEM (%s)",
		   max + 1, x ? "succeeded" : strerror(errno));
		if (x)
			ibv_dereg_mr(x);
	}
	*mrsp = mrs;
	*np = n;
}

static void free_mrs(struct ibv_mr **mrs, long n)
{
	double t0 = now_us();
	long bad = 0;

	while (n > 0) {
		if (mark_of(n) >= 0)
			t0 = now_us();
		if (ibv_dereg_mr(mrs[--n]))
			bad++;
		if (mark_of(n + 100) >= 0)
			diag("ibv_dereg_mr at %ld live: %.1f us each (last 100)",
			     n + 100, (now_us() - t0) / 100);
	}
	ok(!bad, "every MR deregistered (%ld failed)", bad);
	free(mrs);
}

static void scale_cqs(struct ibv_context *ctx, long want, long max)
{
	long n, bad = 0, lim = want < 0 ? max : want;
	struct ibv_cq **cqs = calloc(lim + 1, sizeof(*cqs));
	int err = 0;

	if (!cqs) {
		ok(0, "CQs: setup");
		return;
	}
	for (n = 0; n < lim; n++) {
		cqs[n] = ibv_create_cq(ctx, 1, NULL, NULL, 0);
		if (!cqs[n]) {
			err = errno;
			break;
		}
	}
	ok(n == lim, "%ld CQs created (max_cq %ld) (%s)", n, max,
	   n == lim ? "ok" : strerror(err));
	if (want < 0 && n == lim) {
		struct ibv_cq *x = ibv_create_cq(ctx, 1, NULL, NULL, 0);

		ok(!x && errno == ENOMEM, "  CQ number %ld fails with ENOMEM",
		   max + 1);
		if (x)
			ibv_destroy_cq(x);
	}
	while (n > 0)
		bad += !!ibv_destroy_cq(cqs[--n]);
	ok(!bad, "every CQ destroyed");
	free(cqs);
}

static void scale_qps(struct ibv_context *ctx, struct ibv_pd *pd,
		      struct ibv_cq *cq, long want, long max,
		      struct ibv_mr *first, struct ibv_mr *last)
{
	long n, bad = 0, m0, m1, lim = want < 0 ? max : want;
	struct ibv_qp **qps = calloc(lim + 2, sizeof(*qps));
	struct ibv_send_wr wr = { .opcode = IBV_WR_RDMA_WRITE,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_send_wr *bad_wr;
	struct ibv_sge sge;
	union ibv_gid gid;
	struct ibv_wc wc;
	double t0 = now_us();
	int err = 0, gidx;

	if (!qps) {
		ok(0, "QPs: setup");
		return;
	}
	m0 = meminfo_kb("MemAvailable");
	for (n = 0; n < lim; n++) {
		if (mark_of(n + 100) >= 0)
			t0 = now_us();
		qps[n] = lb_create_qp(pd, cq, cq, 1, 1, 0);
		if (!qps[n]) {
			err = errno;
			break;
		}
		report("ibv_create_qp", n + 1, t0);
	}
	m1 = meminfo_kb("MemAvailable");
	ok(n == lim, "%ld QPs created (max_qp %ld) (%s)", n, max,
	   n == lim ? "ok" : strerror(err));
	if (n > 0 && m0 > 0 && m1 > 0)
		diag("memory per idle QP (1-entry queues): %ld bytes",
		     (m0 - m1) * 1024 / n);
	if (want < 0 && n == lim) {
		struct ibv_qp *x = lb_create_qp(pd, cq, cq, 1, 1, 0);

		ok(!x && errno == ENOMEM, "  QP number %ld fails with ENOMEM",
		   max + 1);
		if (x)
			ibv_destroy_qp(x);
	}
	/* With all of them live, the newest pair moves data between MRs. */
	if (n >= 2 && first && last && !lb_find_gid(ctx, &gidx, &gid) &&
	    !lb_connect_pair(qps[n - 2], qps[n - 1], &gid, gidx, 1)) {
		memset((void *)(uintptr_t)first->addr, 'f', 64);
		sge = (struct ibv_sge){ (uintptr_t)first->addr, 64, first->lkey };
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.wr.rdma.remote_addr = (uintptr_t)last->addr + 64;
		wr.wr.rdma.rkey = last->rkey;
		ok(!ibv_post_send(qps[n - 2], &wr, &bad_wr) &&
		   lb_poll(cq, &wc, 1) == 1 && wc.status == IBV_WC_SUCCESS &&
		   !memcmp((char *)(uintptr_t)last->addr + 64, "ffff", 4),
		   "an RDMA WRITE from the first MR to the last over the newest QPs");
	} else if (first) {
		ok(0, "an RDMA WRITE from the first MR to the last over the newest QPs (setup)");
	}
	while (n > 0) {
		if (mark_of(n) >= 0)
			t0 = now_us();
		bad += !!ibv_destroy_qp(qps[--n]);
		if (mark_of(n + 100) >= 0)
			diag("ibv_destroy_qp at %ld live: %.1f us each (last 100)",
			     n + 100, (now_us() - t0) / 100);
	}
	ok(!bad, "every QP destroyed");
	free(qps);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "mrs", required_argument, NULL, 'm' },
		{ "qps", required_argument, NULL, 'q' },
		{ "cqs", required_argument, NULL, 'c' },
		{ 0 }
	};
	const char *dev = "frdma0", *mrs_s = "0", *qps_s = "0", *cqs_s = "0";
	struct ibv_device_attr da;
	struct ibv_context *ctx;
	struct ibv_mr **mrs = NULL;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	long nmr = 0;
	int o;

	while ((o = getopt_long(argc, argv, "d:m:q:c:", opts, NULL)) != -1) {
		switch (o) {
		case 'd': dev = optarg; break;
		case 'm': mrs_s = optarg; break;
		case 'q': qps_s = optarg; break;
		case 'c': cqs_s = optarg; break;
		default:
			fprintf(stderr, "usage: %s --device DEV [--mrs N|max] [--qps N|max] [--cqs N|max]\n",
				argv[0]);
			return 2;
		}
	}
	ctx = open_device_by_name(dev);
	if (!ok(ctx && !ibv_query_device(ctx, &da), "%s opened", dev))
		return tap_done();
	diag("%s: max_mr %d max_qp %d max_cq %d max_pd %d max_mw %d max_ah %d",
	     dev, da.max_mr, da.max_qp, da.max_cq, da.max_pd, da.max_mw,
	     da.max_ah);
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, 16, NULL, NULL, 0) : NULL;
	if (!ok(cq != NULL, "a PD and a CQ"))
		return tap_done();
	if (strcmp(mrs_s, "0"))
		scale_mrs(ctx, pd, parse(mrs_s, da.max_mr), da.max_mr, &mrs,
			  &nmr);
	if (strcmp(qps_s, "0"))
		scale_qps(ctx, pd, cq, parse(qps_s, da.max_qp), da.max_qp,
			  nmr ? mrs[0] : NULL, nmr ? mrs[nmr - 1] : NULL);
	if (strcmp(cqs_s, "0"))
		/* One CQ is ours already. */
		scale_cqs(ctx, parse(cqs_s, da.max_cq - 1), da.max_cq - 1);
	if (mrs)
		free_mrs(mrs, nmr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return tap_done();
}
