//! The snapshot file format, version 1: the byte layout of the header, the block
//! headers and the records, and the checks a reader makes on each before it
//! trusts a single length. `docs/FORMAT.md` is the specification; this module
//! is its implementation, and the constants and offsets here are the ones the
//! document's tables give.
//!
//! ```text
//! header (128 bytes) | block 0 | block 1 | ... | block n-1     (file ends there)
//! block:  block header (48 bytes) | payload: records, back to back
//! record: key_len u32 | value_len u32 | expires_at_unix_ms u64 | key | value
//! ```
//!
//! Every integer is little-endian. Checksums are xxh3-64 with seed 0.

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};
use crate::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// The file's first 8 bytes: a non-ASCII first byte (so the file is not taken
/// for text), the name, and a newline (so a text-mode transfer shows).
pub(crate) const MAGIC: [u8; 8] = *b"\x89MCSNAP\n";
/// The format version this library writes, and the only one it reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Bytes of the file header.
pub(crate) const HEADER_LEN: usize = 128;
/// Bytes of a block header.
pub(crate) const BLOCK_HEADER_LEN: usize = 48;
/// Bytes of a record's fixed part (before the key).
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// A block header's first 4 bytes.
pub(crate) const BLOCK_MAGIC: [u8; 4] = *b"MCBK";
/// A writer closes a block once its payload reaches this many bytes (a record
/// larger than this makes a block of its own). Readers accept any size.
pub(crate) const BLOCK_TARGET: usize = 1 << 20;

/// Header field offsets (see `docs/FORMAT.md`, "The header").
mod at {
    pub(super) const VERSION: usize = 8;
    pub(super) const HEADER_LEN: usize = 12;
    pub(super) const FLAGS: usize = 16;
    pub(super) const WRITER: usize = 24;
    pub(super) const SNAPSHOT_ID: usize = 32;
    pub(super) const SAVED_AT: usize = 40;
    pub(super) const FILE_LEN: usize = 48;
    pub(super) const BLOCKS_OFFSET: usize = 56;
    pub(super) const BLOCK_COUNT: usize = 64;
    pub(super) const RECORD_COUNT: usize = 72;
    pub(super) const DATA_BYTES: usize = 80;
    pub(super) const RESERVED: usize = 88;
    pub(super) const CHECKSUM: usize = 120;
}

/// Block header field offsets (see `docs/FORMAT.md`, "Blocks").
mod block_at {
    pub(super) const RECORD_COUNT: usize = 4;
    pub(super) const INDEX: usize = 8;
    pub(super) const SNAPSHOT_ID: usize = 16;
    pub(super) const PAYLOAD_LEN: usize = 24;
    pub(super) const PAYLOAD_CHECKSUM: usize = 32;
    pub(super) const CHECKSUM: usize = 40;
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn put(bytes: &mut [u8], at: usize, field: &[u8]) {
    bytes[at..at + field.len()].copy_from_slice(field);
}

/// The library version a writer records: (major, minor, patch).
pub(crate) fn library_version() -> [u16; 3] {
    let part = |s: &str| s.parse::<u16>().unwrap_or(u16::MAX);
    [
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    ]
}

/// The file header (see `docs/FORMAT.md`, "The header").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The writer's library version.
    pub(crate) writer: [u16; 3],
    /// A random number, repeated in every block header, so that a block spliced
    /// in from another snapshot is caught.
    pub(crate) snapshot_id: u64,
    /// Wall-clock time of the save (unix milliseconds); informational.
    pub(crate) saved_at_unix_ms: u64,
    /// Bytes of the whole file.
    pub(crate) file_len: u64,
    /// Blocks in the file.
    pub(crate) block_count: u64,
    /// Records over all blocks.
    pub(crate) record_count: u64,
    /// Key and value bytes over all records.
    pub(crate) data_bytes: u64,
}

