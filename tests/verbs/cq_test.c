// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * cq_test [-d DEVICE]: completion queues on an frdma device.
 *
 * CQs of every size up to the device's max_cqe are created with at least
 * the requested entries and map their shared ring (an empty one polls
 * empty without a system call), sizes outside the limits are refused,
 * resizing maps a new ring, extended CQs poll through ibv_start_poll(),
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

	attr.wc_flags = IBV_WC_STANDARD_FLAGS | IBV_WC_EX_WITH_COMPLETION_TIMESTAMP;
	errno = 0;
	cq = ibv_create_cq_ex(ctx, &attr);
	ok(!cq && errno == EOPNOTSUPP,
	   "completion timestamps are refused with EOPNOTSUPP (%s)",
	   cq ? "created" : strerror(errno));
	if (cq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(cq));
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
	const char *name = "frdma0";
	struct ibv_device_attr da;
	struct ibv_context *ctx;
	int opt, ret;

	while ((opt = getopt(argc, argv, "d:")) != -1) {
		if (opt != 'd') {
			fprintf(stderr, "usage: %s [-d DEVICE]\n", argv[0]);
			return 2;
		}
		name = optarg;
	}

	ctx = open_device_by_name(name);
	if (!ok(ctx != NULL, "open %s", name))
		return tap_done();
	ret = ibv_query_device(ctx, &da);
	if (ok(!ret, "ibv_query_device: max_cqe %d", ret ? -1 : da.max_cqe)) {
		test_sizes(ctx, da.max_cqe);
		test_resize(ctx, da.max_cqe);
		test_cq_ex(ctx);
		test_channel(ctx);
		test_many(ctx);
		test_bad_mmap(ctx);
	}
	ok(!ibv_close_device(ctx), "ibv_close_device");
	return tap_done();
}
