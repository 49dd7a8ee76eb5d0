// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Host unit test of the provider's ring rules (ring.h): geometry checks on
 * a create response's ring description, slot addressing and free-running
 * index arithmetic across the 2^32 wrap.  Needs no device: built and run
 * by `make -C userspace check`.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

static int n, failed;

static void ok(bool cond, const char *what)
{
	printf("%s %d - %s\n", cond ? "ok" : "not ok", ++n, what);
	failed += !cond;
}

static void test_bad_descs(void)
{
	struct frdma_ring_desc good = {
		.mmap_size = 4096, .num_entries = 64, .entry_shift = 5,
	};
	struct frdma_ring_desc d;
	struct frdma_ring r = {};

	/* Each is refused before mmap() is called (fd -1 would fail it). */
	d = good;
	d.num_entries = 0;
	ok(frdma_ring_map(&r, -1, &d, 32) == EPROTO, "zero entries are refused");
	d = good;
	d.num_entries = 48;
	ok(frdma_ring_map(&r, -1, &d, 32) == EPROTO,
	   "a non-power-of-two entry count is refused");
	d = good;
	d.entry_shift = 13;
	ok(frdma_ring_map(&r, -1, &d, 32) == EPROTO,
	   "an entry stride above 4 KiB is refused");
	d = good;
	d.entry_shift = 4;
	ok(frdma_ring_map(&r, -1, &d, 32) == EPROTO,
	   "a stride smaller than the entry is refused");
	d = good;
	d.mmap_size = FRDMA_RING_HDR_SIZE + 64 * 32 - 1;
	ok(frdma_ring_map(&r, -1, &d, 32) == EPROTO,
	   "a mapping too small for header and entries is refused");
	d = good;
	d.num_entries = 1U << 31;
	d.entry_shift = 12;
	ok(frdma_ring_map(&r, -1, &d, 32) == EPROTO,
	   "a mapping size that cannot hold a huge ring is refused");
	ok(r.hdr == NULL, "nothing was mapped");
	ok(frdma_ring_map(&r, -1, &good, 32) != 0 && r.hdr == NULL,
	   "a good description reaches mmap() (which fails on fd -1)");
}

static void test_slots_and_wrap(void)
{
	struct frdma_ring r = { .num_entries = 8, .entry_shift = 5 };
	uint8_t *buf = calloc(1, FRDMA_RING_HDR_SIZE + 8 * 32);
	bool all = true;
	uint32_t i;

	r.hdr = (struct frdma_ring_hdr *)buf;
	ok((uint8_t *)frdma_ring_entry(&r, 0) == buf + FRDMA_RING_HDR_SIZE,
	   "entry 0 follows the header");
	ok((uint8_t *)frdma_ring_entry(&r, 9) == buf + FRDMA_RING_HDR_SIZE + 32,
	   "index 9 of 8 entries is slot 1");
	ok(frdma_ring_entry(&r, 0xffffffffu) == frdma_ring_entry(&r, 7),
	   "index 2^32 - 1 is the last slot");

	/* Produce across the wrap with the consumer trailing. */
	r.uidx = 0xfffffffcu;
	r.hdr->cons = 0xfffffffcu;
	ok(frdma_ring_space(&r) == 8, "an empty ring has all slots free");
	for (i = 0; i < 8; i++) {
		r.uidx++;
		frdma_ring_store_prod(&r);
		all &= frdma_ring_space(&r) == 7 - i;
	}
	ok(all, "space shrinks by one per entry across the wrap");
	ok(r.uidx == 4 && r.hdr->prod == 4, "prod wrapped to 4");
	ok(frdma_ring_space(&r) == 0, "eight entries fill the ring");
	r.hdr->cons = 2;
	ok(frdma_ring_space(&r) == 6 && frdma_ring_load_cons(&r) == 2,
	   "consumption past the wrap frees slots");
	free(buf);
}

static void test_sq_flags(void)
{
	struct frdma_ring r = { .num_entries = 8, .entry_shift = 5 };
	uint8_t *buf = calloc(1, FRDMA_RING_HDR_SIZE + 8 * 32);

	r.hdr = (struct frdma_ring_hdr *)buf;
	ok(offsetof(struct frdma_ring_hdr, prod) == 0 &&
	   offsetof(struct frdma_ring_hdr, cons) == 64 &&
	   offsetof(struct frdma_ring_hdr, sq_flags) == 68,
	   "sq_flags follows cons; prod and cons did not move");
	ok(frdma_ring_sq_needs_doorbell(&r),
	   "the doorbell is rung while the kernel does not poll");
	r.hdr->sq_flags = FRDMA_SQ_POLLED;
	ok(!frdma_ring_sq_needs_doorbell(&r),
	   "no doorbell while FRDMA_SQ_POLLED is set");
	r.hdr->sq_flags = ~(uint32_t)FRDMA_SQ_POLLED;
	ok(frdma_ring_sq_needs_doorbell(&r),
	   "other bits of sq_flags do not skip the doorbell");
	ok(frdma_ring_stall_limit(&r) == 2,
	   "an 8-entry SQ rings anyway after 2 entries with cons unmoved");
	r.num_entries = 2;
	ok(frdma_ring_stall_limit(&r) == 1, "a 2-entry SQ after 1");
	r.num_entries = 1U << 14;
	ok(frdma_ring_stall_limit(&r) == 32, "a large SQ after 32");
	free(buf);
}

int main(void)
{
	test_bad_descs();
	test_slots_and_wrap();
	test_sq_flags();
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
