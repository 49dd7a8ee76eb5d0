// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * cq_test [-d DEVICE]: completion queues on an frdma device.
 *
 * CQs of every size up to the device's max_cqe are created with at least
 * the requested entries and map their shared ring (an empty one polls
 * empty without a system call), sizes outside the limits are refused,
 * resizing maps a new ring, extended CQs poll through ibv_start_poll(),
 * completion timestamps come from CLOCK_MONOTONIC (and the wall clock),
 * completion channels and notification requests work, and mmap() of the
 * command fd refuses offsets that are no ring's cookie.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "device.h"
#include "loopback.h"
#include "tap.h"


static void test_sizes(struct ibv_context *ctx, int max_cqe)
{
	int sizes[] = { 1, 2, 3, 7, 100, 1000, 4096, max_cqe / 2 + 1, max_cqe };
	struct ibv_wc wc[4];
	struct ibv_cq *cq;
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cq = ibv_create_cq(ctx, sizes[i], NULL, NULL, 0);
		if (!ok(cq != NULL, "ibv_create_cq(%d): %s", sizes[i],
			cq ? "ok" : strerror(errno)))
			continue;
		ok(cq->cqe >= sizes[i] && cq->cqe <= max_cqe,
		   "  holds %d >= %d entries, within max_cqe", cq->cqe, sizes[i]);
		ok(ibv_poll_cq(cq, 4, wc) == 0, "  a new CQ polls empty");
		ok(!ibv_destroy_cq(cq), "  ibv_destroy_cq");
	}

	errno = 0;
	cq = ibv_create_cq(ctx, max_cqe + 1, NULL, NULL, 0);
	ok(!cq && errno == EINVAL, "max_cqe + 1 entries are refused with EINVAL (%s)",
	   strerror(errno));
	if (cq)
		ibv_destroy_cq(cq);
	errno = 0;
	cq = ibv_create_cq(ctx, 0, NULL, NULL, 0);
	ok(!cq, "0 entries are refused (%s)", strerror(errno));
	if (cq)
		ibv_destroy_cq(cq);
}

static void test_resize(struct ibv_context *ctx, int max_cqe)
{
	int sizes[] = { 100, 4, 1, 5000, max_cqe, 16 };
	struct ibv_wc wc[4];
	struct ibv_cq *cq;
	unsigned int i;
	int ret;

	cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	if (!ok(cq != NULL, "a CQ to resize"))
		return;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ret = ibv_resize_cq(cq, sizes[i]);
		ok(!ret && cq->cqe >= sizes[i] && cq->cqe <= max_cqe,
		   "ibv_resize_cq(%d): %s, %d entries", sizes[i], strerror(ret),
		   cq->cqe);
		ok(ibv_poll_cq(cq, 4, wc) == 0, "  the new ring polls empty");
	}
	ret = ibv_resize_cq(cq, max_cqe + 1);
	ok(ret == EINVAL, "resizing beyond max_cqe is refused: %s", strerror(ret));
	ok(ibv_poll_cq(cq, 4, wc) == 0, "  and the CQ still polls");
	ok(!ibv_destroy_cq(cq), "destroy the resized CQ");
}

static void test_cq_ex(struct ibv_context *ctx)
{
	struct ibv_cq_init_attr_ex attr = {
		.cqe = 100,
		.wc_flags = IBV_WC_STANDARD_FLAGS,
	};
	struct ibv_poll_cq_attr pattr = {};
	struct ibv_cq_ex *cq;
	struct ibv_wc wc;
	int ret;

	cq = ibv_create_cq_ex(ctx, &attr);
	if (!ok(cq != NULL, "ibv_create_cq_ex with the standard wc_flags: %s",
		cq ? "ok" : strerror(errno)))
		return;
	ok(cq->cqe >= 100, "  holds %d >= 100 entries", cq->cqe);
	ret = ibv_start_poll(cq, &pattr);
	ok(ret == ENOENT, "  ibv_start_poll on the empty CQ: ENOENT (%s)",
	   strerror(ret));
	if (!ret)
		ibv_end_poll(cq);
	ok(ibv_poll_cq(ibv_cq_ex_to_cq(cq), 1, &wc) == 0,
	   "  ibv_poll_cq works on it too");
	ok(!ibv_resize_cq(ibv_cq_ex_to_cq(cq), 300), "  it resizes");
	ret = ibv_start_poll(cq, &pattr);
	ok(ret == ENOENT, "  and still polls empty (%s)", strerror(ret));
	if (!ret)
		ibv_end_poll(cq);
	ok(!ibv_destroy_cq(ibv_cq_ex_to_cq(cq)), "  ibv_destroy_cq");

	attr.wc_flags = IBV_WC_STANDARD_FLAGS | IBV_WC_EX_WITH_CVLAN;
	errno = 0;
	cq = ibv_create_cq_ex(ctx, &attr);
	ok(!cq && errno == EOPNOTSUPP,
	   "a wc_flag frdma cannot report (CVLAN) is refused with EOPNOTSUPP (%s)",
	   cq ? "created" : strerror(errno));
	if (cq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(cq));
}

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Poll one completion of @cq through ibv_start_poll(), with its
 * timestamps; 0 when there was one, of status success.
 */
