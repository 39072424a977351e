// The rehash kernels: one thread per new bucket (count, fill) or per chunk of
// the prefix sum (see rehash.cuh, whose per-thread steps they run). Compiled by
// nvcc to PTX (compute_90, which a CUDA 13.0 driver loads) and to an sm_90 cubin
// by `make cuda`; the plugin loads them by these unmangled names. The fake
// driver of the no-GPU tests (cuda/stub/fake_driver.cpp) compiles this very
// file for the host and runs its kernels thread by thread.
#include "rehash.cuh"

extern "C" __global__ void mc_count(const uint64_t *source, const uint32_t *chain_starts,
                                    uint32_t old_log2, uint32_t new_log2, uint32_t *need) {
  uint64_t j = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (j < (1ull << new_log2)) need[j] = mc_count_one(j, source, chain_starts, old_log2, new_log2);
}

extern "C" __global__ void mc_scan_sums(const uint32_t *values, uint64_t n, uint64_t chunk,
                                        uint32_t *sums, uint64_t chunks) {
  uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t < chunks) mc_scan_sum(t, values, n, chunk, sums);
}

// `bases` is the level above, already an exclusive prefix sum; NULL at the top
// level (one chunk, base 0), where `total` receives the sum of everything.
extern "C" __global__ void mc_scan_apply(uint32_t *values, uint64_t n, uint64_t chunk,
                                         const uint32_t *bases, uint64_t chunks,
                                         unsigned long long *total) {
  uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= chunks) return;
  uint32_t end = mc_scan_apply(t, values, n, chunk, bases ? bases[t] : 0);
  if (!bases) *total = end;
}

// New buckets `first` to `end` (all of them, or one chunk of the chunked
// copy-out: the image of buckets [first, end) and of their pool buckets is
// complete when this launch is).
extern "C" __global__ void mc_fill(const uint64_t *source, const uint32_t *chain_starts,
                                   uint32_t old_log2, uint32_t new_log2, const uint32_t *starts,
                                   uint64_t *main_out, uint64_t *pool_out, uint64_t pool_base,
                                   unsigned long long *sums, uint64_t first, uint64_t end) {
  uint64_t j = first + (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  struct mc_sum sum = {0, 0, 0, 0};
  if (j < end && j < (1ull << new_log2))
    mc_fill_one(j, source, chain_starts, old_log2, new_log2, starts[j], main_out, pool_out,
                pool_base, &sum);
  uint64_t v[4] = {sum.entries, sum.slot_sum, sum.frag_sum, sum.tophash_sum};
#ifdef __CUDA_ARCH__
  // One atomic per warp and sum: the warp's lanes add theirs first. Wrapping
  // sums, so the result does not depend on the order.
  for (int k = 0; k < 4; k++) {
    for (int offset = 16; offset > 0; offset /= 2) v[k] += __shfl_down_sync(0xffffffffu, v[k], offset);
  }
  if ((threadIdx.x & 31) == 0) {
    for (int k = 0; k < 4; k++) {
      if (v[k]) atomicAdd(&sums[k], (unsigned long long)v[k]);
    }
  }
#else
  // The fake driver (cuda/stub/fake_driver.cpp) runs one thread at a time.
  for (int k = 0; k < 4; k++) sums[k] += v[k];
#endif
}
