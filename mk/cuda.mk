# The GPU rehash engine (cuda/): the plugin libmapcache_cuda.so, its kernels,
# and the bundle cuda/gpu-check.sh runs on a GPU machine. None of it is needed by
# the core: `cargo build`, `make test` and `make demo` never compile CUDA.
#
#   make cuda             the plugin, built with CUDA, on any machine: nvcc from a
#                         CUDA toolkit if one is on PATH, else the pinned pip wheels
#                         (installed into target/cuda-toolchain); linked against a
#                         stub libcuda.so (the driver is loaded at run time).
#                         The plugin and the gpu-check bundle land in
#                         target/cuda/gpu-check/. (Not in target/release: there
#                         the workspace's tests build the plugin without CUDA,
#                         under the same name; that one refuses to open for a
#                         host.) Copy it beside libmapcache.so, or name it in the
#                         config's gpu plugin path. Ends by loading the plugin
#                         with the stub as the driver (cuda-smoke) and running
#                         it on a fake driver (cuda-fake-device: the kernels on
#                         the host, the plugin's whole device path exercised).
#   make test-cuda        the plugin's tests on its emulated device (no GPU, no
#                         CUDA: the same kernel source compiled for the host).
#   make gpu-check        runs cuda/gpu-check.sh on this machine (needs a GPU).
#   make gpu-check-dry    the same script without a GPU, on the emulated plugin;
#   make gpu-check-fake   and on the CUDA-built plugin over the fake driver.

CUDA_OUT := $(ROOT)/target/cuda
CUDA_TOOLCHAIN := $(ROOT)/target/cuda-toolchain
CUDA_WHEELS := nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
# A toolkit's nvcc if there is one, else the wheels'. Newer nvcc emits PTX the
# R580 driver (CUDA 13.0) cannot load: the wheels are pinned to 13.0.
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(CUDA_TOOLCHAIN)/nvidia/cu13/bin/nvcc)
CUDA_KERNELS := $(CUDA_OUT)/kernels
CUDA_STUB := $(CUDA_OUT)/stub
# Its own target directory: the workspace's (target/release) holds the plugin
# built without CUDA, for the tests.
CUDA_TARGET_DIR := $(CUDA_OUT)/build
GPU_CHECK_DIR := $(CUDA_OUT)/gpu-check
GPU_CHECK_BINS := gpu-equivalence gpu-faults gpu-bench

.PHONY: cuda cuda-smoke cuda-fake-driver cuda-fake-device cuda-toolchain cuda-kernels cuda-stub test-cuda gpu-check gpu-check-dry gpu-check-fake gpu-artifacts
TEST_TARGETS += test-cuda

$(CUDA_TOOLCHAIN)/.installed:
	@echo "== no nvcc on PATH: installing the pinned CUDA 13.0 wheels into $(CUDA_TOOLCHAIN)"
	$(PYTHON) -m pip install --quiet --no-deps --target $(CUDA_TOOLCHAIN) $(CUDA_WHEELS)
	touch $@

cuda-toolchain:
	@if [ "$(NVCC)" = "$(CUDA_TOOLCHAIN)/nvidia/cu13/bin/nvcc" ]; then \
	  $(MAKE) --no-print-directory $(CUDA_TOOLCHAIN)/.installed; fi
	@echo "nvcc: $(NVCC) ($$($(NVCC) --version | tail -1))"

# PTX for compute_90 (JIT-compiled by the driver for any GPU from sm_90 up) and
# SASS for sm_90 (H100/H200), both embedded in the plugin.
cuda-kernels: cuda-toolchain
	mkdir -p $(CUDA_KERNELS)
	$(NVCC) -ptx -arch=compute_90 -o $(CUDA_KERNELS)/rehash.ptx $(ROOT)/cuda/kernels/rehash.cu
	$(NVCC) -cubin -arch=sm_90 -o $(CUDA_KERNELS)/rehash.cubin $(ROOT)/cuda/kernels/rehash.cu

# A libcuda.so with every driver entry point returning CUDA_ERROR_STUB_LIBRARY,
# SONAME libcuda.so.1: cust_raw links against it; at run time the real driver
# (which the core dlopens first) provides the symbols.
cuda-stub:
	mkdir -p $(CUDA_STUB)/lib64
	grep -v '^#' $(ROOT)/cuda/stub/libcuda.symbols | sed 's/.*/int &(void) { return 34; }/' > $(CUDA_STUB)/stub.c
	$(CC) -shared -fPIC -Wl,-soname,libcuda.so.1 -o $(CUDA_STUB)/lib64/libcuda.so $(CUDA_STUB)/stub.c

