// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hostile_test -d DEVICE: a client that writes garbage straight into its
 * frdma rings.  frdma only: the ring format is include/uapi/rdma/frdma-abi.h.
 *
 * The hostile QP is created without the provider: a raw CREATE_QP command
 * written to the context's command fd, whose response carries the ring
 * descriptors (struct frdma_create_qp_resp); the test maps the SQ and RQ
 * itself, moves the QP to RTS with raw MODIFY_QP commands towards a
 * normal (provider) QP of the same process, and rings the doorbell with
 * the zero-WR POST_SEND write the uABI describes.  Its CQ is a normal
 * provider CQ.  Each scenario uses a fresh hostile QP:
 *
 *   SQEs with an invalid opcode, num_sge 255, num_sge one past the QP's
 *   max_send_sge, inline_len huge / one past max_inline_data / past the
 *   stride, SGEs with bad lkeys, lengths that wrap, random bytes in every
 *   slot; producer indices one past full, 0xffffffff, moving backwards,
 *   raced by another thread while the doorbell rings; garbage in the
 *   kernel-owned cons field; a doorbell in RESET and INIT; garbage RQEs
 *   consumed by an incoming SEND; garbage in the consumer index of a CQ
 *   (also created and mapped raw), which must not make the kernel write
 *   more CQEs than work requests completed.
 *
 * Every scenario must be refused somehow -- the doorbell fails (EINVAL),
 * an error completion arrives, or the QP is in the error state -- and no
 * garbage entry may complete successfully.  Afterwards the QP is
 * destroyed, and a normal QP pair still moves data.  The VM harness adds
 * the kernel's verdict: no warning, BUG, Oops or KASAN report.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include <rdma/ib_user_verbs.h>
#include "../../include/uapi/rdma/frdma-abi.h"

#include "loopback.h"
#include "tap.h"

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static union ibv_gid gid;
static int gid_index;
static uint8_t *buf;
static struct ibv_mr *mr;

struct hqp {
	uint32_t handle, qpn;
	struct frdma_create_qp_resp rings;
	uint8_t *sq, *rq;
	struct ibv_cq *cq;
	/* the provider QP it is connected to */
	struct ibv_cq *pcq;
	struct ibv_qp *peer;
	uint32_t max_send_sge, max_inline;
};

static int cmd(uint32_t command, void *req, size_t reqlen, size_t resplen)
{
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		uint8_t body[512];
	} m;
	ssize_t n;

	m.hdr.command = command;
	m.hdr.in_words = (sizeof(m.hdr) + reqlen) / 4;
	m.hdr.out_words = resplen / 4;
	memcpy(m.body, req, reqlen);
	n = write(ctx->cmd_fd, &m, sizeof(m.hdr) + reqlen);
	return n == (ssize_t)(sizeof(m.hdr) + reqlen) ? 0 : errno;
}

static int doorbell(struct hqp *h)
{
	struct ib_uverbs_post_send_resp resp;
	struct ib_uverbs_post_send req = {
		.response = (uintptr_t)&resp,
		.qp_handle = h->handle,
		.wr_count = 0,
		.sge_count = 0,
		.wqe_size = sizeof(struct ib_uverbs_send_wr),
	};

	return cmd(IB_USER_VERBS_CMD_POST_SEND, &req, sizeof(req), sizeof(resp));
}

static int raw_modify(struct hqp *h, struct ib_uverbs_modify_qp *m)
{
	m->qp_handle = h->handle;
	return cmd(IB_USER_VERBS_CMD_MODIFY_QP, m, sizeof(*m), 0);
}

static int raw_state(struct hqp *h)
{
	struct ib_uverbs_query_qp_resp resp;
	struct ib_uverbs_query_qp req = {
		.response = (uintptr_t)&resp,
		.qp_handle = h->handle,
		.attr_mask = IBV_QP_STATE,
	};

	memset(&resp, 0, sizeof(resp));
	if (cmd(IB_USER_VERBS_CMD_QUERY_QP, &req, sizeof(req), sizeof(resp)))
		return -1;
	return resp.qp_state;
}

