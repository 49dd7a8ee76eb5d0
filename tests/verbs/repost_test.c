// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * repost_test -d DEVICE: a receive posted as soon as its predecessor's
 * completion is polled finds its slot free.
 *
 * A receive completion tells the application that the receive's slot in
 * the receive queue is free again: a program that keeps its receive queue
 * full, and posts the next receive from each completion, must never see
 * ibv_post_recv() fail with ENOMEM (the queue full).  The device must
 * publish the queue's consumer index before it posts the completion.
 *
 * For RC and UD SENDs, to a receive queue of one entry and to a shared
 * receive queue of one entry: a receiving thread fills the queue (to what
 * it holds: a ring may have more slots than asked for), then for each of
 * ITERS messages sleeps on its completion channel, polls the completion
 * and posts the next receive at once; a sending thread sends each message
 * once the receiver is waiting for it.  Every ibv_post_recv() must
 * succeed, and every message arrive.
 *
 * So that a late consumer index shows every time rather than by chance,
 * both threads share one CPU, the receiver is SCHED_FIFO and the kernel
 * fully preemptible (/sys/kernel/debug/sched/preempt, where the kernel
 * lets it change): the wakeup of the receiver by the completion event
 * preempts the sender right there, inside the system call that delivers
 * the message, so the receiver posts before the device's code that runs
 * after the completion does.  frdma's send queue poller is off meanwhile
 * (the sq_poll module parameter), so that each SEND runs in the sender's
 * own doorbell.  Both are restored at the end.  Where either cannot be
 * set, the test still runs and says so: then the check is a race.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "loopback.h"
#include "tap.h"

#define ITERS		256
#define MSG		64
#define GRH		40
#define SLOT		256	/* receive buffer: GRH + message, rounded up */
#define MAX_FILL	64	/* more receives than this: not a small queue */
#define QKEY		0x11111111
#define PREEMPT		"/sys/kernel/debug/sched/preempt"
#define SQ_POLL		"/sys/module/frdma/parameters/sq_poll"

static const char *dev;

struct run {
	/* setup */
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *scq, *rcq;
	struct ibv_srq *srq;
	struct ibv_qp *sqp, *rqp;
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	uint8_t *buf;
	union ibv_gid gid;
	int gid_index;
	bool ud;
	/* the receiver: how many messages the sender may have sent */
	atomic_int ready;
	atomic_bool stop;
	/* results */
	int fill, got, enomem, post_err, bad_wc, send_err, fifo_err;
	char why[96];
};

/* ---- setup ---- */

static void run_close(struct run *r)
{
	if (r->ah)
		ibv_destroy_ah(r->ah);
	if (r->sqp)
		ibv_destroy_qp(r->sqp);
	if (r->rqp)
		ibv_destroy_qp(r->rqp);
	if (r->srq)
		ibv_destroy_srq(r->srq);
	if (r->mr)
		ibv_dereg_mr(r->mr);
	free(r->buf);
	if (r->scq)
		ibv_destroy_cq(r->scq);
	if (r->rcq)
		ibv_destroy_cq(r->rcq);
	if (r->ch)
		ibv_destroy_comp_channel(r->ch);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->ctx)
		ibv_close_device(r->ctx);
}

/* Two QPs of @ud's type, the receiver's on a one-entry RQ or @srq. */
static int run_open(struct run *r, bool ud, bool srq)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = ud ? IBV_QPT_UD : IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_send_sge = 1,
			 .max_recv_wr = 1, .max_recv_sge = 1 },
	};
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 1, .max_sge = 1 } };
	struct ibv_ah_attr aha = { .is_global = 1, .port_num = LB_PORT };
	int ret;

	memset(r, 0, sizeof(*r));
	r->ud = ud;
	r->ctx = lb_open(dev, &r->gid_index, &r->gid);
	if (!r->ctx)
		return ENODEV;
	r->pd = ibv_alloc_pd(r->ctx);
	r->ch = ibv_create_comp_channel(r->ctx);
	if (!r->pd || !r->ch)
		return errno;
	r->scq = ibv_create_cq(r->ctx, 16, NULL, NULL, 0);
	r->rcq = ibv_create_cq(r->ctx, 2 * MAX_FILL, NULL, r->ch, 0);
	r->buf = calloc(MAX_FILL + 1, SLOT);
	if (!r->scq || !r->rcq || !r->buf)
		return errno ? errno : ENOMEM;
	r->mr = ibv_reg_mr(r->pd, r->buf, (MAX_FILL + 1) * SLOT,
			   IBV_ACCESS_LOCAL_WRITE);
	if (!r->mr)
		return errno;
	if (srq) {
		r->srq = ibv_create_srq(r->pd, &sa);
		if (!r->srq)
			return errno;
	}
	ia.send_cq = ia.recv_cq = r->scq;
	r->sqp = ibv_create_qp(r->pd, &ia);
	ia.recv_cq = r->rcq;
	ia.srq = r->srq;
	if (srq)
		ia.cap.max_recv_wr = ia.cap.max_recv_sge = 0;
	r->rqp = r->sqp ? ibv_create_qp(r->pd, &ia) : NULL;
	if (!r->rqp)
		return errno;
	if (!ud)
		return lb_connect_pair(r->sqp, r->rqp, &r->gid, r->gid_index, 1);
	ret = lb_ud_rts(r->sqp, QKEY);
	ret = ret ? ret : lb_ud_rts(r->rqp, QKEY);
	if (ret)
		return ret;
	aha.grh.dgid = r->gid;
	aha.grh.sgid_index = r->gid_index;
	aha.grh.hop_limit = 64;
	r->ah = ibv_create_ah(r->pd, &aha);
	return r->ah ? 0 : errno;
}

