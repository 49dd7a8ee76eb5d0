// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tests/wire/hostile-target -d DEVICE [-p PORT]
 *
 * The target of tests/wire/hostile-send: in one VM of a tests/vm/pair run,
 * this program offers QPs of DEVICE to a packet forger in the other VM,
 * which sends them malformed RoCE v2 packets.  For each case the forger
 * asks for a fresh target QP (RC, RC on an SRQ, UC, or UD: in RTS, on an
 * SRQ, in INIT or in RESET), gets its QPN and the keys and addresses of
 * its memory, sends its packets, then a
 * synchronising packet (an RDMA WRITE with immediate of no bytes) to a
 * QP of its own here, and says what must have happened.  Packets are
 * processed in arrival order, so once the synchronising completion is
 * here every packet of the case has been.  The checks, one TAP line a
 * case:
 *
 *   - the guard areas around the MR and the receive buffers, and the
 *     MR of another PD, are untouched: nothing is written outside the
 *     memory a packet may write;
 *   - the MR and the receive buffers hold exactly what the case expects
 *     (written=OFF:LEN:BYTE, recv=LEN:BYTE, or "any"; a UD receive,
 *     ud=LEN:BYTE, the 40-byte GRH area first: zeros, then the IPv4
 *     header of a packet from the forger to us, with its checksum and
 *     the packet's length, iplen=BYTES);
 *   - the target QP's state (RTS or ERR) and its completions other than
 *     flushes (cq=s0,r0:1024: a send or receive, its status, a receive's
 *     byte count; a UD receive's also :qSRC_QP, :iIMM and :nogrh when the
 *     completion says so);
 *   - the port counters moved by exactly what the case says (icrc, drop,
 *     seq, dup, rnrtx, ...), or at least (junk: icrc + drop).
 *
 * The control protocol is lines over TCP (PORT, default 19650):
 *
 *   A: hello SYNC_QPN
 *   B: case NAME KIND POST            A: ready QPN VA LEN RKEY VA2 LEN2 RKEY2
 *      KIND: rc, srq, uc, ud, ud-srq, ud-init, ud-reset
 *      POST: none, send (one SEND from the target QP), small (receives
 *            of UD_SMALL bytes)
 *   B: check NAME SYNC KEY=VALUE...   A: ok|not-ok
 *   B: end                            (A prints the plan and exits)
 *
 * Every wait is bounded (a watchdog, not a performance threshold).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../verbs/tap.h"
#include "../verbs/device.h"
#include "../verbs/loopback.h"

#define PAGE		4096
#define MR_LEN		(2 * PAGE)
#define RECV_LEN	(2 * PAGE)
/* [guard][MR][guard][receive buffers][guard] */
#define MR_OFF		PAGE
#define RECV_OFF	(MR_OFF + MR_LEN + PAGE)
#define BUF_LEN		(RECV_OFF + RECV_LEN + PAGE)
#define MR2_LEN		PAGE
#define GUARD		0xa5
#define MR2_BYTE	0x5a
#define RECV_BYTE	0x00
#define FAKE_PEER_QPN	0x00bead
#define NRECV		2
#define SYNC_RECVS	32
#define UD_QKEY		0x0badcafe	/* hostile-send's too */
#define UD_SMALL	(40 + 512)	/* a receive of "small" */
#define GRH		40

static const char *const counters[][2] = {
	{ "icrc", "rcvd_icrc_err" },
	{ "drop", "rcvd_pkts_dropped" },
	{ "rx", "rcvd_pkts" },
	{ "seq", "out_of_seq_request" },
	{ "seqrx", "rcvd_seq_err" },
	{ "dup", "duplicate_request" },
	{ "rnrtx", "send_rnr_err" },
	{ "rnrrx", "rcvd_rnr_err" },
};
#define NCOUNTERS	(sizeof(counters) / sizeof(counters[0]))

static const char *dev_name;
static struct ibv_context *ctx;
static struct ibv_pd *pd, *pd2;
static uint8_t *buf, *buf2;
static struct ibv_mr *mr, *mr2, *rmr;
static int gid_index;
static union ibv_gid gid, peer_gid;
static struct ibv_cq *sync_cq;
static struct ibv_qp *sync_qp;
static uint64_t sync_slot;

/* The target of the current case. */
static struct ibv_cq *tcq;
static struct ibv_srq *tsrq;
static struct ibv_qp *tqp;
static long long cbase[NCOUNTERS];

static void die(const char *what)
{
	printf("not ok %d - %s: %s\n", ++tap_n, what, strerror(errno));
	printf("1..%d\n", tap_n);
	exit(1);
}

static long long counter(const char *name)
{
	char path[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s",
		 dev_name, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%lld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/*
 * All the counters.  The RDMA core caches a port's counters for 10 ms
 * after a read (sysfs): wait that out first, or a read may return the
 * values of the one before.
 */
static void read_counters(long long *v)
{
	size_t i;

	usleep(50000);
	for (i = 0; i < NCOUNTERS; i++)
		v[i] = counter(counters[i][1]);
}

static uint8_t mr_pattern(size_t i)
{
	return (uint8_t)(i * 13 + 1);
}

static void fill(void)
{
	size_t i;

	memset(buf, GUARD, BUF_LEN);
	for (i = 0; i < MR_LEN; i++)
		buf[MR_OFF + i] = mr_pattern(i);
	memset(buf + RECV_OFF, RECV_BYTE, RECV_LEN);
	memset(buf2, MR2_BYTE, MR2_LEN);
}

static int post_sync_recv(void)
{
	struct ibv_recv_wr wr = { .wr_id = sync_slot++ }, *bad;

	return ibv_post_recv(sync_qp, &wr, &bad);
}

static void setup(void)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = SYNC_RECVS,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct lb_conn c = LB_CONN(1);
	int i;

	ctx = lb_open(dev_name, &gid_index, &gid);
	if (!ctx)
		die("open the device and find its RoCE v2 IPv4 GID");
	pd = ibv_alloc_pd(ctx);
	pd2 = ibv_alloc_pd(ctx);
	if (!pd || !pd2)
		die("ibv_alloc_pd");
	if (posix_memalign((void **)&buf, PAGE, BUF_LEN) ||
	    posix_memalign((void **)&buf2, PAGE, MR2_LEN))
		die("buffers");
	fill();
	mr = ibv_reg_mr(pd, buf + MR_OFF, MR_LEN, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	rmr = ibv_reg_mr(pd, buf + RECV_OFF, RECV_LEN, IBV_ACCESS_LOCAL_WRITE);
	mr2 = ibv_reg_mr(pd2, buf2, MR2_LEN, IBV_ACCESS_LOCAL_WRITE |
			 IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!mr || !rmr || !mr2)
		die("ibv_reg_mr");

	sync_cq = ibv_create_cq(ctx, SYNC_RECVS * 2, NULL, NULL, 0);
	if (!sync_cq)
		die("ibv_create_cq");
	ia.send_cq = sync_cq;
	ia.recv_cq = sync_cq;
	sync_qp = ibv_create_qp(pd, &ia);
	if (!sync_qp)
		die("ibv_create_qp (sync)");
	c.path_mtu = IBV_MTU_1024;
	c.timeout = 20;
	if ((errno = lb_connect_attr(sync_qp, FAKE_PEER_QPN, &peer_gid,
				     gid_index, &c)))
		die("connect the sync QP");
	for (i = 0; i < SYNC_RECVS; i++)
		if (post_sync_recv())
			die("ibv_post_recv (sync)");
}

static void target_down(void)
{
	if (tqp)
		ibv_destroy_qp(tqp);
	if (tsrq)
		ibv_destroy_srq(tsrq);
	if (tcq)
		ibv_destroy_cq(tcq);
	tqp = NULL;
	tsrq = NULL;
	tcq = NULL;
}

/* Bring UD QP @qp to @state (RESET, INIT or RTS): 0 or an errno. */
static int ud_up(struct ibv_qp *qp, enum ibv_qp_state state)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = 1, .qkey = UD_QKEY,
	};

	if (state == IBV_QPS_RESET)
		return 0;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_QKEY))
		return errno ? errno : EIO;
	if (state == IBV_QPS_INIT)
		return 0;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		return errno ? errno : EIO;
	a.qp_state = IBV_QPS_RTS;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
		return errno ? errno : EIO;
	return 0;
}

