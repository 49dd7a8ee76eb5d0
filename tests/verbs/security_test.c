// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * security_test -d DEVICE: remote access violations.
 *
 * For each violation, a fresh pair of loopback RC QPs (tests/verbs/
 * loopback.h) in one PD, the responder's target MR a 5000-byte range
 * starting and ending mid-page inside a 64 KiB buffer of random bytes.
 * The requester posts the offending RDMA WRITE, WRITE_WITH_IMM, READ or
 * atomic, followed by a valid RDMA WRITE in the same ibv_post_send().
 * Then:
 *
 *   - the offending WR completes with IBV_WC_REM_ACCESS_ERR;
 *   - the WR behind it completes with IBV_WC_WR_FLUSH_ERR;
 *   - the requester's QP is in the error state (ibv_query_qp), and so is
 *     the responder's (IBTA: a responder access violation is a class C
 *     error, which moves the responder QP to error);
 *   - no byte of either side's buffers changed: not the canary bytes
 *     around every MR, not the target MR itself, not the local MR a READ
 *     or atomic would have written.
 *
 * Violations: a wrong rkey (key byte changed) for WRITE, READ and atomics;
 * an rkey of an MR in another PD; addresses and lengths past the MR's end,
 * before its start, one byte too long, wrapping 2^64; atomics past the end;
 * an MR without REMOTE_WRITE, REMOTE_READ or REMOTE_ATOMIC; a QP without
 * remote write access; an rkey used after its MR was deregistered.
 */
#include <inttypes.h>
#include <sys/mman.h>

#include "loopback.h"
#include "tap.h"

#define AREA		(64UL << 10)
#define TGT_OFF		(4096 + 100)	/* target MR: mid-page start ... */
#define TGT_LEN		5000		/* ... and mid-page end */
#define OK_OFF		32768		/* a valid MR for the follow-up WR */
#define OK_LEN		4096

enum key { KEY_GOOD, KEY_BAD_BYTE, KEY_DEREG };

struct vcase {
	const char *what;
	enum ibv_wr_opcode op;
	int other_pd;		/* target MR registered in another PD */
	int access;		/* target MR access */
	enum key key;
	int64_t addr_off;	/* remote address relative to the MR start */
	bool abs_addr;		/* addr_off is the absolute address */
	uint32_t len;
	int qp_access;		/* responder QP access flags, 0 = all */
};

/*
 * A WRITE to a QP whose access flags lack REMOTE_WRITE is an operation
 * the QP does not support: rdma_rxe answers it with an Invalid Request
 * NAK (IBV_WC_REM_INV_REQ_ERR), others with a Remote Access Error; both
 * are IBTA's.
 */

#define ALL (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
	     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)

/* The first 8-byte aligned word whose end lies past the MR's end. */
#define STRADDLE	(((TGT_OFF + TGT_LEN) & ~7) - TGT_OFF)
#define PAST_END	(((TGT_OFF + TGT_LEN + 7) & ~7) - TGT_OFF)

