/* SPDX-License-Identifier: GPL-2.0 */
/*
 * frdma on the wire: RoCE v2 (IBTA annex A17) for QPs whose peer is not an
 * frdma device in this kernel.
 *
 * Packets are IPv4/UDP or IPv6/UDP datagrams to port 4791: a base transport header
 * (BTH), the extension headers of the opcode, the payload padded to four
 * bytes, and the invariant CRC (ICRC).  net.c owns the UDP socket, builds
 * and sends packets and hands received ones, checked, to the QP they name;
 * wire_req.c is the requester and completer of an RC QP (work requests
 * into packets, acknowledgments into completions, retransmission);
 * wire_resp.c is its responder (request packets into memory and receive
 * completions, acknowledgments and READ/atomic responses back).
 *
 * Locks: a QP's wire state is under wqp->lock, a mutex taken inside the
 * QP's sq_mutex and outside its rq_mutex.  Received packets are processed
 * by one kthread worker (net.c), in arrival order, in process context.
 */
#ifndef _FRDMA_WIRE_H
#define _FRDMA_WIRE_H

#include <linux/skbuff.h>
#include <linux/workqueue.h>

#include "qp.h"

#define FRDMA_ROCE_PORT		4791

/* BTH and extension headers, in network byte order. */
struct frdma_bth {
	u8 opcode;
	u8 flags;		/* SE, MigReq, PadCnt (2 bits), TVer */
	__be16 pkey;
	__be32 qpn;		/* the top byte is reserved */
	__be32 apsn;		/* AckReq and the 24-bit PSN */
};

#define FRDMA_BTH_SE		0x80
#define FRDMA_BTH_MIG		0x40
#define FRDMA_BTH_PAD_SHIFT	4
#define FRDMA_BTH_ACKREQ	0x80000000
#define FRDMA_PSN_MASK		0x00ffffff
#define FRDMA_QPN_MASK		0x00ffffff

struct frdma_reth {
	__be64 va;
	__be32 rkey;
	__be32 len;
} __packed;

struct frdma_atheth {
	__be64 va;
	__be32 rkey;
	__be64 swap_add;
	__be64 compare;
} __packed;

struct frdma_aeth {
	__be32 smsn;		/* syndrome and the 24-bit MSN */
};

struct frdma_deth {
	__be32 qkey;
	__be32 sqp;
};

/* AETH syndromes. */
#define FRDMA_AETH_ACK		0x1f	/* ACK, no credit count */
#define FRDMA_AETH_TYPE		0xe0
#define FRDMA_AETH_T_ACK	0x00
#define FRDMA_AETH_T_RNR	0x20
#define FRDMA_AETH_T_NAK	0x60
#define FRDMA_NAK_PSN_SEQ	0x60
#define FRDMA_NAK_INV_REQ	0x61
#define FRDMA_NAK_REM_ACCESS	0x62
#define FRDMA_NAK_REM_OP	0x63

/* RC opcodes (the UC and UD ones are these plus 0x20 and 0x60). */
enum {
	FRDMA_OP_SEND_FIRST = 0x00,
	FRDMA_OP_SEND_MIDDLE = 0x01,
	FRDMA_OP_SEND_LAST = 0x02,
	FRDMA_OP_SEND_LAST_IMM = 0x03,
	FRDMA_OP_SEND_ONLY = 0x04,
	FRDMA_OP_SEND_ONLY_IMM = 0x05,
	FRDMA_OP_WRITE_FIRST = 0x06,
	FRDMA_OP_WRITE_MIDDLE = 0x07,
	FRDMA_OP_WRITE_LAST = 0x08,
	FRDMA_OP_WRITE_LAST_IMM = 0x09,
	FRDMA_OP_WRITE_ONLY = 0x0a,
	FRDMA_OP_WRITE_ONLY_IMM = 0x0b,
	FRDMA_OP_READ_REQ = 0x0c,
	FRDMA_OP_READ_RESP_FIRST = 0x0d,
	FRDMA_OP_READ_RESP_MIDDLE = 0x0e,
	FRDMA_OP_READ_RESP_LAST = 0x0f,
	FRDMA_OP_READ_RESP_ONLY = 0x10,
	FRDMA_OP_ACK = 0x11,
	FRDMA_OP_ATOMIC_ACK = 0x12,
	FRDMA_OP_CMP_SWAP = 0x13,
	FRDMA_OP_FETCH_ADD = 0x14,
	FRDMA_OP_SEND_LAST_INV = 0x16,
	FRDMA_OP_SEND_ONLY_INV = 0x17,
	FRDMA_OP_ATOMIC_WRITE = 0x1d,
	FRDMA_OP_NR = 0x20,
};

