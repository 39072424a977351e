//! What a device does for one rebuild (see the plugin ABI in `abi`): the
//! emulated one (`emulated`) and the CUDA one (`device`) run the same kernels
//! in the same order, laid out by the same scan plan.

use crate::abi::{self, Checksum, SourceBucket};

/// A failed step: an ABI error code and a message.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub message: String,
}

impl Fail {
    pub fn new(code: i32, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
        }
    }
}

/// One device context's steps, in call order (see `abi`).
pub trait Backend: Send {
    /// Drops the rebuild in progress, if any (a call that fails before it
    /// reaches the backend must not leave an earlier count for a `fill`).
    fn forget(&mut self);
    /// Host staging memory for `sources` records and `chains` chain starts.
    fn stage(
        &mut self,
        sources: usize,
        chains: usize,
    ) -> Result<(*mut SourceBucket, *mut u32), Fail>;
    /// Copies the staged image in, counts, scans; the pool's length.
    fn count(&mut self, old_log2: u32, new_log2: u32) -> Result<u64, Fail>;
    /// The in-place source (`abi::CountInPlaceFn`): copies the old table's
    /// `main` (`2^old_log2` buckets) and `pool` (`pool_len` buckets) in,
    /// counts, scans; the pool's length and the source's sums.
    fn count_in_place(
        &mut self,
        main: *const u8,
        pool: *const u8,
        pool_len: u64,
        old_log2: u32,
        new_log2: u32,
    ) -> Result<(u64, Checksum), Fail>;
    /// Fills and copies the image out into `main` and `pool` (host memory).
    fn fill(&mut self, main: *mut u8, pool: *mut u8) -> Result<Checksum, Fail>;
    /// The counted job's main and pool lengths, in buckets (what its fill
    /// writes), if a count is waiting for its fill.
    fn laid_out(&self) -> Option<(u64, u64)>;
}

/// The bytes of an in-place source's two arrays, or why they cannot be (a
/// length whose bytes do not fit: the copy would be short of what the kernels
/// may read).
pub fn in_place_bytes(old_log2: u32, pool_len: u64) -> Result<(usize, usize), Fail> {
    let main = (1usize << old_log2).checked_mul(abi::BUCKET_BYTES);
    let pool = usize::try_from(pool_len)
        .ok()
        .filter(|&n| n <= u32::MAX as usize)
        .and_then(|n| n.checked_mul(abi::BUCKET_BYTES));
    match (main, pool) {
        (Some(main), Some(pool)) if main.checked_add(pool).is_some() => Ok((main, pool)),
        _ => Err(Fail::new(
            abi::PLUGIN_E_OTHER,
            format!("count_in_place: a pool of {pool_len} buckets is out of range"),
        )),
    }
}

/// Sums as the ABI's checksum.
pub fn checksum(sums: [u64; 4]) -> Checksum {
    Checksum {
        entries: sums[0],
        slot_sum: sums[1],
        frag_sum: sums[2],
        tophash_sum: sums[3],
    }
}

/// The message of an in-place source whose chains leave its pool.
pub const BAD_SOURCE: &str =
    "count: an overflow pointer of the source lies outside its pool (or a chain loops)";

/// Elements each scan thread sums (and then prefix-sums): a few cache lines.
pub const SCAN_CHUNK: u64 = 256;

/// The levels of the prefix sum over `n` values: level 0 is the values, each
/// level above holds the chunk sums of the one below, up to one of at most
/// `SCAN_CHUNK` values (summed by one thread). Their lengths.
pub fn scan_levels(n: u64) -> Vec<u64> {
    let mut levels = vec![n];
    while *levels.last().unwrap() > SCAN_CHUNK {
        let below = *levels.last().unwrap();
        levels.push(below.div_ceil(SCAN_CHUNK));
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_plan_ends_in_one_chunk() {
        assert_eq!(scan_levels(1), vec![1]);
        assert_eq!(scan_levels(256), vec![256]);
        assert_eq!(scan_levels(257), vec![257, 2]);
        assert_eq!(scan_levels(1 << 24), vec![1 << 24, 1 << 16, 256]);
        assert_eq!(
            scan_levels((1 << 24) + 1),
            vec![(1 << 24) + 1, 65537, 257, 2]
        );
    }
}
