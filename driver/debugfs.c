// SPDX-License-Identifier: GPL-2.0
/*
 * frdma: object counters and fault injection (placeholder).
 */

#include "frdma.h"

void frdma_count(enum frdma_counter c, long delta)
{
}

bool frdma_should_fail(void)
{
	return false;
}

void frdma_debugfs_init(void)
{
}

void frdma_debugfs_exit(void)
{
}
