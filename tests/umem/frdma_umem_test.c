// SPDX-License-Identifier: GPL-2.0
/*
 * frdma_umem_test: expose the umem library to user space for tests.
 *
 * A misc device, /dev/frdma_umem_test.  Each open file holds up to
 * FUT_SLOTS pins, addressed by handle; closing the file releases what is
 * left (undirtied).  The ioctls are described in umem_test_uapi.h.  This
 * module is for test VMs only: it hands PFNs to user space, and its
 * uaf_runs parameter makes it use freed memory on purpose.
 */
#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/ptrace.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include <frdma/umem.h>
#include "umem_test_uapi.h"

#define FUT_SLOTS	64
#define FUT_FLAGS	(FUT_WRITE | FUT_LONGTERM | FUT_NO_FOLIO | \
			 FUT_FOLIO_ONLY | FUT_REMOTE)

/*
 * Test only, off by default: FUT_IOC_RUNS releases the pin, which frees its
 * run array, before it reads the runs.  A deliberate use-after-free that
 * the debug kernel's KASAN must report, failing the VM run
 * (tests/vm/debug-kernel/selftest, umem_test --use-after-free).
 */
static bool uaf_runs;
module_param(uaf_runs, bool, 0600);
MODULE_PARM_DESC(uaf_runs, "test only: read a pin's runs after freeing them");

struct fut_file {
	struct mutex lock;	/* protects @slot */
	struct frdma_umem *slot[FUT_SLOTS];
};

struct fut_remote {
	struct work_struct work;
	struct completion done;
	struct mm_struct *mm;
	u64 addr;
	u64 len;
	unsigned int flags;
	struct frdma_umem *umem;
};

static unsigned int fut_umem_flags(u32 flags)
{
	return (flags & FUT_WRITE ? FRDMA_UMEM_WRITE : 0) |
	       (flags & FUT_LONGTERM ? FRDMA_UMEM_LONGTERM : 0) |
	       (flags & FUT_NO_FOLIO ? FRDMA_UMEM_NO_FOLIO : 0) |
	       (flags & FUT_FOLIO_ONLY ? FRDMA_UMEM_FOLIO_ONLY : 0);
}

/* Runs in a kworker, whose current->mm is not the pinned mm. */
static void fut_remote_work(struct work_struct *work)
{
	struct fut_remote *r = container_of(work, struct fut_remote, work);

	r->umem = frdma_umem_pin(r->mm, r->addr, r->len, r->flags);
	complete(&r->done);
}

static struct frdma_umem *fut_pin_remote(u64 addr, u64 len, unsigned int flags)
{
	struct fut_remote r = {
		.mm = current->mm,
		.addr = addr,
		.len = len,
		.flags = flags,
	};

	if (!mmget_not_zero(r.mm))
		return ERR_PTR(-ESRCH);
	init_completion(&r.done);
	INIT_WORK_ONSTACK(&r.work, fut_remote_work);
	queue_work(system_unbound_wq, &r.work);
	wait_for_completion(&r.done);
	destroy_work_on_stack(&r.work);
	mmput(r.mm);
	return r.umem;
}

static long fut_ioc_pin(struct fut_file *ff, void __user *argp)
{
	struct frdma_umem_stats st;
	struct frdma_umem *umem;
	struct fut_pin arg;
	unsigned int flags;
	u32 h;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~FUT_FLAGS)
		return -EINVAL;
	flags = fut_umem_flags(arg.flags);

	mutex_lock(&ff->lock);
	for (h = 0; h < FUT_SLOTS && ff->slot[h]; h++)
		;
	if (h == FUT_SLOTS) {
		mutex_unlock(&ff->lock);
		return -ENOSPC;
	}
	if (arg.flags & FUT_REMOTE)
		umem = fut_pin_remote(arg.addr, arg.len, flags);
	else
		umem = frdma_umem_pin(current->mm, arg.addr, arg.len, flags);
	if (IS_ERR(umem)) {
		mutex_unlock(&ff->lock);
		return PTR_ERR(umem);
	}
	ff->slot[h] = umem;
	mutex_unlock(&ff->lock);

	frdma_umem_get_stats(umem, &st);
	arg.handle = h;
	arg.nr_runs = st.nr_runs;
	arg.max_run = st.max_run;
	arg.npages = st.npages;
	arg.nr_folio_pins = st.nr_folio_pins;
	arg.meta_bytes = st.meta_bytes;
	arg.nr_parts = st.nr_parts;
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}

