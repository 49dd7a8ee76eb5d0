/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FAKE_LINUX_STRING_H
#define _FAKE_LINUX_STRING_H

#include <string.h>

#endif
