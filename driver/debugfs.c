// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: object counters and the fault switch, in debugfs.
 *
 * /sys/kernel/debug/frdma/ holds, for all frdma devices together:
 *
 *   pd cq qp srq ah mr   (read-only) live objects of each kind
 *   mw
 *   mcast                (read-only) multicast memberships (a QP in a group)
 *   runs                 (read-only) runs of pinned pages held by live MRs
 *   pinned_pages         (read-only) pages pinned by live MRs
 *   injected             (read-only) failures the switch below has caused
 *   fail_nth             write N > 0: the Nth call of frdma_should_fail()
 *                        from now returns true, once; write 0: off.
 *                        Reads the calls left until it fires (0: off).
 *   fail_every           write N > 0: every Nth call of frdma_should_fail()
 *                        from now returns true, until 0 is written (off).
 *
 * Every number reads as a decimal line.  A stress run checks that the
 * counters are back to where they started once its processes are gone
 * (an object leaked, or counted on one path and not the other, shows as a
 * difference).  The fault switch works on the stock kernel, which has no
 * fault injection framework: frdma calls frdma_should_fail() right before
 * each allocation or pin that can fail, and takes that call's failure
 * path with -ENOMEM when it returns true, so every failure path can be
 * walked and checked for leaked pins and objects.  When both are set, a
 * call fails if either says so.
 *
 * The counters are updated with frdma_count() by whoever creates or
 * destroys the object: add on success only, subtract on destruction.
 */

#include <linux/atomic.h>
#include <linux/debugfs.h>

#include "frdma.h"

static const char * const frdma_counter_names[FRDMA_NR_COUNTERS] = {
	[FRDMA_CNT_PD] = "pd",
	[FRDMA_CNT_CQ] = "cq",
	[FRDMA_CNT_QP] = "qp",
	[FRDMA_CNT_SRQ] = "srq",
	[FRDMA_CNT_AH] = "ah",
	[FRDMA_CNT_MR] = "mr",
	[FRDMA_CNT_RUNS] = "runs",
	[FRDMA_CNT_PINNED_PAGES] = "pinned_pages",
	[FRDMA_CNT_MW] = "mw",
	[FRDMA_CNT_MCAST] = "mcast",
};

static atomic_long_t frdma_counters[FRDMA_NR_COUNTERS];

/* Calls left until the one that fails; 0: off. */
static atomic_t frdma_fail_nth;
/* Fail every this many calls; 0: off. */
static atomic_t frdma_fail_every;
/* Calls since fail_every was last written. */
static atomic_long_t frdma_fail_calls;
/* Failures injected so far. */
static atomic_long_t frdma_fail_injected;

static struct dentry *frdma_debugfs_dir;

/**
 * frdma_count() - add to one of the object counters
 * @c: the counter
 * @delta: how much: +1 for an object created, -1 destroyed, or a number
 *	   of runs or pages
 *
 * Context: any.
 */
void frdma_count(enum frdma_counter c, long delta)
{
	if (WARN_ON_ONCE(c >= FRDMA_NR_COUNTERS))
		return;
	atomic_long_add(delta, &frdma_counters[c]);
}

/**
 * frdma_should_fail() - should the caller fail its next allocation?
 *
 * Called right before an allocation or pin whose failure path is to be
 * testable; see the comment at the top of this file.
 *
 * Context: any.
 * Return: true when the fault switch says this call fails.
 */
bool frdma_should_fail(void)
{
	int every = atomic_read(&frdma_fail_every);
	bool fail = false;

	/* 0 exactly when this call took the count from 1 to 0. */
	if (atomic_dec_if_positive(&frdma_fail_nth) == 0)
		fail = true;
	if (every > 0 &&
	    atomic_long_inc_return(&frdma_fail_calls) % every == 0)
		fail = true;
	if (fail)
		atomic_long_inc(&frdma_fail_injected);
	return fail;
}

static int frdma_counter_get(void *data, u64 *val)
{
	*val = atomic_long_read(data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(frdma_counter_fops, frdma_counter_get, NULL,
			 "%lld\n");

static int frdma_fail_nth_get(void *data, u64 *val)
{
	*val = atomic_read(&frdma_fail_nth);
	return 0;
}

static int frdma_fail_nth_set(void *data, u64 val)
{
	if (val > INT_MAX)
		return -EINVAL;
	atomic_set(&frdma_fail_nth, val);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(frdma_fail_nth_fops, frdma_fail_nth_get,
			 frdma_fail_nth_set, "%llu\n");

static int frdma_fail_every_get(void *data, u64 *val)
{
	*val = atomic_read(&frdma_fail_every);
	return 0;
}

static int frdma_fail_every_set(void *data, u64 val)
{
	if (val > INT_MAX)
		return -EINVAL;
	atomic_set(&frdma_fail_every, 0);
	atomic_long_set(&frdma_fail_calls, 0);
	atomic_set(&frdma_fail_every, val);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(frdma_fail_every_fops, frdma_fail_every_get,
			 frdma_fail_every_set, "%llu\n");

/**
 * frdma_debugfs_init() - create /sys/kernel/debug/frdma/
 *
 * Failing to create it is not an error: frdma works without it.
 */
void frdma_debugfs_init(void)
{
	struct dentry *dir;
	int i;

	dir = debugfs_create_dir("frdma", NULL);
	frdma_debugfs_dir = dir;
	for (i = 0; i < FRDMA_NR_COUNTERS; i++)
		debugfs_create_file_unsafe(frdma_counter_names[i], 0444, dir,
					   &frdma_counters[i],
					   &frdma_counter_fops);
	debugfs_create_file_unsafe("injected", 0444, dir, &frdma_fail_injected,
				   &frdma_counter_fops);
	debugfs_create_file_unsafe("fail_nth", 0600, dir, NULL,
				   &frdma_fail_nth_fops);
	debugfs_create_file_unsafe("fail_every", 0600, dir, NULL,
				   &frdma_fail_every_fops);
}

/**
 * frdma_debugfs_exit() - remove /sys/kernel/debug/frdma/
 */
void frdma_debugfs_exit(void)
{
	debugfs_remove(frdma_debugfs_dir);
	frdma_debugfs_dir = NULL;
}
