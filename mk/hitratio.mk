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
# the two that check ../shared/traces itself (named the_traces_readme_...),
# which a trace added there without an anchor table or a format would fail.

HITRATIO_TRACES ?= $(ROOT)/../shared/traces

.PHONY: hitratio hitratio-trace test-hitratio test-hitratio-unit
TEST_TARGETS += test-hitratio-unit
hitratio:
	$(CARGO) run --release -p hitratio -- --traces $(HITRATIO_TRACES) --out $(ROOT)/docs

test-hitratio:
	HITRATIO_TRACES=$(HITRATIO_TRACES) $(CARGO) test --release -p hitratio

test-hitratio-unit:
	$(CARGO) test --release -p hitratio --lib --test cli -- --skip the_traces_readme_

# A trace of your own (any name, gzip-compressed or not) through mapcache beside
# the exact LRU (and the anchors of a README.md beside it that lists it):
#   make hitratio-trace TRACE=path/to/trace.gz [FORMAT=oltp|lines|u64be]
#        [COMPRESSION=auto|none|gzip] [CAPACITIES=100,1000]
# Without FORMAT, a file that a README.md beside it lists is read in the
# README's format, any other is sniffed from its first 64 KiB (the output says
# which, and why). COMPRESSION=none reads a file that starts with the gzip
# magic bytes as it is (a u64be key can). TRACE is made absolute by the shell,
# quoted, so that a path with spaces stays one path ($(abspath) splits it).
hitratio-trace:
	@test -n "$(TRACE)" || { echo "usage: make hitratio-trace TRACE=FILE [FORMAT=oltp|lines|u64be] [COMPRESSION=auto|none|gzip] [CAPACITIES=N,N,...]"; exit 2; }
	trace='$(subst ','\'',$(TRACE))'; case "$$trace" in /*) ;; *) trace="$$PWD/$$trace" ;; esac; \
	$(CARGO) run --release -p hitratio -- --trace "$$trace" $(if $(FORMAT),--format "$(FORMAT)") $(if $(COMPRESSION),--compression "$(COMPRESSION)") $(if $(CAPACITIES),--capacities "$(CAPACITIES)")
