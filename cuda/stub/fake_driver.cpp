// A fake CUDA driver, libcuda.so.1 for tests on machines without a GPU: the
// driver API calls the plugin makes (cust's and its own), over host memory,
// running the kernels of ../kernels/rehash.cu (compiled here for the host)
// thread by thread, over the grid each launch asks for. With it, the plugin
// built with CUDA runs its whole device path here: context, module, staging,
// copies, every launch with its arguments as marshalled, the scan's levels and
// the copy-out, which the emulated plugin (kernels/host.cpp) does not cover.
// Every other entry point of the stub's list returns CUDA_ERROR_STUB_LIBRARY.
// `make cuda` builds it and runs gpu-equivalence and gpu-faults against it.
#include <cstdint>
#include <cstdlib>
#include <cstring>

struct mc_dim3 {
  unsigned x, y, z;
};
static mc_dim3 blockIdx, blockDim, threadIdx;
#define __global__
#define __host__
#define __device__
#include "../kernels/rehash.cu"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
enum { OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_FOUND = 500 };

typedef void (*Thread)(void **params);

static void count_thread(void **p) {
  mc_count(*(const uint64_t **)p[0], *(const uint32_t **)p[1], *(uint32_t *)p[2],
           *(uint32_t *)p[3], *(uint32_t **)p[4]);
}
static void sums_thread(void **p) {
  mc_scan_sums(*(const uint32_t **)p[0], *(uint64_t *)p[1], *(uint64_t *)p[2],
               *(uint32_t **)p[3], *(uint64_t *)p[4]);
}
static void apply_thread(void **p) {
  mc_scan_apply(*(uint32_t **)p[0], *(uint64_t *)p[1], *(uint64_t *)p[2],
                *(const uint32_t **)p[3], *(uint64_t *)p[4], *(unsigned long long **)p[5]);
}
static void fill_thread(void **p) {
  mc_fill(*(const uint64_t **)p[0], *(const uint32_t **)p[1], *(uint32_t *)p[2],
          *(uint32_t *)p[3], *(const uint32_t **)p[4], *(uint64_t **)p[5], *(uint64_t **)p[6],
          *(uint64_t *)p[7], *(unsigned long long **)p[8]);
}

struct Kernel {
  const char *name;
  Thread thread;
};
static Kernel kernels[] = {{"mc_count", count_thread},
                           {"mc_scan_sums", sums_thread},
                           {"mc_scan_apply", apply_thread},
                           {"mc_fill", fill_thread}};
static int module_token;
static int context_token;
static int stream_token;

extern "C" {
CUresult cuInit(unsigned) { return OK; }
CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0) return INVALID_VALUE;
  *device = 0;
  return OK;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  // 75, 76: compute capability major, minor (9.0: the cubin path).
  *value = attribute == 75 ? 9 : 0;
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(void **ctx, int) {
  *ctx = &context_token;
  return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return OK; }
CUresult cuCtxSetCurrent(void *) { return OK; }
CUresult cuCtxGetCurrent(void **ctx) {
  *ctx = &context_token;
  return OK;
}
CUresult cuModuleLoadDataEx(void **module, const void *, unsigned, void *, void *) {
  *module = &module_token;
  return OK;
}
CUresult cuModuleLoadData(void **module, const void *) {
  *module = &module_token;
  return OK;
}
CUresult cuModuleUnload(void *) { return OK; }
CUresult cuModuleGetFunction(void **function, void *, const char *name) {
  for (auto &k : kernels) {
    if (strcmp(k.name, name) == 0) {
      *function = &k;
      return OK;
    }
  }
  return NOT_FOUND;
}
CUresult cuStreamCreateWithPriority(void **stream, unsigned, int) {
  *stream = &stream_token;
  return OK;
}
CUresult cuStreamDestroy_v2(void *) { return OK; }
CUresult cuStreamSynchronize(void *) { return OK; }
CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) return OUT_OF_MEMORY;
  // Device memory is not zeroed: make any read of an unwritten word visible.
  memset(p, 0xA5, bytes);
  *ptr = (CUdeviceptr)p;
  return OK;
}
CUresult cuMemFree_v2(CUdeviceptr ptr) {
  free((void *)ptr);
  return OK;
}
CUresult cuMemAllocHost_v2(void **ptr, size_t bytes) {
  *ptr = malloc(bytes ? bytes : 1);
  return *ptr ? OK : OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void *ptr) {
  free(ptr);
  return OK;
}
// Registrations, checked: a pointer registered twice, or unregistered
// without being registered, is an error (the plugin must pair them).
static void *registered[16];
CUresult cuMemHostRegister_v2(void *ptr, size_t, unsigned) {
  for (auto &r : registered)
    if (r == ptr) return INVALID_VALUE;
  for (auto &r : registered) {
    if (!r) {
      r = ptr;
      return OK;
    }
  }
  return OUT_OF_MEMORY;
}
CUresult cuMemHostUnregister(void *ptr) {
  for (auto &r : registered) {
    if (r == ptr) {
      r = nullptr;
      return OK;
    }
  }
  return INVALID_VALUE;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t bytes, void *) {
  memcpy((void *)dst, src, bytes);
  return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes, void *) {
  memcpy(dst, (const void *)src, bytes);
  return OK;
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, void *) {
  memset((void *)dst, value, n);
  return OK;
}
CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned, void *, void **params, void **) {
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || !params) return INVALID_VALUE;
  Thread thread = static_cast<Kernel *>(function)->thread;
  blockDim = {bx, 1, 1};
  for (unsigned b = 0; b < gx; b++) {
    blockIdx = {b, 0, 0};
    for (unsigned t = 0; t < bx; t++) {
      threadIdx = {t, 0, 0};
      thread(params);
    }
  }
  return OK;
}
CUresult cuGetErrorName(CUresult, const char **name) {
  *name = "CUDA_ERROR_FAKE";
  return OK;
}
}
