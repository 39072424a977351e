//! `mapcache_gpu_status`: whether a cache's GPU engine is active and, if not,
//! why, for C hosts. `mapcache_gpu_info` is versioned by its first field as
//! `mapcache_stats` is: fields are only appended, the host states its size.

use std::ffi::c_char;
use std::mem::size_of;

use super::args;
use super::boundary;
use super::handle::{self, mapcache_t};
use super::host_struct;
use super::status::{mapcache_status, MAPCACHE_OK};
use crate::GpuStatus;

/// Bytes of `mapcache_gpu_info.reason`, its NUL included.
pub const MAPCACHE_GPU_REASON_LEN: usize = 512;

/// What `mapcache_gpu_status` reports. Set `struct_size` to
/// `sizeof(mapcache_gpu_info)` before the call; fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct mapcache_gpu_info {
    /// `sizeof(mapcache_gpu_info)` as the host knows it, set by the host (the
    /// library writes only that many bytes and leaves it as it was).
    pub struct_size: usize,
    /// 1: large rebuilds of this cache run on the GPU. 0: they run on the CPU.
    pub active: u32,
    /// Zero.
    pub reserved: u32,
    /// Rebuilds this cache did on the GPU.
    pub gpu_rebuilds: u64,
    /// Rebuilds meant for the GPU that ran on the CPU instead. (Under auto, a
    /// rebuild that finds the device busy with another shard's runs on the
    /// CPU and is counted in neither.)
    pub fallbacks: u64,
    /// NUL-terminated, cut to fit: when active, the plugin's name and file (and
    /// the last GPU failure, if a rebuild has fallen back, even if later ones
    /// did not); otherwise why not: "off", "libcuda.so.1 not found ...", "no
    /// CUDA device: ...", "plugin not found at <path>", or the CUDA error of
    /// the step that failed.
    pub reason: [c_char; MAPCACHE_GPU_REASON_LEN],
}

/// The size of the first `mapcache_gpu_info`.
const V1_SIZE: usize = size_of::<mapcache_gpu_info>();
// The header states it (the smallest `struct_size` accepted); 64-bit targets.
const _: () = assert!(V1_SIZE == 544);

/// The host's struct of `struct_size` bytes, filled from `status`.
fn of(status: &GpuStatus, struct_size: usize) -> mapcache_gpu_info {
    let mut reason: [c_char; MAPCACHE_GPU_REASON_LEN] = [0; MAPCACHE_GPU_REASON_LEN];
    let bytes = status.reason.as_bytes();
    let len = bytes.len().min(MAPCACHE_GPU_REASON_LEN - 1);
    for (to, &from) in reason.iter_mut().zip(&bytes[..len]) {
        *to = from as c_char;
    }
    mapcache_gpu_info {
        struct_size,
        active: u32::from(status.active),
        reserved: 0,
        gpu_rebuilds: status.gpu_rebuilds,
        fallbacks: status.fallbacks,
        reason,
    }
}

