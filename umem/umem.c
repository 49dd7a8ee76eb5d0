// SPDX-License-Identifier: GPL-2.0
/*
 * frdma umem: pin user memory as runs of physically contiguous pages.
 *
 * The vocabulary and the invariants are stated in include/frdma/umem.h and
 * Documentation/umem.rst.  This file holds the two ways pages get pinned:
 *
 * Generic path: pages are pinned into a batch of page pointers, one page
 * of them (at most PAGE_SIZE / sizeof(void *) pages at a time), or for a
 * pin of at most FRDMA_UMEM_SMALL (8) pages an array of that many on the
 * stack, so that a small pin allocates no page: with pin_user_pages_fast()
 * when the mm is the caller's own (and always in helpers, below), with
 * pin_user_pages_remote() under the mmap lock when the pinning task pins
 * another mm.  Each batch is folded into the runs (one pass over its page
 * pointers) and then, for a long-term pin only, checked folio by folio
 * along the runs it added: every folio must be long-term pinnable.  Every
 * page holds one pin; a run is released with
 * unpin_user_page_range_dirty_lock(), at most FRDMA_UMEM_UNPIN_PAGES pages
 * per call, with a cond_resched() after each.
 *
 * Parts: a generic pin of at least 2 * FRDMA_UMEM_PART_MIN pages (32 MiB),
 * with more than one CPU to use (online, and at most max_cpus), is split
 * into parts (frdma_umem_parts_split(): at least about 16 MiB each, up to
 * four per CPU, ending on 2 MiB address boundaries), each pinned by the
 * same batch loop (frdma_umem_part_pin()) into runs of its own.  The
 * pinning task and, at the same time, helpers on frdma_umem_wq (one fewer
 * than the CPUs used), which adopt the mm with kthread_use_mm(), claim the
 * parts one at a time (frdma_umem_parts_pin()).  A helper never faults
 * (FOLL_NOFAULT) and stops at the first page it cannot pin without a
 * fault, or when the pinning task has a fatal signal; every part stops
 * once one has failed.  The pinning task waits for every helper, continues
 * their unfinished parts in address order itself
 * (frdma_umem_parts_continue()), then joins the parts' runs in address
 * order (frdma_umem_parts_join()), or on failure drops every part's pins
 * (frdma_umem_parts_unwind()).  Release splits the runs into parts of
 * about equal page counts (a run is never cut between two parts) and
 * releases them the same way.  A long-term pin by a task whose cpuset
 * restricts its memory nodes is not split.
 *
 * Folio path: when the whole range lies in one VM_SHARED VMA that maps a
 * shmem (memfd, /dev/shm, shared anonymous) or hugetlbfs file linearly,
 * with the protection the pin needs, inside the file and without
 * userfaultfd, the file's folios are pinned with memfd_pin_folios(), one
 * pin per folio however many of its pages the range uses, and folded into
 * the same runs the generic path would produce.  memfd_pin_folios() pins
 * as FOLL_LONGTERM does (it migrates folios out of ZONE_MOVABLE and CMA)
 * whatever the flags; the pinnability check is made for a long-term pin
 * only, as on the generic path.  A hugetlbfs file (MFD_HUGETLB memfds
 * included) takes the folio path only when every folio of the range is in
 * the file, checked and pinned under the inode lock: memfd_pin_folios()
 * would allocate the missing ones without a reservation; otherwise it
 * takes the generic path, whose faults reserve huge pages properly.  A
 * writable pin holds the file's mapping writable until release, so
 * F_SEAL_WRITE fails while it exists.  At release the folios are found
 * again from the runs (a folio never straddles two runs: its pages are
 * consecutive in both file order and PFN) and released with
 * unpin_folios(), FRDMA_UMEM_UNPIN_BATCH at a time, with a cond_resched()
 * after each full batch and after each run (none after the last call, for
 * the folios left).
 *
 * Both paths charge the pages to mm->pinned_vm once, before pinning
 * anything, so a pin over RLIMIT_MEMLOCK fails with -ENOMEM having pinned
 * nothing, and every failure after that, in any part, unpins through the
 * runs built so far (of every part) and uncharges.  FOLL_LONGTERM and the
 * pinnability check are the same in every part.  No helper outlives the
 * call that queued it.
 */
#include <linux/capability.h>
#include <linux/cpumask.h>
#include <linux/cpuset.h>
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/hugetlb.h>
#include <linux/kthread.h>
#include <linux/math64.h>
#include <linux/memcontrol.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/userfaultfd_k.h>
#include <linux/workqueue.h>

#include <frdma/compat.h>
#include <frdma/umem.h>
#include "runs.h"

#define FRDMA_UMEM_FLAGS	(FRDMA_UMEM_WRITE | FRDMA_UMEM_LONGTERM | \
				 FRDMA_UMEM_NO_FOLIO | FRDMA_UMEM_FOLIO_ONLY)
/* Internal flag: the umem was pinned by the folio path. */
#define FRDMA_UMEM_FOLIO_PATH	BIT(31)

/* Page and folio pointers per batch: one page of them. */
#define FRDMA_UMEM_BATCH	((unsigned int)(PAGE_SIZE / sizeof(void *)))
/* Up to this many pages the batch is on the stack: no page to allocate. */
#define FRDMA_UMEM_SMALL	8

/* Folio pointers handed to unpin_folios() at a time on release. */
#define FRDMA_UMEM_UNPIN_BATCH	16

/*
 * Pages of a run handed to one unpin_user_page_range_dirty_lock() call on
 * release, with a cond_resched() after each: a run of small folios can be
 * gigabytes long.
 */
#define FRDMA_UMEM_UNPIN_PAGES	1024U

/*
 * The generic path splits a pin or release on several CPUs (at most
 * FRDMA_UMEM_MAX_CPUS) into parts of at least FRDMA_UMEM_PART_MIN pages
 * (16 MiB with 4 KiB pages), up to FRDMA_UMEM_PARTS_PER_CPU per CPU: the
 * CPUs claim parts one at a time, so that one the hypervisor or other
 * tasks leave less time to ends up with fewer of them.
 */
#define FRDMA_UMEM_PART_MIN		(SZ_16M >> PAGE_SHIFT)
#define FRDMA_UMEM_PARTS_PER_CPU	4
#define FRDMA_UMEM_MAX_CPUS		16

/* The helpers that pin and release parts beside the calling task. */
static struct workqueue_struct *frdma_umem_wq;

static unsigned int frdma_umem_max_cpus = FRDMA_UMEM_MAX_CPUS;

static int frdma_umem_max_cpus_set(const char *val,
				   const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, FRDMA_UMEM_MAX_CPUS);
}

