// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * poll_test -d DEVICE: the send queue poller (frdma only; the protocol is
 * "Send queue polling" in include/uapi/rdma/frdma-abi.h).  When an RC QP's
 * doorbells come back to back the kernel runs its SQ from a poller and
 * sets FRDMA_SQ_POLLED in the SQ header, and the provider stops ringing
 * the doorbell.  Whether and when the poller engages depends on timing,
 * so what it did is reported as diagnostics; what is checked holds
 * either way:
 *
 *   - a stream of RDMA WRITEs kept up to the SQ's depth (the poller's
 *     case) completes entirely, successfully and in order, and the
 *     target memory holds the last value written to every slot;
 *   - with another thread scribbling the SQ header's sq_flags (lying
 *     that the kernel polls, or that it does not), the stream still
 *     completes in order once the test rings the doorbell itself when it
 *     stalls: the lie only delays the liar's own QP;
 *   - moving the QP to the error state in the middle of a stream flushes
 *     the rest: every WR completes exactly once, in order, the successful
 *     ones first;
 *   - destroying the QPs in the middle of a stream returns (the poller is
 *     stopped and waited for); the VM harness adds the kernel's verdict;
 *   - with FRDMA_SQ_POLLED set by the test while no poller runs, a post is
 *     left to a poller that is not there, and the provider still runs it:
 *     when the QP's receive CQ (not its send CQ) has been polled empty
 *     long enough, and when a CQ of the QP is armed for an event.
 *
 * The test finds the SQ header as the only mapping of the uverbs device
 * of the SQ's size (the QP under test has a larger SQ than anything else
 * the test maps).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <rdma/ib_user_verbs.h>
#include "../../include/uapi/rdma/frdma-abi.h"

#include "loopback.h"
#include "tap.h"

#define SQ_DEPTH	1024	/* the QP under test; its peer's is smaller */
#define SLOTS		4096	/* 8-byte target slots */
#define SIGNAL_EVERY	16

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static union ibv_gid gid;
static int gid_index;
static uint64_t *src, *dst;
static struct ibv_mr *smr, *dmr;

/* The SQ ring header of the QP under test, found in /proc/self/maps. */
static struct frdma_ring_hdr *find_sq_hdr(size_t size)
{
	struct frdma_ring_hdr *found = NULL;
	unsigned long lo, hi;
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "uverbs") ||
		    sscanf(line, "%lx-%lx", &lo, &hi) != 2 || hi - lo != size)
			continue;
		found = (struct frdma_ring_hdr *)lo;
		n++;
	}
	fclose(f);
	return n == 1 ? found : NULL;
}

/* The zero-WR POST_SEND doorbell, rung by the test itself. */
static int doorbell(struct ibv_qp *qp)
{
	struct ib_uverbs_post_send_resp resp;
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_post_send req;
	} m = {
		.hdr = {
			.command = IB_USER_VERBS_CMD_POST_SEND,
			.in_words = sizeof(m) / 4,
			.out_words = sizeof(resp) / 4,
		},
		.req = {
			.response = (uintptr_t)&resp,
			.qp_handle = qp->handle,
			.wqe_size = sizeof(struct ib_uverbs_send_wr),
		},
	};

	return write(ctx->cmd_fd, &m, sizeof(m)) == sizeof(m) ? 0 : errno;
}

static _Atomic int scribbling;
static _Atomic unsigned long scribbles;

static void *scribbler(void *arg)
{
	_Atomic uint32_t *flags = (_Atomic uint32_t *)
				  &((struct frdma_ring_hdr *)arg)->sq_flags;
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	while (atomic_load(&scribbling)) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		atomic_store_explicit(flags, (x & 3) ? (uint32_t)(x >> 32) |
				      FRDMA_SQ_POLLED : 0, memory_order_relaxed);
		atomic_fetch_add(&scribbles, 1);
		if (!(x & 0xff))
			sched_yield();
	}
	return NULL;
}

struct stream {
	unsigned long posted, completed, bad_order, errors, flushed;
	unsigned long polled_seen, kicks;
	uint64_t next_wr_id;	/* the wr_id the next completion must carry */
	bool stalled;
};

/*
 * Post @n 8-byte RDMA WRITEs (value i to slot i % SLOTS), keeping the SQ
 * full, every SIGNAL_EVERY-th signalled (and the last), and reap them.
 * @kick: ring the doorbell ourselves when no completion comes for a
 * while (needed when the flags are scribbled).  @err_at: move @qp to
 * the error state after that many posts (0: never); then every WR is
 * signalled, to count the flushes.
 */
