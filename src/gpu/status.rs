//! What `gpu_status` reports.

/// Whether a map's GPU engine is active and, if not, why
/// ([`crate::Map::gpu_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuStatus {
    /// The plugin is loaded with a context on a device: rebuilds of tables at or
    /// above the threshold run on the GPU.
    pub active: bool,
    /// When active, the plugin's name and file (and the last GPU failure, if a
    /// rebuild has fallen back, even if later ones did not); otherwise why not:
    /// `"off"`, "libcuda.so.1 not found ...", "no CUDA device: ...", "plugin not found at <path>", or the
    /// CUDA error of the step that failed.
    pub reason: String,
    /// Rebuilds done on the GPU by this map.
    pub gpu_rebuilds: u64,
    /// Rebuilds that were meant for the GPU and ran on the CPU instead (the
    /// engine unavailable, or failing at some step). Under `auto`, a rebuild
    /// that finds the device busy with another shard's runs on the CPU and is
    /// counted in neither.
    pub fallbacks: u64,
}