static const struct kernel_param_ops frdma_umem_max_cpus_ops = {
	.set = frdma_umem_max_cpus_set,
	.get = param_get_uint,
};
module_param_cb(max_cpus, &frdma_umem_max_cpus_ops, &frdma_umem_max_cpus,
		0644);
MODULE_PARM_DESC(max_cpus,
		 "CPUs a large pin or release may use at once (1: only the caller's; default and at most 16)");

/*
 * Check every umem's invariants after it is pinned and before it is
 * released (frdma_umem_check()); on by default on CONFIG_DEBUG_VM kernels
 * (the debug kernel's test lane), a WARNING when one is broken.
 */
static bool frdma_umem_check_on = IS_ENABLED(CONFIG_DEBUG_VM);
module_param_named(check, frdma_umem_check_on, bool, 0644);
MODULE_PARM_DESC(check,
		 "check every umem's invariants after pin and before release (default: on with CONFIG_DEBUG_VM)");

/*
 * Fault injection (CONFIG_FAULT_INJECTION_DEBUG_FS, tests only): when it
 * fires, a batch of the generic path fails with -ENOMEM before it is
 * pinned, in whichever part, pinning task or helper, reaches it.
 * /sys/kernel/debug/frdma_umem/fail_pin/ (Documentation/fault-injection/).
 */
static DECLARE_FAULT_ATTR(frdma_umem_fail_pin);
static struct dentry *frdma_umem_debugfs;

/**
 * struct frdma_umem - a pinned range
 * @runs: the runs, in VA order
 * @mm: the mm the pages are charged to (mmgrab()ed)
 * @start: user address of the first byte
 * @length: bytes in the range
 * @nr_folio_pins: folios pinned by the folio path
 * @file: folio path, writable pin: the file whose mapping the umem holds
 *	  writable (mapping_map_writable()) until release, so that
 *	  F_SEAL_WRITE cannot be added under it; a reference.  NULL otherwise.
 * @first_off: offset of @start in its page
 * @flags: FRDMA_UMEM_* flags, plus FRDMA_UMEM_FOLIO_PATH
 * @nr_parts: parts the generic path split the pin into
 */
struct frdma_umem {
	struct frdma_runs runs;
	struct mm_struct *mm;
	unsigned long start;
	u64 length;
	u64 nr_folio_pins;
	struct file *file;
	u32 first_off;
	u32 flags;
	u32 nr_parts;
};

/**
 * struct frdma_umem_part - one part of a generic pin
 * @runs: the runs of the pages pinned so far, pgoff from the part's start
 * @addr: user address of the next page to pin
 * @nr_left: pages left to pin from @addr; not 0 once the part is over
 *	     without an error means it is unfinished (not claimed yet, or a
 *	     helper stopped early): the pinning task continues it
 * @err: 0, or the errno the whole pin fails with
 */
struct frdma_umem_part {
	struct frdma_runs runs;
	unsigned long addr;
	u64 nr_left;
	int err;
};

/**
 * struct frdma_umem_unpin_part - one part of a generic release
 * @run: its first run
 * @nr: its runs
 */
struct frdma_umem_unpin_part {
	const struct frdma_umem_run *run;
	u32 nr;
};

/**
 * struct frdma_umem_parts - a generic pin or release split into parts
 * @mm: pin: the mm being pinned
 * @task: pin: the pinning task (frdma_umem_pin()'s caller)
 * @memcg: pin: the memory cgroup the task's allocations are charged to
 *	   (a reference, or NULL): helpers charge their run arrays to it
 * @pin_parts: pin: the parts, an array of @nr
 * @unpin_parts: release: the parts, an array of @nr
 * @nr: number of parts
 * @next: the next part to claim; every part is claimed once
 * @gup_flags: pin: FOLL_WRITE, FOLL_LONGTERM
 * @dirty: release: mark the pages dirty first
 * @stop: pin: set once a part has failed (its @err set): no part is
 *	  claimed any more, and helpers stop at their next batch
 */
struct frdma_umem_parts {
	struct mm_struct *mm;
	struct task_struct *task;
	struct mem_cgroup *memcg;
	struct frdma_umem_part *pin_parts;
	struct frdma_umem_unpin_part *unpin_parts;
	unsigned int nr;
	atomic_t next;
	unsigned int gup_flags;
	bool dirty;
	bool stop;
};

/**
 * struct frdma_umem_helper - a work item claiming parts beside the task
 * @work: queued on frdma_umem_wq
 * @parts: the parts
 */
struct frdma_umem_helper {
	struct work_struct work;
	struct frdma_umem_parts *parts;
};

/*
 * folio_is_longterm_pinnable() is inline, but on kernels with CONFIG_CMA it
 * reads the pageblock migratetype through get_pfnblock_flags_mask(), which
 * is not exported to modules.  There the best check available to a module
 * is the rest of it: not ZONE_MOVABLE, not device-coherent memory.  GUP
 * itself migrates CMA pages away for FOLL_LONGTERM before returning them.
 */
static bool frdma_folio_longterm_ok(struct folio *folio)
{
	if (!IS_ENABLED(CONFIG_CMA))
		return folio_is_longterm_pinnable(folio);
	if (is_zero_folio(folio))
		return true;
	return !folio_is_device_coherent(folio) && !folio_is_zone_movable(folio);
}

/*
 * Every folio under the pages folded from pgidx @from on is long-term
 * pinnable.  Those pages are the tail of the run array: part of run @r
 * (the last run before the batch, which the batch may have extended) and
 * all the runs after it.  A run is physically contiguous, so its folios are
 * found by PFN, one page_folio() per folio: a batch of pages from one THP
 * costs one check, not one per page.
 */
static bool frdma_umem_runs_pinnable(const struct frdma_runs *runs, u32 r,
				     u64 from)
{
	const struct frdma_umem_run *run;
	struct folio *folio;
	u64 pfn, end;

	for (; r < runs->nr; r++) {
		run = &runs->run[r];
		pfn = run->pfn;
		end = pfn + run->npages;
		if (run->pgoff < from)
			pfn += from - run->pgoff;
		while (pfn < end) {
			folio = page_folio(pfn_to_page(pfn));
			if (!frdma_folio_longterm_ok(folio))
				return false;
			pfn = folio_pfn(folio) + folio_nr_pages(folio);
		}
	}
	return true;
}

/* Whether the page at @pfn is pinned; GUP does not count zero page pins. */
static bool frdma_umem_pfn_pinned(u64 pfn)
{
	struct folio *folio = page_folio(pfn_to_page(pfn));

	return is_zero_folio(folio) || folio_maybe_dma_pinned(folio);
}

