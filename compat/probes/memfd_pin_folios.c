// SPDX-License-Identifier: GPL-2.0
/* memfd_pin_folios() and unpin_folios() with the 6.11 prototypes. */
#include <linux/memfd.h>
#include <linux/mm.h>

static long __maybe_unused frdma_probe(struct file *file, struct folio **f)
{
	pgoff_t off;
	long got = memfd_pin_folios(file, 0, PAGE_SIZE - 1, f, 1, &off);

	unpin_folios(f, got);
	return got;
}
