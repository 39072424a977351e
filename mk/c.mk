# C ABI: header freshness, the C test suites (shared and static, natively and
# under valgrind),
# the C demo host, and the FFI overhead benchmark.

C_BUILD := $(ROOT)/target/c
C_INCLUDE := $(ROOT)/include
CC ?= cc
C_STRICT := -std=c11 -Wall -Wextra -Werror -pedantic
C_FLAGS := $(C_STRICT) -O1 -g -pthread -I$(C_INCLUDE) -D_POSIX_C_SOURCE=200809L
# What libmapcache.a needs from the system (cargo rustc --release --lib
# --crate-type staticlib -- --print native-static-libs).
C_STATIC_LIBS := -lpthread -ldl -lm -lrt -lutil -lgcc_s -lc
C_SHARED_LINK := -L$(LIB_DIR) -lmapcache -Wl,-rpath,$(LIB_DIR)
C_STATIC_LINK := $(LIB_DIR)/libmapcache.a $(C_STATIC_LIBS)
C_TEST_SRC := $(ROOT)/tests/c/test_mapcache.c
C_CACHE_SRC := $(ROOT)/tests/c/test_cache.c
C_SNAPSHOT_SRC := $(ROOT)/tests/c/test_snapshot.c
C_LEAK_SRC := $(ROOT)/tests/c/leak_check.c
C_DEMO_SRC := $(ROOT)/examples/c/demo.c
# --fair-sched=yes: valgrind runs one thread at a time, and its default lock lets
# a thread keep running for long stretches, so two "simultaneous" writers may
# never interleave and the exclusive-mode hammer test then sees no collision
# (1 run in 3 failed that way); round-robin scheduling interleaves them.
# No suppression file: a correct host must run clean with default leak checking
# ("possibly lost" included), without carrying suppressions of its own.
VALGRIND_FLAGS := --fair-sched=yes --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --child-silent-after-fork=yes

# The million create/free cycles of test_stale_handles_after_reuse run in the
# native runs; under valgrind (six minutes a million) 20,000 of them, which reuse
# the same slots as often as valgrind can tell apart.
VALGRIND_STALE := MAPCACHE_STALE_CYCLES=20000

# Two messages in the C suite's output are the tests working, not failures; say
# so before each run, so that a newcomer does not read them as crashes.
define C_EXPECTED_OUTPUT
	@echo "   Expected in this output, from tests that pass:"
	@echo "   - \"thread '<unnamed>' panicked at src/ffi/debug.rs ... deliberate test panic\":"
	@echo "     test_internal_error panics inside the library on purpose and checks that the"
	@echo "     panic stops at the C boundary (MAPCACHE_E_INTERNAL);"
	@echo "   - \"fatal error: concurrent map writes: 'abort-collider' collided with ...\":"
	@echo "     test_misuse_abort_policy's forked child aborts on purpose (MISUSE_ABORT),"
	@echo "     and the parent checks that it died of SIGABRT."
endef

.PHONY: header test-header test-c demo-c bench-ffi valgrind-installed stress-c
TEST_TARGETS += test-c
STRESS_TARGETS += stress-c
DEMO_TARGETS += demo-c
BENCH_TARGETS += bench-ffi

# Regenerates include/mapcache.h from src/ffi/ with cbindgen.toml.
header:
	MAPCACHE_BLESS=1 $(CARGO) test --release --test header

# Fails when the committed header differs from a fresh generation.
test-header:
	$(CARGO) test --release --test header

valgrind-installed:
	@command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)

$(C_BUILD):
	mkdir -p $(C_BUILD)