/*
 * The invariants of include/frdma/umem.h, when the check is on: the runs
 * (frdma_runs_check()) describe exactly the pages the range touches, which
 * are the pages charged to pinned_vm; the first and last page of every run
 * are pinned (or are the zero page); only the folio path counts folio pins,
 * at most one per page.
 * O(runs).  A broken invariant is a WARNING, which fails the test VM run.
 */
static void frdma_umem_check(const struct frdma_umem *umem, const char *when)
{
	const struct frdma_umem_run *run;
	const char *broken;
	u32 npages, first_off, i;

	if (!READ_ONCE(frdma_umem_check_on))
		return;
	if (frdma_runs_span(umem->start, umem->length, &npages, &first_off) ||
	    first_off != umem->first_off) {
		broken = "the range is not the one pinned";
		goto out;
	}
	broken = frdma_runs_check(&umem->runs, npages);
	if (broken)
		goto out;
	for (i = 0; i < umem->runs.nr; i++) {
		run = &umem->runs.run[i];
		if (!frdma_umem_pfn_pinned(run->pfn) ||
		    !frdma_umem_pfn_pinned(run->pfn + run->npages - 1)) {
			broken = "a page of a run is not pinned";
			goto out;
		}
	}
	if (umem->flags & FRDMA_UMEM_FOLIO_PATH ?
	    umem->nr_folio_pins > npages || (npages && !umem->nr_folio_pins) :
	    umem->nr_folio_pins != 0)
		broken = "folio pins do not match the path";
out:
	WARN(broken, "frdma_umem: %s: %s\n", when, broken);
}

static int frdma_umem_charge(struct mm_struct *mm, u64 npages)
{
	u64 pinned, limit;

	if (!npages)
		return 0;
	pinned = atomic64_add_return(npages, &mm->pinned_vm);
	if (capable(CAP_IPC_LOCK))
		return 0;
	limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	if (pinned > limit) {
		atomic64_sub(npages, &mm->pinned_vm);
		return -ENOMEM;
	}
	return 0;
}

static void frdma_umem_uncharge(struct mm_struct *mm, u64 npages)
{
	atomic64_sub(npages, &mm->pinned_vm);
}

static long frdma_umem_gup(struct mm_struct *mm, unsigned long addr,
			   unsigned int nr, unsigned int gup_flags,
			   struct page **pages)
{
	int locked = 1;
	long got;

	if (mm == current->mm)
		return pin_user_pages_fast(addr, nr, gup_flags, pages);

	if (mmap_read_lock_killable(mm))
		return -EINTR;
	got = frdma_pin_user_pages_remote(mm, addr, nr, gup_flags, pages,
					  &locked);
	if (locked)
		mmap_read_unlock(mm);
	return got;
}

/*
 * How a generic pin or release of @npages pages is split: into the number
 * of parts returned, claimed by *@nr_helpers helpers and the calling task.
 * One part and no helper for a range below 2 * FRDMA_UMEM_PART_MIN pages
 * or with one CPU to use.
 */
static unsigned int frdma_umem_parts_count(u64 npages, unsigned int *nr_helpers)
{
	unsigned int cpus = min3(num_online_cpus(),
				 READ_ONCE(frdma_umem_max_cpus),
				 FRDMA_UMEM_MAX_CPUS);
	unsigned int nr = 1;

	if (cpus > 1)
		nr = clamp_t(u64, div64_u64(npages, FRDMA_UMEM_PART_MIN), 1,
			     cpus * FRDMA_UMEM_PARTS_PER_CPU);
	*nr_helpers = min(cpus, nr) - 1;
	return nr;
}

/*
 * Whether the calling task's cpuset keeps it off some memory node.  A
 * long-term pin migrates pages out of ZONE_MOVABLE and CMA, and GUP
 * allocates the new pages under the cpuset of the task it runs in: a
 * helper, a kworker of the root cpuset, would place them on any node.  Such
 * a task pins alone.
 */
static bool frdma_umem_task_mems_restricted(void)
{
	return !nodes_subset(node_states[N_MEMORY], cpuset_current_mems_allowed);
}

/*
 * Queue @nr work items running @fn on the parts of @parts, beside the
 * calling task.  Returns the helpers to hand to frdma_umem_helpers_wait(),
 * or NULL (no memory, or @nr is 0): the task then claims every part.
 */
static struct frdma_umem_helper *
frdma_umem_helpers_start(struct frdma_umem_parts *parts, unsigned int nr,
			 work_func_t fn)
{
	struct frdma_umem_helper *helper;
	unsigned int i;

	helper = nr ? kcalloc(nr, sizeof(*helper), GFP_KERNEL) : NULL;
	for (i = 0; helper && i < nr; i++) {
		helper[i].parts = parts;
		INIT_WORK(&helper[i].work, fn);
		queue_work(frdma_umem_wq, &helper[i].work);
	}
	return helper;
}

/*
 * No helper outlives the call: wait for those that started; those that
 * did not (every CPU busy) claimed nothing, and never will.
 */
static void frdma_umem_helpers_wait(struct frdma_umem_helper *helper,
				    unsigned int nr)
{
	unsigned int i;

	if (!helper)
		return;
	for (i = 0; i < nr; i++)
		cancel_work_sync(&helper[i].work);
	kfree(helper);
}

/*
 * Release the pins of @nr runs of the generic path, at most
 * FRDMA_UMEM_UNPIN_PAGES pages per call (every page holds its own pin, so
 * a run may be cut anywhere, also inside a folio).
 */
static void frdma_umem_runs_unpin(const struct frdma_umem_run *run, u32 nr,
				  bool dirty)
{
	u32 i, done, n;

	for (i = 0; i < nr; i++) {
		for (done = 0; done < run[i].npages; done += n) {
			n = min(run[i].npages - done, FRDMA_UMEM_UNPIN_PAGES);
			unpin_user_page_range_dirty_lock(pfn_to_page(run[i].pfn +
								     done),
							 n, dirty);
			cond_resched();
		}
	}
}

/* Release parts, one claimed at a time, until every part is claimed. */
static void frdma_umem_parts_unpin_claim(struct frdma_umem_parts *parts)
{
	unsigned int i;

	while ((i = atomic_fetch_inc(&parts->next)) < parts->nr)
		frdma_umem_runs_unpin(parts->unpin_parts[i].run,
				      parts->unpin_parts[i].nr, parts->dirty);
}

static void frdma_umem_helper_unpin(struct work_struct *work)
{
	struct frdma_umem_helper *helper =
		container_of(work, struct frdma_umem_helper, work);

	frdma_umem_parts_unpin_claim(helper->parts);
}