static int raw_destroy(struct hqp *h)
{
	struct ib_uverbs_destroy_qp_resp resp;
	struct ib_uverbs_destroy_qp req = {
		.response = (uintptr_t)&resp, .qp_handle = h->handle,
	};

	return cmd(IB_USER_VERBS_CMD_DESTROY_QP, &req, sizeof(req), sizeof(resp));
}

/* A CQ created with a raw command, its ring mapped here (or -1). */
static int64_t raw_cq_handle = -1;

/* Create, map, and (unless @stop_at is given) connect a hostile QP. */
static int hqp_create(struct hqp *h, int stop_at)
{
	struct {
		struct ib_uverbs_create_qp_resp base;
		struct frdma_create_qp_resp drv;
	} resp;
	struct ib_uverbs_create_qp req;
	struct ib_uverbs_modify_qp m;
	struct ibv_port_attr pa;
	int ret;

	memset(h, 0, sizeof(*h));
	h->cq = ibv_create_cq(ctx, 256, NULL, NULL, 0);
	h->pcq = ibv_create_cq(ctx, 256, NULL, NULL, 0);
	if (!h->cq || !h->pcq)
		return errno;
	h->peer = lb_create_qp(pd, h->pcq, h->pcq, 16, 1, 0);
	if (!h->peer)
		return errno;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.response = (uintptr_t)&resp;
	req.pd_handle = pd->handle;
	req.send_cq_handle = raw_cq_handle >= 0 ? raw_cq_handle : h->cq->handle;
	req.recv_cq_handle = req.send_cq_handle;
	req.max_send_wr = 16;
	req.max_recv_wr = 16;
	req.max_send_sge = 2;
	req.max_recv_sge = 2;
	req.max_inline_data = 64;
	req.qp_type = IBV_QPT_RC;
	ret = cmd(IB_USER_VERBS_CMD_CREATE_QP, &req, sizeof(req), sizeof(resp));
	if (ret)
		return ret;
	h->handle = resp.base.qp_handle;
	h->qpn = resp.base.qpn;
	h->max_send_sge = resp.base.max_send_sge;
	h->max_inline = resp.base.max_inline_data;
	h->rings = resp.drv;
	h->sq = mmap(NULL, h->rings.sq.mmap_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED, ctx->cmd_fd, h->rings.sq.mmap_offset);
	h->rq = mmap(NULL, h->rings.rq.mmap_size, PROT_READ | PROT_WRITE,
		     MAP_SHARED, ctx->cmd_fd, h->rings.rq.mmap_offset);
	if (h->sq == MAP_FAILED || h->rq == MAP_FAILED) {
		h->sq = h->sq == MAP_FAILED ? NULL : h->sq;
		h->rq = h->rq == MAP_FAILED ? NULL : h->rq;
		return errno ? errno : EINVAL;
	}
	if (stop_at == IBV_QPS_RESET)
		return 0;

	ret = ibv_query_port(ctx, LB_PORT, &pa);
	if (ret)
		return ret;
	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		      IBV_QP_ACCESS_FLAGS;
	m.qp_state = IBV_QPS_INIT;
	m.port_num = LB_PORT;
	m.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			    IBV_ACCESS_REMOTE_ATOMIC;
	ret = raw_modify(h, &m);
	if (ret || stop_at == IBV_QPS_INIT)
		return ret;

	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	m.qp_state = IBV_QPS_RTR;
	m.path_mtu = pa.active_mtu;
	m.dest_qp_num = h->peer->qp_num;
	m.max_dest_rd_atomic = 1;
	m.min_rnr_timer = 1;
	memcpy(m.dest.dgid, gid.raw, 16);
	m.dest.sgid_index = gid_index;
	m.dest.hop_limit = 1;
	m.dest.is_global = 1;
	m.dest.port_num = LB_PORT;
	ret = raw_modify(h, &m);
	if (ret)
		return ret;

	memset(&m, 0, sizeof(m));
	m.attr_mask = IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
		      IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC;
	m.qp_state = IBV_QPS_RTS;
	m.timeout = 14;
	m.retry_cnt = 7;
	m.rnr_retry = 1;
	m.max_rd_atomic = 1;
	ret = raw_modify(h, &m);
	if (ret)
		return ret;
	return lb_connect(h->peer, h->qpn, &gid, gid_index, 1);
}