static int poll_ts(struct ibv_cq_ex *cq, uint64_t *ts, uint64_t *wall)
{
	struct ibv_poll_cq_attr pattr = {};
	long tries;
	int ret = ENOENT, good;

	/* the watchdog of lb_poll(), in polls: never a time limit */
	for (tries = 0; tries < 100000000L && ret == ENOENT; tries++)
		ret = ibv_start_poll(cq, &pattr);
	if (ret)
		return -1;
	good = cq->status == IBV_WC_SUCCESS;
	*ts = ibv_wc_read_completion_ts(cq);
	*wall = ibv_wc_read_completion_wallclock_ns(cq);
	ibv_end_poll(cq);
	return good ? 0 : -1;
}

/*
 * Completion timestamps: the device clock is CLOCK_MONOTONIC in ns
 * (hca_core_clock 1 GHz), so a completion's timestamp lies between the
 * clock read before posting and the one after polling, and so do the
 * wall-clock timestamp and ibv_query_rt_values_ex()'s raw clock on
 * their clocks.  A resize keeps the entries' timestamps.
 */
static void test_timestamps(struct ibv_context *ctx)
{
	struct ibv_cq_init_attr_ex attr = {
		.cqe = 16,
		.wc_flags = IBV_WC_STANDARD_FLAGS |
			    IBV_WC_EX_WITH_COMPLETION_TIMESTAMP |
			    IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK,
	};
	struct ibv_values_ex rt = { .comp_mask = IBV_VALUES_MASK_RAW_CLOCK };
	struct ibv_device_attr_ex dx;
	uint64_t m0, m1, r0, r1, ts, wall, raw;
	struct ibv_cq_ex *scq = NULL, *rcq = NULL;
	struct ibv_qp *qp = NULL, *qb = NULL;
	struct ibv_pd *pd = NULL;
	struct ibv_mr *mr = NULL;
	struct ibv_sge sge;
	struct ibv_recv_wr rwr = { .wr_id = 2, .sg_list = &sge, .num_sge = 1 }, *brw;
	struct ibv_send_wr swr = {
		.wr_id = 1, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bsw;
	union ibv_gid gid;
	char buf[64] = "timestamps";
	int gidx;

	if (ok(!ibv_query_device_ex(ctx, NULL, &dx), "ibv_query_device_ex"))
		ok(dx.hca_core_clock == 1000000 &&
		   dx.completion_timestamp_mask == UINT64_MAX,
		   "  hca_core_clock %llu kHz, completion_timestamp_mask 0x%llx",
		   (unsigned long long)dx.hca_core_clock,
		   (unsigned long long)dx.completion_timestamp_mask);
	m0 = clock_ns(CLOCK_MONOTONIC);
	ok(!ibv_query_rt_values_ex(ctx, &rt), "ibv_query_rt_values_ex");
	m1 = clock_ns(CLOCK_MONOTONIC);
	raw = (uint64_t)rt.raw_clock.tv_sec * 1000000000 + rt.raw_clock.tv_nsec;
	ok(m0 <= raw && raw <= m1,
	   "  its raw clock is the device clock, CLOCK_MONOTONIC in ns");

	scq = ibv_create_cq_ex(ctx, &attr);
	rcq = ibv_create_cq_ex(ctx, &attr);
	if (!ok(scq && rcq, "ibv_create_cq_ex with completion timestamps: %s",
		scq && rcq ? "ok" : strerror(errno)))
		goto out;
	pd = ibv_alloc_pd(ctx);
	mr = pd ? ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE) : NULL;
	qp = mr ? lb_create_qp(pd, ibv_cq_ex_to_cq(scq), ibv_cq_ex_to_cq(rcq),
			       4, 1, 0) : NULL;
	qb = qp ? lb_create_qp(pd, ibv_cq_ex_to_cq(scq), ibv_cq_ex_to_cq(rcq),
			       4, 1, 0) : NULL;
	if (!ok(qb && !lb_find_gid(ctx, &gidx, &gid) &&
		!lb_connect_pair(qp, qb, &gid, gidx, 1),
		"two RC QPs connected on those CQs"))
		goto out;
	sge = (struct ibv_sge){ (uintptr_t)buf, sizeof(buf), mr->lkey };

	m0 = clock_ns(CLOCK_MONOTONIC);
	r0 = clock_ns(CLOCK_REALTIME);
	if (!ok(!ibv_post_recv(qb, &rwr, &brw) &&
		!ibv_post_send(qp, &swr, &bsw), "a SEND from one to the other"))
		goto out;
	ok(!poll_ts(scq, &ts, &wall), "  its send completion");
	m1 = clock_ns(CLOCK_MONOTONIC);
	r1 = clock_ns(CLOCK_REALTIME);
	ok(m0 <= ts && ts <= m1,
	   "  its timestamp lies between the clock before and after (%llu ns in)",
	   (unsigned long long)(ts - m0));
	ok(r0 <= wall && wall <= r1, "  and so does its wall-clock timestamp");
	ok(!poll_ts(rcq, &ts, &wall) && m0 <= ts && ts <= m1,
	   "  the receive completion's timestamp too");

	m0 = clock_ns(CLOCK_MONOTONIC);
	swr.wr_id = 3;
	rwr.wr_id = 4;
	ok(!ibv_post_recv(qb, &rwr, &brw) && !ibv_post_send(qp, &swr, &bsw) &&
	   !poll_ts(rcq, &ts, &wall), "another SEND, received");
	ok(!ibv_resize_cq(ibv_cq_ex_to_cq(scq), 200),
	   "  the send CQ resizes with its completion in it");
	ok(!poll_ts(scq, &ts, &wall) && m0 <= ts &&
	   ts <= clock_ns(CLOCK_MONOTONIC),
	   "  which keeps its timestamp in the new ring");
out:
	if (qb)
		ibv_destroy_qp(qb);
	if (qp)
		ibv_destroy_qp(qp);
	if (mr)
		ibv_dereg_mr(mr);
	if (pd)
		ibv_dealloc_pd(pd);
	if (scq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(scq));
	if (rcq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(rcq));
}

