/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-2-Clause) */
/*
 * frdma user ABI: the one description of everything the frdma kernel driver
 * and its libibverbs provider share.  Both include this file; there is no
 * other copy.  Documentation/driver.rst explains the model; this header is
 * the contract.
 *
 * Conventions
 *
 *   All multi-byte fields are in CPU byte order, except the ones documented
 *   as network byte order (immediate data, as in struct ibv_wc and struct
 *   ibv_send_wr).  Every structure is padded explicitly to a multiple of 8
 *   bytes with fields named rsvd*, which the writer must zero and the reader
 *   must ignore.
 *
 * Objects and commands
 *
 *   Commands are the RDMA core's (struct ib_uverbs_*), each followed by the
 *   driver-private structure named after it below ("driver data"; the
 *   kernel sees it as udata).  A request's driver data is appended to the
 *   core request, a response's to the core response.  A structure with no
 *   fields is not sent.  The kernel accepts driver data shorter than its
 *   own structure only where documented, and rejects non-zero bytes beyond
 *   it, so fields can be added at the end later.
 *
 * Rings
 *
 *   Every work queue (SQ, RQ, SRQ) and every CQ is a ring in memory the
 *   kernel allocates (zeroed, page aligned) and the provider maps with
 *   mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, cmd_fd,
 *   mmap_offset), the two values coming from struct frdma_ring_desc in the
 *   object's create response.  The offset is an opaque cookie
 *   (rdma_user_mmap_entry): only a shared mapping of exactly mmap_size
 *   bytes at that offset, on the command fd that created the object, is
 *   accepted, and only until the object is destroyed.  A ring is:
 *
 *     offset 0                    struct frdma_ring_hdr (FRDMA_RING_HDR_SIZE)
 *     offset FRDMA_RING_HDR_SIZE  num_entries entries of 1 << entry_shift
 *                                 bytes each
 *
 *   num_entries is a power of two.  The producer and consumer indices are
 *   free-running 32-bit counters: entry i lives in slot
 *   i & (num_entries - 1), the ring holds prod - cons entries (unsigned
 *   32-bit arithmetic), it is empty when prod == cons and full when
 *   prod - cons == num_entries.  Each side writes only its own index:
 *
 *     ring      producer (writes prod)    consumer (writes cons)
 *     SQ        provider                  kernel
 *     RQ, SRQ   provider                  kernel
 *     CQ        kernel                    provider
 *
 *   Ordering: the producer writes the entry, then stores prod with release
 *   semantics (smp_store_release() / atomic_store_explicit(...,
 *   memory_order_release)); the consumer loads prod with acquire semantics
 *   before reading entries, and stores cons with release semantics after it
 *   has finished reading them.
 *
 *   Everything the provider writes is hostile to the kernel.  The kernel
 *   keeps its own copy of the index it owns and of num_entries and never
 *   reads them back from the ring; it loads the provider's index once per
 *   pass and treats prod - cons > num_entries as a broken ring (the QP goes
 *   to the error state, the CQ reports IB_EVENT_CQ_ERR); it copies each
 *   work queue entry out of the ring once, into kernel memory, and
 *   validates and uses only that copy.
 *
 * Doorbell
 *
 *   After advancing an SQ's prod, the provider rings the doorbell: one
 *   write() on the command fd of a struct ib_uverbs_cmd_hdr { .command =
 *   IB_USER_VERBS_CMD_POST_SEND, .in_words = (header + request) / 4,
 *   .out_words = sizeof(struct ib_uverbs_post_send_resp) / 4 } followed by
 *   a struct ib_uverbs_post_send { .response = address of a struct
 *   ib_uverbs_post_send_resp, .qp_handle = the QP's handle, .wr_count = 0,
 *   .sge_count = 0, .wqe_size = sizeof(struct ib_uverbs_send_wr) } (the
 *   core checks wqe_size even for no work requests).  The kernel's
 *   post_send, called with no work request, consumes the SQ up to the prod
 *   it loads.  Receive queues have no doorbell: the kernel loads an RQ's
 *   prod when a message arrives.  Completion notification is requested
 *   with IB_USER_VERBS_CMD_REQ_NOTIFY_CQ (ibv_cmd_req_notify_cq()).
 *
 * Send queue polling
 *
 *   When doorbells come back to back, the kernel may run an SQ from a
 *   poller of its own for a while, and says so in the SQ header's sq_flags
 *   word, which only the kernel writes: while FRDMA_SQ_POLLED is set, the
 *   poller loads prod again before it stops, so the doorbell may be
 *   skipped.  The provider, after storing prod (release), issues a full
 *   fence (atomic_thread_fence(memory_order_seq_cst)), then loads sq_flags
 *   and rings the doorbell unless FRDMA_SQ_POLLED is set (it may ring it
 *   anyway: a doorbell is always correct, and runs the queue in the
 *   caller when the poller is slow to get a CPU).  The kernel,
 *   when its poller stops, clears FRDMA_SQ_POLLED, issues a full fence
 *   (smp_mb()) and loads prod once more: of two such store-fence-load
 *   sequences at least one sees the other's store, so every SQE is either
 *   seen by the poller or followed by a doorbell.  sq_flags is a hint the
 *   kernel never reads back: a provider that sets it itself, or ignores
 *   it, only delays or speeds up its own QP's send queue.
 *
 * Receive queue flushing
 *
 *   Receives posted while the QP is in the error state complete with
 *   IBV_WC_WR_FLUSH_ERR, but a receive queue has no doorbell, and the QP
 *   may have entered the error state asynchronously (a peer's error), so
 *   the provider cannot know.  The kernel says so in the RQ header's
 *   sq_flags word: while the QP is in the error state FRDMA_RQ_FLUSHING is
 *   set.  The kernel sets it, issues a full fence and loads prod to flush;
 *   the provider, after storing prod (release), issues a full fence, loads
 *   the word and, when FRDMA_RQ_FLUSHING is set, rings the QP's send
 *   doorbell, which flushes both queues of a QP in the error state.  As
 *   above, one of the two sides sees the other's store.  The flag is
 *   cleared when the QP is reset.  The word is zero in CQs.
 */
