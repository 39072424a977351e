//! The CUDA device: cust for the context, module, stream and memory, the
//! driver API (`cust::sys`) for the raw async copies. Buffers, device and
//! pinned host alike, are kept and reused across rebuilds, grown when a larger
//! table comes (allocation and pinning cost more than a small table's copy).
//!
//! Transfers: the core packs the source image straight into pinned staging
//! memory (so the copy in is one DMA at full link speed, with no host copy of
//! its own), and only what the kernels read goes over: tophash, slot and frag
//! words, 104 of each bucket's 112 bytes, never an entry. The image comes back
//! by one copy into the core's arrays. Not measured yet (no GPU in the session
//! that wrote this; `cuda/gpu-check.sh` measures it): whether registering the
//! destination arrays, or chunked copy-out overlapping the fill on two
//! streams, pays for itself. The first is there to be measured:
//! `MAPCACHE_CUDA_REGISTER_OUTPUT=1` page-locks the destination arrays
//! (`cuMemHostRegister`) for the copy-out, so that it is one DMA with no driver
//! staging copy on the host, at the price of pinning (and unpinning) them per
//! rebuild; `gpu-check.sh` benchmarks both.

use std::ffi::{c_void, CStr};

use cust::context::Context;
use cust::device::{Device as CudaDevice, DeviceAttribute};
use cust::memory::{DeviceBuffer, LockedBuffer};
use cust::module::Module;
use cust::prelude::{Stream, StreamFlags};
use cust::sys::{self, CUresult};

use crate::abi::{self, Checksum, SourceBucket};
use crate::backend::{scan_levels, Backend, Fail, SCAN_CHUNK};

/// The kernels, compiled by `make cuda` (PTX for compute_90, which the CUDA
/// 13.0 driver JIT-compiles for any newer GPU, and SASS for sm_90).
const PTX: &str = include_str!(concat!(env!("MAPCACHE_CUDA_KERNELS"), "/rehash.ptx"));
const CUBIN: &[u8] = include_bytes!(concat!(env!("MAPCACHE_CUDA_KERNELS"), "/rehash.cubin"));

/// Threads per block of every kernel (a multiple of the warp).
const BLOCK: u32 = 256;

const SOURCE_WORDS: usize = 13;
const BUCKET_WORDS: usize = abi::BUCKET_BYTES / 8;

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
    /// The current job: (sources, chains, old_log2, new_log2, pool_len).
    job: Option<(usize, usize, u32, u32, u64)>,
    /// `MAPCACHE_CUDA_REGISTER_OUTPUT=1`: page-lock the core's new arrays for
    /// the copy-out (see the module docs), instead of a pageable copy.
    register_output: bool,
    module: Module,
    stream: Stream,
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
            job: None,
            register_output: std::env::var("MAPCACHE_CUDA_REGISTER_OUTPUT").is_ok_and(|v| v == "1"),
            module,
            stream,
            _context: context,
        })
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
        self.stream.synchronize().map_err(|e| {
            cuda_fail(
                abi::PLUGIN_E_KERNEL,
                &format!("cuStreamSynchronize ({what})"),
                e,
            )
        })
    }
}

/// A kernel argument.
fn arg<T>(value: &T) -> *mut c_void {
    value as *const T as *mut c_void
}

impl Backend for Device {
    fn stage(
        &mut self,
        sources: usize,
        chains: usize,
    ) -> Result<(*mut SourceBucket, *mut u32), Fail> {
        self.enter()?;
        self.job = None;
        let source = ensure_locked(
            &mut self.staged_source,
            sources * SOURCE_WORDS,
            "source staging",
        )?;
        let chain_starts = ensure_locked(&mut self.staged_chains, chains, "chain staging")?;
        self.job = Some((sources, chains, 0, 0, 0));
        Ok((source.cast(), chain_starts))
    }

