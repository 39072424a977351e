//! Scoped worker threads for the bulk jobs (a parallel rehash, a snapshot
//! load), which may run on a C host's main thread.
//!
//! Not `std::thread::scope`: it asks std for the calling thread's `Thread`
//! handle (to unpark it when the workers finish), and std keeps the handle of
//! a non-Rust host's main thread until exit behind an interior pointer, which
//! valgrind reports as "possibly lost" in every C host that loads a snapshot
//! (docs/ARCHITECTURE.md, "Process-wide state and leak checkers").
//! crossbeam-utils' scope waits on a wait group instead and never asks.
//!
//! Under loom (`--cfg crossbeam_loom`, where crossbeam-utils has no threads)
//! the work runs inline on the caller's thread; the models never reach the
//! bulk paths with more than one thread.

/// The workers' stack: std's default, named so that std does not read
/// `RUST_MIN_STACK` at the first spawn, which runs inside a write (a grow's
/// parallel rehash, the GPU engine's helper threads), where a `getenv` would
/// race any host thread's `setenv` (`docs/ARCHITECTURE.md`, "Settings are read
/// once"). The bulk jobs recurse nowhere; 2 MiB is plenty.
#[cfg(not(crossbeam_loom))]
const WORKER_STACK: usize = 2 << 20;

/// Starts worker threads named `name` for the length of [`scope`].
pub(crate) struct Spawner<'s, 'env> {
    #[cfg(not(crossbeam_loom))]
    scope: &'s crossbeam_utils::thread::Scope<'env>,
    #[cfg(crossbeam_loom)]
    _scope: std::marker::PhantomData<(&'s (), &'env ())>,
    name: &'static str,
}

impl<'env> Spawner<'_, 'env> {
    /// Runs `work` on a new thread of the scope; `false` if none could be
    /// started (the caller then does the work some other way).
    #[cfg(not(crossbeam_loom))]
    pub(crate) fn spawn(&self, work: impl FnOnce() + Send + 'env) -> bool {
        self.scope
            .builder()
            .name(self.name.to_owned())
            .stack_size(WORKER_STACK)
            .spawn(move |_| work())
            .is_ok()
    }

    /// Under loom: no thread is started.
    #[cfg(crossbeam_loom)]
    pub(crate) fn spawn(&self, work: impl FnOnce() + Send + 'env) -> bool {
        let _ = (work, self.name);
        false
    }
}

/// Runs `body`, which may start threads through its [`Spawner`], and returns
/// once every thread it started has finished. A panic of `body` or of one of
/// the threads is resumed here once they all have, with that panic's own
/// payload (the first thread's, if several panicked), so that its message
/// reaches `mapcache_last_error()`; `std::thread::scope` would replace it by
/// "a scoped thread panicked".
pub(crate) fn scope<'env, R>(name: &'static str, body: impl FnOnce(&Spawner<'_, 'env>) -> R) -> R {
    #[cfg(not(crossbeam_loom))]
    {
        match crossbeam_utils::thread::scope(|scope| body(&Spawner { scope, name })) {
            Ok(result) => result,
            // crossbeam collects the threads' payloads in a Vec (a panic of
            // `body` itself it resumes on its own).
            Err(panics) => match panics.downcast::<Vec<Box<dyn std::any::Any + Send>>>() {
                Ok(mut panics) if !panics.is_empty() => std::panic::resume_unwind(panics.remove(0)),
                Ok(_) => std::panic::resume_unwind(Box::new("a scoped thread panicked")),
                Err(other) => std::panic::resume_unwind(other),
            },
        }
    }
    #[cfg(crossbeam_loom)]
    {
        body(&Spawner {
            _scope: std::marker::PhantomData,
            name,
        })
    }
}

#[cfg(all(test, not(crossbeam_loom)))]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_started_thread_has_finished_when_scope_returns() {
        let done = AtomicUsize::new(0);
        let started = scope("mapcache-test", |spawner| {
            (0..4)
                .filter(|_| {
                    spawner.spawn(|| {
                        done.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .count()
        });
        assert_eq!(done.load(Ordering::Relaxed), started);
    }

    #[test]
    fn a_workers_panic_is_resumed_with_its_own_payload() {
        // The payload is what a C host reads in mapcache_last_error() after
        // MAPCACHE_E_INTERNAL (boundary::internal), so it must be the
        // worker's message, not a container of it.
        let caught = catch_unwind(AssertUnwindSafe(|| {
            scope("mapcache-test", |spawner| {
                let boom = String::from("boom");
                assert!(spawner.spawn(move || panic!("worker {boom}")));
            })
        }))
        .expect_err("the panic is resumed");
        assert_eq!(
            caught.downcast_ref::<String>().map(String::as_str),
            Some("worker boom")
        );
    }

    #[test]
    fn a_panic_of_the_body_is_resumed_after_the_workers_finish() {
        let done = AtomicUsize::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            scope("mapcache-test", |spawner| {
                let spawned = spawner.spawn(|| {
                    done.fetch_add(1, Ordering::Relaxed);
                });
                assert!(spawned);
                panic!("body")
            })
        }))
        .expect_err("the panic is resumed");
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"body"));
        assert_eq!(
            done.load(Ordering::Relaxed),
            1,
            "resumed before the thread ended"
        );
    }
}
