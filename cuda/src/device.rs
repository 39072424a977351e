//! The CUDA device: cust for the context, module, streams, events and memory,
//! the driver API (`cust::sys`) for the raw async copies. Buffers, device and
//! pinned host alike, are kept and reused across rebuilds, grown when a larger
//! table comes (allocation and pinning cost more than a small table's copy).
//!
//! Transfers: either the core packs the source image straight into pinned
//! staging memory (so the copy in is one DMA at full link speed, with no host
//! copy of its own), and only what the kernels read goes over: tophash, slot
//! and frag words, 104 of each bucket's 112 bytes, never an entry; or
//! (`count_in_place`) the old table's two arrays are copied as they are, 112
//! bytes a bucket, with no host pass over them: from pageable memory, or
//! page-locked for the copy with `MAPCACHE_CUDA_REGISTER_INPUT=1` (registered
//! and unregistered within the call). The image comes back into the core's
//! arrays, as [`Transfer`] says: environment variables read once, when the
//! context opens (when the core first loads the engine), not at each rebuild
//! (a rebuild runs on a writer's thread, and a `getenv` there would race with
//! any host thread's `setenv`, which glibc does not make safe; the one read at
//! the load is what the core's docs tell hosts about), or set for the next
//! rebuilds by a benchmark
//! through [`set_transfer`] (`mapcache_cuda_set_transfer_v1`, so that one
//! benchmark process measures every choice on the same table with no change
//! to its environment; `cuda/gpu-check.sh` does):
//!
//! - `MAPCACHE_CUDA_CHUNKS=K` (default 1): the fill runs as K launches over K
//!   ranges of new buckets on the compute stream, an event after each; the
//!   copy stream waits for chunk k's event and copies chunk k's buckets and
//!   pool buckets (contiguous, by the prefix sum: chunk k being new buckets
//!   `lo_k..lo_(k+1)`, its pool indices are `starts[lo_k]..starts[lo_(k+1)]`,
//!   read back after the scan, the last one the pool's length), so
//!   the copy-out of chunk k overlaps the fill of the chunks after it.
//! - `MAPCACHE_CUDA_REGISTER_OUTPUT=1`: the core's arrays are page-locked
//!   (`cuMemHostRegister`) for the copy-out, so that it is DMA at link speed
//!   with no driver staging copy on the host (whose CPU time counts against
//!   the engine), at the price of pinning and unpinning them per rebuild.
//!
//! Not measured yet (no GPU in the sessions that wrote this): which of the
//! combinations is fastest end to end; the default stays the simplest until
//! `gpu-check.sh`'s numbers say otherwise.
//!
//! Whatever a call's outcome, when it returns no copy is still queued that
//! reads the staging memory or the old table's arrays (in place) or writes
//! the core's new arrays: every error path
//! synchronises both streams first ([`Device::settle`]), so that the core may
//! free or reuse its arrays (its CPU fallback does) and the next `stage` may
//! overwrite the staging memory.

use std::ffi::{c_void, CStr};
use std::sync::Mutex;

use cust::context::Context;
use cust::device::{Device as CudaDevice, DeviceAttribute};
use cust::memory::{DeviceBuffer, LockedBuffer};
use cust::module::Module;
use cust::prelude::{Stream, StreamFlags};
use cust::sys::{self, CUresult};

use crate::abi::{self, Checksum, SourceBucket};
use crate::backend::{
    checksum, in_place_bytes, scan_levels, Backend, Fail, BAD_SOURCE, SCAN_CHUNK,
};

/// The kernels, compiled by `make cuda` (PTX for compute_90, which the CUDA
/// 13.0 driver JIT-compiles for any newer GPU, and SASS for sm_90).
const PTX: &str = include_str!(concat!(env!("MAPCACHE_CUDA_KERNELS"), "/rehash.ptx"));
const CUBIN: &[u8] = include_bytes!(concat!(env!("MAPCACHE_CUDA_KERNELS"), "/rehash.cubin"));

/// Threads per block of every kernel (a multiple of the warp).
const BLOCK: u32 = 256;

const SOURCE_WORDS: usize = 13;
const BUCKET_WORDS: usize = abi::BUCKET_BYTES / 8;

/// The most chunks of a chunked copy-out (each is a launch, an event and two
/// copies; beyond a few dozen the per-call overhead is all that grows).
const MAX_CHUNKS: usize = 64;

/// How the new image comes back (see the module docs): the environment's,
/// read when the context opens, unless a benchmark set one ([`set_transfer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transfer {
    /// Page-lock the core's arrays for the copy-out.
    register: bool,
    /// Page-lock the old table's arrays for the copy-in of an in-place source.
    register_input: bool,
    /// Fill and copy-out chunks (1: one fill, then the copy).
    chunks: usize,
}

