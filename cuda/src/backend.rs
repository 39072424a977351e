//! What a device does for one rebuild (see the plugin ABI in `abi`): the
//! emulated one (`emulated`) and the CUDA one (`device`) run the same kernels
//! in the same order, laid out by the same scan plan.

use crate::abi::{Checksum, SourceBucket};

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
