// SPDX-License-Identifier: GPL-2.0
/*
 * frdma_vfio: a VFIO IOMMU backend serving the type1v2 container interface
 * (VFIO_TYPE1v2_IOMMU) on frdma's umem pin library.
 *
 * Vocabulary
 *
 *   container  what user space opened as /dev/vfio/vfio and set to
 *              VFIO_TYPE1v2_IOMMU: one struct frdma_vfio, one paging
 *              IOMMU domain shared by every group attached to it.
 *   mapping    one VFIO_IOMMU_MAP_DMA: IOVA range [iova, iova + size),
 *              pinned by one umem, mapped into the domain with one
 *              iommu_map() per umem run.  Mappings never overlap; they are
 *              kept in an rb-tree ordered by IOVA.
 *   iova list  the IOVA ranges user space may map: the domain's aperture
 *              less every attached group's reserved regions, as sorted,
 *              disjoint, inclusive [start, last] ranges (the form of
 *              VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE).
 *
 * Invariants, under the container's lock
 *
 *   - the domain exists exactly while at least one group is attached; the
 *     VFIO core attaches the first group right after open() and releases
 *     the container when the last one is detached, so every ioctl that
 *     maps or unmaps finds a domain;
 *   - every mapping lies inside one range of the iova list and is mapped
 *     in the domain, each of its pages to the page its umem pinned;
 *   - a mapping's pages are unmapped from the domain (and the IOTLB
 *     flushed) before its umem is released.
 *
 * What of type1v2 is served: CHECK_EXTENSION, GET_INFO (page sizes, IOVA
 * ranges, DMA mappings available), MAP_DMA with READ/WRITE, UNMAP_DMA of
 * ranges and with FLAG_ALL, with type1v2's rules on alignment, overlap
 * and partial unmaps.  Not served: the vaddr update flags, dirty-page
 * tracking, mdev pinning (emulated IOMMU groups are refused at attach, so
 * the VFIO core falls back to the next backend) and groups that cannot
 * share one domain.  See Documentation/vfio.rst.
 */
#include <linux/debugfs.h>
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/rbtree.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include <frdma/compat.h>
#include <frdma/umem.h>
/* The kernel's private VFIO header, extracted from its own source. */
#include <drivers/vfio/vfio.h>

static bool frdma_vfio_type1v2 = true;
module_param_named(type1v2, frdma_vfio_type1v2, bool, 0644);
MODULE_PARM_DESC(type1v2,
		 "Serve VFIO_TYPE1v2_IOMMU containers set from now on (default Y; N leaves them to the next backend, such as vfio_iommu_type1)");

static bool frdma_vfio_unsafe_irqs;
module_param_named(allow_unsafe_interrupts, frdma_vfio_unsafe_irqs, bool,
		   0644);
MODULE_PARM_DESC(allow_unsafe_interrupts,
		 "Attach groups whose MSIs are not isolated by interrupt remapping (default N)");

static unsigned int frdma_vfio_dma_limit = U16_MAX;
module_param_named(dma_entry_limit, frdma_vfio_dma_limit, uint, 0644);
MODULE_PARM_DESC(dma_entry_limit,
		 "Mappings a container may hold (default 65535)");

/*
 * Counters shown in debugfs (frdma_vfio/stats): how many containers and
 * mappings exist, how many iommu_map()/iommu_unmap() calls were made and
 * how many IOMMU pages of each size the mappings were made of.
 */
static struct {
	atomic64_t containers;
	atomic64_t mappings;
	atomic64_t mapped_bytes;
	atomic64_t map_calls;
	atomic64_t unmap_calls;
	atomic64_t pages[BITS_PER_LONG];
} frdma_vfio_stats;

static struct dentry *frdma_vfio_debugfs;

/**
 * struct frdma_vfio_range - an inclusive IOVA range
 * @start: first address
 * @last: last address
 */
struct frdma_vfio_range {
	u64 start;
	u64 last;
};

/**
 * struct frdma_vfio_dma - one mapping
 * @node: in the container's tree, by @iova
 * @iova: first IOVA
 * @size: bytes, a multiple of the smallest IOMMU page size
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 * @umem: the pinned pages
 */
struct frdma_vfio_dma {
	struct rb_node node;
	u64 iova;
	u64 size;
	int prot;
	struct frdma_umem *umem;
};

/**
 * struct frdma_vfio_group - an attached IOMMU group
 * @next: in the container's list
 * @group: the group
 */
