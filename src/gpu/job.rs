//! One rebuild on the GPU: stage the old image (packed on the host, or the
//! table's own arrays in place), count, allocate the new arrays, fill, check. Any failure is a message, and the caller falls back to the CPU
//! engine; the old table is only read, so nothing is lost either way.

use super::abi::{self, Checksum, SourceBucket};
use super::loader::{self, Context, Plugin};
use std::sync::Mutex;

use crate::sync::atomic::Ordering;
use crate::table::bucket::SLOTS;
use crate::table::sums::Sums;
use crate::table::table::{BucketArray, Table};

/// What went wrong at which step: the step's name, then the plugin's message.
fn failed(step: &str, (code, message): (i32, String)) -> String {
    let kind = match code {
        abi::PLUGIN_E_ALLOC => "allocation failed",
        abi::PLUGIN_E_COPY => "copy failed",
        abi::PLUGIN_E_KERNEL => "kernel failed",
        abi::PLUGIN_E_NO_DEVICE => "no CUDA device",
        _ => "error",
    };
    format!("GPU {step}: {kind}: {message}")
}

/// How the old table reaches the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Packed on the host into the plugin's pinned staging memory: the chains'
    /// buckets without their overflow pointers, and the host's checksum of them
    /// (`stage`, `count`).
    Packed,
    /// The table's own two arrays, copied as they are, with no host pass over
    /// the table; the checksum is the device's, taken bucket by bucket
    /// (`count_in_place`). Only where every overflow bucket lies in the
    /// table's pool ([`Table::boxed_overflow`] is 0); else packed.
    InPlace,
}

impl Source {
    /// `MAPCACHE_GPU_SOURCE` = `packed` (the default, until a device's
    /// figures pick one) or `in-place`: a knob for trying the GPU engine's
    /// ways of reading, like the plugin's transfer settings. Read once, when
    /// the plugin loads (`loader`), not at each rebuild, which runs on a
    /// writer's thread, where a `getenv` would race with any host thread's
    /// `setenv`. (The benchmark names the source per rebuild,
    /// `testing::Engine::GpuInPlace`.)
    pub(crate) fn from_env() -> Source {
        match std::env::var("MAPCACHE_GPU_SOURCE").as_deref() {
            Ok("in-place") => Source::InPlace,
            _ => Source::Packed,
        }
    }
}