    fn count(&mut self, old_log2: u32, new_log2: u32) -> Result<u64, Fail> {
        self.enter()?;
        let Some((sources, chains, ..)) = self.job else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "count before stage"));
        };
        if chains != (1usize << old_log2) + 1 {
            return Err(Fail::new(
                abi::PLUGIN_E_OTHER,
                "count: the staged chains are not 2^old_log2",
            ));
        }
        let source = ensure_device(&mut self.source, sources * SOURCE_WORDS, "source")?;
        let chain_starts = ensure_device(&mut self.chains, chains, "chain starts")?;
        let stream = self.stream.as_inner();
        // SAFETY: the staging buffers hold at least these many bytes (stage),
        // the device buffers too (ensure_device).
        unsafe {
            check(
                sys::cuMemcpyHtoDAsync_v2(
                    source,
                    self.staged_source.as_ref().unwrap().as_ptr().cast(),
                    sources * SOURCE_WORDS * 8,
                    stream,
                ),
                abi::PLUGIN_E_COPY,
                "cuMemcpyHtoDAsync (source)",
            )?;
            check(
                sys::cuMemcpyHtoDAsync_v2(
                    chain_starts,
                    self.staged_chains.as_ref().unwrap().as_ptr().cast(),
                    chains * 4,
                    stream,
                ),
                abi::PLUGIN_E_COPY,
                "cuMemcpyHtoDAsync (chain starts)",
            )?;
        }
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
        let total = ensure_device(&mut self.total, 1, "total")?;
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
        let mut pool_len = 0u64;
        // SAFETY: one word from the device into a local, written through a
        // pointer made from `&mut` (the copy completes before `sync` returns).
        unsafe {
            check(
                sys::cuMemcpyDtoHAsync_v2((&mut pool_len as *mut u64).cast(), total, 8, stream),
                abi::PLUGIN_E_COPY,
                "cuMemcpyDtoHAsync (pool length)",
            )?;
        }
        self.sync("count")?;
        self.job = Some((sources, chains, old_log2, new_log2, pool_len));
        Ok(pool_len)
    }

    fn fill(&mut self, main: *mut u8, pool: *mut u8) -> Result<Checksum, Fail> {
        self.enter()?;
        let Some((_, _, old_log2, new_log2, pool_len)) = self.job.take() else {
            return Err(Fail::new(abi::PLUGIN_E_OTHER, "fill before count"));
        };
        let buckets = 1usize << new_log2;
        let source = self.source.as_ref().unwrap().as_device_ptr().as_raw();
        let chain_starts = self.chains.as_ref().unwrap().as_device_ptr().as_raw();
        let starts = self.levels[0].as_ref().unwrap().as_device_ptr().as_raw();
        let main_out = ensure_device(&mut self.main, buckets * BUCKET_WORDS, "new buckets")?;
        let pool_out = ensure_device(&mut self.pool, pool_len as usize * BUCKET_WORDS, "new pool")?;
        let sums = ensure_device(&mut self.sums, 4, "sums")?;
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
        self.launch(
            "mc_fill",
            buckets as u64,
            &[
                arg(&source),
                arg(&chain_starts),
                arg(&old_log2),
                arg(&new_log2),
                arg(&starts),
                arg(&main_out),
                arg(&pool_out),
                arg(&pool_base),
                arg(&sums),
            ],
        )?;
        let mut written = [0u64; 4];
        let main_bytes = buckets * abi::BUCKET_BYTES;
        let pool_bytes = pool_len as usize * abi::BUCKET_BYTES;
        // Registered arrays, unregistered after the copies (a registration
        // that fails leaves that array to the pageable copy).
        let mut registered = Vec::new();
        if self.register_output {
            for (ptr, bytes) in [(main, main_bytes), (pool, pool_bytes)] {
                // SAFETY: host memory of the core's that outlives this call
                // and is not registered already.
                if bytes > 0
                    && unsafe { sys::cuMemHostRegister_v2(ptr.cast(), bytes, 0) }
                        == sys::cudaError_enum::CUDA_SUCCESS
                {
                    registered.push(ptr);
                }
            }
        }
        let mut copy = || -> Result<(), Fail> {
            // SAFETY: `main` and `pool` are host arrays of `buckets` and
            // `pool_len` buckets (the ABI); the device buffers are at least as
            // large; `written` is a local that outlives the synchronisation.
            unsafe {
                check(
                    sys::cuMemcpyDtoHAsync_v2(main.cast(), main_out, main_bytes, stream),
                    abi::PLUGIN_E_COPY,
                    "cuMemcpyDtoHAsync (new buckets)",
                )?;
                if pool_bytes > 0 {
                    check(
                        sys::cuMemcpyDtoHAsync_v2(pool.cast(), pool_out, pool_bytes, stream),
                        abi::PLUGIN_E_COPY,
                        "cuMemcpyDtoHAsync (new pool)",
                    )?;
                }
                check(
                    sys::cuMemcpyDtoHAsync_v2(written.as_mut_ptr().cast(), sums, 32, stream),
                    abi::PLUGIN_E_COPY,
                    "cuMemcpyDtoHAsync (sums)",
                )?;
            }
            self.sync("fill")
        };
        let copied = copy();
        for ptr in registered {
            // SAFETY: registered above; the copies are complete or failed
            // (the stream is synchronised, or the error is sticky).
            unsafe { sys::cuMemHostUnregister(ptr.cast()) };
        }
        copied?;
        Ok(Checksum {
            entries: written[0],
            slot_sum: written[1],
            frag_sum: written[2],
            tophash_sum: written[3],
        })
    }
}
