//! The check of a rebuilt image as it lies in host memory, before the table
//! built on it can be published: what a GPU rebuild hands back is trusted
//! only once this pass has read it.
//!
//! The plugin's own sums (`abi::Checksum` from `fill`) are of what its kernel
//! meant to write, so they catch a wrong read of the old table but not a
//! right value in the wrong place, a bad overflow pointer, or a copy back to
//! the host that never happened (a fresh-eyes review's plugin that computed
//! a true image and then moved one chain over by a bucket, swapped slots
//! between buckets, pointed one overflow pointer at garbage or at its own
//! bucket, or wrote nothing, passed those sums every time: keys lost, a
//! reader's segfault, a reader's endless walk). This pass checks the image
//! itself against the layout every engine produces (`table/rehash.rs`),
//! following only pointers it has checked to be exactly the next pool
//! bucket, so a bad image is refused without being read out of bounds.
//!
//! It cannot see two entries swapped between slots of one chain with their
//! frags and tophash bytes left behind (the sums and placement agree); that
//! would take a hash of each key. It costs one sequential read of the new
//! arrays, host CPU time that the GPU engine's budget counts.

use std::ops::Range;
use std::sync::Mutex;

use crate::config::cores;
use crate::sync::atomic::Ordering;
use crate::table::bucket::{self, Bucket, MIN_TOPHASH, SLOTS};
use crate::table::rehash::PARALLEL_MIN_BUCKETS;
use crate::table::sums::Sums;

/// Checks a rebuilt image as it lies in host memory, in one sequential pass
/// over its `main` buckets and laid-out `pool`, against what every engine's
/// rehash makes of a table whose slots sum to `expected` (see
/// `table/rehash.rs`): each bucket's occupied slots come first (tophash at
/// least `MIN_TOPHASH`, a non-null entry, a frag that chooses this chain's
/// main bucket) and the rest are empty (`EMPTY_REST`, null, frag 0); a chain
/// goes on only past a full bucket, into the next pool bucket in order (the
/// prefix sum's layout, so every pointer followed is checked to be exactly
/// `&pool[k]` for the next `k`: no wild pointer, no loop), and every pool
/// bucket is linked once and holds an entry; the slots sum to `expected`.
/// Fails with what it found first, and where.
///
/// Tables of [`PARALLEL_MIN_BUCKETS`] main buckets or more are checked in
/// ranges on the machine's cores (a rebuild's wall time is the GPU engine's
/// point; the host CPU time is the same either way). Each range follows its
/// chains from the pool bucket its first overflow pointer names, once that
/// pointer is checked to be a pool bucket; the ranges must then tile the
/// pool in order, so that every pool bucket is still linked exactly once, in
/// the prefix sum's order. A branch-free pass over each bucket's slots says
/// only whether the image holds; where it does not, [`first_fault`] walks it
/// again, in order, to say why.
pub(crate) fn check_image(
    main: &[Bucket],
    pool: &[Bucket],
    new_log2: u32,
    expected: Sums,
) -> Result<(), String> {
    let fault = || first_fault(main, pool, new_log2, expected);
    if main.len() != 1 << new_log2 {
        return fault();
    }
    let threads = if main.len() >= PARALLEL_MIN_BUCKETS {
        cores()
    } else {
        1
    };
    let chunk = main.len().div_ceil(threads);
    let ranges: Vec<_> = (0..main.len())
        .step_by(chunk)
        .map(|start| start..(start + chunk).min(main.len()))
        .collect();
    let results: Vec<Mutex<Option<Option<Checked>>>> =
        ranges.iter().map(|_| Mutex::new(None)).collect();
    let work = |r: usize| {
        let checked = check_range(main, pool, ranges[r].clone(), new_log2);
        *results[r].lock().unwrap_or_else(|e| e.into_inner()) = Some(checked);
    };
    crate::sync::scoped::scope("mapcache-gpu-check", |spawner| {
        let work = &work;
        for r in 1..ranges.len() {
            if !spawner.spawn(move || work(r)) {
                work(r);
            }
        }
        work(0);
    });
    let mut sums = Sums::default();
    let mut next_pool = 0usize;
    for result in results {
        let Some(Some(checked)) = result.into_inner().unwrap_or_else(|e| e.into_inner()) else {
            return fault();
        };
        if let Some(linked) = checked.linked {
            if linked.start != next_pool {
                return fault();
            }
            next_pool = linked.end;
        }
        sums = sums.plus(checked.sums);
    }
    if next_pool != pool.len() || sums != expected {
        return fault();
    }
    Ok(())
}

