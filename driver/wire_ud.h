/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma on the wire: datagrams (UD, and QP1 which is UD) and UC.
 *
 * A UD message is one packet: BTH, DETH (Q_Key, source QP), the immediate
 * data if any, the payload (at most one path MTU) and the ICRC.  UC
 * messages are segmented like RC ones but nothing is acknowledged.
 */
#ifndef _FRDMA_WIRE_UD_H
#define _FRDMA_WIRE_UD_H

#include "wire.h"

#define FRDMA_OP_UC		0x20	/* transport bits of UC opcodes */
#define FRDMA_OP_UD		0x60	/* and of UD ones */
#define FRDMA_OP_TRANSPORT	0xe0

/**
 * struct frdma_dgram - a datagram, sent or received
 * @src_qp: the sending QP's number
 * @qkey: its Q_Key (a controlled one already replaced by the QP's own)
 * @imm: it carries immediate data, @imm_data
 * @imm_data: the immediate data, in network order
 * @se: the solicited event bit
 * @len: payload bytes
 * @buf: the payload in kernel memory, or NULL and
 * @sgl: the payload in a sender's checked SGEs
 */
struct frdma_dgram {
	u32 src_qp;
	u32 qkey;
	bool imm;
	__be32 imm_data;
	bool se;
	u32 len;
	const u8 *buf;
	const struct frdma_sgl *sgl;
};

/* wire_ud.c */
u32 frdma_wire_dgram_ops(u8 opcode);
void frdma_wire_recv_dgram(struct frdma_qp *qp, struct frdma_pkt *pkt);
void frdma_wire_recv_mcast(struct frdma_pkt *pkt, const union ib_gid *dgid);
int frdma_wire_ud_send(struct frdma_dev *fdev, const union ib_gid *sgid,
		       const struct rdma_ah_attr *ah, u32 dqpn,
		       const struct frdma_dgram *m);

/* wire_uc.c */
int frdma_wire_uc_post(struct frdma_qp *qp, const struct frdma_sqe *sqe,
		       struct frdma_sgl *lsgl, u64 len);
bool frdma_wire_uc_recv(struct frdma_wqp *w, struct frdma_pkt *pkt);

/* resp.c */
bool frdma_ud_recv_wire(struct frdma_qp *t, struct frdma_sgl *rsgl,
			const u8 *grh, const struct frdma_dgram *m);

/* gsi.c */
bool frdma_gsi_recv_wire(struct frdma_qp *gsi, const struct rdma_ah_attr *ah,
			 const union ib_gid *sgid, const struct frdma_dgram *m);

#endif /* _FRDMA_WIRE_UD_H */
