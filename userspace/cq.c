// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * frdma provider: completion queues, polled from the shared ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frdma.h"

/* A CQ with timestamps has entries of struct frdma_cqe_ts. */
static uint32_t frdma_cqe_shift(const struct frdma_cq *cq)
{
	return cq->timestamps ? FRDMA_CQE_TS_SHIFT : FRDMA_CQE_SHIFT;
}

static int frdma_cq_map(struct frdma_cq *cq, struct ibv_context *ibctx,
			const struct frdma_ring_desc *desc)
{
	int ret;

	ret = frdma_ring_map(&cq->ring, ibctx->cmd_fd, desc,
			     sizeof(struct frdma_cqe));
	if (!ret && desc->entry_shift != frdma_cqe_shift(cq)) {
		frdma_ring_unmap(&cq->ring);
		ret = EPROTO;
	}
	return ret;
}

struct ibv_cq *frdma_create_cq(struct ibv_context *ibctx, int cqe,
			       struct ibv_comp_channel *channel,
			       int comp_vector)
{
	struct frdma_cmd_create_cq cmd = {};
	struct frdma_cmd_create_cq_resp resp = {};
	struct frdma_cq *cq;
	int ret;

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE);

	ret = ibv_cmd_create_cq(ibctx, cqe, channel, comp_vector, &cq->vcq.cq,
				(struct ibv_create_cq *)&cmd, sizeof(cmd),
				&resp.core, sizeof(resp));
	if (ret)
		goto err_free;

	ret = frdma_cq_map(cq, ibctx, &resp.drv.cq);
	if (ret) {
		ibv_cmd_destroy_cq(&cq->vcq.cq);
		goto err_free;
	}
	return &cq->vcq.cq;

err_free:
	pthread_spin_destroy(&cq->lock);
	free(cq);
	errno = ret;
	return NULL;
}

int frdma_destroy_cq(struct ibv_cq *ibcq)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	int ret;

	ret = ibv_cmd_destroy_cq(ibcq);
	if (ret)
		return ret;
	frdma_ring_unmap(&cq->ring);
	pthread_spin_destroy(&cq->lock);
	free(cq);
	return 0;
}

static void frdma_cqe_to_wc(const struct frdma_cqe *cqe, struct ibv_wc *wc)
{
	bool good = cqe->status == IBV_WC_SUCCESS;

	/* every field, without a memset: this is the polling fast path */
	wc->wr_id = cqe->wr_id;
	wc->status = cqe->status;
	wc->opcode = cqe->opcode;
	wc->vendor_err = 0;
	wc->qp_num = cqe->qp_num;
	wc->byte_len = good ? cqe->byte_len : 0;
	wc->imm_data = good ? cqe->imm_data : 0;
	wc->wc_flags = good ? cqe->wc_flags : 0;
	wc->src_qp = good ? cqe->src_qp : 0;
	wc->pkey_index = good ? cqe->pkey_index : 0;
	wc->slid = 0;
	wc->sl = good ? cqe->sl : 0;
	wc->dlid_path_bits = 0;
}

/*
 * Before sleeping on the CQ's next event, run the polled SQs that could
 * be what that event waits for: the kernel's poller may not be running.
 */
int frdma_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_kick kick;

	pthread_spin_lock(&cq->lock);
	frdma_cq_kick_sqs(cq, true, &kick);
	pthread_spin_unlock(&cq->lock);
	frdma_kick_ring(cq, &kick);
	return ibv_cmd_req_notify_cq(ibcq, solicited_only);
}

/*
 * Under the lock, after a poll that found nothing: count it, and at every
 * FRDMA_CQ_KICK_POLLS-th note in @kick the stalled polled SQs to ring.
 */
static void frdma_cq_polled_empty(struct frdma_cq *cq,
				  struct frdma_kick *kick)
{
	if (++cq->empty_polls < FRDMA_CQ_KICK_POLLS)
		return;
	cq->empty_polls = 0;
	frdma_cq_kick_sqs(cq, false, kick);
}

