// SPDX-License-Identifier: GPL-2.0
/*
 * scalebench: the cost of verbs objects as their number grows, for the
 * scale section of make bench (tests/bench/in-vm).
 *
 *   scalebench mr|qp|cq|write -d DEV[,DEV...] -c "COUNT..." [-b BATCH]
 *              [-r REPS] [-n MSGS]
 *
 * Every device is measured in this one process, the devices taking turns
 * at each repetition, so that a spell of load on a shared host falls on
 * all of them alike; the figure is each device's best repetition (on a
 * shared host the noise only adds).
 *
 * mr:    registers 4 KiB MRs (over 256 pre-faulted pages, round-robin)
 *        until COUNT are live on each device, then, REPS times, times
 *        BATCH more ibv_reg_mr and the ibv_dereg_mr of those BATCH, so
 *        that the live count stays at COUNT.  Prints
 *        "mr DEV COUNT REG_NS DEREG_NS" (per operation) for each count,
 *        or "mr DEV COUNT n/a WHY" from the count the device refuses on,
 *        and "mrmem DEV COUNT BYTES": the memory per live MR (how far
 *        MemFree fell while the device's MRs were registered, divided by
 *        their number, at the largest count reached).
 * qp:    the same for RC QPs with one-entry queues on one shared CQ:
 *        "qp DEV COUNT CREATE_NS DESTROY_NS" and "qpmem DEV COUNT BYTES"
 *        (memory per idle QP).
 * cq:    the same for one-entry CQs: "cq ..." and "cqmem ...".
 * write: COUNT connected RC QP pairs on each device (loopback), and MSGS
 *        2-byte RDMA WRITEs posted one at a time on the COUNT requesters
 *        in turn (round-robin), every 8th WR of a QP signaled, at most 32
 *        outstanding per QP; "write DEV COUNT MPPS" (million messages per
 *        second) from the best of REPS runs.
 *
 * A COUNT that a device cannot reach (its limit, ENOMEM) ends its counts
 * with n/a records carrying the errno; the exit status is 0 whenever the
 * records could be printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../lib/procfs.h"
#include "../verbs/loopback.h"

#define PAGE		4096UL
#define MR_PAGES	256
#define MAX_COUNTS	16
#define WR_DEPTH	32	/* send queue of each requester (write) */
#define WR_SIGNAL	8	/* every WR_SIGNAL-th WR of a QP is signaled */
#define QPS_PER_CQ	2048	/* write: requesters sharing one CQ */

#define MAX_DEVS	4

struct dev {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	void **objs;		/* mr, qp, cq: the live objects */
	long live;
	long used_kib;		/* how far MemFree fell while filling */
	bool done;		/* refused a count: no more figures */
	uint64_t best[2];
};

static struct dev devs[MAX_DEVS];
static int ndevs;
static long counts[MAX_COUNTS];
static int ncounts;
static long batch = 100;
static int reps = 5;
static long msgs = 200000;
static char *mr_buf;

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	int i;

	for (i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	return ctx;
}

/* n/a records for @d's counts from @from on; @d is done. */
static void na(const char *what, struct dev *d, long from, const char *why)
{
	int i;

	for (i = 0; i < ncounts; i++)
		if (counts[i] >= from)
			printf("%s %s %ld n/a %s\n", what, d->name, counts[i], why);
	fflush(stdout);
	d->done = true;
}

/* --- MRs, QPs and CQs ----------------------------------------------------- */

