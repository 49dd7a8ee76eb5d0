// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Host unit test of how the provider builds work queue entries (wqe.h):
 * the entry strides the uABI prescribes, the verbs checks on a send work
 * request (opcodes per QP type, flags, SGE count, inline length and the
 * opcodes that may carry inline data), the SQE and RQE images written
 * into a ring slot, inline data packed from several buffers, and lists
 * of work requests written into a ring (bad_wr, a full ring, a stale
 * consumer index, the 2^32 wrap).  Needs no device: built and run by
 * `make -C userspace check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wqe.h"

static int n, failed;

static void ok(bool cond, const char *what)
{
	printf("%s %d - %s\n", cond ? "ok" : "not ok", ++n, what);
	failed += !cond;
}

static void test_strides(void)
{
	ok(frdma_sq_shift(0, 0) == 6, "an SQE with no body is 64 bytes");
	ok(frdma_sq_shift(1, 0) == 7, "one SGE needs a 128-byte stride");
	ok(frdma_sq_shift(4, 0) == 7, "four SGEs fit 128 bytes exactly");
	ok(frdma_sq_shift(5, 0) == 8, "five SGEs need 256 bytes");
	ok(frdma_sq_shift(FRDMA_MAX_SGE, 0) == 9 &&
	   (1U << 9) <= FRDMA_MAX_WQE_SIZE, "the most SGEs fit the largest stride");
	ok(frdma_sq_shift(1, 64) == 7, "64 inline bytes fit 128 bytes");
	ok(frdma_sq_shift(1, 65) == 8, "65 inline bytes need 256 bytes");
	ok(frdma_sq_shift(2, FRDMA_MAX_INLINE_DATA) == 9,
	   "the most inline data fits the largest stride");
	ok(frdma_rq_shift(0) == 4 && frdma_rq_shift(1) == 5 &&
	   frdma_rq_shift(2) == 6 && frdma_rq_shift(3) == 6 &&
	   frdma_rq_shift(FRDMA_MAX_SGE) == 9, "RQE strides");
	ok(frdma_sq_stride_ok(8, 5, 100) && !frdma_sq_stride_ok(7, 5, 0) &&
	   !frdma_sq_stride_ok(7, 1, 100), "an SQ stride too small is refused");
	ok(frdma_rq_stride_ok(5, 1) && !frdma_rq_stride_ok(5, 2),
	   "an RQ stride too small is refused");
	ok(!frdma_sq_stride_ok(16, 1, 0) && !frdma_rq_stride_ok(40, 1),
	   "absurd strides are refused");
}

static const struct frdma_sq_limits rc = { .max_sge = 3, .max_inline = 64,
					   .qp_type = IBV_QPT_RC };
static const struct frdma_sq_limits uc = { .max_sge = 3, .max_inline = 64,
					   .qp_type = IBV_QPT_UC };
static const struct frdma_sq_limits ud = { .max_sge = 2, .max_inline = 32,
					   .qp_type = IBV_QPT_UD };

static int check(const struct frdma_sq_limits *l, struct ibv_send_wr *wr)
{
	uint32_t len;

	return frdma_send_wr_check(l, wr, &len);
}

static void test_checks(void)
{
	char buf[128] = "";
	struct ibv_sge sg[4] = {
		{ (uintptr_t)buf, 30, 1 }, { (uintptr_t)buf, 30, 1 },
		{ (uintptr_t)buf, 4, 1 }, { (uintptr_t)buf, 1, 1 },
	};
	struct frdma_ah ah = { .ah_num = 7 };
	struct ibv_send_wr wr = { .sg_list = sg, .num_sge = 3 };
	uint32_t len;
	int op;
	bool all;

	all = true;
	for (op = IBV_WR_RDMA_WRITE; op <= IBV_WR_ATOMIC_FETCH_AND_ADD; op++) {
		wr.opcode = op;
		all &= check(&rc, &wr) == 0;
	}
	ok(all, "RC accepts the seven opcodes with max_send_sge SGEs");
	wr.opcode = IBV_WR_LOCAL_INV;
	ok(check(&rc, &wr) == 0 && check(&uc, &wr) == 0,
	   "RC and UC accept LOCAL_INV");
	wr.wr.ud.ah = &ah.ibv_ah;
	ok(check(&ud, &wr) == EINVAL, "UD refuses LOCAL_INV");
	wr.opcode = IBV_WR_SEND_WITH_INV;
	ok(check(&rc, &wr) == 0 && check(&uc, &wr) == 0 &&
	   check(&ud, &wr) == EINVAL, "SEND_WITH_INV on RC and UC only");
	wr.wr.ud.ah = NULL;
	wr.opcode = IBV_WR_BIND_MW;
	ok(check(&rc, &wr) == EINVAL, "BIND_MW without a window is refused");
	wr.opcode = IBV_WR_ATOMIC_WRITE;
	ok(check(&rc, &wr) == EINVAL,
	   "ATOMIC_WRITE with other than one 8-byte buffer is refused");
	wr.opcode = 200;
	ok(check(&rc, &wr) == EINVAL, "an unknown opcode is refused");

	wr.opcode = IBV_WR_SEND;
	wr.num_sge = 4;
	ok(check(&rc, &wr) == EINVAL, "max_send_sge + 1 SGEs are refused");
	wr.num_sge = -1;
	ok(check(&rc, &wr) == EINVAL, "a negative SGE count is refused");
	wr.num_sge = 0;
	ok(check(&rc, &wr) == 0, "no SGE (a zero-length send) is accepted");
	wr.send_flags = IBV_SEND_IP_CSUM;
	ok(check(&rc, &wr) == EINVAL, "IBV_SEND_IP_CSUM is refused");
	wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_SOLICITED | IBV_SEND_FENCE;
	ok(check(&rc, &wr) == 0, "signaled, solicited, fence are accepted");

	wr.send_flags = IBV_SEND_INLINE;
	wr.num_sge = 4;		/* 30 + 30 + 4 = 64 bytes, then 65 */
	ok(check(&rc, &wr) == EINVAL,
	   "inline data one byte over max_inline_data is refused");
	wr.num_sge = 3;
	ok(frdma_send_wr_check(&rc, &wr, &len) == 0 && len == 64,
	   "inline data of exactly max_inline_data is accepted");
	sg[3].length = 0;
	wr.num_sge = 4;
	ok(frdma_send_wr_check(&rc, &wr, &len) == 0 && len == 64,
	   "inline data is not limited by max_send_sge");
	sg[3].length = 1;
	wr.opcode = IBV_WR_RDMA_READ;
	wr.num_sge = 1;
	ok(check(&rc, &wr) == EINVAL, "inline RDMA READ is refused");
	wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	ok(check(&rc, &wr) == EINVAL, "inline atomics are refused");
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	ok(check(&rc, &wr) == 0, "inline RDMA WRITE with immediate is accepted");

	wr.send_flags = 0;
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	ok(check(&uc, &wr) == 0, "UC accepts RDMA WRITE with immediate");
	wr.opcode = IBV_WR_RDMA_READ;
	ok(check(&uc, &wr) == EINVAL, "UC refuses RDMA READ");
	wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	ok(check(&uc, &wr) == EINVAL, "UC refuses atomics");
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.wr.ud.ah = &ah.ibv_ah;
	ok(check(&ud, &wr) == EINVAL, "UD refuses RDMA WRITE");
	wr.opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
	ok(check(&ud, &wr) == EINVAL, "UD refuses atomics");
	wr.opcode = IBV_WR_SEND_WITH_IMM;
	ok(check(&ud, &wr) == 0, "UD accepts SEND_WITH_IMM");
	wr.wr.ud.ah = NULL;
	ok(check(&ud, &wr) == EINVAL, "UD refuses a send without an AH");
}

/* A slot as a ring holds it: an SQE followed by its body. */
union slot {
	struct frdma_sqe sqe;
	struct frdma_rqe rqe;
	uint8_t b[512];
};

static bool zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

static void test_build(void)
{
	char a[] = "0123456789", b[] = "abc", c[] = "XYZW";
	struct ibv_sge sg[3] = {
		{ (uintptr_t)a, 10, 11 }, { (uintptr_t)b, 3, 12 },
		{ (uintptr_t)c, 4, 13 },
	};
	struct frdma_sq_limits sig = rc;
	struct frdma_ah ah = { .ah_num = 0x1234 };
	struct ibv_send_wr wr = {
		.wr_id = 0xdeadbeefcafeULL, .sg_list = sg, .num_sge = 3,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_INLINE,
	};
	struct frdma_sqe *q;
	union slot s;
	uint32_t len;

	memset(&s, 0xa5, sizeof(s));
	q = &s.sqe;
	frdma_send_wr_check(&rc, &wr, &len);
	frdma_build_sqe(q, &rc, &wr, len);
	ok(q->wr_id == wr.wr_id && q->opcode == IBV_WR_SEND &&
	   q->flags == FRDMA_WQE_INLINE && q->num_sge == 0 &&
	   q->inline_len == 17, "inline SEND header");
	ok(!memcmp(frdma_sqe_data(q), "0123456789abcXYZW", 17),
	   "three buffers are packed back to back after the header");
	ok(q->rsvd0 == 0 && q->xrc_srqn == 0 && q->rsvd2 == 0 &&
	   q->imm_data == 0 && zero(&q->atomic, sizeof(q->atomic)),
	   "reserved and unused header bytes are zero over a dirty slot");

	memset(&s, 0xa5, sizeof(s));
	wr.send_flags = IBV_SEND_SOLICITED;
	wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
	wr.imm_data = htobe32(0x01020304);
	wr.wr.rdma.remote_addr = 0x1122334455667788ULL;
	wr.wr.rdma.rkey = 0x99;
	sig.sig_all = 1;
	frdma_send_wr_check(&sig, &wr, &len);
	frdma_build_sqe(q, &sig, &wr, len);
	ok(q->opcode == IBV_WR_RDMA_WRITE_WITH_IMM && q->num_sge == 3 &&
	   q->inline_len == 0 && q->imm_data == htobe32(0x01020304) &&
	   q->rdma.remote_addr == 0x1122334455667788ULL &&
	   q->rdma.rkey == 0x99 && q->rdma.rsvd == 0,
	   "RDMA WRITE with immediate header");
	ok(q->flags == (FRDMA_WQE_SOLICITED | FRDMA_WQE_SIGNALED),
	   "sq_sig_all signals every entry");
	ok(frdma_sqe_sges(q)[0].addr == (uintptr_t)a &&
	   frdma_sqe_sges(q)[0].length == 10 &&
	   frdma_sqe_sges(q)[0].lkey == 11 &&
	   frdma_sqe_sges(q)[2].addr == (uintptr_t)c &&
	   frdma_sqe_sges(q)[2].lkey == 13, "the SGEs follow the header");

	memset(&s, 0xa5, sizeof(s));
	wr.opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
	wr.num_sge = 1;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.atomic.remote_addr = 0x1000;
	wr.wr.atomic.compare_add = 5;
	wr.wr.atomic.swap = 6;
	wr.wr.atomic.rkey = 0x42;
	frdma_send_wr_check(&rc, &wr, &len);
	frdma_build_sqe(q, &rc, &wr, len);
	ok(q->atomic.remote_addr == 0x1000 && q->atomic.compare_add == 5 &&
	   q->atomic.swap == 6 && q->atomic.rkey == 0x42 &&
	   q->atomic.rsvd == 0 && q->imm_data == 0 && q->num_sge == 1 &&
	   q->flags == FRDMA_WQE_SIGNALED, "compare and swap header");

	memset(&s, 0xa5, sizeof(s));
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = 0;
	wr.wr.ud.ah = &ah.ibv_ah;
	wr.wr.ud.remote_qpn = 0x4711;
	wr.wr.ud.remote_qkey = 0x80010000;
	frdma_send_wr_check(&ud, &wr, &len);
	frdma_build_sqe(q, &ud, &wr, len);
	ok(q->ud.ah_num == 0x1234 && q->ud.remote_qpn == 0x4711 &&
	   q->ud.remote_qkey == 0x80010000 && q->ud.rsvd == 0 &&
	   q->rsvd2 == 0, "UD SEND names the AH by its number");

	{
		uint64_t word = 0x0102030405060708ULL;
		struct ibv_sge wsg = { (uintptr_t)&word, 8, 3 };
		struct ibv_mw mw = { .rkey = 0x1234a7, .type = IBV_MW_TYPE_2 };
		struct ibv_mr mr = { .lkey = 0x5501 };

		memset(&s, 0xa5, sizeof(s));
		wr = (struct ibv_send_wr){
			.wr_id = 1, .opcode = IBV_WR_ATOMIC_WRITE,
			.sg_list = &wsg, .num_sge = 1,
		};
		wr.wr.rdma.remote_addr = 0x2000;
		wr.wr.rdma.rkey = 0x77;
		ok(frdma_send_wr_check(&rc, &wr, &len) == 0,
		   "ATOMIC_WRITE of one 8-byte buffer is accepted");
		frdma_build_sqe(q, &rc, &wr, len);
		ok(q->atomic.remote_addr == 0x2000 && q->atomic.rkey == 0x77 &&
		   q->atomic.compare_add == word && q->atomic.swap == 0 &&
		   q->num_sge == 0 && q->inline_len == 0,
		   "ATOMIC_WRITE carries its 8 bytes in the header");
		ok(check(&uc, &wr) == EINVAL, "UC refuses ATOMIC_WRITE");

		memset(&s, 0xa5, sizeof(s));
		wr = (struct ibv_send_wr){ .wr_id = 2, .opcode = IBV_WR_BIND_MW };
		wr.bind_mw.mw = &mw;
		wr.bind_mw.rkey = 0x1234a8;
		wr.bind_mw.bind_info.mr = &mr;
		wr.bind_mw.bind_info.addr = 0x3000;
		wr.bind_mw.bind_info.length = 0x100;
		wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_WRITE;
		ok(frdma_send_wr_check(&rc, &wr, &len) == 0,
		   "BIND_MW is accepted");
		frdma_build_sqe(q, &rc, &wr, len);
		ok(q->bind.addr == 0x3000 && q->bind.length == 0x100 &&
		   q->bind.mr_lkey == 0x5501 && q->bind.mw_rkey == 0x1234a7 &&
		   q->bind.new_rkey == 0x1234a8 &&
		   q->bind.access == IBV_ACCESS_REMOTE_WRITE &&
		   q->num_sge == 0 && q->imm_data == 0,
		   "BIND_MW header");
		wr.bind_mw.bind_info.mr = NULL;
		ok(check(&rc, &wr) == EINVAL,
		   "BIND_MW of a non-zero length without an MR is refused");

		memset(&s, 0xa5, sizeof(s));
		wr = (struct ibv_send_wr){ .opcode = IBV_WR_LOCAL_INV,
					   .invalidate_rkey = 0xabcdef01 };
		frdma_send_wr_check(&rc, &wr, &len);
		frdma_build_sqe(q, &rc, &wr, len);
		ok(q->invalidate_rkey == 0xabcdef01 && q->num_sge == 0 &&
		   zero(&q->bind, sizeof(q->bind)), "LOCAL_INV header");
	}
}

static void test_rqe(void)
{
	struct ibv_sge sg[3] = { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 } };
	struct ibv_recv_wr wr = { .wr_id = 77, .sg_list = sg, .num_sge = 3 };
	union slot s;
	struct frdma_sge *e = (struct frdma_sge *)(&s.rqe + 1);

	memset(&s, 0xa5, sizeof(s));
	ok(frdma_build_rqe(&s.rqe, 2, &wr) == EINVAL &&
	   s.b[0] == 0xa5, "max_recv_sge + 1 SGEs are refused, nothing written");
	ok(frdma_build_rqe(&s.rqe, 3, &wr) == 0 && s.rqe.wr_id == 77 &&
	   s.rqe.num_sge == 3 && s.rqe.rsvd == 0 && e[1].addr == 4 &&
	   e[1].length == 5 && e[1].lkey == 6 && e[2].lkey == 9,
	   "an RQE with its SGEs");
	wr.num_sge = 0;
	ok(frdma_build_rqe(&s.rqe, 3, &wr) == 0 && s.rqe.num_sge == 0,
	   "an RQE with no SGE (zero-length receives)");
}

/* A fake SQ ring of four 128-byte entries, as the kernel would map it. */
static struct frdma_ring fake_ring(uint32_t shift)
{
	struct frdma_ring r = { .num_entries = 4, .entry_shift = shift };

	r.hdr = calloc(1, FRDMA_RING_HDR_SIZE + (4U << shift));
	return r;
}

static uint64_t sq_id(struct frdma_ring *r, uint32_t idx)
{
	return ((struct frdma_sqe *)frdma_ring_entry(r, idx))->wr_id;
}

static void test_sq_write(void)
{
	struct frdma_ring r = fake_ring(7);
	char buf[64] = "";
	struct ibv_sge sg[4] = {
		{ (uintptr_t)buf, 8, 1 }, { (uintptr_t)buf, 8, 1 },
		{ (uintptr_t)buf, 8, 1 }, { (uintptr_t)buf, 8, 1 },
	};
	struct ibv_send_wr wr[4], *bad = NULL;
	uint32_t cons = 0;
	int i, ret;

	for (i = 0; i < 4; i++)
		wr[i] = (struct ibv_send_wr){
			.wr_id = 10 + i, .next = i < 3 ? &wr[i + 1] : NULL,
			.sg_list = sg, .num_sge = 1, .opcode = IBV_WR_SEND,
		};

	wr[2].next = NULL;
	ret = frdma_sq_write(&r, &cons, &rc, wr, &bad);
	ok(!ret && r.uidx == 3 && sq_id(&r, 0) == 10 && sq_id(&r, 2) == 12,
	   "a list of three is written to slots 0..2");
	ok(r.hdr->prod == 0, "prod is the caller's to publish");

	r.uidx = 0;
	wr[1].num_sge = 4;
	bad = NULL;
	ret = frdma_sq_write(&r, &cons, &rc, wr, &bad);
	ok(ret == EINVAL && bad == &wr[1] && r.uidx == 1,
	   "a refused second request: EINVAL, bad_wr at it, the first written");
	wr[1].num_sge = 1;

	r.uidx = 3;
	wr[2].next = &wr[3];
	bad = NULL;
	ret = frdma_sq_write(&r, &cons, &rc, &wr[2], &bad);
	ok(ret == ENOMEM && bad == &wr[3] && r.uidx == 4 && sq_id(&r, 3) == 12,
	   "the ring fills: the fourth entry is written, then ENOMEM");
	r.hdr->cons = 2;
	bad = NULL;
	ret = frdma_sq_write(&r, &cons, &rc, &wr[2], &bad);
	ok(!ret && cons == 2 && r.uidx == 6 && sq_id(&r, 4) == 12 &&
	   sq_id(&r, 5) == 13,
	   "once the kernel consumed two, the stale cons is reloaded");

	r.uidx = 0xfffffffeu;
	r.hdr->cons = 0xfffffffeu;
	cons = 0xfffffffeu;
	ret = frdma_sq_write(&r, &cons, &rc, wr, &bad);
	ok(!ret && r.uidx == 2 && sq_id(&r, 0xfffffffeu) == 10 &&
	   sq_id(&r, 0xffffffffu) == 11 && sq_id(&r, 0) == 12 &&
	   sq_id(&r, 1) == 13, "four entries across the 2^32 wrap");
	free(r.hdr);
}

static void test_rq_write(void)
{
	struct frdma_ring r = fake_ring(5);
	struct ibv_sge sg[2] = { { 1, 2, 3 }, { 4, 5, 6 } };
	struct ibv_recv_wr wr[5], *bad = NULL;
	uint32_t cons = 0;
	int i, ret;

	for (i = 0; i < 5; i++)
		wr[i] = (struct ibv_recv_wr){
			.wr_id = 20 + i, .next = i < 4 ? &wr[i + 1] : NULL,
			.sg_list = sg, .num_sge = 1,
		};
	wr[1].num_sge = 2;
	ret = frdma_rq_write(&r, &cons, 1, wr, &bad);
	ok(ret == EINVAL && bad == &wr[1] && r.uidx == 1,
	   "a receive with too many SGEs: EINVAL at it, the one before written");
	wr[1].num_sge = 1;
	ret = frdma_rq_write(&r, &cons, 1, &wr[1], &bad);
	ok(ret == ENOMEM && bad == &wr[4] && r.uidx == 4 &&
	   ((struct frdma_rqe *)frdma_ring_entry(&r, 3))->wr_id == 23,
	   "three more fill the ring, the fifth gets ENOMEM");
	free(r.hdr);
}

int main(void)
{
	test_strides();
	test_checks();
	test_build();
	test_rqe();
	test_sq_write();
	test_rq_write();
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
