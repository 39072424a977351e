//! The emulated device: host memory for device memory, and the kernels of
//! `kernels/rehash.cu` run on the host by `kernels/host.cpp`, from the same
//! per-thread steps (`kernels/rehash.cuh`). Its results are the GPU's results
//! as far as the algorithm goes; what it cannot show is the device itself
//! (copies, launches, timing), which `cuda/gpu-check.sh` checks on a GPU.

use crate::abi::{self, Checksum, SourceBucket};
use crate::backend::{
    checksum, in_place_bytes, scan_levels, Backend, Fail, BAD_SOURCE, SCAN_CHUNK,
};

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn mc_host_count(
        records: *const u64,
        chain_starts: *const u32,
        buckets: *const u64,
        pool_base: u64,
        pool_len: u64,
        bad: *mut u32,
        old_log2: u32,
        new_log2: u32,
        need: *mut u32,
    );
    fn mc_host_source_sum(buckets: *const u64, n: u64, sums: *mut u64);
    fn mc_host_scan_sums(values: *const u32, n: u64, chunk: u64, sums: *mut u32, chunks: u64);
    fn mc_host_scan_apply(
        values: *mut u32,
        n: u64,
        chunk: u64,
        bases: *const u32,
        chunks: u64,
        total: *mut u64,
    );
    #[allow(clippy::too_many_arguments)]
    fn mc_host_fill(
        records: *const u64,
        chain_starts: *const u32,
        buckets: *const u64,
        old_pool_base: u64,
        old_pool_len: u64,
        bad: *mut u32,
        old_log2: u32,
        new_log2: u32,
        starts: *const u32,
        main_out: *mut u64,
        pool_out: *mut u64,
        pool_base: u64,
        sums: *mut u64,
    );
}

/// Where the rebuild in progress reads the old table from.
#[derive(Clone, Copy)]
enum Source {
    /// `source` and `chain_starts`, which the core packed.
    Packed,
    /// `buckets`, copied from the old table's arrays: the old pool's host
    /// address and length.
    InPlace { pool_base: u64, pool_len: u64 },
}

/// The emulated device's memory.
#[derive(Default)]
pub struct Emulated {
    source: Vec<SourceBucket>,
    chain_starts: Vec<u32>,
    /// The in-place source: the old main buckets, then the old pool, as words.
    buckets: Vec<u64>,
    /// The scan's levels; level 0 becomes each new bucket's first pool index.
    levels: Vec<Vec<u32>>,
    /// The rebuild between its count and its fill, and its pool's length.
    job: Option<(Source, u32, u32, u64)>,
}

impl Emulated {
    /// The kernels' view of `source`: records, chain starts, buckets, pool base
    /// and length (NULL and zeros for the form not in use).
    fn view(&self, source: Source) -> (*const u64, *const u32, *const u64, u64, u64) {
        match source {
            Source::Packed => (
                self.source.as_ptr().cast(),
                self.chain_starts.as_ptr(),
                std::ptr::null(),
                0,
                0,
            ),
            Source::InPlace {
                pool_base,
                pool_len,
            } => (
                std::ptr::null(),
                std::ptr::null(),
                self.buckets.as_ptr(),
                pool_base,
                pool_len,
            ),
        }
    }

    /// Counts from `source` and scans; the pool's length.
    fn count_from(&mut self, source: Source, old_log2: u32, new_log2: u32) -> Result<u64, Fail> {
        let lens = scan_levels(1u64 << new_log2);
        self.levels = lens.iter().map(|&n| vec![0u32; n as usize]).collect();
        let (records, chain_starts, buckets, pool_base, pool_len) = self.view(source);
        let mut bad = 0u32;
        // SAFETY: the source holds the old chains (the core's packing, or the
        // copy of its arrays, whose walk stays inside them: rehash.cuh), and
        // `need` has 2^new_log2 elements.
        unsafe {
            mc_host_count(
                records,
                chain_starts,
                buckets,
                pool_base,
                pool_len,
                &mut bad,
                old_log2,
                new_log2,
                self.levels[0].as_mut_ptr(),
            )
        };
        if bad != 0 {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, BAD_SOURCE));
        }
        let mut total = 0u64;
        // Up: each level's chunk sums into the next.
        for i in 0..lens.len() - 1 {
            let (below, above) = self.levels.split_at_mut(i + 1);
            // SAFETY: `above[0]` has one element per chunk of `below[i]`.
            unsafe {
                mc_host_scan_sums(
                    below[i].as_ptr(),
                    lens[i],
                    SCAN_CHUNK,
                    above[0].as_mut_ptr(),
                    lens[i + 1],
                )
            };
        }
        // The top level, one chunk, then down.
        let top = lens.len() - 1;
        // SAFETY: one chunk of at most SCAN_CHUNK values; `total` is writable.
        unsafe {
            mc_host_scan_apply(
                self.levels[top].as_mut_ptr(),
                lens[top],
                SCAN_CHUNK,
                std::ptr::null(),
                1,
                &mut total,
            )
        };
        for i in (0..top).rev() {
            let (below, above) = self.levels.split_at_mut(i + 1);
            // SAFETY: `above[0]` holds one base per chunk of `below[i]`.
            unsafe {
                mc_host_scan_apply(
                    below[i].as_mut_ptr(),
                    lens[i],
                    SCAN_CHUNK,
                    above[0].as_ptr(),
                    lens[i + 1],
                    std::ptr::null_mut(),
                )
            };
        }
        self.job = Some((source, old_log2, new_log2, total));
        Ok(total)
    }
}