impl Header {
    /// The header's 128 bytes.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        put(&mut bytes, 0, &MAGIC);
        put(&mut bytes, at::VERSION, &FORMAT_VERSION.to_le_bytes());
        put(
            &mut bytes,
            at::HEADER_LEN,
            &(HEADER_LEN as u32).to_le_bytes(),
        );
        put(&mut bytes, at::FLAGS, &0u64.to_le_bytes());
        for (i, part) in self.writer.iter().enumerate() {
            put(&mut bytes, at::WRITER + 2 * i, &part.to_le_bytes());
        }
        put(&mut bytes, at::SNAPSHOT_ID, &self.snapshot_id.to_le_bytes());
        put(
            &mut bytes,
            at::SAVED_AT,
            &self.saved_at_unix_ms.to_le_bytes(),
        );
        put(&mut bytes, at::FILE_LEN, &self.file_len.to_le_bytes());
        put(
            &mut bytes,
            at::BLOCKS_OFFSET,
            &(HEADER_LEN as u64).to_le_bytes(),
        );
        put(&mut bytes, at::BLOCK_COUNT, &self.block_count.to_le_bytes());
        put(
            &mut bytes,
            at::RECORD_COUNT,
            &self.record_count.to_le_bytes(),
        );
        put(&mut bytes, at::DATA_BYTES, &self.data_bytes.to_le_bytes());
        let checksum = xxh3_64(&bytes[..at::CHECKSUM]);
        put(&mut bytes, at::CHECKSUM, &checksum.to_le_bytes());
        bytes
    }

    /// Decodes and checks the header of a file of `actual_len` bytes, whose
    /// first `min(actual_len, 128)` bytes are `bytes`. Checks, in this order
    /// (each failure an [`Error::Corrupt`] at the offending field): the magic,
    /// the format version (before anything else of a layout that a newer
    /// version may have changed), the header length, the checksum, the flags,
    /// the reserved bytes, the file length, the blocks offset, and that the
    /// counts fit in the file.
    pub(crate) fn decode(bytes: &[u8], actual_len: u64) -> Result<Header> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(Error::corrupt(
                0,
                "not a mapcache snapshot (the file does not start with the snapshot magic)",
            ));
        }
        if bytes.len() < at::HEADER_LEN {
            return Err(Error::corrupt(
                actual_len,
                format!(
                    "the file ends after {actual_len} bytes, inside the {HEADER_LEN}-byte header"
                ),
            ));
        }
        let version = u32_at(bytes, at::VERSION);
        if version > FORMAT_VERSION {
            return Err(Error::corrupt(
                at::VERSION as u64,
                format!(
                    "format version {version} is newer than this library reads (version {FORMAT_VERSION}); \
                     load it with a newer mapcache"
                ),
            ));
        }
        if version < FORMAT_VERSION {
            return Err(Error::corrupt(
                at::VERSION as u64,
                format!("format version {version} does not exist (the first is 1)"),
            ));
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::corrupt(
                actual_len,
                format!(
                    "the file ends after {actual_len} bytes, inside the {HEADER_LEN}-byte header"
                ),
            ));
        }
        let header_len = u32_at(bytes, at::HEADER_LEN);
        if header_len as usize != HEADER_LEN {
            return Err(Error::corrupt(
                at::HEADER_LEN as u64,
                format!("header length {header_len}, but version 1 headers are {HEADER_LEN} bytes"),
            ));
        }
        let stored = u64_at(bytes, at::CHECKSUM);
        let computed = xxh3_64(&bytes[..at::CHECKSUM]);
        if stored != computed {
            return Err(Error::corrupt(
                at::CHECKSUM as u64,
                format!(
                    "header checksum mismatch (stored {stored:#018x}, computed {computed:#018x})"
                ),
            ));
        }
        let flags = u64_at(bytes, at::FLAGS);
        if flags != 0 {
            return Err(Error::corrupt(
                at::FLAGS as u64,
                format!("unknown flags {flags:#x} (version 1 defines none)"),
            ));
        }
        if u16_at(bytes, at::WRITER + 6) != 0 {
            return Err(Error::corrupt(
                (at::WRITER + 6) as u64,
                "reserved bytes of the writer version are not zero",
            ));
        }
        if let Some(i) = bytes[at::RESERVED..at::CHECKSUM]
            .iter()
            .position(|&b| b != 0)
        {
            return Err(Error::corrupt(
                (at::RESERVED + i) as u64,
                "reserved header bytes are not zero",
            ));
        }
        let header = Header {
            writer: [
                u16_at(bytes, at::WRITER),
                u16_at(bytes, at::WRITER + 2),
                u16_at(bytes, at::WRITER + 4),
            ],
            snapshot_id: u64_at(bytes, at::SNAPSHOT_ID),
            saved_at_unix_ms: u64_at(bytes, at::SAVED_AT),
            file_len: u64_at(bytes, at::FILE_LEN),
            block_count: u64_at(bytes, at::BLOCK_COUNT),
            record_count: u64_at(bytes, at::RECORD_COUNT),
            data_bytes: u64_at(bytes, at::DATA_BYTES),
        };
        if header.file_len != actual_len {
            let what = if actual_len < header.file_len {
                format!(
                    "the file is {actual_len} bytes but its header says {} (truncated)",
                    header.file_len
                )
            } else {
                format!(
                    "the file is {actual_len} bytes but its header says {} (bytes appended)",
                    header.file_len
                )
            };
            return Err(Error::corrupt(at::FILE_LEN as u64, what));
        }
        let blocks_offset = u64_at(bytes, at::BLOCKS_OFFSET);
        if blocks_offset != HEADER_LEN as u64 {
            return Err(Error::corrupt(
                at::BLOCKS_OFFSET as u64,
                format!(
                    "blocks offset {blocks_offset}, but version 1 blocks start at {HEADER_LEN}"
                ),
            ));
        }
        let body = actual_len - HEADER_LEN as u64;
        let most_blocks = body / (BLOCK_HEADER_LEN + RECORD_HEADER_LEN) as u64;
        if header.block_count > most_blocks {
            return Err(Error::corrupt(
                at::BLOCK_COUNT as u64,
                format!(
                    "block count {} cannot fit in {body} bytes of blocks",
                    header.block_count
                ),
            ));
        }
        let most_records = body / RECORD_HEADER_LEN as u64;
        if header.record_count > most_records {
            return Err(Error::corrupt(
                at::RECORD_COUNT as u64,
                format!(
                    "record count {} cannot fit in {body} bytes of blocks",
                    header.record_count
                ),
            ));
        }
        if header.data_bytes > body {
            return Err(Error::corrupt(
                at::DATA_BYTES as u64,
                format!(
                    "{} bytes of keys and values cannot fit in {body} bytes of blocks",
                    header.data_bytes
                ),
            ));
        }
        if (header.block_count == 0) != (header.record_count == 0) {
            return Err(Error::corrupt(
                at::BLOCK_COUNT as u64,
                format!(
                    "{} blocks for {} records (every block holds at least one record)",
                    header.block_count, header.record_count
                ),
            ));
        }
        Ok(header)
    }
}

