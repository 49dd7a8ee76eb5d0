// SPDX-License-Identifier: GPL-2.0
/* folio_is_zone_movable() (6.3). */
#include <linux/mm.h>

static bool __maybe_unused frdma_probe(struct folio *folio)
{
	return folio_is_zone_movable(folio);
}