int frdma_poll_cq(struct ibv_cq *ibcq, int ne, struct ibv_wc *wc)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_ring *r = &cq->ring;
	struct frdma_kick kick;
	uint32_t prod;
	int n = 0;

	kick.n = 0;
	pthread_spin_lock(&cq->lock);
	prod = frdma_ring_load_prod(r);
	while (n < ne && r->uidx != prod) {
		frdma_cqe_to_wc(frdma_ring_entry(r, r->uidx), &wc[n]);
		r->uidx++;
		n++;
	}
	if (n) {
		frdma_ring_store_cons(r);
		cq->empty_polls = 0;
	} else {
		frdma_cq_polled_empty(cq, &kick);
	}
	pthread_spin_unlock(&cq->lock);
	frdma_kick_ring(cq, &kick);
	return n;
}

/*
 * Remove every unconsumed completion of QP @qpn from a CQ (the QP went to
 * RESET).  Under the CQ lock, the entries between the consumer index and
 * the producer index loaded now belong to the provider: walking them from
 * the newest, the ones kept slide up over the ones dropped, and the
 * consumer index then skips the dropped count.  The kernel writes only at
 * and after prod, and only into slots the published cons has freed.
 */
void frdma_cq_clean(struct ibv_cq *ibcq, uint32_t qpn)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_ring *r = &cq->ring;
	const struct frdma_cqe *cqe;
	uint32_t prod, i, dropped = 0;

	pthread_spin_lock(&cq->lock);
	prod = frdma_ring_load_prod(r);
	if (prod - r->uidx > r->num_entries)
		goto out;		/* a broken ring: leave it alone */
	for (i = prod; i != r->uidx;) {
		i--;
		cqe = frdma_ring_entry(r, i);
		if (cqe->qp_num == qpn)
			dropped++;
		else if (dropped)
			memcpy(frdma_ring_entry(r, i + dropped), cqe,
			       (size_t)1 << r->entry_shift);
	}
	if (dropped) {
		r->uidx += dropped;
		frdma_ring_store_cons(r);
	}
out:
	pthread_spin_unlock(&cq->lock);
}

int frdma_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct frdma_cq *cq = to_fcq(ibcq);
	struct frdma_cmd_resize_cq cmd = {};
	struct frdma_cmd_resize_cq_resp resp = {};
	struct frdma_ring nr = {};
	int ret;

	/*
	 * Pollers wait: the kernel moves the entries after our published
	 * consumer index to the start of the new ring.
	 */
	pthread_spin_lock(&cq->lock);
	ret = ibv_cmd_resize_cq(ibcq, cqe, (struct ibv_resize_cq *)&cmd,
				sizeof(cmd), &resp.core, sizeof(resp));
	if (ret)
		goto out;
	ret = frdma_ring_map(&nr, ibcq->context->cmd_fd, &resp.drv.cq,
			     sizeof(struct frdma_cqe));
	if (!ret && resp.drv.cq.entry_shift != frdma_cqe_shift(cq)) {
		frdma_ring_unmap(&nr);
		ret = EPROTO;
	}
	if (ret)
		goto out;	/* the CQ is lost: the kernel left the old ring */
	frdma_ring_unmap(&cq->ring);
	cq->ring = nr;
out:
	pthread_spin_unlock(&cq->lock);
	return ret;
}

/*
 * The extended CQ: ibv_start_poll() takes the CQ lock and reads the
 * oldest CQE, ibv_next_poll() moves on, ibv_end_poll() consumes what was
 * read and publishes the consumer index.
 */
static inline struct frdma_cq *ex_to_fcq(struct ibv_cq_ex *cq_ex)
{
	return container_of(cq_ex, struct frdma_cq, vcq.cq_ex);
}

static int frdma_cq_ex_load(struct frdma_cq *cq)
{
	const struct frdma_cqe *cqe;

	if (cq->ring.uidx == frdma_ring_load_prod(&cq->ring)) {
		cq->cur = NULL;
		return ENOENT;
	}
	cqe = frdma_ring_entry(&cq->ring, cq->ring.uidx);
	cq->cur = cqe;
	cq->vcq.cq_ex.wr_id = cqe->wr_id;
	cq->vcq.cq_ex.status = cqe->status;
	return 0;
}

