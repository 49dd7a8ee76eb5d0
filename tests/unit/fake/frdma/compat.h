/* SPDX-License-Identifier: GPL-2.0 */
/* Fake <frdma/compat.h>: the wrappers runs.c uses, over the fake kernel. */
#ifndef _FAKE_FRDMA_COMPAT_H
#define _FAKE_FRDMA_COMPAT_H

#include <linux/slab.h>

static inline void *frdma_kvrealloc(const void *p, size_t oldsize,
				    size_t newsize, gfp_t flags)
{
	(void)oldsize;
	return kvrealloc(p, newsize, flags);
}

#endif
