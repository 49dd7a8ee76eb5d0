// SPDX-License-Identifier: GPL-2.0
/*
 * frdma on the wire: UD datagrams, QP1's among them, and the dispatch
 * of UC packets (wire_uc.c).
 *
 * A UD work request whose AH's destination GID is not an frdma device of
 * this kernel (req.c), and a send of the GSI QP to another host (gsi.c),
 * leave as one RoCE v2 packet: SEND_ONLY (or SEND_ONLY with immediate) of
 * the UD transport, with a DETH that carries the Q_Key and the source QP
 * number.  The send completes when the packet is handed to IP: a datagram
 * is unreliable, whether it arrives is nobody's business but the
 * receiver's.
 *
 * A received UD packet (net.c has checked its lengths and ICRC and found
 * the QP its BTH names) is accepted when its P_Key is the default
 * partition's (the only one frdma's P_Key table holds), its payload is at
 * most the port's active MTU, its destination is a UD QP (or the GSI QP)
 * in a state that receives, and its Q_Key is the QP's (QP1's:
 * IB_QP1_QKEY).  It then takes the next receive of the
 * QP's RQ or SRQ, which gets the 40-byte GRH area first (for IPv4, the
 * IPv4 header of the packet in its last 20 bytes; for IPv6, its IPv6
 * header: as RoCE v2 devices write them) and then the payload; the work
 * completion has the source QP
 * and IB_WC_GRH.  Anything else, and a datagram that finds no receive, is
 * dropped and counted.
 */

#include <linux/hash.h>
#include <linux/ip.h>
#include <net/ipv6.h>
#include <rdma/ib_addr.h>

#include "mr.h"
#include "wire_ud.h"

#define FRDMA_UD_MAX_PAYLOAD	4096	/* the largest path MTU */
#define FRDMA_GRH_BYTES		40

/**
 * frdma_wire_dgram_ops - what a UC or UD opcode carries (frdma_wire_ops[])
 * @opcode: a BTH opcode of the UC or UD transport
 *
 * Return: its frdma_wire_ops[] flags, or 0 for an opcode frdma does not
 * take: UC has the SEND and RDMA WRITE opcodes of RC, UD only SEND_ONLY
 * with or without immediate.
 */
u32 frdma_wire_dgram_ops(u8 opcode)
{
	u8 op = opcode & ~FRDMA_OP_TRANSPORT;

	switch (opcode & FRDMA_OP_TRANSPORT) {
	case FRDMA_OP_UC:
		if (op <= FRDMA_OP_WRITE_ONLY_IMM)
			return frdma_wire_ops[op];
		return 0;
	case FRDMA_OP_UD:
		if (op == FRDMA_OP_SEND_ONLY || op == FRDMA_OP_SEND_ONLY_IMM)
			return frdma_wire_ops[op] | FRDMA_H_DETH;
		return 0;
	default:
		return 0;
	}
}

/**
 * frdma_wire_ud_send - send a datagram to another host
 * @fdev: the sending device
 * @sgid: the source GID, one of @fdev's
 * @ah: the address vector (destination GID)
 * @dqpn: the destination QP
 * @m: the datagram (@m->src_qp, @m->qkey resolved)
 *
 * Context: process.
 * Return: 0 when the packet was handed to IP, -EMSGSIZE for a payload
 * larger than a packet can carry, or another negative errno when it could
 * not be sent (no route, no memory); the datagram is lost either way.
 */
int frdma_wire_ud_send(struct frdma_dev *fdev, const union ib_gid *sgid,
		       const struct rdma_ah_attr *ah, u32 dqpn,
		       const struct frdma_dgram *m)
{
	struct frdma_xpkt x = {
		.opcode = FRDMA_OP_UD | (m->imm ? FRDMA_OP_SEND_ONLY_IMM :
						  FRDMA_OP_SEND_ONLY),
		.se = m->se,
		.dqpn = dqpn,
		.buf = m->buf,
		.sgl = m->sgl,
		.len = m->len,
	};
	struct frdma_deth *deth = (void *)x.ext;

	if (m->len > FRDMA_UD_MAX_PAYLOAD)
		return -EMSGSIZE;
	deth->qkey = cpu_to_be32(m->qkey);
	deth->sqp = cpu_to_be32(m->src_qp & FRDMA_QPN_MASK);
	x.ext_len = sizeof(*deth);
	if (m->imm) {
		memcpy(x.ext + x.ext_len, &m->imm_data, sizeof(m->imm_data));
		x.ext_len += sizeof(m->imm_data);
	}
	return frdma_wire_xmit_to(fdev, sgid, &ah->grh.dgid,
				  0xc000 | hash_32(m->src_qp, 14), &x);
}

/* The default partition, full or limited member: P_Key index 0. */
static bool frdma_wire_pkey_ok(const struct frdma_pkt *pkt)
{
	return (ntohs(pkt->bth->pkey) & 0x7fff) == 0x7fff;
}