#ifndef FRDMA_ABI_USER_H
#define FRDMA_ABI_USER_H

#include <linux/types.h>

/* The uverbs ABI version (ib_device_ops.uverbs_abi_ver). */
#define FRDMA_ABI_VERSION	1

/*
 * The node description of every frdma device (sysfs node_desc).  The
 * provider recognises frdma devices by it, whatever their name.
 */
#define FRDMA_NODE_DESC		"frdma"

/* Limits of the ring format (the kernel may report lower ones). */
#define FRDMA_MAX_SGE		16	/* SGEs in one SQ, RQ or SRQ entry */
#define FRDMA_MAX_INLINE_DATA	256	/* bytes of inline data in an SQE */
#define FRDMA_MAX_WQE_SIZE	512	/* largest entry stride of a WQ */
#define FRDMA_MAX_QP_WR		(1U << 14)	/* entries in one SQ/RQ/SRQ */
#define FRDMA_MAX_CQE		(1U << 16)	/* entries in one CQ */

/**
 * struct frdma_ring_hdr - the indices at the start of every ring
 * @prod: producer index, written only by the producer
 * @rsvd0: keeps @cons on its own cache line
 * @cons: consumer index, written only by the consumer
 * @sq_flags: a work queue's flags, written only by the kernel: an SQ's
 *	      FRDMA_SQ_* flags ("Send queue polling" above), an RQ's
 *	      FRDMA_RQ_* flags ("Receive queue flushing"); zero in CQs
 * @rsvd1: pads the header to FRDMA_RING_HDR_SIZE
 */
struct frdma_ring_hdr {
	__u32 prod;
	__u32 rsvd0[15];
	__u32 cons;
	__u32 sq_flags;
	__u32 rsvd1[14];
};

/* struct frdma_ring_hdr.sq_flags */
enum {
	FRDMA_SQ_POLLED		= 1 << 0,	/* the kernel polls prod */
	FRDMA_RQ_FLUSHING	= 1 << 1,	/* RQ: in ERR, ring to flush */
};

#define FRDMA_RING_HDR_SIZE	128

/**
 * struct frdma_ring_desc - how to map a ring (in create responses)
 * @mmap_offset: the offset argument of mmap() on the command fd
 * @mmap_size: bytes to map: a multiple of the page size, at least
 *	       FRDMA_RING_HDR_SIZE + (num_entries << entry_shift)
 * @num_entries: entries in the ring, a power of two
 * @entry_shift: log2 of the entry stride in bytes
 * @rsvd: zero
 */
struct frdma_ring_desc {
	__aligned_u64 mmap_offset;
	__u32 mmap_size;
	__u32 num_entries;
	__u32 entry_shift;
	__u32 rsvd;
};

/**
 * struct frdma_sge - a scatter/gather element, as in struct ibv_sge
 * @addr: virtual address in the MR named by @lkey
 * @length: bytes
 * @lkey: local key of a memory region of the QP's PD
 */
