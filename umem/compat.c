// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel frdma_umem was built for lets it do, for user space and
 * the tests to read: /sys/module/frdma_umem/parameters/folio_path is Y
 * when memfd, shmem and hugetlbfs ranges can take the folio path
 * (memfd_pin_folios(); see include/frdma/compat.h), N when every range
 * takes the generic path.
 */
#include <linux/mmap_lock.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>

#include <frdma/compat.h>

static bool folio_path = FRDMA_FOLIO_PATH;
module_param(folio_path, bool, 0444);
MODULE_PARM_DESC(folio_path,
		 "Y: memfd, shmem and hugetlbfs ranges are pinned a folio at a time; N: this kernel lacks memfd_pin_folios(), every range takes the generic path");

#if !FRDMA_GUP_UNSHARES_RO_LONGTERM
/**
 * frdma_umem_unshare_cow() - break COW before a read-only long-term pin
 * @mm: the mm of the range, alive (the caller holds a reference)
 * @start: page-aligned first user address
 * @nr_pages: pages in the range
 *
 * On a kernel whose GUP does not unshare for a read-only long-term pin
 * (before 6.2), fault every page of the range's readable COW mappings
 * (private, possibly writable) for writing, with FOLL_FORCE as a debugger
 * would, so that each becomes an anonymous page of the process's own: the
 * page the pin that follows takes is then the one the process keeps
 * seeing, as later kernels guarantee.  Shared mappings are left alone;
 * their pages are the process's already.  Errors are ignored: the pin
 * that follows meets the same hole or refusal and reports it.
 *
 * Context: process context, mmap lock not held; sleeps.
 */
void frdma_umem_unshare_cow(struct mm_struct *mm, unsigned long start,
			    unsigned long nr_pages)
{
	unsigned long end = start + (nr_pages << PAGE_SHIFT), addr = start;
	unsigned int batch = PAGE_SIZE / sizeof(struct page *);
	struct vm_area_struct *vma;
	struct page **pages;
	unsigned long to;
	long got, i;

	pages = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!pages)
		return;
	if (mmap_read_lock_killable(mm)) {
		kfree(pages);
		return;
	}
	while (addr < end && !fatal_signal_pending(current)) {
		vma = find_vma(mm, addr);
		if (!vma || vma->vm_start >= end)
			break;
		addr = max(addr, vma->vm_start);
		to = min(end, vma->vm_end);
		if (!is_cow_mapping(vma->vm_flags) ||
		    !(vma->vm_flags & VM_READ) ||
		    (vma->vm_flags & (VM_IO | VM_PFNMAP))) {
			addr = to;
			continue;
		}
		while (addr < to) {
			got = get_user_pages_remote(mm, addr,
						    min((to - addr) >> PAGE_SHIFT,
							(unsigned long)batch),
						    FOLL_WRITE | FOLL_FORCE,
						    pages, NULL, NULL);
			if (got <= 0)
				break;
			for (i = 0; i < got; i++)
				put_page(pages[i]);
			addr += got << PAGE_SHIFT;
			cond_resched();
		}
		/* a page GUP refused: leave it (and its vma) to the pin */
		addr = to;
	}
	mmap_read_unlock(mm);
	kfree(pages);
}
#endif