struct frdma_vfio_group {
	struct list_head next;
	struct iommu_group *group;
};

/**
 * struct frdma_vfio - a type1v2 container
 * @lock: serialises everything below
 * @domain: the paging domain every group is attached to, or NULL
 * @coherent: the domain enforces cache coherency (VFIO_DMA_CC_IOMMU)
 * @pgsize_bitmap: IOMMU page sizes user space sees, PAGE_SIZE and up
 * @groups: the attached groups
 * @dmas: the mappings, by IOVA
 * @dma_avail: mappings that may still be made
 * @iovas: the iova list
 * @nr_iovas: entries in @iovas
 */
struct frdma_vfio {
	struct mutex lock;	/* serialises the fields below */
	struct iommu_domain *domain;
	bool coherent;
	unsigned long pgsize_bitmap;
	struct list_head groups;
	struct rb_root dmas;
	unsigned int dma_avail;
	struct frdma_vfio_range *iovas;
	unsigned int nr_iovas;
};

/* The mapping overlapping [start, last], if any. */
static struct frdma_vfio_dma *frdma_vfio_find(struct frdma_vfio *v, u64 start,
					      u64 last)
{
	struct rb_node *node = v->dmas.rb_node;
	struct frdma_vfio_dma *dma;

	while (node) {
		dma = rb_entry(node, struct frdma_vfio_dma, node);
		if (last < dma->iova)
			node = node->rb_left;
		else if (start > dma->iova + dma->size - 1)
			node = node->rb_right;
		else
			return dma;
	}
	return NULL;
}

static void frdma_vfio_link(struct frdma_vfio *v, struct frdma_vfio_dma *new)
{
	struct rb_node **link = &v->dmas.rb_node, *parent = NULL;
	struct frdma_vfio_dma *dma;

	while (*link) {
		parent = *link;
		dma = rb_entry(parent, struct frdma_vfio_dma, node);
		link = new->iova < dma->iova ? &parent->rb_left :
					       &parent->rb_right;
	}
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, &v->dmas);
}

/*
 * Count the IOMMU pages iommu_map() makes of [iova, iova + size) at @paddr,
 * choosing at each step, as the IOMMU core does, the largest page size the
 * domain supports that fits the remaining length and the alignment of
 * both addresses.
 */
static void frdma_vfio_count_pages(struct frdma_vfio *v, u64 iova,
				   phys_addr_t paddr, u64 size)
{
	unsigned long sizes = v->domain->pgsize_bitmap, fit, bigger;
	unsigned int shift;
	u64 count, next, addr = iova | paddr;

	while (size) {
		fit = sizes & GENMASK_ULL(__fls(size), 0);
		if (addr)
			fit &= GENMASK_ULL(__ffs(addr), 0);
		if (WARN_ON_ONCE(!fit))
			return;
		shift = __fls(fit);
		count = size >> shift;
		/* Up to where a bigger page could start, if one ever can. */
		bigger = sizes & ~GENMASK_ULL(shift, 0);
		if (bigger) {
			next = 1ULL << __ffs(bigger);
			if (!((iova ^ paddr) & (next - 1)))
				count = min(count,
					    (ALIGN(iova + 1, next) - iova) >> shift);
		}
		atomic64_add(count, &frdma_vfio_stats.pages[shift]);
		iova += count << shift;
		paddr += count << shift;
		size -= count << shift;
		addr = iova | paddr;
	}
}

/* Take a mapping out of the domain and unpin it. */
static void frdma_vfio_remove(struct frdma_vfio *v, struct frdma_vfio_dma *dma)
{
	size_t unmapped;

	rb_erase(&dma->node, &v->dmas);
	unmapped = iommu_unmap(v->domain, dma->iova, dma->size);
	atomic64_inc(&frdma_vfio_stats.unmap_calls);
	WARN_ON_ONCE(unmapped != dma->size);
	frdma_umem_release(dma->umem, dma->prot & IOMMU_WRITE);
	atomic64_dec(&frdma_vfio_stats.mappings);
	atomic64_sub(dma->size, &frdma_vfio_stats.mapped_bytes);
	v->dma_avail++;
	kfree(dma);
	cond_resched();
}

static void frdma_vfio_remove_all(struct frdma_vfio *v)
{
	struct rb_node *node;

	while ((node = rb_first(&v->dmas)))
		frdma_vfio_remove(v, rb_entry(node, struct frdma_vfio_dma,
					      node));
}