struct frdma_sge {
	__aligned_u64 addr;
	__u32 length;
	__u32 lkey;
};

/* struct frdma_sqe.flags, equal to the enum ibv_send_flags values */
enum {
	FRDMA_WQE_FENCE		= 1 << 0,	/* IBV_SEND_FENCE */
	FRDMA_WQE_SIGNALED	= 1 << 1,	/* IBV_SEND_SIGNALED */
	FRDMA_WQE_SOLICITED	= 1 << 2,	/* IBV_SEND_SOLICITED */
	FRDMA_WQE_INLINE	= 1 << 3,	/* IBV_SEND_INLINE */
};

/**
 * struct frdma_sqe - a send queue entry
 * @wr_id: returned in the completion
 * @opcode: enum ib_uverbs_wr_opcode (equal to enum ibv_wr_opcode):
 *	    IB_UVERBS_WR_SEND, _SEND_WITH_IMM, _SEND_WITH_INV, _RDMA_WRITE,
 *	    _RDMA_WRITE_WITH_IMM, _RDMA_READ, _ATOMIC_CMP_AND_SWP,
 *	    _ATOMIC_FETCH_AND_ADD, _ATOMIC_WRITE, _BIND_MW, _LOCAL_INV;
 *	    anything else completes with IBV_WC_LOC_QP_OP_ERR
 * @flags: FRDMA_WQE_* flags
 * @num_sge: SGEs following the header, at most the QP's max_send_sge;
 *	     ignored with FRDMA_WQE_INLINE
 * @rsvd0: zero
 * @inline_len: with FRDMA_WQE_INLINE, bytes of data following the header,
 *		at most the QP's max_inline_data
 * @imm_data: immediate data, network byte order (the _WITH_IMM opcodes)
 * @invalidate_rkey: the key to invalidate, CPU byte order (_LOCAL_INV,
 *		     _SEND_WITH_INV); shares its bytes with @imm_data, as in
 *		     struct ibv_send_wr
 * @xrc_srqn: XRC send QPs: the number of the XRC SRQ, at the target,
 *	      whose entries receive the message and whose PD checks its
 *	      remote keys (ibv_get_srq_num()); zero on other QPs
 * @rdma: RDMA WRITE and READ: the remote buffer
 * @rdma.remote_addr: remote virtual address
 * @rdma.rkey: remote key
 * @rdma.rsvd: zero
 * @atomic: the atomics: the remote 8-byte word and the operands
 * @atomic.remote_addr: remote virtual address, 8-byte aligned
 * @atomic.compare_add: compare value (CAS) or addend (FAA)
 * @atomic.swap: swap value (CAS)
 * @atomic.rkey: remote key
 * @atomic.rsvd: zero
 *	   IB_UVERBS_WR_ATOMIC_WRITE uses @atomic too: @atomic.compare_add is
 *	   the 8 bytes to write (host byte order, as the application's
 *	   buffer held them), @atomic.swap is zero, and there are no SGEs
 * @bind: IB_UVERBS_WR_BIND_MW: bind (or, with @bind.length 0, unbind a
 *	  type 1) memory window
 * @bind.addr: the first byte of the window, an address in the MR
 * @bind.length: bytes of the window
 * @bind.mr_lkey: the MR the window lies in (ignored when @bind.length is 0)
 * @bind.mw_rkey: the window's current rkey (names the window)
 * @bind.new_rkey: the rkey after the bind: only its low 8 bits (the key
 *		   byte) are used, the rest is the window's index
 * @bind.access: IB_ACCESS_REMOTE_READ, _REMOTE_WRITE, _REMOTE_ATOMIC
 *		 (IB_ACCESS_LOCAL_WRITE is accepted and ignored)
 * @ud: UD QPs: the destination
 * @ud.ah_num: address handle number from struct frdma_create_ah_resp
 * @ud.remote_qpn: destination QP number
 * @ud.remote_qkey: Q_Key
 * @ud.rsvd: zero
 * @rsvd2: zero
 *
 * The header is followed, within the entry stride, by @num_sge struct
 * frdma_sge or by @inline_len bytes of data.  For RDMA READ the SGEs name
 * where the data lands; for the atomics one SGE of 8 bytes receives the
 * original remote value.  ATOMIC_WRITE, BIND_MW and LOCAL_INV carry no
 * SGEs (@num_sge and @inline_len are ignored).
 */
