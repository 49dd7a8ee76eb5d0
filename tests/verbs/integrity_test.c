// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * integrity_test -d DEVICE [-s SEED]: data integrity through every opcode.
 *
 * Two RC QPs of this process on DEVICE, connected through the device's
 * RoCE v2 GID (tests/verbs/loopback.h), move seeded random payloads with
 * SEND, SEND_WITH_IMM, RDMA_WRITE, RDMA_WRITE_WITH_IMM, RDMA_READ,
 * ATOMIC_CMP_AND_SWP and ATOMIC_FETCH_AND_ADD, gathered from and scattered
 * to 1, 2, 3 and max_sge SGEs at random offsets with random gaps, and
 * inline.  The memory regions start and end in the middle of pages, lie
 * within one page, cross 4 KiB boundaries and cross a 2 MiB (THP)
 * boundary of buffers that ask for transparent huge pages; two of the
 * geometries run again on MAP_SHARED memfd (shmem) buffers.
 *
 * The test keeps a shadow copy of both sides' buffers and applies to it
 * what each operation must do; after every operation the buffers must
 * equal their shadows over the MR and 8 KiB either side of it, so a byte
 * written out of place, out of an MR, or not at all fails the test, and a
 * checksum of the payload computed at the sender before the operation must
 * equal the checksum of what the receiver's scatter list holds after it.
 * Completions are checked for status, opcode, byte_len, immediate data and
 * wr_id.  Inline sends overwrite their source right after ibv_post_send():
 * the data sent must be what was there at the call.
 *
 * The seed is printed; -s SEED repeats a run.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sys/mman.h>

#include "loopback.h"
#include "tap.h"

#define AREA		(8UL << 20)
#define THP		(2UL << 20)
#define GUARD		8192UL
#define MAX_SGE		16
#define MAX_MSG		(256UL << 10)
#define CHAIN		8

enum op {
	OP_SEND, OP_SEND_IMM, OP_WRITE, OP_WRITE_IMM, OP_READ, OP_NR
};

static const char *const op_name[] = {
	"SEND", "SEND_WITH_IMM", "RDMA_WRITE", "RDMA_WRITE_WITH_IMM", "RDMA_READ",
};

static const enum ibv_wr_opcode op_wr[] = {
	IBV_WR_SEND, IBV_WR_SEND_WITH_IMM, IBV_WR_RDMA_WRITE,
	IBV_WR_RDMA_WRITE_WITH_IMM, IBV_WR_RDMA_READ,
};

static const enum ibv_wc_opcode op_wc[] = {
	IBV_WC_SEND, IBV_WC_SEND, IBV_WC_RDMA_WRITE, IBV_WC_RDMA_WRITE,
	IBV_WC_RDMA_READ,
};

struct side {
	uint8_t *buf;		/* AREA bytes, THP aligned */
	uint8_t *shadow;	/* what buf must hold */
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;	/* the current geometry's MR */
	size_t off, len;	/* the MR: buf + off, len bytes */
};

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static struct side A, B;	/* A requests, B responds */
static uint32_t max_sge, max_inline;
static uint64_t rng;
static uint64_t next_wr_id = 1;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

/* uniform in [lo, hi] */
static size_t rnd_in(size_t lo, size_t hi)
{
	return hi <= lo ? lo : lo + rnd() % (hi - lo + 1);
}

static void fill_random(uint8_t *p, size_t n)
{
	uint64_t v;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		v = rnd();
		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] = rnd();
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT 0xcbf29ce484222325ULL

/* An SGE list over one side's MR, in MR order, with random gaps. */
struct layout {
	int n;
	size_t total;
	struct ibv_sge sge[MAX_SGE];
	size_t off[MAX_SGE];	/* offsets in the side's buf */
};

/*
 * @n pieces totalling @total bytes inside @s's MR, each at least one
 * byte, in ascending order with random gaps.  Returns false when they
 * cannot fit.
 */