/// A block header (see `docs/FORMAT.md`, "Blocks").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub(crate) record_count: u32,
    pub(crate) index: u64,
    pub(crate) snapshot_id: u64,
    pub(crate) payload_len: u64,
    pub(crate) payload_checksum: u64,
}

impl BlockHeader {
    /// The block header's 48 bytes.
    pub(crate) fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut bytes = [0u8; BLOCK_HEADER_LEN];
        put(&mut bytes, 0, &BLOCK_MAGIC);
        put(
            &mut bytes,
            block_at::RECORD_COUNT,
            &self.record_count.to_le_bytes(),
        );
        put(&mut bytes, block_at::INDEX, &self.index.to_le_bytes());
        put(
            &mut bytes,
            block_at::SNAPSHOT_ID,
            &self.snapshot_id.to_le_bytes(),
        );
        put(
            &mut bytes,
            block_at::PAYLOAD_LEN,
            &self.payload_len.to_le_bytes(),
        );
        put(
            &mut bytes,
            block_at::PAYLOAD_CHECKSUM,
            &self.payload_checksum.to_le_bytes(),
        );
        let checksum = xxh3_64(&bytes[..block_at::CHECKSUM]);
        put(&mut bytes, block_at::CHECKSUM, &checksum.to_le_bytes());
        bytes
    }

    /// Decodes and checks the header of block `index` of the snapshot `header`
    /// describes, found at file offset `offset` (`bytes` are its 48 bytes, copied
    /// out of the file). Checks the checksum, the magic, the index, the snapshot
    /// id, the record count and that the payload ends inside the file.
    pub(crate) fn decode(
        bytes: &[u8; BLOCK_HEADER_LEN],
        offset: u64,
        index: u64,
        header: &Header,
    ) -> Result<BlockHeader> {
        let field = |at: usize| offset + at as u64;
        let stored = u64_at(bytes, block_at::CHECKSUM);
        let computed = xxh3_64(&bytes[..block_at::CHECKSUM]);
        if stored != computed {
            return Err(Error::corrupt(
                field(block_at::CHECKSUM),
                format!(
                    "checksum mismatch in the header of block {index} (stored {stored:#018x}, computed {computed:#018x})"
                ),
            ));
        }
        if bytes[..4] != BLOCK_MAGIC {
            return Err(Error::corrupt(
                offset,
                format!("block {index} has no block magic"),
            ));
        }
        let block = BlockHeader {
            record_count: u32_at(bytes, block_at::RECORD_COUNT),
            index: u64_at(bytes, block_at::INDEX),
            snapshot_id: u64_at(bytes, block_at::SNAPSHOT_ID),
            payload_len: u64_at(bytes, block_at::PAYLOAD_LEN),
            payload_checksum: u64_at(bytes, block_at::PAYLOAD_CHECKSUM),
        };
        if block.index != index {
            return Err(Error::corrupt(
                field(block_at::INDEX),
                format!(
                    "block {index} says it is block {} (blocks out of order)",
                    block.index
                ),
            ));
        }
        if block.snapshot_id != header.snapshot_id {
            return Err(Error::corrupt(
                field(block_at::SNAPSHOT_ID),
                format!(
                    "block {index} belongs to snapshot {:#018x}, not this one ({:#018x})",
                    block.snapshot_id, header.snapshot_id
                ),
            ));
        }
        if block.record_count == 0 {
            return Err(Error::corrupt(
                field(block_at::RECORD_COUNT),
                format!("block {index} holds no records"),
            ));
        }
        let room = header.file_len - offset - BLOCK_HEADER_LEN as u64;
        if block.payload_len > room {
            return Err(Error::corrupt(
                field(block_at::PAYLOAD_LEN),
                format!(
                    "block {index}'s payload of {} bytes runs past the end of the file ({room} bytes left)",
                    block.payload_len
                ),
            ));
        }
        // Before anything is mapped in or copied for the payload: a file can be
        // sparse, so that a payload within its length still costs the reader
        // its whole size in memory if the bound waits for the payload's parse.
        if block.payload_len > MAX_PAYLOAD_LEN {
            return Err(Error::corrupt(
                field(block_at::PAYLOAD_LEN),
                format!(
                    "block {index}'s payload of {} bytes is larger than any block mapcache \
                     writes (at most {MAX_PAYLOAD_LEN} bytes: one record of the largest key \
                     and value)",
                    block.payload_len
                ),
            ));
        }
        if u64::from(block.record_count) * RECORD_HEADER_LEN as u64 > block.payload_len {
            return Err(Error::corrupt(
                field(block_at::RECORD_COUNT),
                format!(
                    "block {index}'s {} records cannot fit in its {} payload bytes",
                    block.record_count, block.payload_len
                ),
            ));
        }
        Ok(block)
    }
}

