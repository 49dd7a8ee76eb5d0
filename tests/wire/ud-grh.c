// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * tests/wire/ud-grh -d DEVICE -g GID_INDEX [-p PORT] [SERVER]
 *
 * The GRH area of UD receives over RoCE v2 on IPv6, between two hosts
 * (tests/wire/ipv6 runs it in a tests/vm/pair run).  GID_INDEX is the
 * device's RoCE v2 GID of an IPv6 address.  The server (no SERVER
 * argument) listens on TCP PORT (default 19790); the client connects to
 * SERVER:PORT.  They exchange QP numbers and GIDs in one line each, the
 * client sends a UD datagram of 200 bytes to the server, and the server
 * answers with one of 100 bytes through an AH it makes from the receive
 * (ibv_create_ah_from_wc(), which reads the GRH area).  Each side checks
 * its receive: byte count (40 + the payload), IBV_WC_GRH, source QP and
 * payload, and a GRH area that is the IPv6 header of the packet: version
 * 6, payload length (UDP header, BTH, DETH, payload, pad, ICRC), next
 * header UDP, a hop limit, the peer's GID as source and our own as
 * destination.  TAP, one line a check; every wait is bounded (a
 * watchdog, not a performance threshold).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
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

#define QKEY		0x11111111
#define GRH		40
#define BUF		4096

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static struct ibv_cq *cq;
static struct ibv_qp *qp;
static struct ibv_mr *mr;
static uint8_t *sbuf, *rbuf;
static int gid_index;
static union ibv_gid gid, peer_gid;
static uint32_t peer_qpn;

static void die(const char *what)
{
	printf("not ok %d - %s: %s\n", ++tap_n, what, strerror(errno));
	printf("1..%d\n", tap_n);
	exit(1);
}

static void gid_str(const union ibv_gid *g, char *s)
{
	int i;

	for (i = 0; i < 16; i++)
		sprintf(s + 2 * i, "%02x", g->raw[i]);
}

static int gid_parse(const char *s, union ibv_gid *g)
{
	unsigned int b;
	int i;

	if (strlen(s) != 32)
		return -1;
	for (i = 0; i < 16; i++) {
		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -1;
		g->raw[i] = b;
	}
	return 0;
}

static void setup(void)
{
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 2, .max_recv_wr = 2,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	static const uint8_t v4prefix[12] = { [10] = 0xff, [11] = 0xff };
	struct ibv_recv_wr rwr = { .wr_id = 1 }, *bad;
	struct ibv_sge sge;
	int ret;

	if (ibv_query_gid(ctx, LB_PORT, gid_index, &gid))
		die("ibv_query_gid");
	if (!memcmp(gid.raw, v4prefix, sizeof(v4prefix))) {
		errno = EINVAL;
		die("the GID is an IPv4 one, not IPv6");
	}
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		die("ibv_alloc_pd");
	if (posix_memalign((void **)&sbuf, 4096, 2 * BUF))
		die("buffers");
	rbuf = sbuf + BUF;
	memset(sbuf, 0, 2 * BUF);
	mr = ibv_reg_mr(pd, sbuf, 2 * BUF, IBV_ACCESS_LOCAL_WRITE);
	if (!mr)
		die("ibv_reg_mr");
	cq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	if (!cq)
		die("ibv_create_cq");
	ia.send_cq = cq;
	ia.recv_cq = cq;
	qp = ibv_create_qp(pd, &ia);
	if (!qp)
		die("ibv_create_qp");
	ret = lb_ud_rts(qp, QKEY);
	if (ret) {
		errno = ret;
		die("UD QP to RTS");
	}
	/* A receive of the most the MTU allows, and the GRH area. */
	sge.addr = (uintptr_t)rbuf;
	sge.length = BUF;
	sge.lkey = mr->lkey;
	rwr.sg_list = &sge;
	rwr.num_sge = 1;
	errno = ibv_post_recv(qp, &rwr, &bad);
	if (errno)
		die("ibv_post_recv");
}

/* The control connection: one line each way. */
static FILE *control(const char *server, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct sockaddr_in a = { .sin_family = AF_INET };
	char line[128], g[33];
	int fd, ls, one = 1, i;
	FILE *f;

	if (!server) {
		ls = socket(AF_INET, SOCK_STREAM, 0);
		if (ls < 0)
			die("socket");
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		a.sin_port = htons(port);
		if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1))
			die("listen");
		fd = accept(ls, NULL, NULL);
		if (fd < 0)
			die("accept");
		close(ls);
	} else {
		snprintf(line, sizeof(line), "%d", port);
		if (getaddrinfo(server, line, &hints, &ai)) {
			errno = EINVAL;
			die("getaddrinfo");
		}
		/* the server may not listen yet: about 60 s */
		for (i = 0; ; i++) {
			fd = socket(ai->ai_family, SOCK_STREAM, 0);
			if (fd < 0)
				die("socket");
			if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
				break;
			close(fd);
			if (i == 600)
				die("connect to the server");
			usleep(100000);
		}
		freeaddrinfo(ai);
	}
	f = fdopen(fd, "r+");
	if (!f)
		die("fdopen");
	gid_str(&gid, g);
	fprintf(f, "%u %s\n", qp->qp_num, g);
	fflush(f);
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "%u %32s", &peer_qpn, g) != 2 ||
	    gid_parse(g, &peer_gid)) {
		errno = EPROTO;
		die("the peer's QP number and GID");
	}
	return f;
}

