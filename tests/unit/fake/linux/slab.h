/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fake allocator: malloc underneath, with failure injection.  A test sets
 * fake_alloc_budget to the number of allocations that may still succeed
 * (negative: unlimited) and reads fake_alloc_calls and fake_alloc_live.
 */
#ifndef _FAKE_LINUX_SLAB_H
#define _FAKE_LINUX_SLAB_H

#include <stdlib.h>
#include <linux/types.h>
#include <linux/errno.h>

#define GFP_KERNEL		0u
#define GFP_KERNEL_ACCOUNT	0u

extern long fake_alloc_budget;
extern long fake_alloc_calls;
extern long fake_alloc_live;

static inline bool fake_alloc_allowed(void)
{
	fake_alloc_calls++;
	if (fake_alloc_budget == 0)
		return false;
	if (fake_alloc_budget > 0)
		fake_alloc_budget--;
	return true;
}

static inline void *kvrealloc(const void *p, size_t size, gfp_t flags)
{
	void *n;

	(void)flags;
	if (!fake_alloc_allowed())
		return NULL;
	n = realloc((void *)p, size);
	if (n && !p)
		fake_alloc_live++;
	return n;
}

static inline void *kvmalloc_array(size_t n, size_t size, gfp_t flags)
{
	size_t bytes;
	void *p;

	(void)flags;
	if (__builtin_mul_overflow(n, size, &bytes) || !fake_alloc_allowed())
		return NULL;
	p = malloc(bytes);
	if (p)
		fake_alloc_live++;
	return p;
}

static inline void kvfree(const void *p)
{
	if (p)
		fake_alloc_live--;
	free((void *)p);
}

#endif