/// The longest payload mapcache reads: the longest its writer makes, one record
/// of the largest key and value (16 + 65,535 + 2^30 bytes, in a block of its
/// own; the writer closes a block of smaller records before it passes
/// [`BLOCK_TARGET`]). A payload is read in and copied before its checksum is
/// checked, so this bounds what one hostile block header can make a load
/// read and hold (it was 4 GiB, where a record's `u32` offset ends).
pub(crate) const MAX_PAYLOAD_LEN: u64 = (RECORD_HEADER_LEN + MAX_KEY_LEN + MAX_VALUE_LEN) as u64;
const _: () = assert!(MAX_PAYLOAD_LEN >= BLOCK_TARGET as u64 && MAX_PAYLOAD_LEN <= u32::MAX as u64);

/// A record's fixed part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
    /// Unix milliseconds at which the entry expires; 0: never.
    pub(crate) expires_at_unix_ms: u64,
}

impl RecordHeader {
    pub(crate) fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut bytes = [0u8; RECORD_HEADER_LEN];
        put(&mut bytes, 0, &self.key_len.to_le_bytes());
        put(&mut bytes, 4, &self.value_len.to_le_bytes());
        put(&mut bytes, 8, &self.expires_at_unix_ms.to_le_bytes());
        bytes
    }
}