static bool make_layout(struct side *s, int n, size_t total, struct layout *l)
{
	size_t slack, pos, left, piece;
	int i;

	if (total < (size_t)n || total > s->len)
		return false;
	slack = s->len - total;
	l->n = n;
	l->total = total;
	pos = 0;
	left = total;
	for (i = 0; i < n; i++) {
		pos += rnd_in(0, slack / (n + 1));
		piece = i == n - 1 ? left : rnd_in(1, left - (n - 1 - i));
		l->off[i] = s->off + pos;
		l->sge[i].addr = (uintptr_t)(s->buf + s->off + pos);
		l->sge[i].length = piece;
		l->sge[i].lkey = s->mr->lkey;
		pos += piece;
		left -= piece;
	}
	return true;
}

/* Copy @l's bytes of @s's shadow (or buffer) out to @out / in from @in. */
static void gather(const uint8_t *base, const struct layout *l, uint8_t *out,
		   size_t limit)
{
	size_t done = 0, k;
	int i;

	for (i = 0; i < l->n && done < limit; i++) {
		k = l->sge[i].length;
		if (k > limit - done)
			k = limit - done;
		memcpy(out + done, base + l->off[i], k);
		done += k;
	}
}

static void scatter(uint8_t *base, const struct layout *l, const uint8_t *in,
		    size_t len)
{
	size_t done = 0, k;
	int i;

	for (i = 0; i < l->n && done < len; i++) {
		k = l->sge[i].length;
		if (k > len - done)
			k = len - done;
		memcpy(base + l->off[i], in + done, k);
		done += k;
	}
}

static uint64_t layout_sum(const uint8_t *base, const struct layout *l,
			   size_t len)
{
	uint64_t h = FNV_INIT;
	size_t done = 0, k;
	int i;

	for (i = 0; i < l->n && done < len; i++) {
		k = l->sge[i].length;
		if (k > len - done)
			k = len - done;
		h = fnv1a(h, base + l->off[i], k);
		done += k;
	}
	return h;
}

/* The side's buffer equals its shadow over its MR and GUARD either side. */
static bool side_intact(struct side *s, char *why, size_t whylen)
{
	size_t lo = s->off > GUARD ? s->off - GUARD : 0;
	size_t hi = s->off + s->len + GUARD;
	size_t i;

	if (hi > AREA)
		hi = AREA;
	if (!memcmp(s->buf + lo, s->shadow + lo, hi - lo))
		return true;
	for (i = lo; i < hi; i++)
		if (s->buf[i] != s->shadow[i])
			break;
	snprintf(why, whylen, "byte %+ld from the MR start is %#x, expected %#x",
		 (long)i - (long)s->off, s->buf[i], s->shadow[i]);
	return false;
}

static bool both_intact(char *why, size_t whylen)
{
	char w[160];

	if (!side_intact(&A, w, sizeof(w))) {
		snprintf(why, whylen, "requester: %s", w);
		return false;
	}
	if (!side_intact(&B, w, sizeof(w))) {
		snprintf(why, whylen, "responder: %s", w);
		return false;
	}
	return true;
}

static bool check_wc(const struct ibv_wc *wc, uint64_t wr_id,
		     enum ibv_wc_opcode opcode, char *why, size_t whylen)
{
	if (wc->status != IBV_WC_SUCCESS) {
		snprintf(why, whylen, "completion status %s (%d), vendor_err %#x",
			 ibv_wc_status_str(wc->status), wc->status, wc->vendor_err);
		return false;
	}
	if (wc->wr_id != wr_id) {
		snprintf(why, whylen, "completion wr_id %" PRIu64 ", expected %" PRIu64,
			 wc->wr_id, wr_id);
		return false;
	}
	if (wc->opcode != opcode) {
		snprintf(why, whylen, "completion opcode %d, expected %d",
			 wc->opcode, opcode);
		return false;
	}
	return true;
}

