// SPDX-License-Identifier: GPL-2.0
/*
 * frdma on the wire: the UDP socket, sending and receiving RoCE v2 packets.
 *
 * The wire is off unless frdma is loaded with wire=1 (or
 * /sys/module/frdma/parameters/wire is set to 1 before a device is
 * created: the setting applies to devices created afterwards).  Then the
 * first frdma device opens UDP port 4791 (two sockets: every IPv4 address
 * and, unless IPv6 is disabled, every IPv6 one) and the last one closes
 * it.  rdma_rxe opens the same port when it is
 * loaded, and a port has one owner: with rdma_rxe loaded first, "rdma
 * link add ... type frdma" fails with EADDRINUSE and says why in dmesg;
 * with frdma's socket open, rdma_rxe fails to load.  Without wire=1,
 * frdma never touches the port and both load together (the local fabric
 * needs no socket).
 *
 * Received datagrams are queued by the socket's encap_rcv callback and
 * processed by one kthread worker, in arrival order, in process context
 * (the responder and completer take mutexes and copy whole messages) at
 * the lowest real-time priority: an application busy-polling its CQ on
 * the same CPU, as perftest does, would otherwise keep an ordinary worker
 * waiting until its time slice ends, up to a scheduler tick per packet.
 * Each packet is checked (lengths, opcode, ICRC), matched to a device by
 * its destination address and to a QP by its destination QP number, then
 * handed to that QP's responder (requests) or completer (responses).
 * Everything else is dropped and counted.
 *
 * The ICRC covers the IP and UDP headers with their variant fields (IPv4:
 * TOS, TTL, header checksum; IPv6: traffic class, flow label, hop limit;
 * the UDP checksum) and the BTH's reserved byte masked to ones, then the
 * rest of the headers, the payload and the padding: a CRC-32 seeded as if
 * eight bytes of ones (the masked local route header of InfiniBand) had
 * come first, complemented, little-endian on the wire.
 *
 * A QP whose GIDs are IPv4-mapped sends IPv4 (UDP checksum 0, DF set), one
 * whose GIDs are IPv6 addresses sends IPv6 (routed out of its device's
 * netdev, so that link-local GIDs work too, with a UDP checksum, which
 * IPv6 wants; a zero one, as rdma_rxe sends, is accepted).  Both are
 * ECN-capable.
 */

#include <linux/crc32.h>
#include <linux/ip.h>
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/udp.h>
#include <net/checksum.h>
#include <net/inet_ecn.h>
#include <net/ip.h>
#include <net/ip6_checksum.h>
#include <net/ipv6.h>
#include <net/ipv6_stubs.h>
#include <net/route.h>
#include <net/udp_tunnel.h>
#include <rdma/ib_verbs.h>

#include "mr.h"
#include "wire.h"
#include "wire_ud.h"

bool frdma_wire_enabled;
module_param_named(wire, frdma_wire_enabled, bool, 0644);
MODULE_PARM_DESC(wire, "Devices created from now on reach peers outside this kernel as RoCE v2 over UDP port 4791 (default off)");

/* Received packets waiting for the worker, at most this many. */
#define FRDMA_WIRE_RXQ_MAX	8192

/* The CRC of eight bytes of ones from the all-ones seed. */
#define FRDMA_ICRC_SEED		0xdebb20e3

static DEFINE_MUTEX(frdma_wire_mutex);	/* the socket and its users */
static struct socket *frdma_wire_sock;
static struct socket *frdma_wire_sock6;	/* NULL: IPv6 is disabled */
static unsigned int frdma_wire_users;
static struct sk_buff_head frdma_wire_rxq;
static struct kthread_worker *frdma_wire_rx_worker;
static struct kthread_work frdma_wire_rx_work;

static atomic64_t frdma_wire_stat[FRDMA_WS_NR];

/**
 * frdma_wire_count - count one event of the wire
 * @s: which
 */
void frdma_wire_count(enum frdma_wire_stat s)
{
	atomic64_inc(&frdma_wire_stat[s]);
}

/**
 * frdma_wire_stat_read - read one counter of the wire
 * @s: which
 *
 * Return: the events counted since the module was loaded.
 */
u64 frdma_wire_stat_read(enum frdma_wire_stat s)
{
	return atomic64_read(&frdma_wire_stat[s]);
}

#define R	FRDMA_H_RETH
#define A	FRDMA_H_AETH
#define I	FRDMA_H_IMM
#define P	(FRDMA_F_PAYLOAD | FRDMA_F_VALID)
#define F	FRDMA_F_FIRST
#define L	FRDMA_F_LAST
#define Q	FRDMA_F_REQ
#define S	FRDMA_F_SEND
#define W	FRDMA_F_WRITE

