# SPDX-License-Identifier: GPL-2.0
#
# frdma top-level Makefile.  Targets:
#
#   make            modules (umem/, driver/, tests/umem/) and the provider
#   make check      every test: host unit tests, static checks, VM suites
#   make demo       the main job: boot the test VM, create frdma0, show it
#   make bench      registration and bandwidth figures (see issue tracker)
#
# The kernel version is pinned in config/kernel.mk and nowhere else.

include config/kernel.mk

TOP := $(CURDIR)
KDIR ?= /lib/modules/$(KERNEL_RELEASE)/build
# Every suite under tests/vm/suites/ unless narrowed: make check SUITES=umem
SUITES ?= $(notdir $(wildcard tests/vm/suites/*))
VMRUN := tests/vm/run

export KERNEL_RELEASE KDIR

.PHONY: all modules provider deps unit static check check-vm demo bench clean

all: modules provider

deps:
	scripts/deps build

modules: deps
	$(MAKE) -C $(KDIR) M=$(TOP) modules

provider: deps
	$(MAKE) -C userspace

unit:
	$(MAKE) -C tests/unit run

static: modules
	scripts/deps check
	scripts/static-check

check-vm: all
	scripts/deps vm
	tests/run-suites $(SUITES)

check:
	scripts/check

demo: all
	scripts/deps vm
	$(VMRUN) -- tests/vm/demo

clean:
	$(MAKE) -C $(KDIR) M=$(TOP) clean
	$(MAKE) -C userspace clean
	$(MAKE) -C tests/unit clean