/*
 * Release the generic path's pins: in parts of about equal page counts
 * (frdma_umem_parts_count()), claimed by this task and helpers, all finished
 * before this returns.  Without memory for the parts, all by this task.
 */
static void frdma_umem_generic_unpin(const struct frdma_runs *runs, bool dirty)
{
	struct frdma_umem_parts parts = { .dirty = dirty };
	struct frdma_umem_helper *helper;
	unsigned int nr_helpers, i;
	u32 r = 0, first;
	u64 goal;

	parts.nr = frdma_umem_parts_count(runs->npages, &nr_helpers);
	parts.unpin_parts = parts.nr > 1 ?
			    kcalloc(parts.nr, sizeof(*parts.unpin_parts),
				    GFP_KERNEL) : NULL;
	if (!parts.unpin_parts) {
		frdma_umem_runs_unpin(runs->run, runs->nr, dirty);
		return;
	}
	for (i = 0; i < parts.nr; i++) {
		/* the runs that start in the part's share of the pages */
		goal = i + 1 < parts.nr ? div_u64(runs->npages * (i + 1), parts.nr) :
					runs->npages;
		first = r;
		while (r < runs->nr && runs->run[r].pgoff < goal)
			r++;
		parts.unpin_parts[i].run = runs->run + first;
		parts.unpin_parts[i].nr = r - first;
	}
	helper = frdma_umem_helpers_start(&parts, nr_helpers,
					  frdma_umem_helper_unpin);
	frdma_umem_parts_unpin_claim(&parts);
	frdma_umem_helpers_wait(helper, nr_helpers);
	kfree(parts.unpin_parts);
}

/*
 * The generic path over one part of the range: pin and fold one
 * page-pointer batch at a time, from @part->addr for @part->nr_left pages,
 * into @part->runs, through @batch.  Both advance as batches are folded,
 * so a part that stopped early can be continued by calling this again.
 *
 * In the pinning task (@nofault false) GUP may fault pages in, and a fatal
 * signal ends the loop with -EINTR.  In a helper (@nofault true) GUP gets
 * FOLL_NOFAULT: a helper never waits on a page fault, which could wait on
 * user space (userfaultfd) with nobody to kill it.  Where GUP pins
 * nothing, or when the pinning task has a fatal signal, a helper stops
 * and returns 0 with pages left, having changed nothing since its last
 * folded batch: the pinning task continues the part itself.  Once a part
 * has failed, every part stops so at its next batch.
 *
 * Return: 0 (the part is finished when no page is left), or an errno.
 */
static int frdma_umem_part_pin(struct frdma_umem_part *part,
			       const struct frdma_umem_parts *parts,
			       struct page **batch, bool nofault)
{
	unsigned int gup_flags = parts->gup_flags;
	struct frdma_runs *runs = &part->runs;
	u64 before, folded;
	unsigned int want;
	u32 last_run;
	long got;
	int err;

	if (nofault)
		gup_flags |= FOLL_NOFAULT;
	while (part->nr_left) {
		if (fatal_signal_pending(parts->task))
			return nofault ? 0 : -EINTR;
		if (READ_ONCE(parts->stop))
			return 0;
		if (should_fail(&frdma_umem_fail_pin, 1))
			return -ENOMEM;
		want = min_t(u64, part->nr_left, FRDMA_UMEM_BATCH);
		got = frdma_umem_gup(parts->mm, part->addr, want, gup_flags,
				     batch);
		if (got <= 0) {
			if (nofault)
				return 0;
			/* killed while GUP waited for the mmap lock */
			return got == -EAGAIN ? -EINTR : got ? got : -EFAULT;
		}
		before = runs->npages;
		last_run = runs->nr ? runs->nr - 1 : 0;
		err = frdma_runs_add_pages(runs, batch, got);
		if (err) {
			folded = runs->npages - before;
			unpin_user_pages(batch + folded, got - folded);
			return err;
		}
		/* Folded: on failure the caller unpins them with the rest. */
		if ((gup_flags & FOLL_LONGTERM) &&
		    !frdma_umem_runs_pinnable(runs, last_run, before))
			return -EBUSY;
		part->addr += (unsigned long)got << PAGE_SHIFT;
		part->nr_left -= got;
		cond_resched();
	}
	return 0;
}

/* Pin parts, one claimed at a time, until none is left or one failed. */
static void frdma_umem_parts_pin_claim(struct frdma_umem_parts *parts,
				       struct page **batch, bool nofault)
{
	struct frdma_umem_part *part;
	unsigned int i;

	while (!READ_ONCE(parts->stop) &&
	       (i = atomic_fetch_inc(&parts->next)) < parts->nr) {
		part = &parts->pin_parts[i];
		part->err = frdma_umem_part_pin(part, parts, batch, nofault);
		if (part->err)
			WRITE_ONCE(parts->stop, true);
	}
}

/* A helper: claims parts of the range and pins them in the task's mm. */
static void frdma_umem_helper_pin(struct work_struct *work)
{
	struct frdma_umem_parts *parts =
		container_of(work, struct frdma_umem_helper, work)->parts;
	struct mem_cgroup *old_memcg;
	struct page **batch;

	batch = (struct page **)__get_free_page(GFP_KERNEL);
	if (!batch)
		return;		/* the task pins what this would have */
	/* pin_user_pages_fast() works on current->mm */
	kthread_use_mm(parts->mm);
	/* the run arrays are the task's memory, not the kworker's */
	old_memcg = set_active_memcg(parts->memcg);
	frdma_umem_parts_pin_claim(parts, batch, true);
	set_active_memcg(old_memcg);
	kthread_unuse_mm(parts->mm);
	free_page((unsigned long)batch);
}

/* The runs of the parts once joined: runs that touch across parts merge. */
static u32 frdma_umem_parts_joined_runs(const struct frdma_umem_part *parts,
					unsigned int nr)
{
	const struct frdma_umem_run *tail = NULL, *head;
	unsigned int i;
	u32 total = 0;

	for (i = 0; i < nr; i++) {
		if (!parts[i].runs.nr)
			continue;
		head = &parts[i].runs.run[0];
		total += parts[i].runs.nr -
			 (tail && tail->pfn + tail->npages == head->pfn);
		tail = &parts[i].runs.run[parts[i].runs.nr - 1];
	}
	return total;
}

/*
 * Split: give the pages [@addr, @addr + @npages pages) to @parts's parts in
 * address order, about equal shares that end on PMD boundaries of the
 * address space (so as not to split a THP between parts), at least one
 * page each while pages are left; the last part ends with the range.
 * Shares are counted in pages from @addr, so no address past the range is
 * ever computed.
 */