/* A fresh target QP of @kind, with @post: 0, or an errno. */
static int target_up(const char *kind, const char *post)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1,
			 .max_inline_data = 64 },
	};
	struct ibv_srq_init_attr sa = {
		.attr = { .max_wr = NRECV, .max_sge = 1 },
	};
	struct lb_conn c = LB_CONN(1);
	struct ibv_recv_wr rwr, *bad;
	struct ibv_send_wr swr, *sbad;
	struct ibv_sge sge;
	char msg[16] = "hostile-target";
	bool ud = !strncmp(kind, "ud", 2);
	bool srq = !strcmp(kind, "srq") || !strcmp(kind, "ud-srq");
	bool send = !strcmp(post, "send");
	uint32_t rlen = !strcmp(post, "small") ? UD_SMALL : RECV_LEN / NRECV;
	size_t i;
	int ret;

	target_down();
	fill();
	if (ud) {
		struct ibv_port_attr pa;

		/* hostile-send's UD cases are for a port MTU of 1024 */
		if (ibv_query_port(ctx, 1, &pa))
			return errno;
		if (pa.active_mtu != IBV_MTU_1024)
			return EMSGSIZE;
	}
	tcq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	if (!tcq)
		return errno;
	if (srq) {
		tsrq = ibv_create_srq(pd, &sa);
		if (!tsrq)
			return errno;
		ia.srq = tsrq;
		ia.cap.max_recv_wr = 0;
	}
	ia.send_cq = tcq;
	ia.recv_cq = tcq;
	if (!strcmp(kind, "uc"))
		ia.qp_type = IBV_QPT_UC;
	else if (ud)
		ia.qp_type = IBV_QPT_UD;
	else if (strcmp(kind, "rc") && strcmp(kind, "srq"))
		return EINVAL;
	tqp = ibv_create_qp(pd, &ia);
	if (!tqp)
		return errno;
	if (!strcmp(kind, "ud-reset"))
		ret = ud_up(tqp, IBV_QPS_RESET);
	else if (!strcmp(kind, "ud-init"))
		ret = ud_up(tqp, IBV_QPS_INIT);
	else if (ud)
		ret = ud_up(tqp, IBV_QPS_RTS);
	else {
		c.path_mtu = IBV_MTU_1024;
		c.timeout = 20;	/* the forger answers the requester cases */
		ret = lb_connect_attr(tqp, FAKE_PEER_QPN, &peer_gid,
				      gid_index, &c);
	}
	if (ret)
		return ret;
	/* Receives are posted from INIT on (none in RESET). */
	for (i = 0; i < NRECV && strcmp(kind, "ud-reset"); i++) {
		sge.addr = (uintptr_t)buf + RECV_OFF + i * (RECV_LEN / NRECV);
		sge.length = rlen;
		sge.lkey = rmr->lkey;
		memset(&rwr, 0, sizeof(rwr));
		rwr.wr_id = 100 + i;
		rwr.sg_list = &sge;
		rwr.num_sge = 1;
		ret = srq ? ibv_post_srq_recv(tsrq, &rwr, &bad) :
			    ibv_post_recv(tqp, &rwr, &bad);
		if (ret)
			return ret;
	}
	read_counters(cbase);
	if (!send)
		return 0;
	if (ud)
		return EINVAL;
	/* One inline SEND of one packet, PSN 0: the forger answers it. */
	sge.addr = (uintptr_t)msg;
	sge.length = sizeof(msg);
	sge.lkey = 0;
	memset(&swr, 0, sizeof(swr));
	swr.wr_id = 7;
	swr.sg_list = &sge;
	swr.num_sge = 1;
	swr.opcode = IBV_WR_SEND;
	swr.send_flags = IBV_SEND_INLINE | IBV_SEND_SIGNALED;
	return ibv_post_send(tqp, &swr, &sbad);
}