static int frdma_start_poll(struct ibv_cq_ex *cq_ex,
			    struct ibv_poll_cq_attr *attr)
{
	struct frdma_cq *cq = ex_to_fcq(cq_ex);
	struct frdma_kick kick;
	int ret;

	if (attr->comp_mask)
		return EINVAL;
	kick.n = 0;
	pthread_spin_lock(&cq->lock);
	ret = frdma_cq_ex_load(cq);
	if (!ret) {
		cq->empty_polls = 0;
		return 0;
	}
	frdma_cq_polled_empty(cq, &kick);
	pthread_spin_unlock(&cq->lock);
	frdma_kick_ring(cq, &kick);
	return ret;
}

static int frdma_next_poll(struct ibv_cq_ex *cq_ex)
{
	struct frdma_cq *cq = ex_to_fcq(cq_ex);

	if (cq->cur)
		cq->ring.uidx++;
	return frdma_cq_ex_load(cq);
}

static void frdma_end_poll(struct ibv_cq_ex *cq_ex)
{
	struct frdma_cq *cq = ex_to_fcq(cq_ex);

	if (cq->cur)
		cq->ring.uidx++;
	cq->cur = NULL;
	frdma_ring_store_cons(&cq->ring);
	pthread_spin_unlock(&cq->lock);
}

static enum ibv_wc_opcode frdma_read_opcode(struct ibv_cq_ex *cq_ex)
{
	return ex_to_fcq(cq_ex)->cur->opcode;
}

static uint32_t frdma_read_vendor_err(struct ibv_cq_ex *cq_ex)
{
	return 0;
}

static uint32_t frdma_read_byte_len(struct ibv_cq_ex *cq_ex)
{
	return ex_to_fcq(cq_ex)->cur->byte_len;
}

static __be32 frdma_read_imm_data(struct ibv_cq_ex *cq_ex)
{
	const struct frdma_cqe *cqe = ex_to_fcq(cq_ex)->cur;

	/* ibv_wc_read_invalidated_rkey() converts from big endian */
	if (cqe->wc_flags & FRDMA_WC_WITH_INV)
		return htobe32(cqe->imm_data);
	return cqe->imm_data;
}

static uint32_t frdma_read_qp_num(struct ibv_cq_ex *cq_ex)
{
	return ex_to_fcq(cq_ex)->cur->qp_num;
}

static uint32_t frdma_read_src_qp(struct ibv_cq_ex *cq_ex)
{
	return ex_to_fcq(cq_ex)->cur->src_qp;
}

static unsigned int frdma_read_wc_flags(struct ibv_cq_ex *cq_ex)
{
	return ex_to_fcq(cq_ex)->cur->wc_flags;
}

static uint32_t frdma_read_slid(struct ibv_cq_ex *cq_ex)
{
	return 0;	/* RoCE has no LIDs */
}

static uint8_t frdma_read_sl(struct ibv_cq_ex *cq_ex)
{
	return ex_to_fcq(cq_ex)->cur->sl;
}

static uint8_t frdma_read_dlid_path_bits(struct ibv_cq_ex *cq_ex)
{
	return 0;
}

/* The device clock is CLOCK_MONOTONIC in ns (FRDMA_CLOCK_KHZ). */
static uint64_t frdma_read_completion_ts(struct ibv_cq_ex *cq_ex)
{
	return ((const struct frdma_cqe_ts *)ex_to_fcq(cq_ex)->cur)->timestamp;
}

static uint64_t frdma_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * CLOCK_REALTIME when the kernel wrote the entry: its monotonic
 * timestamp moved by the current distance between the two clocks.
 */