static void hqp_destroy(struct hqp *h)
{
	int ret;

	if (h->sq)
		munmap(h->sq, h->rings.sq.mmap_size);
	if (h->rq)
		munmap(h->rq, h->rings.rq.mmap_size);
	if (h->handle || h->qpn) {
		ret = raw_destroy(h);
		ok(!ret, "  the hostile QP is destroyed (%s)", strerror(ret));
	}
	if (h->peer)
		ibv_destroy_qp(h->peer);
	if (h->cq)
		ibv_destroy_cq(h->cq);
	if (h->pcq)
		ibv_destroy_cq(h->pcq);
}

static struct frdma_ring_hdr *hdr(uint8_t *ring)
{
	return (struct frdma_ring_hdr *)ring;
}

static uint8_t *slot(uint8_t *ring, const struct frdma_ring_desc *d, uint32_t i)
{
	return ring + FRDMA_RING_HDR_SIZE +
	       ((size_t)(i & (d->num_entries - 1)) << d->entry_shift);
}

static void set_prod(uint8_t *ring, uint32_t prod)
{
	atomic_store_explicit((_Atomic uint32_t *)&hdr(ring)->prod, prod,
			      memory_order_release);
}

static uint32_t get_cons(uint8_t *ring)
{
	return atomic_load_explicit((_Atomic uint32_t *)&hdr(ring)->cons,
				    memory_order_acquire);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void random_bytes(uint8_t *p, size_t n)
{
	while (n--)
		*p++ = rnd();
}

/* A valid RDMA WRITE SQE of 8 bytes into buf + 4096 (the peer's memory). */
static void valid_sqe(struct hqp *h, uint8_t *s, uint64_t wr_id)
{
	struct frdma_sqe *e = (struct frdma_sqe *)s;
	struct frdma_sge *g = (struct frdma_sge *)(e + 1);

	memset(s, 0, 1u << h->rings.sq.entry_shift);
	e->wr_id = wr_id;
	e->opcode = IBV_WR_RDMA_WRITE;
	e->flags = FRDMA_WQE_SIGNALED;
	e->num_sge = 1;
	e->rdma.remote_addr = (uintptr_t)buf + 4096;
	e->rdma.rkey = mr->rkey;
	g->addr = (uintptr_t)buf;
	g->length = 8;
	g->lkey = mr->lkey;
}

/*
 * After the damage: drain the CQ (bounded), and summarize.  Returns true
 * when the QP refused: an error completion, or the QP in error, or
 * @db_err.  Fails (sets *succeeded) when an entry with wr_id in the
 * garbage range completed successfully.
 */
struct outcome {
	int db_err;
	int cqes, errors, successes;
	int state;
	enum ibv_wc_status first_err;
};

static void settle(struct hqp *h, struct outcome *o, int want_cqes)
{
	struct ibv_wc wc[16];
	struct timespec t0;
	int n, i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = ibv_poll_cq(h->cq, 16, wc);
		if (n < 0)
			break;
		for (i = 0; i < n; i++) {
			o->cqes++;
			if (wc[i].status == IBV_WC_SUCCESS) {
				o->successes++;
			} else {
				if (!o->errors)
					o->first_err = wc[i].status;
				o->errors++;
			}
		}
		if (n)
			continue;
		o->state = raw_state(h);
		if (o->cqes >= want_cqes && (o->errors || o->state == IBV_QPS_ERR ||
					     o->db_err))
			break;
		if (lb_ms_since(&t0) > (o->cqes ? 2000 : 10000))
			break;
		usleep(2000);
	}
	o->state = raw_state(h);
}

