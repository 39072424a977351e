# Python binding (bindings/python): the ctypes package `mapcache`, installed
# into a virtual environment at .venv (created with --system-site-packages so
# a machine-wide pytest is reused; pytest and cachetools are installed into
# the venv from PyPI when missing). The installed package finds
# target/release/libmapcache.so by walking up from .venv, or MAPCACHE_LIBRARY.

PYTHON ?= python3
PY_VENV := $(ROOT)/.venv
PY := $(PY_VENV)/bin/python
PY_DIR := $(ROOT)/bindings/python
PIP := $(PY) -m pip -q --disable-pip-version-check

.PHONY: python-install test-python demo-python bench-python
TEST_TARGETS += test-python
DEMO_TARGETS += demo-python
BENCH_TARGETS += bench-python

# (Re)install the package from the working tree on every run: a non-editable
# install, so the tests exercise what `pip install ./bindings/python` ships.
python-install:
	@test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(PY_VENV)
	$(PIP) install --force-reinstall --no-deps $(PY_DIR)
	@$(PY) -c 'import pytest' 2>/dev/null || $(PIP) install 'pytest>=7'

test-python: lib python-install
	cd $(PY_DIR) && $(PY) -m pytest -q -p no:cacheprovider tests

demo-python: lib python-install
	$(PY) $(PY_DIR)/examples/demo.py

bench-python: lib python-install
	@$(PY) -c 'import cachetools' 2>/dev/null || $(PIP) install 'cachetools>=5'
	$(PY) $(PY_DIR)/bench.py