/* A UD packet for @qp, a UD or GSI QP. */
static bool frdma_wire_recv_ud(struct frdma_qp *qp, struct frdma_pkt *pkt)
{
	struct rdma_ah_attr ah = {};
	struct frdma_sgl rsgl;
	union ib_gid sgid;
	struct frdma_dgram m = {};
	u8 grh[FRDMA_GRH_BYTES];

	if ((pkt->opcode & FRDMA_OP_TRANSPORT) != FRDMA_OP_UD ||
	    (qp->ibqp.qp_type != IB_QPT_UD && !qp->gsi))
		return false;
	if (!frdma_wire_pkey_ok(pkt))
		return false;
	/*
	 * More payload than the port's active MTU: a UD message is at most
	 * one MTU, so only a forged packet (or one reassembled from IP
	 * fragments) carries it.  Taking it would fail a receive sized
	 * for the MTU, as applications post them, and move the QP to the
	 * error state.
	 */
	if (pkt->paylen > frdma_ud_max_msg(qp->fdev))
		return false;

	m.qkey = frdma_get_be32(pkt->hdr);
	m.src_qp = frdma_get_be32(pkt->hdr + 4) & FRDMA_QPN_MASK;
	if (pkt->ops & FRDMA_H_IMM) {
		m.imm = true;
		memcpy(&m.imm_data, pkt->hdr + sizeof(struct frdma_deth),
		       sizeof(m.imm_data));
	}
	m.se = pkt->se;
	m.len = pkt->paylen;
	m.buf = pkt->payload;

	/* As the sender saw it: from its address to ours. */
	ah.type = RDMA_AH_ATTR_TYPE_ROCE;
	ah.ah_flags = IB_AH_GRH;
	frdma_wire_pkt_gids(pkt->skb, &sgid, &ah.grh.dgid);
	if (pkt->skb->protocol == htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6h = ipv6_hdr(pkt->skb);

		ah.grh.traffic_class = ip6_tclass(ip6_flowinfo(ip6h));
		ah.grh.flow_label = be32_to_cpu(ip6_flowlabel(ip6h));
		ah.grh.hop_limit = ip6h->hop_limit;
	} else {
		ah.grh.traffic_class = ip_hdr(pkt->skb)->tos;
		ah.grh.hop_limit = ip_hdr(pkt->skb)->ttl;
	}

	if (qp->gsi)
		return frdma_gsi_recv_wire(qp, &ah, &sgid, &m);
	frdma_build_grh(grh, &ah, &sgid, m.len, m.imm);
	rsgl.n = 0;
	return frdma_ud_recv_wire(qp, &rsgl, grh, &m);
}

/**
 * frdma_wire_recv_dgram - take a received packet for a QP that is not RC
 * @qp: the QP its BTH names, referenced by the caller
 * @pkt: the packet, checked by net.c
 *
 * Context: the receive worker (net.c), process.
 */
void frdma_wire_recv_dgram(struct frdma_qp *qp, struct frdma_pkt *pkt)
{
	/* Pairs with the release that published a whole wire state. */
	struct frdma_wqp *w = smp_load_acquire(&qp->wire);
	bool taken = false;

	if (qp->ibqp.qp_type == IB_QPT_UC) {
		if (w && (pkt->opcode & FRDMA_OP_TRANSPORT) == FRDMA_OP_UC &&
		    frdma_wire_pkey_ok(pkt)) {
			mutex_lock(&w->lock);
			taken = frdma_wire_uc_recv(w, pkt);
			mutex_unlock(&w->lock);
		}
	} else {
		taken = frdma_wire_recv_ud(qp, pkt);
	}
	if (!taken)
		frdma_wire_count(FRDMA_WS_DROP);
}

/**
 * frdma_wire_recv_mcast - take a received packet for a multicast group
 * @pkt: the packet, checked by net.c, its BTH naming IB_MULTICAST_QPN
 * @dgid: its destination GID
 *
 * Every UD member of the group @dgid on the device of the netdev the
 * packet arrived on gets it, each as a unicast datagram
 * (frdma_wire_recv_dgram()).  A copy that IP looped back, or any packet
 * whose source is a GID of a device of this host, is dropped silently:
 * the members of this host had the datagram from the local fabric
 * (req.c) when it was sent.
 *
 * Context: the receive worker (net.c), process.
 */
void frdma_wire_recv_mcast(struct frdma_pkt *pkt, const union ib_gid *dgid)
{
	struct sk_buff *skb = pkt->skb;
	struct frdma_dev *fdev;
	struct frdma_qp **qps;
	union ib_gid sgid;
	u32 i, n;

	if (!rdma_is_multicast_addr((struct in6_addr *)dgid->raw)) {
		frdma_wire_count(FRDMA_WS_DROP);
		return;
	}
	if (skb->pkt_type == PACKET_LOOPBACK)
		return;
	frdma_wire_pkt_gids(skb, &sgid, NULL);	/* @dgid is known */
	fdev = frdma_dev_get_by_gid_net(&init_net, &sgid);
	if (fdev) {
		ib_device_put(&fdev->ibdev);
		return;
	}
	qps = frdma_mcast_members_wire(dgid, skb->skb_iif, &n);
	if (!n) {
		frdma_wire_count(FRDMA_WS_DROP);
		return;
	}
	frdma_wire_count(FRDMA_WS_RX);
	for (i = 0; i < n; i++)
		frdma_wire_recv_dgram(qps[i], pkt);
	frdma_mcast_members_put(qps, n);
}