/// What a range of main buckets holds: its slots' sums, and the pool
/// buckets its chains link (in order), if any.
struct Checked {
    sums: Sums,
    linked: Option<Range<usize>>,
}

/// Checks the chains of the main buckets in `range` ([`check_image`]), or
/// `None` at the first fault.
fn check_range(
    main: &[Bucket],
    pool: &[Bucket],
    range: Range<usize>,
    new_log2: u32,
) -> Option<Checked> {
    let mask = (1u64 << new_log2) - 1;
    let mut sums = Sums::default();
    let mut linked: Option<Range<usize>> = None;
    for j in range {
        let mut current = &main[j];
        let mut in_pool = false;
        loop {
            let slots = bucket_sums(current, j as u64, mask)?;
            if in_pool && slots.entries == 0 {
                return None;
            }
            sums = sums.plus(slots);
            let overflow = current.overflow.load(Ordering::Relaxed);
            if overflow.is_null() {
                break;
            }
            if slots.entries != SLOTS as u64 {
                return None;
            }
            // The range's first link may name any pool bucket (checked to be
            // one); every later one must be the next.
            let next = match &linked {
                Some(linked) => linked.end,
                None => pool_index(pool, overflow)?,
            };
            let bucket = pool
                .get(next)
                .filter(|b| std::ptr::eq(overflow.cast_const(), *b))?;
            linked = Some(linked.map_or(next, |l| l.start)..next + 1);
            current = bucket;
            in_pool = true;
        }
    }
    Some(Checked { sums, linked })
}

/// The index of the pool bucket `at` points to, if it points to the start
/// of one (computed from the address alone: nothing is read).
fn pool_index(pool: &[Bucket], at: *const Bucket) -> Option<usize> {
    let offset = (at as usize).checked_sub(pool.as_ptr() as usize)?;
    let size = std::mem::size_of::<Bucket>();
    (offset % size == 0 && offset / size < pool.len()).then_some(offset / size)
}

/// One bucket's occupied slots and their sums, or `None` if its slots break
/// the layout (an occupied slot after an empty one, or with a null entry or
/// a frag of another chain; an empty one with anything in it). Branch-free:
/// the empty slots, which must be all zero, are summed too.
#[inline]
fn bucket_sums(b: &Bucket, j: u64, mask: u64) -> Option<Sums> {
    let word = b.tophash.load(Ordering::Relaxed);
    let (mut used, mut bad) = (0u64, 0u64);
    let mut sums = Sums::default();
    for i in 0..SLOTS {
        let tophash = u64::from(bucket::byte(word, i));
        let entry = b.slots[i].load(Ordering::Relaxed) as usize as u64;
        let frag = u64::from(b.frags[i].load(Ordering::Relaxed));
        // Whether slot `i` is still in the bucket's run of occupied slots.
        let occupied = u64::from(tophash >= u64::from(MIN_TOPHASH)) & u64::from(used == i as u64);
        used += occupied;
        bad |= occupied & (u64::from(entry == 0) | u64::from((frag ^ j) & mask != 0));
        bad |= (1 - occupied) & u64::from(tophash | entry | frag != 0);
        sums.slot_sum = sums.slot_sum.wrapping_add(entry);
        sums.frag_sum = sums.frag_sum.wrapping_add(frag);
        sums.tophash_sum += tophash;
    }
    sums.entries = used;
    (bad == 0).then_some(sums)
}