static bool post_recv(struct side *s, const struct layout *l, uint64_t wr_id)
{
	struct ibv_recv_wr wr = {
		.wr_id = wr_id, .sg_list = (struct ibv_sge *)l->sge, .num_sge = l->n,
	}, *bad;

	return ibv_post_recv(s->qp, &wr, &bad) == 0;
}

/*
 * One operation of @op from A to B (or, for READ, from B into A) of @len
 * bytes through @nsge SGEs on A's side (0: inline).  Returns false with
 * @why on failure.
 */
static bool one_op(enum op op, int nsge, size_t len, char *why, size_t whylen)
{
	bool inl = nsge == 0, imm = op == OP_SEND_IMM || op == OP_WRITE_IMM;
	bool send = op == OP_SEND || op == OP_SEND_IMM;
	struct layout local, remote;
	struct ibv_send_wr wr, *bad;
	struct ibv_wc wc, rwc;
	uint64_t wr_id = next_wr_id++, rwr_id = next_wr_id++, sum_src, sum_dst;
	uint32_t immv = (uint32_t)rnd();
	size_t roff = 0;
	uint8_t *stream;
	int rsge, ret;

	if (!make_layout(&A, inl ? 1 : nsge, len, &local)) {
		snprintf(why, whylen, "no room for %zu bytes in %d SGEs", len, nsge);
		return false;
	}
	stream = malloc(len);
	if (!stream) {
		snprintf(why, whylen, "out of memory");
		return false;
	}

	/* The remote side: a scatter list for sends, else one range. */
	if (send) {
		rsge = (int)rnd_in(1, max_sge);
		if (rsge > (int)len)
			rsge = len;
		if (!make_layout(&B, rsge, rnd_in(len, len + (B.len - len) / 4),
				 &remote))
			make_layout(&B, 1, len, &remote);
	} else {
		roff = rnd_in(0, B.len - len);
		remote.n = 1;
		remote.total = len;
		remote.off[0] = B.off + roff;
		remote.sge[0].addr = (uintptr_t)(B.buf + B.off + roff);
		remote.sge[0].length = len;
		remote.sge[0].lkey = B.mr->lkey;
	}

	/* The payload as it must arrive, and the shadows after the op. */
	if (op == OP_READ) {
		gather(B.shadow, &remote, stream, len);
		sum_src = layout_sum(B.buf, &remote, len);
		scatter(A.shadow, &local, stream, len);
	} else {
		gather(A.shadow, &local, stream, len);
		sum_src = layout_sum(A.buf, &local, len);
		scatter(B.shadow, &remote, stream, len);
	}

	if ((send || op == OP_WRITE_IMM)) {
		struct layout r = remote;

		/* WRITE_WITH_IMM consumes a receive; its SGE stays untouched. */
		if (!send) {
			if (!make_layout(&B, 1, 1 + rnd() % 64, &r)) {
				snprintf(why, whylen, "no room for a receive");
				free(stream);
				return false;
			}
		}
		if (!post_recv(&B, &r, rwr_id)) {
			snprintf(why, whylen, "ibv_post_recv: %s", strerror(errno));
			free(stream);
			return false;
		}
	}

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id;
	wr.opcode = op_wr[op];
	wr.send_flags = IBV_SEND_SIGNALED | (inl ? IBV_SEND_INLINE : 0);
	wr.sg_list = local.sge;
	wr.num_sge = local.n;
	if (imm)
		wr.imm_data = htobe32(immv);
	if (!send) {
		wr.wr.rdma.remote_addr = remote.sge[0].addr;
		wr.wr.rdma.rkey = B.mr->rkey;
	}
	ret = ibv_post_send(A.qp, &wr, &bad);
	if (ret) {
		snprintf(why, whylen, "ibv_post_send: %s", strerror(ret));
		free(stream);
		return false;
	}
	if (inl) {
		/* The data was taken at the call: scribble over the source. */
		fill_random(A.buf + local.off[0], len);
		memcpy(A.shadow + local.off[0], A.buf + local.off[0], len);
	}

	ret = lb_poll(A.cq, &wc, 1);
	if (ret != 1) {
		snprintf(why, whylen, "no send completion (%d)", ret);
		free(stream);
		return false;
	}
	if (!check_wc(&wc, wr_id, op_wc[op], why, whylen)) {
		free(stream);
		return false;
	}
	if (send || op == OP_WRITE_IMM) {
		enum ibv_wc_opcode want = send ? IBV_WC_RECV : IBV_WC_RECV_RDMA_WITH_IMM;

		ret = lb_poll(B.cq, &rwc, 1);
		if (ret != 1) {
			snprintf(why, whylen, "no receive completion (%d)", ret);
			free(stream);
			return false;
		}
		if (!check_wc(&rwc, rwr_id, want, why, whylen)) {
			strncat(why, " (receive)", whylen - strlen(why) - 1);
			free(stream);
			return false;
		}
		if (rwc.byte_len != len) {
			snprintf(why, whylen, "receive byte_len %u, expected %zu",
				 rwc.byte_len, len);
			free(stream);
			return false;
		}
		if (imm != !!(rwc.wc_flags & IBV_WC_WITH_IMM) ||
		    (imm && be32toh(rwc.imm_data) != immv)) {
			snprintf(why, whylen, "receive immediate %#x (flags %#x), expected %s%#x",
				 be32toh(rwc.imm_data), rwc.wc_flags,
				 imm ? "" : "none, not ", immv);
			free(stream);
			return false;
		}
		if (rwc.qp_num != B.qp->qp_num) {
			snprintf(why, whylen, "receive qp_num %u, expected %u",
				 rwc.qp_num, B.qp->qp_num);
			free(stream);
			return false;
		}
	}
	free(stream);

	if (!both_intact(why, whylen))
		return false;
	sum_dst = op == OP_READ ? layout_sum(A.buf, &local, len) :
				  layout_sum(B.buf, &remote, len);
	if (sum_src != sum_dst) {
		snprintf(why, whylen, "checksum %#" PRIx64 " sent, %#" PRIx64 " received",
			 sum_src, sum_dst);
		return false;
	}
	return true;
}

