# Rust core: unit, property and concurrency tests, lints, loom models, benchmarks.

LOOM_TARGET_DIR := $(ROOT)/target/loom
# The criterion benchmarks of bench/ (a workspace member of its own, so that
# the library and the demo never compile criterion and the peers). A new
# benchmark: benches/<name>.rs and a [[bench]] entry in bench/Cargo.toml, and
# its name here.
RUST_BENCHES := map cache snapshot

.PHONY: demo-rust test-lint test-rust test-loom bench-rust stress-rust
DEMO_TARGETS += demo-rust
TEST_TARGETS += test-lint test-rust test-loom
BENCH_TARGETS += bench-rust
STRESS_TARGETS += stress-rust

# The demo is the binary of the demo/ package (examples/demo.rs): an example
# of the mapcache package would first compile its dev-dependencies.
demo-rust:
	$(CARGO) run --release -p mapcache-demo

# Lints every workspace member (the benchmarks included: checking them is
# quick, building them is not).
# And that `make demo` stays fast: the demo's build graph has none of the
# benchmarks' peers nor the tests' dev-dependencies.
DEMO_MUST_NOT_BUILD := criterion dashmap papaya quick_cache moka proptest cbindgen
test-lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@found=$$($(CARGO) tree -p mapcache-demo -e normal,build --prefix none | awk '{print $$1}' | sort -u \
	  | grep -x -E '$(subst $(space),|,$(DEMO_MUST_NOT_BUILD))' || true); \
	  test -z "$$found" || { echo "make demo would compile: $$found"; exit 1; }; \
	  echo "the demo builds none of: $(DEMO_MUST_NOT_BUILD)"

test-rust:
	$(CARGO) test --release

# Model-checks the write-flag / publish / reclaim protocol with loom (and the
# slab's free stack, a unit model in src/table/slab.rs). The cfg flags switch both
# mapcache and crossbeam-epoch onto loom's atomics.
LOOM_ENV := RUSTFLAGS="--cfg loom --cfg crossbeam_loom" CARGO_TARGET_DIR=$(LOOM_TARGET_DIR) \
  LOOM_MAX_PREEMPTIONS=3
test-loom:
	@echo "== loom: a second build of mapcache and its dependencies, with loom, under"
	@echo "   --cfg loom in target/loom: about 2 minutes on a fresh clone of a 2-core"
	@echo "   machine (1 min 48 s measured), seconds after. Then the models run one at a"
	@echo "   time, about 30 seconds."
	$(LOOM_ENV) $(CARGO) test --release --test loom -- --test-threads=1
	$(LOOM_ENV) $(CARGO) test --release --lib loom_tests -- --test-threads=1

bench-rust:
	for b in $(RUST_BENCHES); do $(CARGO) bench -p mapcache-bench --bench $$b; done

# The concurrency and reclamation suites at 20x (50M churn operations); the
# snapshot round trip at 10M entries and its long differential fuzz run.
stress-rust:
	MAPCACHE_STRESS=1 $(CARGO) test --release --test concurrency --test reclamation
	MAPCACHE_STRESS=1 $(CARGO) test --release --test snapshot --test snapshot_hostile