impl Backend for Emulated {
    fn forget(&mut self) {
        self.job = None;
    }

    fn laid_out(&self) -> Option<(u64, u64)> {
        self.job
            .map(|(_, _, new_log2, pool_len)| (1u64 << new_log2, pool_len))
    }

    fn stage(
        &mut self,
        sources: usize,
        chains: usize,
    ) -> Result<(*mut SourceBucket, *mut u32), Fail> {
        self.source = vec![SourceBucket::default(); sources];
        self.chain_starts = vec![0; chains];
        self.job = None;
        Ok((self.source.as_mut_ptr(), self.chain_starts.as_mut_ptr()))
    }

    fn count(&mut self, old_log2: u32, new_log2: u32) -> Result<u64, Fail> {
        if self.chain_starts.len() != (1usize << old_log2) + 1 {
            return Err(Fail::new(
                abi::PLUGIN_E_OTHER,
                "count: the staged chains are not 2^old_log2",
            ));
        }
        self.count_from(Source::Packed, old_log2, new_log2)
    }

    fn count_in_place(
        &mut self,
        main: *const u8,
        pool: *const u8,
        pool_len: u64,
        old_log2: u32,
        new_log2: u32,
    ) -> Result<(u64, Checksum), Fail> {
        self.job = None;
        let (main_bytes, pool_bytes) = in_place_bytes(old_log2, pool_len)?;
        let (main_words, pool_words) = (main_bytes / 8, pool_bytes / 8);
        self.buckets.clear();
        // SAFETY: the ABI: `main` and `pool` hold 2^old_log2 and pool_len
        // buckets of BUCKET_BYTES (the core's arrays, 8-aligned); `pool` may be
        // NULL only when pool_len is 0.
        unsafe {
            self.buckets
                .extend_from_slice(std::slice::from_raw_parts(main.cast::<u64>(), main_words));
            if pool_words > 0 {
                self.buckets
                    .extend_from_slice(std::slice::from_raw_parts(pool.cast::<u64>(), pool_words));
            }
        }
        let mut sums = [0u64; 4];
        let n = (1u64 << old_log2) + pool_len;
        // SAFETY: `buckets` holds `n` buckets of BUCKET_BYTES.
        unsafe { mc_host_source_sum(self.buckets.as_ptr(), n, sums.as_mut_ptr()) };
        let source = Source::InPlace {
            pool_base: pool as u64,
            pool_len,
        };
        let total = self.count_from(source, old_log2, new_log2)?;
        Ok((total, checksum(sums)))
    }

    fn fill(&mut self, main: *mut u8, pool: *mut u8) -> Result<Checksum, Fail> {
        let Some((source, old_log2, new_log2, _)) = self.job.take() else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "fill before count"));
        };
        let (records, chain_starts, buckets, old_pool_base, old_pool_len) = self.view(source);
        let mut sums = [0u64; 4];
        let mut bad = 0u32;
        // SAFETY: `main` and `pool` are the core's arrays of 2^new_log2 and
        // pool_len buckets (the ABI), which the fill writes within: bucket j's
        // chain uses pool indexes starts[j] .. starts[j] + its need. The source
        // is the one the count read (and found inside its pool).
        unsafe {
            mc_host_fill(
                records,
                chain_starts,
                buckets,
                old_pool_base,
                old_pool_len,
                &mut bad,
                old_log2,
                new_log2,
                self.levels[0].as_ptr(),
                main.cast(),
                pool.cast(),
                pool as u64,
                sums.as_mut_ptr(),
            )
        };
        Ok(checksum(sums))
    }
}
