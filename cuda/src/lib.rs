//! `libmapcache_cuda.so`: mapcache's GPU rehash engine, a plugin the core loads
//! at run time (see `docs/ARCHITECTURE.md`, "The GPU engine"). It exports
//! `mapcache_cuda_plugin_v1`, the function table of the plugin ABI (`abi`, the
//! core's own `src/gpu/abi.rs`), and, outside that ABI, the benchmark's
//! transfer knob `mapcache_cuda_set_transfer_v1`.
//!
//! Built with feature `cuda` (`make cuda`) its device is the first CUDA GPU,
//! driven through cust (`device`); without it, an emulation on the host
//! (`emulated`) runs the same kernel source, for tests on machines without a GPU.
//!
//! Fault injection, for the checks of the core's fallback on a real device:
//! `MAPCACHE_CUDA_FAULT` = `open`, `alloc`, `copy`, `kernel` or `wrong` makes
//! the context's open, staging (or, in place, the count's allocation), count
//! or fill fail as that step's CUDA failure would, or (`wrong`) makes the fill
//! report a result that fails its check.

#[path = "../../src/gpu/abi.rs"]
pub mod abi;
pub mod backend;
#[cfg(feature = "cuda")]
mod device;
pub mod emulated;

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use abi::{Checksum, PluginV1, SourceBucket};
use backend::{Backend, Fail};

/// A step made to fail (`MAPCACHE_CUDA_FAULT`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Open,
    Alloc,
    Copy,
    Kernel,
    Wrong,
}

fn fault() -> Option<Fault> {
    match std::env::var("MAPCACHE_CUDA_FAULT").ok()?.as_str() {
        "open" => Some(Fault::Open),
        "alloc" => Some(Fault::Alloc),
        "copy" => Some(Fault::Copy),
        "kernel" => Some(Fault::Kernel),
        "wrong" => Some(Fault::Wrong),
        _ => None,
    }
}

fn injected(code: i32, step: &str) -> Fail {
    Fail::new(code, format!("{step} (injected by MAPCACHE_CUDA_FAULT)"))
}

struct Context {
    backend: Box<dyn Backend>,
    fault: Option<Fault>,
}

impl Context {
    /// Fails the step as `code` with the CUDA error `step` names when the
    /// injected fault is `fault`.
    fn inject(&self, fault: Fault, code: i32, step: &str) -> Result<(), Fail> {
        if self.fault == Some(fault) {
            return Err(injected(code, step));
        }
        Ok(())
    }
}

/// Writes `message` into the caller's buffer, cut to fit, NUL-terminated.
///
/// # Safety
/// `err` is NULL or writable for `len` bytes.
unsafe fn say(err: *mut c_char, len: usize, message: &str) {
    if err.is_null() || len == 0 {
        return;
    }
    let n = message.len().min(len - 1);
    // SAFETY: `n + 1 <= len` bytes of `err` (contract); `message` is readable.
    unsafe {
        std::ptr::copy_nonoverlapping(message.as_ptr(), err.cast::<u8>(), n);
        err.add(n).write(0);
    }
}

/// Runs one ABI call: its failure or panic becomes a code and a message.
///
/// # Safety
/// `err` is NULL or writable for `len` bytes.
unsafe fn run(err: *mut c_char, len: usize, f: impl FnOnce() -> Result<(), Fail>) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Fail::new(
            abi::PLUGIN_E_OTHER,
            "the plugin panicked (a bug in mapcache-cuda)",
        ))
    });
    match outcome {
        Ok(()) => abi::PLUGIN_OK,
        Err(fail) => {
            // SAFETY: forwarded contract.
            unsafe { say(err, len, &fail.message) };
            fail.code
        }
    }
}

/// # Safety
/// `ctx` came from `open` and is used by one call at a time (the ABI).
unsafe fn context<'a>(ctx: *mut c_void) -> Result<&'a mut Context, Fail> {
    // SAFETY: per the contract.
    unsafe { ctx.cast::<Context>().as_mut() }
        .ok_or_else(|| Fail::new(abi::PLUGIN_E_OTHER, "no context"))
}

/// Whether a plugin built without CUDA may open its emulated device (see
/// [`allow_emulation`]).
static EMULATION_ALLOWED: AtomicBool = AtomicBool::new(false);

