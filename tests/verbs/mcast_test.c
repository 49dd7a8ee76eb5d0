// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * mcast_test [-d DEVICE]: UD multicast on an frdma device.
 *
 * The device reports multicast limits.  Two UD QPs attached to a group
 * (an IPv4-mapped MGID, as the RDMA CM joins, and an IPv6 one) each
 * receive a datagram sent to the group's GID with QPN 0xffffff, with the
 * GRH area and work completion of a unicast datagram; a UD QP that is not
 * attached receives nothing, the sender included (until it attaches too:
 * then it receives its own datagram); after detach the group reaches
 * nobody.  Attaching an RC QP, or to a GID that is not multicast, and
 * detaching a QP that is not attached fail with EINVAL; an attached QP
 * cannot be destroyed (EBUSY).  Each limit query_device reports is
 * enforced: max_mcast_qp_attach QPs of the device in one group,
 * max_mcast_grp groups, max_total_mcast_qp_attach memberships, the next
 * one refused with ENOMEM.  A process that exits with its QPs still
 * attached leaves no membership behind (frdma's debugfs count).
 *
 * "Receives nothing" is checked without a timeout: after the multicast
 * datagram the sender sends a unicast marker to each QP that must not
 * receive it; the marker, ordered behind it on the sender's queue, must
 * be that QP's first completion.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include "../lib/procfs.h"
#include "device.h"
#include "loopback.h"
#include "tap.h"

#define QKEY		0x01234567
#define MCAST_QPN	0xffffff
#define MSG		200
#define MARK		8
#define GRH		40
#define NQP		3	/* receivers: two attached, one not */

struct env {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq;		/* the sender's sends */
	struct ibv_cq *cq[NQP + 1];	/* receives of each QP, [NQP]: sender */
	struct ibv_qp *qp[NQP + 1];	/* [NQP]: the sender */
	struct ibv_mr *mr;
	uint8_t buf[NQP + 2][1024];	/* one receive buffer each, [NQP+1]: send */
	union ibv_gid gid;
	int gidx;
};

static const union ibv_gid mgid4 = { .raw = {
	[10] = 0xff, [11] = 0xff, 230, 1, 2, 3 } };
static const union ibv_gid mgid6 = { .raw = {
	0xff, 0x0e, [13] = 0x12, 0x34, 0x56 } };

/* frdma's debugfs count of multicast memberships, or -1 (read_long()). */
static long mcast_count(void)
{
	return read_long("/sys/kernel/debug/frdma/mcast");
}

static struct ibv_qp *make_ud(struct ibv_pd *pd, struct ibv_cq *scq,
			      struct ibv_cq *rcq)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = scq, .recv_cq = rcq, .qp_type = IBV_QPT_UD,
		.cap = { .max_send_wr = 8, .max_recv_wr = 8,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp *qp = ibv_create_qp(pd, &ia);
	int ret;

	if (!qp)
		return NULL;
	ret = lb_ud_rts(qp, QKEY);
	if (ret) {
		ibv_destroy_qp(qp);
		errno = ret;
		return NULL;
	}
	return qp;
}

static int post_recv(struct env *e, int i)
{
	struct ibv_sge sge = { (uintptr_t)e->buf[i], sizeof(e->buf[i]),
			       e->mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 },
			   *bad;

	return ibv_post_recv(e->qp[i], &wr, &bad);
}

/* Send @len bytes of the send buffer to @dgid, QPN @qpn; wait for it. */
static int send_to(struct env *e, const union ibv_gid *dgid, uint32_t qpn,
		   uint32_t len)
{
	struct ibv_ah_attr aha = {
		.is_global = 1, .port_num = LB_PORT,
		.grh = { .dgid = *dgid, .sgid_index = e->gidx,
			 .hop_limit = 64 },
	};
	struct ibv_sge sge = { (uintptr_t)e->buf[NQP + 1], len, e->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = 99, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_ah *ah = ibv_create_ah(e->pd, &aha);
	struct ibv_wc wc;
	int ret;

	if (!ah)
		return -1;
	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = qpn;
	wr.wr.ud.remote_qkey = QKEY;
	ret = ibv_post_send(e->qp[NQP], &wr, &bad);
	if (!ret && (lb_poll(e->scq, &wc, 1) != 1 ||
		     wc.status != IBV_WC_SUCCESS))
		ret = -1;
	ibv_destroy_ah(ah);
	return ret;
}

/*
 * QP @i's next receive completion, with its buffer reposted: the payload
 * length (without the GRH) when it is a good datagram from the sender,
 * else -1.
 */
static int recv_one(struct env *e, int i, const union ibv_gid *dgid)
{
	struct ibv_wc wc;
	const uint8_t *ip = e->buf[i] + 20;
	int len;

	if (lb_poll(e->cq[i], &wc, 1) != 1)
		return -1;
	if (wc.status != IBV_WC_SUCCESS || wc.qp_num != e->qp[i]->qp_num ||
	    wc.src_qp != e->qp[NQP]->qp_num || !(wc.wc_flags & IBV_WC_GRH) ||
	    wc.byte_len < GRH) {
		diag("QP %d: status %s, byte_len %u, src_qp %u", i,
		     ibv_wc_status_str(wc.status), wc.byte_len, wc.src_qp);
		return -1;
	}
	len = wc.byte_len - GRH;
	if (memcmp(e->buf[i] + GRH, e->buf[NQP + 1], len))
		return -1;
	/* The GRH area: an IPv4 header to the group, or an IPv6 GRH. */
	if (dgid->raw[0] != 0xff ? memcmp(ip + 16, dgid->raw + 12, 4) ||
				   ip[0] != 0x45 :
				   memcmp(e->buf[i] + 24, dgid->raw, 16) ||
				   e->buf[i][0] >> 4 != 6) {
		diag("QP %d: the GRH area does not name the group", i);
		return -1;
	}
	return post_recv(e, i) ? -1 : len;
}

/*
 * Send a multicast datagram to @mgid; QP i for which @want[i] receives it,
 * each other QP in @check receives nothing before a unicast marker.
 */
static bool mcast_round(struct env *e, const union ibv_gid *mgid,
			const bool *want)
{
	bool good = true;
	int i;

	memset(e->buf[NQP + 1], 'm', MSG);
	if (send_to(e, mgid, MCAST_QPN, MSG))
		return false;
	memset(e->buf[NQP + 1], 'k', MARK);
	for (i = 0; i <= NQP; i++)
		if (!want[i] && send_to(e, &e->gid, e->qp[i]->qp_num, MARK))
			return false;
	memset(e->buf[NQP + 1], 'm', MSG);
	for (i = 0; i <= NQP; i++) {
		if (want[i]) {
			good &= recv_one(e, i, mgid) == MSG;
			continue;
		}
		memset(e->buf[NQP + 1], 'k', MARK);
		if (recv_one(e, i, &e->gid) != MARK) {
			diag("QP %d received the group's datagram", i);
			good = false;
		}
		memset(e->buf[NQP + 1], 'm', MSG);
	}
	return good;
}

static void test_delivery(struct env *e, const union ibv_gid *mgid,
			  const char *what, long base)
{
	bool none[NQP + 1] = {}, two[NQP + 1] = { true, true };
	bool self[NQP + 1] = { true, true, false, true };
	int ret;

	ret = ibv_attach_mcast(e->qp[0], mgid, 0);
	ret = ret ? ret : ibv_attach_mcast(e->qp[1], mgid, 0);
	if (!ok(!ret, "%s: two UD QPs attach (%s)", what, strerror(ret)))
		return;
	if (base >= 0)
		ok(mcast_count() == base + 2, "  debugfs counts 2 memberships");
	ok(mcast_round(e, mgid, two),
	   "  a send to the group reaches both, with GRH and src_qp; not the third QP, not the sender");
	ret = ibv_attach_mcast(e->qp[0], mgid, 0);
	ok(!ret, "  attaching again is harmless (%s)", strerror(ret));
	ret = ibv_attach_mcast(e->qp[NQP], mgid, 0);
	ok(!ret && mcast_round(e, mgid, self),
	   "  the sender, attached too, receives its own datagram");
	ret = ibv_detach_mcast(e->qp[NQP], mgid, 0);
	ret = ret ? ret : ibv_detach_mcast(e->qp[0], mgid, 0);
	ret = ret ? ret : ibv_detach_mcast(e->qp[1], mgid, 0);
	if (!ok(!ret, "  all detach (%s)", strerror(ret)))
		return;
	ok(mcast_round(e, mgid, none), "  after detach a send reaches none");
	if (base >= 0)
		ok(mcast_count() == base, "  debugfs counts no membership");
	ret = ibv_detach_mcast(e->qp[0], mgid, 0);
	ok(ret == EINVAL, "  detaching again: EINVAL (%s)", strerror(ret));
}

static void test_errors(struct env *e)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = e->scq, .recv_cq = e->scq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
	};
	struct ibv_qp *rc = ibv_create_qp(e->pd, &ia);
	int ret;

	if (ok(rc != NULL, "an RC QP")) {
		ret = ibv_attach_mcast(rc, &mgid4, 0);
		ok(ret == EINVAL, "  attaching it: EINVAL (%s)", strerror(ret));
		ibv_destroy_qp(rc);
	}
	ret = ibv_attach_mcast(e->qp[0], &e->gid, 0);
	ok(ret == EINVAL, "attaching to the device's unicast GID: EINVAL (%s)",
	   strerror(ret));
	ret = ibv_attach_mcast(e->qp[2], &mgid4, 0);
	if (ok(!ret, "a UD QP attached")) {
		ret = ibv_destroy_qp(e->qp[2]);
		ok(ret == EBUSY, "  cannot be destroyed: EBUSY (%s)",
		   strerror(ret));
		if (!ret)
			e->qp[2] = NULL;
		else
			ibv_detach_mcast(e->qp[2], &mgid4, 0);
	}
}

