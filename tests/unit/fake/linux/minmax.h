/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FAKE_LINUX_MINMAX_H
#define _FAKE_LINUX_MINMAX_H

/* Like the kernel's: both operands must have the same type. */
#define __fake_cmp(op, x, y) ({					\
	__typeof__(x) _x = (x);					\
	__typeof__(y) _y = (y);					\
	(void)(&_x == &_y);					\
	_x op _y ? _x : _y; })

#define min(x, y)		__fake_cmp(<, x, y)
#define max(x, y)		__fake_cmp(>, x, y)
#define min_t(t, x, y)		__fake_cmp(<, (t)(x), (t)(y))
#define max_t(t, x, y)		__fake_cmp(>, (t)(x), (t)(y))

#endif
