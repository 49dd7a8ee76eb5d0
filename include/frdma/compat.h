/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel interfaces frdma uses that differ between the kernels it
 * builds for (Debian's 6.1 and 6.12 lines), in one place.
 *
 * Every difference is decided by a build-time probe (compat/probes/, run
 * by compat/Kbuild.probe against the kernel being built for), never by
 * the kernel version: distributions backport interfaces into their stable
 * kernels.  The code elsewhere calls the frdma_* wrappers below, or the
 * kernel's own names where this header supplies what an older kernel
 * lacks, and has no conditionals of its own.
 *
 * The memfd folio path needs memfd_pin_folios(), unpin_folios() and an
 * exported shmem_mapping(); FRDMA_FOLIO_PATH says whether this build has
 * it.  Without it the pin library never tries the folio path, so every
 * range takes the generic path, and the stubs below are never called.
 */
#ifndef _FRDMA_COMPAT_H
#define _FRDMA_COMPAT_H

#include <linux/fault-inject.h>
#include <linux/iommu.h>
#include <linux/irqdomain.h>
#include <linux/mm.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <rdma/ib_verbs.h>
#include <rdma/uverbs_ioctl.h>

#include <frdma/compat-probed.h>

/* --- memory: the pin library --- */

#define FRDMA_FOLIO_PATH						\
	(FRDMA_HAVE_MEMFD_PIN_FOLIOS && FRDMA_EXPORTS_MEMFD_PIN_FOLIOS &&	\
	 FRDMA_EXPORTS_UNPIN_FOLIOS && FRDMA_EXPORTS_SHMEM_MAPPING)

#if FRDMA_FOLIO_PATH
#include <linux/memfd.h>

/**
 * frdma_shmem_mapping() - shmem_mapping() where the folio path exists
 * @mapping: the address space of a file
 *
 * Return: whether @mapping is shmem's; always false on a kernel without
 * the folio path (see FRDMA_FOLIO_PATH), where shmem_mapping() may not be
 * exported.
 */
static inline bool frdma_shmem_mapping(struct address_space *mapping)
{
	return shmem_mapping(mapping);
}
#else
static inline bool frdma_shmem_mapping(struct address_space *mapping)
{
	return false;
}

#if !FRDMA_HAVE_MEMFD_PIN_FOLIOS
/* Never called (frdma_folio_path_ok() is false); they only compile. */
static inline long memfd_pin_folios(struct file *memfd, loff_t start,
				    loff_t end, struct folio **folios,
				    unsigned int max_folios, pgoff_t *offset)
{
	return -EOPNOTSUPP;
}

static inline void unpin_folios(struct folio **folios, unsigned long nfolios)
{
	WARN_ON_ONCE(nfolios);
}
#endif
#endif /* FRDMA_FOLIO_PATH */

/**
 * frdma_pin_user_pages_remote() - pin_user_pages_remote() without vmas
 * @mm: the mm, its mmap lock held for reading
 * @start: first user address
 * @nr_pages: pages to pin
 * @gup_flags: FOLL_* flags
 * @pages: the pinned pages
 * @locked: cleared when GUP dropped the mmap lock
 *
 * Return: as pin_user_pages_remote().
 */
static inline long frdma_pin_user_pages_remote(struct mm_struct *mm,
					       unsigned long start,
					       unsigned long nr_pages,
					       unsigned int gup_flags,
					       struct page **pages, int *locked)
{
#if FRDMA_HAVE_PIN_USER_PAGES_REMOTE_NOVMAS
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     locked);
#else
	/*
	 * Kernels of the vmas era refuse (and warn about) FOLL_LONGTERM
	 * with @locked: the mmap lock is then kept, and *@locked stays 1.
	 */
	if (gup_flags & FOLL_LONGTERM)
		locked = NULL;
	return pin_user_pages_remote(mm, start, nr_pages, gup_flags, pages,
				     NULL, locked);
#endif
}

/**
 * frdma_kvrealloc() - kvrealloc() on every kernel
 * @p: the kvmalloc()ed memory, or NULL
 * @oldsize: bytes allocated at @p (older kernels need it)
 * @newsize: bytes wanted
 * @flags: GFP flags
 *
 * Return: the new memory (@p is freed) or NULL (@p is unchanged).
 */
static inline void *frdma_kvrealloc(const void *p, size_t oldsize,
				    size_t newsize, gfp_t flags)
{
#if FRDMA_HAVE_KVREALLOC_NOOLDSIZE
	return kvrealloc(p, newsize, flags);
#else
	return kvrealloc(p, oldsize, newsize, flags);
#endif
}

#if !FRDMA_HAVE_FOLIO_IS_ZONE_MOVABLE
static inline bool folio_is_zone_movable(const struct folio *folio)
{
	return folio_zonenum(folio) == ZONE_MOVABLE;
}
#endif

#if !FRDMA_HAVE_IS_ZERO_FOLIO
static inline bool is_zero_folio(const struct folio *folio)
{
	return is_zero_page(&folio->page);
}
#endif

/*
 * A read-only long-term pin of a COW mapping must pin the page the process
 * goes on seeing.  Since 6.2 GUP unshares for it (FAULT_FLAG_UNSHARE);
 * before, it pinned the shared zero page of untouched anonymous memory, or
 * the page-cache page of a private file mapping, which the process's next
 * write replaces.  frdma_umem_unshare_cow() breaks COW in those mappings
 * first, where GUP does not (umem/compat.c).
 */
#define FRDMA_GUP_UNSHARES_RO_LONGTERM (!FRDMA_HAVE_GUP_MUST_UNSHARE_NOVMA)