/// ============ 8. GPU ENGINE ============
/// mapcache_gpu_status (and the config's `gpu_mode`, `gpu_threshold`,
/// `gpu_plugin_path`).
///
/// Fills `*out` with whether `cache` rebuilds its large tables on the GPU and,
/// if not, why (see `mapcache_gpu_info`). Unless the cache was made with
/// `MAPCACHE_GPU_OFF`, this loads the GPU engine if no rebuild has yet: the
/// CUDA driver `libcuda.so.1`, the plugin, a context on the first device (once
/// per process and plugin path; a failure is kept, not retried).
///
/// Loading reads the process's environment: the engine's settings
/// (`MAPCACHE_GPU_SOURCE`, `MAPCACHE_CUDA_*`, `docs/ARCHITECTURE.md`), which
/// neither the library nor its plugin reads again, and the CUDA driver's own
/// variables (such as `CUDA_VISIBLE_DEVICES`), read by the driver as it starts.
/// Without this call the load happens in `mapcache_new` under
/// `MAPCACHE_GPU_FORCE`, else at the first rebuild of a table at or over the
/// threshold, on the thread of the write (or of the snapshot load's workers)
/// that grew it. C's `getenv` is not safe
/// against a concurrent `setenv`, so a host that changes its environment while
/// other threads run (`setenv`, Go's `os.Setenv`, Python's `os.environ[...] =`)
/// should call this once at start-up, before it does.
///
/// Set `out->struct_size = sizeof(mapcache_gpu_info)` first: the library writes
/// exactly that many bytes and leaves `struct_size` as it was.
///
/// Ownership: `*out` is the caller's. Thread-safety: any thread, concurrently
/// with any call on `cache` but `mapcache_free`.
///
/// Returns:
/// - `MAPCACHE_OK` (whatever the engine's state: an inactive engine is not an
///   error).
/// - `MAPCACHE_E_INVALID_ARG`: `out` NULL, or `out->struct_size` smaller than
///   the first `mapcache_gpu_info` (544 bytes) or larger than 4096 (nothing
///   was written);
///   `cache` NULL.
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `out` must be NULL or valid for reading a `size_t` and writing
/// `out->struct_size` bytes (any alignment).
#[no_mangle]
pub unsafe extern "C" fn mapcache_gpu_status(
    cache: *mut mapcache_t,
    out: *mut mapcache_gpu_info,
) -> mapcache_status {
    boundary::run("mapcache_gpu_status", || {
        args::out(out, "out")?;
        // SAFETY: non-null and readable for its first field (contract).
        let size =
            unsafe { host_struct::stated_size(out.cast(), V1_SIZE, "mapcache_gpu_info", "out") }?;
        match handle::with_map(cache, |inner| Ok(inner.map.gpu_status())) {
            Ok(status) => {
                // SAFETY: writable for `size` bytes (contract); the struct is a local.
                unsafe { host_struct::write(out, size, &of(&status, size)) };
                Ok(MAPCACHE_OK)
            }
            Err(fail) => {
                // Nothing left of what `*out` held before (the header's rule for
                // out-parameters after an error), as `mapcache_stats_get` does.
                let nothing = GpuStatus {
                    active: false,
                    reason: String::new(),
                    gpu_rebuilds: 0,
                    fallbacks: 0,
                };
                // SAFETY: as above.
                unsafe { host_struct::write(out, size, &of(&nothing, size)) };
                Err(fail)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;
    use crate::ffi::config::{defaults, MAPCACHE_GPU_OFF};
    use crate::ffi::handle::{mapcache_free, mapcache_new};
    use crate::ffi::status::MAPCACHE_E_INVALID_ARG;

    fn new_cache(gpu_mode: u32) -> *mut mapcache_t {
        let cfg = crate::ffi::config::mapcache_config {
            gpu_mode,
            gpu_plugin_path: c"/nonexistent/libmapcache_cuda.so".as_ptr(),
            ..defaults()
        };
        let mut cache = ptr::null_mut();
        // SAFETY: a valid config and out-pointer.
        assert_eq!(unsafe { mapcache_new(&cfg, &mut cache) }, MAPCACHE_OK);
        cache
    }

    fn reason(info: &mapcache_gpu_info) -> String {
        let bytes: Vec<u8> = info.reason.iter().map(|&c| c as u8).collect();
        std::ffi::CStr::from_bytes_until_nul(&bytes)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn status_of_an_off_cache_and_of_one_without_a_driver_or_plugin() {
        let off = new_cache(MAPCACHE_GPU_OFF);
        let mut info = mapcache_gpu_info {
            struct_size: size_of::<mapcache_gpu_info>(),
            active: 7,
            reserved: 7,
            gpu_rebuilds: 7,
            fallbacks: 7,
            reason: [0x2B; MAPCACHE_GPU_REASON_LEN],
        };
        // SAFETY: a live cache and a writable struct.
        assert_eq!(unsafe { mapcache_gpu_status(off, &mut info) }, MAPCACHE_OK);
        assert_eq!((info.active, info.gpu_rebuilds, info.fallbacks), (0, 0, 0));
        assert_eq!(reason(&info), "off");
        assert_eq!(info.struct_size, size_of::<mapcache_gpu_info>());

        let auto = new_cache(crate::ffi::config::MAPCACHE_GPU_AUTO);
        // SAFETY: as above.
        assert_eq!(unsafe { mapcache_gpu_status(auto, &mut info) }, MAPCACHE_OK);
        assert_eq!(info.active, 0);
        let why = reason(&info);
        assert!(
            why.starts_with("libcuda.so.1 not found")
                || why == "plugin not found at /nonexistent/libmapcache_cuda.so",
            "{why}"
        );
        // SAFETY: live caches, freed once.
        unsafe {
            mapcache_free(off);
            mapcache_free(auto);
        }
    }

    #[test]
    fn a_short_struct_size_is_refused_and_nothing_written() {
        let cache = new_cache(MAPCACHE_GPU_OFF);
        let mut bytes = vec![0xABu8; size_of::<mapcache_gpu_info>()];
        bytes[..8].copy_from_slice(&16usize.to_ne_bytes());
        // SAFETY: the buffer is larger than the struct size it states.
        let status = unsafe { mapcache_gpu_status(cache, bytes.as_mut_ptr().cast()) };
        assert_eq!(status, MAPCACHE_E_INVALID_ARG);
        assert!(bytes[8..].iter().all(|&b| b == 0xAB));
        // SAFETY: NULL out is checked.
        assert_eq!(
            unsafe { mapcache_gpu_status(cache, ptr::null_mut()) },
            MAPCACHE_E_INVALID_ARG
        );
        // SAFETY: live, freed once.
        unsafe { mapcache_free(cache) };
    }

    /// After an error on the handle (NULL, freed), `*out` holds zeros, not
    /// what it held before; `struct_size` is left as the host set it.
    #[test]
    fn an_error_on_the_handle_leaves_zeros() {
        let freed = new_cache(MAPCACHE_GPU_OFF);
        // SAFETY: live, freed once; a freed handle is detected (handle.rs).
        unsafe { mapcache_free(freed) };
        for cache in [ptr::null_mut(), freed] {
            let mut bytes = vec![0x5Au8; size_of::<mapcache_gpu_info>()];
            bytes[..8].copy_from_slice(&V1_SIZE.to_ne_bytes());
            // SAFETY: the buffer holds a whole struct and states its size.
            let status = unsafe { mapcache_gpu_status(cache, bytes.as_mut_ptr().cast()) };
            assert_ne!(status, MAPCACHE_OK);
            assert_eq!(bytes[..8], V1_SIZE.to_ne_bytes());
            assert!(bytes[8..].iter().all(|&b| b == 0), "{cache:?}: {status}");
        }
    }

    #[test]
    fn a_long_reason_is_cut_and_terminated() {
        let info = of(
            &GpuStatus {
                active: false,
                reason: "x".repeat(2000),
                gpu_rebuilds: 0,
                fallbacks: 0,
            },
            V1_SIZE,
        );
        assert_eq!(info.reason[MAPCACHE_GPU_REASON_LEN - 1], 0);
        assert_eq!(reason(&info).len(), MAPCACHE_GPU_REASON_LEN - 1);
    }
}