/* [start, last] lies inside one range of @iovas. */
static bool frdma_vfio_iova_ok(const struct frdma_vfio_range *iovas,
			       unsigned int nr, u64 start, u64 last)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		if (start >= iovas[i].start && last <= iovas[i].last)
			return true;
	return false;
}

/*
 * Take [start, last] out of the @*nr ranges of @*iovas, which may split
 * one range in two: the array is reallocated one entry longer.
 */
static int frdma_vfio_iova_cut(struct frdma_vfio_range **iovas,
			       unsigned int *nr, u64 start, u64 last)
{
	struct frdma_vfio_range *out, *in = *iovas;
	unsigned int i, n = 0;

	out = kcalloc(*nr + 1, sizeof(*out), GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	for (i = 0; i < *nr; i++) {
		if (in[i].last < start || in[i].start > last) {
			out[n++] = in[i];
			continue;
		}
		if (in[i].start < start)
			out[n++] = (struct frdma_vfio_range){ in[i].start,
							      start - 1 };
		if (in[i].last > last)
			out[n++] = (struct frdma_vfio_range){ last + 1,
							      in[i].last };
	}
	kfree(in);
	*iovas = out;
	*nr = n;
	return 0;
}

/* Cut @group's reserved regions out of the iova list being built. */
static int frdma_vfio_iova_cut_group(struct frdma_vfio_range **iovas,
				     unsigned int *nr,
				     struct iommu_group *group)
{
	struct iommu_resv_region *resv, *tmp;
	LIST_HEAD(regions);
	int err;

	err = iommu_get_group_resv_regions(group, &regions);
	list_for_each_entry(resv, &regions, list) {
		if (err)
			break;
		if (resv->type == IOMMU_RESV_DIRECT_RELAXABLE || !resv->length)
			continue;
		err = frdma_vfio_iova_cut(iovas, nr, resv->start,
					  resv->start + resv->length - 1);
	}
	list_for_each_entry_safe(resv, tmp, &regions, list)
		kfree(resv);
	return err;
}

/*
 * The iova list of the domain's aperture less the reserved regions of
 * every attached group and of @extra (a group being attached, or NULL),
 * in *@iovas and *@nr.
 */
static int frdma_vfio_iova_build(struct frdma_vfio *v,
				 struct iommu_group *extra,
				 struct frdma_vfio_range **iovas,
				 unsigned int *nr)
{
	const struct iommu_domain_geometry *geo = &v->domain->geometry;
	struct frdma_vfio_group *g;
	int err = 0;

	*iovas = kzalloc(sizeof(**iovas), GFP_KERNEL);
	if (!*iovas)
		return -ENOMEM;
	(*iovas)[0].start = geo->aperture_start;
	(*iovas)[0].last = geo->aperture_end;
	*nr = 1;
	list_for_each_entry(g, &v->groups, next) {
		err = frdma_vfio_iova_cut_group(iovas, nr, g->group);
		if (err)
			break;
	}
	if (!err && extra)
		err = frdma_vfio_iova_cut_group(iovas, nr, extra);
	if (err) {
		kfree(*iovas);
		*iovas = NULL;
	}
	return err;
}

static int frdma_vfio_alloc_domain(struct device *dev, void *data)
{
	struct iommu_domain **domain = data;

	*domain = iommu_paging_domain_alloc(dev);
	return 1;	/* one device is enough */
}

static int frdma_vfio_attach_group(void *data, struct iommu_group *group,
				   enum vfio_group_type type)
{
	struct iommu_domain *domain = NULL;
	struct frdma_vfio_group *g, *other;
	struct frdma_vfio_range *iovas;
	struct frdma_vfio *v = data;
	struct frdma_vfio_dma *dma;
	struct rb_node *node;
	unsigned int nr;
	int err;

	/* Emulated (mdev) groups need pin_pages: left to other backends. */
	if (type != VFIO_IOMMU)
		return -EINVAL;
	if (!frdma_vfio_unsafe_irqs && !iommu_group_has_isolated_msi(group)) {
		pr_warn("frdma_vfio: IOMMU group %d: no interrupt remapping; see the allow_unsafe_interrupts parameter\n",
			iommu_group_id(group));
		return -EPERM;
	}
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return -ENOMEM;
	g->group = group;

	mutex_lock(&v->lock);
	err = -EINVAL;
	list_for_each_entry(other, &v->groups, next)
		if (other->group == group)
			goto out_unlock;

	if (!v->domain) {
		iommu_group_for_each_dev(group, &domain,
					 frdma_vfio_alloc_domain);
		if (IS_ERR_OR_NULL(domain)) {
			err = domain ? PTR_ERR(domain) : -ENODEV;
			domain = NULL;
			goto out_unlock;
		}
		v->domain = domain;
	}
	/* One domain per container: a group that cannot join it is refused. */
	err = iommu_attach_group(v->domain, group);
	if (err)
		goto out_domain;

	err = frdma_vfio_iova_build(v, group, &iovas, &nr);
	if (err)
		goto out_detach;
	/* The new group's reserved regions may not hide existing mappings. */
	for (node = rb_first(&v->dmas); node; node = rb_next(node)) {
		dma = rb_entry(node, struct frdma_vfio_dma, node);
		if (!frdma_vfio_iova_ok(iovas, nr, dma->iova,
					dma->iova + dma->size - 1)) {
			kfree(iovas);
			err = -EINVAL;
			goto out_detach;
		}
	}
	kfree(v->iovas);
	v->iovas = iovas;
	v->nr_iovas = nr;

	if (domain) {
		v->coherent = domain->ops->enforce_cache_coherency &&
			      domain->ops->enforce_cache_coherency(domain);
		v->pgsize_bitmap = domain->pgsize_bitmap & PAGE_MASK;
		if (domain->pgsize_bitmap & ~PAGE_MASK)
			v->pgsize_bitmap |= PAGE_SIZE;
	}
	list_add_tail(&g->next, &v->groups);
	mutex_unlock(&v->lock);
	return 0;

out_detach:
	iommu_detach_group(v->domain, group);
out_domain:
	if (domain) {
		v->domain = NULL;
		iommu_domain_free(domain);
	}
out_unlock:
	mutex_unlock(&v->lock);
	kfree(g);
	return err;
}

static void frdma_vfio_detach_group(void *data, struct iommu_group *group)
{
	struct frdma_vfio_range *iovas;
	struct frdma_vfio *v = data;
	struct frdma_vfio_group *g;
	unsigned int nr;

	mutex_lock(&v->lock);
	list_for_each_entry(g, &v->groups, next)
		if (g->group == group)
			break;
	if (list_entry_is_head(g, &v->groups, next)) {
		mutex_unlock(&v->lock);
		return;
	}
	list_del(&g->next);
	kfree(g);
	if (list_empty(&v->groups)) {
		/*
		 * The last group: the device can no longer reach any
		 * mapping, and the VFIO core releases the container next.
		 */
		frdma_vfio_remove_all(v);
		iommu_detach_group(v->domain, group);
		iommu_domain_free(v->domain);
		v->domain = NULL;
		kfree(v->iovas);
		v->iovas = NULL;
		v->nr_iovas = 0;
	} else {
		iommu_detach_group(v->domain, group);
		/* Its reserved regions become usable; keep the old on error. */
		if (!frdma_vfio_iova_build(v, NULL, &iovas, &nr)) {
			kfree(v->iovas);
			v->iovas = iovas;
			v->nr_iovas = nr;
		}
	}
	mutex_unlock(&v->lock);
}

static void *frdma_vfio_open(unsigned long arg)
{
	struct frdma_vfio *v;

	if (arg != VFIO_TYPE1v2_IOMMU)
		return ERR_PTR(-EINVAL);
	v = kzalloc(sizeof(*v), GFP_KERNEL_ACCOUNT);
	if (!v)
		return ERR_PTR(-ENOMEM);
	mutex_init(&v->lock);
	INIT_LIST_HEAD(&v->groups);
	v->dmas = RB_ROOT;
	v->dma_avail = READ_ONCE(frdma_vfio_dma_limit);
	atomic64_inc(&frdma_vfio_stats.containers);
	return v;
}

static void frdma_vfio_release(void *data)
{
	struct frdma_vfio *v = data;
	struct frdma_vfio_group *g, *tmp;

	/* Normally every group is detached already (the last one unmapped). */
	mutex_lock(&v->lock);
	if (v->domain) {
		frdma_vfio_remove_all(v);
		list_for_each_entry_safe(g, tmp, &v->groups, next) {
			iommu_detach_group(v->domain, g->group);
			list_del(&g->next);
			kfree(g);
		}
		iommu_domain_free(v->domain);
	}
	mutex_unlock(&v->lock);
	mutex_destroy(&v->lock);
	kfree(v->iovas);
	kfree(v);
	atomic64_dec(&frdma_vfio_stats.containers);
}

static long frdma_vfio_check_extension(struct frdma_vfio *v,
				       unsigned long arg)
{
	switch (arg) {
	case VFIO_TYPE1v2_IOMMU:
	case VFIO_UNMAP_ALL:
		/* Asked before a backend is chosen: only when serving. */
		return v || READ_ONCE(frdma_vfio_type1v2);
	case VFIO_DMA_CC_IOMMU: {
		long ret;

		if (!v)
			return 0;
		mutex_lock(&v->lock);
		ret = v->domain && v->coherent;
		mutex_unlock(&v->lock);
		return ret;
	}
	default:
		return 0;
	}
}

static int frdma_vfio_get_info(struct frdma_vfio *v, void __user *arg)
{
	struct vfio_iommu_type1_info_cap_iova_range *cap_iovas;
	struct vfio_iommu_type1_info_dma_avail cap_avail = {};
	struct vfio_info_cap caps = {};
	struct vfio_iommu_type1_info info;
	struct vfio_info_cap_header *header;
	unsigned long minsz;
	unsigned int i;
	size_t size;
	int err = 0;

	/* No padding goes back to user space uninitialised. */
	memset(&info, 0, sizeof(info));
	minsz = offsetofend(struct vfio_iommu_type1_info, iova_pgsizes);
	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	minsz = min_t(size_t, info.argsz, sizeof(info));

	mutex_lock(&v->lock);
	info.flags = VFIO_IOMMU_INFO_PGSIZES;
	info.iova_pgsizes = v->pgsize_bitmap;
	info.cap_offset = 0;

	cap_avail.header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
	cap_avail.header.version = 1;
	cap_avail.avail = v->dma_avail;
	err = vfio_info_add_capability(&caps, &cap_avail.header,
				       sizeof(cap_avail));
	if (!err && v->nr_iovas) {
		size = struct_size(cap_iovas, iova_ranges, v->nr_iovas);
		header = vfio_info_cap_add(&caps, size,
					   VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
					   1);
		if (IS_ERR(header)) {
			err = PTR_ERR(header);
		} else {
			cap_iovas = container_of(header,
						 struct vfio_iommu_type1_info_cap_iova_range,
						 header);
			cap_iovas->nr_iovas = v->nr_iovas;
			for (i = 0; i < v->nr_iovas; i++) {
				cap_iovas->iova_ranges[i].start =
					v->iovas[i].start;
				cap_iovas->iova_ranges[i].end =
					v->iovas[i].last;
			}
		}
	}
	mutex_unlock(&v->lock);
	if (err)
		goto out;

	if (caps.size) {
		info.flags |= VFIO_IOMMU_INFO_CAPS;
		if (info.argsz < sizeof(info) + caps.size) {
			/* Tell user space how much room the capabilities need. */
			info.argsz = sizeof(info) + caps.size;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user(arg + sizeof(info), caps.buf,
					 caps.size)) {
				err = -EFAULT;
				goto out;
			}
			info.cap_offset = sizeof(info);
		}
	}
	if (copy_to_user(arg, &info, minsz))
		err = -EFAULT;
out:
	kfree(caps.buf);
	return err;
}