/* The @g-th MGID of the limits test: ff0e::1:g */
static union ibv_gid nth_mgid(uint32_t g)
{
	union ibv_gid m = { .raw = { 0xff, 0x0e, [11] = 1 } };

	m.raw[12] = g >> 24;
	m.raw[13] = g >> 16;
	m.raw[14] = g >> 8;
	m.raw[15] = g;
	return m;
}

/*
 * The limits, in a child process (test_limits_child()) that exits with
 * every QP still attached.
 */
static void test_limits(const char *name, const struct ibv_device_attr *da,
			long base)
{
	struct ibv_context *ctx = open_device_by_name(name);
	uint32_t nqp = da->max_mcast_qp_attach + 1, g, i, total = 0;
	struct ibv_qp **qp = calloc(nqp, sizeof(*qp));
	union ibv_gid m;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	int ret = 0;

	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	cq = pd ? ibv_create_cq(ctx, 4, NULL, NULL, 0) : NULL;
	for (i = 0; cq && qp && i < nqp; i++)
		if (!(qp[i] = make_ud(pd, cq, cq)))
			break;
	if (!ok(cq && qp && i == nqp, "limits: %u UD QPs in a new context", nqp))
		goto out;

	/* max_mcast_qp_attach QPs in one group, then one more. */
	m = nth_mgid(0);
	for (i = 0; i < nqp - 1 && !ret; i++)
		ret = ibv_attach_mcast(qp[i], &m, 0);
	ok(!ret, "  %u QPs attach to one group (%s)", nqp - 1, strerror(ret));
	total = nqp - 1;
	ret = ibv_attach_mcast(qp[nqp - 1], &m, 0);
	ok(ret == ENOMEM, "  QP %u: ENOMEM, max_mcast_qp_attach (%s)", nqp,
	   strerror(ret));

	/* max_mcast_grp groups (one of them is group 0), then one more. */
	ret = 0;
	for (g = 1; g < (uint32_t)da->max_mcast_grp && !ret; g++) {
		m = nth_mgid(g);
		ret = ibv_attach_mcast(qp[g % nqp], &m, 0);
		total++;
	}
	ok(!ret, "  %d groups in all (%s)", da->max_mcast_grp, strerror(ret));
	m = nth_mgid(g);
	ret = ibv_attach_mcast(qp[0], &m, 0);
	ok(ret == ENOMEM, "  group %u: ENOMEM, max_mcast_grp (%s)", g + 1,
	   strerror(ret));
	m = nth_mgid(1);
	ret = ibv_attach_mcast(qp[0], &m, 0);
	ok(!ret, "  another QP in an existing group still attaches (%s)",
	   strerror(ret));
	total++;

	/* Fill up to max_total_mcast_qp_attach, then one more. */
	ret = 0;
	for (i = 1; total < (uint32_t)da->max_total_mcast_qp_attach && !ret;
	     i++) {
		/* QPs i..i+k of group g: each group gets other QPs. */
		for (g = 1; g < (uint32_t)da->max_mcast_grp && !ret &&
			    total < (uint32_t)da->max_total_mcast_qp_attach;
		     g++) {
			m = nth_mgid(g);
			ret = ibv_attach_mcast(qp[(g + i) % nqp], &m, 0);
			total++;
		}
	}
	ok(!ret, "  %u memberships in all (%s)", total, strerror(ret));
	if (base >= 0)
		ok(mcast_count() == base + total, "  debugfs counts them (%ld)",
		   mcast_count() - base);
	for (g = 1, ret = 0; g < (uint32_t)da->max_mcast_grp; g++) {
		m = nth_mgid(g);
		ret = ibv_attach_mcast(qp[(g + i) % nqp], &m, 0);
		if (ret)
			break;
		diag("group %u: QP %u attached past the total", g, (g + i) % nqp);
	}
	ok(ret == ENOMEM, "  one more: ENOMEM, max_total_mcast_qp_attach (%s)",
	   strerror(ret));
out:
	free(qp);
}