static void stream(struct ibv_qp *qp, struct ibv_cq *cq,
		   struct frdma_ring_hdr *h, unsigned long n, bool kick,
		   unsigned long err_at, struct stream *s)
{
	unsigned long outstanding = 0, idle = 0;
	struct timespec t0;
	struct ibv_wc wc[32];
	int i, got;

	memset(s, 0, sizeof(*s));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (s->completed < n || outstanding) {
		while (s->posted < n && outstanding < SQ_DEPTH) {
			unsigned long k = s->posted;
			bool sig = err_at || k % SIGNAL_EVERY == SIGNAL_EVERY - 1 ||
				   k == n - 1;
			struct ibv_sge sge = {
				(uintptr_t)&src[k % SLOTS], 8, smr->lkey,
			};
			struct ibv_send_wr wr = {
				.wr_id = k, .sg_list = &sge, .num_sge = 1,
				.opcode = IBV_WR_RDMA_WRITE,
				.send_flags = sig ? IBV_SEND_SIGNALED : 0,
				.wr.rdma = {
					(uintptr_t)&dst[k % SLOTS], dmr->rkey,
				},
			}, *bad;

			src[k % SLOTS] = k;
			if (ibv_post_send(qp, &wr, &bad))
				break;
			s->posted++;
			outstanding++;
			if (h && (atomic_load_explicit((_Atomic uint32_t *)
						       &h->sq_flags,
						       memory_order_relaxed) &
				  FRDMA_SQ_POLLED))
				s->polled_seen++;
			if (err_at && s->posted == err_at) {
				struct ibv_qp_attr a = {
					.qp_state = IBV_QPS_ERR,
				};

				ibv_modify_qp(qp, &a, IBV_QP_STATE);
				n = s->posted;	/* post no more */
			}
		}
		got = ibv_poll_cq(cq, 32, wc);
		if (got < 0)
			break;
		for (i = 0; i < got; i++) {
			unsigned long covered;

			if (wc[i].wr_id < s->next_wr_id) {
				s->bad_order++;
				continue;
			}
			covered = wc[i].wr_id - s->next_wr_id + 1;
			if (err_at && covered != 1)
				s->bad_order++;
			s->next_wr_id = wc[i].wr_id + 1;
			s->completed += covered;
			outstanding -= covered < outstanding ? covered :
							       outstanding;
			if (wc[i].status == IBV_WC_WR_FLUSH_ERR)
				s->flushed++;
			else if (wc[i].status != IBV_WC_SUCCESS)
				s->errors++;
			else if (s->flushed)
				s->bad_order++;	/* success after a flush */
		}
		if (got) {
			idle = 0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			continue;
		}
		if (++idle % 4096)
			continue;
		/* No completion for a while: ring the doorbell ourselves. */
		if (kick) {
			doorbell(qp);
			s->kicks++;
		}
		if (lb_ms_since(&t0) > LB_WAIT_MS) {
			s->stalled = true;
			break;
		}
		usleep(100);
	}
}

static bool dst_holds_last(unsigned long n)
{
	unsigned long k;

	for (k = 0; k < SLOTS && k < n; k++) {
		unsigned long last = k + (n - 1 - k) / SLOTS * SLOTS;

		if (dst[k] != last)
			return false;
	}
	return true;
}

struct pair {
	struct ibv_cq *cq, *rcq, *pcq;
	struct ibv_qp *qp, *peer;
	struct frdma_ring_hdr *h;
};

/* @split: the QP under test gets a receive CQ of its own, p->rcq */
static bool pair_create(struct pair *p, bool split)
{
	memset(p, 0, sizeof(*p));
	p->cq = ibv_create_cq(ctx, SQ_DEPTH * 2, NULL, NULL, 0);
	p->rcq = split ? ibv_create_cq(ctx, 16, NULL, NULL, 0) : p->cq;
	p->pcq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	if (!p->cq || !p->rcq || !p->pcq)
		return false;
	p->qp = lb_create_qp(pd, p->cq, p->rcq, SQ_DEPTH, 1, 0);
	p->peer = lb_create_qp(pd, p->pcq, p->pcq, 16, 1, 0);
	if (!p->qp || !p->peer ||
	    lb_connect_pair(p->qp, p->peer, &gid, gid_index, 1))
		return false;
	/* 80-byte SQEs in 128-byte slots, after the header, page aligned */
	p->h = find_sq_hdr((FRDMA_RING_HDR_SIZE + SQ_DEPTH * 128 + 4095) &
			   ~4095UL);
	return p->h != NULL;
}