/* What an opcode carries and means (frdma_wire_ops[]). */
#define FRDMA_H_RETH		BIT(0)
#define FRDMA_H_AETH		BIT(1)
#define FRDMA_H_ATMETH		BIT(2)
#define FRDMA_H_ATMACK		BIT(3)
#define FRDMA_H_IMM		BIT(4)
#define FRDMA_H_IETH		BIT(5)
#define FRDMA_H_DETH		BIT(6)
#define FRDMA_F_PAYLOAD		BIT(8)
#define FRDMA_F_FIRST		BIT(9)
#define FRDMA_F_LAST		BIT(10)
#define FRDMA_F_REQ		BIT(11)
#define FRDMA_F_SEND		BIT(12)
#define FRDMA_F_WRITE		BIT(13)
#define FRDMA_F_READ		BIT(14)
#define FRDMA_F_ATOMIC		BIT(15)
#define FRDMA_F_VALID		BIT(16)

extern const u32 frdma_wire_ops[FRDMA_OP_NR];
unsigned int frdma_wire_hdr_len(u32 ops);

/**
 * struct frdma_pkt - a received packet, checked by net.c
 * @skb: the datagram; skb->data is the BTH
 * @bth: the BTH
 * @ops: frdma_wire_ops[] of its opcode
 * @opcode: the BTH opcode (RC)
 * @psn: the PSN
 * @ackreq: the AckReq bit
 * @se: the solicited event bit
 * @hdr: the first extension header
 * @payload: the payload, @paylen bytes (padding and ICRC excluded)
 * @paylen: see @payload
 */
struct frdma_pkt {
	struct sk_buff *skb;
	const struct frdma_bth *bth;
	u32 ops;
	u8 opcode;
	u32 psn;
	bool ackreq;
	bool se;
	const u8 *hdr;
	const u8 *payload;
	u32 paylen;
};

/*
 * The headers after the BTH of one outgoing packet, filled in by the
 * requester or responder, and where its payload comes from.
 */
struct frdma_xpkt {
	u8 opcode;
	bool se;
	bool ackreq;
	u32 psn;
	u32 dqpn;
	u8 ext[64];
	unsigned int ext_len;
	/* payload: @buf, or @len bytes of @sgl from @off */
	const void *buf;
	const struct frdma_sgl *sgl;
	u64 off;
	u32 len;
};

/**
 * struct frdma_xburst - packets to one peer, to be handed to IP as one
 * @skb: their UDP payloads (BTH to ICRC) back to back, or NULL: none
 * @dst: the route to the peer (a reference)
 * @sgid: the source GID
 * @dgid: the destination GID
 * @v4: both GIDs are IPv4-mapped
 * @sport: the UDP source port
 * @seg: the UDP payload bytes of each packet, the last may have fewer
 * @nseg: packets in @skb
 * @room: bytes @skb may still take
 * @closed: the last packet was shorter than @seg: none may follow it
 */
struct frdma_xburst {
	struct sk_buff *skb;
	struct dst_entry *dst;
	union ib_gid sgid;
	union ib_gid dgid;
	bool v4;
	u16 sport;
	u32 seg;
	u32 nseg;
	u32 room;
	bool closed;
};

/**
 * struct frdma_wwqe - a work request the requester has sent or will send
 * @sqe: the SQE copy (its SGEs are resolved in @sgl)
 * @sgl: the local memory, with MR references
 * @len: the message length
 * @first_psn: the PSN of its first packet
 * @npsn: PSNs it uses (a READ: one per response packet)
 * @done: its response came (READ, atomic)
 * @read_off: bytes of a READ response written so far
 * @read_again: the rest of the READ (the atomic) was asked for again and
 *		no response came since: further signs of the same loss do not
 *		ask once more (the local ACK timeout does)
 */
struct frdma_wwqe {
	u64 sqe[FRDMA_MAX_WQE_SIZE / sizeof(u64)];
	struct frdma_sgl sgl;
	u64 len;
	u32 first_psn;
	u32 npsn;
	bool done;
	bool read_again;
	u64 read_off;
};

#define FRDMA_WIRE_WQES		64	/* work requests in flight per QP */
#define FRDMA_WIRE_WINDOW	128	/* unacknowledged PSNs per QP */
#define FRDMA_WIRE_CWND_MIN	8	/* the least the window shrinks to */
#define FRDMA_WIRE_PTO_DIV	16	/* probe timeout: local ACK timeout / 16 */
#define FRDMA_WIRE_KEEP		FRDMA_WIRE_WINDOW /* PSNs a responder keeps ahead */
#define FRDMA_WIRE_KEPT_MAX	8192	/* packets kept ahead, all QPs */
#define FRDMA_WIRE_ACK_EVERY	(FRDMA_WIRE_WINDOW / 2) /* AckReq at least this often */
#define FRDMA_WIRE_READS	FRDMA_MAX_RD_ATOM /* READ, atomic requests kept */