/* Wait for the forger's synchronising completion @imm. */
static int sync_wait(uint32_t imm, char *why, size_t n)
{
	struct ibv_wc wc;
	int got = lb_poll_ms(sync_cq, &wc, 1, 120000);

	if (got != 1) {
		snprintf(why, n, "no synchronising completion (polled %d)", got);
		return -1;
	}
	if (post_sync_recv()) {
		snprintf(why, n, "ibv_post_recv (sync) failed");
		return -1;
	}
	if (wc.status != IBV_WC_SUCCESS || !(wc.wc_flags & IBV_WC_WITH_IMM) ||
	    ntohl(wc.imm_data) != imm) {
		snprintf(why, n, "synchronising completion: status %d imm %u, want imm %u",
			 wc.status, ntohl(wc.imm_data), imm);
		return -1;
	}
	return 0;
}

/* Append to @why (at most @n bytes in all). */
static void __attribute__((format(printf, 3, 4)))
say(char *why, size_t n, const char *fmt, ...)
{
	size_t l = strlen(why);
	va_list ap;

	if (l + 2 >= n)
		return;
	if (l) {
		why[l++] = ';';
		why[l++] = ' ';
		why[l] = 0;
	}
	va_start(ap, fmt);
	vsnprintf(why + l, n - l, fmt, ap);
	va_end(ap);
}

