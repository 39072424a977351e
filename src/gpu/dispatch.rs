//! The engine a map rebuilds with: the CPU engine it was configured with, or the
//! GPU for tables at or above the threshold, with the CPU as the fallback.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::loader::{self, Plugin};
use super::{job, GpuStatus};
use crate::config::{GpuMode, DEFAULT_GPU_THRESHOLD};
use crate::error::{Error, Result};
use crate::table::rehash::RehashEngine;
use crate::table::table::Table;

/// The CPU engine, and the GPU in front of it (see the module docs).
pub(crate) struct GpuDispatch {
    cpu: Box<dyn RehashEngine>,
    mode: GpuMode,
    threshold: usize,
    /// The configured plugin, absolute (a relative path made so at
    /// construction); `None`: beside the library.
    pub(super) plugin_path: Option<PathBuf>,
    /// Why the latest of this map's rebuilds that failed on the GPU failed
    /// (kept when later ones succeed: a fault that comes and goes is still
    /// seen), for `status`.
    last_failure: Mutex<Option<String>>,
    gpu_rebuilds: AtomicU64,
    fallbacks: AtomicU64,
}

impl GpuDispatch {
    pub(crate) fn new(
        cpu: Box<dyn RehashEngine>,
        mode: GpuMode,
        threshold: usize,
        plugin_path: Option<PathBuf>,
    ) -> GpuDispatch {
        GpuDispatch {
            cpu,
            mode,
            threshold: if threshold == 0 {
                DEFAULT_GPU_THRESHOLD
            } else {
                threshold
            },
            // A relative path is the working directory's now, when the map is
            // made (as the config documents), not at the first large rebuild,
            // nor a name for the loader's search path.
            plugin_path: plugin_path.map(|path| std::path::absolute(&path).unwrap_or(path)),
            last_failure: Mutex::new(None),
            gpu_rebuilds: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// The plugin, loading it on first use (process-wide).
    fn plugin(&self) -> std::result::Result<Arc<Plugin>, String> {
        loader::load(self.plugin_path.as_deref())
    }

    /// For `Map::new`: under `force`, the engine must load.
    pub(crate) fn check(&self) -> Result<()> {
        if self.mode == GpuMode::Force {
            self.plugin().map_err(Error::Gpu)?;
        }
        Ok(())
    }

    /// Whether the GPU engine is active and, if not, why (loads it if needed).
    pub(crate) fn status(&self) -> GpuStatus {
        let (active, reason) = match self.mode {
            GpuMode::Off => (false, "off".to_string()),
            _ => match self.plugin() {
                Err(reason) => (false, reason),
                Ok(plugin) => {
                    let failure = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
                    let mut reason = format!("active: {}", plugin.description);
                    if let Some(failure) = failure.as_ref() {
                        let outcome = match self.mode {
                            GpuMode::Force => "was an error (force)",
                            _ => "fell back to the CPU",
                        };
                        reason.push_str(&format!(
                            "; the latest GPU rebuild to fail {outcome}: {failure}"
                        ));
                    }
                    (true, reason)
                }
            },
        };
        GpuStatus {
            active,
            reason,
            gpu_rebuilds: self.gpu_rebuilds.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// A GPU failure: an error under `force` (which runs nothing on the CPU,
    /// so it is no fallback), else the CPU's table.
    fn fall_back(&self, src: &Table, new_log2: u32, reason: String) -> Result<Table> {
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        if self.mode == GpuMode::Force {
            return Err(Error::Gpu(reason));
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.cpu.rehash(src, new_log2)
    }
}

impl RehashEngine for GpuDispatch {
    fn name(&self) -> &'static str {
        self.cpu.name()
    }

    fn rehash(&self, src: &Table, new_log2: u32) -> Result<Table> {
        // The entries a table of the larger size is built for (the load factor).
        let sized_for = (13usize << src.log2().max(new_log2)) / 2;
        if self.mode == GpuMode::Off || sized_for < self.threshold {
            return self.cpu.rehash(src, new_log2);
        }
        let plugin = match self.plugin() {
            Ok(plugin) => plugin,
            Err(reason) => return self.fall_back(src, new_log2, reason),
        };
        // One rebuild at a time per device context. Under `auto` a second shard
        // growing meanwhile takes the CPU rather than wait.
        let context = match self.mode {
            GpuMode::Force => Some(plugin.lock()),
            _ => plugin.try_lock(),
        };
        let Some(mut context) = context else {
            return self.cpu.rehash(src, new_log2);
        };
        match job::rehash(&plugin, &mut context, src, new_log2, plugin.source)
            .map(|(table, _)| table)
        {
            Ok(table) => {
                self.gpu_rebuilds.fetch_add(1, Ordering::Relaxed);
                Ok(table)
            }
            Err(reason) => {
                drop(context);
                self.fall_back(src, new_log2, reason)
            }
        }
    }
}