struct frdma_sqe {
	__aligned_u64 wr_id;
	__u8 opcode;
	__u8 flags;
	__u8 num_sge;
	__u8 rsvd0;
	__u32 inline_len;
	union {
		__u32 imm_data;
		__u32 invalidate_rkey;
	};
	__u32 xrc_srqn;
	union {
		struct {
			__aligned_u64 remote_addr;
			__u32 rkey;
			__u32 rsvd;
		} rdma;
		struct {
			__aligned_u64 remote_addr;
			__aligned_u64 compare_add;
			__aligned_u64 swap;
			__u32 rkey;
			__u32 rsvd;
		} atomic;
		struct {
			__aligned_u64 addr;
			__aligned_u64 length;
			__u32 mr_lkey;
			__u32 mw_rkey;
			__u32 new_rkey;
			__u32 access;
		} bind;
		struct {
			__u32 ah_num;
			__u32 remote_qpn;
			__u32 remote_qkey;
			__u32 rsvd;
		} ud;
	};
	__aligned_u64 rsvd2;
};

/**
 * struct frdma_rqe - a receive queue (or SRQ) entry
 * @wr_id: returned in the completion
 * @num_sge: SGEs following the header, at most the queue's max_recv_sge
 * @rsvd: zero
 *
 * The header is followed by @num_sge struct frdma_sge.  On a UD QP the
 * first 40 bytes of the buffers receive the GRH of the message (the CQE has
 * FRDMA_WC_GRH), as IBTA requires; @byte_len counts them.
 */
struct frdma_rqe {
	__aligned_u64 wr_id;
	__u32 num_sge;
	__u32 rsvd;
};

/*
 * struct frdma_cqe.opcode: enum ib_uverbs_wc_opcode for send-side
 * completions (IB_UVERBS_WC_SEND, _RDMA_WRITE, _RDMA_READ, _COMP_SWAP,
 * _FETCH_ADD, _BIND_MW, _LOCAL_INV, _ATOMIC_WRITE), and these for receive-side ones.  All equal the
 * corresponding enum ibv_wc_opcode and enum ib_wc_opcode values.
 */
enum {
	FRDMA_WC_RECV			= 1 << 7,	/* IBV_WC_RECV */
	FRDMA_WC_RECV_RDMA_WITH_IMM	= (1 << 7) + 1,
};

/* struct frdma_cqe.wc_flags, equal to enum ibv_wc_flags */
enum {
	FRDMA_WC_GRH		= 1 << 0,	/* IBV_WC_GRH */
	FRDMA_WC_WITH_IMM	= 1 << 1,	/* IBV_WC_WITH_IMM */
	FRDMA_WC_WITH_INV	= 1 << 3,	/* IBV_WC_WITH_INV */
};

/**
 * struct frdma_cqe - a completion queue entry (32 bytes)
 * @wr_id: the completed work request's wr_id
 * @byte_len: bytes received (receive completions)
 * @imm_data: immediate data, network byte order (with FRDMA_WC_WITH_IMM),
 *	      or the rkey a SEND with invalidate invalidated, CPU byte order
 *	      (with FRDMA_WC_WITH_INV)
 * @qp_num: the QP the work request was posted on
 * @src_qp: source QP number (UD receive completions)
 * @status: enum ib_wc_status (equal to enum ibv_wc_status); entries with
 *	    a status other than success carry only @wr_id, @qp_num and
 *	    @opcode
 * @opcode: IB_UVERBS_WC_* or FRDMA_WC_RECV*
 * @wc_flags: FRDMA_WC_* flags
 * @pkey_index: P_Key index (0)
 * @sl: service level
 * @rsvd: zero
 */
struct frdma_cqe {
	__aligned_u64 wr_id;
	__u32 byte_len;
	__u32 imm_data;
	__u32 qp_num;
	__u32 src_qp;
	__u8 status;
	__u8 opcode;
	__u16 wc_flags;
	__u16 pkey_index;
	__u8 sl;
	__u8 rsvd;
};

#define FRDMA_CQE_SHIFT		5	/* log2(sizeof(struct frdma_cqe)) */

/*
 * The clock of completion timestamps: CLOCK_MONOTONIC in nanoseconds
 * (the kernel's ktime_get_ns(), user space's clock_gettime()), reported
 * as a device clock of FRDMA_CLOCK_KHZ kHz (hca_core_clock) whose
 * timestamp_mask is all ones.
 */
#define FRDMA_CLOCK_KHZ		1000000

