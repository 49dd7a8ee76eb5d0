# SPDX-License-Identifier: GPL-2.0
#
# frdma top-level Makefile.  Targets:
#
#   make            modules (umem/, driver/, vfio/, tests/umem/), the
#                   provider and upstream perftest patched with
#                   perftest-patches/ (into the cache; PERFTEST_SRC=tarball
#                   or checkout)
#   make check      every test: host unit tests, static checks, VM suites
#   make demo       the main job: boot the test VM, create frdma0, show it
#                   and run a perftest bandwidth pair on it; then one
#                   perftest bandwidth run across the two-VM pair
#   make bench      registration and bandwidth: frdma beside rdma_rxe, memcpy;
#                   VFIO map/unmap: frdma_vfio beside vfio_iommu_type1;
#                   the wire between two VMs: frdma, rdma_rxe and TCP
#   make stress     a long stress pass: make stress DURATION=1200
#   make install    the provider, where Debian's libibverbs looks for it
#   make dkms-install  the modules under DKMS, for every installed kernel
#   make uninstall, make dkms-uninstall
#
# The kernel versions are pinned in config/kernel.mk and nowhere else.

include config/kernel.mk

TOP := $(CURDIR)
KDIR ?= /lib/modules/$(KERNEL_RELEASE)/build
# Every suite under tests/vm/suites/ that runs on the stock kernel (not
# "# debug-kernel: only", which tests/run-suites refuses there) unless
# narrowed: make check SUITES=umem
HASH := \#
SUITES ?= $(notdir $(shell grep -L '^$(HASH) debug-kernel: only' tests/vm/suites/*))
VMRUN := tests/vm/run

export KERNEL_RELEASE KDIR

.PHONY: all modules provider progs perftest deps unit static check check-vm \
	demo bench stress clean install uninstall dkms-install dkms-uninstall

# User-space test programs run inside the VM; built on the host.
PROG_DIRS := tests/verbs tests/umem tests/stress tests/vm/debug-kernel \
	tests/vfio tests/wire

all: modules provider progs perftest

deps:
	scripts/deps build

# vfio/ is built against drivers/vfio/vfio.h from the kernel's own source
# (linux-source-6.12 or -6.1, the line of KDIR); scripts/kernel-private
# extracts it or says what is missing, and vfio/ is left out.
modules: deps
	$(MAKE) -C $(KDIR) M=$(TOP) \
		FRDMA_KERNEL_PRIVATE="$$(scripts/kernel-private $(KDIR))" modules

provider: deps
	$(MAKE) -C userspace

progs: deps
	for d in $(PROG_DIRS); do $(MAKE) -C $$d || exit 1; done

# build/perftest: a link to the patched perftest in the cache (the
# installed Debian perftest stays what the perftest suites run).
# Without a perftest source (a clone away from the shared copy, no
# PERFTEST_SRC) the rest still builds; the perftest-patches suite and
# make bench then say what is missing.
perftest:
	@if scripts/perftest-build --source > /dev/null 2>&1; then \
		scripts/perftest-build > /dev/null; \
	else \
		echo "make: no perftest source (set PERFTEST_SRC to a perftest" \
			"v4.5-0.17 tarball or checkout): patched perftest not built" >&2; \
	fi

unit:
	$(MAKE) -C tests/unit run
	$(MAKE) -C userspace check

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
	tests/vm/demo-pair

# Registration and bandwidth: frdma beside rdma_rxe and memcpy, one boot;
# then VFIO map/unmap, frdma_vfio beside vfio_iommu_type1, in a second
# boot (tests/bench/vfio: --iommu, results/bench/vfio.txt); then the wire,
# frdma against frdma, rdma_rxe against rdma_rxe and TCP between two VMs,
# one pair boot with 1500-byte links and one with jumbo frames
# (tests/bench/wire, results/bench/wire.txt and wire-mtu9000.txt).
bench: all
	scripts/deps vm bench
	tests/bench/run $(BENCH_ARGS)
	tests/bench/vfio $(BENCH_VFIO_ARGS)
	tests/bench/wire $(BENCH_WIRE_ARGS)
	tests/bench/wire --mtu 9000 $(BENCH_WIRE_ARGS)

# A long memory-registration stress pass and its oracle, one VM boot.
# STRESS_DEVICE=rxe0 runs the same load on rdma_rxe (the reference);
# STRESS_ARGS go to the stress program, e.g. '--seed 20261123 --procs 3'.
DURATION ?= 1200
STRESS_DEVICE ?= frdma0
stress: all
	scripts/deps vm
	tests/stress/run --device $(STRESS_DEVICE) $(DURATION) $(STRESS_ARGS)

# The provider, where Debian's rdma-core looks for it.
LIBDIR ?= /usr/lib/x86_64-linux-gnu
PROVIDER_LIB := libfrdma-rdmav34.so
install: provider
	install -D -m 0644 userspace/$(PROVIDER_LIB) \
		$(DESTDIR)$(LIBDIR)/libibverbs/$(PROVIDER_LIB)
	install -D -m 0644 userspace/frdma.driver \
		$(DESTDIR)/etc/libibverbs.d/frdma.driver

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libibverbs/$(PROVIDER_LIB) \
		$(DESTDIR)/etc/libibverbs.d/frdma.driver

# The kernel modules under DKMS (dkms.conf), built for every installed
# kernel that has its headers, and by DKMS for kernels installed later.
FRDMA_VERSION ?= 0.1
export FRDMA_VERSION
dkms-install:
	scripts/dkms install

dkms-uninstall:
	scripts/dkms uninstall

clean:
	$(MAKE) -C $(KDIR) M=$(TOP) clean
	for d in $(PROG_DIRS); do $(MAKE) -C $$d clean; done
	$(MAKE) -C userspace clean
	$(MAKE) -C tests/unit clean
