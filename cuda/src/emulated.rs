//! The emulated device: host memory for device memory, and the kernels of
//! `kernels/rehash.cu` run on the host by `kernels/host.cpp`, from the same
//! per-thread steps (`kernels/rehash.cuh`). Its results are the GPU's results
//! as far as the algorithm goes; what it cannot show is the device itself
//! (copies, launches, timing), which `cuda/gpu-check.sh` checks on a GPU.

use crate::abi::{self, Checksum, SourceBucket};
use crate::backend::{scan_levels, Backend, Fail, SCAN_CHUNK};

extern "C" {
    fn mc_host_count(
        source: *const u64,
        chain_starts: *const u32,
        old_log2: u32,
        new_log2: u32,
        need: *mut u32,
    );
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
        source: *const u64,
        chain_starts: *const u32,
        old_log2: u32,
        new_log2: u32,
        starts: *const u32,
        main_out: *mut u64,
        pool_out: *mut u64,
        pool_base: u64,
        sums: *mut u64,
    );
}

/// The emulated device's memory.
#[derive(Default)]
pub struct Emulated {
    source: Vec<SourceBucket>,
    chain_starts: Vec<u32>,
    /// The scan's levels; level 0 becomes each new bucket's first pool index.
    levels: Vec<Vec<u32>>,
    logs: Option<(u32, u32)>,
}

impl Backend for Emulated {
    fn stage(
        &mut self,
        sources: usize,
        chains: usize,
    ) -> Result<(*mut SourceBucket, *mut u32), Fail> {
        self.source = vec![SourceBucket::default(); sources];
        self.chain_starts = vec![0; chains];
        self.logs = None;
        Ok((self.source.as_mut_ptr(), self.chain_starts.as_mut_ptr()))
    }

    fn count(&mut self, old_log2: u32, new_log2: u32) -> Result<u64, Fail> {
        if self.chain_starts.len() != (1usize << old_log2) + 1 {
            return Err(Fail::new(
                abi::PLUGIN_E_OTHER,
                "count: the staged chains are not 2^old_log2",
            ));
        }
        let lens = scan_levels(1u64 << new_log2);
        self.levels = lens.iter().map(|&n| vec![0u32; n as usize]).collect();
        // SAFETY: the source holds the records the chain starts index (the
        // core's packing), and `need` has 2^new_log2 elements.
        unsafe {
            mc_host_count(
                self.source.as_ptr().cast(),
                self.chain_starts.as_ptr(),
                old_log2,
                new_log2,
                self.levels[0].as_mut_ptr(),
            )
        };
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
        self.logs = Some((old_log2, new_log2));
        Ok(total)
    }

    fn fill(&mut self, main: *mut u8, pool: *mut u8) -> Result<Checksum, Fail> {
        let Some((old_log2, new_log2)) = self.logs else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "fill before count"));
        };
        let mut sums = [0u64; 4];
        // SAFETY: `main` and `pool` are the core's arrays of 2^new_log2 and
        // pool_len buckets (the ABI), which the fill writes within: bucket j's
        // chain uses pool indexes starts[j] .. starts[j] + its need.
        unsafe {
            mc_host_fill(
                self.source.as_ptr().cast(),
                self.chain_starts.as_ptr(),
                old_log2,
                new_log2,
                self.levels[0].as_ptr(),
                main.cast(),
                pool.cast(),
                pool as u64,
                sums.as_mut_ptr(),
            )
        };
        self.logs = None;
        Ok(Checksum {
            entries: sums[0],
            slot_sum: sums[1],
            frag_sum: sums[2],
            tophash_sum: sums[3],
        })
    }
}