cuda: cuda-kernels cuda-stub
	CUDA_LIBRARY_PATH=$(CUDA_STUB) MAPCACHE_CUDA_KERNELS=$(CUDA_KERNELS) CARGO_TARGET_DIR=$(CUDA_TARGET_DIR) \
	  $(CARGO) build --release -p mapcache-cuda --features cuda
	CUDA_LIBRARY_PATH=$(CUDA_STUB) MAPCACHE_CUDA_KERNELS=$(CUDA_KERNELS) CARGO_TARGET_DIR=$(CUDA_TARGET_DIR) \
	  $(CARGO) clippy --release -p mapcache-cuda --features cuda -- -D warnings
	$(MAKE) --no-print-directory gpu-artifacts cuda-smoke cuda-fake-device
	@echo "== built $(GPU_CHECK_DIR)/libmapcache_cuda.so (and the gpu-check bundle there)"

# A fake driver (cuda/stub/fake_driver.cpp: host memory, rehash.cu's kernels run
# thread by thread over each launch's grid) as libcuda.so.1, the rest of the
# driver API from the stub's list.
CUDA_FAKE := $(CUDA_OUT)/fake-driver
cuda-fake-driver:
	mkdir -p $(CUDA_FAKE)
	grep -oE '^CUresult cu[A-Za-z0-9_]+' $(ROOT)/cuda/stub/fake_driver.cpp | sed 's/^CUresult //' | sort -u > $(CUDA_FAKE)/defined.txt
	grep -v '^#' $(ROOT)/cuda/stub/libcuda.symbols | grep -vxF -f $(CUDA_FAKE)/defined.txt \
	  | sed 's/.*/int &(void) { return 34; }/' > $(CUDA_FAKE)/rest.c
	$(CC) -c -fPIC -O1 -o $(CUDA_FAKE)/rest.o $(CUDA_FAKE)/rest.c
	$(CXX) -shared -fPIC -O2 -std=c++14 -Wall -Wextra -Wno-unused-parameter -Wl,-soname,libcuda.so.1 \
	  -o $(CUDA_FAKE)/libcuda.so.1 $(ROOT)/cuda/stub/fake_driver.cpp $(CUDA_FAKE)/rest.o

# The plugin built with CUDA, on the fake driver: its whole device path
# (context, module, pinned staging, copies, each launch's arguments and grid,
# the scan's levels, the copy-out) must give the reference image, and a map
# must grow on it with every rebuild on the "GPU"; then the chunked copy-out
# (two streams and their events) under several of the fake driver's random
# schedules (FAKE_CUDA_SEED), which run one stream's work before another's
# wherever nothing orders them; then the plugin's error paths, driver calls
# failing in the middle of its queue (FAKE_CUDA_FAIL): the fake aborts if a
# call returns with work queued or unregisters memory a queued copy uses; and
# the benchmark's transfer knob, overriding the environment's settings
# (cuda/stub/transfer-knob-check.sh).
cuda-fake-device: cuda-fake-driver
	LD_LIBRARY_PATH=$(CUDA_FAKE) $(GPU_CHECK_DIR)/gpu-equivalence --sizes 1000,10k,100k,1M
	LD_LIBRARY_PATH=$(CUDA_FAKE) MAPCACHE_CUDA_FAULT=none $(GPU_CHECK_DIR)/gpu-faults
	LD_LIBRARY_PATH=$(CUDA_FAKE) MAPCACHE_CUDA_REGISTER_OUTPUT=1 $(GPU_CHECK_DIR)/gpu-equivalence --sizes 1000,100k
	for seed in 1 2 3; do \
	  LD_LIBRARY_PATH=$(CUDA_FAKE) FAKE_CUDA_SEED=$$seed MAPCACHE_CUDA_CHUNKS=$$((seed * 3)) \
	    $(GPU_CHECK_DIR)/gpu-equivalence --sizes 1000,100k; done
	LD_LIBRARY_PATH=$(CUDA_FAKE) FAKE_CUDA_SEED=4 MAPCACHE_CUDA_CHUNKS=64 MAPCACHE_CUDA_REGISTER_OUTPUT=1 \
	  $(GPU_CHECK_DIR)/gpu-equivalence --sizes 1000,100k
	LD_LIBRARY_PATH=$(CUDA_FAKE) FAKE_CUDA_SEED=5 MAPCACHE_CUDA_CHUNKS=5 MAPCACHE_CUDA_REGISTER_INPUT=1 \
	  MAPCACHE_CUDA_REGISTER_OUTPUT=1 $(GPU_CHECK_DIR)/gpu-equivalence --sizes 300k
	LD_LIBRARY_PATH=$(CUDA_FAKE) MAPCACHE_CUDA_FAULT=none MAPCACHE_GPU_SOURCE=in-place $(GPU_CHECK_DIR)/gpu-faults
	$(ROOT)/cuda/stub/transfer-knob-check.sh $(GPU_CHECK_DIR) $(CUDA_FAKE)
	for fail in cuMemcpyDtoHAsync_v2:7 cuMemcpyDtoHAsync_v2:11 cuMemcpyHtoDAsync_v2:3 \
	    cuLaunchKernel:9 cuEventRecord:5 cuStreamWaitEvent:6 cuStreamSynchronize:4 cuMemsetD8Async:3; do \
	  for reg in 0 1; do LD_LIBRARY_PATH=$(CUDA_FAKE) FAKE_CUDA_FAIL=$$fail MAPCACHE_CUDA_FAULT=fake-driver \
	    MAPCACHE_CUDA_CHUNKS=8 MAPCACHE_CUDA_REGISTER_OUTPUT=$$reg MAPCACHE_CUDA_REGISTER_INPUT=$$reg \
	    MAPCACHE_GPU_SOURCE=$$([ $$reg = 1 ] && echo in-place || echo packed) \
	    $(GPU_CHECK_DIR)/gpu-faults | cut -c1-200; done; done

