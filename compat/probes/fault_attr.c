// SPDX-License-Identifier: GPL-2.0
/* DECLARE_FAULT_ATTR() and should_fail(), or their stubs (6.3 has stubs). */
#include <linux/fault-inject.h>

static DECLARE_FAULT_ATTR(frdma_probe_attr);

static bool __maybe_unused frdma_probe(void)
{
	return should_fail(&frdma_probe_attr, 1);
}
