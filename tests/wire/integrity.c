// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * integrity: data integrity of RC operations between two processes, on one
 * host or across the wire.
 *
 *   integrity -d DEVICE [-p PORT] [-m MTUS] [-q] [-o OPS]            (server)
 *   integrity -d DEVICE [-p PORT] [-m MTUS] [-q] [-o OPS] HOST       (client)
 *
 * The server listens on TCP PORT (default 19600); the client connects to
 * HOST and drives.  QP numbers, GIDs, addresses and rkeys go over that
 * TCP connection (no rdma_cm).  For every path MTU of MTUS (default
 * 256,1024,4096; one the port's active MTU cannot carry is skipped) both
 * sides create a fresh RC QP and connect it, then the client runs every
 * operation (SEND, SEND with immediate, RDMA WRITE, WRITE with immediate,
 * RDMA READ) at every size: 1, 2, 3, each multiple of the MTU up to 4
 * plus and minus one, the powers of two up to 4 MiB and a few odd sizes
 * (-q: at most 256 KiB, for lossy links), then the 8-byte ones three
 * times each (compare-and-swap, fetch-and-add, atomic write; the last is
 * skipped, saying so, when the client's device or provider lacks it).
 *
 * Every payload is a pattern derived from a per-test seed, at an odd
 * offset in a buffer filled with a guard byte; the receiving side compares
 * the whole payload with the regenerated pattern and checks that the
 * guard bytes around it are untouched and the completion's length and
 * immediate are right (the requester checks a READ, both sides an
 * atomic).  The client sends the verdict to the server, and both print the
 * same TAP line, so either side's output is the result.  Every wait is
 * bounded (a watchdog, not a speed threshold): a lost completion fails the
 * test, and the QP of that MTU is then abandoned for the next one.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "../verbs/tap.h"
#include "../verbs/loopback.h"

#define BUF_MAX		(4u << 20)
#define GUARD		64
#define BUF_LEN		(BUF_MAX + 2 * GUARD + 64)
#define GUARD_BYTE	0xa5
#define WAIT_MS		120000	/* a watchdog: lossy links retransmit slowly */
#define NSIZES_MAX	128

enum op {
	OP_SEND, OP_SEND_IMM, OP_WRITE, OP_WRITE_IMM, OP_READ, OP_CMP_SWAP,
	OP_FETCH_ADD, OP_ATOMIC_WRITE, OP_NR
};

/* -e: remote access errors, each on a QP of its own */
enum err_op {
	E_FIRST = 16, E_BADKEY_WRITE = E_FIRST, E_RO_WRITE, E_BADKEY_READ,
	E_RANGE_WRITE, E_VANISH, E_END
};

static const char *const err_name[E_END - E_FIRST] = {
	"RDMA_WRITE with a wrong rkey", "RDMA_WRITE to a read-only MR",
	"RDMA_READ with a wrong rkey", "RDMA_WRITE past the end of the MR",
	"two RDMA_WRITEs to a QP destroyed after connecting",
};

#define RO_LEN		65536

static const char *const op_name[OP_NR] = {
	"SEND", "SEND_WITH_IMM", "RDMA_WRITE", "RDMA_WRITE_WITH_IMM",
	"RDMA_READ", "ATOMIC_CMP_AND_SWP", "ATOMIC_FETCH_AND_ADD",
	"ATOMIC_WRITE",
};

enum cmd { CMD_MTU = 1, CMD_INFO, CMD_PREP, CMD_CHECK, CMD_RESULT,
	   CMD_END_MTU, CMD_QUIT };

/* One control message; both ends are the same program on one arch. */
struct msg {
	uint32_t cmd;
	uint32_t op;
	uint64_t size;
	uint64_t seed;
	uint64_t off;
	uint64_t val;		/* atomics: the value in memory */
	int32_t status;		/* 0 ok, else failed (text says why) */
	uint32_t qpn;
	uint8_t gid[16];
	uint64_t addr;
	uint32_t rkey;
	uint32_t mtu;
	uint64_t ro_addr;
	uint32_t ro_rkey;
	char text[256];
};

struct side {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *qp;
	struct ibv_mr *mr, *ro_mr;
	uint8_t *buf, *ro_buf;
	int gid_index;
	union ibv_gid gid;
	int sock;
	bool server;
	int rd_atomic;
	bool awrite;		/* atomic writes can be posted (client) */
	const char *skip_why[OP_NR];	/* -x: the client skips these ops */
	uint8_t retry_cnt;	/* the next QP's; 0: LB_CONN's */
	uint32_t max_msg;
	enum ibv_mtu active_mtu;
	/* the peer */
	uint64_t raddr, ro_addr;
	uint32_t rkey, ro_rkey;
};

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

static void xfer(int fd, struct msg *m, bool send_it)
{
	size_t done = 0;
	ssize_t r;

	while (done < sizeof(*m)) {
		if (send_it)
			r = write(fd, (char *)m + done, sizeof(*m) - done);
		else
			r = read(fd, (char *)m + done, sizeof(*m) - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (!r)
				errno = ECONNRESET;
			die(send_it ? "control send" : "control receive");
		}
		done += r;
	}
}

static void put(struct side *s, struct msg *m)
{
	xfer(s->sock, m, true);
}

static void get(struct side *s, struct msg *m)
{
	xfer(s->sock, m, false);
}

/* The payload pattern: a 64-bit xorshift stream from the seed. */
static void pattern(uint8_t *p, uint64_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1, i;

	for (i = 0; i < len; i++) {
		if (!(i & 7)) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		p[i] = x >> ((i & 7) * 8);
	}
}

/* The guard bytes around @len bytes at @off: 0, or -1 with @why filled. */
static int check_guard(const uint8_t *buf, uint64_t off, uint64_t len,
		       char *why, size_t whylen)
{
	uint64_t i;

	for (i = off - GUARD; i < off; i++)
		if (buf[i] != GUARD_BYTE) {
			snprintf(why, whylen, "guard byte %d before the payload overwritten",
				 (int)(off - i));
			return -1;
		}
	for (i = off + len; i < off + len + GUARD; i++)
		if (buf[i] != GUARD_BYTE) {
			snprintf(why, whylen, "guard byte %llu after the payload overwritten",
				 (unsigned long long)(i - off - len));
			return -1;
		}
	return 0;
}

/*
 * Check @len bytes at @off against the pattern of @seed and the guard
 * bytes around them; 0, or -1 with @why filled.
 */
static int check_payload(const uint8_t *buf, uint64_t off, uint64_t len,
			 uint64_t seed, char *why, size_t whylen)
{
	static uint8_t want[BUF_MAX];
	uint64_t i, bad = 0, first = UINT64_MAX;

	if (check_guard(buf, off, len, why, whylen))
		return -1;
	pattern(want, len, seed);
	if (!memcmp(buf + off, want, len))
		return 0;
	for (i = 0; i < len; i++)
		if (buf[off + i] != want[i]) {
			bad++;
			if (first == UINT64_MAX)
				first = i;
		}
	snprintf(why, whylen, "%llu of %llu bytes wrong, the first at %llu (0x%02x, not 0x%02x)",
		 (unsigned long long)bad, (unsigned long long)len,
		 (unsigned long long)first, buf[off + first], want[first]);
	return -1;
}

/* Where a test's payload goes: an odd offset past the guard. */
static uint64_t payload_off(uint64_t seed)
{
	return GUARD + (seed % 61);
}

static void fill_guard(uint8_t *buf, uint64_t off, uint64_t len)
{
	memset(buf + off - GUARD, GUARD_BYTE, len + 2 * GUARD);
}

static int wait_wc(struct side *s, struct ibv_cq *cq, struct ibv_wc *wc,
		   char *why, size_t whylen)
{
	int n = lb_poll_ms(cq, wc, 1, WAIT_MS);

	if (n == 1 && wc->status == IBV_WC_SUCCESS)
		return 0;
	if (n == 1)
		snprintf(why, whylen, "completion status %s (%d), QP %s",
			 ibv_wc_status_str(wc->status), wc->status,
			 lb_state_str(lb_qp_state(s->qp)));
	else
		snprintf(why, whylen, "no completion in %d s (QP %s)",
			 WAIT_MS / 1000, lb_state_str(lb_qp_state(s->qp)));
	return -1;
}

static enum ibv_mtu mtu_enum(uint32_t mtu)
{
	switch (mtu) {
	case 256: return IBV_MTU_256;
	case 512: return IBV_MTU_512;
	case 1024: return IBV_MTU_1024;
	case 2048: return IBV_MTU_2048;
	case 4096: return IBV_MTU_4096;
	}
	return 0;
}

static void setup(struct side *s, const char *dev)
{
	struct ibv_device_attr_ex dx = {};
	struct ibv_device_attr da;
	struct ibv_port_attr pa;

	s->ctx = open_device_by_name(dev);
	if (!s->ctx)
		die(dev);
	if (ibv_query_device(s->ctx, &da) || ibv_query_port(s->ctx, LB_PORT, &pa))
		die("query device/port");
	s->rd_atomic = da.max_qp_rd_atom < 16 ? da.max_qp_rd_atom : 16;
	/* IB_UVERBS_DEVICE_ATOMIC_WRITE: the device takes atomic writes */
	s->awrite = !ibv_query_device_ex(s->ctx, NULL, &dx) &&
		    (dx.device_cap_flags_ex & (1ULL << 40));
	s->max_msg = pa.max_msg_sz;
	s->active_mtu = pa.active_mtu;
	if (lb_find_gid(s->ctx, &s->gid_index, &s->gid)) {
		errno = ENOENT;
		die("no RoCE v2 IPv4 GID");
	}
	s->pd = ibv_alloc_pd(s->ctx);
	s->scq = ibv_create_cq(s->ctx, 16, NULL, NULL, 0);
	s->rcq = ibv_create_cq(s->ctx, 16, NULL, NULL, 0);
	if (!s->pd || !s->scq || !s->rcq)
		die("PD/CQ");
	/* 64-byte aligned: an atomic's 8 bytes are at an aligned offset */
	if (posix_memalign((void **)&s->buf, 4096, BUF_LEN))
		die("buffer");
	memset(s->buf, GUARD_BYTE, BUF_LEN);
	s->mr = ibv_reg_mr(s->pd, s->buf, BUF_LEN, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_REMOTE_ATOMIC);
	if (!s->mr)
		die("ibv_reg_mr");
	/* a remote may read it, never write it */
	if (posix_memalign((void **)&s->ro_buf, 4096, RO_LEN))
		die("buffer");
	memset(s->ro_buf, GUARD_BYTE, RO_LEN);
	s->ro_mr = ibv_reg_mr(s->pd, s->ro_buf, RO_LEN, IBV_ACCESS_REMOTE_READ);
	if (!s->ro_mr)
		die("ibv_reg_mr (read-only)");
}

/* lb_create_qp()'s QP, able to post atomic writes too; NULL with errno. */
static struct ibv_qp *create_qp_ex(struct side *s)
{
	struct ibv_qp_init_attr_ex ia = {
		.send_cq = s->scq,
		.recv_cq = s->rcq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = s->pd,
		.send_ops_flags = IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM |
				  IBV_QP_EX_WITH_RDMA_WRITE |
				  IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
				  IBV_QP_EX_WITH_RDMA_READ |
				  IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
				  IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD |
				  IBV_QP_EX_WITH_ATOMIC_WRITE,
	};

	return ibv_create_qp_ex(s->ctx, &ia);
}

/* A fresh QP for @mtu, connected to the peer's: 0 or an errno. */
static int qp_up(struct side *s, uint32_t mtu)
{
	struct lb_conn c = LB_CONN(s->rd_atomic);
	struct msg m = { .cmd = CMD_INFO };
	union ibv_gid dgid;
	int ret;

	s->qp = s->awrite ? create_qp_ex(s) : NULL;
	if (!s->qp && s->awrite) {
		diag("an extended QP with atomic write: %s; none in this run",
		     strerror(errno));
		s->awrite = false;
	}
	if (!s->qp)
		s->qp = lb_create_qp(s->pd, s->scq, s->rcq, 4, 1, 0);
	if (!s->qp)
		die("ibv_create_qp");
	m.qpn = s->qp->qp_num;
	memcpy(m.gid, s->gid.raw, 16);
	m.addr = (uintptr_t)s->buf;
	m.rkey = s->mr->rkey;
	m.ro_addr = (uintptr_t)s->ro_buf;
	m.ro_rkey = s->ro_mr->rkey;
	put(s, &m);
	get(s, &m);
	if (m.cmd != CMD_INFO) {
		errno = EPROTO;
		die("expected the peer's QP");
	}
	s->raddr = m.addr;
	s->rkey = m.rkey;
	s->ro_addr = m.ro_addr;
	s->ro_rkey = m.ro_rkey;
	memcpy(dgid.raw, m.gid, 16);
	c.path_mtu = mtu_enum(mtu);
	c.hop_limit = 64;
	if (s->retry_cnt)
		c.retry_cnt = s->retry_cnt;
	ret = lb_connect_attr(s->qp, m.qpn, &dgid, s->gid_index, &c);
	/* Both sides connected before any request: a READY round trip. */
	m.cmd = CMD_INFO;
	m.status = ret;
	put(s, &m);
	get(s, &m);
	return ret ? ret : m.status ? EIO : 0;
}

static void qp_down(struct side *s)
{
	struct ibv_wc wc;

	if (s->qp && ibv_destroy_qp(s->qp))
		die("ibv_destroy_qp");
	s->qp = NULL;
	while (ibv_poll_cq(s->scq, 1, &wc) > 0)
		;
	while (ibv_poll_cq(s->rcq, 1, &wc) > 0)
		;
}

static uint32_t imm_of(uint64_t seed)
{
	return htonl((uint32_t)(seed * 2654435761u));
}

static bool untouched(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != GUARD_BYTE)
			return false;
	return true;
}

/* Server: make ready for the test in @m; fills m->status/text/val. */
static void server_prep(struct side *s, struct msg *m)
{
	uint64_t off = m->off, len = m->size;
	struct ibv_sge sge;
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;

	m->status = 0;
	m->text[0] = 0;
	if (m->op >= E_FIRST) {
		memset(s->buf, GUARD_BYTE, BUF_LEN);
		memset(s->ro_buf, GUARD_BYTE, RO_LEN);
		/* the peer vanishes: its packets now name no QP here */
		if (m->op == E_VANISH && ibv_destroy_qp(s->qp))
			die("ibv_destroy_qp");
		if (m->op == E_VANISH)
			s->qp = NULL;
		return;
	}
	switch (m->op) {
	case OP_SEND:
	case OP_SEND_IMM:
	case OP_WRITE_IMM:
		fill_guard(s->buf, off, len);
		sge.addr = (uintptr_t)(s->buf + off);
		sge.length = m->op == OP_WRITE_IMM ? 0 : len + GUARD / 2;
		sge.lkey = s->mr->lkey;
		wr.wr_id = m->seed;
		wr.num_sge = m->op == OP_WRITE_IMM ? 0 : 1;
		if (ibv_post_recv(s->qp, &wr, &bad)) {
			m->status = -1;
			snprintf(m->text, sizeof(m->text), "ibv_post_recv: %s",
				 strerror(errno));
		}
		break;
	case OP_WRITE:
		fill_guard(s->buf, off, len);
		break;
	case OP_READ:
		fill_guard(s->buf, off, len);
		pattern(s->buf + off, len, m->seed);
		break;
	case OP_CMP_SWAP:
	case OP_FETCH_ADD:
	case OP_ATOMIC_WRITE:
		fill_guard(s->buf, off, 8);
		pattern((uint8_t *)&m->val, 8, m->seed);
		memcpy(s->buf + off, &m->val, 8);
		break;
	}
}

/* Server: check what the test in @m left; fills m->status/text. */
static void server_check(struct side *s, struct msg *m)
{
	uint64_t off = m->off, len = m->size, want;
	char *why = m->text;
	size_t wl = sizeof(m->text);
	struct ibv_wc wc;

	m->status = 0;
	why[0] = 0;
	if (m->op >= E_FIRST) {
		if (!untouched(s->buf, BUF_LEN) || !untouched(s->ro_buf, RO_LEN)) {
			snprintf(why, wl, "memory of the target was written");
			goto bad;
		}
		return;
	}
	switch (m->op) {
	case OP_SEND:
	case OP_SEND_IMM:
	case OP_WRITE_IMM:
		if (wait_wc(s, s->rcq, &wc, why, wl))
			goto bad;
		if (wc.byte_len != len) {
			snprintf(why, wl, "receive byte_len %u, not %llu",
				 wc.byte_len, (unsigned long long)len);
			goto bad;
		}
		if (m->op != OP_SEND &&
		    (!(wc.wc_flags & IBV_WC_WITH_IMM) || wc.imm_data != imm_of(m->seed))) {
			snprintf(why, wl, "immediate %s 0x%x, not 0x%x",
				 wc.wc_flags & IBV_WC_WITH_IMM ? "" : "(flag clear)",
				 ntohl(wc.imm_data), ntohl(imm_of(m->seed)));
			goto bad;
		}
		if (m->op == OP_SEND && (wc.wc_flags & IBV_WC_WITH_IMM)) {
			snprintf(why, wl, "a plain SEND completed with an immediate");
			goto bad;
		}
		if (wc.opcode != (m->op == OP_WRITE_IMM ? IBV_WC_RECV_RDMA_WITH_IMM
							: IBV_WC_RECV)) {
			snprintf(why, wl, "receive opcode %d", wc.opcode);
			goto bad;
		}
		/* fall through */
	case OP_WRITE:
	case OP_READ:
		if (check_payload(s->buf, off, len, m->seed, why, wl))
			goto bad;
		break;
	case OP_CMP_SWAP:
	case OP_FETCH_ADD:
	case OP_ATOMIC_WRITE:
		memcpy(&want, s->buf + off, 8);
		if (want != m->val) {
			snprintf(why, wl, "memory holds 0x%llx, not 0x%llx",
				 (unsigned long long)want, (unsigned long long)m->val);
			goto bad;
		}
		if (check_guard(s->buf, off, 8, why, wl))
			goto bad;
		break;
	}
	return;
bad:
	m->status = -1;
}

/*
 * Client: run the test in @m (prepared by the server): the local side,
 * then the server's check; fills @why with the first failure.
 */
/*
 * Client: an atomic write (through the extended QP interface, the only
 * one that has it) of a new pattern word over the server's; the server
 * then checks that its memory holds the word and nothing around changed.
 */
static int client_awrite(struct side *s, struct msg *m, char *why, size_t wl)
{
	struct ibv_qp_ex *qx = ibv_qp_to_qp_ex(s->qp);
	uint8_t word[8];
	struct ibv_wc wc;
	int err;

	pattern(word, 8, m->seed + 7);
	ibv_wr_start(qx);
	qx->wr_id = m->seed;
	qx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_atomic_write(qx, s->rkey, s->raddr + m->off, word);
	err = ibv_wr_complete(qx);
	if (err) {
		snprintf(why, wl, "ibv_wr_complete: %s", strerror(err));
		return -1;
	}
	if (wait_wc(s, s->scq, &wc, why, wl))
		return -1;
	if (wc.wr_id != m->seed || wc.opcode != IBV_WC_ATOMIC_WRITE) {
		snprintf(why, wl, "completion of wr_id %llu opcode %d, not %llu %d",
			 (unsigned long long)wc.wr_id, wc.opcode,
			 (unsigned long long)m->seed, IBV_WC_ATOMIC_WRITE);
		return -1;
	}
	memcpy(&m->val, word, 8);	/* what the server's memory must hold */
	return 0;
}

static int client_run(struct side *s, struct msg *m, bool cas_miss,
		      char *why, size_t wl)
{
	uint64_t off = m->off, len = m->size, loff = payload_off(m->seed + 1);
	struct ibv_sge sge = { .lkey = s->mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1,
				  .send_flags = IBV_SEND_SIGNALED }, *bad;
	uint64_t orig, swap = 0, add = 0;
	struct ibv_wc wc;

	fill_guard(s->buf, loff, m->op >= OP_CMP_SWAP ? 8 : len);
	sge.addr = (uintptr_t)(s->buf + loff);
	sge.length = len;
	wr.wr_id = m->seed;
	switch (m->op) {
	case OP_SEND:
		wr.opcode = IBV_WR_SEND;
		break;
	case OP_SEND_IMM:
		wr.opcode = IBV_WR_SEND_WITH_IMM;
		wr.imm_data = imm_of(m->seed);
		break;
	case OP_WRITE:
	case OP_WRITE_IMM:
		wr.opcode = m->op == OP_WRITE ? IBV_WR_RDMA_WRITE
					      : IBV_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = imm_of(m->seed);
		wr.wr.rdma.remote_addr = s->raddr + off;
		wr.wr.rdma.rkey = s->rkey;
		break;
	case OP_READ:
		wr.opcode = IBV_WR_RDMA_READ;
		wr.wr.rdma.remote_addr = s->raddr + off;
		wr.wr.rdma.rkey = s->rkey;
		break;
	case OP_CMP_SWAP:
	case OP_FETCH_ADD:
		pattern((uint8_t *)&swap, 8, m->seed + 7);
		add = swap;
		wr.opcode = m->op == OP_CMP_SWAP ? IBV_WR_ATOMIC_CMP_AND_SWP
						  : IBV_WR_ATOMIC_FETCH_AND_ADD;
		wr.wr.atomic.remote_addr = s->raddr + off;
		wr.wr.atomic.rkey = s->rkey;
		wr.wr.atomic.compare_add = m->op == OP_FETCH_ADD ? add :
					   cas_miss ? ~m->val : m->val;
		wr.wr.atomic.swap = swap;
		sge.length = 8;
		break;
	}
	if (m->op <= OP_WRITE_IMM)
		pattern(s->buf + loff, len, m->seed);
	if (m->op == OP_ATOMIC_WRITE)
		return client_awrite(s, m, why, wl);
	if (ibv_post_send(s->qp, &wr, &bad)) {
		snprintf(why, wl, "ibv_post_send: %s", strerror(errno));
		return -1;
	}
	if (wait_wc(s, s->scq, &wc, why, wl))
		return -1;
	if (wc.wr_id != m->seed) {
		snprintf(why, wl, "send completion for another request");
		return -1;
	}
	if (m->op == OP_READ &&
	    check_payload(s->buf, loff, len, m->seed, why, wl))
		return -1;
	if (m->op == OP_CMP_SWAP || m->op == OP_FETCH_ADD) {
		if (check_guard(s->buf, loff, 8, why, wl))
			return -1;
		memcpy(&orig, s->buf + loff, 8);
		if (orig != m->val) {
			snprintf(why, wl, "atomic returned 0x%llx, not 0x%llx",
				 (unsigned long long)orig, (unsigned long long)m->val);
			return -1;
		}
		/* what the server's memory must now hold */
		if (m->op == OP_FETCH_ADD)
			m->val = orig + add;
		else if (!cas_miss)
			m->val = swap;
	}
	return 0;
}

/* After an error: 0 when the requester's QP is in ERR, as it must be. */
static int requester_failed(struct side *s, char *why, size_t wl)
{
	if (lb_qp_state(s->qp) != IBV_QPS_ERR) {
		snprintf(why, wl, "the requester's QP is %s, not ERR",
			 lb_state_str(lb_qp_state(s->qp)));
		return -1;
	}
	return 0;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/*
 * Client, E_VANISH: the server destroyed its QP, so nothing answers.  The
 * first WRITE ends with IBV_WC_RETRY_EXC_ERR once VANISH_RETRIES retries
 * of the local ACK timeout have gone unanswered (not before: the retries
 * are counted as a lower bound on the time taken, never an upper one),
 * the second is flushed, and the QP is in ERR.  Not retry_cnt 7: rdma_rxe
 * takes it to mean "forever", as IBTA says only of rnr_retry.
 */
#define VANISH_RETRIES	3

static int client_vanish(struct side *s, struct ibv_send_wr *wr, char *why,
			 size_t wl)
{
	const struct lb_conn c = LB_CONN(s->rd_atomic);
	/* 4.096 us << timeout, retry_cnt times at the least */
	double least = 4.096e-3 * (1u << c.timeout) * VANISH_RETRIES, t0;
	struct ibv_send_wr second = *wr, *bad;
	struct ibv_wc wc[2];
	int n, got = 0;

	second.wr_id = wr->wr_id + 1;
	wr->next = &second;
	t0 = now_ms();
	if (ibv_post_send(s->qp, wr, &bad)) {
		snprintf(why, wl, "ibv_post_send: %s", strerror(errno));
		return -1;
	}
	while (got < 2) {
		n = lb_poll_ms(s->scq, wc + got, 2 - got, WAIT_MS);
		if (n <= 0) {
			snprintf(why, wl, "%d of 2 completions in %d s", got,
				 WAIT_MS / 1000);
			return -1;
		}
		got += n;
	}
	diag("the first completion after %.0f ms (at least %.0f: %u retries of %.0f ms)",
	     now_ms() - t0, least, VANISH_RETRIES, least / VANISH_RETRIES);
	if (wc[0].wr_id != wr->wr_id || wc[0].status != IBV_WC_RETRY_EXC_ERR) {
		snprintf(why, wl, "first completion %s (%d), not transport retry counter exceeded",
			 ibv_wc_status_str(wc[0].status), wc[0].status);
		return -1;
	}
	if (wc[1].wr_id != second.wr_id || wc[1].status != IBV_WC_WR_FLUSH_ERR) {
		snprintf(why, wl, "second completion %s (%d), not flushed",
			 ibv_wc_status_str(wc[1].status), wc[1].status);
		return -1;
	}
	if (now_ms() - t0 < least) {
		snprintf(why, wl, "retries exhausted after %.0f ms, before %u timeouts of %.0f ms",
			 now_ms() - t0, VANISH_RETRIES, least / VANISH_RETRIES);
		return -1;
	}
	return requester_failed(s, why, wl);
}

/*
 * Client: a request the server's responder must refuse: it completes with
 * IBV_WC_REM_ACCESS_ERR, and the server checks that nothing was written.
 * Or, E_VANISH, a request nothing answers (client_vanish()).
 */
static int client_err(struct side *s, struct msg *m, char *why, size_t wl)
{
	struct ibv_sge sge = { .addr = (uintptr_t)(s->buf + GUARD),
			       .length = 4096, .lkey = s->mr->lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .wr_id = m->seed,
				  .send_flags = IBV_SEND_SIGNALED,
				  .opcode = IBV_WR_RDMA_WRITE }, *bad;
	struct ibv_wc wc;
	int n;

	pattern(s->buf + GUARD, 4096, m->seed);
	wr.wr.rdma.remote_addr = s->raddr + GUARD;
	wr.wr.rdma.rkey = s->rkey ^ 0xff;	/* the key byte: no such key */
	switch (m->op) {
	case E_RO_WRITE:
		wr.wr.rdma.remote_addr = s->ro_addr;
		wr.wr.rdma.rkey = s->ro_rkey;
		break;
	case E_BADKEY_READ:
		wr.opcode = IBV_WR_RDMA_READ;
		break;
	case E_RANGE_WRITE:
		/* the last 2048 bytes of the MR and 2048 past its end */
		wr.wr.rdma.remote_addr = s->raddr + BUF_LEN - 2048;
		wr.wr.rdma.rkey = s->rkey;
		break;
	case E_VANISH:
		wr.wr.rdma.rkey = s->rkey;
		return client_vanish(s, &wr, why, wl);
	}
	if (ibv_post_send(s->qp, &wr, &bad)) {
		snprintf(why, wl, "ibv_post_send: %s", strerror(errno));
		return -1;
	}
	n = lb_poll_ms(s->scq, &wc, 1, WAIT_MS);
	if (n != 1) {
		snprintf(why, wl, "no completion in %d s", WAIT_MS / 1000);
		return -1;
	}
	if (wc.status != IBV_WC_REM_ACCESS_ERR) {
		snprintf(why, wl, "completion status %s (%d), not remote access error",
			 ibv_wc_status_str(wc.status), wc.status);
		return -1;
	}
	return requester_failed(s, why, wl);
}

static int sizes_for(uint32_t mtu, bool quick, uint32_t max_msg,
		     uint64_t *sizes)
{
	static const uint64_t odd[] = { 7, 100, 1000, 12289, 65537, 99991,
					1000003 };
	uint64_t cap = quick ? 256 << 10 : BUF_MAX, v, k;
	int n = 0, i, j;

	if (cap > max_msg)
		cap = max_msg;
#define ADD(x) do { v = (x); if (v && v <= cap && n < NSIZES_MAX) sizes[n++] = v; } while (0)
	ADD(1);
	ADD(2);
	ADD(3);
	for (k = 1; k <= 4; k++) {
		ADD(k * mtu - 1);
		ADD(k * mtu);
		ADD(k * mtu + 1);
	}
	for (v = 4; v <= BUF_MAX; v <<= 1)
		ADD(v);
	for (i = 0; i < (int)(sizeof(odd) / sizeof(odd[0])); i++)
		ADD(odd[i]);
#undef ADD
	/* sort, unique */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && sizes[j - 1] > sizes[j]; j--) {
			v = sizes[j];
			sizes[j] = sizes[j - 1];
			sizes[j - 1] = v;
		}
	for (i = j = 0; i < n; i++)
		if (!j || sizes[j - 1] != sizes[i])
			sizes[j++] = sizes[i];
	return j;
}

static void report(struct msg *m, uint32_t mtu)
{
	if (m->op >= E_FIRST) {
		ok(!m->status, "mtu %u %s: %s, nothing written%s%s",
		   mtu, err_name[m->op - E_FIRST],
		   m->op == E_VANISH ? "IBV_WC_RETRY_EXC_ERR, then a flush" :
				       "IBV_WC_REM_ACCESS_ERR",
		   m->status ? ": " : "", m->text);
		return;
	}
	ok(!m->status, "mtu %u %s %llu B (seed %llu)%s%s", mtu, op_name[m->op],
	   (unsigned long long)m->size, (unsigned long long)m->seed,
	   m->status ? ": " : "", m->text);
}

static void skip_mtu(uint32_t mtu, int active)
{
	printf("ok %d - mtu %u # SKIP the client's port carries %d bytes at most\n",
	       ++tap_n, mtu, active);
}

/* -e: each error on a fresh QP (the error moves it to ERR). */
static void client_errors(struct side *s, uint32_t mtu, uint64_t *seed)
{
	struct msg m;
	char why[256];
	int op, ret;

	for (op = E_FIRST; op < E_END; op++) {
		memset(&m, 0, sizeof(m));
		m.cmd = CMD_MTU;
		m.mtu = mtu;
		put(s, &m);
		s->retry_cnt = op == E_VANISH ? VANISH_RETRIES : 0;
		ret = qp_up(s, mtu);
		s->retry_cnt = 0;
		if (!ok(!ret, "mtu %u: QPs connected", mtu))
			diag("connect: %s", strerror(ret));
		if (!ret) {
			memset(&m, 0, sizeof(m));
			m.cmd = CMD_PREP;
			m.op = op;
			m.seed = (*seed)++;
			put(s, &m);
			get(s, &m);
			why[0] = 0;
			ret = client_err(s, &m, why, sizeof(why));
			/* the server checks its memory whatever happened */
			m.cmd = CMD_CHECK;
			m.status = 0;
			put(s, &m);
			get(s, &m);
			if (m.status) {
				if (!ret)
					snprintf(why, sizeof(why), "server: %.200s", m.text);
				ret = -1;
			}
			m.cmd = CMD_RESULT;
			m.status = ret;
			snprintf(m.text, sizeof(m.text), "%s", why);
			put(s, &m);
			report(&m, mtu);
		}
		memset(&m, 0, sizeof(m));
		m.cmd = CMD_END_MTU;
		put(s, &m);
		qp_down(s);
	}
}

static int client(struct side *s, const uint32_t *mtus, int nmtu, bool quick,
		  unsigned int opmask, bool errors)
{
	uint64_t sizes[NSIZES_MAX], seed = 1;
	struct msg m;
	int mi, si, n, op, ret;
	char why[256];

	for (mi = 0; mi < nmtu; mi++) {
		memset(&m, 0, sizeof(m));
		m.cmd = CMD_MTU;
		m.mtu = mtus[mi];
		if (mtu_enum(mtus[mi]) > s->active_mtu) {
			/* the server prints the same line */
			m.status = 128 << s->active_mtu;
			put(s, &m);
			skip_mtu(m.mtu, m.status);
			continue;
		}
		put(s, &m);
		ret = qp_up(s, mtus[mi]);
		if (!ok(!ret, "mtu %u: QPs connected", mtus[mi]))
			diag("connect: %s", strerror(ret));
		n = sizes_for(mtus[mi], quick, s->max_msg, sizes);
		for (op = 0; op < OP_NR && !ret; op++) {
			if (!(opmask & (1u << op)))
				continue;
			if ((op == OP_ATOMIC_WRITE && !s->awrite) || s->skip_why[op]) {
				/* the server prints the same line */
				memset(&m, 0, sizeof(m));
				m.cmd = CMD_RESULT;
				m.op = op;
				m.size = 8;
				if (s->skip_why[op])
					snprintf(m.text, sizeof(m.text), " # SKIP %s",
						 s->skip_why[op]);
				else
					snprintf(m.text, sizeof(m.text),
						 " # SKIP %s cannot post atomic writes",
						 ibv_get_device_name(s->ctx->device));
				put(s, &m);
				report(&m, mtus[mi]);
				continue;
			}
			for (si = 0; si < (op >= OP_CMP_SWAP ? 3 : n); si++) {
				memset(&m, 0, sizeof(m));
				m.cmd = CMD_PREP;
				m.op = op;
				m.size = op >= OP_CMP_SWAP ? 8 : sizes[si];
				m.seed = seed++;
				m.off = op >= OP_CMP_SWAP ? GUARD : payload_off(m.seed);
				put(s, &m);
				get(s, &m);
				why[0] = 0;
				if (!m.status) {
					/* the third compare misses: memory stays */
					ret = client_run(s, &m, op == OP_CMP_SWAP && si == 2,
							 why, sizeof(why));
				} else {
					ret = -1;
					snprintf(why, sizeof(why), "server: %.200s", m.text);
				}
				m.cmd = CMD_CHECK;
				m.status = ret;
				put(s, &m);
				get(s, &m);
				if (!ret && m.status) {
					ret = -1;
					snprintf(why, sizeof(why), "server: %.200s", m.text);
				}
				m.cmd = CMD_RESULT;
				m.status = ret;
				snprintf(m.text, sizeof(m.text), "%s", why);
				put(s, &m);
				report(&m, mtus[mi]);
				/* a failed request may have left the QP in error */
				if (ret)
					diag("the rest of mtu %u is abandoned", mtus[mi]);
				if (ret)
					break;
			}
		}
		memset(&m, 0, sizeof(m));
		m.cmd = CMD_END_MTU;
		put(s, &m);
		qp_down(s);
	}
	if (errors)
		client_errors(s, mtus[0] <= 128u << s->active_mtu ? mtus[0] : 1024,
			      &seed);
	memset(&m, 0, sizeof(m));
	m.cmd = CMD_QUIT;
	put(s, &m);
	return tap_done();
}

static int server(struct side *s)
{
	struct msg m;
	uint32_t mtu = 0;
	int ret;

	for (;;) {
		get(s, &m);
		switch (m.cmd) {
		case CMD_MTU:
			mtu = m.mtu;
			if (m.status) {
				skip_mtu(mtu, m.status);
				break;
			}
			ret = qp_up(s, mtu);
			if (!ok(!ret, "mtu %u: QPs connected", mtu))
				diag("connect: %s", strerror(ret));
			break;
		case CMD_PREP:
			server_prep(s, &m);
			put(s, &m);
			break;
		case CMD_CHECK:
			/* the client failed: its request may never arrive */
			if (!m.status) {
				/* atomics: m.val is what memory must now hold */
				server_check(s, &m);
			}
			put(s, &m);
			break;
		case CMD_RESULT:
			report(&m, mtu);
			break;
		case CMD_END_MTU:
			qp_down(s);
			break;
		case CMD_QUIT:
			return tap_done();
		default:
			errno = EPROTO;
			die("unknown control message");
		}
	}
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int fd = -1, tries, one = 1;

	if (getaddrinfo(host, port, &hints, &ai)) {
		errno = EHOSTUNREACH;
		die(host);
	}
	/* the server may not listen yet: retry for about a minute */
	for (tries = 0; tries < 600 && fd < 0; tries++) {
		for (a = ai; a; a = a->ai_next) {
			fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
			if (fd < 0)
				continue;
			if (!connect(fd, a->ai_addr, a->ai_addrlen))
				break;
			close(fd);
			fd = -1;
		}
		if (fd < 0)
			usleep(100000);
	}
	freeaddrinfo(ai);
	if (fd < 0)
		die("connect to the server");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int tcp_accept(const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int lfd, fd, one = 1;

	sa.sin_port = htons(atoi(port));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1))
		die("listen");
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(lfd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: integrity -d DEVICE [-p PORT] [-m MTU,...] [-q] [-o OP,...] [-x OP:WHY]... [-e] [HOST]\n"
		"  without HOST: the server; with HOST: the client, which drives\n"
		"  -q: sizes up to 256 KiB only; OPs: send,send_imm,write,write_imm,read,cas,fadd,awrite\n"
		"  -x: the client reports OP as skipped, for the reason WHY, instead of running it\n"
		"  -e: then remote access errors (bad rkey, read-only MR, past the MR's end)\n"
		"      and a peer whose QP vanishes (the requester's retries run out)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const char *const opt_ops[OP_NR] = {
		"send", "send_imm", "write", "write_imm", "read", "cas", "fadd",
		"awrite",
	};
	uint32_t mtus[8] = { 256, 1024, 4096 };
	const char *dev = NULL, *port = "19600";
	unsigned int opmask = (1u << OP_NR) - 1;
	struct side s = { 0 };
	int nmtu = 3, c, i;
	bool quick = false, errors = false;
	char *tok, *save;

	while ((c = getopt(argc, argv, "d:p:m:qo:x:e")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'm':
			nmtu = 0;
			for (tok = strtok_r(optarg, ",", &save); tok && nmtu < 8;
			     tok = strtok_r(NULL, ",", &save)) {
				mtus[nmtu] = atoi(tok);
				if (!mtu_enum(mtus[nmtu]))
					usage();
				nmtu++;
			}
			break;
		case 'q':
			quick = true;
			break;
		case 'e':
			errors = true;
			break;
		case 'x':
			tok = strchr(optarg, ':');
			if (!tok || !tok[1])
				usage();
			*tok = 0;
			for (i = 0; i < OP_NR; i++)
				if (!strcmp(optarg, opt_ops[i]))
					break;
			if (i == OP_NR)
				usage();
			s.skip_why[i] = tok + 1;
			break;
		case 'o':
			opmask = 0;
			for (tok = strtok_r(optarg, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				for (i = 0; i < OP_NR; i++)
					if (!strcmp(tok, opt_ops[i]))
						opmask |= 1u << i;
				if (!opmask)
					usage();
			}
			break;
		default:
			usage();
		}
	}
	if (!dev || argc - optind > 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup(&s, dev);
	if (optind < argc) {
		s.sock = tcp_connect(argv[optind], port);
		return client(&s, mtus, nmtu, quick, opmask, errors);
	}
	s.server = true;
	s.sock = tcp_accept(port);
	return server(&s);
}