/* The first offset in [@off, @off + @len) of buf not holding @byte, or -1. */
static long first_diff(const uint8_t *p, size_t len, uint8_t byte)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != byte)
			return (long)i;
	return -1;
}

/*
 * The GRH area of a UD receive at @p: 20 zero bytes, then the IPv4 header
 * of a UDP packet of @iplen bytes from the forger to us, with a right
 * checksum.
 */
static void check_grh(const uint8_t *p, long iplen, char *why, size_t n)
{
	uint32_t sum = 0;
	long d;
	int i;

	if ((d = first_diff(p, 20, 0)) >= 0)
		say(why, n, "GRH byte %ld is 0x%02x, want 0", d, p[d]);
	p += 20;
	for (i = 0; i < 20; i += 2)
		sum += p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	if (p[0] != 0x45 || p[9] != IPPROTO_UDP || sum != 0xffff)
		say(why, n, "GRH: no IPv4 header of a UDP packet (version/IHL 0x%02x, protocol %u, checksum sum 0x%x)",
		    p[0], p[9], sum);
	if (iplen >= 0 && (p[2] << 8 | p[3]) != iplen)
		say(why, n, "GRH: IPv4 total length %u, want %ld",
		    p[2] << 8 | p[3], iplen);
	if (memcmp(p + 12, &peer_gid.raw[12], 4) || memcmp(p + 16, &gid.raw[12], 4))
		say(why, n, "GRH: IPv4 header from %u.%u.%u.%u to %u.%u.%u.%u, want from the forger to us",
		    p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19]);
}