static void frdma_umem_parts_split(struct frdma_umem_parts *parts,
				   unsigned long addr, u64 npages)
{
	unsigned long start = addr, next;
	struct frdma_umem_part *part;
	u64 done = 0, n;
	unsigned int i;

	for (i = 0; i < parts->nr; i++) {
		part = &parts->pin_parts[i];
		n = npages - done;
		if (i + 1 < parts->nr) {
			next = start + (div_u64(npages * (i + 1), parts->nr) <<
					PAGE_SHIFT);
			next = ALIGN_DOWN(next, PMD_SIZE);
			n = min_t(u64, n, next > addr ?
				  (next - addr) >> PAGE_SHIFT : 1);
		}
		frdma_runs_init(&part->runs);
		part->runs.expect = n;
		part->addr = addr;
		part->nr_left = n;
		part->err = 0;
		addr += n << PAGE_SHIFT;
		done += n;
	}
}

/*
 * Run parts: this task and, at the same time, @nr_helpers helpers on
 * frdma_umem_wq claim the parts one at a time and pin them; returns once
 * every helper has finished.
 */
static void frdma_umem_parts_pin(struct frdma_umem_parts *parts,
				 unsigned int nr_helpers, struct page **batch)
{
	struct frdma_umem_helper *helper;

	if (nr_helpers)
		parts->memcg = get_mem_cgroup_from_mm(NULL);
	helper = frdma_umem_helpers_start(parts, nr_helpers,
					  frdma_umem_helper_pin);
	frdma_umem_parts_pin_claim(parts, batch, false);
	frdma_umem_helpers_wait(helper, nr_helpers);
	mem_cgroup_put(parts->memcg);
}

/*
 * Continue: the first failure in address order, if a part failed;
 * otherwise this task finishes, in address order, every part a helper
 * left with pages to pin.  Return: 0 or the errno the pin fails with.
 */
static int frdma_umem_parts_continue(struct frdma_umem_parts *parts,
				     struct page **batch)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < parts->nr && !err; i++)
		err = parts->pin_parts[i].err;
	for (i = 0; i < parts->nr && !err; i++)
		if (parts->pin_parts[i].nr_left)
			err = frdma_umem_part_pin(&parts->pin_parts[i], parts, batch,
						  false);
	return err;
}

/*
 * Join: the runs of parts 1 .. @nr - 1 are appended, in address order, to
 * part 0's, whose array is first sized to the joined count.  A part's pins
 * belong to its own runs until joined; *@joined counts the parts whose
 * runs are part 0's (at least part 0 itself), also on failure.
 */
static int frdma_umem_parts_join(struct frdma_umem_part *parts,
				 unsigned int nr, unsigned int *joined)
{
	int err = 0;

	*joined = 1;
	if (nr > 1)
		err = frdma_runs_resize(&parts[0].runs,
					frdma_umem_parts_joined_runs(parts, nr));
	while (!err && *joined < nr) {
		err = frdma_runs_join(&parts[0].runs, &parts[*joined].runs);
		if (!err)
			(*joined)++;
	}
	return err;
}

/*
 * Unwind: drop the pins of every part, through part 0's runs (which hold
 * the first @joined parts') and the runs of the parts not joined, and free
 * part 0's runs.
 */
static void frdma_umem_parts_unwind(struct frdma_umem_part *parts,
				    unsigned int nr, unsigned int joined)
{
	unsigned int i;

	frdma_umem_runs_unpin(parts[0].runs.run, parts[0].runs.nr, false);
	for (i = joined; i < nr; i++)
		frdma_umem_runs_unpin(parts[i].runs.run, parts[i].runs.nr, false);
	frdma_runs_destroy(&parts[0].runs);
}

/*
 * The generic path: count the parts (frdma_umem_parts_count()), split the
 * range into them, pin them in this task and in helpers, continue here
 * what the helpers left, join the parts' runs into the umem's; on any
 * failure unwind, so that nothing stays pinned.
 */
static int frdma_umem_generic_pin(struct frdma_umem *umem, unsigned long addr,
				  u64 npages, unsigned int gup_flags)
{
	struct frdma_umem_parts parts = {
		.mm = umem->mm,
		.task = current,
		.gup_flags = gup_flags,
	};
	unsigned int nr_helpers, i, joined = 1;
	struct frdma_umem_part one;
	struct page *small[FRDMA_UMEM_SMALL];
	struct page **batch = small;
	int err;

	/* no part asks for more pages at once than the range has */
	if (npages > FRDMA_UMEM_SMALL)
		batch = (struct page **)__get_free_page(GFP_KERNEL);
	if (!batch)
		return -ENOMEM;
	parts.nr = frdma_umem_parts_count(npages, &nr_helpers);
	/* this task pins alone, see frdma_umem_task_mems_restricted() */
	if (parts.nr > 1 && (gup_flags & FOLL_LONGTERM) &&
	    frdma_umem_task_mems_restricted())
		parts.pin_parts = NULL;
	else if (parts.nr > 1)
		parts.pin_parts = kcalloc(parts.nr, sizeof(*parts.pin_parts),
					  GFP_KERNEL);
	if (!parts.pin_parts) {
		parts.pin_parts = &one;
		parts.nr = 1;
		nr_helpers = 0;
	}

	frdma_umem_parts_split(&parts, addr, npages);
	frdma_umem_parts_pin(&parts, nr_helpers, batch);
	err = frdma_umem_parts_continue(&parts, batch);
	if (batch != small)
		free_page((unsigned long)batch);
	if (!err)
		err = frdma_umem_parts_join(parts.pin_parts, parts.nr, &joined);
	if (err)
		frdma_umem_parts_unwind(parts.pin_parts, parts.nr, joined);

	umem->runs = parts.pin_parts[0].runs;
	umem->nr_parts = parts.nr;
	for (i = 1; i < parts.nr; i++)
		frdma_runs_destroy(&parts.pin_parts[i].runs);
	if (parts.pin_parts != &one)
		kfree(parts.pin_parts);
	return err;
}

/*
 * The file behind [@addr, @addr + @len) when the folio path applies to it,
 * with a reference, and the file position of @addr in @file_pos; NULL when
 * it does not, or ERR_PTR(-EINTR).
 *
 * For a writable pin the file's mapping is made writable here, under the
 * mmap lock that keeps the VM_WRITE mapping (and so the mapping's
 * writability) alive: F_SEAL_WRITE fails with -EBUSY from then on, until
 * frdma_umem_put_file() at release.  Otherwise a munmap() and an
 * F_SEAL_WRITE between this check and memfd_pin_folios() would let the
 * umem write into a write-sealed file.
 */
