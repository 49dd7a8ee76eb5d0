// SPDX-License-Identifier: GPL-2.0
/* iommu_paging_domain_alloc(): a paging domain for a device (6.11). */
#include <linux/iommu.h>

static struct iommu_domain __maybe_unused *frdma_probe(struct device *dev)
{
	return iommu_paging_domain_alloc(dev);
}