static void judge(const char *what, struct hqp *h, struct outcome *o,
		  int allowed_successes)
{
	ok((o->db_err || o->errors || o->state == IBV_QPS_ERR) &&
	   o->successes <= allowed_successes,
	   "%s: refused (doorbell: %s; %d completions, %d in error%s%s, "
	   "%d successful; QP %s)", what, o->db_err ? strerror(o->db_err) : "ok",
	   o->cqes, o->errors, o->errors ? ", first " : "",
	   o->errors ? ibv_wc_status_str(o->first_err) : "", o->successes,
	   lb_state_str(o->state));
	hqp_destroy(h);
}

typedef void (*damage_fn)(struct hqp *h, struct outcome *o);

static void sqe_garbage(struct hqp *h, struct outcome *o, int kind)
{
	uint32_t stride = 1u << h->rings.sq.entry_shift;
	uint8_t *s = slot(h->sq, &h->rings.sq, 0);
	struct frdma_sqe *e = (struct frdma_sqe *)s;
	struct frdma_sge *g = (struct frdma_sge *)(e + 1);

	valid_sqe(h, s, 0xbad0000 + kind);
	switch (kind) {
	case 0:
		e->opcode = 0xc8;
		break;
	case 1:
		e->num_sge = 255;
		break;
	case 2:
		e->num_sge = h->max_send_sge + 1;
		break;
	case 3:
		e->flags |= FRDMA_WQE_INLINE;
		e->inline_len = 0xffffffff;
		break;
	case 4:
		e->flags |= FRDMA_WQE_INLINE;
		e->inline_len = h->max_inline + 1;
		break;
	case 5:
		e->flags |= FRDMA_WQE_INLINE;
		e->inline_len = stride;
		break;
	case 6:
		g->lkey ^= 0x80;
		break;
	case 7:
		g->addr = 0xfffffffffffffff0ULL;
		g->length = 0x20;
		break;
	case 8:
		g->length = 0xffffffff;
		break;
	case 9:
		e->opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
		e->atomic.remote_addr = (uintptr_t)buf + 4096 + 3;	/* unaligned */
		e->atomic.rkey = mr->rkey;
		break;
	}
	set_prod(h->sq, 1);
	o->db_err = doorbell(h);
	settle(h, o, 1);
}

static const char *const sqe_what[] = {
	"SQE with opcode 0xc8",
	"SQE with num_sge 255",
	"SQE with num_sge one past max_send_sge",
	"inline SQE with inline_len 0xffffffff",
	"inline SQE with inline_len one past max_inline_data",
	"inline SQE with inline_len equal to the whole stride",
	"SQE whose SGE has a wrong lkey",
	"SQE whose SGE wraps 2^64",
	"SQE whose SGE length is 0xffffffff",
	"atomic SQE on an unaligned remote address",
};

static void all_random(struct hqp *h, struct outcome *o)
{
	uint32_t i;

	for (i = 0; i < h->rings.sq.num_entries; i++)
		random_bytes(slot(h->sq, &h->rings.sq, i),
			     1u << h->rings.sq.entry_shift);
	set_prod(h->sq, h->rings.sq.num_entries);
	o->db_err = doorbell(h);
	settle(h, o, 1);
}

static void prod_past_full(struct hqp *h, struct outcome *o)
{
	uint32_t i;

	for (i = 0; i < h->rings.sq.num_entries; i++)
		valid_sqe(h, slot(h->sq, &h->rings.sq, i), 0xbad1000 + i);
	set_prod(h->sq, hdr(h->sq)->cons + h->rings.sq.num_entries + 1);
	o->db_err = doorbell(h);
	settle(h, o, 0);
}

static void prod_huge(struct hqp *h, struct outcome *o)
{
	valid_sqe(h, slot(h->sq, &h->rings.sq, 0), 0xbad2000);
	set_prod(h->sq, 0xffffffff);
	o->db_err = doorbell(h);
	settle(h, o, 0);
}