static void check_memory(const char *written, const char *recv, bool grh,
			 long iplen, char *why, size_t n)
{
	unsigned long off = 0, len = 0, v = 0;
	size_t i, at = grh ? GRH : 0;
	long d;

	if ((d = first_diff(buf, MR_OFF, GUARD)) >= 0)
		say(why, n, "guard before the MR written at -%ld", MR_OFF - d);
	if ((d = first_diff(buf + MR_OFF + MR_LEN, PAGE, GUARD)) >= 0)
		say(why, n, "guard after the MR written at +%ld", d);
	if ((d = first_diff(buf + RECV_OFF + RECV_LEN, PAGE, GUARD)) >= 0)
		say(why, n, "guard after the receive buffers written at +%ld", d);
	if ((d = first_diff(buf2, MR2_LEN, MR2_BYTE)) >= 0)
		say(why, n, "the MR of the other PD written at %ld", d);

	if (!written || strcmp(written, "any")) {
		if (written && sscanf(written, "%lu:%lu:%lu", &off, &len, &v) != 3)
			say(why, n, "bad written=%s", written);
		for (i = 0; i < MR_LEN; i++) {
			uint8_t want = i >= off && i < off + len ? (uint8_t)v :
								   mr_pattern(i);

			if (buf[MR_OFF + i] != want) {
				say(why, n, "MR byte %zu is 0x%02x, want 0x%02x",
				    i, buf[MR_OFF + i], want);
				break;
			}
		}
	}
	if (!recv || strcmp(recv, "any")) {
		len = 0;
		v = 0;
		if (recv && sscanf(recv, "%lu:%lu", &len, &v) != 2)
			say(why, n, "bad recv=%s", recv);
		if (grh)
			check_grh(buf + RECV_OFF, iplen, why, n);
		for (i = at; i < RECV_LEN; i++) {
			uint8_t want = i < at + len ? (uint8_t)v : RECV_BYTE;

			if (buf[RECV_OFF + i] != want) {
				say(why, n, "receive buffer byte %zu is 0x%02x, want 0x%02x",
				    i, buf[RECV_OFF + i], want);
				break;
			}
		}
	}
}

/*
 * The target's completions other than flushes: "s0,r0:1024", a UD
 * receive's with its source QP, immediate data and no GRH flag:
 * "r0:140:q9:i1020304:nogrh".
 */
static void target_cq(char *out, size_t n)
{
	struct ibv_wc wc[16];
	int got, i;
	size_t l = 0;

	out[0] = 0;
	while ((got = ibv_poll_cq(tcq, 16, wc)) > 0) {
		for (i = 0; i < got && l < n; i++) {
			const struct ibv_wc *w = &wc[i];

			if (w->status == IBV_WC_WR_FLUSH_ERR)
				continue;
			if (w->wr_id < 100) {
				l += snprintf(out + l, n - l, "%ss%d", l ? "," : "",
					      w->status);
				continue;
			}
			l += snprintf(out + l, n - l, "%sr%d:%u", l ? "," : "",
				      w->status, w->byte_len);
			if (tqp->qp_type != IBV_QPT_UD ||
			    w->status != IBV_WC_SUCCESS || l >= n)
				continue;
			l += snprintf(out + l, n - l, ":q%u", w->src_qp);
			if (l < n && (w->wc_flags & IBV_WC_WITH_IMM))
				l += snprintf(out + l, n - l, ":i%x",
					      ntohl(w->imm_data));
			if (l < n && !(w->wc_flags & IBV_WC_GRH))
				l += snprintf(out + l, n - l, ":nogrh");
		}
		if (l >= n)
			return;
	}
}