/// Builds the `2^new_log2` table holding `src`'s entries with `plugin`, whose
/// context the caller holds, the old table reaching the device as `source`
/// where it can (returned: the source used).
pub(crate) fn rehash(
    plugin: &Plugin,
    context: &mut Context,
    src: &Table,
    new_log2: u32,
    source: Source,
) -> Result<(Table, Source), String> {
    let source = match source {
        Source::InPlace if src.boxed_overflow() == 0 => Source::InPlace,
        _ => Source::Packed,
    };
    // The new main array is brought in on a second thread while the device
    // counts (its size is known; the pool's is what the count says), so that
    // its page faults, which every engine's new arrays take, are off the
    // critical path: the copy-out (or its registration) then finds the pages.
    // Where no thread can be started, this thread does it after the count.
    let made = Mutex::new(None);
    let make_main = || {
        let main = BucketArray::new(1 << new_log2).map_err(|e| e.to_string());
        if let Ok(main) = &main {
            main.prefault();
        }
        *made.lock().unwrap_or_else(|e| e.into_inner()) = Some(main);
    };
    let counted = crate::sync::scoped::scope("mapcache-gpu-prefault", |spawner| {
        let spawned = spawner.spawn(make_main);
        let counted = if source == Source::InPlace {
            count_in_place(plugin, context, src, new_log2)
        } else {
            count_packed(plugin, context, src, new_log2)
        };
        (counted, spawned)
    });
    let (counted, spawned) = counted;
    // A failed count falls back before this thread makes the array.
    let (pool_len, device_source) = counted?;
    if !spawned {
        make_main();
    }
    let main = made
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .expect("made on one thread or the other")?;
    // The table's own sums, kept by its writer (`table/sums.rs`): what the
    // source holds, known without reading it. In place, the device's sums of
    // its copy must be these (a copy-in that lost or changed anything fails);
    // packed, the device saw only what the pack wrote.
    let expected = checksum(src.sums());
    if let Some(seen) = device_source {
        if seen != expected {
            return Err(format!(
                "GPU count: the device's copy of the table failed its check (it holds {seen:?}, the table {expected:?})"
            ));
        }
    }
    // A chain of `c` entries takes `(c - 1) / 8` pool buckets, so the pool is
    // at most an eighth of the entries (its exact length is checked with the
    // image, `image_check.rs`).
    if pool_len > expected.entries / SLOTS as u64 {
        return Err(format!(
            "GPU count: a pool of {pool_len} buckets for {} entries failed its check",
            expected.entries
        ));
    }
    let table = &plugin.table;
    let ctx = context.0;
    let pool = Table::pool(pool_len as usize, new_log2).map_err(|e| e.to_string())?;
    let mut written = Checksum::default();
    // SAFETY: both arrays are fresh and zeroed (the prefault wrote zeros, on
    // a thread the scope has joined or on this one), private to this thread
    // and of the lengths passed (2^new_log2 and pool_len buckets of
    // BUCKET_BYTES); their atomics may be written as plain bytes while nothing
    // else can see them.
    loader::call(|err, len| unsafe {
        (table.fill)(
            ctx,
            main.as_slice().as_ptr() as *mut u8,
            1 << new_log2,
            pool.accessible().as_ptr() as *mut u8,
            pool_len,
            &mut written,
            err,
            len,
        )
    })
    .map_err(|e| failed("fill", e))?;
    if written != expected {
        return Err(format!(
            "GPU fill: the result failed its check (wrote {written:?}, the source holds {expected:?})"
        ));
    }
    // The plugin's sums are of what its kernel meant to write; the image the
    // host now holds is checked itself, before anything can read it.
    super::image_check::check_image(
        main.as_slice(),
        &pool.accessible()[..pool_len as usize],
        new_log2,
        src.sums(),
    )
    .map_err(|what| format!("GPU fill: the image copied back failed its check: {what}"))?;
    let table = Table::with_arrays(new_log2, main, pool, pool_len as usize, src.sums())
        .map_err(|e| e.to_string())?;
    Ok((table, source))
}

/// Stages and packs `src`'s image on the host, then counts: the new pool's
/// length (and no device sums of the source: the pack wrote it).
fn count_packed(
    plugin: &Plugin,
    context: &mut Context,
    src: &Table,
    new_log2: u32,
) -> Result<(u64, Option<Checksum>), String> {
    let table = &plugin.table;
    let ctx = context.0;
    let chains = src.buckets().len();
    let sources = chains + src.overflow_count();

    let (mut source, mut starts) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: the plugin writes two pointers and at most `len` message bytes.
    loader::call(|err, len| unsafe {
        (table.stage)(
            ctx,
            sources as u64,
            chains as u64 + 1,
            &mut source,
            &mut starts,
            err,
            len,
        )
    })
    .map_err(|e| failed("staging", e))?;
    if source.is_null() || starts.is_null() || !source.is_aligned() || !starts.is_aligned() {
        return Err("GPU staging: the plugin returned no (or misaligned) staging memory".into());
    }
    // SAFETY: per the ABI, `stage` returned host memory for `sources` records and
    // `chains + 1` starts, ours until the next `stage` on this context (held).
    let (source, starts) = unsafe {
        (
            std::slice::from_raw_parts_mut(source, sources),
            std::slice::from_raw_parts_mut(starts, chains + 1),
        )
    };
    pack(src, source, starts)?;

    let mut pool_len = 0u64;
    // SAFETY: the plugin writes one u64 and at most `len` message bytes.
    loader::call(|err, len| unsafe {
        (table.count)(ctx, src.log2(), new_log2, &mut pool_len, err, len)
    })
    .map_err(|e| failed("count", e))?;
    Ok((pool_len, None))
}