/*
 * A READ or atomic request the responder answered, kept to answer a
 * duplicate: a READ again from its RETH, an atomic with its result.
 */
struct frdma_wread {
	u32 psn;
	u32 npsn;		/* 0: unused */
	u32 rkey;
	u32 len;
	union {
		u64 va;		/* READ */
		u64 orig;	/* atomic: the original value */
	};
	bool atomic;
};

/**
 * struct frdma_wqp - a QP's wire state (under @lock)
 * @qp: the QP
 * @lock: see the header comment
 * @sport: the UDP source port of its packets
 * @tx: the packets sent with frdma_wire_xmit_more() and not handed to IP
 * @wqe: the ring of FRDMA_WIRE_WQES work requests, or NULL
 * @head: the next free slot (free-running)
 * @tail: the oldest uncompleted slot
 * @send: the slot being transmitted
 * @send_pkt: the next packet of @send to transmit
 * @psn: the PSN the next new packet gets
 * @una: the oldest unacknowledged PSN
 * @sq_blocked: the send queue waits for a free slot
 * @noack: packets sent since the last AckReq
 * @retry_left: transport retries left
 * @rnr_left: RNR retries left (7: forever)
 * @rnr_wait: an RNR NAK came: nothing is sent until @rto_work runs
 * @rto_work: the retransmission (and RNR wait) timer
 * @rto_start: when the local ACK timer last started (jiffies): the timeout
 *	is due a local ACK timeout after it
 * @probe_at: when the next probe is due (jiffies), a probe timeout after
 *	the timer started or the last probe
 * @cwnd: the window: unacknowledged PSNs allowed now (FRDMA_WIRE_CWND_MIN
 *	to FRDMA_WIRE_WINDOW)
 * @cwnd_acc: PSNs acknowledged towards the window's next increase
 * @recover: the window shrinks again only once @una has reached this
 * @repair: the packet a sequence NAK named was sent again alone, and no
 *	    acknowledgment has passed it yet
 * @repair_end: the last PSN that packet's acknowledgment covers
 * @epsn: the responder's expected PSN
 * @msn: the responder's message sequence number
 * @nak_sent: a sequence NAK was sent for @epsn
 * @kept: the packets received ahead of @epsn, by PSN modulo
 *	  FRDMA_WIRE_KEEP (allocated on the first), or NULL
 * @nkept: packets in @kept
 * @rcv_active: a SEND is being received into @rcv (an RQE was taken)
 * @rcv: the receive buffers of the SEND being received
 * @rcv_wr_id: its RQE's wr_id
 * @rcv_off: bytes received so far
 * @wr_mr: the MR of the RDMA WRITE being received, or NULL
 * @wr_va: where its next byte goes
 * @wr_left: bytes it may still write
 * @reads: the READ and atomic requests answered, a ring (the responder's
 *	    resources: max_dest_rd_atomic is at most its size)
 * @nreads: entries used in @reads (free-running index of the next one)
 * @uc_msg: UC: the kind of message being received (wire_uc.c)
 */
struct frdma_wqp {
	struct frdma_qp *qp;
	struct mutex lock;	/* see above */
	u16 sport;
	struct frdma_xburst tx;

	struct frdma_wwqe *wqe;
	u32 head;
	u32 tail;
	u32 send;
	u32 send_pkt;
	u32 psn;
	u32 una;
	bool sq_blocked;
	u32 noack;
	u8 retry_left;
	u8 rnr_left;
	bool rnr_wait;
	struct delayed_work rto_work;
	unsigned long rto_start;
	unsigned long probe_at;
	u32 cwnd;
	u32 cwnd_acc;
	u32 recover;
	bool repair;
	u32 repair_end;

	u32 epsn;
	u32 msn;
	bool nak_sent;
	struct frdma_pkt *kept;
	u32 nkept;
	bool rcv_active;
	struct frdma_sgl rcv;
	u64 rcv_wr_id;
	u64 rcv_off;
	struct frdma_mr *wr_mr;
	u64 wr_va;
	u64 wr_left;
	struct frdma_wread reads[FRDMA_WIRE_READS];
	u32 nreads;
	u8 uc_msg;
};

/*
 * Header fields at any alignment (the unaligned-access header moved in
 * 6.12; memcpy() is the same code everywhere).
 */
static inline u32 frdma_get_be32(const void *p)
{
	__be32 v;

	memcpy(&v, p, sizeof(v));
	return be32_to_cpu(v);
}

static inline u64 frdma_get_be64(const void *p)
{
	__be64 v;

	memcpy(&v, p, sizeof(v));
	return be64_to_cpu(v);
}