static struct file *frdma_umem_memfd(struct mm_struct *mm, unsigned long addr,
				     u64 len, unsigned int flags,
				     loff_t *file_pos)
{
	vm_flags_t need = VM_SHARED | VM_READ;
	struct vm_area_struct *vma;
	struct file *file = NULL;
	loff_t off;

	if (flags & FRDMA_UMEM_WRITE)
		need |= VM_WRITE;

	if (mmap_read_lock_killable(mm))
		return ERR_PTR(-EINTR);
	vma = vma_lookup(mm, addr);
	if (!vma || !vma->vm_file || len > vma->vm_end - addr)
		goto out;
	/*
	 * memfd_pin_folios() fills holes in the file itself, so a VMA whose
	 * faults userfaultfd must see takes the generic path.
	 */
	if ((vma->vm_flags & need) != need ||
	    (vma->vm_flags & (VM_IO | VM_PFNMAP)) || userfaultfd_armed(vma))
		goto out;
	if (!frdma_shmem_mapping(vma->vm_file->f_mapping) &&
	    !is_vm_hugetlb_page(vma))
		goto out;
	off = ((loff_t)vma->vm_pgoff << PAGE_SHIFT) + (addr - vma->vm_start);
	if (off + len > i_size_read(file_inode(vma->vm_file)))
		goto out;
	/* cannot fail while a VM_SHARED | VM_WRITE mapping exists */
	if ((flags & FRDMA_UMEM_WRITE) &&
	    mapping_map_writable(vma->vm_file->f_mapping))
		goto out;
	*file_pos = off;
	file = get_file(vma->vm_file);
out:
	mmap_read_unlock(mm);
	return file;
}

/* Undo frdma_umem_memfd(): drop the mapping's writability and the file. */
static void frdma_umem_put_file(struct file *file, unsigned int flags)
{
	if (flags & FRDMA_UMEM_WRITE)
		mapping_unmap_writable(file->f_mapping);
	fput(file);
}

/*
 * Whether every page of [@file_pos, @file_pos + @len) of @file is in its
 * page cache.
 * The caller holds the inode lock, under which hugetlbfs punches holes and
 * truncates, so the answer holds until it unlocks.
 */
static bool frdma_umem_file_populated(struct file *file, loff_t file_pos,
				      u64 len)
{
	pgoff_t idx = file_pos >> PAGE_SHIFT;
	pgoff_t last = (file_pos + len - 1) >> PAGE_SHIFT;
	struct folio_batch fbatch;
	unsigned int found;

	folio_batch_init(&fbatch);
	while (idx <= last) {
		found = filemap_get_folios_contig(file->f_mapping, &idx, last,
						  &fbatch);
		folio_batch_release(&fbatch);
		if (!found)
			return false;	/* a hole at idx */
		cond_resched();
	}
	return true;
}

/*
 * Whether the folio path may pin [@file_pos, @file_pos + @len) of @file,
 * and so frdma_umem_folio_unlock() must be called after the pin.
 *
 * memfd_pin_folios() allocates the folios missing from the file itself,
 * and on hugetlbfs (in Linux 6.12) that allocation consumes a reservation
 * nobody made: HugePages_Rsvd underflows, other mappings' reservations are
 * taken, no hugetlb cgroup is charged, and CONFIG_DEBUG_VM BUGs.  So a
 * hugetlbfs file takes the folio path only when every folio of the range is
 * already there, checked and pinned under the inode lock so that no hole
 * can be punched in between; a range with a hole takes the generic path,
 * whose faults reserve and charge as any fault does, and gives the same
 * runs.  shmem allocates its missing folios as a fault would.
 */
static bool frdma_umem_folio_lock(struct file *file, loff_t file_pos, u64 len)
{
	if (!is_file_hugepages(file))
		return true;
	inode_lock(file_inode(file));
	if (frdma_umem_file_populated(file, file_pos, len))
		return true;
	inode_unlock(file_inode(file));
	return false;
}

static void frdma_umem_folio_unlock(struct file *file)
{
	if (is_file_hugepages(file))
		inode_unlock(file_inode(file));
}

/*
 * The folio path: pin the @npages pages of @file from @file_pos (page
 * aligned) and fold them, one folio-pointer batch at a time.
 * memfd_pin_folios() takes an inclusive last byte, and returns in
 * @folio_off where in the batch's first folio @file_pos lies.
 */
static int frdma_umem_folios_pin(struct frdma_umem *umem, struct file *file,
				 loff_t file_pos, u64 npages, bool longterm)
{
	loff_t last = file_pos + (loff_t)(npages << PAGE_SHIFT) - 1;
	struct frdma_runs *runs = &umem->runs;
	u64 left = npages;	/* pages not pinned yet */
	struct folio **batch;
	pgoff_t folio_off;
	long got, done;
	int err = 0, i;

	batch = (struct folio **)__get_free_page(GFP_KERNEL);
	if (!batch)
		return -ENOMEM;

	while (left) {
		err = frdma_runs_reserve(runs, FRDMA_UMEM_BATCH);
		if (err)
			break;
		got = memfd_pin_folios(file, file_pos, last, batch,
				       FRDMA_UMEM_BATCH, &folio_off);
		if (got <= 0) {
			err = got ? got : -EFAULT;
			break;
		}
		if (longterm) {
			for (i = 0; i < got; i++)
				if (!frdma_folio_longterm_ok(batch[i]))
					break;
			if (i < got) {
				unpin_folios(batch, got);
				err = -EBUSY;
				break;
			}
		}
		/* Cannot fail: room for a whole batch of runs is reserved. */
		done = frdma_runs_add_folios(runs, batch, got,
					     folio_off >> PAGE_SHIFT, left);
		if (WARN_ON_ONCE(done <= 0)) {
			unpin_folios(batch, got);
			err = -EFAULT;
			break;
		}
		umem->nr_folio_pins += got;
		file_pos += (loff_t)done << PAGE_SHIFT;
		left -= done;
		cond_resched();
	}

	free_page((unsigned long)batch);
	return err;
}

static void frdma_umem_folios_unpin(struct frdma_umem *umem, bool dirty)
{
	struct folio *batch[FRDMA_UMEM_UNPIN_BATCH];
	struct folio *folio, *prev = NULL;
	const struct frdma_umem_run *run;
	unsigned int n = 0;
	u64 pfn, end;
	u32 i;

	for (i = 0; i < umem->runs.nr; i++) {
		run = &umem->runs.run[i];
		end = run->pfn + run->npages;
		for (pfn = run->pfn; pfn < end;
		     pfn = folio_pfn(folio) + folio_nr_pages(folio)) {
			folio = page_folio(pfn_to_page(pfn));
			if (folio == prev)
				continue;
			prev = folio;
			if (dirty)
				set_page_dirty_lock(folio_page(folio, 0));
			batch[n++] = folio;
			if (n == ARRAY_SIZE(batch)) {
				unpin_folios(batch, n);
				n = 0;
				cond_resched();
			}
		}
		cond_resched();
	}
	if (n)
		unpin_folios(batch, n);
}