/* Map every run of @dma's umem at its IOVA; on failure undo them all. */
static int frdma_vfio_map_runs(struct frdma_vfio *v, struct frdma_vfio_dma *dma)
{
	const struct frdma_umem_run *run = frdma_umem_runs(dma->umem);
	u32 i, nr = frdma_umem_nr_runs(dma->umem);
	u64 iova, size, done = 0;
	phys_addr_t paddr;
	int err;

	for (i = 0; i < nr; i++) {
		iova = dma->iova + ((u64)run[i].pgoff << PAGE_SHIFT);
		paddr = PFN_PHYS(run[i].pfn);
		size = (u64)run[i].npages << PAGE_SHIFT;
		err = frdma_iommu_map(v->domain, iova, paddr, size,
				      dma->prot | IOMMU_CACHE, GFP_KERNEL_ACCOUNT);
		atomic64_inc(&frdma_vfio_stats.map_calls);
		if (err) {
			if (done) {
				iommu_unmap(v->domain, dma->iova, done);
				atomic64_inc(&frdma_vfio_stats.unmap_calls);
			}
			return err;
		}
		frdma_vfio_count_pages(v, iova, paddr, size);
		done += size;
		if (!(i & 255))
			cond_resched();
	}
	return 0;
}

static int frdma_vfio_map_dma(struct frdma_vfio *v, void __user *arg)
{
	u32 mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	struct vfio_iommu_type1_dma_map map;
	struct frdma_vfio_dma *dma;
	unsigned int flags = FRDMA_UMEM_LONGTERM;
	unsigned long minsz;
	u64 pgmask, last;
	int prot = 0, err;

	minsz = offsetofend(struct vfio_iommu_type1_dma_map, size);
	if (copy_from_user(&map, arg, minsz))
		return -EFAULT;
	/* No vaddr updates (VFIO_DMA_MAP_FLAG_VADDR): not served. */
	if (map.argsz < minsz || (map.flags & ~mask) || !map.flags)
		return -EINVAL;
	if (map.flags & VFIO_DMA_MAP_FLAG_READ)
		prot |= IOMMU_READ;
	if (map.flags & VFIO_DMA_MAP_FLAG_WRITE) {
		prot |= IOMMU_WRITE;
		flags |= FRDMA_UMEM_WRITE;
	}
	if (!current->mm)
		return -ENODEV;

	mutex_lock(&v->lock);
	err = -EINVAL;
	if (!v->domain)
		goto out_unlock;
	pgmask = (1ULL << __ffs(v->pgsize_bitmap)) - 1;
	if (!map.size || ((map.size | map.iova | map.vaddr) & pgmask) ||
	    map.vaddr != (unsigned long)map.vaddr ||
	    check_add_overflow(map.iova, map.size - 1, &last) ||
	    map.vaddr + map.size - 1 < map.vaddr)
		goto out_unlock;
	err = -EEXIST;
	if (frdma_vfio_find(v, map.iova, last))
		goto out_unlock;
	err = -ENOSPC;
	if (!v->dma_avail)
		goto out_unlock;
	err = -EINVAL;
	if (!frdma_vfio_iova_ok(v->iovas, v->nr_iovas, map.iova, last))
		goto out_unlock;

	err = -ENOMEM;
	dma = kzalloc(sizeof(*dma), GFP_KERNEL_ACCOUNT);
	if (!dma)
		goto out_unlock;
	dma->iova = map.iova;
	dma->size = map.size;
	dma->prot = prot;
	/* Charged to this process's pinned_vm, against RLIMIT_MEMLOCK. */
	dma->umem = frdma_umem_pin(current->mm, map.vaddr, map.size, flags);
	if (IS_ERR(dma->umem)) {
		err = PTR_ERR(dma->umem);
		goto out_free;
	}
	err = frdma_vfio_map_runs(v, dma);
	if (err)
		goto out_release;
	frdma_vfio_link(v, dma);
	v->dma_avail--;
	atomic64_inc(&frdma_vfio_stats.mappings);
	atomic64_add(dma->size, &frdma_vfio_stats.mapped_bytes);
	mutex_unlock(&v->lock);
	return 0;

out_release:
	frdma_umem_release(dma->umem, false);
out_free:
	kfree(dma);
out_unlock:
	mutex_unlock(&v->lock);
	return err;
}