/* What each RC opcode carries and means. */
const u32 frdma_wire_ops[FRDMA_OP_NR] = {
	[FRDMA_OP_SEND_FIRST] = P | Q | S | F,
	[FRDMA_OP_SEND_MIDDLE] = P | Q | S,
	[FRDMA_OP_SEND_LAST] = P | Q | S | L,
	[FRDMA_OP_SEND_LAST_IMM] = P | Q | S | L | I,
	[FRDMA_OP_SEND_ONLY] = P | Q | S | F | L,
	[FRDMA_OP_SEND_ONLY_IMM] = P | Q | S | F | L | I,
	[FRDMA_OP_SEND_LAST_INV] = P | Q | S | L | FRDMA_H_IETH,
	[FRDMA_OP_SEND_ONLY_INV] = P | Q | S | F | L | FRDMA_H_IETH,
	[FRDMA_OP_WRITE_FIRST] = P | Q | W | F | R,
	[FRDMA_OP_WRITE_MIDDLE] = P | Q | W,
	[FRDMA_OP_WRITE_LAST] = P | Q | W | L,
	[FRDMA_OP_WRITE_LAST_IMM] = P | Q | W | L | I,
	[FRDMA_OP_WRITE_ONLY] = P | Q | W | F | L | R,
	[FRDMA_OP_WRITE_ONLY_IMM] = P | Q | W | F | L | R | I,
	[FRDMA_OP_READ_REQ] = FRDMA_F_VALID | Q | FRDMA_F_READ | F | L | R,
	[FRDMA_OP_READ_RESP_FIRST] = P | FRDMA_F_READ | F | A,
	[FRDMA_OP_READ_RESP_MIDDLE] = P | FRDMA_F_READ,
	[FRDMA_OP_READ_RESP_LAST] = P | FRDMA_F_READ | L | A,
	[FRDMA_OP_READ_RESP_ONLY] = P | FRDMA_F_READ | F | L | A,
	[FRDMA_OP_ACK] = FRDMA_F_VALID | F | L | A,
	[FRDMA_OP_ATOMIC_ACK] = FRDMA_F_VALID | FRDMA_F_ATOMIC | F | L | A |
				FRDMA_H_ATMACK,
	[FRDMA_OP_CMP_SWAP] = FRDMA_F_VALID | Q | FRDMA_F_ATOMIC | F | L |
			      FRDMA_H_ATMETH,
	[FRDMA_OP_FETCH_ADD] = FRDMA_F_VALID | Q | FRDMA_F_ATOMIC | F | L |
			       FRDMA_H_ATMETH,
	/* the 8 bytes to store are its payload; answered like a READ */
	[FRDMA_OP_ATOMIC_WRITE] = P | Q | F | L | R,
};

#undef R
#undef A
#undef I
#undef P
#undef F
#undef L
#undef Q
#undef S
#undef W

/**
 * frdma_wire_hdr_len - the bytes of the headers that follow the BTH
 * @ops: an opcode's frdma_wire_ops[] entry
 *
 * Return: the length of its extension headers, in their wire order.
 */
unsigned int frdma_wire_hdr_len(u32 ops)
{
	unsigned int n = 0;

	if (ops & FRDMA_H_RETH)
		n += sizeof(struct frdma_reth);
	if (ops & FRDMA_H_AETH)
		n += sizeof(struct frdma_aeth);
	if (ops & FRDMA_H_ATMETH)
		n += sizeof(struct frdma_atheth);
	if (ops & FRDMA_H_ATMACK)
		n += sizeof(__be64);
	if (ops & FRDMA_H_IMM)
		n += sizeof(__be32);
	if (ops & FRDMA_H_IETH)
		n += sizeof(__be32);
	if (ops & FRDMA_H_DETH)
		n += sizeof(struct frdma_deth);
	return n;
}

/**
 * frdma_wire_mtu - the payload bytes per packet of a QP
 * @qp: the QP
 *
 * Return: its path MTU in bytes (1024 if none was set).
 */
u32 frdma_wire_mtu(struct frdma_qp *qp)
{
	int mtu = ib_mtu_enum_to_int(READ_ONCE(qp->attr.path_mtu));

	return mtu > 0 ? mtu : 1024;
}

/*
 * The ICRC of a packet whose IP header (IPv4, or IPv6 if @v6) is @nh, UDP
 * header @udph and BTH @bth, followed by @len more bytes (extension
 * headers, payload, padding), contiguous after the BTH.
 */
static u32 frdma_icrc(const void *nh, bool v6, const struct udphdr *udph,
		      const struct frdma_bth *bth, u32 len)
{
	union {
		struct iphdr ip;
		struct ipv6hdr ip6;
		u8 b[sizeof(struct ipv6hdr) + sizeof(struct udphdr) +
		     sizeof(struct frdma_bth)];
	} ph;
	struct frdma_bth *b;
	struct udphdr *u;
	unsigned int n;
	u32 crc;

	if (v6) {
		n = sizeof(ph.ip6);
		memcpy(&ph.ip6, nh, n);
		/* traffic class and flow label: all but the version */
		ph.ip6.priority = 0xf;
		memset(ph.ip6.flow_lbl, 0xff, sizeof(ph.ip6.flow_lbl));
		ph.ip6.hop_limit = 0xff;
	} else {
		n = sizeof(ph.ip);
		memcpy(&ph.ip, nh, n);
		ph.ip.tos = 0xff;
		ph.ip.ttl = 0xff;
		ph.ip.check = CSUM_MANGLED_0;
	}
	u = (struct udphdr *)(ph.b + n);
	*u = *udph;
	u->check = CSUM_MANGLED_0;
	b = (struct frdma_bth *)(u + 1);
	*b = *bth;
	b->qpn |= htonl(~FRDMA_QPN_MASK);
	n += sizeof(*u) + sizeof(*b);
	crc = crc32_le(FRDMA_ICRC_SEED, ph.b, n);
	crc = crc32_le(crc, (const u8 *)(bth + 1), len);
	return ~crc;
}

