/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * TAP for the verbs tests: each ok() is one test point.  The plan is
 * printed at the end ("1..N"), which TAP allows.
 */
#ifndef FRDMA_VERBS_TAP_H
#define FRDMA_VERBS_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int tap_n, tap_failed;

static inline bool __attribute__((format(printf, 2, 3)))
ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

#define diag(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif /* FRDMA_VERBS_TAP_H */
