# The READMEs' commands, run as pasted (tests/packaging/test_readme.py): the
# Quick start of README.md (Rust, C, Python, Go) and the Building section of
# bindings/go/README.md, each subsection in a fresh directory outside the
# repository. pip builds the Python package with build isolation, as for any
# user; its build tools come from a wheelhouse filled from PyPI once
# (target/pip-wheelhouse), so that later runs need no network.

README_WHEELHOUSE := $(ROOT)/target/pip-wheelhouse

.PHONY: test-readme
TEST_TARGETS += test-readme

$(README_WHEELHOUSE)/.filled: $(ROOT)/mk/readme.mk $(ROOT)/bindings/python/pyproject.toml | $(PY)
	rm -rf $(README_WHEELHOUSE) && mkdir -p $(README_WHEELHOUSE)
	$(PIP) download --only-binary=:all: -d $(README_WHEELHOUSE) $(PY_BUILD_REQUIRES)
	touch $@

test-readme: lib $(README_WHEELHOUSE)/.filled
	$(PYTHON) $(ROOT)/tests/packaging/test_readme.py --wheelhouse $(README_WHEELHOUSE) --expect Ada; \
	  root=$$?; \
	  $(PYTHON) $(ROOT)/tests/packaging/test_readme.py --readme $(ROOT)/bindings/go/README.md --section '## Building'; \
	  go=$$?; test $$root = 0 -a $$go = 0