/* Copy @len bytes of @sgl from byte @off into @dst. */
static void frdma_sgl_read(const struct frdma_sgl *sgl, u64 off, u8 *dst,
			   u32 len)
{
	u32 i, n;

	for (i = 0; i < sgl->n && len; i++) {
		if (off >= sgl->len[i]) {
			off -= sgl->len[i];
			continue;
		}
		n = min_t(u64, len, sgl->len[i] - off);
		frdma_mr_read(sgl->mr[i], sgl->addr[i] + off, dst, n);
		dst += n;
		len -= n;
		off = 0;
	}
}

/*
 * The route of an IPv6 packet from @sgid to @dgid, out of @fdev's netdev
 * (a link-local address means nothing elsewhere): a dst reference, or an
 * ERR_PTR.
 */
static struct dst_entry *frdma_wire_route6(struct frdma_dev *fdev,
					   const union ib_gid *sgid,
					   const union ib_gid *dgid, u16 sport)
{
	struct flowi6 fl6 = {};
	struct net_device *ndev;

	if (!IS_ENABLED(CONFIG_IPV6) || !READ_ONCE(frdma_wire_sock6))
		return ERR_PTR(-EAFNOSUPPORT);
	ndev = frdma_ib_device_get_netdev(&fdev->ibdev, 1, fdev->ndev);
	if (!ndev)
		return ERR_PTR(-ENODEV);
	fl6.flowi6_oif = ndev->ifindex;
	dev_put(ndev);
	memcpy(&fl6.saddr, sgid->raw, sizeof(fl6.saddr));
	memcpy(&fl6.daddr, dgid->raw, sizeof(fl6.daddr));
	fl6.flowi6_proto = IPPROTO_UDP;
	fl6.fl6_sport = htons(sport);
	fl6.fl6_dport = htons(FRDMA_ROCE_PORT);
	return ipv6_stub->ipv6_dst_lookup_flow(&init_net, NULL, &fl6, NULL);
}

/*
 * A burst's UDP checksum, @pseudo the sum of its pseudo-header: left to
 * segmentation, or to the device.
 */
static void frdma_burst_csum(struct sk_buff *skb, __sum16 pseudo)
{
	skb->ip_summed = CHECKSUM_PARTIAL;
	skb->csum_start = skb_transport_header(skb) - skb->head;
	skb->csum_offset = offsetof(struct udphdr, check);
	udp_hdr(skb)->check = pseudo;
}

/* Push burst @b's IPv4 header onto @skb (its UDP header on) and send it. */
static void frdma_wire_out4(struct sk_buff *skb, const struct frdma_xburst *b)
{
	u32 ulen = skb->len;
	struct iphdr *iph;

	iph = skb_push(skb, sizeof(*iph));
	skb_reset_network_header(skb);
	iph->version = 4;
	iph->ihl = sizeof(*iph) >> 2;
	/*
	 * ECN-capable: a queue that runs long (fq_codel, the default
	 * qdisc, after 5 ms) marks the packet instead of dropping it.  A
	 * requester hands a window of packets to the device at once, and
	 * on a slow link every burst would otherwise lose its tail to the
	 * qdisc and wait for a retransmission.
	 */
	iph->tos = INET_ECN_ECT_0;
	iph->tot_len = htons(skb->len);
	iph->id = 0;
	iph->frag_off = htons(IP_DF);
	iph->ttl = 64;
	iph->protocol = IPPROTO_UDP;
	iph->saddr = *(const __be32 *)&b->sgid.raw[12];
	iph->daddr = *(const __be32 *)&b->dgid.raw[12];
	iph->check = 0;
	if (skb_is_gso(skb))
		frdma_burst_csum(skb, ~csum_tcpudp_magic(iph->saddr, iph->daddr,
							 ulen, IPPROTO_UDP,
							 0));
	else
		skb->ip_summed = CHECKSUM_NONE;	/* UDP checksum 0 */

	skb->protocol = htons(ETH_P_IP);
	skb_dst_set(skb, b->dst);
	memset(IPCB(skb), 0, sizeof(*IPCB(skb)));
	ip_local_out(&init_net, NULL, skb);
}

/* Push burst @b's IPv6 header onto @skb (its UDP header on) and send it. */
static void frdma_wire_out6(struct sk_buff *skb, const struct frdma_xburst *b)
{
	struct udphdr *udph = udp_hdr(skb);
	u32 ulen = skb->len;
	struct ipv6hdr *ip6h;

	ip6h = skb_push(skb, sizeof(*ip6h));
	skb_reset_network_header(skb);
	/* ECN-capable, as IPv4 (frdma_wire_out4()); flow label 0 */
	ip6_flow_hdr(ip6h, INET_ECN_ECT_0, 0);
	ip6h->payload_len = htons(ulen);
	ip6h->nexthdr = IPPROTO_UDP;
	ip6h->hop_limit = 64;
	memcpy(&ip6h->saddr, b->sgid.raw, sizeof(ip6h->saddr));
	memcpy(&ip6h->daddr, b->dgid.raw, sizeof(ip6h->daddr));
	if (skb_is_gso(skb)) {
		frdma_burst_csum(skb, ~csum_ipv6_magic(&ip6h->saddr,
						       &ip6h->daddr, ulen,
						       IPPROTO_UDP, 0));
	} else {
		/* After the ICRC, which masks it: the checksum covers it. */
		udph->check = csum_ipv6_magic(&ip6h->saddr, &ip6h->daddr,
					      ulen, IPPROTO_UDP,
					      csum_partial(udph, ulen, 0));
		if (!udph->check)
			udph->check = CSUM_MANGLED_0;
		skb->ip_summed = CHECKSUM_NONE;
	}

	skb->protocol = htons(ETH_P_IPV6);
	skb_dst_set(skb, b->dst);
	memset(IP6CB(skb), 0, sizeof(*IP6CB(skb)));
	ip6_local_out(&init_net, NULL, skb);
}

