# Hit ratio on real traces, through the real cache (issue 11): replays every trace
# of ../shared/traces and the synthetic Zipf workloads through mapcache::Map,
# beside an exact LRU and the anchors of the traces README, and regenerates
# docs/hitratio.md and docs/hitratio/*.svg. A workspace member of its own
# (tools/hitratio), so that its plotting dependency is compiled only here.
# Not part of `make test`; the harness's own tests: `make test-hitratio`.

HITRATIO_TRACES ?= $(ROOT)/../shared/traces

.PHONY: hitratio test-hitratio
hitratio:
	$(CARGO) run --release -p hitratio -- --traces $(HITRATIO_TRACES) --out $(ROOT)/docs

test-hitratio:
	HITRATIO_TRACES=$(HITRATIO_TRACES) $(CARGO) test --release -p hitratio
