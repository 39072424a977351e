// The rehash kernels: one thread per new bucket (count, fill), per old bucket
// (the in-place source's sum) or per chunk of the prefix sum (see rehash.cuh,
// whose per-thread steps they run). Compiled by nvcc to PTX (compute_90, which
// a CUDA 13.0 driver loads) and to an sm_90 cubin by `make cuda`; the plugin
// loads them by these unmangled names. The fake driver of the no-GPU tests
// (cuda/stub/fake_driver.cpp) compiles this very file for the host and runs
// its kernels thread by thread.
#include "rehash.cuh"

// Adds one thread's sums into `sums` (four words). Wrapping sums, so the result
// does not depend on the order.
__device__ static inline void mc_reduce(struct mc_sum sum, unsigned long long *sums) {
  uint64_t v[4] = {sum.entries, sum.slot_sum, sum.frag_sum, sum.tophash_sum};
#ifdef __CUDA_ARCH__
  // One atomic per warp and sum: the warp's lanes add theirs first.
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

extern "C" __global__ void mc_count(const uint64_t *source, const uint32_t *chain_starts,
                                    uint32_t old_log2, uint32_t new_log2, uint32_t *need) {
  uint64_t j = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  struct mc_source s = mc_packed(source, chain_starts);
  if (j < (1ull << new_log2)) need[j] = mc_count_one(j, &s, old_log2, new_log2);
}

// The count over the in-place source (rehash.cuh): `buckets` holds the old
// main buckets, then the old pool's `pool_len` buckets at host address
// `pool_base`; `*bad` is set if a chain leaves the pool.
extern "C" __global__ void mc_count_in_place(const uint64_t *buckets, uint32_t old_log2,
                                             uint64_t pool_base, uint64_t pool_len,
                                             unsigned int *bad, uint32_t new_log2,
                                             uint32_t *need) {
  uint64_t j = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  struct mc_source s = mc_in_place(buckets, old_log2, pool_base, pool_len, bad);
  if (j < (1ull << new_log2)) need[j] = mc_count_one(j, &s, old_log2, new_log2);
}

// The sums over every bucket of the in-place source, one thread per bucket, in
// address order and not by chain: the reference the fill's sums are checked
// against, computed without the chain walk the fill makes.
extern "C" __global__ void mc_source_sum(const uint64_t *buckets, uint64_t n,
                                         unsigned long long *sums) {
  uint64_t b = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  struct mc_source s = mc_in_place(buckets, 0, 0, 0, 0);
  struct mc_sum sum = {0, 0, 0, 0};
  if (b < n) mc_add_bucket(&s, buckets + b * MC_BUCKET_WORDS, &sum);
  mc_reduce(sum, sums);
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
  struct mc_source s = mc_packed(source, chain_starts);
  struct mc_sum sum = {0, 0, 0, 0};
  if (j < end && j < (1ull << new_log2))
    mc_fill_one(j, &s, old_log2, new_log2, starts[j], main_out, pool_out, pool_base, &sum);
  mc_reduce(sum, sums);
}

// mc_fill over the in-place source (its first five parameters are
// mc_count_in_place's).
extern "C" __global__ void mc_fill_in_place(const uint64_t *buckets, uint32_t old_log2,
                                            uint64_t old_pool_base, uint64_t old_pool_len,
                                            unsigned int *bad, uint32_t new_log2,
                                            const uint32_t *starts, uint64_t *main_out,
                                            uint64_t *pool_out, uint64_t pool_base,
                                            unsigned long long *sums, uint64_t first,
                                            uint64_t end) {
  uint64_t j = first + (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  struct mc_source s = mc_in_place(buckets, old_log2, old_pool_base, old_pool_len, bad);
  struct mc_sum sum = {0, 0, 0, 0};
  if (j < end && j < (1ull << new_log2))
    mc_fill_one(j, &s, old_log2, new_log2, starts[j], main_out, pool_out, pool_base, &sum);
  mc_reduce(sum, sums);
}