# The built plugin loads as a host loads it (driver first, then the plugin,
# its symbols, its table, its context): with the stub standing in for the
# driver, the context's cuInit must be what fails, and be reported.
cuda-smoke:
	mkdir -p $(CUDA_STUB)/as-driver
	ln -sf ../lib64/libcuda.so $(CUDA_STUB)/as-driver/libcuda.so.1
	@out=$$(LD_LIBRARY_PATH=$(CUDA_STUB)/as-driver $(GPU_CHECK_DIR)/gpu-equivalence --sizes 1000 || true); \
	  echo "$$out"; \
	  case "$$out" in *"UNAVAILABLE (no CUDA device: cuInit: CUDA_ERROR_STUB_LIBRARY"*) ;; \
	    *) echo "cuda-smoke: the plugin did not load and fail at cuInit on the stub driver"; exit 1;; esac

# What cuda/gpu-check.sh needs on a machine with a GPU and no Rust: the plugin,
# the kernels, the check programs (which load the plugin as libmapcache.so
# does, and start without a driver) and the script.
gpu-artifacts:
	$(CARGO) build --release -p mapcache-gpu-check
	mkdir -p $(GPU_CHECK_DIR)/kernels
	cp $(CUDA_TARGET_DIR)/release/libmapcache_cuda.so $(GPU_CHECK_DIR)/
	cp $(CUDA_KERNELS)/rehash.ptx $(CUDA_KERNELS)/rehash.cubin $(GPU_CHECK_DIR)/kernels/
	for b in $(GPU_CHECK_BINS); do cp $(ROOT)/target/release/$$b $(GPU_CHECK_DIR)/; done
	cp $(ROOT)/cuda/gpu-check.sh $(GPU_CHECK_DIR)/

test-cuda:
	$(CARGO) test --release -p mapcache-cuda -p mapcache-gpu-check

gpu-check:
	$(GPU_CHECK_DIR)/gpu-check.sh $(GPU_CHECK_DIR)

# The script itself, on the CUDA-built plugin and the fake driver (small sizes).
gpu-check-fake: cuda-fake-driver
	LD_LIBRARY_PATH=$(CUDA_FAKE) EQUIVALENCE_SIZES=1000,100k BENCH_SIZES=100k \
	  $(GPU_CHECK_DIR)/gpu-check.sh $(GPU_CHECK_DIR)

# The script itself, on this machine without a GPU: the programs against the
# plugin built without CUDA (its emulated device), small sizes.
gpu-check-dry: gpu-artifacts
	$(CARGO) build --release -p mapcache-cuda
	GPU_CHECK_PLUGIN=$(LIB_DIR)/libmapcache_cuda.so GPU_CHECK_ARGS=--no-driver MAPCACHE_CUDA_EMULATE=1 \
	  EQUIVALENCE_SIZES=1000,100k,1M BENCH_SIZES=100k,1M \
	  $(ROOT)/cuda/gpu-check.sh $(GPU_CHECK_DIR)