static const struct vcase cases[] = {
	{ "RDMA_WRITE with a wrong rkey (key byte changed)",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_BAD_BYTE, 0, false, 64, 0 },
	{ "RDMA_WRITE_WITH_IMM with a wrong rkey",
	  IBV_WR_RDMA_WRITE_WITH_IMM, 0, ALL, KEY_BAD_BYTE, 0, false, 64, 0 },
	{ "RDMA_READ with a wrong rkey",
	  IBV_WR_RDMA_READ, 0, ALL, KEY_BAD_BYTE, 0, false, 64, 0 },
	{ "ATOMIC_FETCH_AND_ADD with a wrong rkey",
	  IBV_WR_ATOMIC_FETCH_AND_ADD, 0, ALL, KEY_BAD_BYTE, 4, false, 8, 0 },
	{ "ATOMIC_CMP_AND_SWP with a wrong rkey",
	  IBV_WR_ATOMIC_CMP_AND_SWP, 0, ALL, KEY_BAD_BYTE, 4, false, 8, 0 },
	{ "RDMA_WRITE with the rkey of an MR in another PD",
	  IBV_WR_RDMA_WRITE, 1, ALL, KEY_GOOD, 0, false, 64, 0 },
	{ "RDMA_READ with the rkey of an MR in another PD",
	  IBV_WR_RDMA_READ, 1, ALL, KEY_GOOD, 0, false, 64, 0 },
	{ "ATOMIC_FETCH_AND_ADD with the rkey of an MR in another PD",
	  IBV_WR_ATOMIC_FETCH_AND_ADD, 1, ALL, KEY_GOOD, 4, false, 8, 0 },
	{ "RDMA_WRITE straddling the MR's end (8 bytes in, 8 past)",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_GOOD, TGT_LEN - 8, false, 16, 0 },
	{ "RDMA_WRITE of 1 byte at the MR's end",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_GOOD, TGT_LEN, false, 1, 0 },
	{ "RDMA_WRITE starting 1 byte before the MR",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_GOOD, -1, false, 2, 0 },
	{ "RDMA_WRITE of the MR's length + 1 from its start",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_GOOD, 0, false, TGT_LEN + 1, 0 },
	{ "RDMA_WRITE whose address + length wraps 2^64",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_GOOD, (int64_t)0xfffffffffffffff0ULL,
	  true, 32, 0 },
	{ "RDMA_READ straddling the MR's end",
	  IBV_WR_RDMA_READ, 0, ALL, KEY_GOOD, TGT_LEN - 4, false, 8, 0 },
	{ "RDMA_READ whose address + length wraps 2^64",
	  IBV_WR_RDMA_READ, 0, ALL, KEY_GOOD, (int64_t)0xfffffffffffffff8ULL,
	  true, 16, 0 },
	{ "ATOMIC_FETCH_AND_ADD on a word straddling the MR's end",
	  IBV_WR_ATOMIC_FETCH_AND_ADD, 0, ALL, KEY_GOOD, STRADDLE, false, 8, 0 },
	{ "ATOMIC_CMP_AND_SWP on the first word past the MR's end",
	  IBV_WR_ATOMIC_CMP_AND_SWP, 0, ALL, KEY_GOOD, PAST_END, false, 8, 0 },
	{ "RDMA_WRITE to an MR without REMOTE_WRITE",
	  IBV_WR_RDMA_WRITE, 0, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
	  IBV_ACCESS_REMOTE_ATOMIC, KEY_GOOD, 0, false, 64, 0 },
	{ "RDMA_WRITE_WITH_IMM to an MR without REMOTE_WRITE",
	  IBV_WR_RDMA_WRITE_WITH_IMM, 0, IBV_ACCESS_LOCAL_WRITE |
	  IBV_ACCESS_REMOTE_READ, KEY_GOOD, 0, false, 64, 0 },
	{ "RDMA_READ from an MR without REMOTE_READ",
	  IBV_WR_RDMA_READ, 0, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
	  KEY_GOOD, 0, false, 64, 0 },
	{ "RDMA_READ from an MR registered with no access at all",
	  IBV_WR_RDMA_READ, 0, 0, KEY_GOOD, 0, false, 64, 0 },
	{ "ATOMIC_FETCH_AND_ADD on an MR without REMOTE_ATOMIC",
	  IBV_WR_ATOMIC_FETCH_AND_ADD, 0, IBV_ACCESS_LOCAL_WRITE |
	  IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ, KEY_GOOD, 4, false,
	  8, 0 },
	{ "RDMA_WRITE to a QP without remote write access (valid MR)",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_GOOD, 0, false, 64,
	  IBV_ACCESS_REMOTE_READ },
	{ "RDMA_WRITE with an rkey after its MR was deregistered",
	  IBV_WR_RDMA_WRITE, 0, ALL, KEY_DEREG, 0, false, 64, 0 },
	{ "RDMA_READ with an rkey after its MR was deregistered",
	  IBV_WR_RDMA_READ, 0, ALL, KEY_DEREG, 0, false, 64, 0 },
	{ "ATOMIC_CMP_AND_SWP with an rkey after its MR was deregistered",
	  IBV_WR_ATOMIC_CMP_AND_SWP, 0, ALL, KEY_DEREG, 4, false, 8, 0 },
};

static struct ibv_context *ctx;
static struct ibv_pd *pd, *pd2;
static union ibv_gid gid;
static int gid_index, rd_atomic;
static uint8_t *la, *ra, *la_copy, *ra_copy;	/* local, remote areas */
static uint64_t rng = 88172645463325252ULL;