/* One valid WR consumed, then prod moved back behind cons. */
static void prod_backwards(struct hqp *h, struct outcome *o)
{
	struct outcome first = { 0 };
	uint32_t i;

	valid_sqe(h, slot(h->sq, &h->rings.sq, 0), 1);
	set_prod(h->sq, 1);
	first.db_err = doorbell(h);
	settle(h, &first, 1);
	ok(!first.db_err && first.successes == 1,
	   "  a valid WRITE through the raw ring completes (%d of 1; doorbell %s)",
	   first.successes, strerror(first.db_err));
	for (i = 0; i < h->rings.sq.num_entries; i++)
		valid_sqe(h, slot(h->sq, &h->rings.sq, i), 0xbad3000 + i);
	set_prod(h->sq, 0);	/* cons is 1: prod - cons = 0xffffffff */
	o->db_err = doorbell(h);
	settle(h, o, 0);
}

static _Atomic int racing;
static _Atomic unsigned long racer_stores;

/*
 * Store pseudo-random producer indices as fast as possible: half of them
 * far outside the ring, half small enough to expose random SQEs.
 */
static void *racer(void *arg)
{
	struct hqp *h = arg;
	uint32_t x = 1;

	while (atomic_load(&racing)) {
		x = x * 1103515245 + 12345;
		set_prod(h->sq, (x >> 8) & 1 ? x : (x & 0x1f));
		atomic_fetch_add(&racer_stores, 1);
	}
	return NULL;
}

/*
 * The doorbells start only once the racer has stored at least once, so the
 * kernel really reads a moving index.  Which doorbell first meets garbage
 * depends on scheduling, so the race alone is not required to be refused:
 * if it was not (the racer may sit on one index for the whole loop), one
 * last doorbell with an index past a full ring must be.  Either way no
 * random SQE may complete successfully, and the kernel must stay quiet.
 */
static void prod_raced(struct hqp *h, struct outcome *o)
{
	pthread_t t;
	uint32_t i;
	int k, ret;

	for (i = 0; i < h->rings.sq.num_entries; i++)
		random_bytes(slot(h->sq, &h->rings.sq, i),
			     1u << h->rings.sq.entry_shift);
	atomic_store(&racer_stores, 0);
	atomic_store(&racing, 1);
	if (pthread_create(&t, NULL, racer, h)) {
		o->db_err = EAGAIN;
		return;
	}
	while (!atomic_load(&racer_stores))
		sched_yield();
	for (k = 0; k < 500; k++) {
		ret = doorbell(h);
		if (ret && !o->db_err)
			o->db_err = ret;
	}
	atomic_store(&racing, 0);
	pthread_join(t, NULL);
	settle(h, o, 0);
	diag("the race: %lu racer stores, doorbell %s, %d completions (%d in error), QP %s",
	     atomic_load(&racer_stores), o->db_err ? strerror(o->db_err) : "ok",
	     o->cqes, o->errors, o->state == IBV_QPS_ERR ? "ERR" : "not ERR");
	if (o->db_err || o->errors || o->state == IBV_QPS_ERR)
		return;
	set_prod(h->sq, hdr(h->sq)->cons + h->rings.sq.num_entries + 1);
	o->db_err = doorbell(h);
	settle(h, o, 0);
}

static void cons_scribbled(struct hqp *h, struct outcome *o)
{
	hdr(h->sq)->cons = 0x7fffffff;
	hdr(h->sq)->rsvd0[3] = 0xdeadbeef;
	hdr(h->rq)->cons = 0xffff0000;
	valid_sqe(h, slot(h->sq, &h->rings.sq, 0), 0xbad4000);
	((struct frdma_sqe *)slot(h->sq, &h->rings.sq, 0))->opcode = 0xee;
	set_prod(h->sq, 1);
	o->db_err = doorbell(h);
	settle(h, o, 1);
}