static void *mr_new(struct dev *d, long i)
{
	return ibv_reg_mr(d->pd, mr_buf + (i % MR_PAGES) * PAGE, PAGE,
			  IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
}

static void mr_del(void *mr)
{
	ibv_dereg_mr(mr);
}

static void *qp_new(struct dev *d, long i)
{
	(void)i;
	return lb_create_qp(d->pd, d->cq, d->cq, 1, 1, 0);
}

static void qp_del(void *qp)
{
	ibv_destroy_qp(qp);
}

static void *cq_new(struct dev *d, long i)
{
	(void)i;
	return ibv_create_cq(d->ctx, 1, NULL, NULL, 0);
}

static void cq_del(void *cq)
{
	ibv_destroy_cq(cq);
}

/*
 * "WHAT DEV COUNT CREATE_NS DESTROY_NS" per count and device for objects
 * made by @new and freed by @del, then "WHATmem DEV COUNT BYTES".
 */
static int bench_obj(const char *what, void *(*new)(struct dev *, long),
		     void (*del)(void *))
{
	long max = counts[ncounts - 1];
	char why[128];
	struct dev *d;
	int i, k, r;

	for (k = 0; k < ndevs; k++) {
		d = &devs[k];
		d->objs = calloc(max + batch, sizeof(*d->objs));
		if (!d->objs) {
			na(what, d, 0, "no memory for the test itself");
			continue;
		}
		/* touch the array now: not part of the cost per object */
		memset(d->objs, 0xff, (max + batch) * sizeof(*d->objs));
	}
	for (i = 0; i < ncounts; i++) {
		for (k = 0; k < ndevs; k++) {
			long m0 = meminfo_kb("MemFree"), m1;

			d = &devs[k];
			if (d->done)
				continue;
			for (; d->live < counts[i]; d->live++) {
				d->objs[d->live] = new(d, d->live);
				if (!d->objs[d->live])
					break;
			}
			m1 = meminfo_kb("MemFree");
			if (m0 > 0 && m1 > 0)
				d->used_kib += m0 - m1;
			if (d->live < counts[i]) {
				snprintf(why, sizeof(why), "refused at %ld live (%s)",
					 d->live, strerror(errno));
				na(what, d, counts[i], why);
			}
			d->best[0] = d->best[1] = UINT64_MAX;
		}
		for (r = 0; r < reps; r++) {
			for (k = 0; k < ndevs; k++) {
				uint64_t t0, t1, t2;
				void **o;
				long j;

				d = &devs[k];
				if (d->done)
					continue;
				o = d->objs + d->live;
				t0 = now_ns();
				for (j = 0; j < batch; j++) {
					o[j] = new(d, d->live + j);
					if (!o[j])
						break;
				}
				t1 = now_ns();
				if (j < batch) {
					snprintf(why, sizeof(why), "refused at %ld live (%s)",
						 d->live + j, strerror(errno));
					while (j > 0)
						del(o[--j]);
					na(what, d, counts[i], why);
					continue;
				}
				/* newest first, as an application unwinding */
				for (j = batch; j > 0; j--)
					del(o[j - 1]);
				t2 = now_ns();
				if (t1 - t0 < d->best[0])
					d->best[0] = t1 - t0;
				if (t2 - t1 < d->best[1])
					d->best[1] = t2 - t1;
			}
			/* spread the repetitions a little in time */
			usleep(20000);
		}
		for (k = 0; k < ndevs; k++) {
			d = &devs[k];
			if (!d->done)
				printf("%s %s %ld %.0f %.0f\n", what, d->name, counts[i],
				       (double)d->best[0] / batch,
				       (double)d->best[1] / batch);
		}
		fflush(stdout);
	}
	for (k = 0; k < ndevs; k++) {
		d = &devs[k];
		if (d->live > 0)
			printf("%smem %s %ld %ld\n", what, d->name, d->live,
			       (long)(d->used_kib * 1024.0 / d->live + 0.5));
		while (d->live > 0)
			del(d->objs[--d->live]);
		free(d->objs);
	}
	return 0;
}

/* --- the write rate over many QPs ----------------------------------------- */

struct wstate {
	struct ibv_qp **req, **resp;
	struct ibv_cq **cqs;
	struct ibv_mr *mr;
	int *out;		/* signaled WRs outstanding, per requester */
	long n, ncq;
	uint64_t best;
};

/* Poll @cq once; returns the completions seen, or -1 on an error CQE. */
static int reap(struct wstate *w, struct ibv_cq *cq)
{
	struct ibv_wc wc[64];
	int got = ibv_poll_cq(cq, 64, wc), k;

	if (got < 0)
		return -1;
	for (k = 0; k < got; k++) {
		if (wc[k].status != IBV_WC_SUCCESS) {
			fprintf(stderr, "scalebench: write completed with %s\n",
				ibv_wc_status_str(wc[k].status));
			return -1;
		}
		w->out[wc[k].wr_id]--;
	}
	return got;
}

/* One run: @rounds WRs on each requester; returns ns, or 0 on failure. */
static uint64_t write_run(struct wstate *w, long rounds)
{
	struct ibv_mr *mr = w->mr;
	struct ibv_sge sge = { (uintptr_t)mr->addr, 2, mr->lkey };
	struct ibv_send_wr wr = {
		.sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_RDMA_WRITE,
		.wr.rdma = { (uintptr_t)mr->addr + 64, mr->rkey },
	}, *bad;
	uint64_t t0 = now_ns(), deadline = t0 + 300000000000ULL;
	long r, q, c;

	for (r = 0; r < rounds; r++) {
		for (q = 0; q < w->n; q++) {
			struct ibv_cq *cq = w->cqs[q / QPS_PER_CQ];
			int signal = r % WR_SIGNAL == WR_SIGNAL - 1;

			/* a signaled WR frees the WR_SIGNAL slots before it */
			while (signal && w->out[q] >= WR_DEPTH / WR_SIGNAL - 1) {
				if (reap(w, cq) < 0 || now_ns() > deadline)
					return 0;
			}
			wr.wr_id = q;
			wr.send_flags = signal ? IBV_SEND_SIGNALED : 0;
			if (ibv_post_send(w->req[q], &wr, &bad)) {
				fprintf(stderr, "scalebench: ibv_post_send: %s\n",
					strerror(errno));
				return 0;
			}
			w->out[q] += signal;
		}
	}
	for (c = 0; c < w->ncq; c++) {
		for (q = c * QPS_PER_CQ; q < w->n && q < (c + 1) * QPS_PER_CQ; q++)
			while (w->out[q] > 0)
				if (reap(w, w->cqs[c]) < 0 || now_ns() > deadline)
					return 0;
	}
	return now_ns() - t0;
}

static void write_free(struct wstate *w)
{
	long i;

	for (i = 0; i < w->n; i++) {
		if (w->req && w->req[i])
			ibv_destroy_qp(w->req[i]);
		if (w->resp && w->resp[i])
			ibv_destroy_qp(w->resp[i]);
	}
	for (i = 0; i < w->ncq; i++)
		if (w->cqs && w->cqs[i])
			ibv_destroy_cq(w->cqs[i]);
	free(w->req);
	free(w->resp);
	free(w->cqs);
	free(w->out);
	w->req = w->resp = NULL;
	w->cqs = NULL;
	w->out = NULL;
}

/* @n connected pairs on @d; returns 0 or fills @why. */
static int write_setup(struct dev *d, struct wstate *w, long n, char *why,
		       size_t len)
{
	union ibv_gid gid;
	long q;
	int gidx;

	w->n = n;
	w->ncq = (n + QPS_PER_CQ - 1) / QPS_PER_CQ;
	w->req = calloc(n, sizeof(*w->req));
	w->resp = calloc(n, sizeof(*w->resp));
	w->cqs = calloc(w->ncq, sizeof(*w->cqs));
	w->out = calloc(n, sizeof(*w->out));
	if (!w->req || !w->resp || !w->cqs || !w->out) {
		snprintf(why, len, "no memory for the test itself");
		return -1;
	}
	if (lb_find_gid(d->ctx, &gidx, &gid)) {
		snprintf(why, len, "no RoCE v2 IPv4 GID");
		return -1;
	}
	for (q = 0; q < w->ncq; q++) {
		long per = n - q * QPS_PER_CQ < QPS_PER_CQ ?
			   n - q * QPS_PER_CQ : QPS_PER_CQ;

		w->cqs[q] = ibv_create_cq(d->ctx, per * (WR_DEPTH / WR_SIGNAL) + 1,
					  NULL, NULL, 0);
		if (!w->cqs[q]) {
			snprintf(why, len, "ibv_create_cq: %s", strerror(errno));
			return -1;
		}
	}
	for (q = 0; q < n; q++) {
		struct ibv_cq *cq = w->cqs[q / QPS_PER_CQ];
		int err;

		w->req[q] = lb_create_qp(d->pd, cq, cq, WR_DEPTH, 1, 0);
		w->resp[q] = w->req[q] ? lb_create_qp(d->pd, cq, cq, 1, 1, 0) : NULL;
		if (!w->resp[q]) {
			snprintf(why, len, "QP %ld of %ld: ibv_create_qp: %s",
				 2 * q + 1, 2 * n, strerror(errno));
			return -1;
		}
		err = lb_connect_pair(w->req[q], w->resp[q], &gid, gidx, 1);
		if (err) {
			snprintf(why, len, "QP pair %ld: connect: %s", q,
				 strerror(err));
			return -1;
		}
	}
	return 0;
}

static int bench_write(void)
{
	struct wstate w[MAX_DEVS] = { 0 };
	char why[160];
	struct dev *d;
	int i, k, r;

	for (k = 0; k < ndevs; k++) {
		w[k].mr = ibv_reg_mr(devs[k].pd, mr_buf, PAGE,
				     IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
		if (!w[k].mr)
			na("write", &devs[k], 0, "ibv_reg_mr failed");
	}
	for (i = 0; i < ncounts; i++) {
		long n = counts[i], rounds;

		/* whole rounds of WR_SIGNAL, so that every QP ends signaled */
		rounds = (msgs / n + WR_SIGNAL - 1) / WR_SIGNAL * WR_SIGNAL;
		for (k = 0; k < ndevs; k++) {
			d = &devs[k];
			w[k].best = UINT64_MAX;
			if (!d->done && write_setup(d, &w[k], n, why, sizeof(why))) {
				write_free(&w[k]);
				na("write", d, n, why);
			}
		}
		for (r = 0; r < reps; r++) {
			for (k = 0; k < ndevs; k++) {
				uint64_t t;

				d = &devs[k];
				if (d->done)
					continue;
				t = write_run(&w[k], rounds);
				if (!t) {
					write_free(&w[k]);
					na("write", d, n, "a write failed or hung");
				} else if (t < w[k].best) {
					w[k].best = t;
				}
			}
		}
		for (k = 0; k < ndevs; k++) {
			d = &devs[k];
			if (d->done)
				continue;
			write_free(&w[k]);
			printf("write %s %ld %.4f\n", d->name, n,
			       (double)rounds * n * 1000.0 / w[k].best);
		}
		fflush(stdout);
	}
	for (k = 0; k < ndevs; k++)
		if (w[k].mr)
			ibv_dereg_mr(w[k].mr);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: scalebench mr|qp|cq|write -d DEV[,DEV...] "
		"-c \"COUNT...\" [-b BATCH] [-r REPS] [-n MSGS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *what;
	char *s, *tok;
	int o, k, ret;

	if (argc < 2)
		usage();
	what = argv[1];
	optind = 2;
	while ((o = getopt(argc, argv, "d:c:b:r:n:")) != -1) {
		switch (o) {
		case 'd':
			for (s = optarg; (tok = strtok(s, " ,")); s = NULL) {
				if (ndevs == MAX_DEVS)
					usage();
				devs[ndevs++].name = tok;
			}
			break;
		case 'c':
			for (s = optarg; (tok = strtok(s, " ,")); s = NULL) {
				if (ncounts == MAX_COUNTS)
					usage();
				counts[ncounts++] = strtol(tok, NULL, 0);
				if (counts[ncounts - 1] < 1 ||
				    (ncounts > 1 && counts[ncounts - 1] <= counts[ncounts - 2]))
					usage();
			}
			break;
		case 'b': batch = strtol(optarg, NULL, 0); break;
		case 'r': reps = atoi(optarg); break;
		case 'n': msgs = strtol(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!ndevs || !ncounts || batch < 1 || reps < 1 || msgs < 1)
		usage();
	if (strcmp(what, "mr") && strcmp(what, "qp") && strcmp(what, "cq") &&
	    strcmp(what, "write"))
		usage();
	mr_buf = mmap(NULL, MR_PAGES * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mr_buf == MAP_FAILED) {
		perror("scalebench: mmap");
		return 1;
	}
	for (k = 0; k < ndevs; k++) {
		struct dev *d = &devs[k];

		d->ctx = open_dev(d->name);
		d->pd = d->ctx ? ibv_alloc_pd(d->ctx) : NULL;
		d->cq = d->pd ? ibv_create_cq(d->ctx, 1, NULL, NULL, 0) : NULL;
		if (!d->cq)
			na(what, d, 0, "cannot open the device");
	}
	if (!strcmp(what, "mr"))
		ret = bench_obj("mr", mr_new, mr_del);
	else if (!strcmp(what, "qp"))
		ret = bench_obj("qp", qp_new, qp_del);
	else if (!strcmp(what, "cq"))
		ret = bench_obj("cq", cq_new, cq_del);
	else
		ret = bench_write();
	for (k = 0; k < ndevs; k++) {
		if (devs[k].cq)
			ibv_destroy_cq(devs[k].cq);
		if (devs[k].pd)
			ibv_dealloc_pd(devs[k].pd);
		if (devs[k].ctx)
			ibv_close_device(devs[k].ctx);
	}
	return ret;
}