/* The pin behind @h, with ff->lock held; NULL if none. */
static struct frdma_umem *fut_get(struct fut_file *ff, u32 h)
{
	mutex_lock(&ff->lock);
	if (h < FUT_SLOTS && ff->slot[h])
		return ff->slot[h];
	mutex_unlock(&ff->lock);
	return NULL;
}

/* Take pin @h out of its slot: the caller now owns it, or NULL. */
static struct frdma_umem *fut_take(struct fut_file *ff, u32 h)
{
	struct frdma_umem *umem = fut_get(ff, h);

	if (umem) {
		ff->slot[h] = NULL;
		mutex_unlock(&ff->lock);
	}
	return umem;
}

static long fut_ioc_runs(struct fut_file *ff, void __user *argp)
{
	const struct frdma_umem_run *runs;
	struct frdma_umem *umem;
	struct fut_runs arg;
	struct fut_run out;
	u32 nr, i;
	long ret = 0;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	umem = fut_get(ff, arg.handle);
	if (!umem)
		return -ENOENT;
	nr = frdma_umem_nr_runs(umem);
	runs = frdma_umem_runs(umem);
	if (unlikely(READ_ONCE(uaf_runs))) {
		ff->slot[arg.handle] = NULL;
		frdma_umem_release(umem, false);
		/* the loop below now reads freed memory */
	}
	for (i = 0; i < arg.count && arg.first < nr && i < nr - arg.first; i++) {
		out.pfn = runs[arg.first + i].pfn;
		out.pgoff = runs[arg.first + i].pgoff;
		out.npages = runs[arg.first + i].npages;
		if (copy_to_user(u64_to_user_ptr(arg.ptr + (u64)i * sizeof(out)),
				 &out, sizeof(out))) {
			ret = -EFAULT;
			break;
		}
	}
	mutex_unlock(&ff->lock);
	if (ret)
		return ret;
	arg.count = i;
	arg.nr_runs = nr;
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}

static long fut_ioc_release(struct fut_file *ff, void __user *argp)
{
	struct frdma_umem *umem;
	struct fut_release arg;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	umem = fut_take(ff, arg.handle);
	if (!umem)
		return -ENOENT;
	frdma_umem_release(umem, arg.dirty);
	return 0;
}

#if IS_ENABLED(CONFIG_KPROBES) && \
	(!IS_ENABLED(CONFIG_PREEMPTION) || IS_ENABLED(CONFIG_PREEMPT_DYNAMIC))
/*
 * What the task in fut_trace_task did while it released a pin: counted by
 * kprobe handlers, in that task only, so without locking; read by the same
 * task once the release has returned.  fut_trace_lock lets one traced
 * release run at a time.
 */
static DEFINE_MUTEX(fut_trace_lock);
static struct task_struct *fut_trace_task;
static struct fut_trace {
	u64 unpin_calls;
	u64 unpin_pages;
	u64 max_call_pages;
	u64 resched;
	u64 pages_since;	/* given to unpin calls since the last resched */
	u64 max_pages_between;
} fut_trace;

/* unpin_user_page_range_dirty_lock(page, npages, make_dirty) */
static int fut_trace_unpin(struct kprobe *kp, struct pt_regs *regs)
{
	struct fut_trace *t = &fut_trace;
	u64 npages;

	if (current != READ_ONCE(fut_trace_task))
		return 0;
	npages = regs_get_kernel_argument(regs, 1);
	t->unpin_calls++;
	t->unpin_pages += npages;
	t->max_call_pages = max(t->max_call_pages, npages);
	t->pages_since += npages;
	return 0;
}

/* __cond_resched(): where cond_resched() goes unless it is compiled out */
static int fut_trace_resched(struct kprobe *kp, struct pt_regs *regs)
{
	struct fut_trace *t = &fut_trace;

	if (current != READ_ONCE(fut_trace_task))
		return 0;
	t->resched++;
	t->max_pages_between = max(t->max_pages_between, t->pages_since);
	t->pages_since = 0;
	return 0;
}