static uint64_t frdma_read_completion_wallclock_ns(struct ibv_cq_ex *cq_ex)
{
	uint64_t mono = frdma_clock_ns(CLOCK_MONOTONIC);
	uint64_t real = frdma_clock_ns(CLOCK_REALTIME);

	return frdma_read_completion_ts(cq_ex) + (real - mono);
}

int frdma_query_rt_values(struct ibv_context *ibctx,
			  struct ibv_values_ex *values)
{
	uint64_t now;

	if (values->comp_mask & ~(uint32_t)IBV_VALUES_MASK_RAW_CLOCK)
		return EINVAL;
	if (values->comp_mask & IBV_VALUES_MASK_RAW_CLOCK) {
		/* the device clock, in the units of read_completion_ts */
		now = frdma_clock_ns(CLOCK_MONOTONIC);
		values->raw_clock.tv_sec = 0;
		values->raw_clock.tv_nsec = now;
	}
	return 0;
}

struct ibv_cq_ex *frdma_create_cq_ex(struct ibv_context *ibctx,
				     struct ibv_cq_init_attr_ex *attr)
{
	struct frdma_cmd_create_cq_ex cmd = {};
	struct frdma_cmd_create_cq_ex_resp resp = {};
	struct ibv_cq_ex *cq_ex;
	struct frdma_cq *cq;
	int ret;

	/*
	 * A parent domain (IBV_CQ_INIT_ATTR_MASK_PD) would give the CQ's
	 * buffer allocators; the ring is the kernel's, so it is only checked.
	 */
	if ((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_PD) &&
	    (!attr->parent_domain || attr->parent_domain->context != ibctx)) {
		errno = EINVAL;
		return NULL;
	}
	if (attr->comp_mask & ~(uint32_t)(IBV_CQ_INIT_ATTR_MASK_FLAGS |
					  IBV_CQ_INIT_ATTR_MASK_PD) ||
	    attr->wc_flags & ~(uint64_t)FRDMA_WC_EX_FLAGS ||
	    ((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
	     attr->flags & ~(uint32_t)IBV_CREATE_CQ_ATTR_SINGLE_THREADED)) {
		errno = EOPNOTSUPP;
		return NULL;
	}

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;
	pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE);
	cq->timestamps = attr->wc_flags & FRDMA_WC_EX_TIMESTAMPS;

	ret = ibv_cmd_create_cq_ex(ibctx, attr, &cq->vcq,
				   (struct ibv_create_cq_ex *)&cmd, sizeof(cmd),
				   &resp.core, sizeof(resp),
				   cq->timestamps ?
				   IB_UVERBS_CQ_FLAGS_TIMESTAMP_COMPLETION : 0);
	if (ret)
		goto err_free;
	ret = frdma_cq_map(cq, ibctx, &resp.drv.cq);
	if (ret) {
		ibv_cmd_destroy_cq(&cq->vcq.cq);
		goto err_free;
	}

	cq_ex = &cq->vcq.cq_ex;
	cq_ex->start_poll = frdma_start_poll;
	cq_ex->next_poll = frdma_next_poll;
	cq_ex->end_poll = frdma_end_poll;
	cq_ex->read_opcode = frdma_read_opcode;
	cq_ex->read_vendor_err = frdma_read_vendor_err;
	cq_ex->read_wc_flags = frdma_read_wc_flags;
	cq_ex->read_byte_len = frdma_read_byte_len;
	cq_ex->read_imm_data = frdma_read_imm_data;
	cq_ex->read_qp_num = frdma_read_qp_num;
	cq_ex->read_src_qp = frdma_read_src_qp;
	cq_ex->read_slid = frdma_read_slid;
	cq_ex->read_sl = frdma_read_sl;
	cq_ex->read_dlid_path_bits = frdma_read_dlid_path_bits;
	if (cq->timestamps) {
		cq_ex->read_completion_ts = frdma_read_completion_ts;
		cq_ex->read_completion_wallclock_ns =
			frdma_read_completion_wallclock_ns;
	}
	return cq_ex;

err_free:
	pthread_spin_destroy(&cq->lock);
	free(cq);
	errno = ret;
	return NULL;
}
