# Hit ratio on real traces, through the real cache (issue 11): replays every trace
# of ../shared/traces and the synthetic Zipf workloads through mapcache::Map,
# beside an exact LRU and the anchors of the traces README, and regenerates
# docs/hitratio.md and docs/hitratio/*.svg. A workspace member of its own
# (tools/hitratio), so that its plotting dependency stays out of the library,
# the demo and the other suites (it is compiled for this target and for
# test-hitratio-unit).
# Not part of `make test`; the harness's own tests: `make test-hitratio`, of which
# the unit tests (the trace reader, where a hostile trace meets the harness, and
# the report) are part of `make test` as `test-hitratio-unit`: every test but
# the one that checks ../shared/traces itself, which a trace added there without
# an anchor table would fail.

HITRATIO_TRACES ?= $(ROOT)/../shared/traces

.PHONY: hitratio hitratio-trace test-hitratio test-hitratio-unit
TEST_TARGETS += test-hitratio-unit
hitratio:
	$(CARGO) run --release -p hitratio -- --traces $(HITRATIO_TRACES) --out $(ROOT)/docs

test-hitratio:
	HITRATIO_TRACES=$(HITRATIO_TRACES) $(CARGO) test --release -p hitratio

test-hitratio-unit:
	$(CARGO) test --release -p hitratio --lib --test cli -- --skip the_traces_readme_has_a_full_table_for_every_trace

# A trace of your own (any name, gzip-compressed or not) through mapcache beside
# the exact LRU (and the anchors of a README.md beside it that lists it):
#   make hitratio-trace TRACE=path/to/trace.gz [FORMAT=oltp|lines|u64be] [CAPACITIES=100,1000]
# Without FORMAT, a file the traces README lists is read in its format, any
# other is sniffed from its first 64 KiB (the output says which).
hitratio-trace:
	@test -n "$(TRACE)" || { echo "usage: make hitratio-trace TRACE=FILE [FORMAT=oltp|lines|u64be] [CAPACITIES=N,N,...]"; exit 2; }
	$(CARGO) run --release -p hitratio -- --trace "$(abspath $(TRACE))" $(if $(FORMAT),--format "$(FORMAT)") $(if $(CAPACITIES),--capacities "$(CAPACITIES)")
