// SPDX-License-Identifier: GPL-2.0
/*
 * gup_must_unshare(flags, page) in <linux/mm.h>: the GUP of kernels before
 * 6.2, which unshares only anonymous pages for a read-only FOLL_PIN, so a
 * read-only long-term pin of a COW mapping may pin the shared zero page or
 * a page-cache page.  6.2 made such pins reliable, gave the function the
 * vma and later moved it into mm/internal.h: there this does not compile.
 */
#include <linux/mm.h>

static bool __maybe_unused frdma_probe(struct page *page)
{
	return gup_must_unshare(FOLL_PIN, page);
}