static uint8_t *area(void)
{
	uint8_t *p = mmap(NULL, AREA, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void fill(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		p[i] = rng;
	}
}

/* First changed byte of @p against @copy, as an offset, or -1. */
static long changed(const uint8_t *p, const uint8_t *copy)
{
	size_t i;

	if (!memcmp(p, copy, AREA))
		return -1;
	for (i = 0; i < AREA && p[i] == copy[i]; i++)
		;
	return i;
}

static const char *where(long off, const char *side, char *buf, size_t len)
{
	const char *what;

	if (side[0] == 'r' && off >= TGT_OFF && off < TGT_OFF + TGT_LEN)
		what = "inside the target MR";
	else if (off >= OK_OFF && off < OK_OFF + OK_LEN)
		what = "inside the follow-up WR's MR";
	else if (side[0] == 'l' && off >= TGT_OFF && off < TGT_OFF + TGT_LEN)
		what = "inside the local MR";
	else
		what = "outside every MR (a canary)";
	snprintf(buf, len, "%s byte at offset %ld changed, %s", side, off, what);
	return buf;
}

static void run_case(int n, const struct vcase *c)
{
	struct ibv_cq *acq = NULL, *bcq = NULL;
	struct ibv_qp *a = NULL, *b = NULL;
	struct ibv_mr *tmr = NULL, *lmr = NULL, *okmr = NULL, *lokmr = NULL;
	struct ibv_sge sge, sge2;
	struct ibv_send_wr wr[2], *bad;
	struct ibv_wc wc[2];
	uint32_t rkey;
	uint64_t raddr;
	int ret, got;
	long off;
	char buf[160];

	diag("case %d: %s", n, c->what);
	fill(la, AREA);
	fill(ra, AREA);

	acq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	bcq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	if (acq && bcq) {
		a = lb_create_qp(pd, acq, acq, 4, 1, 0);
		b = lb_create_qp(pd, bcq, bcq, 4, 1, 0);
	}
	tmr = ibv_reg_mr(c->other_pd ? pd2 : pd, ra + TGT_OFF, TGT_LEN, c->access);
	okmr = ibv_reg_mr(pd, ra + OK_OFF, OK_LEN, ALL);
	lmr = ibv_reg_mr(pd, la + TGT_OFF, TGT_LEN, IBV_ACCESS_LOCAL_WRITE);
	lokmr = ibv_reg_mr(pd, la + OK_OFF, OK_LEN, IBV_ACCESS_LOCAL_WRITE);
	if (!ok(a && b && tmr && okmr && lmr && lokmr,
		"%s: QPs and MRs set up (%s)", c->what,
		a && b && tmr && okmr && lmr && lokmr ? "ok" : strerror(errno)))
		goto out;
	ret = lb_connect_pair(a, b, &gid, gid_index, rd_atomic);
	if (!ret && c->qp_access) {
		struct ibv_qp_attr qa = { .qp_access_flags = c->qp_access };

		ret = ibv_modify_qp(b, &qa, IBV_QP_ACCESS_FLAGS);
	}
	if (!ok(!ret, "  QPs connected%s (%s)",
		c->qp_access ? ", responder's access flags reduced" : "",
		strerror(ret)))
		goto out;

	rkey = tmr->rkey;
	if (c->key == KEY_BAD_BYTE)
		rkey = (rkey & ~0xffu) | ((rkey + 0x5a) & 0xff);
	if (c->key == KEY_DEREG) {
		ret = ibv_dereg_mr(tmr);
		tmr = NULL;
		if (!ok(!ret, "  the target MR deregistered (%s)", strerror(ret)))
			goto out;
	}
	raddr = c->abs_addr ? (uint64_t)c->addr_off :
		(uint64_t)(uintptr_t)(ra + TGT_OFF) + c->addr_off;

	/* Snapshots after registration: nothing may change from here on. */
	memcpy(la_copy, la, AREA);
	memcpy(ra_copy, ra, AREA);

	memset(wr, 0, sizeof(wr));
	sge.addr = (uintptr_t)(la + TGT_OFF);
	sge.length = c->len;
	sge.lkey = lmr->lkey;
	wr[0].wr_id = 1;
	wr[0].opcode = c->op;
	wr[0].send_flags = IBV_SEND_SIGNALED;
	wr[0].sg_list = &sge;
	wr[0].num_sge = 1;
	wr[0].imm_data = htobe32(0x12345678);
	if (c->op == IBV_WR_ATOMIC_FETCH_AND_ADD ||
	    c->op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		wr[0].wr.atomic.remote_addr = raddr;
		wr[0].wr.atomic.rkey = rkey;
		wr[0].wr.atomic.compare_add = 1;
		wr[0].wr.atomic.swap = 2;
		/* the local 8-byte word: aligned */
		sge.addr = ((uintptr_t)(la + TGT_OFF) + 7) & ~(uintptr_t)7;
	} else {
		wr[0].wr.rdma.remote_addr = raddr;
		wr[0].wr.rdma.rkey = rkey;
	}
	if (c->len > TGT_LEN) {
		/* the local side needs room for the whole length */
		ibv_dereg_mr(lmr);
		lmr = ibv_reg_mr(pd, la, AREA / 2, IBV_ACCESS_LOCAL_WRITE);
		if (!ok(lmr != NULL, "  a larger local MR"))
			goto out;
		sge.addr = (uintptr_t)la;
		sge.lkey = lmr->lkey;
		memcpy(la_copy, la, AREA);
	}
	/* The follow-up: a valid 8-byte WRITE into the other MR. */
	sge2.addr = (uintptr_t)(la + OK_OFF);
	sge2.length = 8;
	sge2.lkey = lokmr->lkey;
	wr[0].next = &wr[1];
	wr[1].wr_id = 2;
	wr[1].opcode = IBV_WR_RDMA_WRITE;
	wr[1].send_flags = IBV_SEND_SIGNALED;
	wr[1].sg_list = &sge2;
	wr[1].num_sge = 1;
	wr[1].wr.rdma.remote_addr = (uintptr_t)(ra + OK_OFF);
	wr[1].wr.rdma.rkey = okmr->rkey;

	if (c->op == IBV_WR_RDMA_WRITE_WITH_IMM) {
		struct ibv_recv_wr rwr = { .wr_id = 9 }, *rbad;

		if (!ok(!ibv_post_recv(b, &rwr, &rbad), "  ibv_post_recv"))
			goto out;
	}

	ret = ibv_post_send(a, wr, &bad);
	if (!ok(!ret, "  ibv_post_send of the violation and a valid WRITE (%s)",
		strerror(ret)))
		goto out;
	/*
	 * The violation's completion within the watchdog bound; the flush
	 * behind it follows at once in any implementation, so a shorter
	 * bound keeps a missing flush from costing a minute per case.
	 */
	got = lb_poll(acq, wc, 1);
	if (got == 1)
		got += lb_poll_ms(acq, wc + 1, 1, 10000);
	if (!ok(got >= 1 && wc[0].wr_id == 1 &&
		(wc[0].status == IBV_WC_REM_ACCESS_ERR ||
		 (c->qp_access && wc[0].status == IBV_WC_REM_INV_REQ_ERR)),
		"  it completes with IBV_WC_REM_ACCESS_ERR%s (%s)",
		c->qp_access ? " or IBV_WC_REM_INV_REQ_ERR" : "",
		got < 1 ? "no completion" : wc[0].wr_id != 1 ? "a different WR first" :
		ibv_wc_status_str(wc[0].status)))
		diag("    completion: wr_id %" PRIu64 " status %d", got >= 1 ? wc[0].wr_id : 0,
		     got >= 1 ? (int)wc[0].status : -1);
	ok(got == 2 && wc[1].wr_id == 2 && wc[1].status == IBV_WC_WR_FLUSH_ERR,
	   "  the WR behind it is flushed (%s)",
	   got < 2 ? "no completion" : ibv_wc_status_str(wc[1].status));
	ok(lb_qp_state(a) == IBV_QPS_ERR, "  the requester's QP is in error (%s)",
	   lb_state_str(lb_qp_state(a)));
	ok(lb_qp_state(b) == IBV_QPS_ERR, "  the responder's QP is in error (%s)",
	   lb_state_str(lb_qp_state(b)));

	off = changed(ra, ra_copy);
	ok(off < 0, "  the responder's buffer is unchanged%s%s",
	   off < 0 ? "" : ": ", off < 0 ? "" : where(off, "remote", buf, sizeof(buf)));
	off = changed(la, la_copy);
	ok(off < 0, "  the requester's buffer is unchanged%s%s",
	   off < 0 ? "" : ": ", off < 0 ? "" : where(off, "local", buf, sizeof(buf)));
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (acq)
		ibv_destroy_cq(acq);
	if (bcq)
		ibv_destroy_cq(bcq);
	if (tmr)
		ibv_dereg_mr(tmr);
	if (okmr)
		ibv_dereg_mr(okmr);
	if (lmr)
		ibv_dereg_mr(lmr);
	if (lokmr)
		ibv_dereg_mr(lokmr);
}

int main(int argc, char **argv)
{
	struct ibv_device_attr da;
	const char *dev;
	unsigned int i;

	ctx = lb_test_open(argc, argv, NULL, &dev);
	if (!ok(ctx != NULL, "open %s", dev))
		return tap_done();
	if (!ok(!ibv_query_device(ctx, &da), "ibv_query_device"))
		return tap_done();
	if (!ok(!lb_find_gid(ctx, &gid_index, &gid), "%s has a RoCE v2 IPv4 GID", dev))
		return tap_done();
	rd_atomic = da.max_qp_rd_atom < 16 ? da.max_qp_rd_atom : 16;
	if (rd_atomic < 1)
		rd_atomic = 1;
	pd = ibv_alloc_pd(ctx);
	pd2 = ibv_alloc_pd(ctx);
	la = area();
	ra = area();
	la_copy = malloc(AREA);
	ra_copy = malloc(AREA);
	if (!ok(pd && pd2 && la && ra && la_copy && ra_copy, "two PDs and buffers"))
		return tap_done();

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(i + 1, &cases[i]);

	ok(!ibv_dealloc_pd(pd) && !ibv_dealloc_pd(pd2),
	   "both PDs deallocated (every object of every case is gone)");
	ibv_close_device(ctx);
	return tap_done();
}