static int frdma_vfio_unmap_dma(struct frdma_vfio *v, void __user *arg)
{
	struct vfio_iommu_type1_dma_unmap unmap;
	struct frdma_vfio_dma *dma;
	u64 pgmask, last, unmapped = 0;
	unsigned long minsz;
	int err = -EINVAL;

	minsz = offsetofend(struct vfio_iommu_type1_dma_unmap, size);
	if (copy_from_user(&unmap, arg, minsz))
		return -EFAULT;
	/* No dirty bitmap and no vaddr invalidation: not served. */
	if (unmap.argsz < minsz || (unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL))
		return -EINVAL;

	mutex_lock(&v->lock);
	if (!v->domain)
		goto out_unlock;
	pgmask = (1ULL << __ffs(v->pgsize_bitmap)) - 1;
	if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		if (unmap.iova || unmap.size)
			goto out_unlock;
		last = U64_MAX;
	} else {
		if (!unmap.size || ((unmap.iova | unmap.size) & pgmask) ||
		    check_add_overflow(unmap.iova, unmap.size - 1, &last))
			goto out_unlock;
		/* type1v2: a mapping is unmapped whole or not at all. */
		dma = frdma_vfio_find(v, unmap.iova, unmap.iova);
		if (dma && dma->iova != unmap.iova)
			goto out_unlock;
		dma = frdma_vfio_find(v, last, last);
		if (dma && dma->iova + dma->size - 1 != last)
			goto out_unlock;
	}
	while ((dma = frdma_vfio_find(v, unmap.iova, last))) {
		unmapped += dma->size;
		frdma_vfio_remove(v, dma);
	}
	err = 0;
