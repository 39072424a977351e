// The rehash's per-thread steps, shared by the CUDA kernels (rehash.cu) and
// their host emulation (host.cpp), so that the algorithm the GPU runs is the one
// the no-GPU tests check, from the same source text.
//
// Mirrors src/table/rehash.rs (the CPU reference) exactly:
//   count  for each new bucket j, the entries whose frag maps to j, from the
//          known sources of j (one old chain when growing or keeping the size,
//          2^(old-new) chains when shrinking), in canonical order;
//   scan   the overflow buckets chain j needs, (count - 1) / 8, prefix-summed
//          into each chain's first pool index (rehash.rs's `starts`);
//   fill   bucket j and its pool buckets, entries in source order into slots
//          0, 1, ...; unused slots all zero (EMPTY_REST, null, frag 0).
//
// Source image, one of two (struct mc_source):
//   packed    records of 13 words (tophash, 8 slot words, 8 frags as 4 words),
//             chain by chain; chain_starts[i] is old main bucket i's first
//             record and chain i's records run to chain_starts[i + 1];
//   in place  the old table's two arrays as they are, copied one after the
//             other: its 2^old_log2 main buckets, then its pool's pool_len
//             buckets (the output layout below); a chain is its main bucket,
//             then the pool buckets its overflow pointers name (host addresses,
//             pool_base + 112 * index). A pointer outside the pool, or a chain
//             longer than the pool (a cycle), sets *bad and ends the chain: the
//             kernels never read outside the copy, whatever the words say.
// Output image: the core's 112-byte bucket, 14 words: tophash, 8 slots, the
// overflow pointer (a host address: pool_base + 112 * index), 8 frags as 4 words.
#pragma once

#include <stdint.h>

#ifndef MC_HD
#define MC_HD __host__ __device__
#endif

#define MC_SLOTS 8
#define MC_SOURCE_WORDS 13
#define MC_BUCKET_WORDS 14
#define MC_BUCKET_BYTES 112

struct mc_sum {
  uint64_t entries, slot_sum, frag_sum, tophash_sum;
};

struct mc_source {
  const uint64_t *records;  // packed; NULL when in place
  const uint32_t *chain_starts;
  const uint64_t *buckets;  // in place: main buckets, then pool buckets
  uint64_t main_len, pool_base, pool_len;
  unsigned int *bad;
};

// Where an old chain's walk is.
struct mc_cursor {
  uint32_t r, end;  // packed: this record, the chain's end
  uint64_t steps;   // in place: pool buckets visited
};

// The word of bucket `rec` that holds frags 0 and 1 (slot words come first in
// both layouts; the in-place bucket has its overflow pointer in between).
MC_HD static inline int mc_frag_word(const struct mc_source *s) {
  return s->records ? 1 + MC_SLOTS : 2 + MC_SLOTS;
}

MC_HD static inline uint32_t mc_frag(const struct mc_source *s, const uint64_t *rec, int i) {
  return (uint32_t)(rec[mc_frag_word(s) + i / 2] >> (32 * (i & 1)));
}

MC_HD static inline void mc_flag(unsigned int *bad) {
#ifdef __CUDA_ARCH__
  atomicOr(bad, 1u);
#else
  *bad = 1;
#endif
}

// The first bucket of old chain `chain`.
MC_HD static inline const uint64_t *mc_first(const struct mc_source *s, uint64_t chain,
                                             struct mc_cursor *c) {
  if (s->records) {
    c->r = s->chain_starts[chain];
    c->end = s->chain_starts[chain + 1];
    return c->r < c->end ? s->records + (uint64_t)c->r * MC_SOURCE_WORDS : 0;
  }
  c->steps = 0;
  return s->buckets + chain * MC_BUCKET_WORDS;
}