impl Transfer {
    fn from_env() -> Transfer {
        let var = |name| std::env::var(name).ok();
        Transfer::parse(
            var("MAPCACHE_CUDA_REGISTER_OUTPUT").as_deref(),
            var("MAPCACHE_CUDA_REGISTER_INPUT").as_deref(),
            var("MAPCACHE_CUDA_CHUNKS").as_deref(),
        )
    }

    /// Unset or unparsable values are the defaults (a benchmark knob, not a
    /// setting a host makes: no error path).
    fn parse(
        register: Option<&str>,
        register_input: Option<&str>,
        chunks: Option<&str>,
    ) -> Transfer {
        Transfer {
            register: register == Some("1"),
            register_input: register_input == Some("1"),
            chunks: chunks
                .and_then(|c| c.trim().parse::<usize>().ok())
                .unwrap_or(1)
                .clamp(1, MAX_CHUNKS),
        }
    }
}

/// The transfer a benchmark set for every context's next rebuilds (none: each
/// context's own, from the environment when it opened).
static SET_TRANSFER: Mutex<Option<Transfer>> = Mutex::new(None);

/// Sets how every context's rebuilds from the next `stage` or `count_in_place`
/// on move the tables, in place of the environment's settings (a benchmark's
/// knob, `mapcache_cuda_set_transfer_v1`): page-lock the old table's arrays for
/// an in-place copy-in, page-lock the core's new arrays for the copy-out, and
/// the fill's chunks, 1 to [`MAX_CHUNKS`]; chunks 0 puts the environment's
/// settings back.
pub fn set_transfer(register_input: bool, register_output: bool, chunks: u32) -> Result<(), Fail> {
    if chunks as usize > MAX_CHUNKS {
        return Err(Fail::new(
            abi::PLUGIN_E_OTHER,
            format!("set_transfer: chunks must be 0 to {MAX_CHUNKS}, not {chunks}"),
        ));
    }
    *SET_TRANSFER.lock().unwrap_or_else(|e| e.into_inner()) = (chunks > 0).then_some(Transfer {
        register: register_output,
        register_input,
        chunks: chunks as usize,
    });
    Ok(())
}

/// A driver event (cust's `Event` does not lend its handle to a raw
/// `cuStreamWaitEvent`, and its own `wait_event` consumes the event).
struct RawEvent(sys::CUevent);

impl RawEvent {
    fn new() -> Result<RawEvent, Fail> {
        let mut event = std::ptr::null_mut();
        // SAFETY: writes one event handle; timing disabled (the lightest kind).
        check(
            unsafe {
                sys::cuEventCreate(
                    &mut event,
                    sys::CUevent_flags_enum::CU_EVENT_DISABLE_TIMING as u32,
                )
            },
            abi::PLUGIN_E_OTHER,
            "cuEventCreate",
        )?;
        Ok(RawEvent(event))
    }
}

impl Drop for RawEvent {
    fn drop(&mut self) {
        // SAFETY: created by cuEventCreate, destroyed once, before the context
        // (the field order of `Device`).
        unsafe { sys::cuEventDestroy_v2(self.0) };
    }
}

/// Where the rebuild in progress reads the old table from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The staged records and chain starts, which the core packed.
    Packed,
    /// `source` holds a copy of the old table's arrays (main buckets, then the
    /// pool's): the old pool's host address and length.
    InPlace { pool_base: u64, pool_len: u64 },
}

/// The rebuild in progress, from `stage` (or `count_in_place`) to `fill`.
struct Job {
    source: Source,
    sources: usize,
    chains: usize,
    old_log2: u32,
    new_log2: u32,
    pool_len: u64,
    transfer: Transfer,
    /// The new buckets' chunks: chunk k is buckets `buckets[k]..buckets[k+1]`
    /// and pool buckets `pool[k]..pool[k+1]` (set by `count`).
    buckets: Vec<u64>,
    pool: Vec<u64>,
}

/// Chunk boundaries of `buckets` new buckets cut into (at most) `chunks`
/// nonempty ranges: `chunks + 1` increasing indices from 0 to `buckets`.
fn chunk_bounds(buckets: u64, chunks: usize) -> Vec<u64> {
    let chunks = (chunks as u64).clamp(1, buckets.max(1));
    (0..=chunks).map(|k| buckets * k / chunks).collect()
}

/// A cust error as a failure. Its `Debug` (the variant's name), not its
/// `Display`, which asks the driver for a description and fails the whole
/// `format!` when the driver has none (the stub library returns an error for
/// that too: a panic here, caught, was how this was found).
fn cuda_fail(code: i32, what: &str, error: cust::error::CudaError) -> Fail {
    Fail::new(code, format!("{what}: {error:?}"))
}