out_unlock:
	mutex_unlock(&v->lock);
	if (err)
		return err;
	unmap.size = unmapped;
	return copy_to_user(arg, &unmap, minsz) ? -EFAULT : 0;
}

static long frdma_vfio_ioctl(void *data, unsigned int cmd, unsigned long arg)
{
	struct frdma_vfio *v = data;

	if (cmd == VFIO_CHECK_EXTENSION)
		return frdma_vfio_check_extension(v, arg);
	if (!v)
		return -EINVAL;
	switch (cmd) {
	case VFIO_IOMMU_GET_INFO:
		return frdma_vfio_get_info(v, (void __user *)arg);
	case VFIO_IOMMU_MAP_DMA:
		return frdma_vfio_map_dma(v, (void __user *)arg);
	case VFIO_IOMMU_UNMAP_DMA:
		return frdma_vfio_unmap_dma(v, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static struct iommu_domain *frdma_vfio_group_domain(void *data,
						    struct iommu_group *group)
{
	struct iommu_domain *domain = ERR_PTR(-ENODEV);
	struct frdma_vfio *v = data;
	struct frdma_vfio_group *g;

	mutex_lock(&v->lock);
	list_for_each_entry(g, &v->groups, next) {
		if (g->group == group) {
			domain = v->domain;
			break;
		}
	}
	mutex_unlock(&v->lock);
	return domain;
}

static const struct vfio_iommu_driver_ops frdma_vfio_ops = {
	.name			= "frdma-vfio-type1v2",
	.owner			= THIS_MODULE,
	.open			= frdma_vfio_open,
	.release		= frdma_vfio_release,
	.ioctl			= frdma_vfio_ioctl,
	.attach_group		= frdma_vfio_attach_group,
	.detach_group		= frdma_vfio_detach_group,
	.group_iommu_domain	= frdma_vfio_group_domain,
};

static int frdma_vfio_stats_show(struct seq_file *m, void *unused)
{
	unsigned int shift;
	s64 n;

	seq_printf(m, "containers %lld\n",
		   atomic64_read(&frdma_vfio_stats.containers));
	seq_printf(m, "mappings %lld\n",
		   atomic64_read(&frdma_vfio_stats.mappings));
	seq_printf(m, "mapped_bytes %lld\n",
		   atomic64_read(&frdma_vfio_stats.mapped_bytes));
	seq_printf(m, "iommu_map_calls %lld\n",
		   atomic64_read(&frdma_vfio_stats.map_calls));
	seq_printf(m, "iommu_unmap_calls %lld\n",
		   atomic64_read(&frdma_vfio_stats.unmap_calls));
	for (shift = 0; shift < BITS_PER_LONG; shift++) {
		n = atomic64_read(&frdma_vfio_stats.pages[shift]);
		if (n)
			seq_printf(m, "pages_%llu %lld\n", 1ULL << shift, n);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(frdma_vfio_stats);

static int __init frdma_vfio_init(void)
{
	int err;

	err = vfio_register_iommu_driver(&frdma_vfio_ops);
	if (err)
		return err;
	frdma_vfio_debugfs = debugfs_create_dir("frdma_vfio", NULL);
	debugfs_create_file("stats", 0444, frdma_vfio_debugfs, NULL,
			    &frdma_vfio_stats_fops);
	return 0;
}

static void __exit frdma_vfio_exit(void)
{
	debugfs_remove_recursive(frdma_vfio_debugfs);
	vfio_unregister_iommu_driver(&frdma_vfio_ops);
}

module_init(frdma_vfio_init);
module_exit(frdma_vfio_exit);

MODULE_DESCRIPTION("frdma VFIO IOMMU backend: type1v2 containers on umem");
MODULE_LICENSE("GPL");
/* Loaded after vfio_iommu_type1, it comes first among the backends. */
MODULE_SOFTDEP("pre: vfio_iommu_type1");