static void test_channel(struct ibv_context *ctx)
{
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq, *ev_cq;
	void *ev_ctx;
	int flags, ret;

	ch = ibv_create_comp_channel(ctx);
	if (!ok(ch != NULL, "ibv_create_comp_channel"))
		return;
	cq = ibv_create_cq(ctx, 16, (void *)0x1234, ch, 0);
	if (ok(cq != NULL, "a CQ on the channel: %s", cq ? "ok" : strerror(errno))) {
		ok(!ibv_req_notify_cq(cq, 0), "ibv_req_notify_cq(next completion)");
		ok(!ibv_req_notify_cq(cq, 1), "ibv_req_notify_cq(solicited only)");
		flags = fcntl(ch->fd, F_GETFL);
		fcntl(ch->fd, F_SETFL, flags | O_NONBLOCK);
		errno = 0;
		ret = ibv_get_cq_event(ch, &ev_cq, &ev_ctx);
		ok(ret && errno == EAGAIN,
		   "no completion event without a completion (%s)",
		   ret ? strerror(errno) : "got one");
		ok(!ibv_destroy_cq(cq), "destroy the CQ");
	}
	ok(!ibv_destroy_comp_channel(ch), "ibv_destroy_comp_channel");
}

static void test_many(struct ibv_context *ctx)
{
	struct ibv_cq *cq[64];
	int i, made = 0, freed = 0;

	for (i = 0; i < 64; i++) {
		cq[i] = ibv_create_cq(ctx, 64 + i, NULL, NULL, 0);
		made += cq[i] != NULL;
	}
	for (i = 0; i < 64; i++)
		if (cq[i] && !ibv_destroy_cq(cq[i]))
			freed++;
	ok(made == 64 && freed == 64, "64 CQs created (%d) and destroyed (%d)",
	   made, freed);
}

static void test_bad_mmap(struct ibv_context *ctx)
{
	long page = sysconf(_SC_PAGESIZE);
	off_t offs[] = { 0, page, 0x7ffff000L * page };
	unsigned int i;
	void *p;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED,
			 ctx->cmd_fd, offs[i]);
		ok(p == MAP_FAILED, "mmap of the command fd at 0x%llx is refused (%s)",
		   (unsigned long long)offs[i], p == MAP_FAILED ? strerror(errno) : "mapped");
		if (p != MAP_FAILED)
			munmap(p, page);
	}
}

int main(int argc, char **argv)
{
	struct ibv_device_attr da;
	struct ibv_context *ctx;
	const char *name;
	int ret;

	ctx = lb_test_open(argc, argv, "frdma0", &name);
	if (!ok(ctx != NULL, "open %s", name))
		return tap_done();
	ret = ibv_query_device(ctx, &da);
	if (ok(!ret, "ibv_query_device: max_cqe %d", ret ? -1 : da.max_cqe)) {
		test_sizes(ctx, da.max_cqe);
		test_resize(ctx, da.max_cqe);
		test_cq_ex(ctx);
		test_timestamps(ctx);
		test_channel(ctx);
		test_many(ctx);
		test_bad_mmap(ctx);
	}
	ok(!ibv_close_device(ctx), "ibv_close_device");
	return tap_done();
}
