# SPDX-License-Identifier: GPL-2.0
#
# The one place the kernel version is pinned.  Everything else (module
# build, test VM, debug kernel) derives its names from these two lines.
#
# KERNEL_ABI is Debian's ABI name (the part of the package names after
# linux-image-/linux-headers-, without the flavour); KERNEL_PKG_VERSION is
# the Debian package version shared by linux-image, linux-headers and
# linux-source-6.12 for that ABI.
KERNEL_ABI := 6.12.107+deb12
KERNEL_PKG_VERSION := 6.12.107-1~deb12u1

KERNEL_FLAVOUR := amd64
KERNEL_RELEASE := $(KERNEL_ABI)-$(KERNEL_FLAVOUR)
