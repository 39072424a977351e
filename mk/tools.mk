# The test tools' own tests: the doctests of tests/run_suites.py (how `make
# test` counts each runner's results) and tests/packaging/test_readme.py (how
# a README's shell blocks become commands).

.PHONY: test-tools
TEST_TARGETS += test-tools

test-tools:
	for f in $(ROOT)/tests/run_suites.py $(ROOT)/tests/packaging/test_readme.py; do \
	  echo "doctest $$f"; $(PYTHON) -m doctest -v $$f | grep -E '^[0-9]+ passed and|^\*\*\*|^Test passed|^Failed example' ; done
