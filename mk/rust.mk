# Rust core: unit, property and concurrency tests, lints, loom models, benchmarks.

LOOM_TARGET_DIR := $(ROOT)/target/loom

.PHONY: demo-rust test-rust test-lint test-loom bench-rust stress-rust
DEMO_TARGETS += demo-rust
TEST_TARGETS += test-lint test-rust test-loom
BENCH_TARGETS += bench-rust
STRESS_TARGETS += stress-rust

demo-rust:
	$(CARGO) run --release --example demo

test-lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

test-rust:
	$(CARGO) test --release

# Model-checks the write-flag / publish / reclaim protocol with loom (and the
# slab's free stack, a unit model in src/table/slab.rs). The cfg flags switch both
# mapcache and crossbeam-epoch onto loom's atomics.
LOOM_ENV := RUSTFLAGS="--cfg loom --cfg crossbeam_loom" CARGO_TARGET_DIR=$(LOOM_TARGET_DIR) \
  LOOM_MAX_PREEMPTIONS=3
test-loom:
	$(LOOM_ENV) $(CARGO) test --release --test loom -- --test-threads=1
	$(LOOM_ENV) $(CARGO) test --release --lib loom_tests -- --test-threads=1

bench-rust:
	$(CARGO) bench --bench map
	$(CARGO) bench --bench snapshot

# The concurrency and reclamation suites at 20x (50M churn operations); the
# snapshot round trip at 10M entries and its long differential fuzz run.
stress-rust:
	MAPCACHE_STRESS=1 $(CARGO) test --release --test concurrency --test reclamation
	MAPCACHE_STRESS=1 $(CARGO) test --release --test snapshot --test snapshot_hostile