static uint8_t pattern(size_t i, unsigned int seed)
{
	return (uint8_t)(seed * 13 + i * 7 + (i >> 8));
}

/* Send @len bytes of pattern @seed to the peer's QP through @ah. */
static void send_dgram(struct ibv_ah *ah, uint32_t len, unsigned int seed)
{
	struct ibv_sge sge = { (uintptr_t)sbuf, len, mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = 2, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.wr.ud = { .ah = ah, .remote_qpn = peer_qpn,
			   .remote_qkey = QKEY },
	}, *bad;
	struct ibv_wc wc;
	size_t i;
	int got;

	for (i = 0; i < len; i++)
		sbuf[i] = pattern(i, seed);
	errno = ibv_post_send(qp, &wr, &bad);
	if (errno)
		die("ibv_post_send");
	got = lb_poll_ms(cq, &wc, 1, LB_WAIT_MS);
	ok(got == 1 && wc.wr_id == 2 && wc.status == IBV_WC_SUCCESS,
	   "a UD SEND of %u bytes to QP %u at the peer's IPv6 GID completes (%s)",
	   len, peer_qpn, got == 1 ? ibv_wc_status_str(wc.status) : "none");
}

/* Wait for the datagram of @len bytes, pattern @seed; check it. */
static bool recv_dgram(struct ibv_wc *wc, uint32_t len, unsigned int seed)
{
	const uint8_t *h = rbuf;
	uint32_t want = 8 + 12 + 8 + ((len + 3) & ~3u) + 4, plen;
	char why[256] = "";
	size_t i;
	int got;

	got = lb_poll_ms(cq, wc, 1, LB_WAIT_MS);
	if (!ok(got == 1 && wc->wr_id == 1 && wc->status == IBV_WC_SUCCESS &&
		wc->byte_len == GRH + len && (wc->wc_flags & IBV_WC_GRH) &&
		wc->src_qp == peer_qpn,
		"the datagram arrives: %u bytes, the GRH area first, from QP %u (got %d: %s, %u bytes, flags %#x, src %u)",
		GRH + len, peer_qpn, got,
		got == 1 ? ibv_wc_status_str(wc->status) : "-",
		got == 1 ? wc->byte_len : 0, got == 1 ? wc->wc_flags : 0,
		got == 1 ? wc->src_qp : 0))
		return false;
	for (i = 0; i < len; i++)
		if (rbuf[GRH + i] != pattern(i, seed))
			break;
	ok(i == len, "  its payload is whole (first difference at %zu of %u)",
	   i, len);
	plen = (uint32_t)h[4] << 8 | h[5];
	if (h[0] >> 4 != 6)
		snprintf(why, sizeof(why), "version %u", h[0] >> 4);
	else if (plen != want)
		snprintf(why, sizeof(why), "payload length %u, want %u",
			 plen, want);
	else if (h[6] != IPPROTO_UDP)
		snprintf(why, sizeof(why), "next header %u", h[6]);
	else if (!h[7])
		snprintf(why, sizeof(why), "hop limit 0");
	else if (memcmp(h + 8, peer_gid.raw, 16))
		snprintf(why, sizeof(why), "the source is not the peer's GID");
	else if (memcmp(h + 24, gid.raw, 16))
		snprintf(why, sizeof(why), "the destination is not our GID");
	return ok(!why[0], "  its GRH area is the packet's IPv6 header (%s)",
		  why[0] ? why : "version 6, payload length, UDP, addresses");
}

int main(int argc, char **argv)
{
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = LB_PORT,
		.grh = { .hop_limit = 64 },
	};
	const char *dev = NULL, *server = NULL;
	int port = 19790, opt;
	struct ibv_ah *ah;
	struct ibv_wc wc;
	char line[8];
	FILE *f;

	gid_index = -1;
	while ((opt = getopt(argc, argv, "d:g:p:")) != -1) {
		switch (opt) {
		case 'd':
			dev = optarg;
			break;
		case 'g':
			gid_index = atoi(optarg);
			break;
		case 'p':
			port = atoi(optarg);
			break;
		default:
			dev = NULL;
			break;
		}
	}
	if (optind < argc)
		server = argv[optind];
	if (!dev || gid_index < 0) {
		fprintf(stderr, "usage: %s -d DEVICE -g GID_INDEX [-p PORT] [SERVER]\n",
			argv[0]);
		return 2;
	}
	ctx = open_device_by_name(dev);
	if (!ctx)
		die("open the device");
	setup();
	f = control(server, port);

	if (server) {
		aha.grh.dgid = peer_gid;
		aha.grh.sgid_index = gid_index;
		ah = ibv_create_ah(pd, &aha);
		if (!ah)
			die("ibv_create_ah (to the server's GID)");
		send_dgram(ah, 200, 1);
		recv_dgram(&wc, 100, 2);
	} else {
		if (!recv_dgram(&wc, 200, 1))
			return tap_done();
		ah = ibv_create_ah_from_wc(pd, &wc, (struct ibv_grh *)rbuf,
					   LB_PORT);
		if (!ok(ah != NULL, "ibv_create_ah_from_wc() makes an AH of the receive (%s)",
			ah ? "ok" : strerror(errno)))
			return tap_done();
		send_dgram(ah, 100, 2);
	}
	/* the client has its answer, or its watchdog fired */
	fprintf(f, "done\n");
	fflush(f);
	if (!fgets(line, sizeof(line), f))
		diag("the peer closed the control connection");
	ibv_destroy_ah(ah);
	return tap_done();
}