static uint64_t *aligned8(struct side *s)
{
	uintptr_t lo = ((uintptr_t)(s->buf + s->off) + 7) & ~(uintptr_t)7;
	uintptr_t hi = (uintptr_t)(s->buf + s->off + s->len - 8);

	return (uint64_t *)(lo + ((hi - lo) / 8 ? rnd() % ((hi - lo) / 8 + 1) : 0) * 8);
}

/* One atomic from A on a random aligned word of B's MR. */
static bool one_atomic(bool cas, bool match, char *why, size_t whylen)
{
	uint64_t *remote = aligned8(&B), *local = aligned8(&A);
	uint64_t old, arg = rnd(), swap = rnd(), want, wr_id = next_wr_id++;
	struct ibv_sge sge = {
		.addr = (uintptr_t)local, .length = 8, .lkey = A.mr->lkey,
	};
	struct ibv_send_wr wr, *bad;
	struct ibv_wc wc;
	size_t roff = (uint8_t *)remote - B.buf, loff = (uint8_t *)local - A.buf;
	int ret;

	memcpy(&old, B.shadow + roff, 8);
	if (cas && match)
		arg = old;
	if (cas)
		want = old == arg ? swap : old;
	else
		want = old + arg;
	memcpy(B.shadow + roff, &want, 8);
	memcpy(A.shadow + loff, &old, 8);

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id;
	wr.opcode = cas ? IBV_WR_ATOMIC_CMP_AND_SWP : IBV_WR_ATOMIC_FETCH_AND_ADD;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.wr.atomic.remote_addr = (uintptr_t)remote;
	wr.wr.atomic.compare_add = arg;
	wr.wr.atomic.swap = swap;
	wr.wr.atomic.rkey = B.mr->rkey;
	ret = ibv_post_send(A.qp, &wr, &bad);
	if (ret) {
		snprintf(why, whylen, "ibv_post_send: %s", strerror(ret));
		return false;
	}
	ret = lb_poll(A.cq, &wc, 1);
	if (ret != 1) {
		snprintf(why, whylen, "no completion (%d)", ret);
		return false;
	}
	if (!check_wc(&wc, wr_id, cas ? IBV_WC_COMP_SWAP : IBV_WC_FETCH_ADD,
		      why, whylen))
		return false;
	if (*local != old) {
		snprintf(why, whylen, "returned %#" PRIx64 ", the word held %#" PRIx64,
			 *local, old);
		return false;
	}
	if (*remote != want) {
		snprintf(why, whylen, "the word is %#" PRIx64 ", expected %#" PRIx64,
			 *remote, want);
		return false;
	}
	return both_intact(why, whylen);
}

