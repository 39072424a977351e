# mapcache: one entry point for building, testing, benchmarking and the demo.
#
#   make demo    build everything and run the demo hosts (Rust, C, Python, Go)
#   make test    build and run every test (Rust, loom, C ABI under valgrind, Python, Go)
#   make bench   criterion benchmarks, the Python and Go benchmarks
#   make stress  long stress and soak runs (not part of `make test`)
#
# Each component keeps its rules in mk/<component>.mk and appends its targets to
# the lists below, so that the top level stays one screen long.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
ROOT := $(abspath .)
LIB_DIR := $(ROOT)/target/release

DEMO_TARGETS :=
TEST_TARGETS :=
BENCH_TARGETS :=
STRESS_TARGETS :=

include mk/rust.mk
-include mk/c.mk
-include mk/python.mk
-include mk/go.mk
-include mk/hitratio.mk

.PHONY: help demo test bench stress lib
help:
	@echo "make demo | make test | make bench | make stress"

# The release libraries (libmapcache.so and libmapcache.a) every host links.
lib:
	$(CARGO) build --release --lib

demo: lib $(DEMO_TARGETS)
test: $(TEST_TARGETS)
	@echo "make test: all suites passed"
bench: lib $(BENCH_TARGETS)
stress: lib $(STRESS_TARGETS)
