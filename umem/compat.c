// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel frdma_umem was built for lets it do, for user space and
 * the tests to read: /sys/module/frdma_umem/parameters/folio_path is Y
 * when memfd, shmem and hugetlbfs ranges can take the folio path
 * (memfd_pin_folios(); see include/frdma/compat.h), N when every range
 * takes the generic path.
 */
#include <linux/moduleparam.h>

#include <frdma/compat.h>

static bool folio_path = FRDMA_FOLIO_PATH;
module_param(folio_path, bool, 0444);
MODULE_PARM_DESC(folio_path,
		 "Y: memfd, shmem and hugetlbfs ranges are pinned a folio at a time; N: this kernel lacks memfd_pin_folios(), every range takes the generic path");
