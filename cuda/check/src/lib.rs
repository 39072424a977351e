//! What the GPU check programs share: their command line, and host CPU time.

use std::path::PathBuf;
use std::time::Duration;

/// The programs' options.
pub struct Options {
    /// The plugin to load (default: `libmapcache_cuda.so` beside the program).
    pub plugin: PathBuf,
    /// Load the plugin without the CUDA driver (an emulated plugin, for a run
    /// on a machine without a GPU).
    pub no_driver: bool,
    /// Table sizes, in entries.
    pub sizes: Vec<usize>,
    /// Benchmark the GPU engine only (a second run with another plugin
    /// setting).
    pub gpu_only: bool,
    /// Benchmark each copy-out choice too (`--transfers`, gpu-bench).
    pub transfers: bool,
    /// The plugin's transfer settings for every rebuild (`--transfer I,O,C`:
    /// input registered, output registered, chunks; 0 or 1 for the first two,
    /// 1 to 64 for the chunks),
    /// set through its knob, in place of what the environment said.
    pub transfer: Option<(bool, bool, u32)>,
}

/// Parses `--plugin PATH`, `--no-driver`, `--gpu-only`, `--transfers`,
/// `--transfer I,O,C` and `--sizes N,N,...` (with `k` and `M` suffixes), with
/// `default_sizes` when no sizes are given.
pub fn options(default_sizes: &[usize]) -> Result<Options, String> {
    let mut options = Options {
        plugin: std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("libmapcache_cuda.so")))
            .ok_or("cannot find the program's directory")?,
        no_driver: false,
        sizes: default_sizes.to_vec(),
        gpu_only: false,
        transfers: false,
        transfer: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plugin" => options.plugin = args.next().ok_or("--plugin needs a path")?.into(),
            "--no-driver" => options.no_driver = true,
            "--gpu-only" => options.gpu_only = true,
            "--transfers" => options.transfers = true,
            "--transfer" => {
                let text = args.next().ok_or("--transfer needs I,O,C")?;
                options.transfer = Some(transfer(&text)?);
            }
            "--sizes" => {
                let list = args.next().ok_or("--sizes needs a list")?;
                options.sizes = list.split(',').map(size).collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

/// `I,O,C`: input registered (0 or 1), output registered (0 or 1), chunks.
fn transfer(text: &str) -> Result<(bool, bool, u32), String> {
    let bad = || format!("--transfer {text:?}: expected I,O,C (0 or 1, 0 or 1, chunks 1 to 64)");
    let flag = |f: &str| match f {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(bad()),
    };
    match text.split(',').collect::<Vec<_>>()[..] {
        [i, o, c] => match c.parse::<u32>() {
            Ok(chunks @ 1..=64) => Ok((flag(i)?, flag(o)?, chunks)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn size(text: &str) -> Result<usize, String> {
    let (digits, scale) = match text.as_bytes().last() {
        Some(b'k') => (&text[..text.len() - 1], 1_000),
        Some(b'M') => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    digits
        .parse::<usize>()
        .map(|n| n * scale)
        .map_err(|e| format!("size {text:?}: {e}"))
}

/// Loads the plugin as the options say (and gives it their transfer
/// settings); the reason if it cannot be.
pub fn load(options: &Options) -> Result<String, String> {
    if options.no_driver {
        mapcache::gpu::testing::load_plugin_without_driver(&options.plugin)?;
    }
    let loaded = mapcache::gpu::testing::probe(Some(&options.plugin))?;
    if let Some((register_input, register_output, chunks)) = options.transfer {
        mapcache::gpu::testing::set_plugin_transfer(
            &options.plugin,
            register_input,
            register_output,
            chunks,
        )?;
    }
    Ok(loaded)
}

/// User plus system CPU time of the whole process so far (every thread).
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one rusage; all-zero is a valid initial value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a writable struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The table log2 a shard reaches with `entries` (6.5 per bucket), less one:
/// the table whose next insert grows it.
pub fn grow_log2(entries: usize) -> u32 {
    let mut log2 = 0;
    while (13usize << (log2 + 1)) / 2 < entries {
        log2 += 1;
    }
    log2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_logs() {
        assert_eq!(size("4M").unwrap(), 4 << 20);
        assert_eq!(size("10k").unwrap(), 10_000);
        assert!(size("x").is_err());
        // 1M entries: over 6.5 per bucket at 2^17 buckets, under at 2^18.
        assert_eq!(grow_log2(1 << 20), 17);
    }
}
