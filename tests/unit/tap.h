/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal TAP producer for host unit tests.
 *
 *	static void test_something(void)
 *	{
 *		CHECK(x == 1, "x is %d", x);
 *	}
 *	...
 *	TEST(test_something, "what it shows");
 *	return tap_done();
 *
 * CHECK() records a failure (with its message as a TAP diagnostic) and
 * carries on; the test is "not ok" if any CHECK in it failed.
 */
#ifndef _FRDMA_UNIT_TAP_H
#define _FRDMA_UNIT_TAP_H

#include <stdio.h>

static int tap_nr;
static int tap_failed_tests;
static int tap_checks_failed;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		tap_checks_failed++;					\
		if (tap_checks_failed <= 20) {				\
			printf("# %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);				\
			printf("\n");					\
		}							\
	}								\
} while (0)

#define TEST(fn, desc) do {						\
	tap_checks_failed = 0;						\
	fn();								\
	tap_nr++;							\
	if (tap_checks_failed) {					\
		tap_failed_tests++;					\
		printf("not ok %d - %s\n", tap_nr, desc);		\
	} else {							\
		printf("ok %d - %s\n", tap_nr, desc);			\
	}								\
	fflush(stdout);							\
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_nr);
	return tap_failed_tests ? 1 : 0;
}

#endif
