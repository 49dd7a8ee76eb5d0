// SPDX-License-Identifier: GPL-2.0
/* vm_flags_set(): vm_flags is read-only outside its helpers (6.3). */
#include <linux/mm.h>

static void __maybe_unused frdma_probe(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_DONTEXPAND);
}