/*
 * Bursts.  The packets a QP sends back to back go to IP as one UDP GSO
 * packet: their UDP payloads, each BTH to ICRC, lie one after another in
 * one skb, and segmentation hands the device a list of packets, for which
 * a virtio-net device is kicked once rather than once per packet.  All
 * packets of a burst but the last have the same length, the GSO size.
 *
 * Segmentation gives each packet its own IP header: its own lengths and,
 * over IPv4, the IP ID of the burst's header plus its index (the burst's
 * is 0, so a burst of one is sent as any single packet).  The ICRC covers
 * both, so each packet's ICRC is computed as it joins the burst, over the
 * headers it will have on the wire.  The UDP checksum, which the ICRC
 * does not cover, is left to segmentation (or to the device).
 */

/* A burst's skb: its allocation, and the packets it may hold. */
#define FRDMA_BURST_ALLOC	SZ_32K
#define FRDMA_BURST_SEGS	64

static bool frdma_wire_bursts = true;
module_param_named(wire_bursts, frdma_wire_bursts, bool, 0644);
MODULE_PARM_DESC(wire_bursts, "Hand IP the packets a QP sends back to back as one UDP GSO packet (default on)");

/* The UDP payload bytes of packet @x: BTH, headers, payload, pad, ICRC. */
static u32 frdma_xpkt_size(const struct frdma_xpkt *x)
{
	return sizeof(struct frdma_bth) + x->ext_len + ALIGN(x->len, 4) + 4;
}

/*
 * Start burst @b from @sgid to @dgid with room for @size bytes of UDP
 * payload, or if @more for as many as FRDMA_BURST_ALLOC holds: route it
 * and allocate its skb.
 */
