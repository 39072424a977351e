//! The one place where calls cross from C into Rust: every entry point runs its body
//! through [`run`] (or [`run_with`]), which catches panics so that none unwinds into
//! the host (`MAPCACHE_E_INTERNAL` instead), and turns a [`Fail`] into its status
//! after storing its message for `mapcache_last_error()`.

use std::any::Any;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::last_error;
use super::status::{self, mapcache_status, MAPCACHE_E_INTERNAL, MAPCACHE_E_INVALID_ARG};

/// A failed call: its status and the message for `mapcache_last_error()`.
#[derive(Debug)]
pub(crate) struct Fail {
    status: mapcache_status,
    message: Cow<'static, str>,
    /// Whether the message is prefixed with the entry point's name. Core errors are
    /// not: their text (e.g. the misuse report) is part of the contract.
    prefixed: bool,
}

impl Fail {
    /// A failure of `status` whose message names the argument or problem.
    #[cold]
    pub(crate) fn new(status: mapcache_status, message: impl Into<Cow<'static, str>>) -> Fail {
        Fail {
            status,
            message: message.into(),
            prefixed: true,
        }
    }

    /// `MAPCACHE_E_INVALID_ARG` with a message naming the argument.
    #[cold]
    pub(crate) fn arg(message: impl Into<Cow<'static, str>>) -> Fail {
        Fail::new(MAPCACHE_E_INVALID_ARG, message)
    }

    /// The status of this failure.
    pub(crate) fn status(&self) -> mapcache_status {
        self.status
    }

    /// Stores the message for `mapcache_last_error()` and returns the status.
    #[cold]
    pub(crate) fn report(self, function: &str) -> mapcache_status {
        let message = if self.prefixed {
            format!("{function}: {}", self.message)
        } else {
            self.message.into_owned()
        };
        last_error::set(message);
        self.status
    }

    /// The message as `mapcache_last_error()` would show it for `function`.
    pub(crate) fn message_for(&self, function: &str) -> String {
        if self.prefixed {
            format!("{function}: {}", self.message)
        } else {
            self.message.to_string()
        }
    }
}

impl From<crate::Error> for Fail {
    /// The header's one rule for messages: a message about the call's
    /// arguments starts with the function's name (and, in a batch, the key's
    /// index), while the core's own reports (misuse, out of memory, and the
    /// snapshot, loader and GPU failures, which name their step) keep their
    /// text. The core's argument errors are of the first kind: an out-of-range
    /// config field (named as the host's `cfg->` field), an invalid argument
    /// (a save path naming no file, a loader asking for its own key), and an
    /// entry too large for a bounded cache.
    #[cold]
    fn from(e: crate::Error) -> Fail {
        let status = status::of_error(&e);
        let (message, prefixed) = match e {
            crate::Error::InvalidConfig(m) => (format!("cfg->{m}"), true),
            crate::Error::InvalidArgument(m) => (m, true),
            e @ crate::Error::TooLarge { .. } => (e.to_string(), true),
            e => (e.to_string(), false),
        };
        Fail {
            status,
            message: Cow::Owned(message),
            prefixed,
        }
    }
}

/// Runs the body of the entry point `function`: its status, the status of its
/// `Fail` (message stored), or `MAPCACHE_E_INTERNAL` if it panicked.
#[inline]
pub(crate) fn run(
    function: &'static str,
    body: impl FnOnce() -> Result<mapcache_status, Fail>,
) -> mapcache_status {
    // AssertUnwindSafe: after a panic the call returns MAPCACHE_E_INTERNAL and
    // nothing observes the half-done state of the closure's captures, which are
    // the call's own arguments. The map's invariants do not depend on unwinding
    // (its write flag is released by a guard's Drop, which runs during the unwind).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(fail)) => fail.report(function),
        Err(payload) => internal(function, payload),
    }
}

/// Like [`run`] for the few entry points that return no status (`mapcache_free`,
/// `mapcache_iter_free`, `mapcache_config_init`) or a pointer: a panic returns
/// `on_panic` after storing the message; a `Fail` stores its message and returns
/// `on_fail`.
#[inline]
pub(crate) fn run_with<T: Copy>(
    function: &'static str,
    on_fail: T,
    on_panic: T,
    body: impl FnOnce() -> Result<T, Fail>,
) -> T {
    // AssertUnwindSafe: as in `run`.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(fail)) => {
            fail.report(function);
            on_fail
        }
        Err(payload) => {
            internal(function, payload);
            on_panic
        }
    }
}

#[cold]
#[inline(never)]
fn internal(function: &'static str, payload: Box<dyn Any + Send>) -> mapcache_status {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    };
    // Dropping a payload can itself panic (a pathological Drop); keep that inside.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    last_error::set(format!(
        "{function}: internal error (a bug in mapcache, please report it): {what}"
    ));
    MAPCACHE_E_INTERNAL
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        // SAFETY: mapcache_last_error returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(super::super::last_error::mapcache_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn failures_set_the_message_and_outcomes_do_not() {
        assert_eq!(
            run("f", || Err(Fail::arg("x is NULL"))),
            MAPCACHE_E_INVALID_ARG
        );
        assert_eq!(last(), "f: x is NULL");
        assert_eq!(run("g", || Ok(super::super::status::MAPCACHE_NOT_FOUND)), 1);
        assert_eq!(last(), "f: x is NULL");
        let core = crate::Error::KeyTooLong { len: 70000 };
        let text = core.to_string();
        assert_eq!(
            run("h", || Err(Fail::from(core))),
            super::super::status::MAPCACHE_E_KEY_TOO_LONG
        );
        assert_eq!(last(), text, "core messages are not prefixed");
    }

    #[test]
    fn panics_become_internal_errors() {
        assert_eq!(run("p", || panic!("boom {}", 42)), MAPCACHE_E_INTERNAL);
        assert!(last().starts_with("p: internal error"));
        assert!(last().contains("boom 42"));
        assert_eq!(run_with("q", 1u8, 2u8, || panic!("static")), 2);
        assert!(last().contains("static"));
        assert_eq!(run_with("q", 1u8, 2u8, || Err(Fail::arg("bad"))), 1);
        assert_eq!(last(), "q: bad");
    }
}