/// Where one record's key and value lie in its block's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordSpan {
    /// Offset of the key in the payload (the value follows it).
    pub(crate) key_at: u32,
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
    pub(crate) expires_at_unix_ms: u64,
}

impl RecordSpan {
    pub(crate) fn key<'p>(&self, payload: &'p [u8]) -> &'p [u8] {
        let at = self.key_at as usize;
        &payload[at..at + self.key_len as usize]
    }
}

/// Checks a block's payload (copied out of the file; `offset` is where it was)
/// against its header and calls `each` for every record, in file order. Fails,
/// before any call of `each` for a block whose checksum is wrong, on: a checksum
/// mismatch, a record that runs past the payload, a key or value over the
/// library's limits, a record count that disagrees with the records found.
pub(crate) fn parse_block(
    payload: &[u8],
    offset: u64,
    block: &BlockHeader,
    mut each: impl FnMut(RecordSpan),
) -> Result<u64> {
    let computed = xxh3_64(payload);
    if computed != block.payload_checksum {
        return Err(Error::corrupt(
            offset,
            format!(
                "checksum mismatch in the payload of block {} (stored {:#018x}, computed {computed:#018x})",
                block.index, block.payload_checksum
            ),
        ));
    }
    // `BlockHeader::decode` refused a longer payload; the spans below are u32.
    if payload.len() as u64 > MAX_PAYLOAD_LEN {
        return Err(Error::corrupt(
            offset,
            format!(
                "block {}'s payload of {} bytes is larger than any block mapcache writes",
                block.index,
                payload.len()
            ),
        ));
    }
    let mut at = 0usize;
    let mut records = 0u64;
    let mut data = 0u64;
    while at < payload.len() {
        let here = offset + at as u64;
        if records == u64::from(block.record_count) {
            return Err(Error::corrupt(
                here,
                format!(
                    "block {} holds more than the {} records its header counts",
                    block.index, block.record_count
                ),
            ));
        }
        if payload.len() - at < RECORD_HEADER_LEN {
            return Err(Error::corrupt(
                here,
                format!("a record header runs past the end of block {}", block.index),
            ));
        }
        let key_len = u32_at(payload, at);
        let value_len = u32_at(payload, at + 4);
        let expires_at_unix_ms = u64_at(payload, at + 8);
        if key_len as usize > MAX_KEY_LEN {
            return Err(Error::corrupt(
                here,
                format!("key length {key_len} is over the limit of {MAX_KEY_LEN}"),
            ));
        }
        if value_len as usize > MAX_VALUE_LEN {
            return Err(Error::corrupt(
                here + 4,
                format!("value length {value_len} is over the limit of {MAX_VALUE_LEN}"),
            ));
        }
        let key_at = at + RECORD_HEADER_LEN;
        let left = payload.len() - key_at;
        if key_len as usize + value_len as usize > left {
            return Err(Error::corrupt(
                here,
                format!(
                    "a record of {key_len} key and {value_len} value bytes runs past the end of block {} ({left} bytes left)",
                    block.index
                ),
            ));
        }
        each(RecordSpan {
            key_at: key_at as u32,
            key_len,
            value_len,
            expires_at_unix_ms,
        });
        at = key_at + key_len as usize + value_len as usize;
        records += 1;
        data += u64::from(key_len) + u64::from(value_len);
    }
    if records != u64::from(block.record_count) {
        return Err(Error::corrupt(
            offset - (BLOCK_HEADER_LEN - block_at::RECORD_COUNT) as u64,
            format!(
                "block {} counts {} records but holds {records}",
                block.index, block.record_count
            ),
        ));
    }
    Ok(data)
}