/// Lets this plugin, built without CUDA, open its emulated device: for tests
/// that install it in-process. (A plugin file loaded by a host refuses, unless
/// `MAPCACHE_CUDA_EMULATE=1`: found beside `libmapcache.so` by mistake, a
/// single-threaded emulation would be a slow GPU engine.)
pub fn allow_emulation() {
    EMULATION_ALLOWED.store(true, Ordering::Relaxed);
}

fn new_backend() -> Result<Box<dyn Backend>, Fail> {
    #[cfg(feature = "cuda")]
    return Ok(Box::new(device::Device::open()?));
    #[cfg(not(feature = "cuda"))]
    {
        let allowed = EMULATION_ALLOWED.load(Ordering::Relaxed)
            || std::env::var("MAPCACHE_CUDA_EMULATE").is_ok_and(|v| v == "1");
        if !allowed {
            return Err(Fail::new(
                abi::PLUGIN_E_NO_DEVICE,
                "this libmapcache_cuda.so was built without CUDA (its device is an emulation \
                 for tests; set MAPCACHE_CUDA_EMULATE=1 to use it): build it with `make cuda`",
            ));
        }
        Ok(Box::new(emulated::Emulated::default()))
    }
}

unsafe extern "C" fn open(ctx: *mut *mut c_void, err: *mut c_char, len: usize) -> i32 {
    // SAFETY: per the ABI, `err` is writable for `len` bytes.
    unsafe {
        run(err, len, || {
            let fault = fault();
            if fault == Some(Fault::Open) {
                return Err(injected(
                    abi::PLUGIN_E_NO_DEVICE,
                    "cuInit: CUDA_ERROR_NO_DEVICE",
                ));
            }
            if ctx.is_null() {
                return Err(Fail::new(abi::PLUGIN_E_OTHER, "open: ctx is NULL"));
            }
            let context = Box::new(Context {
                backend: new_backend()?,
                fault,
            });
            // SAFETY: non-null, writable (the ABI).
            ctx.write(Box::into_raw(context).cast());
            Ok(())
        })
    }
}

unsafe extern "C" fn stage(
    ctx: *mut c_void,
    sources: u64,
    chains: u64,
    source: *mut *mut SourceBucket,
    chain_starts: *mut *mut u32,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: per the ABI.
    unsafe {
        run(err, len, || {
            let context = context(ctx)?;
            context.backend.forget();
            context.inject(
                Fault::Alloc,
                abi::PLUGIN_E_ALLOC,
                "cuMemAllocHost: CUDA_ERROR_OUT_OF_MEMORY",
            )?;
            let (s, c) = context.backend.stage(sources as usize, chains as usize)?;
            source.write(s);
            chain_starts.write(c);
            Ok(())
        })
    }
}

/// Table sizes a count takes: at most 2^31 buckets (the core's tables stop
/// at 2^30).
fn logs_in_range(call: &str, old_log2: u32, new_log2: u32) -> Result<(), Fail> {
    if old_log2 > 31 || new_log2 > 31 {
        return Err(Fail::new(
            abi::PLUGIN_E_OTHER,
            format!("{call}: log2 out of range"),
        ));
    }
    Ok(())
}