/// The first fault of an image [`check_image`] refused, found by a walk that
/// checks one thing at a time.
fn first_fault(
    main: &[Bucket],
    pool: &[Bucket],
    new_log2: u32,
    expected: Sums,
) -> Result<(), String> {
    if main.len() != 1 << new_log2 {
        return Err(format!(
            "{} main buckets for a table of 2^{new_log2}",
            main.len()
        ));
    }
    let mask = (1u64 << new_log2) - 1;
    let mut next_pool = 0usize;
    let mut sums = Sums::default();
    // Where a fault lies: main bucket `j`, or pool bucket `k` of its chain.
    let at = |j: usize, k: Option<usize>| match k {
        None => format!("main bucket {j}"),
        Some(k) => format!("pool bucket {k} (of main bucket {j})"),
    };
    for (j, head) in main.iter().enumerate() {
        let mut current = head;
        let mut in_pool = None;
        loop {
            let word = current.tophash.load(Ordering::Relaxed);
            let used = (0..SLOTS)
                .take_while(|&i| bucket::byte(word, i) >= MIN_TOPHASH)
                .count();
            if in_pool.is_some() && used == 0 {
                return Err(format!("{} is linked but empty", at(j, in_pool)));
            }
            for i in 0..SLOTS {
                let tophash = bucket::byte(word, i);
                let entry = current.slots[i].load(Ordering::Relaxed);
                let frag = current.frags[i].load(Ordering::Relaxed);
                if i < used {
                    if entry.is_null() || u64::from(frag) & mask != j as u64 {
                        return Err(format!(
                            "{}, slot {i}: {} entry with frag {frag:#x} (which belongs in main bucket {})",
                            at(j, in_pool),
                            if entry.is_null() { "a null" } else { "an" },
                            u64::from(frag) & mask
                        ));
                    }
                    sums = sums.with(tophash, frag, entry);
                } else if tophash != bucket::EMPTY_REST || !entry.is_null() || frag != 0 {
                    return Err(format!(
                        "{}, slot {i}: not empty after the bucket's last entry (tophash {tophash})",
                        at(j, in_pool)
                    ));
                }
            }
            let overflow = current.overflow.load(Ordering::Relaxed);
            if overflow.is_null() {
                break;
            }
            if used < SLOTS {
                return Err(format!(
                    "{} links on with {used} of its slots used",
                    at(j, in_pool)
                ));
            }
            match pool.get(next_pool) {
                Some(next) if std::ptr::eq(overflow.cast_const(), next) => current = next,
                _ => {
                    return Err(format!(
                        "{} links to {overflow:p}, not pool bucket {next_pool} of {} (the pool's next in order)",
                        at(j, in_pool),
                        pool.len()
                    ))
                }
            }
            in_pool = Some(next_pool);
            next_pool += 1;
        }
    }
    if next_pool != pool.len() {
        return Err(format!(
            "{} of the {} pool buckets are linked",
            next_pool,
            pool.len()
        ));
    }
    if sums != expected {
        return Err(format!("its slots hold {sums:?}, the source {expected:?}"));
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::check_image;
    use crate::gpu::testing::{rebuild, Engine, SyntheticTable};
    use crate::sync::atomic::Ordering;
    use crate::table::bucket::{Bucket, EMPTY_ONE};
    use crate::table::table::Table;

    const LOG2: u32 = 11;

    /// A reference rebuild to 2^LOG2 of a table with chains (about 9.8
    /// entries a bucket) and deleted slots.
    fn rebuilt() -> crate::gpu::testing::Rebuilt {
        let table = SyntheticTable::new(20_000, LOG2 - 1, 5, 30).unwrap();
        rebuild(&table, LOG2, Engine::Single).unwrap()
    }

    fn check(table: &Table) -> Result<(), String> {
        check_image(table.buckets(), table.laid_pool(), LOG2, table.sums())
    }

    /// Main bucket `j`'s slot `i`: its entry word and frag.
    fn slot(b: &Bucket, i: usize) -> (usize, u32) {
        (
            b.slots[i].load(Ordering::Relaxed) as usize,
            b.frags[i].load(Ordering::Relaxed),
        )
    }

    fn set_slot(b: &Bucket, i: usize, (entry, frag): (usize, u32)) {
        b.slots[i].store(entry as *mut _, Ordering::Relaxed);
        b.frags[i].store(frag, Ordering::Relaxed);
    }

    /// A main bucket whose chain has a pool bucket.
    fn chained(table: &Table) -> usize {
        (0..table.buckets().len())
            .find(|&j| {
                !table.buckets()[j]
                    .overflow
                    .load(Ordering::Relaxed)
                    .is_null()
            })
            .expect("a chain with a pool bucket")
    }

    /// Applies `spoil` to a fresh reference image and returns the check's
    /// verdict.
    fn spoiled(spoil: impl FnOnce(&Table)) -> String {
        let rebuilt = rebuilt();
        let table = rebuilt.table();
        assert_eq!(check(table), Ok(()));
        spoil(table);
        check(table).expect_err("a spoiled image passed its check")
    }

    #[test]
    fn every_engine_s_image_passes() {
        let table = SyntheticTable::new(20_000, LOG2 - 1, 5, 30).unwrap();
        for engine in [Engine::Single, Engine::Parallel(3)] {
            let rebuilt = rebuild(&table, LOG2, engine).unwrap();
            assert!(!rebuilt.table().laid_pool().is_empty());
            assert_eq!(check(rebuilt.table()), Ok(()));
        }
        // A shrink and a same-size rebuild too.
        for log2 in [LOG2 - 3, LOG2 - 1] {
            let rebuilt = rebuild(&table, log2, Engine::Single).unwrap();
            let t = rebuilt.table();
            assert_eq!(
                check_image(t.buckets(), t.laid_pool(), log2, t.sums()),
                Ok(())
            );
        }
    }

    #[test]
    fn entries_in_the_wrong_chain_are_refused() {
        // Two main buckets' first slots swapped (the sums are unchanged).
        let why = spoiled(|t| {
            let (a, b) = (&t.buckets()[3], &t.buckets()[4]);
            let (x, y) = (slot(a, 0), slot(b, 0));
            set_slot(a, 0, y);
            set_slot(b, 0, x);
        });
        assert!(why.starts_with("main bucket 3, slot 0:"), "{why}");
        assert!(why.contains("belongs in main bucket 4"), "{why}");
        // Every chain moved over by one bucket.
        let why = spoiled(|t| {
            let main = t.buckets();
            let last = main.len() - 1;
            let words = |b: &Bucket| {
                (
                    b.tophash.load(Ordering::Relaxed),
                    std::array::from_fn::<_, 8, _>(|i| slot(b, i)),
                    b.overflow.load(Ordering::Relaxed),
                )
            };
            let wrapped = words(&main[last]);
            for j in (0..last).rev() {
                let (tophash, slots, overflow) = words(&main[j]);
                let to = &main[j + 1];
                to.tophash.store(tophash, Ordering::Relaxed);
                (0..8).for_each(|i| set_slot(to, i, slots[i]));
                to.overflow.store(overflow, Ordering::Relaxed);
            }
            main[0].tophash.store(wrapped.0, Ordering::Relaxed);
            (0..8).for_each(|i| set_slot(&main[0], i, wrapped.1[i]));
            main[0].overflow.store(wrapped.2, Ordering::Relaxed);
        });
        assert!(why.starts_with("main bucket 0"), "{why}");
    }

    #[test]
    fn a_changed_entry_word_or_frag_is_refused() {
        let why = spoiled(|t| {
            let b = &t.buckets()[7];
            let (entry, frag) = slot(b, 1);
            set_slot(b, 1, (entry + 16, frag));
        });
        assert!(why.starts_with("its slots hold"), "{why}");
        // A frag bit above the mask: the same chain, other sums.
        let why = spoiled(|t| {
            let b = &t.buckets()[7];
            let (entry, frag) = slot(b, 1);
            set_slot(b, 1, (entry, frag ^ (1 << 30)));
        });
        assert!(why.starts_with("its slots hold"), "{why}");
    }

    #[test]
    fn bad_overflow_pointers_are_refused_without_being_followed() {
        // Garbage, the bucket itself (a loop), and a pool bucket out of order.
        let garbage = |t: &Table| {
            let j = chained(t);
            t.buckets()[j]
                .overflow
                .store(0xdead_bee0usize as *mut Bucket, Ordering::Relaxed);
            j
        };
        let why = spoiled(|t| {
            garbage(t);
        });
        assert!(
            why.contains("links to 0xdeadbee0, not pool bucket"),
            "{why}"
        );
        let why = spoiled(|t| {
            let j = chained(t);
            let own = &t.buckets()[j] as *const Bucket as *mut Bucket;
            t.buckets()[j].overflow.store(own, Ordering::Relaxed);
        });
        assert!(why.contains("not pool bucket"), "{why}");
        let why = spoiled(|t| {
            let j = chained(t);
            let later = &t.laid_pool()[t.laid_pool().len() - 1] as *const Bucket as *mut Bucket;
            t.buckets()[j].overflow.store(later, Ordering::Relaxed);
        });
        assert!(why.contains("not pool bucket 0 "), "{why}");
        // The last chain cut short: its pool buckets are never linked.
        let why = spoiled(|t| {
            let main = t.buckets();
            let j = (0..main.len())
                .rev()
                .find(|&j| !main[j].overflow.load(Ordering::Relaxed).is_null())
                .unwrap();
            t.buckets()[j]
                .overflow
                .store(std::ptr::null_mut(), Ordering::Relaxed);
        });
        assert!(why.contains("pool buckets are linked"), "{why}");
    }

    #[test]
    fn holes_leftovers_and_an_unwritten_image_are_refused() {
        let why = spoiled(|t| {
            let b = &t.buckets()[chained(t)];
            let word = b.tophash.load(Ordering::Relaxed);
            b.tophash.store(
                crate::table::bucket::with_byte(word, 2, EMPTY_ONE),
                Ordering::Relaxed,
            );
        });
        assert!(why.contains("slot 2: not empty after"), "{why}");
        let why = spoiled(|t| {
            // A bucket with a free last slot gets a frag there.
            let b = t
                .buckets()
                .iter()
                .find(|b| (b.tophash.load(Ordering::Relaxed) >> 56) as u8 == 0)
                .unwrap();
            b.frags[7].store(9, Ordering::Relaxed);
        });
        assert!(why.contains("slot 7: not empty after"), "{why}");
        // Nothing written at all (a copy back that never happened): a table
        // of the same size, empty, must not pass for the source's.
        let source = SyntheticTable::new(20_000, LOG2 - 1, 5, 30).unwrap();
        let expected = rebuild(&source, LOG2, Engine::Single)
            .unwrap()
            .table()
            .sums();
        let empty = Table::new(LOG2).unwrap();
        let why = check_image(empty.buckets(), &[], LOG2, expected).unwrap_err();
        assert!(why.starts_with("its slots hold"), "{why}");
        // An extra pool bucket, empty and unlinked.
        let rebuilt = rebuilt();
        let t = rebuilt.table();
        let pool = Table::pool(t.laid_pool().len() + 1, LOG2).unwrap();
        let why = check_image(t.buckets(), &pool.accessible()[..1], LOG2, t.sums()).unwrap_err();
        assert!(!why.is_empty());
    }

    /// A table checked in ranges on every core: each spoil lies in the last
    /// range, whose chains must carry on where the ranges before it ended.
    #[test]
    fn a_table_checked_in_ranges_is_refused_as_one_checked_in_order() {
        const BIG: u32 = 15;
        let source = SyntheticTable::new(300_000, BIG - 1, 11, 20).unwrap();
        let fresh = || rebuild(&source, BIG, Engine::Single).unwrap();
        let verdict = |t: &Table| check_image(t.buckets(), t.laid_pool(), BIG, t.sums());
        let rebuilt = fresh();
        assert!(rebuilt.table().buckets().len() >= crate::table::rehash::PARALLEL_MIN_BUCKETS);
        assert_eq!(verdict(rebuilt.table()), Ok(()));
        let last_chained = |t: &Table| {
            let main = t.buckets();
            (0..main.len())
                .rev()
                .find(|&j| !main[j].overflow.load(Ordering::Relaxed).is_null())
                .unwrap()
        };
        type Spoil = fn(&Table, usize);
        let spoils: [(Spoil, &str); 4] = [
            // Back to the first pool bucket (a pool bucket, out of order).
            (
                |t, j| {
                    let first = &t.laid_pool()[0] as *const Bucket as *mut Bucket;
                    t.buckets()[j].overflow.store(first, Ordering::Relaxed);
                },
                "not pool bucket",
            ),
            // Into the middle of a pool bucket.
            (
                |t, j| {
                    let p = t.buckets()[j].overflow.load(Ordering::Relaxed);
                    t.buckets()[j]
                        .overflow
                        .store(p.cast::<u8>().wrapping_add(8).cast(), Ordering::Relaxed);
                },
                "not pool bucket",
            ),
            // Cut: its pool buckets are linked by nobody.
            (
                |t, j| {
                    t.buckets()[j]
                        .overflow
                        .store(std::ptr::null_mut(), Ordering::Relaxed);
                },
                "pool buckets are linked",
            ),
            // An entry copied into the first main bucket with a free slot.
            (
                |t, j| {
                    let to = t
                        .buckets()
                        .iter()
                        .find(|b| b.slots[7].load(Ordering::Relaxed).is_null())
                        .unwrap();
                    let from = &t.buckets()[j];
                    let free = (0..8)
                        .find(|&i| to.slots[i].load(Ordering::Relaxed).is_null())
                        .unwrap();
                    set_slot(to, free, slot(from, 0));
                    let word = to.tophash.load(Ordering::Relaxed);
                    let top = (from.tophash.load(Ordering::Relaxed) & 0xff) as u8;
                    to.tophash.store(
                        crate::table::bucket::with_byte(word, free, top),
                        Ordering::Relaxed,
                    );
                },
                "which belongs in main bucket",
            ),
        ];
        for (spoil, why) in spoils {
            let rebuilt = fresh();
            let t = rebuilt.table();
            spoil(t, last_chained(t));
            let found = verdict(t).expect_err("a spoiled image passed its check");
            assert!(found.contains(why), "{found}");
        }
    }
}
