/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface of frdma_umem_test.ko, the test-only module that exposes the
 * umem library to user space (like mm/gup_test.c does for GUP).  Shared by
 * the module and tests/umem/umem_test.c.  Not a stable ABI.
 */
#ifndef _FRDMA_UMEM_TEST_UAPI_H
#define _FRDMA_UMEM_TEST_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define FUT_DEVICE	"/dev/frdma_umem_test"

/* fut_pin.flags, fut_bench.flags */
#define FUT_WRITE	0x01	/* FRDMA_UMEM_WRITE */
#define FUT_LONGTERM	0x02	/* FRDMA_UMEM_LONGTERM */
#define FUT_NO_FOLIO	0x04	/* FRDMA_UMEM_NO_FOLIO */
#define FUT_FOLIO_ONLY	0x08	/* FRDMA_UMEM_FOLIO_ONLY */
#define FUT_REMOTE	0x10	/* pin from a kernel worker: foreign mm */
#define FUT_UMEM_FIRST	0x20	/* bench only: time umem before plain */

/* Pin [addr, addr + len); returns a handle and the umem's statistics. */
struct fut_pin {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 handle;		/* out */
	__u32 nr_runs;		/* out */
	__u32 max_run;		/* out */
	__u64 npages;		/* out */
	__u64 nr_folio_pins;	/* out */
	__u64 meta_bytes;	/* out */
	__u32 nr_parts;		/* out */
	__u32 pad;
};

struct fut_run {
	__u64 pfn;
	__u64 pgoff;
	__u64 npages;
};

/* Copy runs [first, first + count) of a pin to user memory at ptr. */
struct fut_runs {
	__u32 handle;
	__u32 first;
	__u32 count;		/* in: room at ptr; out: runs copied */
	__u32 nr_runs;		/* out: runs in the pin */
	__u64 ptr;		/* struct fut_run[count] */
};

struct fut_release {
	__u32 handle;
	__u32 dirty;
};

/*
 * FUT_IOC_RELEASE_TRACED: FUT_IOC_RELEASE, with kprobes on
 * unpin_user_page_range_dirty_lock() and __cond_resched() counting what
 * the calling task does while it releases: the unpin calls and the pages
 * they were given, the reschedule points (cond_resched() calls) it
 * reached, and the most pages given to unpin calls between two of them
 * (or before the first, or after the last).  Only the calling task is
 * watched: with the release split across CPUs (frdma_umem max_cpus above
 * 1) the helpers' work is not seen.  EOPNOTSUPP on a kernel without
 * kprobes, or built for full preemption without dynamic preemption, where
 * cond_resched() is empty.
 */
struct fut_release_traced {
	__u32 handle;
	__u32 dirty;
	__u64 unpin_calls;	/* out */
	__u64 unpin_pages;	/* out */
	__u64 max_call_pages;	/* out */
	__u64 resched;		/* out */
	__u64 max_pages_between; /* out */
};

/*
 * FUT_IOC_WRITE: write fut_pattern(seed, offset + i) into bytes
 * [offset, offset + len) of the pin, from the kernel, through the pin.
 * FUT_IOC_READ: copy bytes [offset, offset + len) of the pin, read
 * through the pin, to user memory at ptr.
 */
struct fut_rw {
	__u32 handle;
	__u32 seed;
	__u64 offset;
	__u64 len;
	__u64 ptr;
};

/*
 * Pin and release [addr, addr + len) once through umem and once with
 * plain pin_user_pages_fast() + unpin_user_pages() (page-pointer array
 * for the whole range); times in ns, errors as negative errno (0: ok).
 * umem_ns includes umem's own allocations; plain_ns does not include the
 * page-pointer array, whose kvmalloc_array() + kvfree() is plain_alloc_ns.
 */
struct fut_bench {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 nr_runs;		/* out */
	__s32 umem_err;		/* out */
	__s32 plain_err;	/* out */
	__u64 umem_ns;		/* out */
	__u64 plain_ns;		/* out */
	__u64 umem_meta_bytes;	/* out */
	__u64 plain_meta_bytes;	/* out: the page-pointer array */
	__u64 plain_alloc_ns;	/* out: allocating and freeing that array */
};

#define FUT_IOC_PIN	_IOWR('F', 0x60, struct fut_pin)
#define FUT_IOC_RUNS	_IOWR('F', 0x61, struct fut_runs)
#define FUT_IOC_RELEASE	_IOW('F', 0x62, struct fut_release)
#define FUT_IOC_WRITE	_IOW('F', 0x63, struct fut_rw)
#define FUT_IOC_READ	_IOW('F', 0x64, struct fut_rw)
#define FUT_IOC_BENCH	_IOWR('F', 0x65, struct fut_bench)
#define FUT_IOC_RELEASE_TRACED	_IOWR('F', 0x66, struct fut_release_traced)

/* The byte FUT_IOC_WRITE puts at pin offset @off. */
static inline __u8 fut_pattern(__u32 seed, __u64 off)
{
	return (__u8)(seed * 31 + off + (off >> 8) * 7 + (off >> 16) * 13);
}

#endif /* _FRDMA_UMEM_TEST_UAPI_H */