fn check(result: CUresult, code: i32, what: &str) -> Result<(), Fail> {
    if result == sys::cudaError_enum::CUDA_SUCCESS {
        return Ok(());
    }
    let mut name = std::ptr::null();
    // SAFETY: cuGetErrorName writes a static string pointer (or fails).
    unsafe { sys::cuGetErrorName(result, &mut name) };
    let name = if name.is_null() {
        format!("{result:?}")
    } else {
        // SAFETY: a static NUL-terminated string from the driver.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    };
    Err(Fail::new(code, format!("{what}: {name}")))
}

/// A grow-only device buffer.
fn ensure_device<T: cust::memory::DeviceCopy>(
    buffer: &mut Option<DeviceBuffer<T>>,
    len: usize,
    what: &str,
) -> Result<sys::CUdeviceptr, Fail> {
    let len = len.max(1);
    if buffer.as_ref().map_or(true, |b| b.len() < len) {
        *buffer = None;
        // SAFETY: device memory of plain words; every word a kernel reads was
        // written first (by a copy or an earlier kernel).
        let fresh = unsafe { DeviceBuffer::uninitialized(len) }.map_err(|e| {
            cuda_fail(
                abi::PLUGIN_E_ALLOC,
                &format!("cuMemAlloc ({what}, {len} words)"),
                e,
            )
        })?;
        *buffer = Some(fresh);
    }
    Ok(buffer.as_ref().unwrap().as_device_ptr().as_raw())
}

/// A grow-only pinned host buffer.
fn ensure_locked<T: cust::memory::DeviceCopy + Default>(
    buffer: &mut Option<LockedBuffer<T>>,
    len: usize,
    what: &str,
) -> Result<*mut T, Fail> {
    let len = len.max(1);
    if buffer.as_ref().map_or(true, |b| b.len() < len) {
        *buffer = None;
        let fresh = LockedBuffer::new(&T::default(), len).map_err(|e| {
            cuda_fail(
                abi::PLUGIN_E_ALLOC,
                &format!("cuMemAllocHost ({what}, {len})"),
                e,
            )
        })?;
        *buffer = Some(fresh);
    }
    Ok(buffer.as_mut().unwrap().as_mut_ptr())
}

/// One context on the first device, with its reusable buffers. Fields drop in
/// order: the buffers and the module before the stream, all before the context.
pub struct Device {
    staged_source: Option<LockedBuffer<u64>>,
    staged_chains: Option<LockedBuffer<u32>>,
    source: Option<DeviceBuffer<u64>>,
    chains: Option<DeviceBuffer<u32>>,
    levels: Vec<Option<DeviceBuffer<u32>>>,
    main: Option<DeviceBuffer<u64>>,
    pool: Option<DeviceBuffer<u64>>,
    sums: Option<DeviceBuffer<u64>>,
    total: Option<DeviceBuffer<u64>>,
    /// The in-place source's sums (taken bucket by bucket) and its flag of a
    /// chain that leaves the pool.
    source_sums: Option<DeviceBuffer<u64>>,
    bad: Option<DeviceBuffer<u32>>,
    job: Option<Job>,
    /// The environment's transfer settings, read when this context opened.
    transfer: Transfer,
    /// One per fill chunk, recorded on `stream` after the chunk's launch.
    events: Vec<RawEvent>,
    module: Module,
    /// Copies in, kernels, and the small copies back.
    stream: Stream,
    /// The copy-out of the image, chunk by chunk after `stream`'s events.
    copy_stream: Stream,
    _context: Context,
}

// SAFETY: the context is the device's primary context, made current on the
// calling thread at every call (`enter`); the plugin ABI calls one context
// from one thread at a time.
unsafe impl Send for Device {}

impl Device {
    pub fn open() -> Result<Device, Fail> {
        // The raw call, for the driver's own name of the error (the stub
        // library's CUDA_ERROR_STUB_LIBRARY, a missing device's
        // CUDA_ERROR_NO_DEVICE), which cust's error type may not know.
        // SAFETY: cuInit takes flags only (0) and may be called repeatedly.
        check(unsafe { sys::cuInit(0) }, abi::PLUGIN_E_NO_DEVICE, "cuInit")?;
        let device = CudaDevice::get_device(0)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_NO_DEVICE, "cuDeviceGet(0)", e))?;
        let context = Context::new(device)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_NO_DEVICE, "cuDevicePrimaryCtxRetain", e))?;
        let major = device
            .get_attribute(DeviceAttribute::ComputeCapabilityMajor)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_NO_DEVICE, "cuDeviceGetAttribute", e))?;
        let minor = device
            .get_attribute(DeviceAttribute::ComputeCapabilityMinor)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_NO_DEVICE, "cuDeviceGetAttribute", e))?;
        // The sm_90 SASS where it runs as is, else the PTX, JIT-compiled.
        let module = if (major, minor) == (9, 0) {
            Module::from_cubin(CUBIN, &[]).or_else(|_| Module::from_ptx(PTX, &[]))
        } else {
            Module::from_ptx(PTX, &[])
        }
        .map_err(|e| cuda_fail(abi::PLUGIN_E_KERNEL, "cuModuleLoadData (rehash kernels)", e))?;
        let stream = Stream::new(StreamFlags::NON_BLOCKING, None)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_OTHER, "cuStreamCreate", e))?;
        let copy_stream = Stream::new(StreamFlags::NON_BLOCKING, None)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_OTHER, "cuStreamCreate (copy-out)", e))?;
        Ok(Device {
            staged_source: None,
            staged_chains: None,
            source: None,
            chains: None,
            levels: Vec::new(),
            main: None,
            pool: None,
            sums: None,
            total: None,
            source_sums: None,
            bad: None,
            job: None,
            transfer: Transfer::from_env(),
            events: Vec::new(),
            module,
            stream,
            copy_stream,
            _context: context,
        })
    }

    /// The transfer settings of the rebuild starting now: a benchmark's, if
    /// it set any, else the environment's when this context opened.
    fn transfer(&self) -> Transfer {
        SET_TRANSFER
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(self.transfer)
    }

    /// Makes this context current on the calling thread (rebuilds come from
    /// whichever writer thread grows a shard).
    fn enter(&self) -> Result<(), Fail> {
        cust::context::CurrentContext::set_current(&self._context)
            .map_err(|e| cuda_fail(abi::PLUGIN_E_OTHER, "cuCtxSetCurrent", e))
    }

    fn launch(&self, name: &str, threads: u64, args: &[*mut c_void]) -> Result<(), Fail> {
        let function = self.module.get_function(name).map_err(|e| {
            cuda_fail(
                abi::PLUGIN_E_KERNEL,
                &format!("cuModuleGetFunction({name})"),
                e,
            )
        })?;
        let blocks = threads.div_ceil(BLOCK as u64).max(1);
        let blocks = u32::try_from(blocks).map_err(|_| {
            Fail::new(
                abi::PLUGIN_E_KERNEL,
                format!("{name}: {threads} threads is too many"),
            )
        })?;
        // SAFETY: `args` point to values of the kernel's parameter types, in
        // order (the callers below mirror rehash.cu's signatures).
        unsafe { self.stream.launch(&function, blocks, BLOCK, 0, args) }
            .map_err(|e| cuda_fail(abi::PLUGIN_E_KERNEL, &format!("cuLaunchKernel({name})"), e))
    }

    fn sync(&self, what: &str) -> Result<(), Fail> {
        for stream in [&self.stream, &self.copy_stream] {
            stream.synchronize().map_err(|e| {
                cuda_fail(
                    abi::PLUGIN_E_KERNEL,
                    &format!("cuStreamSynchronize ({what})"),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// After a failure: waits for whatever was queued, ignoring its errors
    /// (the failure being reported is the first), so that no copy reads the
    /// staging memory or writes the core's arrays after the call returns.
    fn settle(&self) {
        let _ = self.stream.synchronize();
        let _ = self.copy_stream.synchronize();
    }

    /// At least `n` events for the chunks.
    fn ensure_events(&mut self, n: usize) -> Result<(), Fail> {
        while self.events.len() < n {
            self.events.push(RawEvent::new()?);
        }
        Ok(())
    }
}

/// Queues the copy of buckets `range` of the device image at `device` into
/// the host image at `host` on `stream` (nothing for an empty range).
///
/// # Safety
/// Both images hold at least `range.end` buckets, and the host image stays
/// valid until the stream is synchronised.
unsafe fn copy_out(
    host: *mut u8,
    device: sys::CUdeviceptr,
    range: std::ops::Range<usize>,
    stream: sys::CUstream,
    what: &str,
) -> Result<(), Fail> {
    if range.is_empty() {
        return Ok(());
    }
    let offset = range.start * abi::BUCKET_BYTES;
    // SAFETY: within both images (the contract).
    check(
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(
                host.add(offset).cast(),
                device + offset as u64,
                range.len() * abi::BUCKET_BYTES,
                stream,
            )
        },
        abi::PLUGIN_E_COPY,
        &format!("cuMemcpyDtoHAsync ({what})"),
    )
}

/// A kernel argument.
fn arg<T>(value: &T) -> *mut c_void {
    value as *const T as *mut c_void
}

impl Backend for Device {
    fn forget(&mut self) {
        self.job = None;
    }

    fn laid_out(&self) -> Option<(u64, u64)> {
        // A job that was staged but not counted has no chunks yet.
        self.job
            .as_ref()
            .filter(|job| job.buckets.len() >= 2)
            .map(|job| (1u64 << job.new_log2, job.pool_len))
    }

    fn stage(
        &mut self,
        sources: usize,
        chains: usize,
    ) -> Result<(*mut SourceBucket, *mut u32), Fail> {
        self.job = None;
        self.enter()?;
        let source = ensure_locked(
            &mut self.staged_source,
            sources * SOURCE_WORDS,
            "source staging",
        )?;
        let chain_starts = ensure_locked(&mut self.staged_chains, chains, "chain staging")?;
        self.job = Some(Job {
            source: Source::Packed,
            sources,
            chains,
            old_log2: 0,
            new_log2: 0,
            pool_len: 0,
            transfer: self.transfer(),
            buckets: Vec::new(),
            pool: Vec::new(),
        });
        Ok((source.cast(), chain_starts))
    }

    fn count(&mut self, old_log2: u32, new_log2: u32) -> Result<u64, Fail> {
        self.enter()?;
        let Some(mut job) = self.job.take() else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "count before stage"));
        };
        if job.chains != (1usize << old_log2) + 1 {
            return Err(Fail::new(
                abi::PLUGIN_E_OTHER,
                "count: the staged chains are not 2^old_log2",
            ));
        }
        job.buckets = chunk_bounds(1u64 << new_log2, job.transfer.chunks);
        (job.old_log2, job.new_log2) = (old_log2, new_log2);
        // Each chunk's first pool index (starts[lo]), the pool's length last.
        let mut pool = vec![0u32; job.buckets.len()];
        let mut pool_len = 0u64;
        let queued = self.queue_count(&job, old_log2, new_log2, &mut pool, &mut pool_len);
        let done = queued.and_then(|()| self.sync("count"));
        if let Err(fail) = done {
            self.settle();
            return Err(fail);
        }
        job.pool = pool.iter().map(|&p| u64::from(p)).collect();
        *job.pool.last_mut().unwrap() = pool_len;
        job.pool_len = pool_len;
        self.job = Some(job);
        Ok(pool_len)
    }

    fn fill(&mut self, main: *mut u8, pool: *mut u8) -> Result<Checksum, Fail> {
        self.enter()?;
        // A job that was staged but not counted has no chunks yet.
        let Some(job) = self.job.take().filter(|job| job.buckets.len() >= 2) else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "fill before count"));
        };
        let main_bytes = (1usize << job.new_log2) * abi::BUCKET_BYTES;
        let pool_bytes = job.pool_len as usize * abi::BUCKET_BYTES;
        // SAFETY: the core's arrays, which outlive this call.
        let registered = if job.transfer.register {
            unsafe { register(&[(main, main_bytes), (pool, pool_bytes)]) }
        } else {
            Vec::new()
        };
        let mut written = [0u64; 4];
        let queued = self.queue_fill(&job, main, pool, &mut written);
        let done = queued.and_then(|()| self.sync("fill"));
        if done.is_err() {
            self.settle();
        }
        // SAFETY: registered above; no copy into them is queued any more (both
        // streams synchronised, or settled after an error).
        unsafe { unregister(registered) };
        done?;
        Ok(checksum(written))
    }

    fn count_in_place(
        &mut self,
        main: *const u8,
        pool: *const u8,
        pool_len: u64,
        old_log2: u32,
        new_log2: u32,
    ) -> Result<(u64, Checksum), Fail> {
        self.job = None;
        self.enter()?;
        let transfer = self.transfer();
        let mut job = Job {
            source: Source::InPlace {
                pool_base: pool as u64,
                pool_len,
            },
            // Checked by in_place_bytes below before anything is copied.
            sources: (1usize << old_log2).saturating_add(pool_len as usize),
            chains: 0,
            old_log2,
            new_log2,
            pool_len: 0,
            transfer,
            buckets: chunk_bounds(1u64 << new_log2, transfer.chunks),
            pool: Vec::new(),
        };
        let (main_bytes, pool_bytes) = in_place_bytes(old_log2, pool_len)?;
        // SAFETY: the old table's arrays, which outlive this call (the ABI).
        let registered = if job.transfer.register_input {
            unsafe { register(&[(main.cast_mut(), main_bytes), (pool.cast_mut(), pool_bytes)]) }
        } else {
            Vec::new()
        };
        let mut pool_starts = vec![0u32; job.buckets.len()];
        let (mut total, mut sums, mut bad) = (0u64, [0u64; 4], 0u32);
        let queued = self
            .queue_in_place(&job, main, pool, &mut sums, &mut bad)
            .and_then(|()| self.queue_scan(&job, &mut pool_starts, &mut total));
        let done = queued.and_then(|()| self.sync("count"));
        if done.is_err() {
            self.settle();
        }
        // SAFETY: registered above; no copy from them is queued any more.
        unsafe { unregister(registered) };
        done?;
        if bad != 0 {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, BAD_SOURCE));
        }
        job.pool = pool_starts.iter().map(|&p| u64::from(p)).collect();
        *job.pool.last_mut().unwrap() = total;
        job.pool_len = total;
        self.job = Some(job);
        Ok((total, checksum(sums)))
    }
}