/// Has the plugin copy `src`'s two arrays as they are and count: the new
/// pool's length and the sums of the device's copy, taken bucket by bucket
/// (the host reads nothing of the table).
fn count_in_place(
    plugin: &Plugin,
    context: &mut Context,
    src: &Table,
    new_log2: u32,
) -> Result<(u64, Option<Checksum>), String> {
    let main = src.buckets();
    let pool = src.pool_in_use();
    let pool_ptr = if pool.is_empty() {
        std::ptr::null()
    } else {
        pool.as_ptr().cast::<u8>()
    };
    let (mut pool_len, mut expected) = (0u64, Checksum::default());
    // SAFETY: `main` and `pool` are the table's arrays of 2^log2 and
    // `pool.len()` buckets of BUCKET_BYTES, live for the call (borrowed), and
    // every overflow pointer in them points into `pool` (boxed_overflow is 0,
    // checked by the caller, and every arena bucket linked so far is in
    // `pool_in_use`). The plugin only reads them, while the caller's write flag
    // keeps writers out (readers only read); the plugin writes one u64, one
    // checksum and at most `len` message bytes.
    loader::call(|err, len| unsafe {
        (plugin.table.count_in_place)(
            context.0,
            main.as_ptr().cast::<u8>(),
            pool_ptr,
            pool.len() as u64,
            src.log2(),
            new_log2,
            &mut pool_len,
            &mut expected,
            err,
            len,
        )
    })
    .map_err(|e| failed("count", e))?;
    Ok((pool_len, Some(expected)))
}

/// The table's sums as the plugin ABI's checksum (the same four numbers).
fn checksum(sums: Sums) -> Checksum {
    Checksum {
        entries: sums.entries,
        slot_sum: sums.slot_sum,
        frag_sum: sums.frag_sum,
        tophash_sum: sums.tophash_sum,
    }
}

/// Writes `src`'s image into the staging memory: its buckets chain by chain and
/// each chain's first record. (It sums nothing: the table's kept sums are the
/// check, `Table::sums`.)
pub(crate) fn pack(
    src: &Table,
    source: &mut [SourceBucket],
    starts: &mut [u32],
) -> Result<(), String> {
    let heads = src.buckets();
    if source.len() > u32::MAX as usize {
        return Err(format!(
            "GPU staging: {} buckets are too many",
            source.len()
        ));
    }
    if starts.len() != heads.len() + 1 {
        return Err(format!(
            "GPU staging: {} chain starts for {} chains",
            starts.len(),
            heads.len()
        ));
    }
    let mut n = 0usize;
    let mut overrun = false;
    // The walk prefetches the overflow buckets ahead (`for_each_chain_bucket`).
    src.for_each_chain_bucket(|index, bucket| {
        // The first bucket of each chain is its head: chains come in index order.
        if std::ptr::eq(bucket, &heads[index]) {
            starts[index] = n as u32;
        }
        let Some(record) = source.get_mut(n) else {
            overrun = true;
            return;
        };
        record.tophash = bucket.tophash.load(Ordering::Relaxed);
        for i in 0..SLOTS {
            record.slots[i] = bucket.slots[i].load(Ordering::Relaxed) as usize as u64;
            record.frags[i] = bucket.frags[i].load(Ordering::Relaxed);
        }
        n += 1;
    });
    if overrun {
        return Err(format!(
            "GPU staging: the table's chains hold more than the {} buckets counted",
            source.len()
        ));
    }
    if n != source.len() {
        return Err(format!(
            "GPU staging: the table's chains hold {n} buckets, not the {} counted",
            source.len()
        ));
    }
    starts[heads.len()] = n as u32;
    Ok(())
}
