//! The GPU rehash engine: loading the plugin at run time and dispatching
//! rebuilds to it (see `docs/ARCHITECTURE.md`, "The GPU engine").
//!
//! The core never links the CUDA driver. A map whose config allows the GPU
//! (`GpuMode::Auto` or `Force`) loads, on first need, `libcuda.so.1` and then
//! the plugin (`cuda/`, `libmapcache_cuda.so`), both with `dlopen`; the plugin
//! runs the rehash's count, prefix-sum and fill steps as kernels and hands back
//! the new bucket arrays, byte for byte what the CPU engines build. Whatever
//! fails, at whatever step, the rebuild runs on the CPU instead (or, under
//! `Force`, the write fails with `Error::Gpu`, the map unchanged).
//!
//! One idea per file: `abi` (the plugin's function table), `dl` (dlopen),
//! `loader` (finding and opening it, once per process), `job` (one rebuild),
//! `image_check` (the check of what a rebuild hands back),
//! `dispatch` (GPU or CPU, and the fallback), `status` (what `gpu_status` says),
//! `testing` (hooks for the plugin's own tests and benchmarks).

pub mod abi;
mod dispatch;
mod dl;
mod image_check;
mod job;
mod loader;
mod status;
// Not under loom: its tables are images of plain memory.
#[cfg(not(loom))]
pub mod testing;

pub(crate) use dispatch::GpuDispatch;
pub use status::GpuStatus;

#[cfg(all(test, not(loom)))]
mod fallback_tests;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::abi;

    #[test]
    fn the_plugin_abi_matches_the_core_layouts() {
        assert_eq!(std::mem::size_of::<abi::SourceBucket>(), 104);
        assert_eq!(std::mem::size_of::<abi::Checksum>(), 32);
        assert_eq!(
            std::mem::size_of::<crate::table::bucket::Bucket>(),
            abi::BUCKET_BYTES
        );
        assert_eq!(abi::SLOTS, crate::table::bucket::SLOTS);
    }
}