/// Page-locks each nonempty range for DMA; returns those it locked (a range the
/// driver refuses, as one already registered by the host, or sharing a page
/// with another, is left to the pageable copy).
///
/// # Safety
/// Each range is host memory that stays allocated until [`unregister`].
unsafe fn register(ranges: &[(*mut u8, usize)]) -> Vec<*mut u8> {
    let mut registered = Vec::new();
    for &(ptr, bytes) in ranges {
        // SAFETY: per the contract.
        if bytes > 0
            && unsafe { sys::cuMemHostRegister_v2(ptr.cast(), bytes, 0) }
                == sys::cudaError_enum::CUDA_SUCCESS
        {
            registered.push(ptr);
        }
    }
    registered
}

/// Undoes [`register`].
///
/// # Safety
/// No queued copy uses the ranges any more.
unsafe fn unregister(registered: Vec<*mut u8>) {
    for ptr in registered {
        // SAFETY: registered by `register`; per the contract.
        unsafe { sys::cuMemHostUnregister(ptr.cast()) };
    }
}

impl Device {
    /// Queues the copy in, the count, the scan, and the copies back of the
    /// chunks' first pool indices (into `pool`) and the pool's length.
    /// `pool` and `pool_len` are written when the stream is synchronised.
    fn queue_count(
        &mut self,
        job: &Job,
        old_log2: u32,
        new_log2: u32,
        pool: &mut [u32],
        pool_len: &mut u64,
    ) -> Result<(), Fail> {
        let source = ensure_device(&mut self.source, job.sources * SOURCE_WORDS, "source")?;
        let chain_starts = ensure_device(&mut self.chains, job.chains, "chain starts")?;
        let stream = self.stream.as_inner();
        // SAFETY: the staging buffers hold at least these many bytes (stage),
        // the device buffers too (ensure_device).
        unsafe {
            check(
                sys::cuMemcpyHtoDAsync_v2(
                    source,
                    self.staged_source.as_ref().unwrap().as_ptr().cast(),
                    job.sources * SOURCE_WORDS * 8,
                    stream,
                ),
                abi::PLUGIN_E_COPY,
                "cuMemcpyHtoDAsync (source)",
            )?;
            check(
                sys::cuMemcpyHtoDAsync_v2(
                    chain_starts,
                    self.staged_chains.as_ref().unwrap().as_ptr().cast(),
                    job.chains * 4,
                    stream,
                ),
                abi::PLUGIN_E_COPY,
                "cuMemcpyHtoDAsync (chain starts)",
            )?;
        }
        let levels = self.ensure_levels(new_log2)?;
        self.launch(
            "mc_count",
            1 << new_log2,
            &[
                arg(&source),
                arg(&chain_starts),
                arg(&old_log2),
                arg(&new_log2),
                arg(&levels[0]),
            ],
        )?;
        self.queue_scan(job, pool, pool_len)
    }

