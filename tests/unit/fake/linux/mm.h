/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fake page layer: PFN arithmetic only.  A struct page pointer is an
 * address in a fake vmemmap that is never dereferenced; a folio is a PFN
 * and a page count.
 */
#ifndef _FAKE_LINUX_MM_H
#define _FAKE_LINUX_MM_H

#include <linux/types.h>

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))

struct page {
	unsigned long flags[8];
};

struct folio {
	unsigned long pfn;
	unsigned long nr_pages;
};

#define FAKE_VMEMMAP	0x100000000000UL

static inline unsigned long page_to_pfn(const struct page *page)
{
	return ((uintptr_t)page - FAKE_VMEMMAP) / sizeof(struct page);
}

static inline struct page *pfn_to_page(unsigned long pfn)
{
	return (struct page *)(FAKE_VMEMMAP + pfn * sizeof(struct page));
}

static inline struct page *nth_page(struct page *page, unsigned long n)
{
	return pfn_to_page(page_to_pfn(page) + n);
}

static inline unsigned long folio_pfn(const struct folio *folio)
{
	return folio->pfn;
}

static inline long folio_nr_pages(const struct folio *folio)
{
	return folio->nr_pages;
}

#endif
