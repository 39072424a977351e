//! Finding and opening the GPU engine, once per process and plugin path: the CUDA
//! driver (`libcuda.so.1`), then the plugin (the configured path, or
//! `libmapcache_cuda.so` beside `libmapcache.so`), then its context on the first
//! device. The outcome is kept, success or failure, so that every map and every
//! rebuild after the first pays nothing to learn it; a failure's message is the
//! reason `gpu_status` reports.
//!
//! The load is also when the engine's environment variables are read, the
//! core's (`MAPCACHE_GPU_SOURCE`) here and the plugin's in its `open`, and
//! never after: a later read would be on a writer's thread, mid-rebuild,
//! racing any host thread's `setenv` (`docs/ARCHITECTURE.md`, "Settings are
//! read once").

use std::ffi::{c_char, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::abi::{self, PluginV1};
use super::dl::{self, Library};
use super::job::Source;

/// The driver's file name (its SONAME, which every driver install provides).
pub(crate) const DRIVER: &str = "libcuda.so.1";

/// A plugin's context: device buffers and staging memory, used by one rebuild
/// at a time.
pub(crate) struct Context(pub(crate) *mut c_void);

// SAFETY: the plugin's context is a heap object its functions may use from any
// thread, one call at a time (the mutex around it sees to that).
unsafe impl Send for Context {}

/// An opened plugin with its context.
pub(crate) struct Plugin {
    pub(crate) table: PluginV1,
    /// What status reports call it: its name and file.
    pub(crate) description: String,
    /// How maps' rebuilds send it the old table (`MAPCACHE_GPU_SOURCE`, read
    /// with the plugin's own settings when it loads, once per process and
    /// plugin path).
    pub(crate) source: Source,
    context: Mutex<Context>,
}

impl Plugin {
    /// The context, waiting for another rebuild that uses it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Context> {
        self.context.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The context if no other rebuild is using it.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, Context>> {
        match self.context.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let context = self.context.get_mut().unwrap_or_else(|e| e.into_inner());
        if !context.0.is_null() {
            // SAFETY: the context came from this table's `open` and is closed once.
            unsafe { (self.table.close)(context.0) };
        }
    }
}

/// The outcome of loading one plugin path.
type Loaded = Result<Arc<Plugin>, String>;

/// Every plugin path tried so far, with its outcome.
static PLUGINS: Mutex<Vec<(PathBuf, Loaded)>> = Mutex::new(Vec::new());

/// The driver, opened once per process (or the reason it could not be).
fn driver() -> Result<&'static Library, String> {
    static OPENED: OnceLock<Result<Library, String>> = OnceLock::new();
    OPENED
        .get_or_init(|| {
            Library::open(DRIVER).map_err(|e| format!("{DRIVER} not found (no NVIDIA driver): {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The path the plugin is loaded from: `configured`, or the plugin's file
/// beside the library this code is in.
pub(crate) fn plugin_path(configured: Option<&Path>) -> Result<PathBuf, String> {
    match configured {
        Some(path) => Ok(path.to_path_buf()),
        None => dl::own_directory()
            .map(|dir| dir.join(abi::PLUGIN_FILE))
            .ok_or_else(|| "the directory of libmapcache.so is unknown (dladdr failed)".into()),
    }
}

/// The plugin at `configured` (or beside the library), loaded on first use.
pub(crate) fn load(configured: Option<&Path>) -> Loaded {
    let path = plugin_path(configured)?;
    let mut plugins = PLUGINS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, loaded)) = plugins.iter().find(|(p, _)| *p == path) {
        return loaded.clone();
    }
    let loaded = open_plugin(&path, true).map(Arc::new);
    plugins.push((path, loaded.clone()));
    loaded
}

#[cfg(not(loom))]
/// Loads the plugin file at `path` without opening the driver first (a plugin
/// whose device is emulated on the host needs none), replacing what was there.
pub(crate) fn load_without_driver(path: &Path) -> Result<(), String> {
    let loaded = open_plugin(path, false).map(Arc::new);
    let result = loaded.as_ref().map(|_| ()).map_err(Clone::clone);
    let mut plugins = PLUGINS.lock().unwrap_or_else(|e| e.into_inner());
    plugins.retain(|(p, _)| p != path);
    plugins.push((path.to_path_buf(), loaded));
    result
}

#[cfg(not(loom))]
/// Makes `table` the plugin at `path`, as if loaded from there, without the
/// driver or a file (a test's fake device); replaces what was there.
///
/// # Safety
/// `table` is what a plugin's entry point returns (see `adopt`), and its
/// functions keep the ABI's contract (see `abi`).
pub(crate) unsafe fn install(path: &Path, table: *const PluginV1) -> Result<(), String> {
    let origin = format!("{} (installed)", path.display());
    // SAFETY: forwarded contract.
    let loaded = unsafe { adopt(table, &origin) }.and_then(|table| start(table, origin));
    let result = loaded.as_ref().map(|_| ()).map_err(Clone::clone);
    let mut plugins = PLUGINS.lock().unwrap_or_else(|e| e.into_inner());
    plugins.retain(|(p, _)| p != path);
    plugins.push((path.to_path_buf(), loaded.map(Arc::new)));
    result
}

fn open_plugin(path: &Path, with_driver: bool) -> Result<Plugin, String> {
    if with_driver {
        driver()?;
    }
    if path.is_dir() {
        return Err(format!(
            "plugin path {} is a directory, not libmapcache_cuda.so",
            path.display()
        ));
    }
    match std::fs::metadata(path) {
        Err(_) => return Err(format!("plugin not found at {}", path.display())),
        // A FIFO, a device (`/dev/zero`), a socket: there, but no library.
        Ok(meta) if !meta.is_file() => {
            return Err(format!(
                "plugin path {} is not a regular file, not libmapcache_cuda.so",
                path.display()
            ))
        }
        Ok(_) => {}
    }
    let library = Library::open_path(path)
        .map_err(|e| format!("plugin {} failed to load: {e}", path.display()))?;
    let symbol = library.symbol(abi::PLUGIN_SYMBOL).map_err(|e| {
        format!(
            "plugin {} does not export mapcache_cuda_plugin_v1: {e}",
            path.display()
        )
    })?;
    // SAFETY: the plugin ABI's symbol has this type.
    let entry: abi::EntryFn = unsafe { std::mem::transmute::<*mut c_void, abi::EntryFn>(symbol) };
    // SAFETY: the entry point takes no arguments and returns a static table.
    let table = unsafe { adopt(entry(), &path.display().to_string()) }?;
    // `library` goes out of scope open: a `Library` is never closed, and the
    // table points into it.
    start(table, path.display().to_string())
}

/// Reads a plugin's function table, checking its size and version first.
///
/// # Safety
/// `table` is NULL or points to a static table that starts with its size and
/// is at least that long.
unsafe fn adopt(table: *const PluginV1, origin: &str) -> Result<PluginV1, String> {
    if table.is_null() {
        return Err(format!("plugin {origin} returned no function table"));
    }
    // SAFETY: the table starts with its size; read it before trusting the rest.
    let size = unsafe { table.cast::<usize>().read_unaligned() };
    if size < std::mem::size_of::<PluginV1>() {
        return Err(format!(
            "plugin {origin} has a function table of {size} bytes, older than this library's ({})",
            std::mem::size_of::<PluginV1>()
        ));
    }
    // SAFETY: at least a whole PluginV1 (checked above), static in the plugin.
    let table = unsafe { table.read_unaligned() };
    if table.abi_version != abi::PLUGIN_ABI_VERSION {
        return Err(format!(
            "plugin {origin} speaks plugin ABI {}, this library {}",
            table.abi_version,
            abi::PLUGIN_ABI_VERSION
        ));
    }
    Ok(table)
}

/// Opens the plugin's context.
fn start(table: PluginV1, file: String) -> Result<Plugin, String> {
    let name = if table.name.is_null() {
        "unnamed plugin".to_string()
    } else {
        // SAFETY: the ABI's name is a static NUL-terminated string.
        unsafe { CStr::from_ptr(table.name) }
            .to_string_lossy()
            .into_owned()
    };
    let mut context = std::ptr::null_mut();
    // SAFETY: `open` writes the context pointer and at most `len` message bytes.
    call(|err, len| unsafe { (table.open)(&mut context, err, len) }).map_err(
        |(code, message)| match code {
            abi::PLUGIN_E_NO_DEVICE => format!("no CUDA device: {message}"),
            _ => format!("{name} could not open a CUDA context: {message}"),
        },
    )?;
    Ok(Plugin {
        table,
        description: format!("{name} ({file})"),
        source: Source::from_env(),
        context: Mutex::new(Context(context)),
    })
}

/// Runs one plugin call with a message buffer: `Err((code, message))` unless it
/// returned `PLUGIN_OK`.
pub(crate) fn call(f: impl FnOnce(*mut c_char, usize) -> i32) -> Result<(), (i32, String)> {
    let mut buffer = [0u8; 512];
    let code = f(buffer.as_mut_ptr().cast(), buffer.len());
    if code == abi::PLUGIN_OK {
        return Ok(());
    }
    // The last byte stays NUL whatever the plugin wrote before it.
    buffer[buffer.len() - 1] = 0;
    let message = CStr::from_bytes_until_nul(&buffer)
        .map(|m| m.to_string_lossy().into_owned())
        .unwrap_or_default();
    let message = if message.is_empty() {
        format!("error {code}")
    } else {
        message
    };
    Err((code, message))
}
