//! `include/mapcache.h` must be exactly what cbindgen generates from `src/ffi/`
//! with `cbindgen.toml`: the committed header is the C contract, so a stale one
//! fails the build. `MAPCACHE_BLESS=1 cargo test --test header` (or `make header`)
//! rewrites it.

use std::path::Path;

#[test]
fn header_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml must parse");
    // Only the FFI module: nothing else of the crate belongs in the C ABI.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen must generate the header from src/ffi/");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = root.join("include/mapcache.h");
    if std::env::var_os("MAPCACHE_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != fresh {
        let committed = String::from_utf8_lossy(&committed);
        let fresh = String::from_utf8_lossy(&fresh);
        let first = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
        panic!(
            "include/mapcache.h is stale (first difference at line {}):\n  committed: {:?}\n  fresh:     {:?}\n\
             regenerate it with `make header` (MAPCACHE_BLESS=1 cargo test --test header) and commit it",
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            fresh.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

/// The header as a document: its function sections come in the order its
/// contents list names, and the debug hooks are declared only for a host that
/// defines `MAPCACHE_TESTING` (every line that names one sits inside such a block).
#[test]
fn header_sections_and_the_testing_opt_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/mapcache.h")).unwrap();
    let banners = [
        "1. LIFECYCLE",
        "2. SINGLE-KEY CALLS",
        "3. SNAPSHOTS",
        "4. BATCH CALLS",
        "5. ITERATION",
        "6. LABELS AND ERRORS",
        "7. VERSIONING",
        "8. GPU ENGINE",
        "9. DEBUG HOOKS",
    ];
    let mut last = 0;
    for banner in banners {
        let needle = format!("============ {banner} ============");
        let at = header
            .find(&needle)
            .unwrap_or_else(|| panic!("no banner {needle:?}"));
        assert!(at > last, "banner {banner:?} out of order");
        last = at;
    }
    // Outside the top comment, every mention of a debug hook is inside
    // `#if defined(MAPCACHE_TESTING)` ... `#endif`.
    let body = &header[header.find("#ifndef MAPCACHE_H").unwrap()..];
    let mut inside = false;
    let mut hooks = 0;
    for line in body.lines() {
        if line == "#if defined(MAPCACHE_TESTING)" {
            inside = true;
        } else if line == "#endif" {
            inside = false;
        } else if line.contains("mapcache_debug_") && !line.trim_start().starts_with('*') {
            assert!(inside, "declared without MAPCACHE_TESTING: {line}");
            hooks += 1;
        }
    }
    // The typedef, the three declarations and hold_write's callback parameter.
    assert_eq!(
        hooks, 5,
        "lines naming mapcache_debug_fn, _hold_write, _panic, _load_waiters"
    );
}

/// The header's list of the steps a load fails at with `MAPCACHE_E_IO` is the
/// list of steps the load takes: every `Error::io("<step>", ...)` of
/// `src/snapshot/file.rs` (the file a load reads) is named, quoted, in
/// `mapcache_load`'s `MAPCACHE_E_IO` item, and nothing else is (it once left
/// out "stat").
#[test]
fn the_load_io_steps_the_header_names_are_the_codes() {
    if std::env::var_os("MAPCACHE_BLESS").is_some_and(|v| v == "1") {
        return; // header_is_fresh is rewriting the header meanwhile
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let code = std::fs::read_to_string(root.join("src/snapshot/file.rs")).unwrap();
    let mut steps: Vec<&str> = code
        .split("Error::io(\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    steps.sort();
    steps.dedup();
    assert_eq!(steps.len(), 4, "{steps:?}");
    let header = std::fs::read_to_string(root.join("include/mapcache.h")).unwrap();
    let decl = header
        .find("mapcache_status mapcache_load(")
        .expect("mapcache_load");
    let doc = &header[header[..decl].rfind("/**").unwrap()..decl];
    let item = &doc[doc.find("- `MAPCACHE_E_IO`").expect("the IO item")..];
    let item = &item[..item[1..].find(" * - ").map_or(item.len(), |end| end + 1)];
    let mut named: Vec<&str> = item
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.chars().all(|c| c.is_ascii_lowercase()))
        .collect();
    named.sort();
    named.dedup();
    assert_eq!(
        named, steps,
        "the MAPCACHE_E_IO item of mapcache_load:\n{item}"
    );
}