/*
 * Run test_limits() in a child, which exits without detaching or
 * destroying anything; its test points continue ours.
 */
static void test_limits_child(const char *name,
			      const struct ibv_device_attr *da, long base)
{
	int p[2], r[2] = { 0, 0 }, status = 0, i;
	pid_t pid = -1;

	fflush(stdout);
	if (!pipe(p))
		pid = fork();
	if (pid < 0) {
		ok(false, "fork a process for the limits (%s)", strerror(errno));
		return;
	}
	if (!pid) {
		close(p[0]);
		ok(true, "fork a process for the limits");
		test_limits(name, da, base);
		r[0] = tap_n;
		r[1] = tap_failed;
		_exit(write(p[1], r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], r, sizeof(r)) == sizeof(r)) {
		tap_n = r[0];
		tap_failed = r[1];
	}
	close(p[0]);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && !WEXITSTATUS(status),
	   "  the process exits with its QPs attached");
	if (base < 0)
		return;
	/* Its files are released before it is reaped; allow stragglers. */
	for (i = 0; i < 100 && mcast_count() != base; i++)
		usleep(50000);
	ok(mcast_count() == base, "  and leaves no membership behind (%ld)",
	   mcast_count() - base);
}

int main(int argc, char **argv)
{
	struct ibv_device_attr da;
	static struct env e;
	const char *name;
	long base;
	int i, opt;

	e.ctx = lb_test_open(argc, argv, "frdma0", &name);
	if (!ok(e.ctx != NULL, "open %s", name))
		return tap_done();
	memset(&da, 0, sizeof(da));
	opt = ibv_query_device(e.ctx, &da);
	if (!ok(!opt && da.max_mcast_grp > 0 && da.max_mcast_qp_attach > 0 &&
		da.max_total_mcast_qp_attach >= da.max_mcast_qp_attach,
		"ibv_query_device: max_mcast_grp %d, max_mcast_qp_attach %d, max_total_mcast_qp_attach %d",
		da.max_mcast_grp, da.max_mcast_qp_attach,
		da.max_total_mcast_qp_attach))
		goto out;
	e.pd = ibv_alloc_pd(e.ctx);
	e.scq = e.pd ? ibv_create_cq(e.ctx, 16, NULL, NULL, 0) : NULL;
	e.mr = e.scq ? ibv_reg_mr(e.pd, e.buf, sizeof(e.buf),
				  IBV_ACCESS_LOCAL_WRITE) : NULL;
	if (!ok(e.mr && !lb_find_gid(e.ctx, &e.gidx, &e.gid),
		"a PD, a CQ, an MR and the RoCE v2 GID"))
		goto out;
	for (i = 0; i <= NQP; i++) {
		e.cq[i] = ibv_create_cq(e.ctx, 16, NULL, NULL, 0);
		e.qp[i] = e.cq[i] ? make_ud(e.pd, e.scq, e.cq[i]) : NULL;
		if (!e.qp[i] || post_recv(&e, i))
			break;
	}
	if (!ok(i == NQP + 1, "%d UD QPs in RTS, each with a receive posted",
		NQP + 1))
		goto out;

	base = mcast_count();
	if (base < 0)
		diag("no /sys/kernel/debug/frdma/mcast: counts not checked");
	test_delivery(&e, &mgid4, "::ffff:230.1.2.3", base);
	test_delivery(&e, &mgid6, "ff0e::12:3456", base);
	test_errors(&e);
	test_limits_child(name, &da, base);
out:
	for (i = 0; i <= NQP; i++) {
		if (e.qp[i])
			ibv_destroy_qp(e.qp[i]);
		if (e.cq[i])
			ibv_destroy_cq(e.cq[i]);
	}
	if (e.mr)
		ibv_dereg_mr(e.mr);
	if (e.scq)
		ibv_destroy_cq(e.scq);
	if (e.pd)
		ibv_dealloc_pd(e.pd);
	if (e.ctx)
		ibv_close_device(e.ctx);
	return tap_done();
}