static long fut_ioc_release_traced(struct fut_file *ff, void __user *argp)
{
	struct kprobe kp_unpin = {
		.symbol_name = "unpin_user_page_range_dirty_lock",
		.pre_handler = fut_trace_unpin,
	};
	struct kprobe kp_resched = {
		.symbol_name = "__cond_resched",
		.pre_handler = fut_trace_resched,
	};
	struct fut_release_traced arg;
	struct frdma_umem *umem;
	long ret;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	umem = fut_take(ff, arg.handle);
	if (!umem)
		return -ENOENT;

	mutex_lock(&fut_trace_lock);
	memset(&fut_trace, 0, sizeof(fut_trace));
	ret = register_kprobe(&kp_unpin);
	if (!ret) {
		ret = register_kprobe(&kp_resched);
		if (ret)
			unregister_kprobe(&kp_unpin);
	}
	if (!ret)
		WRITE_ONCE(fut_trace_task, current);
	/* released either way: the pin is no longer in its slot */
	frdma_umem_release(umem, arg.dirty);
	if (!ret) {
		WRITE_ONCE(fut_trace_task, NULL);
		unregister_kprobe(&kp_resched);
		unregister_kprobe(&kp_unpin);
		fut_trace.max_pages_between = max(fut_trace.max_pages_between,
						  fut_trace.pages_since);
		arg.unpin_calls = fut_trace.unpin_calls;
		arg.unpin_pages = fut_trace.unpin_pages;
		arg.max_call_pages = fut_trace.max_call_pages;
		arg.resched = fut_trace.resched;
		arg.max_pages_between = fut_trace.max_pages_between;
	}
	mutex_unlock(&fut_trace_lock);
	if (ret)
		return ret;
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}
#else
/* No kprobes, or cond_resched() compiled out (full preemption). */
static long fut_ioc_release_traced(struct fut_file *ff, void __user *argp)
{
	return -EOPNOTSUPP;
}
#endif

/* Write the pattern through the pin, a page-sized bounce buffer at a time. */
static long fut_ioc_write(struct fut_file *ff, void __user *argp)
{
	struct frdma_umem *umem;
	struct fut_rw arg;
	u64 done = 0, i, n;
	long ret = 0;
	u8 *buf;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	buf = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	umem = fut_get(ff, arg.handle);
	if (!umem) {
		kfree(buf);
		return -ENOENT;
	}
	while (done < arg.len) {
		n = min_t(u64, arg.len - done, PAGE_SIZE);
		for (i = 0; i < n; i++)
			buf[i] = fut_pattern(arg.seed, arg.offset + done + i);
		ret = frdma_umem_copy_to(umem, arg.offset + done, buf, n);
		if (ret)
			break;
		done += n;
		cond_resched();
	}
	mutex_unlock(&ff->lock);
	kfree(buf);
	return ret;
}

/* Read through the pin with the iterator, page by page within chunks. */
static long fut_ioc_read(struct fut_file *ff, void __user *argp)
{
	struct frdma_umem_chunk chunk;
	struct frdma_umem_iter iter;
	struct frdma_umem *umem;
	size_t done, n, in_page;
	u8 __user *dst;
	struct fut_rw arg;
	struct page *page;
	long ret;
	u64 from_page;	/* bytes from the start of chunk.page */
	void *va;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	dst = u64_to_user_ptr(arg.ptr);
	umem = fut_get(ff, arg.handle);
	if (!umem)
		return -ENOENT;
	ret = frdma_umem_iter_init(&iter, umem, arg.offset, arg.len);
	while (!ret && frdma_umem_iter_next(&iter, &chunk)) {
		for (done = 0; done < chunk.len; done += n) {
			from_page = chunk.page_off + done;
			page = nth_page(chunk.page, from_page >> PAGE_SHIFT);
			in_page = from_page & ~PAGE_MASK;
			n = min_t(size_t, chunk.len - done, PAGE_SIZE - in_page);
			va = kmap_local_page(page);
			if (copy_to_user(dst, va + in_page, n))
				ret = -EFAULT;
			kunmap_local(va);
			if (ret)
				break;
			dst += n;
		}
		cond_resched();
	}
	mutex_unlock(&ff->lock);
	return ret;
}

static int fut_plain_pin(unsigned long addr, unsigned long npages,
			 unsigned int gup_flags, struct page **pages,
			 unsigned long *pinned)
{
	unsigned long want;
	long got;

	*pinned = 0;
	while (*pinned < npages) {
		want = min(npages - *pinned, (unsigned long)INT_MAX);
		got = pin_user_pages_fast(addr + (*pinned << PAGE_SHIFT), want,
					  gup_flags, pages + *pinned);
		if (got <= 0)
			return got ? got : -EFAULT;
		*pinned += got;
	}
	return 0;
}

