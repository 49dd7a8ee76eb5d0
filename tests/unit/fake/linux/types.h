/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fake kernel environment for host unit tests: the types the code under
 * test uses.  Only what umem/runs.c and include/frdma/umem.h need.
 */
#ifndef _FAKE_LINUX_TYPES_H
#define _FAKE_LINUX_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t s32;
typedef int64_t s64;
typedef unsigned int gfp_t;

#define U32_MAX		((u32)~0U)
#define U64_MAX		((u64)~0ULL)

#endif