/* One receive into slot @i (wr_id @i). */
static int post_one(struct run *r, int i)
{
	struct ibv_sge sge = {
		(uintptr_t)r->buf + (size_t)(i + 1) * SLOT, SLOT, r->mr->lkey
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return r->srq ? ibv_post_srq_recv(r->srq, &wr, &bad) :
			ibv_post_recv(r->rqp, &wr, &bad);
}

/* ---- the two threads ---- */

/*
 * The next receive completion: sleep on the channel until it comes (a
 * watchdog, LB_WAIT_MS, against a lost message).  1, or 0 and r->why.
 */
static int wait_one(struct run *r, struct ibv_wc *wc)
{
	struct pollfd pfd = { .fd = r->ch->fd, .events = POLLIN };
	struct ibv_cq *cq;
	void *cq_ctx;
	int n;

	for (;;) {
		n = ibv_poll_cq(r->rcq, 1, wc);
		if (n)
			break;
		n = poll(&pfd, 1, LB_WAIT_MS);
		if (n <= 0) {
			snprintf(r->why, sizeof(r->why), "no completion: %s",
				 n ? strerror(errno) : "watchdog");
			return 0;
		}
		if (ibv_get_cq_event(r->ch, &cq, &cq_ctx)) {
			snprintf(r->why, sizeof(r->why), "ibv_get_cq_event: %s",
				 strerror(errno));
			return 0;
		}
		ibv_ack_cq_events(cq, 1);
		if (ibv_req_notify_cq(r->rcq, 0)) {
			snprintf(r->why, sizeof(r->why), "ibv_req_notify_cq");
			return 0;
		}
	}
	if (n < 0) {
		snprintf(r->why, sizeof(r->why), "ibv_poll_cq failed");
		return 0;
	}
	return 1;
}

static void *receiver(void *arg)
{
	struct sched_param fifo = { .sched_priority = 1 };
	struct timespec nap = { 0, 50000 };
	struct run *r = arg;
	struct ibv_wc wc;
	int i, ret, tries;

	r->fifo_err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &fifo);
	/* Fill the queue to what it holds. */
	while (r->fill < MAX_FILL && !post_one(r, r->fill))
		r->fill++;
	if (!r->fill || r->fill == MAX_FILL ||
	    ibv_req_notify_cq(r->rcq, 0)) {
		snprintf(r->why, sizeof(r->why), "filling the queue: %d receives",
			 r->fill);
		goto out;
	}
	for (i = 0; i < ITERS; i++) {
		/* Message i may go: the sender runs once this thread sleeps. */
		atomic_store(&r->ready, i + 1);
		if (!wait_one(r, &wc))
			goto out;
		if (wc.status != IBV_WC_SUCCESS || wc.opcode != IBV_WC_RECV ||
		    wc.byte_len != MSG + (r->ud ? GRH : 0)) {
			if (!r->bad_wc++)
				diag("message %d: %s, opcode %d, %u bytes", i,
				     ibv_wc_status_str(wc.status), wc.opcode,
				     wc.byte_len);
		}
		r->got++;
		/* Its slot is free: post the next receive into it, now. */
		ret = post_one(r, (int)wc.wr_id);
		if (ret == ENOMEM) {
			if (!r->enomem++)
				diag("message %d: ibv_post_recv() right after its completion: ENOMEM (the queue still full)",
				     i);
			/* Let the sender's system call finish, then again. */
			for (tries = 0; ret == ENOMEM && tries < 100000; tries++) {
				nanosleep(&nap, NULL);
				ret = post_one(r, (int)wc.wr_id);
			}
		}
		if (ret) {
			r->post_err++;
			snprintf(r->why, sizeof(r->why), "ibv_post_recv: %s",
				 strerror(ret));
			goto out;
		}
	}
out:
	atomic_store(&r->stop, true);
	return NULL;
}

