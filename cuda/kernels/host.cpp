// The kernels of rehash.cu run on the host, one "thread" after another: the
// emulated device of the plugin built without CUDA, which the tests on machines
// without a GPU use. The per-thread steps are rehash.cuh's, the same text the
// GPU runs; only the grid loop and the reduction of the sums differ. A NULL
// `records` means the in-place source: `buckets`, `pool_base`, `pool_len`,
// `bad` (rehash.cuh).
#define MC_HD
#include "rehash.cuh"

static struct mc_source source_of(const uint64_t *records, const uint32_t *chain_starts,
                                  const uint64_t *buckets, uint32_t old_log2,
                                  uint64_t pool_base, uint64_t pool_len, unsigned int *bad) {
  return records ? mc_packed(records, chain_starts)
                 : mc_in_place(buckets, old_log2, pool_base, pool_len, bad);
}

extern "C" void mc_host_count(const uint64_t *records, const uint32_t *chain_starts,
                              const uint64_t *buckets, uint64_t pool_base, uint64_t pool_len,
                              unsigned int *bad, uint32_t old_log2, uint32_t new_log2,
                              uint32_t *need) {
  struct mc_source s =
      source_of(records, chain_starts, buckets, old_log2, pool_base, pool_len, bad);
  for (uint64_t j = 0; j < (1ull << new_log2); j++)
    need[j] = mc_count_one(j, &s, old_log2, new_log2);
}

extern "C" void mc_host_source_sum(const uint64_t *buckets, uint64_t n, uint64_t *sums) {
  struct mc_source s = mc_in_place(buckets, 0, 0, 0, 0);
  struct mc_sum sum = {0, 0, 0, 0};
  for (uint64_t b = 0; b < n; b++) mc_add_bucket(&s, buckets + b * MC_BUCKET_WORDS, &sum);
  sums[0] += sum.entries;
  sums[1] += sum.slot_sum;
  sums[2] += sum.frag_sum;
  sums[3] += sum.tophash_sum;
}

extern "C" void mc_host_scan_sums(const uint32_t *values, uint64_t n, uint64_t chunk,
                                  uint32_t *sums, uint64_t chunks) {
  for (uint64_t t = 0; t < chunks; t++) mc_scan_sum(t, values, n, chunk, sums);
}

extern "C" void mc_host_scan_apply(uint32_t *values, uint64_t n, uint64_t chunk,
                                   const uint32_t *bases, uint64_t chunks, uint64_t *total) {
  for (uint64_t t = 0; t < chunks; t++) {
    uint32_t end = mc_scan_apply(t, values, n, chunk, bases ? bases[t] : 0);
    if (!bases) *total = end;
  }
}

extern "C" void mc_host_fill(const uint64_t *records, const uint32_t *chain_starts,
                             const uint64_t *buckets, uint64_t old_pool_base,
                             uint64_t old_pool_len, unsigned int *bad, uint32_t old_log2,
                             uint32_t new_log2, const uint32_t *starts, uint64_t *main_out,
                             uint64_t *pool_out, uint64_t pool_base, uint64_t *sums) {
  struct mc_source s =
      source_of(records, chain_starts, buckets, old_log2, old_pool_base, old_pool_len, bad);
  struct mc_sum sum = {0, 0, 0, 0};
  for (uint64_t j = 0; j < (1ull << new_log2); j++)
    mc_fill_one(j, &s, old_log2, new_log2, starts[j], main_out, pool_out, pool_base, &sum);
  sums[0] += sum.entries;
  sums[1] += sum.slot_sum;
  sums[2] += sum.frag_sum;
  sums[3] += sum.tophash_sum;
}
