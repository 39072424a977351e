//! Holding a map's write flag from another thread while the test thread
//! collides with it: the deterministic overlap the misuse tests are built on
//! (each test file includes this with `#[path]`).

use std::sync::Barrier;
use std::thread;

use mapcache::Map;

/// Runs `collide` on this thread, labelled `collider`, while a thread labelled
/// `holder` holds the write flag a write of `key` would take; clears this
/// thread's label afterwards.
pub fn while_held<R>(
    map: &Map,
    key: &[u8],
    (holder, collider): (&str, &str),
    collide: impl FnOnce() -> R,
) -> R {
    let (holding, release) = (Barrier::new(2), Barrier::new(2));
    thread::scope(|s| {
        s.spawn(|| {
            mapcache::set_thread_label(holder);
            let flag = map.debug_hold_write_flag(key).unwrap();
            holding.wait();
            release.wait();
            drop(flag);
        });
        mapcache::set_thread_label(collider);
        holding.wait();
        let result = collide();
        release.wait();
        mapcache::clear_thread_label();
        result
    })
}