/* One case's checks against "KEY=VALUE ..." expectations. */
static void check(const char *name, uint32_t imm, char *exp, FILE *ctl)
{
	char why[1024] = "", cq[256], seen[512] = "";
	const char *written = NULL, *recv = NULL, *state = "RTS", *want_cq = "";
	bool grh = false;
	long iplen = -1;
	long long junk = -1, delta[NCOUNTERS];
	long long want[NCOUNTERS];
	enum ibv_qp_state s;
	char *tok, *save;
	size_t i, l = 0;

	for (i = 0; i < NCOUNTERS; i++)
		want[i] = -1;
	for (tok = strtok_r(exp, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		char *v = strchr(tok, '=');

		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(tok, "written"))
			written = v;
		else if (!strcmp(tok, "recv"))
			recv = v;
		else if (!strcmp(tok, "ud")) {
			recv = v;
			grh = true;
		}
		else if (!strcmp(tok, "state"))
			state = v;
		else if (!strcmp(tok, "cq"))
			want_cq = v;
		else if (!strcmp(tok, "iplen"))
			iplen = atol(v);
		else if (!strcmp(tok, "junk"))
			junk = atoll(v);
		else
			for (i = 0; i < NCOUNTERS; i++)
				if (!strcmp(tok, counters[i][0]))
					want[i] = atoll(v);
	}

	if (sync_wait(imm, why, sizeof(why))) {
		/* The receive path is gone: no point in going on. */
		ok(false, "%s: %s", name, why);
		fprintf(ctl, "not-ok %s\n", why);
		fflush(ctl);
		printf("1..%d\n", tap_n);
		fflush(stdout);
		_exit(1);
	}
	read_counters(delta);
	for (i = 0; i < NCOUNTERS; i++) {
		delta[i] -= cbase[i];
		if (delta[i])
			l += snprintf(seen + l, sizeof(seen) - l, " %s+%lld",
				      counters[i][0], delta[i]);
	}
	s = lb_qp_state(tqp);
	if (strcmp(state, "any") && strcmp(state, lb_state_str(s)))
		say(why, sizeof(why), "QP %s, want %s", lb_state_str(s), state);
	target_cq(cq, sizeof(cq));
	if (strcmp(want_cq, "any") && strcmp(cq, want_cq))
		say(why, sizeof(why), "completions \"%s\", want \"%s\"", cq, want_cq);
	for (i = 0; i < NCOUNTERS; i++)
		if (want[i] >= 0 && delta[i] != want[i])
			say(why, sizeof(why), "%s +%lld, want +%lld",
			    counters[i][1], delta[i], want[i]);
	if (junk >= 0 && delta[0] + delta[1] < junk)
		say(why, sizeof(why), "ICRC errors + drops +%lld, want at least +%lld",
		    delta[0] + delta[1], junk);
	check_memory(written, recv, grh, iplen, why, sizeof(why));
	if (ok(!why[0], "%s: QP %s, counters%s", name, lb_state_str(s),
	       seen[0] ? seen : " unchanged"))
		fprintf(ctl, "ok\n");
	else {
		diag("%s", why);
		fprintf(ctl, "not-ok %s\n", why);
	}
	fflush(ctl);
}

/*
 * Not a forged packet: a UD SEND of ours to the forger's host.  A UD
 * message is one packet (IBTA), so a SEND of the port's active MTU + 1
 * bytes completes with IBV_WC_LOC_LEN_ERR and puts nothing on the wire
 * (sent_pkts stays), and one of exactly the MTU goes as one packet.
 */
static void ud_send_mtu(void)
{
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = 1,
		.grh = { .dgid = peer_gid, .sgid_index = gid_index,
			 .hop_limit = 64 },
	};
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 2, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	static const struct {
		int extra;
		enum ibv_wc_status status;
		long long sent;
	} c[] = {
		{ 1, IBV_WC_LOC_LEN_ERR, 0 },
		{ 0, IBV_WC_SUCCESS, 1 },
	};
	struct ibv_send_wr wr, *bad;
	struct ibv_port_attr pa;
	struct ibv_ah *ah;
	struct ibv_sge sge;
	struct ibv_wc wc;
	long long before, after;
	uint32_t len;
	size_t i;
	int got;

	target_down();
	if (ibv_query_port(ctx, 1, &pa))
		die("ibv_query_port");
	ah = ibv_create_ah(pd, &aha);
	if (!ah)
		die("ibv_create_ah (to the forger's host)");
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		len = (128u << pa.active_mtu) + c[i].extra;
		tcq = ibv_create_cq(ctx, 4, NULL, NULL, 0);
		if (!tcq)
			die("ibv_create_cq");
		ia.send_cq = tcq;
		ia.recv_cq = tcq;
		tqp = ibv_create_qp(pd, &ia);
		if (!tqp)
			die("ibv_create_qp (UD)");
		errno = ud_up(tqp, IBV_QPS_RTS);
		if (errno)
			die("UD QP to RTS");
		sge.addr = (uintptr_t)buf + MR_OFF;
		sge.length = len;
		sge.lkey = mr->lkey;
		memset(&wr, 0, sizeof(wr));
		wr.wr_id = 40 + i;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.wr.ud.ah = ah;
		wr.wr.ud.remote_qpn = FAKE_PEER_QPN;
		wr.wr.ud.remote_qkey = UD_QKEY;
		usleep(50000);	/* the counters' 10 ms cache, as above */
		before = counter("sent_pkts");
		errno = ibv_post_send(tqp, &wr, &bad);
		if (errno)
			die("ibv_post_send (UD)");
		got = lb_poll_ms(tcq, &wc, 1, 60000);
		usleep(50000);
		after = counter("sent_pkts");
		ok(got == 1 && wc.wr_id == wr.wr_id &&
		   wc.status == c[i].status && before >= 0 &&
		   after - before == c[i].sent,
		   "a UD SEND of %u bytes (the port MTU%s) to the other host completes with %s, %lld packet(s) sent (got %d: %s, sent_pkts %lld -> %lld)",
		   len, c[i].extra ? " + 1" : "", ibv_wc_status_str(c[i].status),
		   c[i].sent, got, got == 1 ? ibv_wc_status_str(wc.status) : "-",
		   before, after);
		target_down();
	}
	ibv_destroy_ah(ah);
}