static void frdma_umem_unpin(struct frdma_umem *umem, bool dirty)
{
	if (umem->flags & FRDMA_UMEM_FOLIO_PATH)
		frdma_umem_folios_unpin(umem, dirty);
	else
		frdma_umem_generic_unpin(&umem->runs, dirty);
}

/**
 * frdma_umem_pin() - pin a range of user memory as runs
 * @mm: the mm the range belongs to.  For current->mm the pages are pinned
 *	with pin_user_pages_fast(); for any other mm the caller holds a
 *	reference that keeps it alive (mmget()) and the pages are pinned with
 *	pin_user_pages_remote() under its mmap lock; the parts of a split pin
 *	that helpers take are pinned with pin_user_pages_fast() in either case.
 * @start: user address of the first byte, any alignment
 * @length: bytes to pin; 0 gives an empty umem (no runs)
 * @flags: FRDMA_UMEM_WRITE to pin for writing (FOLL_WRITE);
 *	   FRDMA_UMEM_LONGTERM for a pin of unbounded duration (FOLL_LONGTERM:
 *	   pages are first migrated out of ZONE_MOVABLE and CMA, writable pins
 *	   of ordinary file mappings are refused, read-only pins of private
 *	   memory break COW so that later writes by the process are seen);
 *	   FRDMA_UMEM_NO_FOLIO to never use the memfd folio path;
 *	   FRDMA_UMEM_FOLIO_ONLY to fail unless the folio path applies.
 *
 * The pages the range touches are charged to @mm's pinned_vm; without
 * CAP_IPC_LOCK the charge must stay within the caller's RLIMIT_MEMLOCK.
 *
 * Context: process context; sleeps.
 * Return: the umem, or an ERR_PTR(): -EINVAL for bad flags or a range that
 * wraps or touches 2^32 pages or more (or, with FRDMA_UMEM_FOLIO_ONLY, a
 * range the folio path cannot pin), -ENOMEM over RLIMIT_MEMLOCK or out of
 * memory, -EFAULT for an unmapped page, a PROT_NONE page or a read-only
 * page pinned for writing, -EBUSY if a long-term pinned folio is not
 * long-term pinnable, -EINTR on a fatal signal, or whatever errno GUP
 * returned (for instance its refusal of a writable long-term pin of a file
 * mapping).
 * On failure nothing is left pinned or charged.
 */
struct frdma_umem *frdma_umem_pin(struct mm_struct *mm, unsigned long start,
				  u64 length, unsigned int flags)
{
	unsigned int gup_flags = 0;
	struct frdma_umem *umem;
	struct file *file = NULL;
	u32 npages, first_off;
	loff_t file_pos = 0;
	int err;

	if ((flags & ~FRDMA_UMEM_FLAGS) ||
	    ((flags & FRDMA_UMEM_NO_FOLIO) && (flags & FRDMA_UMEM_FOLIO_ONLY)))
		return ERR_PTR(-EINVAL);
	err = frdma_runs_span(start, length, &npages, &first_off);
	if (err)
		return ERR_PTR(err);

	umem = kzalloc(sizeof(*umem), GFP_KERNEL_ACCOUNT);
	if (!umem)
		return ERR_PTR(-ENOMEM);
	frdma_runs_init(&umem->runs);
	umem->runs.expect = npages;
	umem->mm = mm;
	mmgrab(mm);
	umem->start = start;
	umem->length = length;
	umem->first_off = first_off;
	umem->flags = flags;

	err = frdma_umem_charge(mm, npages);
	if (err)
		goto out_free;
	if (!npages)
		goto pinned;

	if (flags & FRDMA_UMEM_WRITE)
		gup_flags |= FOLL_WRITE;
	if (flags & FRDMA_UMEM_LONGTERM)
		gup_flags |= FOLL_LONGTERM;
	start &= PAGE_MASK;

	if (FRDMA_FOLIO_PATH && !(flags & FRDMA_UMEM_NO_FOLIO)) {
		file = frdma_umem_memfd(mm, start, (u64)npages << PAGE_SHIFT,
					flags, &file_pos);
		if (IS_ERR(file)) {
			err = PTR_ERR(file);
			goto out_uncharge;
		}
	}
	if (file && !frdma_umem_folio_lock(file, file_pos,
					   (u64)npages << PAGE_SHIFT)) {
		frdma_umem_put_file(file, flags);
		file = NULL;
	}
	if (file) {
		umem->flags |= FRDMA_UMEM_FOLIO_PATH;
		err = frdma_umem_folios_pin(umem, file, file_pos, npages,
					    flags & FRDMA_UMEM_LONGTERM);
		frdma_umem_folio_unlock(file);
		/* a writable pin keeps the mapping writable until release */
		if (flags & FRDMA_UMEM_WRITE)
			umem->file = file;
		else
			frdma_umem_put_file(file, flags);
	} else if (flags & FRDMA_UMEM_FOLIO_ONLY) {
		err = -EINVAL;
	} else {
		if ((gup_flags & (FOLL_WRITE | FOLL_LONGTERM)) == FOLL_LONGTERM)
			frdma_umem_unshare_cow(mm, start, npages);
		err = frdma_umem_generic_pin(umem, start, npages, gup_flags);
	}
	if (err)
		goto out_unpin;

pinned:
	frdma_runs_trim(&umem->runs);
	frdma_umem_check(umem, "after pin");
	return umem;

out_unpin:
	frdma_umem_unpin(umem, false);
	if (umem->file)
		frdma_umem_put_file(umem->file, umem->flags);
out_uncharge:
	frdma_umem_uncharge(mm, npages);
out_free:
	frdma_runs_destroy(&umem->runs);
	mmdrop(mm);
	kfree(umem);
	return ERR_PTR(err);
}
EXPORT_SYMBOL_GPL(frdma_umem_pin);

/**
 * frdma_umem_release() - unpin and free a umem
 * @umem: the umem
 * @dirty: mark the pages dirty before unpinning them, so that data written
 *	   into them (by DMA or through kmap) reaches the file or swap.  Ignored
 *	   for a umem pinned without FRDMA_UMEM_WRITE.
 *
 * May be called from any process context, not only the pinning process's,
 * and after that process has exited.
 *
 * Context: process context; sleeps.
 */