static void fut_bench_umem(struct fut_bench *arg)
{
	struct frdma_umem_stats st;
	struct frdma_umem *umem;
	u64 t0;

	t0 = ktime_get_ns();
	umem = frdma_umem_pin(current->mm, arg->addr, arg->len,
			      fut_umem_flags(arg->flags));
	if (IS_ERR(umem)) {
		arg->umem_err = PTR_ERR(umem);
		arg->umem_ns = ktime_get_ns() - t0;
		arg->nr_runs = 0;
		arg->umem_meta_bytes = 0;
		return;
	}
	frdma_umem_get_stats(umem, &st);
	frdma_umem_release(umem, false);
	arg->umem_ns = ktime_get_ns() - t0;
	arg->umem_err = 0;
	arg->nr_runs = st.nr_runs;
	arg->umem_meta_bytes = st.meta_bytes;
}

static long fut_ioc_bench(void __user *argp)
{
	unsigned int gup_flags = 0;
	unsigned long npages, pinned;
	struct fut_bench arg;
	struct page **pages;
	u64 t0;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if ((arg.flags & ~(FUT_FLAGS | FUT_UMEM_FIRST)) ||
	    (arg.flags & FUT_REMOTE) ||
	    !PAGE_ALIGNED(arg.addr) || !PAGE_ALIGNED(arg.len) || !arg.len ||
	    arg.len > (1ULL << 40))
		return -EINVAL;
	npages = arg.len >> PAGE_SHIFT;
	if (arg.flags & FUT_WRITE)
		gup_flags |= FOLL_WRITE;
	if (arg.flags & FUT_LONGTERM)
		gup_flags |= FOLL_LONGTERM;

	if (arg.flags & FUT_UMEM_FIRST)
		fut_bench_umem(&arg);

	/* plain: one page pointer per page, as most pinning drivers keep */
	t0 = ktime_get_ns();
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	arg.plain_alloc_ns = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	arg.plain_err = fut_plain_pin(arg.addr, npages, gup_flags, pages,
				      &pinned);
	unpin_user_pages(pages, pinned);
	arg.plain_ns = ktime_get_ns() - t0;
	arg.plain_meta_bytes = npages * sizeof(*pages);
	t0 = ktime_get_ns();
	kvfree(pages);
	arg.plain_alloc_ns += ktime_get_ns() - t0;

	if (!(arg.flags & FUT_UMEM_FIRST))
		fut_bench_umem(&arg);
	if (copy_to_user(argp, &arg, sizeof(arg)))
		return -EFAULT;
	return 0;
}

static long fut_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct fut_file *ff = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case FUT_IOC_PIN:
		return fut_ioc_pin(ff, argp);
	case FUT_IOC_RUNS:
		return fut_ioc_runs(ff, argp);
	case FUT_IOC_RELEASE:
		return fut_ioc_release(ff, argp);
	case FUT_IOC_WRITE:
		return fut_ioc_write(ff, argp);
	case FUT_IOC_READ:
		return fut_ioc_read(ff, argp);
	case FUT_IOC_BENCH:
		return fut_ioc_bench(argp);
	case FUT_IOC_RELEASE_TRACED:
		return fut_ioc_release_traced(ff, argp);
	}
	return -ENOTTY;
}

static int fut_open(struct inode *inode, struct file *file)
{
	struct fut_file *ff;

	ff = kzalloc(sizeof(*ff), GFP_KERNEL);
	if (!ff)
		return -ENOMEM;
	mutex_init(&ff->lock);
	file->private_data = ff;
	return 0;
}

static int fut_release(struct inode *inode, struct file *file)
{
	struct fut_file *ff = file->private_data;
	unsigned int h;

	for (h = 0; h < FUT_SLOTS; h++)
		frdma_umem_release(ff->slot[h], false);
	mutex_destroy(&ff->lock);
	kfree(ff);
	return 0;
}

static const struct file_operations fut_fops = {
	.owner = THIS_MODULE,
	.open = fut_open,
	.release = fut_release,
	.unlocked_ioctl = fut_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice fut_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "frdma_umem_test",
	.fops = &fut_fops,
	.mode = 0600,
};

module_misc_device(fut_misc);

MODULE_DESCRIPTION("frdma umem test module: umem through ioctls");
MODULE_LICENSE("GPL");