static inline u32 frdma_get_le32(const void *p)
{
	__le32 v;

	memcpy(&v, p, sizeof(v));
	return le32_to_cpu(v);
}

static inline void frdma_put_le32(u32 x, void *p)
{
	__le32 v = cpu_to_le32(x);

	memcpy(p, &v, sizeof(v));
}

static inline void frdma_put_be32(u32 x, void *p)
{
	__be32 v = cpu_to_be32(x);

	memcpy(p, &v, sizeof(v));
}

static inline void frdma_put_be64(u64 x, void *p)
{
	__be64 v = cpu_to_be64(x);

	memcpy(p, &v, sizeof(v));
}

/* 24-bit PSN arithmetic: a - b as a signed distance. */
static inline s32 frdma_psn_diff(u32 a, u32 b)
{
	return (s32)((a - b) << 8) >> 8;
}

static inline u32 frdma_psn_add(u32 psn, u32 n)
{
	return (psn + n) & FRDMA_PSN_MASK;
}

/*
 * Wire counters, module-wide, printed when the socket closes (net.c) and
 * shown as every device's port counters (stats.c).
 */
enum frdma_wire_stat {
	FRDMA_WS_TX,		/* packets sent */
	FRDMA_WS_RX,		/* packets received for a wire QP */
	FRDMA_WS_ICRC,		/* ICRC mismatches, dropped */
	FRDMA_WS_DROP,		/* other drops */
	FRDMA_WS_RETRANS,	/* local ACK timeouts */
	FRDMA_WS_SEQ_NAK_TX,	/* sequence NAKs sent */
	FRDMA_WS_SEQ_NAK_RX,	/* sequence NAKs received */
	FRDMA_WS_RNR_TX,	/* RNR NAKs sent */
	FRDMA_WS_RNR_RX,	/* RNR NAKs received */
	FRDMA_WS_DUP,		/* duplicate requests */
	FRDMA_WS_TX_BURST,	/* bursts of packets handed to IP as one */
	FRDMA_WS_PROBE,		/* probes sent (a probe timeout passed) */
	FRDMA_WS_KEPT,		/* requests received ahead of a gap, kept */
	FRDMA_WS_NR
};

/* net.c */
extern bool frdma_wire_enabled;
void frdma_wire_count(enum frdma_wire_stat s);
u64 frdma_wire_stat_read(enum frdma_wire_stat s);
int frdma_wire_dev_add(struct frdma_dev *fdev);
void frdma_wire_dev_del(struct frdma_dev *fdev);
int frdma_wire_xmit(struct frdma_wqp *w, const struct frdma_xpkt *x);
int frdma_wire_xmit_more(struct frdma_wqp *w, const struct frdma_xpkt *x);
void frdma_wire_xmit_flush(struct frdma_wqp *w);
void frdma_wire_rx_flush(void);
void frdma_wire_pkt_gids(const struct sk_buff *skb, union ib_gid *sgid,
			 union ib_gid *dgid);
int frdma_wire_xmit_to(struct frdma_dev *fdev, const union ib_gid *sgid,
		       const union ib_gid *dgid, u16 sport,
		       const struct frdma_xpkt *x);
u32 frdma_wire_mtu(struct frdma_qp *qp);

/* wire_req.c */
bool frdma_wire_is_remote(struct frdma_qp *qp);
int frdma_wire_post(struct frdma_qp *qp, const struct frdma_sqe *sqe,
		    struct frdma_sgl *lsgl, u64 len);
void frdma_wire_recv_resp(struct frdma_wqp *w, struct frdma_pkt *pkt);
void frdma_wire_flush(struct frdma_qp *qp);
int frdma_wire_qp_init(struct frdma_qp *qp);
void frdma_wire_qp_modified(struct frdma_qp *qp, const struct ib_qp_attr *attr,
			    int mask);
void frdma_wire_qp_destroy(struct frdma_qp *qp);

/* stats.c */
extern const struct ib_device_ops frdma_stats_ops;

/* wire_resp.c */
void frdma_wire_recv_req(struct frdma_wqp *w, struct frdma_pkt *pkt);
void frdma_wire_resp_reset(struct frdma_wqp *w);
void frdma_wire_kept_purge(struct frdma_wqp *w);
int frdma_wire_rqe_take(struct frdma_wqp *w, u64 *room, bool sgl);
void frdma_wire_rcv_put(struct frdma_wqp *w);
void frdma_wire_rcv_write(struct frdma_wqp *w, u64 off, const u8 *src,
			  u32 len);
void frdma_wire_post_recv(struct frdma_wqp *w, u64 wr_id,
			  enum ib_wc_status status, u32 byte_len, u8 opcode,
			  const struct frdma_pkt *pkt);

#endif /* _FRDMA_WIRE_H */
