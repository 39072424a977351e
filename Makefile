# mapcache: one entry point for building, testing, installing, benchmarking and the demo.
#
#   make demo       build the libraries and run the demo hosts (Rust, C, Python, Go)
#   make test       every test suite, then a summary table (see TEST_TARGETS below)
#   make install    install the C library, header and pkg-config file (PREFIX, DESTDIR)
#   make uninstall  remove what `make install` installed
#   make wheel      the Python wheel, with libmapcache.so inside, in dist/
#   make bench      criterion benchmarks (bench/), the Python and Go benchmarks
#   make stress     long stress and soak runs (not part of `make test`)
#   make cuda       the GPU rehash plugin libmapcache_cuda.so, on any machine (mk/cuda.mk)
#
# Each component keeps its rules in mk/<component>.mk and appends its targets to
# the lists below, so that the top level stays one screen long.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
empty :=
space := $(empty) $(empty)
PYTHON ?= python3
ROOT := $(abspath .)
LIB_DIR := $(ROOT)/target/release

DEMO_TARGETS :=
# The suites `make test` runs, in this order, each a make target of its own
# (`make test-c` runs one). A component adds its suite with
# `TEST_TARGETS += test-<name>` in its mk file; nothing else needs to change.
TEST_TARGETS :=
BENCH_TARGETS :=
STRESS_TARGETS :=

include mk/rust.mk
-include mk/c.mk
-include mk/python.mk
-include mk/go.mk
-include mk/install.mk
-include mk/hitratio.mk
-include mk/readme.mk
-include mk/tools.mk
-include mk/cuda.mk

.PHONY: help demo test bench stress lib
help:
	@echo "make demo | make test | make install [PREFIX=...] | make uninstall | make wheel | make bench | make stress | make cuda"

# The release libraries (libmapcache.so and libmapcache.a) every host links.
# libmapcache.so's SONAME is libmapcache.so.<ABI version> (build.rs), so a
# program linked with -lmapcache asks the loader for that name: the link beside
# the library lets the in-repository hosts (rpath target/release) find it.
# SONAME_OF: a shell command that prints the SONAME of library $(1).
SONAME_OF = readelf -d $(1) | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p'
lib:
	$(CARGO) build --release --lib
	@soname=$$($(call SONAME_OF,$(LIB_DIR)/libmapcache.so)); \
	  test -n "$$soname" || { echo "libmapcache.so has no SONAME"; exit 1; }; \
	  ln -sf libmapcache.so $(LIB_DIR)/$$soname

demo: lib $(DEMO_TARGETS)

# Runs every suite, even after one fails, and prints one table (suite, passed,
# failed, seconds); fails at the end if any suite failed. The logs are in
# target/test-logs/<suite>.log.
test:
	@$(PYTHON) $(ROOT)/tests/run_suites.py --make "$(MAKE)" --logs $(ROOT)/target/test-logs $(TEST_TARGETS)

bench: lib $(BENCH_TARGETS)
stress: lib $(STRESS_TARGETS)
