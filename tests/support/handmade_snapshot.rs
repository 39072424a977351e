//! Snapshot files written from `docs/FORMAT.md` alone, by the tests (shared
//! by the hostile-file and the memory tests, each including this file with
//! `#[path]`).

use xxhash_rust::xxh3::xxh3_64;

/// A record as a test writes it: key, value, `expires_at_unix_ms`.
pub type Written<'a> = (&'a [u8], &'a [u8], u64);

/// A snapshot written from `docs/FORMAT.md` by a test: one block of
/// `records` (key, value, expiry).
#[allow(dead_code)]
pub fn handmade(records: &[Written<'_>]) -> Vec<u8> {
    handmade_blocks(&[records.to_vec()])
}

/// A snapshot written from `docs/FORMAT.md` by a test: a block for each
/// list of records (key, value, expiry), in order.
pub fn handmade_blocks(blocks: &[Vec<Written<'_>>]) -> Vec<u8> {
    let id = 0x1234_5678_9abc_def0u64;
    let mut body = Vec::new();
    let (mut data, mut count) = (0u64, 0u64);
    for (index, records) in blocks.iter().enumerate() {
        let mut payload = Vec::new();
        for (key, value, expires) in records {
            payload.extend_from_slice(&(key.len() as u32).to_le_bytes());
            payload.extend_from_slice(&(value.len() as u32).to_le_bytes());
            payload.extend_from_slice(&expires.to_le_bytes());
            payload.extend_from_slice(key);
            payload.extend_from_slice(value);
            data += (key.len() + value.len()) as u64;
        }
        count += records.len() as u64;
        let mut block = Vec::new();
        block.extend_from_slice(b"MCBK");
        block.extend_from_slice(&(records.len() as u32).to_le_bytes());
        block.extend_from_slice(&(index as u64).to_le_bytes());
        block.extend_from_slice(&id.to_le_bytes());
        block.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        block.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
        let sum = xxh3_64(&block);
        block.extend_from_slice(&sum.to_le_bytes());
        body.extend_from_slice(&block);
        body.extend_from_slice(&payload);
    }
    let mut file = vec![0u8; 128];
    file[..8].copy_from_slice(b"\x89MCSNAP\n");
    file[8..12].copy_from_slice(&1u32.to_le_bytes());
    file[12..16].copy_from_slice(&128u32.to_le_bytes());
    file[32..40].copy_from_slice(&id.to_le_bytes());
    let len = (128 + body.len()) as u64;
    file[48..56].copy_from_slice(&len.to_le_bytes());
    file[56..64].copy_from_slice(&128u64.to_le_bytes());
    file[64..72].copy_from_slice(&(blocks.len() as u64).to_le_bytes());
    file[72..80].copy_from_slice(&count.to_le_bytes());
    file[80..88].copy_from_slice(&data.to_le_bytes());
    let sum = xxh3_64(&file[..120]);
    file[120..].copy_from_slice(&sum.to_le_bytes());
    file.extend_from_slice(&body);
    file
}