static FILE *accept_forger(int port)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int one = 1, ls, fd;

	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0)
		die("socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1))
		die("listen");
	fd = accept(ls, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(ls);
	return fdopen(fd, "r+");
}

int main(int argc, char **argv)
{
	const char *peer = getenv("FRDMA_PEER");
	char line[1024], name[64], kind[16], post[16];
	int port = 19650, opt, ret;
	unsigned int imm;
	struct in_addr pa;
	FILE *ctl;

	while ((opt = getopt(argc, argv, "d:p:")) != -1) {
		switch (opt) {
		case 'd':
			dev_name = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		default:
			dev_name = NULL;
			optind = argc;
			break;
		}
	}
	if (!dev_name || !peer || inet_pton(AF_INET, peer, &pa) != 1) {
		fprintf(stderr, "usage: FRDMA_PEER=ADDRESS %s -d DEVICE [-p PORT]\n",
			argv[0]);
		return 2;
	}
	memset(&peer_gid, 0, sizeof(peer_gid));
	peer_gid.raw[10] = 0xff;
	peer_gid.raw[11] = 0xff;
	memcpy(&peer_gid.raw[12], &pa, 4);
	setup();

	ctl = accept_forger(port);
	fprintf(ctl, "hello %u\n", sync_qp->qp_num);
	fflush(ctl);
	while (fgets(line, sizeof(line), ctl)) {
		if (sscanf(line, "case %63s %15s %15s", name, kind, post) == 3) {
			ret = target_up(kind, post);
			if (ret) {
				errno = ret;
				ok(false, "%s: a target QP: %s", name, strerror(ret));
				fprintf(ctl, "error\n");
			} else {
				fprintf(ctl, "ready %u %llu %u %u %llu %u %u\n",
					tqp->qp_num,
					(unsigned long long)(uintptr_t)(buf + MR_OFF),
					MR_LEN, mr->rkey,
					(unsigned long long)(uintptr_t)buf2,
					MR2_LEN, mr2->rkey);
			}
			fflush(ctl);
		} else if (sscanf(line, "check %63s %u", name, &imm) == 2) {
			char *exp = strchr(line, ' ');

			exp = strchr(exp + 1, ' ');
			exp = strchr(exp + 1, ' ');
			check(name, imm, exp ? exp : (char *)"", ctl);
		} else if (!strncmp(line, "end", 3)) {
			break;
		} else if (!strncmp(line, "fail ", 5)) {
			/* the forger's own failure, reported here */
			line[strcspn(line, "\n")] = 0;
			ok(false, "forger: %s", line + 5);
		}
	}
	if (!strncmp(line, "end", 3))
		ok(lb_qp_state(sync_qp) == IBV_QPS_RTS,
		   "the synchronising QP is still in RTS after every case");
	else
		ok(false, "the forger ended without \"end\"");
	ud_send_mtu();
	target_down();
	return tap_done();
}