/*
 * A chain of CHAIN work requests in one ibv_post_send(), each on its own
 * slice of the MRs: WRITE, WRITE_WITH_IMM, SEND and READ in turn.  With
 * @last_only only the last is signaled and only it completes on the send
 * side.
 */
static bool chain(bool last_only, char *why, size_t whylen)
{
	struct ibv_send_wr wr[CHAIN], *bad;
	struct ibv_recv_wr rwr[CHAIN], *rbad;
	struct ibv_sge sge[CHAIN], rsge[CHAIN];
	struct ibv_wc wc[CHAIN], rwc[CHAIN];
	size_t slice = A.len / CHAIN, len, off;
	int i, nrecv = 0, want, ret;
	uint64_t base = next_wr_id;

	next_wr_id += 2 * CHAIN;
	if (slice < 2) {
		snprintf(why, whylen, "MR too small for %d slices", CHAIN);
		return false;
	}
	memset(wr, 0, sizeof(wr));
	for (i = 0; i < CHAIN; i++) {
		enum op op = (enum op[]){ OP_WRITE, OP_WRITE_IMM, OP_SEND, OP_READ }[i % 4];

		off = i * slice;
		len = rnd_in(1, slice < MAX_MSG ? slice : MAX_MSG);
		sge[i].addr = (uintptr_t)(A.buf + A.off + off);
		sge[i].length = len;
		sge[i].lkey = A.mr->lkey;
		wr[i].wr_id = base + i;
		wr[i].next = i + 1 < CHAIN ? &wr[i + 1] : NULL;
		wr[i].opcode = op_wr[op];
		wr[i].sg_list = &sge[i];
		wr[i].num_sge = 1;
		wr[i].send_flags = !last_only || i == CHAIN - 1 ? IBV_SEND_SIGNALED : 0;
		wr[i].imm_data = htobe32(i);
		wr[i].wr.rdma.remote_addr = (uintptr_t)(B.buf + B.off + off);
		wr[i].wr.rdma.rkey = B.mr->rkey;
		if (op == OP_READ)
			memcpy(A.shadow + A.off + off, B.shadow + B.off + off, len);
		else
			memcpy(B.shadow + B.off + off, A.shadow + A.off + off, len);
		if (op == OP_SEND || op == OP_WRITE_IMM) {
			/* receive into the same slice of B */
			rsge[nrecv].addr = (uintptr_t)(B.buf + B.off + off);
			rsge[nrecv].length = op == OP_SEND ? slice : 0;
			rsge[nrecv].lkey = B.mr->lkey;
			rwr[nrecv].wr_id = base + CHAIN + i;
			rwr[nrecv].sg_list = &rsge[nrecv];
			rwr[nrecv].num_sge = op == OP_SEND;
			rwr[nrecv].next = NULL;
			if (nrecv)
				rwr[nrecv - 1].next = &rwr[nrecv];
			nrecv++;
		}
	}
	if (ibv_post_recv(B.qp, rwr, &rbad)) {
		snprintf(why, whylen, "ibv_post_recv: %s", strerror(errno));
		return false;
	}
	ret = ibv_post_send(A.qp, wr, &bad);
	if (ret) {
		snprintf(why, whylen, "ibv_post_send: %s", strerror(ret));
		return false;
	}
	want = last_only ? 1 : CHAIN;
	ret = lb_poll(A.cq, wc, want);
	if (ret != want) {
		snprintf(why, whylen, "%d of %d send completions", ret, want);
		return false;
	}
	for (i = 0; i < want; i++) {
		int k = last_only ? CHAIN - 1 : i;

		if (!check_wc(&wc[i], base + k,
			      wr[k].opcode == IBV_WR_RDMA_READ ? IBV_WC_RDMA_READ :
			      wr[k].opcode == IBV_WR_SEND ? IBV_WC_SEND :
			      IBV_WC_RDMA_WRITE, why, whylen))
			return false;
	}
	ret = lb_poll(B.cq, rwc, nrecv);
	if (ret != nrecv) {
		snprintf(why, whylen, "%d of %d receive completions", ret, nrecv);
		return false;
	}
	for (i = 0; i < nrecv; i++) {
		if (rwc[i].status != IBV_WC_SUCCESS || rwc[i].wr_id != rwr[i].wr_id) {
			snprintf(why, whylen, "receive %d: status %s, wr_id %" PRIu64
				 ", expected %" PRIu64, i,
				 ibv_wc_status_str(rwc[i].status), rwc[i].wr_id,
				 rwr[i].wr_id);
			return false;
		}
	}
	ret = ibv_poll_cq(A.cq, 1, wc);	/* nothing more may come */
	if (ret) {
		snprintf(why, whylen, "%d extra send completions", ret);
		return false;
	}
	return both_intact(why, whylen);
}