static void pair_destroy(struct pair *p)
{
	if (p->qp)
		ibv_destroy_qp(p->qp);
	if (p->peer)
		ibv_destroy_qp(p->peer);
	if (p->rcq && p->rcq != p->cq)
		ibv_destroy_cq(p->rcq);
	if (p->cq)
		ibv_destroy_cq(p->cq);
	if (p->pcq)
		ibv_destroy_cq(p->pcq);
}

static void diag_stream(const char *what, struct stream *s)
{
	diag("%s: %lu posted, %lu completed, %lu flushed, %lu in error; "
	     "FRDMA_SQ_POLLED seen after %lu posts; %lu doorbells rung by "
	     "the test", what, s->posted, s->completed, s->flushed,
	     s->errors, s->polled_seen, s->kicks);
}

static void test_stream(void)
{
	unsigned long n = 50000;
	struct stream s;
	struct pair p;

	if (!ok(pair_create(&p, false), "a QP pair, the SQ header found")) {
		pair_destroy(&p);
		return;
	}
	memset(dst, 0xff, SLOTS * 8);
	stream(p.qp, p.cq, p.h, n, false, 0, &s);
	diag_stream("stream", &s);
	ok(!s.stalled && s.completed == n && !s.bad_order && !s.errors,
	   "%lu writes kept up to the SQ depth all complete, in order", n);
	ok(dst_holds_last(n), "the target holds the last value of every slot");
	ok(lb_qp_state(p.qp) == IBV_QPS_RTS, "the QP is still RTS");
	pair_destroy(&p);
}

static void test_scribbled(void)
{
	unsigned long n = 20000;
	struct stream s;
	struct pair p;
	pthread_t t;

	if (!ok(pair_create(&p, false), "a QP pair, the SQ header found")) {
		pair_destroy(&p);
		return;
	}
	memset(dst, 0xff, SLOTS * 8);
	atomic_store(&scribbling, 1);
	if (!ok(!pthread_create(&t, NULL, scribbler, p.h), "a scribbler")) {
		pair_destroy(&p);
		return;
	}
	stream(p.qp, p.cq, NULL, n, true, 0, &s);
	atomic_store(&scribbling, 0);
	pthread_join(t, NULL);
	diag_stream("scribbled", &s);
	diag("%lu scribbles of sq_flags", atomic_load(&scribbles));
	ok(!s.stalled && s.completed == n && !s.bad_order && !s.errors,
	   "with sq_flags scribbled, %lu writes all complete, in order", n);
	ok(dst_holds_last(n), "the target holds the last value of every slot");
	ok(lb_qp_state(p.qp) == IBV_QPS_RTS, "the QP is still RTS");
	pair_destroy(&p);
}

static void test_error_midway(void)
{
	unsigned long n = 20000, err_at = 15000;
	struct stream s;
	struct pair p;

	if (!ok(pair_create(&p, false), "a QP pair, the SQ header found")) {
		pair_destroy(&p);
		return;
	}
	stream(p.qp, p.cq, p.h, n, false, err_at, &s);
	diag_stream("error midway", &s);
	ok(!s.stalled && s.completed == err_at && !s.bad_order && !s.errors,
	   "moved to ERR after %lu posts: each WR completes once, in order, "
	   "flushes last", err_at);
	pair_destroy(&p);
}

static void test_destroy_midway(void)
{
	struct ibv_wc wc[32];
	unsigned long k;
	struct pair p;
	int ret, i;

	if (!ok(pair_create(&p, false), "a QP pair, the SQ header found")) {
		pair_destroy(&p);
		return;
	}
	/* Ramp up so the poller is likely armed, then leave the SQ full. */
	for (k = 0; k < 8 * SQ_DEPTH; k++) {
		struct ibv_sge sge = { (uintptr_t)src, 8, smr->lkey };
		struct ibv_send_wr wr = {
			.wr_id = k, .sg_list = &sge, .num_sge = 1,
			.opcode = IBV_WR_RDMA_WRITE,
			.send_flags = k % SIGNAL_EVERY ? 0 : IBV_SEND_SIGNALED,
			.wr.rdma = { (uintptr_t)dst, dmr->rkey },
		}, *bad;

		while (ibv_post_send(p.qp, &wr, &bad))
			for (i = 0; i < 1000; i++)
				ibv_poll_cq(p.cq, 32, wc);
	}
	ret = ibv_destroy_qp(p.qp);
	p.qp = NULL;
	ok(!ret, "a QP destroyed with its SQ full returns (%s)",
	   strerror(ret));
	pair_destroy(&p);
}