/* Garbage RQEs, consumed by a SEND from the provider QP. */
static void rqe_garbage(struct hqp *h, struct outcome *o)
{
	struct ibv_sge sge = { (uintptr_t)buf, 64, mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = 77, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_wc wc;
	uint32_t i;
	int ret;

	for (i = 0; i < h->rings.rq.num_entries; i++) {
		uint8_t *s = slot(h->rq, &h->rings.rq, i);
		struct frdma_rqe *e = (struct frdma_rqe *)s;

		random_bytes(s, 1u << h->rings.rq.entry_shift);
		e->wr_id = 0xbad5000 + i;
		e->num_sge = i & 1 ? 255 : 0xffffffff;
	}
	set_prod(h->rq, 5);
	ret = ibv_post_send(h->peer, &wr, &bad);
	if (ret) {
		o->db_err = ret;
		return;
	}
	ret = lb_poll_ms(h->pcq, &wc, 1, 30000);
	ok(ret == 1 && wc.status != IBV_WC_SUCCESS,
	   "  the peer's SEND into garbage RQEs completes in error (%s)",
	   ret == 1 ? ibv_wc_status_str(wc.status) : "no completion");
	settle(h, o, 0);
}

static void doorbell_early(struct hqp *h, struct outcome *o, int state)
{
	uint32_t i;

	for (i = 0; i < h->rings.sq.num_entries; i++)
		valid_sqe(h, slot(h->sq, &h->rings.sq, i), 0xbad6000 + i);
	set_prod(h->sq, 3);
	o->db_err = doorbell(h);
	/* An error completion, EINVAL, or nothing at all, but no success. */
	settle(h, o, 0);
	ok(o->successes == 0, "  nothing completes successfully in %s "
	   "(doorbell %s, %d completions)", state == IBV_QPS_RESET ? "RESET" : "INIT",
	   strerror(o->db_err), o->cqes);
}

static void scenario(const char *what, damage_fn fn, int sqe_kind)
{
	struct outcome o = { 0 };
	struct hqp h;
	int ret;

	diag("%s", what);
	ret = hqp_create(&h, -1);
	if (!ok(!ret, "%s: a raw QP in RTS with mapped rings (%s)", what,
		strerror(ret))) {
		hqp_destroy(&h);
		return;
	}
	if (fn)
		fn(&h, &o);
	else
		sqe_garbage(&h, &o, sqe_kind);
	judge(what, &h, &o, 0);
}

struct rcq {
	uint32_t handle;
	struct frdma_ring_desc d;
	uint8_t *ring;
};

static int rcq_create(struct rcq *c, uint32_t cqe)
{
	struct {
		struct ib_uverbs_create_cq_resp base;
		struct frdma_create_cq_resp drv;
	} resp;
	struct ib_uverbs_create_cq req = {
		.response = (uintptr_t)&resp, .cqe = cqe, .comp_channel = -1,
	};
	int ret;

	memset(&resp, 0, sizeof(resp));
	ret = cmd(IB_USER_VERBS_CMD_CREATE_CQ, &req, sizeof(req), sizeof(resp));
	if (ret)
		return ret;
	c->handle = resp.base.cq_handle;
	c->d = resp.drv.cq;
	c->ring = mmap(NULL, c->d.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       ctx->cmd_fd, c->d.mmap_offset);
	if (c->ring == MAP_FAILED) {
		c->ring = NULL;
		return errno;
	}
	return 0;
}

static int rcq_destroy(struct rcq *c)
{
	struct ib_uverbs_destroy_cq_resp resp;
	struct ib_uverbs_destroy_cq req = {
		.response = (uintptr_t)&resp, .cq_handle = c->handle,
	};

	if (c->ring)
		munmap(c->ring, c->d.mmap_size);
	return cmd(IB_USER_VERBS_CMD_DESTROY_CQ, &req, sizeof(req), sizeof(resp));
}

static uint32_t cq_prod(struct rcq *c)
{
	return atomic_load_explicit((_Atomic uint32_t *)&hdr(c->ring)->prod,
				    memory_order_acquire);
}

/*
 * The CQ's consumer index is the provider's to write: garbage there
 * (ahead of the kernel's prod, far ahead, one full ring behind) must not
 * make the kernel write outside the ring or more entries than completed.
 */
static void cq_cons_garbage(uint32_t cons_delta, const char *what, bool control)
{
	struct hqp h;
	struct rcq c;
	uint32_t before, after, i;
	int ret, db;

	diag("%s", what);
	memset(&c, 0, sizeof(c));
	ret = rcq_create(&c, 16);
	if (!ok(!ret, "%s: a raw CQ with its ring mapped (%s)", what, strerror(ret)))
		return;
	raw_cq_handle = c.handle;
	ret = hqp_create(&h, -1);
	raw_cq_handle = -1;
	if (ok(!ret, "  a raw QP in RTS on it (%s)", strerror(ret))) {
		before = cq_prod(&c);
		/* 0: exactly one full ring behind, the CQ looks full */
		if (!control)
			hdr(c.ring)->cons = before + (cons_delta ? cons_delta :
						      -c.d.num_entries);
		for (i = 0; i < 3; i++)
			valid_sqe(&h, slot(h.sq, &h.rings.sq, i), 0xbad7000 + i);
		set_prod(h.sq, 3);
		db = doorbell(&h);
		usleep(200000);
		after = cq_prod(&c);
		ok(control ? after - before == 3 : after - before <= 3,
		   "  the kernel wrote %u CQEs for 3 WRs%s (doorbell %s, QP %s)",
		   after - before, control ? ", all of them" : ", at most 3",
		   strerror(db), lb_state_str(raw_state(&h)));
	}
	hqp_destroy(&h);
	ret = rcq_destroy(&c);
	ok(!ret, "  the raw CQ is destroyed (%s)", strerror(ret));
}

static bool sanity(void)
{
	struct ibv_cq *cq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	struct ibv_qp *a = NULL, *b = NULL;
	struct ibv_sge sge = { (uintptr_t)buf, 4096, mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = 5, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_wc wc;
	bool good = false;

	if (cq)
		a = lb_create_qp(pd, cq, cq, 4, 1, 0);
	if (cq)
		b = lb_create_qp(pd, cq, cq, 4, 1, 0);
	wr.wr.rdma.remote_addr = (uintptr_t)buf + 8192;
	wr.wr.rdma.rkey = mr->rkey;
	memset(buf, 0x3c, 4096);
	if (a && b && !lb_connect_pair(a, b, &gid, gid_index, 1) &&
	    !ibv_post_send(a, &wr, &bad) && lb_poll(cq, &wc, 1) == 1 &&
	    wc.status == IBV_WC_SUCCESS && !memcmp(buf, buf + 8192, 4096))
		good = true;
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (cq)
		ibv_destroy_cq(cq);
	return good;
}

int main(int argc, char **argv)
{
	char path[256], desc[64] = "";
	const char *dev;
	unsigned int i;
	struct hqp h;
	FILE *f;
	int ret;

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
	if (!ok(!lb_find_gid(ctx, &gid_index, &gid), "%s has a RoCE v2 IPv4 GID", dev))
		return tap_done();
	pd = ibv_alloc_pd(ctx);
	buf = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		buf = NULL;
	if (pd && buf)
		mr = ibv_reg_mr(pd, buf, 65536, IBV_ACCESS_LOCAL_WRITE |
				IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
				IBV_ACCESS_REMOTE_ATOMIC);
	if (!ok(pd && mr, "a PD and a 64 KiB MR"))
		return tap_done();

	ret = hqp_create(&h, -1);
	if (ok(!ret, "a raw CREATE_QP, its rings mapped, raw MODIFY_QP to RTS (%s)",
	       strerror(ret))) {
		diag("SQ: %u entries of %u bytes, %u mapped; RQ: %u entries of %u "
		     "bytes; max_send_sge %u, max_inline_data %u",
		     h.rings.sq.num_entries, 1u << h.rings.sq.entry_shift,
		     h.rings.sq.mmap_size, h.rings.rq.num_entries,
		     1u << h.rings.rq.entry_shift, h.max_send_sge, h.max_inline);
		ok(h.rings.sq.num_entries && !(h.rings.sq.num_entries &
					       (h.rings.sq.num_entries - 1)) &&
		   FRDMA_RING_HDR_SIZE + ((size_t)h.rings.sq.num_entries <<
					  h.rings.sq.entry_shift) <= h.rings.sq.mmap_size,
		   "the SQ descriptor is consistent");
		{
			struct outcome o = { 0 };

			valid_sqe(&h, slot(h.sq, &h.rings.sq, 0), 42);
			set_prod(h.sq, 1);
			o.db_err = doorbell(&h);
			settle(&h, &o, 1);
			ok(!o.db_err && o.successes == 1 && !o.errors &&
			   get_cons(h.sq) == 1,
			   "a valid WRITE through the raw ring and the doorbell "
			   "completes (%d ok, %d errors, cons %u)", o.successes,
			   o.errors, get_cons(h.sq));
		}
		{
			uint8_t *p = mmap(NULL, h.rings.sq.mmap_size * 2,
					  PROT_READ | PROT_WRITE, MAP_SHARED,
					  ctx->cmd_fd, h.rings.sq.mmap_offset);

			ok(p == MAP_FAILED, "mmap of twice the SQ's size is refused");
			if (p != MAP_FAILED)
				munmap(p, h.rings.sq.mmap_size * 2);
			p = mmap(NULL, h.rings.sq.mmap_size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE, ctx->cmd_fd, h.rings.sq.mmap_offset);
			ok(p == MAP_FAILED, "a private mapping of the SQ is refused");
			if (p != MAP_FAILED)
				munmap(p, h.rings.sq.mmap_size);
			p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
				 ctx->cmd_fd, h.rings.sq.mmap_offset + 4096 * 977);
			ok(p == MAP_FAILED, "a made-up mmap offset is refused");
			if (p != MAP_FAILED)
				munmap(p, 4096);
		}
	}
	hqp_destroy(&h);

	for (i = 0; i < sizeof(sqe_what) / sizeof(sqe_what[0]); i++)
		scenario(sqe_what[i], NULL, i);
	scenario("random bytes in every SQ slot, prod = num_entries",
		 all_random, 0);
	scenario("valid SQEs, prod one past a full ring", prod_past_full, 0);
	scenario("prod = 0xffffffff", prod_huge, 0);
	scenario("prod moved back behind cons", prod_backwards, 0);
	scenario("prod raced by another thread over 500 doorbells of random SQEs",
		 prod_raced, 0);
	scenario("garbage in the kernel's cons fields, then an invalid opcode",
		 cons_scribbled, 0);
	scenario("garbage RQEs (num_sge 255, 0xffffffff) consumed by a SEND",
		 rqe_garbage, 0);

	cq_cons_garbage(0, "control: a raw CQ with a sane cons", true);
	cq_cons_garbage(5, "CQ cons 5 ahead of the kernel's prod", false);
	cq_cons_garbage(0x80000000u, "CQ cons 2^31 ahead of the kernel's prod", false);
	cq_cons_garbage(0, "CQ cons one full ring behind prod (the CQ looks full)",
			false);

	for (i = 0; i < 2; i++) {
		int st = i ? IBV_QPS_INIT : IBV_QPS_RESET;
		struct outcome o = { 0 };

		ret = hqp_create(&h, st);
		if (ok(!ret, "a raw QP left in %s (%s)", i ? "INIT" : "RESET",
		       strerror(ret)))
			doorbell_early(&h, &o, st);
		hqp_destroy(&h);
	}

	/* A QP destroyed with its rings still mapped, then the rings touched. */
	ret = hqp_create(&h, -1);
	if (ok(!ret, "a raw QP to destroy while mapped (%s)", strerror(ret))) {
		uint8_t *sq = h.sq;
		size_t size = h.rings.sq.mmap_size;

		h.sq = NULL;
		ret = raw_destroy(&h);
		ok(!ret, "  destroyed with its SQ still mapped (%s)", strerror(ret));
		memset(sq + FRDMA_RING_HDR_SIZE, 0xff, size - FRDMA_RING_HDR_SIZE);
		set_prod(sq, 7);
		ok(doorbell(&h) != 0, "  a doorbell on the destroyed QP's handle fails");
		h.handle = h.qpn = 0;
		munmap(sq, size);
	}
	hqp_destroy(&h);

	ok(sanity(), "afterwards a normal QP pair still moves data");
	ibv_dereg_mr(mr);
	ok(!ibv_dealloc_pd(pd), "the PD is deallocated (nothing left on it)");
	ibv_close_device(ctx);
	return tap_done();
}