struct geometry {
	const char *what;
	size_t off, len;
};

static void run_geometry(const struct geometry *g)
{
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
		     IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
	int layouts[] = { 1, 2, 3, (int)max_sge, 0 };
	char why[256] = "";
	size_t len;
	unsigned int l;
	int op, i;

	diag("MRs of %zu bytes at offset %#zx of a THP-aligned buffer: %s",
	     g->len, g->off, g->what);
	A.off = B.off = g->off;
	A.len = B.len = g->len;
	A.mr = ibv_reg_mr(pd, A.buf + A.off, A.len, access);
	B.mr = ibv_reg_mr(pd, B.buf + B.off, B.len, access);
	if (!ok(A.mr && B.mr, "ibv_reg_mr of %zu bytes at %#zx on both sides (%s)",
		g->len, g->off, A.mr && B.mr ? "ok" : strerror(errno)))
		goto out;

	for (op = 0; op < OP_NR; op++) {
		for (l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++) {
			int nsge = layouts[l];

			if (nsge == 0 && (op == OP_READ || !max_inline))
				continue;
			if (l > 0 && nsge == layouts[l - 1])
				continue;
			if (nsge == 0)
				len = rnd_in(1, max_inline < g->len ? max_inline : g->len);
			else
				len = rnd_in(nsge, g->len < MAX_MSG ? g->len : MAX_MSG);
			ok(one_op(op, nsge, len, why, sizeof(why)),
			   "%s of %zu bytes, %s%d SGE%s%s%s", op_name[op], len,
			   nsge ? "" : "inline, ", nsge ? nsge : 1,
			   nsge <= 1 ? "" : "s", *why ? ": " : "", why);
			*why = 0;
		}
	}
	/* The whole MR at once (capped), both directions. */
	len = g->len < 4 * MAX_MSG ? g->len : 4 * MAX_MSG;
	ok(one_op(OP_WRITE, 1, len, why, sizeof(why)),
	   "RDMA_WRITE of %zu bytes, the whole MR%s%s", len, *why ? ": " : "", why);
	*why = 0;
	ok(one_op(OP_READ, 1, len, why, sizeof(why)),
	   "RDMA_READ of %zu bytes, the whole MR%s%s", len, *why ? ": " : "", why);
	*why = 0;
	ok(one_op(OP_SEND, (int)max_sge, len, why, sizeof(why)),
	   "SEND of %zu bytes, the whole MR, %u SGEs%s%s", len, max_sge,
	   *why ? ": " : "", why);
	*why = 0;

	for (i = 0; i < 2; i++) {
		ok(one_atomic(false, false, why, sizeof(why)),
		   "ATOMIC_FETCH_AND_ADD%s%s", *why ? ": " : "", why);
		*why = 0;
	}
	ok(one_atomic(true, true, why, sizeof(why)),
	   "ATOMIC_CMP_AND_SWP, compare matches%s%s", *why ? ": " : "", why);
	*why = 0;
	ok(one_atomic(true, false, why, sizeof(why)),
	   "ATOMIC_CMP_AND_SWP, compare differs%s%s", *why ? ": " : "", why);
	*why = 0;
	ok(chain(false, why, sizeof(why)),
	   "%d WRs in one ibv_post_send, all signaled%s%s", CHAIN,
	   *why ? ": " : "", why);
	*why = 0;
	ok(chain(true, why, sizeof(why)),
	   "%d WRs in one ibv_post_send, only the last signaled%s%s", CHAIN,
	   *why ? ": " : "", why);
	*why = 0;
out:
	if (A.mr)
		ibv_dereg_mr(A.mr);
	if (B.mr)
		ibv_dereg_mr(B.mr);
	A.mr = B.mr = NULL;
}

