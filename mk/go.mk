# Go binding (bindings/go): vet, gofmt check and race tests; the demo; benchmarks.
#
# The Go package links target/release/libmapcache.a statically (cgo), so every
# Go target depends on `lib`. `go test -tags mapcache_shared` links
# libmapcache.so instead (test-go runs the short tests that way too, and once
# more built with GOEXPERIMENT=cgocheck2). `-tags mapcache_pkgconfig` links an
# installed library through pkg-config; test-install (mk/install.mk) builds a
# module outside the repository that way.

GO ?= go
GO_DIR := $(ROOT)/bindings/go
# Big runs (5M-entry GC benchmark) are only in bench-go.
GO_BENCH_FLAGS ?= -benchmem -cpu 1,2

.PHONY: test-go demo-go bench-go bench-go-gc stress-go
TEST_TARGETS += test-go
DEMO_TARGETS += demo-go
BENCH_TARGETS += bench-go
STRESS_TARGETS += stress-go

# go test -v, without its "=== RUN" lines: one "--- PASS"/"--- FAIL" line per
# test, which `make test` counts.
GO_TEST := $(GO) test -v
GO_TEST_FILTER := grep -v -E '^=== (RUN|PAUSE|CONT|NAME)'

# gofmt, vet (with each link tag), the race tests, the short tests against
# libmapcache.so, and the short tests with strict run-time checks of the cgo
# pointer rules.
test-go: lib
	cd $(GO_DIR) && test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	cd $(GO_DIR) && $(GO) vet ./...
	cd $(GO_DIR) && $(GO) vet -tags mapcache_shared ./...
	cd $(GO_DIR) && $(GO_TEST) -race -count=1 -timeout 600s ./... 2>&1 | $(GO_TEST_FILTER)
	cd $(GO_DIR) && $(GO_TEST) -tags mapcache_shared -count=1 -short -timeout 300s ./... 2>&1 | $(GO_TEST_FILTER)
	cd $(GO_DIR) && GOEXPERIMENT=cgocheck2 $(GO_TEST) -count=1 -short -timeout 300s ./... 2>&1 | $(GO_TEST_FILTER)

demo-go: lib
	cd $(GO_DIR) && $(GO) run -buildvcs=false ./examples/demo

bench-go: lib
	cd $(GO_DIR) && $(GO) test -run '^$$' -bench 'Get|Set|Mix' $(GO_BENCH_FLAGS) -timeout 60m .
	$(MAKE) bench-go-gc

bench-go-gc: lib
	cd $(GO_DIR) && $(GO) test -run '^$$' -bench GC5M -benchtime 3000000x -cpu 2 -timeout 30m .

# Bigger hammering and repeated misuse/close races, under the race detector;
# snapshot round trips of 10M entries and of a MaxValueLen value.
stress-go: lib
	cd $(GO_DIR) && MAPCACHE_GO_STRESS=1 $(GO) test -race -count=5 -run 'Hammer|Exclusive|Close|SnapshotStress' -timeout 30m .
