// SPDX-License-Identifier: GPL-2.0
/*
 * A module that misbehaves on purpose, so the VM harness can show that it
 * notices: with fault=warn it triggers a kernel warning at load; with
 * fault=leak_pin it pins one page of the loading process and never
 * releases it, which unbalances /proc/vmstat's foll-pin counters.  It is
 * loaded only by tests/harness/selftest, never by the suites.
 */
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/sched.h>

static char *fault = "none";
module_param(fault, charp, 0444);
MODULE_PARM_DESC(fault, "none, warn or leak_pin");

static int leak_one_pin(void)
{
	struct page *page;
	unsigned long addr;
	int ret;

	addr = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(addr))
		return (int)addr;
	ret = pin_user_pages_fast(addr, 1, FOLL_WRITE, &page);
	if (ret != 1)
		return ret < 0 ? ret : -EFAULT;
	/* Deliberately never unpinned. */
	return 0;
}

static int __init harness_fault_init(void)
{
	if (!strcmp(fault, "warn"))
		WARN_ON(1);
	else if (!strcmp(fault, "leak_pin"))
		return leak_one_pin();
	return 0;
}

static void __exit harness_fault_exit(void)
{
}

module_init(harness_fault_init);
module_exit(harness_fault_exit);
MODULE_DESCRIPTION("frdma test VM harness self-test faults");
MODULE_LICENSE("GPL");
