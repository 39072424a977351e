//! Gives libmapcache.so its SONAME, `libmapcache.so.<ABI version>`, so that a
//! program linked against it records the ABI it was built for and the loader
//! refuses an incompatible library by name (as zstd's libzstd.so.1 does). The
//! number is `MAPCACHE_ABI_VERSION` in src/ffi/version.rs, read from there so
//! that it is written once; it changes only when the ABI changes meaning.

use std::fs;

const VERSION_RS: &str = "src/ffi/version.rs";

fn main() {
    println!("cargo:rerun-if-changed={VERSION_RS}");
    println!("cargo:rerun-if-changed=build.rs");
    // ELF targets only: Mach-O uses -install_name, Windows has no SONAME.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        return;
    }
    let source = fs::read_to_string(VERSION_RS).expect("read src/ffi/version.rs");
    let abi = abi_version(&source).expect("src/ffi/version.rs defines MAPCACHE_ABI_VERSION");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmapcache.so.{abi}");
}

/// The value of `pub const MAPCACHE_ABI_VERSION: u32 = N;`.
fn abi_version(source: &str) -> Option<u32> {
    source.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix("pub const MAPCACHE_ABI_VERSION: u32 =")?;
        rest.trim().strip_suffix(';')?.trim().parse().ok()
    })
}