// The bucket after `rec` in its chain, or NULL at the chain's end.
MC_HD static inline const uint64_t *mc_next(const struct mc_source *s, const uint64_t *rec,
                                            struct mc_cursor *c) {
  if (s->records) {
    c->r++;
    return c->r < c->end ? s->records + (uint64_t)c->r * MC_SOURCE_WORDS : 0;
  }
  uint64_t next = rec[1 + MC_SLOTS];
  // Another walk found the source bad: stop this one too (a loop would keep
  // every thread walking for as long as the pool is long).
  if (next == 0 || *(volatile unsigned int *)s->bad) return 0;
  uint64_t offset = next - s->pool_base;  // wraps below the pool: caught as too far
  uint64_t index = offset / MC_BUCKET_BYTES;
  if (next < s->pool_base || offset % MC_BUCKET_BYTES != 0 || index >= s->pool_len ||
      ++c->steps > s->pool_len) {
    mc_flag(s->bad);
    return 0;
  }
  return s->buckets + (s->main_len + index) * MC_BUCKET_WORDS;
}

// Adds bucket `rec`'s occupied slots to `sum`.
MC_HD static inline void mc_add_bucket(const struct mc_source *s, const uint64_t *rec,
                                       struct mc_sum *sum) {
  uint64_t word = rec[0];
  for (int i = 0; i < MC_SLOTS; i++) {
    uint64_t tophash = (word >> (8 * i)) & 0xff;
    if (tophash < 2) continue;
    sum->entries++;
    sum->slot_sum += rec[1 + i];
    sum->frag_sum += mc_frag(s, rec, i);
    sum->tophash_sum += tophash;
  }
}

MC_HD static inline int mc_occupied(uint64_t word, int i) {
  return ((word >> (8 * i)) & 0xff) >= 2;
}

// The sources of new bucket j: `count` old chains, `first + k * stride`.
MC_HD static inline void mc_sources(uint64_t j, uint32_t old_log2, uint32_t new_log2,
                                    uint64_t *first, uint64_t *count, uint64_t *stride) {
  if (new_log2 >= old_log2) {
    *first = j & ((1ull << old_log2) - 1);
    *count = 1;
    *stride = 0;
  } else {
    *first = j;
    *count = 1ull << (old_log2 - new_log2);
    *stride = 1ull << new_log2;
  }
}

// Step 1: the overflow buckets new bucket j needs.
MC_HD static inline uint32_t mc_count_one(uint64_t j, const struct mc_source *s,
                                          uint32_t old_log2, uint32_t new_log2) {
  uint64_t new_mask = (1ull << new_log2) - 1, first, count, stride;
  mc_sources(j, old_log2, new_log2, &first, &count, &stride);
  uint64_t n = 0;
  struct mc_cursor c = {0, 0, 0};
  for (uint64_t k = 0; k < count; k++) {
    uint64_t chain = first + k * stride;
    for (const uint64_t *rec = mc_first(s, chain, &c); rec; rec = mc_next(s, rec, &c)) {
      uint64_t word = rec[0];
      for (int i = 0; i < MC_SLOTS; i++) {
        if (mc_occupied(word, i) && ((uint64_t)mc_frag(s, rec, i) & new_mask) == j) n++;
      }
    }
  }
  return n == 0 ? 0 : (uint32_t)((n - 1) / MC_SLOTS);
}

// Step 2, one thread's part of one level: the sum of chunk t of `values`.
MC_HD static inline void mc_scan_sum(uint64_t t, const uint32_t *values, uint64_t n,
                                     uint64_t chunk, uint32_t *sums) {
  uint64_t end = (t + 1) * chunk < n ? (t + 1) * chunk : n;
  uint32_t s = 0;
  for (uint64_t i = t * chunk; i < end; i++) s += values[i];
  sums[t] = s;
}