#if FRDMA_GUP_UNSHARES_RO_LONGTERM
static inline void frdma_umem_unshare_cow(struct mm_struct *mm,
					  unsigned long start,
					  unsigned long nr_pages)
{
}
#else
void frdma_umem_unshare_cow(struct mm_struct *mm, unsigned long start,
			    unsigned long nr_pages);
#endif

#if !FRDMA_HAVE_VM_FLAGS_SET
/* Before the vm_flags helpers, the mmap lock holder sets them directly. */
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * Older kernels declare nothing of the fault injection framework when it
 * is configured out; newer ones have these stubs.
 */
#if !FRDMA_HAVE_FAULT_ATTR
struct fault_attr {
};

#define DECLARE_FAULT_ATTR(name) struct fault_attr name = {}

static inline bool should_fail(struct fault_attr *attr, ssize_t size)
{
	return false;
}

static inline struct dentry *
fault_create_debugfs_attr(const char *name, struct dentry *parent,
			  struct fault_attr *attr)
{
	return ERR_PTR(-ENODEV);
}
#endif

/* --- RDMA: the device --- */

/**
 * frdma_ib_device_get_netdev() - ib_device_get_netdev() on every kernel
 * @ibdev: a registered device
 * @port: its port
 * @ndev: the netdev the driver gave ib_device_set_netdev() for @port
 *
 * Where the core does not export ib_device_get_netdev(), @ndev is used:
 * the core holds its own reference to it while @ibdev is registered.
 *
 * Return: @port's netdev with a reference (dev_put() it), or NULL.
 */
static inline struct net_device *
frdma_ib_device_get_netdev(struct ib_device *ibdev, u32 port,
			   struct net_device *ndev)
{
#if FRDMA_EXPORTS_IB_DEVICE_GET_NETDEV
	return ib_device_get_netdev(ibdev, port);
#else
	dev_hold(ndev);
	return ndev;
#endif
}

/*
 * ATOMIC_WRITE: the provider posts it through frdma's own rings, so it
 * works whether or not the core knows the operation; the values are the
 * uABI's (the opcodes are part of the ring format, the capability bit is
 * passed to user space as it is).
 */
#if !FRDMA_HAVE_ATOMIC_WRITE
#define IB_UVERBS_WR_ATOMIC_WRITE	15
#define IB_UVERBS_WC_ATOMIC_WRITE	9
#define IB_DEVICE_ATOMIC_WRITE		BIT_ULL(40)
#endif

#if !FRDMA_HAVE_IB_VIRT_DMA_TO_PTR
static inline void *ib_virt_dma_to_ptr(u64 dma_addr)
{
	return (void *)(uintptr_t)dma_addr;
}
#endif

#if !FRDMA_HAVE_IB_MARK_NAME_ASSIGNED_BY_USER
/* Older cores do not rename devices, so there is nothing to mark. */
static inline void ib_mark_name_assigned_by_user(struct ib_device *ibdev)
{
}
#endif

/*
 * create_cq's last argument, FRDMA_CREATE_CQ_ARG: the uverbs attribute
 * bundle on newer kernels, the udata on older ones.
 * frdma_create_cq_udata() gives the udata (NULL for a kernel CQ).
 */
#if FRDMA_HAVE_CREATE_CQ_ATTRS
#define FRDMA_CREATE_CQ_ARG struct uverbs_attr_bundle

static inline struct ib_udata *
frdma_create_cq_udata(FRDMA_CREATE_CQ_ARG *attrs)
{
	return attrs ? &attrs->driver_udata : NULL;
}
#else
#define FRDMA_CREATE_CQ_ARG struct ib_udata

static inline struct ib_udata *
frdma_create_cq_udata(FRDMA_CREATE_CQ_ARG *udata)
{
	return udata;
}
#endif

/* --- IOMMU: the VFIO backend, built only where the IOMMU API is --- */

#if IS_ENABLED(CONFIG_IOMMU_API)
#if !FRDMA_HAVE_IOMMU_PAGING_DOMAIN_ALLOC
/* Before per-device allocation, a domain was allocated for a bus. */
static inline struct iommu_domain *iommu_paging_domain_alloc(struct device *dev)
{
	return iommu_domain_alloc(dev->bus) ?: ERR_PTR(-ENODEV);
}
#endif

#if !FRDMA_HAVE_IOMMU_GROUP_HAS_ISOLATED_MSI
static inline int frdma_iommu_dev_msi_exposed(struct device *dev, void *unused)
{
	return !device_iommu_capable(dev, IOMMU_CAP_INTR_REMAP);
}

/*
 * Before the per-group answer: MSIs are isolated when an interrupt
 * domain remaps them, or when the IOMMU of every device in the group
 * remaps interrupts.
 */
static inline bool iommu_group_has_isolated_msi(struct iommu_group *group)
{
	return irq_domain_check_msi_remap() ||
	       !iommu_group_for_each_dev(group, NULL,
					 frdma_iommu_dev_msi_exposed);
}
#endif

/**
 * frdma_iommu_map() - iommu_map() on every kernel
 * @domain: the domain
 * @iova: first IOVA
 * @paddr: first physical address
 * @size: bytes
 * @prot: IOMMU_READ, IOMMU_WRITE, ...
 * @gfp: for the page tables, where the kernel takes it (older kernels
 *	 allocate them with GFP_KERNEL)
 *
 * Return: as iommu_map().
 */
static inline int frdma_iommu_map(struct iommu_domain *domain,
				  unsigned long iova, phys_addr_t paddr,
				  size_t size, int prot, gfp_t gfp)
{
#if FRDMA_HAVE_IOMMU_MAP_GFP
	return iommu_map(domain, iova, paddr, size, prot, gfp);
#else
	return iommu_map(domain, iova, paddr, size, prot);
#endif
}
#endif /* CONFIG_IOMMU_API */

#endif /* _FRDMA_COMPAT_H */
