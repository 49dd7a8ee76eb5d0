/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Opening a device by name, for every verbs test program.
 */
#ifndef FRDMA_VERBS_DEVICE_H
#define FRDMA_VERBS_DEVICE_H

#include <string.h>

#include <infiniband/verbs.h>

/* The context of the device called @name, or NULL (errno from libibverbs). */
static inline struct ibv_context *open_device_by_name(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	for (i = 0; list && i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	return ctx;
}

#endif /* FRDMA_VERBS_DEVICE_H */
