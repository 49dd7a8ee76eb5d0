# SPDX-License-Identifier: GPL-2.0
#
# The one place the kernel versions are pinned.  Everything else (module
# build, test VM, debug kernel, DKMS check) derives its names from these
# lines.
#
# Two Debian bookworm kernels: the 6.12 line (KERNEL_*: the default build,
# the test VM's "stock" kernel and the debug kernel's source) and the
# default 6.1 (KERNEL_61_*: the VM's "stock-6.1").  KERNEL_ABI is Debian's
# ABI name (the part of the package names after linux-image-/
# linux-headers-, without the flavour); KERNEL_PKG_VERSION is the Debian
# package version shared by linux-image, linux-headers (and, for 6.12,
# linux-source-6.12) of that ABI.
KERNEL_ABI := 6.12.107+deb12
KERNEL_PKG_VERSION := 6.12.107-1~deb12u1

KERNEL_61_ABI := 6.1.0-57
KERNEL_61_PKG_VERSION := 6.1.192-3

KERNEL_FLAVOUR := amd64
KERNEL_RELEASE := $(KERNEL_ABI)-$(KERNEL_FLAVOUR)
KERNEL_61_RELEASE := $(KERNEL_61_ABI)-$(KERNEL_FLAVOUR)