unsafe extern "C" fn count(
    ctx: *mut c_void,
    old_log2: u32,
    new_log2: u32,
    pool_len: *mut u64,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: per the ABI.
    unsafe {
        run(err, len, || {
            let context = context(ctx)?;
            // `count` consumes the staged job: failing before the backend
            // runs, it must not leave it for a `fill`.
            let result = (|| {
                context.inject(
                    Fault::Copy,
                    abi::PLUGIN_E_COPY,
                    "cuMemcpyHtoDAsync: CUDA_ERROR_ILLEGAL_ADDRESS",
                )?;
                logs_in_range("count", old_log2, new_log2)
            })();
            if result.is_err() {
                context.backend.forget();
            }
            result?;
            pool_len.write(context.backend.count(old_log2, new_log2)?);
            Ok(())
        })
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn count_in_place(
    ctx: *mut c_void,
    main: *const u8,
    pool: *const u8,
    pool_len: u64,
    old_log2: u32,
    new_log2: u32,
    new_pool_len: *mut u64,
    source_sum: *mut Checksum,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: per the ABI.
    unsafe {
        run(err, len, || {
            let context = context(ctx)?;
            context.backend.forget();
            // No staging here: the device buffers are what it allocates.
            context.inject(
                Fault::Alloc,
                abi::PLUGIN_E_ALLOC,
                "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY",
            )?;
            context.inject(
                Fault::Copy,
                abi::PLUGIN_E_COPY,
                "cuMemcpyHtoDAsync: CUDA_ERROR_ILLEGAL_ADDRESS",
            )?;
            logs_in_range("count_in_place", old_log2, new_log2)?;
            if main.is_null() || (pool.is_null() && pool_len > 0) {
                return Err(Fail::new(abi::PLUGIN_E_OTHER, "count_in_place: NULL array"));
            }
            let (total, sum) = context
                .backend
                .count_in_place(main, pool, pool_len, old_log2, new_log2)?;
            new_pool_len.write(total);
            source_sum.write(sum);
            Ok(())
        })
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn fill(
    ctx: *mut c_void,
    main: *mut u8,
    main_len: u64,
    pool: *mut u8,
    pool_len: u64,
    sum: *mut Checksum,
    err: *mut c_char,
    len: usize,
) -> i32 {
    // SAFETY: per the ABI.
    unsafe {
        run(err, len, || {
            let context = context(ctx)?;
            // The core's arrays must be what the count laid out: the kernels
            // write by the count's layout, and nothing may land past them.
            if let Some((laid_main, laid_pool)) = context.backend.laid_out() {
                if (laid_main, laid_pool) != (main_len, pool_len) {
                    context.backend.forget();
                    return Err(Fail::new(
                        abi::PLUGIN_E_OTHER,
                        format!(
                            "fill: the core's arrays hold {main_len} and {pool_len} buckets, \
                             the count laid out {laid_main} and {laid_pool}"
                        ),
                    ));
                }
            }
            context.inject(
                Fault::Kernel,
                abi::PLUGIN_E_KERNEL,
                "cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED",
            )?;
            let mut written = context.backend.fill(main, pool)?;
            if context.fault == Some(Fault::Wrong) {
                written.entries = written.entries.wrapping_sub(1);
            }
            sum.write(written);
            Ok(())
        })
    }
}

unsafe extern "C" fn close(ctx: *mut c_void) {
    if !ctx.is_null() {
        // SAFETY: made by `open` with Box::into_raw, closed once (the ABI).
        let _ = catch_unwind(AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(ctx.cast::<Context>()) })
        }));
    }
}

/// The plugin's function table.
pub static PLUGIN: PluginV1 = PluginV1 {
    struct_size: std::mem::size_of::<PluginV1>(),
    abi_version: abi::PLUGIN_ABI_VERSION,
    reserved: 0,
    name: if cfg!(feature = "cuda") {
        c"mapcache-cuda".as_ptr()
    } else {
        c"mapcache-cuda (emulated device)".as_ptr()
    },
    open,
    stage,
    count,
    fill,
    close,
    count_in_place,
};

/// The plugin ABI's entry point (see `abi::PLUGIN_SYMBOL`).
#[no_mangle]
pub extern "C" fn mapcache_cuda_plugin_v1() -> *const PluginV1 {
    &PLUGIN
}

/// The benchmark's transfer knob, outside the plugin ABI (the core never calls
/// it; `gpu-bench --transfers` does, through `mapcache::gpu::testing`): from
/// the next rebuild on, every context of this plugin moves the tables as told
/// (`register_input`, `register_output`: nonzero to page-lock the old table's
/// arrays for an in-place copy-in, the core's new arrays for the copy-out;
/// `chunks`: the fill's chunks, 1 to 64) instead of as the environment said
/// when it opened (`MAPCACHE_CUDA_REGISTER_INPUT`, `..._OUTPUT`, `..._CHUNKS`);
/// `chunks` 0 puts the environment's settings back. A process-wide setting
/// behind a lock, so that the benchmark need not change its environment while
/// the driver's threads may read it. Returns `PLUGIN_OK`, or `PLUGIN_E_OTHER`
/// with `chunks` over 64, and
/// `PLUGIN_E_NO_DEVICE` from a plugin built without CUDA (its emulated device
/// copies nothing, so it has no transfers to set).
#[no_mangle]
pub extern "C" fn mapcache_cuda_set_transfer_v1(
    register_input: u32,
    register_output: u32,
    chunks: u32,
) -> i32 {
    #[cfg(feature = "cuda")]
    return match device::set_transfer(register_input != 0, register_output != 0, chunks) {
        Ok(()) => abi::PLUGIN_OK,
        Err(fail) => fail.code,
    };
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (register_input, register_output, chunks);
        abi::PLUGIN_E_NO_DEVICE
    }
}