static int frdma_burst_open(struct frdma_xburst *b, struct frdma_dev *fdev,
			    const union ib_gid *sgid, const union ib_gid *dgid,
			    u16 sport, u32 size, bool more)
{
	bool v4 = ipv6_addr_v4mapped((const struct in6_addr *)dgid->raw);
	struct dst_entry *dst;
	unsigned int room;

	if (v4 != ipv6_addr_v4mapped((const struct in6_addr *)sgid->raw))
		return -EAFNOSUPPORT;
	if (v4) {
		struct flowi4 fl = {
			.daddr = *(const __be32 *)&dgid->raw[12],
			.saddr = *(const __be32 *)&sgid->raw[12],
			.flowi4_proto = IPPROTO_UDP,
		};
		struct rtable *rt;

		/*
		 * A multicast group needs no oif: with saddr set and no oif,
		 * IPv4 routes it out of the device that owns saddr, the GID's.
		 */
		rt = ip_route_output_key(&init_net, &fl);
		if (IS_ERR(rt))
			return PTR_ERR(rt);
		dst = &rt->dst;
		room = sizeof(struct iphdr);
	} else {
		dst = frdma_wire_route6(fdev, sgid, dgid, sport);
		if (IS_ERR(dst))
			return PTR_ERR(dst);
		room = sizeof(struct ipv6hdr);
	}
	room += LL_RESERVED_SPACE(dst->dev) + sizeof(struct udphdr) +
		dst->dev->needed_tailroom;
	b->skb = NULL;
	if (more && READ_ONCE(frdma_wire_bursts) &&
	    room + size < SKB_WITH_OVERHEAD(FRDMA_BURST_ALLOC)) {
		b->room = SKB_WITH_OVERHEAD(FRDMA_BURST_ALLOC) - room;
		b->skb = alloc_skb(room + b->room,
				   GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
	}
	if (!b->skb) {
		b->room = size;
		b->skb = alloc_skb(room + size, GFP_KERNEL);
	}
	if (!b->skb) {
		dst_release(dst);
		return -ENOMEM;
	}
	skb_reserve(b->skb, room - dst->dev->needed_tailroom);
	b->dst = dst;
	b->sgid = *sgid;
	b->dgid = *dgid;
	b->v4 = v4;
	b->sport = sport;
	b->seg = 0;
	b->nseg = 0;
	b->closed = false;
	return 0;
}

/* Whether a packet of @size bytes from @sgid to @dgid may join burst @b. */
static bool frdma_burst_fits(const struct frdma_xburst *b,
			     const union ib_gid *sgid, const union ib_gid *dgid,
			     u32 size)
{
	return b->skb && !b->closed && b->nseg < FRDMA_BURST_SEGS &&
	       size <= b->seg && size <= b->room &&
	       !memcmp(dgid, &b->dgid, sizeof(*dgid)) &&
	       !memcmp(sgid, &b->sgid, sizeof(*sgid));
}

/*
 * The ICRC of packet @bth (@size bytes of UDP payload), the next of burst
 * @b, over the IP and UDP headers segmentation will give it.  Fields the
 * ICRC masks are left zero.
 */
static u32 frdma_burst_icrc(const struct frdma_xburst *b,
			    const struct frdma_bth *bth, u32 size)
{
	struct udphdr uh = {
		.source = htons(b->sport),
		.dest = htons(FRDMA_ROCE_PORT),
		.len = htons(sizeof(uh) + size),
	};
	u32 rest = size - sizeof(*bth) - 4;
	struct ipv6hdr ip6h = {};

	if (b->v4) {
		struct iphdr iph = {
			.version = 4,
			.ihl = sizeof(iph) >> 2,
			.tot_len = htons(sizeof(iph) + sizeof(uh) + size),
			.id = htons(b->nseg),
			.frag_off = htons(IP_DF),
			.protocol = IPPROTO_UDP,
			.saddr = *(const __be32 *)&b->sgid.raw[12],
			.daddr = *(const __be32 *)&b->dgid.raw[12],
		};

		return frdma_icrc(&iph, false, &uh, bth, rest);
	}
	ip6h.version = 6;
	ip6h.payload_len = htons(sizeof(uh) + size);
	ip6h.nexthdr = IPPROTO_UDP;
	memcpy(&ip6h.saddr, b->sgid.raw, sizeof(ip6h.saddr));
	memcpy(&ip6h.daddr, b->dgid.raw, sizeof(ip6h.daddr));
	return frdma_icrc(&ip6h, true, &uh, bth, rest);
}

/* Add packet @x, @size bytes, to burst @b, which has room for it. */
static void frdma_burst_add(struct frdma_xburst *b,
			    const struct frdma_xpkt *x, u32 size)
{
	struct sk_buff *skb = b->skb;
	unsigned int pad = ALIGN(x->len, 4) - x->len;
	struct frdma_bth *bth;
	u8 *p;

	bth = skb_put(skb, sizeof(*bth));
	bth->opcode = x->opcode;
	bth->flags = (x->se ? FRDMA_BTH_SE : 0) | FRDMA_BTH_MIG |
		     (pad << FRDMA_BTH_PAD_SHIFT);
	bth->pkey = htons(0xffff);
	bth->qpn = htonl(x->dqpn & FRDMA_QPN_MASK);
	bth->apsn = htonl((x->psn & FRDMA_PSN_MASK) |
			  (x->ackreq ? FRDMA_BTH_ACKREQ : 0));
	skb_put_data(skb, x->ext, x->ext_len);
	p = skb_put(skb, x->len);
	if (x->buf)
		memcpy(p, x->buf, x->len);
	else if (x->len)
		frdma_sgl_read(x->sgl, x->off, p, x->len);
	skb_put_zero(skb, pad);
	frdma_put_le32(frdma_burst_icrc(b, bth, size), skb_put(skb, 4));

	if (!b->nseg)
		b->seg = size;
	else if (size < b->seg)
		b->closed = true;
	b->nseg++;
	b->room -= size;
}

/* Hand burst @b to IP (as one packet, or one UDP GSO packet) and empty it. */
static void frdma_burst_send(struct frdma_xburst *b)
{
	struct sk_buff *skb = b->skb;
	struct udphdr *udph;
	u32 ulen;

	if (!skb)
		return;
	b->skb = NULL;
	udph = skb_push(skb, sizeof(*udph));
	skb_reset_transport_header(skb);
	ulen = skb->len;
	udph->source = htons(b->sport);
	udph->dest = htons(FRDMA_ROCE_PORT);
	udph->len = htons(ulen);
	udph->check = 0;
	if (b->nseg > 1) {
		atomic64_inc(&frdma_wire_stat[FRDMA_WS_TX_BURST]);
		skb_shinfo(skb)->gso_size = b->seg;
		skb_shinfo(skb)->gso_type = SKB_GSO_UDP_L4;
		skb_shinfo(skb)->gso_segs = b->nseg;
	}
	atomic64_add(b->nseg, &frdma_wire_stat[FRDMA_WS_TX]);
	if (b->v4)
		frdma_wire_out4(skb, b);
	else
		frdma_wire_out6(skb, b);
	b->dst = NULL;
}

/*
 * Send packet @x from @sgid to @dgid in burst @b: in the burst open if it
 * fits there, else in a new one (after the open one is sent), for which
 * @more says whether more packets are likely to follow.
 */
static int frdma_burst_xmit(struct frdma_xburst *b, struct frdma_dev *fdev,
			    const union ib_gid *sgid, const union ib_gid *dgid,
			    u16 sport, const struct frdma_xpkt *x, bool more)
{
	u32 size = frdma_xpkt_size(x);
	int err;

	if (!frdma_burst_fits(b, sgid, dgid, size)) {
		frdma_burst_send(b);
		err = frdma_burst_open(b, fdev, sgid, dgid, sport, size, more);
		if (err)
			return err;
	}
	frdma_burst_add(b, x, size);
	return 0;
}

/*
 * Send packet @x of QP @w in its burst (@more: as frdma_burst_xmit()), to
 * its path's GID, read under the QP's lock (modify_qp sets it).
 */
static int frdma_wire_burst_xmit(struct frdma_wqp *w,
				 const struct frdma_xpkt *x, bool more)
{
	struct frdma_qp *qp = w->qp;
	union ib_gid dgid;

	lockdep_assert_held(&w->lock);
	spin_lock(&qp->lock);
	dgid = qp->attr.ah_attr.grh.dgid;
	spin_unlock(&qp->lock);
	return frdma_burst_xmit(&w->tx, qp->fdev, &qp->sgid, &dgid, w->sport,
				x, more);
}

/**
 * frdma_wire_xmit_more - send one packet of a QP to its peer, later
 * @w: the QP's wire state
 * @x: the packet
 *
 * The packet joins the QP's burst, which frdma_wire_xmit_flush() hands to
 * IP, as does the next packet that cannot join it.  The caller sends
 * more packets now, then flushes before it drops @w->lock.
 *
 * Context: process; the caller holds @w->lock.
 * Return: 0 when the packet was queued (it may still be lost), or a
 * negative errno when it could not be built or routed.
 */
int frdma_wire_xmit_more(struct frdma_wqp *w, const struct frdma_xpkt *x)
{
	return frdma_wire_burst_xmit(w, x, true);
}

/**
 * frdma_wire_xmit_flush - hand a QP's burst to IP
 * @w: the QP's wire state
 *
 * Context: process; the caller holds @w->lock.
 */
void frdma_wire_xmit_flush(struct frdma_wqp *w)
{
	lockdep_assert_held(&w->lock);
	frdma_burst_send(&w->tx);
}

/**
 * frdma_wire_xmit - send one packet of a QP to its peer now
 * @w: the QP's wire state
 * @x: the packet
 *
 * After the packets of frdma_wire_xmit_more() not handed to IP yet.
 *
 * Context: process; the caller holds @w->lock.
 * Return: as frdma_wire_xmit_more().
 */
int frdma_wire_xmit(struct frdma_wqp *w, const struct frdma_xpkt *x)
{
	int err = frdma_wire_burst_xmit(w, x, false);

	frdma_burst_send(&w->tx);
	return err;
}

/**
 * frdma_wire_xmit_to - send one packet from one GID to another
 * @fdev: the sending device
 * @sgid: the source GID, one of @fdev's
 * @dgid: the destination GID
 * @sport: the UDP source port
 * @x: the packet
 *
 * Both GIDs IPv4-mapped: an IPv4 packet; both IPv6 addresses: IPv6.
 *
 * Context: process.
 * Return: as frdma_wire_xmit().
 */
int frdma_wire_xmit_to(struct frdma_dev *fdev, const union ib_gid *sgid,
		       const union ib_gid *dgid, u16 sport,
		       const struct frdma_xpkt *x)
{
	struct frdma_xburst b = {};
	int err;

	err = frdma_burst_xmit(&b, fdev, sgid, dgid, sport, x, false);
	frdma_burst_send(&b);
	return err;
}

/**
 * frdma_wire_pkt_gids - the GIDs of a received packet, from its IP header
 * @skb: the packet, its network header an IPv4 or IPv6 one
 * @sgid: its source address as a GID, or NULL
 * @dgid: its destination address as a GID, or NULL
 *
 * IPv4 addresses become IPv4-mapped GIDs, as RoCE v2 has them.
 */
void frdma_wire_pkt_gids(const struct sk_buff *skb, union ib_gid *sgid,
			 union ib_gid *dgid)
{
	if (skb->protocol == htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6h = ipv6_hdr(skb);

		if (dgid)
			memcpy(dgid->raw, &ip6h->daddr, sizeof(dgid->raw));
		if (sgid)
			memcpy(sgid->raw, &ip6h->saddr, sizeof(sgid->raw));
	} else {
		const struct iphdr *iph = ip_hdr(skb);

		if (dgid)
			ipv6_addr_set_v4mapped(iph->daddr,
					       (struct in6_addr *)dgid->raw);
		if (sgid)
			ipv6_addr_set_v4mapped(iph->saddr,
					       (struct in6_addr *)sgid->raw);
	}
}

/* Check one received datagram (skb->data at its BTH) and dispatch it. */
static void frdma_wire_rx_one(struct sk_buff *skb)
{
	bool v6 = skb->protocol == htons(ETH_P_IPV6);
	const struct udphdr *udph = udp_hdr(skb);
	struct frdma_pkt pkt = { .skb = skb };
	struct frdma_dev *fdev;
	struct frdma_wqp *w;
	struct frdma_qp *qp;
	union ib_gid dgid;
	unsigned int hlen, pad;
	u32 len = skb->len;

	if (len < sizeof(struct frdma_bth) + 4)
		goto drop;
	pkt.bth = (const void *)skb->data;
	pkt.opcode = pkt.bth->opcode;
	if (pkt.opcode < FRDMA_OP_NR)
		pkt.ops = frdma_wire_ops[pkt.opcode];
	else
		pkt.ops = frdma_wire_dgram_ops(pkt.opcode);	/* UC, UD */
	if (!pkt.ops)
		goto drop;	/* CNP and others */
	hlen = sizeof(struct frdma_bth) + frdma_wire_hdr_len(pkt.ops);
	pad = (pkt.bth->flags >> FRDMA_BTH_PAD_SHIFT) & 3;
	if (len < hlen + pad + 4)
		goto drop;
	if (frdma_icrc(skb_network_header(skb), v6, udph, pkt.bth,
		       len - sizeof(*pkt.bth) - 4) !=
	    frdma_get_le32(skb->data + len - 4)) {
		atomic64_inc(&frdma_wire_stat[FRDMA_WS_ICRC]);
		goto free;
	}
	pkt.hdr = skb->data + sizeof(*pkt.bth);
	pkt.payload = skb->data + hlen;
	pkt.paylen = len - hlen - pad - 4;
	if (!(pkt.ops & FRDMA_F_PAYLOAD) && pkt.paylen)
		goto drop;
	pkt.psn = ntohl(pkt.bth->apsn) & FRDMA_PSN_MASK;
	pkt.ackreq = ntohl(pkt.bth->apsn) & FRDMA_BTH_ACKREQ;
	pkt.se = pkt.bth->flags & FRDMA_BTH_SE;

	frdma_wire_pkt_gids(skb, NULL, &dgid);
	if ((ntohl(pkt.bth->qpn) & FRDMA_QPN_MASK) == IB_MULTICAST_QPN) {
		frdma_wire_recv_mcast(&pkt, &dgid);	/* wire_ud.c */
		goto free;
	}
	/*
	 * The socket is init_net's, so is every packet it got; skb->dev
	 * is not looked at: nothing held the device while it was queued.
	 */
	fdev = frdma_dev_get_by_gid_net(&init_net, &dgid);
	if (!fdev)
		goto drop;
	qp = frdma_qp_get(fdev, ntohl(pkt.bth->qpn) & FRDMA_QPN_MASK);
	/* Pairs with the release that published a whole wire state. */
	w = qp ? smp_load_acquire(&qp->wire) : NULL;
	if (qp && (pkt.opcode >= FRDMA_OP_NR ||
		   qp->ibqp.qp_type != IB_QPT_RC)) {
		atomic64_inc(&frdma_wire_stat[FRDMA_WS_RX]);
		frdma_wire_recv_dgram(qp, &pkt);	/* wire_ud.c */
	} else if (w) {
		atomic64_inc(&frdma_wire_stat[FRDMA_WS_RX]);
		mutex_lock(&w->lock);
		if (pkt.ops & FRDMA_F_REQ)
			frdma_wire_recv_req(w, &pkt);
		else
			frdma_wire_recv_resp(w, &pkt);
		mutex_unlock(&w->lock);
	} else {
		atomic64_inc(&frdma_wire_stat[FRDMA_WS_DROP]);
	}
	if (qp)
		frdma_qp_put(qp);
	ib_device_put(&fdev->ibdev);
	goto free;
drop:
	atomic64_inc(&frdma_wire_stat[FRDMA_WS_DROP]);
free:
	kfree_skb(skb);
}

static void frdma_wire_rx_fn(struct kthread_work *work)
{
	struct sk_buff *skb;
	unsigned int n = 0;

	while ((skb = skb_dequeue(&frdma_wire_rxq))) {
		frdma_wire_rx_one(skb);
		if (++n % 64 == 0)
			cond_resched();
	}
}

/**
 * frdma_wire_rx_flush - wait until the packets received so far are taken
 *
 * Context: process; holds no QP's wire lock.
 */
void frdma_wire_rx_flush(void)
{
	kthread_flush_work(&frdma_wire_rx_work);
}

/* The socket's receive callback (softirq): queue for the worker. */
static int frdma_wire_encap_rcv(struct sock *sk, struct sk_buff *skb)
{
	struct udphdr *udph;
	u32 len;

	if (skb_linearize(skb))
		goto drop;
	udph = udp_hdr(skb);
	len = ntohs(udph->len);
	if (len < sizeof(*udph) || len > skb->len ||
	    skb_queue_len(&frdma_wire_rxq) >= FRDMA_WIRE_RXQ_MAX)
		goto drop;
	if (pskb_trim(skb, len))
		goto drop;
	skb_pull(skb, sizeof(*udph));
	skb_queue_tail(&frdma_wire_rxq, skb);
	kthread_queue_work(frdma_wire_rx_worker, &frdma_wire_rx_work);
	return 0;
drop:
	atomic64_inc(&frdma_wire_stat[FRDMA_WS_DROP]);
	kfree_skb(skb);
	return 0;
}

/*
 * The IPv6 socket of port 4791, beside the IPv4 one: v6only, so that each
 * family has its own (as rdma_rxe has it).  Built by hand, not with
 * udp_sock_create6(): that would make frdma.ko need ip6_udp_tunnel, which
 * nothing loads before an insmod.  0 and *@sockp NULL when IPv6 is
 * disabled.
 */
static int frdma_wire_open6(struct udp_tunnel_sock_cfg *tcfg,
			    struct socket **sockp)
{
	struct sockaddr_in6 a = {
		.sin6_family = AF_INET6,
		.sin6_port = htons(FRDMA_ROCE_PORT),
	};
	struct socket *sock;
	int err;

	*sockp = NULL;
	if (!IS_ENABLED(CONFIG_IPV6))
		return 0;
	err = sock_create_kern(&init_net, AF_INET6, SOCK_DGRAM, IPPROTO_UDP,
			       &sock);
	if (err == -EAFNOSUPPORT)
		return 0;
	if (err)
		return err;
	err = ip6_sock_set_v6only(sock->sk);
	if (!err)
		err = kernel_bind(sock, (struct sockaddr *)&a, sizeof(a));
	if (err) {
		sock_release(sock);
		return err;
	}
	/* rdma_rxe sends UDP checksums of 0; RFC 6935 allows it */
	udp_set_no_check6_rx(sock->sk, true);
	setup_udp_tunnel_sock(&init_net, sock, tcfg);
	*sockp = sock;
	return 0;
}

static int frdma_wire_open(void)
{
	struct udp_port_cfg cfg = {
		.family = AF_INET,
		.local_udp_port = htons(FRDMA_ROCE_PORT),
	};
	struct udp_tunnel_sock_cfg tcfg = {
		.encap_type = 1,
		.encap_rcv = frdma_wire_encap_rcv,
	};
	struct kthread_worker *kw;
	struct socket *sock, *sock6;
	int err;

	skb_queue_head_init(&frdma_wire_rxq);
	kthread_init_work(&frdma_wire_rx_work, frdma_wire_rx_fn);
	kw = kthread_create_worker(0, "frdma_wire");
	if (IS_ERR(kw))
		return PTR_ERR(kw);
	/*
	 * Above every ordinary task: a busy-polling application on the
	 * same CPU would otherwise hold the worker off until its time
	 * slice ends, a scheduler tick later.
	 */
	sched_set_fifo_low(kw->task);
	frdma_wire_rx_worker = kw;
	/* IPv4: no call that would need ip6_udp_tunnel loaded */
	err = udp_sock_create4(&init_net, &cfg, &sock);
	if (err)
		goto out_worker;
	err = frdma_wire_open6(&tcfg, &sock6);
	if (err)
		goto out_sock;
	setup_udp_tunnel_sock(&init_net, sock, &tcfg);
	frdma_wire_sock = sock;
	WRITE_ONCE(frdma_wire_sock6, sock6);
	pr_info("frdma: RoCE v2 on the wire: UDP port %d open (%s)\n",
		FRDMA_ROCE_PORT, sock6 ? "IPv4 and IPv6" : "IPv4 only");
	return 0;

out_sock:
	sock_release(sock);
out_worker:
	kthread_destroy_worker(kw);
	frdma_wire_rx_worker = NULL;
	return err;
}

static void frdma_wire_close(void)
{
	if (frdma_wire_sock6)
		udp_tunnel_sock_release(frdma_wire_sock6);
	WRITE_ONCE(frdma_wire_sock6, NULL);
	udp_tunnel_sock_release(frdma_wire_sock);
	frdma_wire_sock = NULL;
	/* No callback runs any more; finish what was queued. */
	kthread_flush_work(&frdma_wire_rx_work);
	kthread_destroy_worker(frdma_wire_rx_worker);
	frdma_wire_rx_worker = NULL;
	skb_queue_purge(&frdma_wire_rxq);
	pr_info("frdma: RoCE v2 on the wire: UDP port %d closed: sent %lld received %lld ICRC errors %lld dropped %lld timeouts %lld sequence NAKs sent %lld received %lld RNR NAKs sent %lld received %lld duplicates %lld bursts %lld probes %lld kept %lld\n",
		FRDMA_ROCE_PORT,
		atomic64_read(&frdma_wire_stat[FRDMA_WS_TX]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_RX]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_ICRC]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_DROP]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_RETRANS]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_SEQ_NAK_TX]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_SEQ_NAK_RX]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_RNR_TX]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_RNR_RX]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_DUP]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_TX_BURST]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_PROBE]),
		atomic64_read(&frdma_wire_stat[FRDMA_WS_KEPT]));
}