static void *sender(void *arg)
{
	struct run *r = arg;
	struct ibv_sge sge = { (uintptr_t)r->buf, MSG, r->mr->lkey };
	struct ibv_send_wr wr = {
		.sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_wc wc;
	int i;

	if (r->ud)
		wr.wr.ud = (typeof(wr.wr.ud)){ .ah = r->ah,
			.remote_qpn = r->rqp->qp_num, .remote_qkey = QKEY };
	for (i = 0; i < ITERS; i++) {
		while (atomic_load(&r->ready) <= i && !atomic_load(&r->stop))
			sched_yield();
		if (atomic_load(&r->stop))
			break;
		wr.wr_id = i;
		if (ibv_post_send(r->sqp, &wr, &bad) ||
		    lb_poll(r->scq, &wc, 1) != 1 ||
		    wc.status != IBV_WC_SUCCESS) {
			r->send_err++;
			break;
		}
	}
	return NULL;
}

/* ---- the system's settings ---- */

/* The first line of @path into @s (no newline), or "". */
static void read_str(const char *path, char *s, size_t size)
{
	FILE *f = fopen(path, "r");

	s[0] = 0;
	if (f) {
		if (!fgets(s, size, f))
			s[0] = 0;
		fclose(f);
	}
	s[strcspn(s, "\n")] = 0;
}

static bool write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	bool done = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);

	if (fd >= 0)
		close(fd);
	return done;
}

/* The preemption model in effect, from "none (voluntary) full", or "". */
static void preempt_mode(char *mode, size_t size)
{
	char line[128], *open_, *close_;

	read_str(PREEMPT, line, sizeof(line));
	mode[0] = 0;
	open_ = strchr(line, '(');
	close_ = open_ ? strchr(open_, ')') : NULL;
	if (close_ && (size_t)(close_ - open_) <= size) {
		*close_ = 0;
		snprintf(mode, size, "%s", open_ + 1);
	}
}

/* ---- the cases ---- */

static void test_case(bool ud, bool srq)
{
	const char *what = ud ? "UD" : "RC";
	const char *queue = srq ? "SRQ" : "RQ";
	pthread_t rt, st;
	struct run r;
	int ret;

	ret = run_open(&r, ud, srq);
	if (!ok(!ret, "%s SEND to a one-entry %s: setup (%s)", what, queue,
		strerror(ret))) {
		run_close(&r);
		return;
	}
	ret = pthread_create(&rt, NULL, receiver, &r);
	if (!ret) {
		ret = pthread_create(&st, NULL, sender, &r);
		if (ret)
			atomic_store(&r.stop, true);
		else
			pthread_join(st, NULL);
		pthread_join(rt, NULL);
	}
	if (r.fifo_err)
		diag("SCHED_FIFO for the receiver: %s", strerror(r.fifo_err));
	if (r.why[0])
		diag("%s", r.why);
	ok(!ret && r.got == ITERS && !r.bad_wc && !r.send_err && !r.post_err,
	   "  %d of %d messages received, %d bad, %d sends failed (the %s holds %d)",
	   r.got, ITERS, r.bad_wc, r.send_err, queue, r.fill);
	ok(r.got && !r.enomem,
	   "  every receive posted right after a completion found its slot free: %d of %d ENOMEM",
	   r.enomem, r.got);
	run_close(&r);
}

int main(int argc, char **argv)
{
	char mode[32], poll_was[8];
	cpu_set_t cpus, one;
	bool full, no_poll;
	int cpu;

	dev = lb_args(argc, argv, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* One CPU for both threads, the kernel fully preemptible. */
	preempt_mode(mode, sizeof(mode));
	full = !strcmp(mode, "full") || (mode[0] && write_str(PREEMPT, "full"));
	if (!full)
		diag("the kernel could not be made fully preemptible (%s): a late consumer index shows only by chance",
		     mode[0] ? mode : PREEMPT " absent");
	read_str(SQ_POLL, poll_was, sizeof(poll_was));
	no_poll = !poll_was[0] || write_str(SQ_POLL, "N");
	if (!no_poll)
		diag("could not turn frdma's send queue poller off");
	sched_getaffinity(0, sizeof(cpus), &cpus);
	cpu = sched_getcpu();
	CPU_ZERO(&one);
	CPU_SET(cpu < 0 ? 0 : cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		diag("sched_setaffinity: %s", strerror(errno));

	test_case(false, false);
	test_case(false, true);
	test_case(true, false);
	test_case(true, true);

	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (poll_was[0])
		write_str(SQ_POLL, poll_was);
	if (mode[0] && strcmp(mode, "full"))
		write_str(PREEMPT, mode);
	return tap_done();
}
