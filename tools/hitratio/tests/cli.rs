//! The `hitratio` binary on hostile command lines and outputs: `--help`, a
//! stdout that fails, a file name that is not UTF-8, a README beside a trace
//! that is a FIFO or a link to /dev/zero, a capacity past the limit. None may
//! panic, abort or hang.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn hitratio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hitratio"))
}

/// A fresh directory for one test's files, with a 6-request trace `t.txt`.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hitratio-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("t.txt"), b"1\n2\n1\n3\n1\n2\n").unwrap();
    dir
}

/// `child`'s output, or a failure if it runs past `limit` (then it is killed).
fn finish(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("hitratio ran past {limit:?} (hung)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    let child = hitratio()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finish(child, Duration::from_secs(60))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn no_panic(output: &Output) {
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
    assert!(
        output.status.code().is_some(),
        "killed by a signal: {stderr}"
    );
}

fn path(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

/// F1: `--help` and `-h` print the usage and succeed; an unknown argument
/// points at `--help`.
#[test]
fn help_prints_the_usage() {
    for flag in ["--help", "-h"] {
        let output = run(&[flag.as_ref()]);
        no_panic(&output);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let usage = text(&output.stdout);
        assert!(
            usage.contains("Usage:") && usage.contains("--capacities"),
            "{usage}"
        );
        assert!(usage.contains("2147483648"), "{usage}");
    }
    let output = run(&["--bogus".as_ref()]);
    no_panic(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "hitratio: unknown argument \"--bogus\" (see --help)\n"
    );
}

/// F2: capacities past 2^31 are a clear error (they panicked from 2^32 - 1 and
/// aborted on a huge allocation from 2^30); the limit itself replays a tiny
/// trace at once.
#[test]
fn a_huge_capacity_is_an_error_and_the_limit_costs_nothing() {
    let dir = scratch("capacity");
    let trace = dir.join("t.txt");
    for too_large in [
        "2147483649",
        "4294967295",
        "4294967296",
        "18446744073709551615",
    ] {
        let output = run(&[
            "--trace".as_ref(),
            path(&trace),
            "--capacities".as_ref(),
            too_large.as_ref(),
        ]);
        no_panic(&output);
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(
            text(&output.stderr),
            format!(
                "hitratio: --capacities: capacity {too_large}: too large (at most 2147483648, \
                 2^31 entries)\n"
            )
        );
    }
    let output = run(&[
        "--trace".as_ref(),
        path(&trace),
        "--capacities".as_ref(),
        "1073741824,2147483648".as_ref(),
    ]);
    no_panic(&output);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // 6 requests over 3 keys: 3 hits at any capacity of 3 or more.
    assert!(stdout.contains("50.00"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// F3: a stdout that cannot be written is an error and exit status 1, not a
/// panic; a closed pipe ends the run quietly with status 1.
#[test]
fn a_failing_stdout_is_an_error_not_a_panic() {
    let dir = scratch("stdout");
    let trace = dir.join("t.txt");
    if Path::new("/dev/full").exists() {
        for args in [
            vec![
                "--trace".as_ref(),
                path(&trace),
                "--capacities".as_ref(),
                "1".as_ref(),
            ],
            vec!["--help".as_ref()],
        ] {
            let child = hitratio()
                .args(&args)
                .stdout(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open("/dev/full")
                        .unwrap(),
                )
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let output = finish(child, Duration::from_secs(60));
            no_panic(&output);
            assert_eq!(output.status.code(), Some(1));
            let stderr = text(&output.stderr);
            assert!(
                stderr.starts_with("hitratio: writing to stdout: "),
                "{stderr}"
            );
        }
    }
    // Far more than a pipe's buffer of output, to a reader that is gone.
    let mut args: Vec<&std::ffi::OsStr> = vec!["--capacities".as_ref(), "1".as_ref()];
    for _ in 0..300 {
        args.extend(["--trace".as_ref(), path(&trace)]);
    }
    let mut child = hitratio()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = finish(child, Duration::from_secs(60));
    no_panic(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// F4: a trace file name that is not UTF-8 is replayed (it panicked in
/// `env::args`); an empty path says it is empty.
#[cfg(unix)]
#[test]
fn a_non_utf8_file_name_is_a_file_name() {
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch("utf8");
    let odd = dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    std::fs::copy(dir.join("t.txt"), &odd).unwrap();
    let output = run(&[
        "--trace".as_ref(),
        path(&odd),
        "--capacities".as_ref(),
        "2".as_ref(),
    ]);
    no_panic(&output);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("== bad\u{fffd}name (6 requests"));
    let output = run(&["--trace".as_ref(), "".as_ref()]);
    no_panic(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "hitratio: --trace: the path is empty\n"
    );
    let output = run(&[
        "--capacities".as_ref(),
        std::ffi::OsStr::from_bytes(b"1\xff"),
    ]);
    no_panic(&output);
    assert_eq!(
        text(&output.stderr),
        "hitratio: --capacities \"1\\xFF\": not UTF-8 text\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// F5: a README.md beside a trace that is a FIFO (it blocked the run for ever)
/// or a link to /dev/zero (it read until out of memory) is skipped with a note
/// naming it, and the trace is replayed.
#[cfg(unix)]
#[test]
fn a_readme_that_is_no_regular_file_is_skipped_with_a_note() {
    let dir = scratch("readme");
    let trace = dir.join("t.txt");
    let readme = dir.join("README.md");
    let fifo = Command::new("mkfifo")
        .arg(&readme)
        .status()
        .is_ok_and(|s| s.success());
    let mut kinds = vec!["/dev/zero"];
    if fifo {
        kinds.insert(0, "fifo");
    }
    for kind in kinds {
        if kind != "fifo" {
            let _ = std::fs::remove_file(&readme);
            std::os::unix::fs::symlink(kind, &readme).unwrap();
        }
        let output = run(&[
            "--trace".as_ref(),
            path(&trace),
            "--capacities".as_ref(),
            "2".as_ref(),
        ]);
        no_panic(&output);
        assert!(output.status.success(), "{kind}: {}", text(&output.stderr));
        let stdout = text(&output.stdout);
        let note = format!(
            "note: no anchors and no formats ({}: not a regular file)",
            readme.display()
        );
        assert!(stdout.starts_with(&note), "{kind}: {stdout}");
        assert!(stdout.contains("== t.txt (6 requests"), "{kind}: {stdout}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// F5: a file named like one of the project's traces, with no README beside
/// it, is sniffed, and the output says how it was read and why; beside a
/// README that lists it, the README's format is used and said.
#[test]
fn the_format_used_and_why_is_always_printed() {
    let dir = scratch("format");
    let keys: Vec<u8> = (0..100u64)
        .cycle()
        .take(1000)
        .flat_map(|k| k.to_be_bytes())
        .collect();
    let named = dir.join("loop");
    std::fs::write(&named, &keys).unwrap();
    let output = run(&[
        "--trace".as_ref(),
        path(&named),
        "--capacities".as_ref(),
        "100".as_ref(),
    ]);
    no_panic(&output);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(", read as u64be (sniffed: 7290 of its first 8000 bytes are not text)"),
        "{stdout}"
    );
    // 100 keys x10: 90% at capacity 100.
    assert!(stdout.contains("90.00"), "{stdout}");

    std::fs::write(
        dir.join("README.md"),
        "| file | format |\n|---|---|\n| t.txt | oltp |\n",
    )
    .unwrap();
    let output = run(&["--trace".as_ref(), path(&dir.join("t.txt"))]);
    no_panic(&output);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("t.txt: as oltp (the README beside it lists it so): line 1: no count"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// F3: `--compression none` reads a u64be trace whose first key starts with
/// the gzip magic bytes; without it the gzip error points at the flag.
#[test]
fn compression_none_reads_a_key_that_looks_like_gzip() {
    let dir = scratch("compression");
    let trace = dir.join("keys");
    let mut bytes = 0x1f8b_1234_5678_9abc_u64.to_be_bytes().to_vec();
    bytes.extend((0..3u64).flat_map(|k| k.to_be_bytes()));
    std::fs::write(&trace, &bytes).unwrap();
    let args = |extra: &[&str]| {
        let mut args = vec!["--trace".as_ref(), path(&trace), "--format".as_ref()];
        args.push("u64be".as_ref());
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        run(&args)
    };
    let output = args(&[]);
    no_panic(&output);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("gzip layer: invalid gzip header") && stderr.contains("--compression none"),
        "{stderr}"
    );
    let output = args(&["--compression", "none", "--capacities", "1"]);
    no_panic(&output);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("== keys (4 requests"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// L8: `make hitratio-trace` passes a TRACE path with spaces (and a quote)
/// as one argument, made absolute; `$(abspath ...)` split it in two.
#[test]
fn make_hitratio_trace_keeps_a_path_with_spaces_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Ok(output) = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(&root)
        .arg("hitratio-trace")
        .arg("TRACE=my dir/it's a trace.gz")
        .arg("FORMAT=lines")
        // Each argument in brackets: the words the recipe's shell made.
        .arg("CARGO=printf [%s]")
        .env_remove("MAKEFLAGS")
        .output()
    else {
        return; // No make here.
    };
    assert!(output.status.success(), "{}", text(&output.stderr));
    let root = root.canonicalize().unwrap();
    assert_eq!(
        text(&output.stdout),
        format!(
            "[run][--release][-p][hitratio][--][--trace][{}/my dir/it's a trace.gz][--format][lines]",
            root.display()
        )
    );
}
