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
/// once every thread it started has finished. A panic in one of them is
/// resumed here, as `std::thread::scope` does.
pub(crate) fn scope<'env, R>(name: &'static str, body: impl FnOnce(&Spawner<'_, 'env>) -> R) -> R {
    #[cfg(not(crossbeam_loom))]
    {
        match crossbeam_utils::thread::scope(|scope| body(&Spawner { scope, name })) {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
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