/* Post one signalled 8-byte WRITE with the poller's flag set by us. */
static bool post_lied(struct pair *p, uint64_t wr_id)
{
	struct ibv_sge sge = { (uintptr_t)src, 8, smr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { (uintptr_t)dst, dmr->rkey },
	}, *bad;

	atomic_store((_Atomic uint32_t *)&p->h->sq_flags, FRDMA_SQ_POLLED);
	src[0] = wr_id;
	return !ibv_post_send(p->qp, &wr, &bad);
}

/* One poll of the send CQ (no kick: that needs 1024 empty ones). */
static bool send_completed(struct pair *p, uint64_t wr_id)
{
	struct ibv_wc wc;

	return ibv_poll_cq(p->cq, 1, &wc) == 1 && wc.wr_id == wr_id &&
	       wc.status == IBV_WC_SUCCESS && dst[0] == wr_id;
}

static void test_kicks(void)
{
	struct ibv_wc wc;
	struct pair p;
	int i;

	if (!ok(pair_create(&p, true),
		"a QP pair, its own receive CQ, the SQ header found")) {
		pair_destroy(&p);
		return;
	}
	/* No doorbell has been rung: no poller is armed. */
	ok(post_lied(&p, 1), "a WRITE posted with FRDMA_SQ_POLLED set by us");
	usleep(20000);
	ok(!send_completed(&p, 1),
	   "nothing ran it: the provider skipped the doorbell");
	for (i = 0; i < 2048; i++)
		ibv_poll_cq(p.rcq, 1, &wc);
	ok(send_completed(&p, 1),
	   "after the receive CQ was polled empty 2048 times it ran");

	ok(post_lied(&p, 2), "another WRITE posted the same way");
	usleep(20000);
	ok(!send_completed(&p, 2), "nothing ran it");
	ok(!ibv_req_notify_cq(p.rcq, 0), "the receive CQ armed");
	ok(send_completed(&p, 2), "arming the receive CQ ran it");
	ok(lb_qp_state(p.qp) == IBV_QPS_RTS, "the QP is still RTS");
	pair_destroy(&p);
}

int main(int argc, char **argv)
{
	char path[256], desc[64] = "";
	const char *dev;
	FILE *f;

	dev = lb_args(argc, argv, NULL);
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/node_desc", dev);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(desc, sizeof(desc), f))
			desc[0] = 0;
		fclose(f);
	}
	if (!ok(!strncmp(desc, FRDMA_NODE_DESC, strlen(FRDMA_NODE_DESC)),
		"%s is an frdma device (node_desc \"%s\"): the rings are frdma's",
		dev, strtok(desc, "\n") ? desc : ""))
		return tap_done();
	ctx = open_device_by_name(dev);
	if (!ok(ctx != NULL, "open %s", dev))
		return tap_done();
	if (!ok(!lb_find_gid(ctx, &gid_index, &gid), "%s has a RoCE v2 IPv4 GID",
		dev))
		return tap_done();
	pd = ibv_alloc_pd(ctx);
	src = calloc(SLOTS, 8);
	dst = calloc(SLOTS, 8);
	if (pd && src && dst) {
		smr = ibv_reg_mr(pd, src, SLOTS * 8, IBV_ACCESS_LOCAL_WRITE);
		dmr = ibv_reg_mr(pd, dst, SLOTS * 8, IBV_ACCESS_LOCAL_WRITE |
				 IBV_ACCESS_REMOTE_WRITE);
	}
	if (!ok(pd && smr && dmr, "a PD and two MRs"))
		return tap_done();

	test_stream();
	test_scribbled();
	test_error_midway();
	test_destroy_midway();
	test_kicks();

	ibv_dereg_mr(smr);
	ibv_dereg_mr(dmr);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return tap_done();
}
