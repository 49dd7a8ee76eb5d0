// SPDX-License-Identifier: GPL-2.0
/* is_zero_folio() (6.7; backported to some 6.1 releases). */
#include <linux/mm.h>

static bool __maybe_unused frdma_probe(const struct folio *folio)
{
	return is_zero_folio(folio);
}
