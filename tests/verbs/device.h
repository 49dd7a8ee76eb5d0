/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Opening a device by name, for every verbs test program.
 */
#ifndef FRDMA_VERBS_DEVICE_H
#define FRDMA_VERBS_DEVICE_H

#include <errno.h>
#include <string.h>

#include <infiniband/verbs.h>

/*
 * The context of the device called @name, or NULL with errno set:
 * ibv_open_device()'s, or ENODEV when there is no such device.
 */
static inline struct ibv_context *open_device_by_name(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n, err = ENODEV;

	list = ibv_get_device_list(&n);
	if (!list)
		return NULL;
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name)) {
			ctx = ibv_open_device(list[i]);
			err = errno;
		}
	ibv_free_device_list(list);
	errno = err;
	return ctx;
}

#endif /* FRDMA_VERBS_DEVICE_H */