/**
 * struct frdma_cqe_ts - a completion queue entry with its timestamp
 * (64 bytes), the entry of a CQ created with
 * IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION
 * @cqe: the completion, as in other CQs
 * @timestamp: when the kernel wrote the entry, CLOCK_MONOTONIC in ns
 * @rsvd: zero
 */
struct frdma_cqe_ts {
	struct frdma_cqe cqe;
	__aligned_u64 timestamp;
	__aligned_u64 rsvd[3];
};

#define FRDMA_CQE_TS_SHIFT	6	/* log2(sizeof(struct frdma_cqe_ts)) */

/**
 * struct frdma_alloc_ucontext_resp - driver data of GET_CONTEXT's response
 * @abi_version: FRDMA_ABI_VERSION
 * @sq_wqe_hdr_size: sizeof(struct frdma_sqe)
 * @rq_wqe_hdr_size: sizeof(struct frdma_rqe)
 * @cqe_size: sizeof(struct frdma_cqe)
 * @ring_hdr_size: FRDMA_RING_HDR_SIZE
 * @max_sge: SGEs per work queue entry this kernel accepts
 * @max_inline_data: inline bytes per SQE this kernel accepts
 * @max_wqe_size: largest work queue entry stride
 *
 * The sizes let a provider refuse a kernel whose formats it does not know.
 */
struct frdma_alloc_ucontext_resp {
	__u32 abi_version;
	__u32 sq_wqe_hdr_size;
	__u32 rq_wqe_hdr_size;
	__u32 cqe_size;
	__u32 ring_hdr_size;
	__u32 max_sge;
	__u32 max_inline_data;
	__u32 max_wqe_size;
};

/**
 * struct frdma_create_cq_resp - driver data of CREATE_CQ's response (and
 * of the extended CREATE_CQ's)
 * @cq: the completion ring: num_entries is at least the requested cqe and
 *	is the cqe reported to the application; entry_shift is
 *	FRDMA_CQE_SHIFT, or FRDMA_CQE_TS_SHIFT for a CQ created with
 *	IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION (struct frdma_cqe_ts)
 */
struct frdma_create_cq_resp {
	struct frdma_ring_desc cq;
};

/**
 * struct frdma_resize_cq_resp - driver data of RESIZE_CQ's response
 * @cq: the new completion ring, of the same entry format as the old one.
 *	Before it responds, the kernel stops
 *	writing to the old ring and copies its unconsumed entries (from the
 *	old ring's cons, checked against its size, to the kernel's prod) in
 *	order to slots 0, 1, ... of the new ring, whose cons is then 0 and
 *	prod the number copied.  The provider, holding its CQ lock across
 *	the command, then polls the new ring from index 0 and unmaps the old
 *	one.  A resize to fewer entries than are unconsumed fails with
 *	EINVAL and changes nothing.
 */
struct frdma_resize_cq_resp {
	struct frdma_ring_desc cq;
};

/**
 * struct frdma_create_qp_resp - driver data of CREATE_QP's response (and
 * of the extended CREATE_QP's)
 * @sq: the send queue: num_entries >= max_send_wr; the entry stride is the
 *	smallest power of two holding a struct frdma_sqe and
 *	max(max_send_sge SGEs, max_inline_data bytes)
 * @rq: the receive queue, all zero when the QP uses an SRQ: num_entries
 *	>= max_recv_wr, the stride the smallest power of two holding a
 *	struct frdma_rqe and max_recv_sge SGEs
 * @max_inline_data: inline bytes the SQ accepts (also reported in the
 *	core response's capabilities)
 * @rsvd: zero
 *
 * The capabilities in the core response are the QP's actual ones, at least
 * those requested (the kernel may round up to what the strides hold).
 */
struct frdma_create_qp_resp {
	struct frdma_ring_desc sq;
	struct frdma_ring_desc rq;
	__u32 max_inline_data;
	__u32 rsvd;
};

/**
 * struct frdma_create_srq_resp - driver data of CREATE_SRQ's response
 * @rq: the shared receive queue, formatted like a QP's RQ
 */
struct frdma_create_srq_resp {
	struct frdma_ring_desc rq;
};

/**
 * struct frdma_create_ah_resp - driver data of CREATE_AH's response
 * @ah_num: the number to put in struct frdma_sqe.ud.ah_num; the kernel
 *	    accepts it only on QPs of the AH's PD
 * @rsvd: zero
 */
struct frdma_create_ah_resp {
	__u32 ah_num;
	__u32 rsvd;
};

#endif /* FRDMA_ABI_USER_H */