/**
 * frdma_wire_dev_add - a device is created: open the wire if it is on
 * @fdev: the device
 *
 * Context: process; before the device is registered.
 * Return: 0, or -EADDRINUSE when the wire is on but UDP port 4791 belongs
 * to someone else (rdma_rxe), said in dmesg.
 */
int frdma_wire_dev_add(struct frdma_dev *fdev)
{
	int err = 0;

	if (!frdma_wire_enabled)
		return 0;
	mutex_lock(&frdma_wire_mutex);
	if (!frdma_wire_users)
		err = frdma_wire_open();
	if (!err) {
		frdma_wire_users++;
		fdev->wire = true;
	}
	mutex_unlock(&frdma_wire_mutex);
	if (err == -EADDRINUSE)
		pr_err("frdma: cannot use the wire: UDP port %d is taken (is rdma_rxe loaded?); load frdma with wire=0 for the local fabric only\n",
		       FRDMA_ROCE_PORT);
	else if (err)
		pr_err("frdma: cannot open UDP port %d for the wire: %d\n",
		       FRDMA_ROCE_PORT, err);
	return err;
}

/**
 * frdma_wire_dev_del - a device goes away: close the wire after the last
 * @fdev: the device
 */
void frdma_wire_dev_del(struct frdma_dev *fdev)
{
	if (!fdev->wire)
		return;
	mutex_lock(&frdma_wire_mutex);
	fdev->wire = false;
	if (!--frdma_wire_users)
		frdma_wire_close();
	mutex_unlock(&frdma_wire_mutex);
}