    /// The scan's levels (device buffers), level 0 first, grown to fit.
    fn ensure_levels(&mut self, new_log2: u32) -> Result<Vec<sys::CUdeviceptr>, Fail> {
        let lens = scan_levels(1u64 << new_log2);
        self.levels.resize_with(lens.len(), || None);
        let mut levels = Vec::with_capacity(lens.len());
        for (i, &n) in lens.iter().enumerate() {
            levels.push(ensure_device(
                &mut self.levels[i],
                n as usize,
                "scan level",
            )?);
        }
        Ok(levels)
    }

    /// Queues the copy of the old table's arrays into `source` (main buckets,
    /// then the pool's), the source's sums and the in-place count (into level
    /// 0), and the copies back of the sums and the flag of a chain that leaves
    /// the pool (into `sums` and `bad`, when the stream is synchronised).
    fn queue_in_place(
        &mut self,
        job: &Job,
        main: *const u8,
        pool: *const u8,
        sums: &mut [u64; 4],
        bad: &mut u32,
    ) -> Result<(), Fail> {
        let Source::InPlace {
            pool_base,
            pool_len,
        } = job.source
        else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "not an in-place source"));
        };
        let main_len = 1usize << job.old_log2;
        let source = ensure_device(&mut self.source, job.sources * BUCKET_WORDS, "source")?;
        let source_sums = ensure_device(&mut self.source_sums, 4, "source sums")?;
        let bad_flag = ensure_device(&mut self.bad, 1, "source flag")?;
        let levels = self.ensure_levels(job.new_log2)?;
        let stream = self.stream.as_inner();
        // SAFETY: `main` and `pool` hold 2^old_log2 and pool_len buckets (the
        // ABI), `source` their sum (ensure_device); the small buffers are 32
        // and 4 bytes.
        unsafe {
            check(
                sys::cuMemcpyHtoDAsync_v2(
                    source,
                    main.cast(),
                    main_len * abi::BUCKET_BYTES,
                    stream,
                ),
                abi::PLUGIN_E_COPY,
                "cuMemcpyHtoDAsync (main buckets)",
            )?;
            if pool_len > 0 {
                check(
                    sys::cuMemcpyHtoDAsync_v2(
                        source + (main_len * abi::BUCKET_BYTES) as u64,
                        pool.cast(),
                        pool_len as usize * abi::BUCKET_BYTES,
                        stream,
                    ),
                    abi::PLUGIN_E_COPY,
                    "cuMemcpyHtoDAsync (pool)",
                )?;
            }
            check(
                sys::cuMemsetD8Async(source_sums, 0, 32, stream),
                abi::PLUGIN_E_COPY,
                "cuMemsetD8Async (source sums)",
            )?;
            check(
                sys::cuMemsetD8Async(bad_flag, 0, 4, stream),
                abi::PLUGIN_E_COPY,
                "cuMemsetD8Async (source flag)",
            )?;
        }
        let n = job.sources as u64;
        self.launch(
            "mc_source_sum",
            n,
            &[arg(&source), arg(&n), arg(&source_sums)],
        )?;
        self.launch(
            "mc_count_in_place",
            1 << job.new_log2,
            &[
                arg(&source),
                arg(&job.old_log2),
                arg(&pool_base),
                arg(&pool_len),
                arg(&bad_flag),
                arg(&job.new_log2),
                arg(&levels[0]),
            ],
        )?;
        // SAFETY: 32 and 4 bytes into `sums` and `bad`, which outlive the
        // synchronisation (the caller's `sync`, or `settle` on error).
        unsafe {
            check(
                sys::cuMemcpyDtoHAsync_v2(sums.as_mut_ptr().cast(), source_sums, 32, stream),
                abi::PLUGIN_E_COPY,
                "cuMemcpyDtoHAsync (source sums)",
            )?;
            check(
                sys::cuMemcpyDtoHAsync_v2((bad as *mut u32).cast(), bad_flag, 4, stream),
                abi::PLUGIN_E_COPY,
                "cuMemcpyDtoHAsync (source flag)",
            )?;
        }
        Ok(())
    }

    /// Queues the prefix sum over level 0 (each new bucket's overflow buckets,
    /// counted) and the copies back of the chunks' first pool indices (into
    /// `pool`) and the pool's length, written when the stream is synchronised.
    fn queue_scan(&mut self, job: &Job, pool: &mut [u32], pool_len: &mut u64) -> Result<(), Fail> {
        let new_log2 = job.new_log2;
        let lens = scan_levels(1u64 << new_log2);
        let levels = self.ensure_levels(new_log2)?;
        let total = ensure_device(&mut self.total, 1, "total")?;
        let stream = self.stream.as_inner();
        let chunk = SCAN_CHUNK;
        for i in 0..lens.len() - 1 {
            self.launch(
                "mc_scan_sums",
                lens[i + 1],
                &[
                    arg(&levels[i]),
                    arg(&lens[i]),
                    arg(&chunk),
                    arg(&levels[i + 1]),
                    arg(&lens[i + 1]),
                ],
            )?;
        }
        let top = lens.len() - 1;
        let null: sys::CUdeviceptr = 0;
        let one: u64 = 1;
        self.launch(
            "mc_scan_apply",
            1,
            &[
                arg(&levels[top]),
                arg(&lens[top]),
                arg(&chunk),
                arg(&null),
                arg(&one),
                arg(&total),
            ],
        )?;
        for i in (0..top).rev() {
            self.launch(
                "mc_scan_apply",
                lens[i + 1],
                &[
                    arg(&levels[i]),
                    arg(&lens[i]),
                    arg(&chunk),
                    arg(&levels[i + 1]),
                    arg(&lens[i + 1]),
                    arg(&null),
                ],
            )?;
        }
        // SAFETY: one word from the device into `pool_len`, and one into each
        // inner chunk boundary of `pool` (a chunk's first bucket is below
        // 2^new_log2, within level 0); both outlive the synchronisation that
        // completes the copies (the caller's `sync`, or `settle` on error).
        unsafe {
            check(
                sys::cuMemcpyDtoHAsync_v2((pool_len as *mut u64).cast(), total, 8, stream),
                abi::PLUGIN_E_COPY,
                "cuMemcpyDtoHAsync (pool length)",
            )?;
            let inner = job.buckets.len() - 1;
            for (start, &first) in pool[1..inner].iter_mut().zip(&job.buckets[1..inner]) {
                check(
                    sys::cuMemcpyDtoHAsync_v2(
                        (start as *mut u32).cast(),
                        levels[0] + first * 4,
                        4,
                        stream,
                    ),
                    abi::PLUGIN_E_COPY,
                    "cuMemcpyDtoHAsync (chunk's pool start)",
                )?;
            }
        }
        Ok(())
    }

    /// Queues the fill, chunk by chunk with an event after each, then the
    /// copy-out of each chunk on the copy stream after its event, and the sums
    /// (into `written`, when synchronised).
    fn queue_fill(
        &mut self,
        job: &Job,
        main: *mut u8,
        pool: *mut u8,
        written: &mut [u64; 4],
    ) -> Result<(), Fail> {
        let buckets = 1usize << job.new_log2;
        let source = self
            .source
            .as_ref()
            .map_or(0, |b| b.as_device_ptr().as_raw());
        let chain_starts = self
            .chains
            .as_ref()
            .map_or(0, |b| b.as_device_ptr().as_raw());
        let bad = self.bad.as_ref().map_or(0, |b| b.as_device_ptr().as_raw());
        let starts = self.levels[0].as_ref().unwrap().as_device_ptr().as_raw();
        let main_out = ensure_device(&mut self.main, buckets * BUCKET_WORDS, "new buckets")?;
        let pool_out = ensure_device(
            &mut self.pool,
            job.pool_len as usize * BUCKET_WORDS,
            "new pool",
        )?;
        let sums = ensure_device(&mut self.sums, 4, "sums")?;
        let chunks = job.buckets.len() - 1;
        self.ensure_events(chunks)?;
        let stream = self.stream.as_inner();
        let pool_base = pool as u64;
        // SAFETY: 32 bytes of `sums`.
        unsafe {
            check(
                sys::cuMemsetD8Async(sums, 0, 32, stream),
                abi::PLUGIN_E_COPY,
                "cuMemsetD8Async (sums)",
            )?;
        }
        for k in 0..chunks {
            let (first, end) = (job.buckets[k], job.buckets[k + 1]);
            // The source's parameters (rehash.cu: mc_fill's first four,
            // mc_fill_in_place's first six), then the ones both kernels share.
            let (kernel, mut args) = match &job.source {
                Source::Packed => (
                    "mc_fill",
                    vec![
                        arg(&source),
                        arg(&chain_starts),
                        arg(&job.old_log2),
                        arg(&job.new_log2),
                    ],
                ),
                Source::InPlace {
                    pool_base: old_pool_base,
                    pool_len: old_pool_len,
                } => (
                    "mc_fill_in_place",
                    vec![
                        arg(&source),
                        arg(&job.old_log2),
                        arg(old_pool_base),
                        arg(old_pool_len),
                        arg(&bad),
                        arg(&job.new_log2),
                    ],
                ),
            };
            args.extend([
                arg(&starts),
                arg(&main_out),
                arg(&pool_out),
                arg(&pool_base),
                arg(&sums),
                arg(&first),
                arg(&end),
            ]);
            self.launch(kernel, end - first, &args)?;
            // SAFETY: this context's event and stream.
            check(
                unsafe { sys::cuEventRecord(self.events[k].0, stream) },
                abi::PLUGIN_E_OTHER,
                "cuEventRecord",
            )?;
        }
        let copy_stream = self.copy_stream.as_inner();
        for k in 0..chunks {
            let (first, end) = (job.buckets[k] as usize, job.buckets[k + 1] as usize);
            let (pool_first, pool_end) = (job.pool[k] as usize, job.pool[k + 1] as usize);
            // SAFETY: the event and stream are this context's. `main` and
            // `pool` are host arrays of 2^new_log2 and pool_len buckets (the
            // ABI), the device buffers at least as large, and chunk k's ranges
            // lie within them (chunk_bounds; the pool starts are the scan's,
            // increasing up to pool_len); the caller synchronises (or
            // settles) before `main` and `pool` go back to the core.
            unsafe {
                check(
                    sys::cuStreamWaitEvent(copy_stream, self.events[k].0, 0),
                    abi::PLUGIN_E_OTHER,
                    "cuStreamWaitEvent (copy-out)",
                )?;
                copy_out(main, main_out, first..end, copy_stream, "new buckets")?;
                copy_out(
                    pool,
                    pool_out,
                    pool_first..pool_end,
                    copy_stream,
                    "new pool",
                )?;
            }
        }
        // SAFETY: `written` outlives the synchronisation (the caller's).
        unsafe {
            check(
                sys::cuMemcpyDtoHAsync_v2(written.as_mut_ptr().cast(), sums, 32, stream),
                abi::PLUGIN_E_COPY,
                "cuMemcpyDtoHAsync (sums)",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_settings() {
        let default = Transfer {
            register: false,
            register_input: false,
            chunks: 1,
        };
        assert_eq!(Transfer::parse(None, None, None), default);
        assert_eq!(Transfer::parse(Some("0"), Some("yes"), Some("x")), default);
        assert_eq!(
            Transfer::parse(Some("1"), Some("1"), Some(" 8 ")),
            Transfer {
                register: true,
                register_input: true,
                chunks: 8
            }
        );
        assert_eq!(Transfer::parse(None, None, Some("0")).chunks, 1);
        assert_eq!(Transfer::parse(None, None, Some("1000")).chunks, MAX_CHUNKS);
    }

    #[test]
    fn chunks_cover_the_buckets_in_order() {
        assert_eq!(chunk_bounds(8, 1), vec![0, 8]);
        assert_eq!(chunk_bounds(8, 3), vec![0, 2, 5, 8]);
        // Never an empty chunk: at most one per bucket.
        assert_eq!(chunk_bounds(2, 8), vec![0, 1, 2]);
        assert_eq!(chunk_bounds(1, 64), vec![0, 1]);
        for (buckets, chunks) in [(1u64 << 20, 7), (1000, 64), (5, 5)] {
            let b = chunk_bounds(buckets, chunks);
            assert_eq!((b[0], *b.last().unwrap()), (0, buckets));
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