# The suites (test_mapcache.c: the map's ABI; test_cache.c: the cache features;
# test_snapshot.c: save and load),
# built against the header, linked once against each library; and a minimal
# correct host (leak_check.c), which must show no leak of any kind but "still
# reachable". The suites run natively first, then under valgrind. Each of the
# fourteen runs, even after another failed; the target fails
# at the end, naming the runs that failed.
C_FAILED := $(C_BUILD)/failed-runs
test-c: lib test-header valgrind-installed | $(C_BUILD)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_mapcache_shared $(C_TEST_SRC) $(C_SHARED_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_mapcache_static $(C_TEST_SRC) $(C_STATIC_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_cache_shared $(C_CACHE_SRC) $(C_SHARED_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_cache_static $(C_CACHE_SRC) $(C_STATIC_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_snapshot_shared $(C_SNAPSHOT_SRC) $(C_SHARED_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_snapshot_static $(C_SNAPSHOT_SRC) $(C_STATIC_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/leak_check_shared $(C_LEAK_SRC) $(C_SHARED_LINK)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/leak_check_static $(C_LEAK_SRC) $(C_STATIC_LINK)
	@rm -f $(C_FAILED)
	@echo "== the three suites natively, linked against each library (threads really in parallel)"
	RUST_BACKTRACE=0 $(C_BUILD)/test_mapcache_shared || echo "C suite, libmapcache.so, native" >> $(C_FAILED)
	RUST_BACKTRACE=0 $(C_BUILD)/test_mapcache_static || echo "C suite, libmapcache.a, native" >> $(C_FAILED)
	RUST_BACKTRACE=0 $(C_BUILD)/test_cache_shared || echo "C cache suite, libmapcache.so, native" >> $(C_FAILED)
	RUST_BACKTRACE=0 $(C_BUILD)/test_cache_static || echo "C cache suite, libmapcache.a, native" >> $(C_FAILED)
	RUST_BACKTRACE=0 $(C_BUILD)/test_snapshot_shared || echo "C snapshot suite, libmapcache.so, native" >> $(C_FAILED)
	RUST_BACKTRACE=0 $(C_BUILD)/test_snapshot_static || echo "C snapshot suite, libmapcache.a, native" >> $(C_FAILED)
	@echo "== minimal host, linked against libmapcache.so and libmapcache.a, under valgrind"
	RUST_BACKTRACE=0 valgrind $(VALGRIND_FLAGS) $(C_BUILD)/leak_check_shared || echo "leak check, libmapcache.so" >> $(C_FAILED)
	RUST_BACKTRACE=0 valgrind $(VALGRIND_FLAGS) $(C_BUILD)/leak_check_static || echo "leak check, libmapcache.a" >> $(C_FAILED)
	@echo "== C suite, linked against libmapcache.so, under valgrind"
	$(C_EXPECTED_OUTPUT)
	RUST_BACKTRACE=0 $(VALGRIND_STALE) valgrind $(VALGRIND_FLAGS) $(C_BUILD)/test_mapcache_shared || echo "C suite, libmapcache.so" >> $(C_FAILED)
	@echo "== C suite, linked against libmapcache.a, under valgrind"
	$(C_EXPECTED_OUTPUT)
	RUST_BACKTRACE=0 $(VALGRIND_STALE) valgrind $(VALGRIND_FLAGS) $(C_BUILD)/test_mapcache_static || echo "C suite, libmapcache.a" >> $(C_FAILED)
	@echo "== C cache suite, linked against libmapcache.so, under valgrind"
	RUST_BACKTRACE=0 valgrind $(VALGRIND_FLAGS) $(C_BUILD)/test_cache_shared || echo "C cache suite, libmapcache.so" >> $(C_FAILED)
	@echo "== C cache suite, linked against libmapcache.a, under valgrind"
	RUST_BACKTRACE=0 valgrind $(VALGRIND_FLAGS) $(C_BUILD)/test_cache_static || echo "C cache suite, libmapcache.a" >> $(C_FAILED)
	@echo "== C snapshot suite, linked against libmapcache.so, under valgrind"
	RUST_BACKTRACE=0 valgrind $(VALGRIND_FLAGS) $(C_BUILD)/test_snapshot_shared || echo "C snapshot suite, libmapcache.so" >> $(C_FAILED)
	@echo "== C snapshot suite, linked against libmapcache.a, under valgrind"
	RUST_BACKTRACE=0 valgrind $(VALGRIND_FLAGS) $(C_BUILD)/test_snapshot_static || echo "C snapshot suite, libmapcache.a" >> $(C_FAILED)
	@if test -s $(C_FAILED); then echo "test-c: FAILED:"; sed 's/^/  /' $(C_FAILED); exit 1; fi

# The snapshot suite natively, with its 10M-entry and largest-value round trips
# (MAPCACHE_STRESS=1; under valgrind they would take hours).
stress-c: lib | $(C_BUILD)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/test_snapshot_shared $(C_SNAPSHOT_SRC) $(C_SHARED_LINK)
	MAPCACHE_STRESS=1 $(C_BUILD)/test_snapshot_shared

demo-c: lib | $(C_BUILD)
	$(CC) $(C_FLAGS) -o $(C_BUILD)/demo $(C_DEMO_SRC) $(C_SHARED_LINK)
	$(C_BUILD)/demo

bench-ffi: lib
	$(CARGO) bench -p mapcache-bench --bench ffi
