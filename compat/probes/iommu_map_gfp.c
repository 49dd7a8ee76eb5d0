// SPDX-License-Identifier: GPL-2.0
/* iommu_map() taking the GFP flags of its page-table allocations (6.3). */
#include <linux/iommu.h>

static int __maybe_unused frdma_probe(struct iommu_domain *domain)
{
	return iommu_map(domain, 0, 0, PAGE_SIZE, IOMMU_READ, GFP_KERNEL);
}