// Step 2, on the way down: chunk t of `values` made an exclusive prefix sum in
// place, starting from `base` (the prefix of the chunk's sum one level up).
// Returns the chunk's end value.
MC_HD static inline uint32_t mc_scan_apply(uint64_t t, uint32_t *values, uint64_t n,
                                           uint64_t chunk, uint32_t base) {
  uint64_t end = (t + 1) * chunk < n ? (t + 1) * chunk : n;
  uint32_t at = base;
  for (uint64_t i = t * chunk; i < end; i++) {
    uint32_t v = values[i];
    values[i] = at;
    at += v;
  }
  return at;
}

MC_HD static inline void mc_flush(uint64_t *bucket, uint64_t tophash, const uint64_t *slots,
                                  const uint32_t *frags, uint64_t overflow) {
  bucket[0] = tophash;
  for (int i = 0; i < MC_SLOTS; i++) bucket[1 + i] = slots[i];
  bucket[1 + MC_SLOTS] = overflow;
  for (int i = 0; i < MC_SLOTS / 2; i++)
    bucket[2 + MC_SLOTS + i] = (uint64_t)frags[2 * i] | ((uint64_t)frags[2 * i + 1] << 32);
}

// Step 3: new bucket j and its pool buckets, from pool index `start`. Adds
// what it wrote to `sum`.
MC_HD static inline void mc_fill_one(uint64_t j, const struct mc_source *s,
                                     uint32_t old_log2, uint32_t new_log2, uint32_t start,
                                     uint64_t *main_out,
                                     uint64_t *pool_out, uint64_t pool_base, struct mc_sum *sum) {
  uint64_t new_mask = (1ull << new_log2) - 1, first, count, stride;
  mc_sources(j, old_log2, new_log2, &first, &count, &stride);
  uint64_t *current = main_out + j * MC_BUCKET_WORDS;
  uint64_t next_pool = start;
  int used = 0;
  uint64_t word = 0;
  uint64_t slots[MC_SLOTS] = {0};
  uint32_t frags[MC_SLOTS] = {0};
  struct mc_cursor c = {0, 0, 0};
  for (uint64_t k = 0; k < count; k++) {
    uint64_t chain = first + k * stride;
    for (const uint64_t *rec = mc_first(s, chain, &c); rec; rec = mc_next(s, rec, &c)) {
      uint64_t src_word = rec[0];
      for (int i = 0; i < MC_SLOTS; i++) {
        if (!mc_occupied(src_word, i)) continue;
        uint32_t frag = mc_frag(s, rec, i);
        if (((uint64_t)frag & new_mask) != j) continue;
        if (used == MC_SLOTS) {
          mc_flush(current, word, slots, frags, pool_base + next_pool * MC_BUCKET_BYTES);
          current = pool_out + next_pool * MC_BUCKET_WORDS;
          next_pool++;
          used = 0;
          word = 0;
          for (int s = 0; s < MC_SLOTS; s++) {
            slots[s] = 0;
            frags[s] = 0;
          }
        }
        uint64_t tophash = (src_word >> (8 * i)) & 0xff;
        slots[used] = rec[1 + i];
        frags[used] = frag;
        word |= tophash << (8 * used);
        used++;
        sum->entries++;
        sum->slot_sum += rec[1 + i];
        sum->frag_sum += frag;
        sum->tophash_sum += tophash;
      }
    }
  }
  mc_flush(current, word, slots, frags, 0);
}

// The packed source (`bad` unused: a packed walk never leaves its records).
MC_HD static inline struct mc_source mc_packed(const uint64_t *records,
                                               const uint32_t *chain_starts) {
  struct mc_source s = {records, chain_starts, 0, 0, 0, 0, 0};
  return s;
}

// The in-place source over `buckets` (2^old_log2 main buckets, then pool_len).
MC_HD static inline struct mc_source mc_in_place(const uint64_t *buckets, uint32_t old_log2,
                                                 uint64_t pool_base, uint64_t pool_len,
                                                 unsigned int *bad) {
  struct mc_source s = {0, 0, buckets, 1ull << old_log2, pool_base, pool_len, bad};
  return s;
}