static uint8_t *thp_area(void)
{
	uint8_t *p = mmap(NULL, AREA + THP, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	p = (uint8_t *)(((uintptr_t)p + THP - 1) & ~(THP - 1));
	madvise(p, AREA, MADV_HUGEPAGE);
	return p;
}

/* A shared memfd (shmem) buffer: MRs on it take umem's folio path. */
static uint8_t *memfd_area(void)
{
	int fd = memfd_create("integrity", 0);
	uint8_t *p;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, AREA)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static long anon_huge_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	static const struct geometry geos[] = {
		{ "mid-page start and end, within one page",
		  3 * 4096 + 100, 3000 },
		{ "mid-page start and end, across four 4 KiB boundaries",
		  5 * 4096 - 1000, 4 * 4096 + 1777 },
		{ "mid-page start and end, across a 2 MiB (THP) boundary",
		  THP - 9003, 20005 },
		{ "1 MiB + 3 bytes from mid-page, across a 2 MiB boundary",
		  2 * THP - 600001, (1UL << 20) + 3 },
		{ "4 KiB-aligned, one whole 2 MiB page and a page either side",
		  THP - 4096, THP + 8192 },
	};
	unsigned long seed = 0;
	struct ibv_device_attr da;
	struct ibv_qp_init_attr ia;
	struct ibv_qp_attr qa;
	union ibv_gid gid;
	const char *dev;
	unsigned int g;
	int gid_index = 0, rd_atomic;

	dev = lb_args(argc, argv, &seed);
	if (!seed) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		seed = (unsigned long)t.tv_sec * 1000003UL ^ t.tv_nsec ^ getpid();
	}
	rng = seed ? seed : 1;
	diag("seed %lu (repeat with: %s -d %s -s %lu)", seed, argv[0], dev, seed);

	ctx = open_device_by_name(dev);
	if (!ok(ctx != NULL, "open %s", dev))
		return tap_done();
	if (!ok(!ibv_query_device(ctx, &da), "ibv_query_device"))
		return tap_done();
	if (!ok(!lb_find_gid(ctx, &gid_index, &gid), "%s has a RoCE v2 IPv4 GID", dev))
		return tap_done();
	diag("GID index %d", gid_index);

	max_sge = da.max_sge < MAX_SGE ? da.max_sge : MAX_SGE;
	rd_atomic = da.max_qp_rd_atom < 16 ? da.max_qp_rd_atom : 16;
	if (rd_atomic < 1)
		rd_atomic = 1;
	A.buf = thp_area();
	B.buf = thp_area();
	A.shadow = malloc(AREA);
	B.shadow = malloc(AREA);
	if (!ok(A.buf && B.buf && A.shadow && B.shadow, "buffers"))
		return tap_done();
	fill_random(A.buf, AREA);
	fill_random(B.buf, AREA);
	memcpy(A.shadow, A.buf, AREA);
	memcpy(B.shadow, B.buf, AREA);
	diag("AnonHugePages of this process: %ld kB", anon_huge_kb());

	pd = ibv_alloc_pd(ctx);
	A.cq = ibv_create_cq(ctx, 4 * CHAIN, NULL, NULL, 0);
	B.cq = ibv_create_cq(ctx, 4 * CHAIN, NULL, NULL, 0);
	if (!ok(pd && A.cq && B.cq, "a PD and two CQs"))
		return tap_done();
	A.qp = lb_create_qp(pd, A.cq, A.cq, 2 * CHAIN, max_sge, 128);
	B.qp = lb_create_qp(pd, B.cq, B.cq, 2 * CHAIN, max_sge, 128);
	if (!ok(A.qp && B.qp, "two RC QPs with %u SGEs and 128 inline bytes (%s)",
		max_sge, A.qp && B.qp ? "ok" : strerror(errno)))
		return tap_done();
	if (!ibv_query_qp(A.qp, &qa, IBV_QP_CAP, &ia))
		max_inline = ia.cap.max_inline_data;
	if (max_inline > 128)
		max_inline = 128;
	diag("max_sge %u, max_inline_data %u, rd_atomic %d", max_sge,
	     max_inline, rd_atomic);
	if (!ok(!lb_connect_pair(A.qp, B.qp, &gid, gid_index, rd_atomic),
		"QPs %#x and %#x connected to each other through GID index %d",
		A.qp->qp_num, B.qp->qp_num, gid_index))
		return tap_done();

	for (g = 0; g < sizeof(geos) / sizeof(geos[0]); g++)
		run_geometry(&geos[g]);

	/* Again on shared memfd buffers, for two of the geometries. */
	A.buf = memfd_area();
	B.buf = memfd_area();
	if (ok(A.buf && B.buf, "two 8 MiB shared memfd buffers (%s)",
	       A.buf && B.buf ? "ok" : strerror(errno))) {
		fill_random(A.buf, AREA);
		fill_random(B.buf, AREA);
		memcpy(A.shadow, A.buf, AREA);
		memcpy(B.shadow, B.buf, AREA);
		diag("the same operations on MAP_SHARED memfd memory");
		run_geometry(&geos[1]);
		run_geometry(&geos[3]);
	}

	ok(lb_qp_state(A.qp) == IBV_QPS_RTS && lb_qp_state(B.qp) == IBV_QPS_RTS,
	   "both QPs still in RTS (%s, %s)", lb_state_str(lb_qp_state(A.qp)),
	   lb_state_str(lb_qp_state(B.qp)));
	ok(!ibv_destroy_qp(A.qp) && !ibv_destroy_qp(B.qp), "ibv_destroy_qp");
	ok(!ibv_destroy_cq(A.cq) && !ibv_destroy_cq(B.cq), "ibv_destroy_cq");
	ok(!ibv_dealloc_pd(pd), "ibv_dealloc_pd");
	ibv_close_device(ctx);
	diag("seed %lu", seed);
	return tap_done();
}