void frdma_umem_release(struct frdma_umem *umem, bool dirty)
{
	if (!umem)
		return;
	frdma_umem_check(umem, "before release");
	frdma_umem_unpin(umem, dirty && (umem->flags & FRDMA_UMEM_WRITE));
	if (umem->file)
		frdma_umem_put_file(umem->file, umem->flags);
	frdma_umem_uncharge(umem->mm, umem->runs.npages);
	mmdrop(umem->mm);
	frdma_runs_destroy(&umem->runs);
	kfree(umem);
}
EXPORT_SYMBOL_GPL(frdma_umem_release);

/**
 * frdma_umem_get_stats() - what a umem holds
 * @umem: the umem
 * @stats: filled in
 */
void frdma_umem_get_stats(const struct frdma_umem *umem,
			  struct frdma_umem_stats *stats)
{
	stats->nr_runs = umem->runs.nr;
	stats->max_run = umem->runs.max_run;
	stats->npages = umem->runs.npages;
	stats->nr_folio_pins = umem->nr_folio_pins;
	stats->meta_bytes = sizeof(*umem) + frdma_runs_bytes(&umem->runs);
	stats->nr_parts = umem->nr_parts;
}
EXPORT_SYMBOL_GPL(frdma_umem_get_stats);

/**
 * frdma_umem_length() - bytes in the pinned range
 * @umem: the umem
 *
 * Return: the length given to frdma_umem_pin().
 */
u64 frdma_umem_length(const struct frdma_umem *umem)
{
	return umem->length;
}
EXPORT_SYMBOL_GPL(frdma_umem_length);

/**
 * frdma_umem_nr_runs() - number of runs
 * @umem: the umem
 *
 * Return: the number of entries in frdma_umem_runs().
 */
u32 frdma_umem_nr_runs(const struct frdma_umem *umem)
{
	return umem->runs.nr;
}
EXPORT_SYMBOL_GPL(frdma_umem_nr_runs);

/**
 * frdma_umem_runs() - the run array
 * @umem: the umem
 *
 * Return: frdma_umem_nr_runs() runs in VA order, valid until release.
 */
const struct frdma_umem_run *frdma_umem_runs(const struct frdma_umem *umem)
{
	return umem->runs.run;
}
EXPORT_SYMBOL_GPL(frdma_umem_runs);

/**
 * frdma_umem_iter_init() - start a walk over part of a umem
 * @iter: the iterator
 * @umem: the umem
 * @offset: byte offset into the range where the walk starts
 * @length: bytes to walk
 *
 * Finds the run holding @offset by binary search, O(log runs); the walk
 * then proceeds with frdma_umem_iter_next() (or _peek() and _advance()),
 * one chunk per run.
 *
 * Return: 0, or -EINVAL when [@offset, @offset + @length) is not inside
 * the range.
 */
int frdma_umem_iter_init(struct frdma_umem_iter *iter,
			 const struct frdma_umem *umem, u64 offset, u64 length)
{
	u64 end;

	if (check_add_overflow(offset, length, &end) || end > umem->length)
		return -EINVAL;
	frdma_runs_iter_init(iter, &umem->runs, umem->first_off + offset,
			     length);
	return 0;
}
EXPORT_SYMBOL_GPL(frdma_umem_iter_init);

static void frdma_umem_chunk_copy(const struct frdma_umem_chunk *chunk,
				  void *buf, bool to_pages)
{
	size_t done = 0, n, in_page;
	u64 from_page;	/* bytes from the start of chunk->page */
	struct page *page;
	void *va;

	while (done < chunk->len) {
		from_page = (u64)chunk->page_off + done;
		page = nth_page(chunk->page, from_page >> PAGE_SHIFT);
		in_page = from_page & ~PAGE_MASK;
		n = min_t(size_t, chunk->len - done, PAGE_SIZE - in_page);
		va = kmap_local_page(page);
		if (to_pages) {
			memcpy(va + in_page, buf + done, n);
			flush_dcache_page(page);
		} else {
			memcpy(buf + done, va + in_page, n);
		}
		kunmap_local(va);
		done += n;
	}
}

/**
 * frdma_umem_copy_to() - copy from a kernel buffer into pinned memory
 * @umem: the umem, pinned with FRDMA_UMEM_WRITE
 * @offset: byte offset into the range
 * @src: the source
 * @len: bytes to copy
 *
 * Return: 0, -EPERM if the umem was not pinned for writing, -EINVAL if
 * the bytes are not all inside the range.
 */
int frdma_umem_copy_to(struct frdma_umem *umem, u64 offset, const void *src,
		       size_t len)
{
	struct frdma_umem_chunk chunk;
	struct frdma_umem_iter iter;
	int err;

	if (!(umem->flags & FRDMA_UMEM_WRITE))
		return -EPERM;
	err = frdma_umem_iter_init(&iter, umem, offset, len);
	if (err)
		return err;
	while (frdma_umem_iter_next(&iter, &chunk)) {
		frdma_umem_chunk_copy(&chunk, (void *)src, true);
		src += chunk.len;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(frdma_umem_copy_to);

/**
 * frdma_umem_copy_from() - copy from pinned memory into a kernel buffer
 * @umem: the umem
 * @offset: byte offset into the range
 * @dst: the destination
 * @len: bytes to copy
 *
 * Return: 0, or -EINVAL if the bytes are not all inside the range.
 */
int frdma_umem_copy_from(const struct frdma_umem *umem, u64 offset, void *dst,
			 size_t len)
{
	struct frdma_umem_chunk chunk;
	struct frdma_umem_iter iter;
	int err;

	err = frdma_umem_iter_init(&iter, umem, offset, len);
	if (err)
		return err;
	while (frdma_umem_iter_next(&iter, &chunk)) {
		frdma_umem_chunk_copy(&chunk, dst, false);
		dst += chunk.len;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(frdma_umem_copy_from);

static int __init frdma_umem_init(void)
{
	frdma_umem_wq = alloc_workqueue("frdma_umem", WQ_UNBOUND, 0);
	if (!frdma_umem_wq)
		return -ENOMEM;
	frdma_umem_debugfs = debugfs_create_dir("frdma_umem", NULL);
	fault_create_debugfs_attr("fail_pin", frdma_umem_debugfs,
				  &frdma_umem_fail_pin);
	return 0;
}

static void __exit frdma_umem_exit(void)
{
	debugfs_remove_recursive(frdma_umem_debugfs);
	destroy_workqueue(frdma_umem_wq);
}

module_init(frdma_umem_init);
module_exit(frdma_umem_exit);

MODULE_DESCRIPTION("frdma umem: pin user memory as runs of contiguous pages");
MODULE_LICENSE("GPL");
