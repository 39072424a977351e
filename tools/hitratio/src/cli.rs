//! The command line: `--help`'s text and the arguments, read as the OS gives
//! them (`args_os`), so that a file name that is not UTF-8 is a file name like
//! any other and a bad argument is an error, never a panic.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::anchors::MAX_README_BYTES;
use crate::gzip::Compression;
use crate::lru::MAX_CAPACITY;
use crate::trace::{self, Format, BYTES_PER_REQUEST, DEFAULT_MAX_REQUESTS, MAX_LINE};

/// What `--help` prints.
pub fn usage() -> String {
    format!(
        "\
hitratio: replays cache traces through mapcache::Map beside an exact LRU and the
published anchors of the traces README.

Usage:
  hitratio [--traces DIR] [--out DOCS_DIR] [--capacities N,N,...] [--jobs N]
           [--max-requests N]
      every trace of DIR and the synthetic workloads; writes docs/hitratio.md
      with --out (what `make hitratio` runs)
  hitratio --trace FILE [--trace FILE ...] [--format F] [--compression C]
           [--capacities N,N,...] [--jobs N] [--max-requests N]
      only the traces named (what `make hitratio-trace TRACE=FILE` runs)
  hitratio --help | -h
      this text

Options:
  --traces DIR        the trace files (*.gz) and their README.md (default:
                      $HITRATIO_TRACES, else ../shared/traces beside the
                      repository)
  --out DOCS_DIR      writes DOCS_DIR/hitratio.md and DOCS_DIR/hitratio/<trace>.svg
                      (default: print only; not with --trace)
  --trace FILE        a trace file, gzip-compressed or not, of any name (a
                      regular file)
  --format F          how --trace files encode keys, one of:
                      {formats};
                      default: the format a README.md beside the file gives it
                      in its file table, if there is one and it lists that file
                      by name (a name alone chooses nothing), else sniffed from
                      the first 64 KiB (see Formats); the output and the
                      errors in a trace's keys say which format, and why
  --compression C     whether --trace files are gzip-compressed: {compressions}
                      (default auto: gzip if the file starts with the bytes
                      1f 8b; none reads a u64be trace whose first key does)
  --capacities LIST   the cache sizes to replay at, in entries, comma-separated,
                      each from 1 to {max_capacity} (2^31), each once (default:
                      250,500,...,2000, the README's)
  --jobs N            replays run in parallel (default: the available cores)
  --max-requests N    refuse a trace of more requests (default {max_requests},
                      2^26), or of more than {bytes_per_request} (decompressed) bytes or one
                      line without a request (blank, or an OLTP count of 0) per
                      request allowed. Memory: every request is held as an
                      8-byte key (up to 512 MiB per trace at the default), and
                      on top each replay's cache holds up to min(capacity,
                      distinct keys) entries, on the order of 100 bytes each,
                      with --jobs replays at once: a trace of 2^26 distinct
                      keys at capacity 2^31 takes about 6 GB with --jobs 1

Formats:
  oltp    text lines `start count x y`: the keys start .. start+count-1 (the
          last two fields, unsigned integers too, are ignored)
  lines   text, one unsigned 64-bit integer key per line
  u64be   8-byte big-endian unsigned integers, one key each
  Text lines are at most {max_line} bytes, the line end not counted; blank
  lines and CRLF are accepted; numbers are decimal digits only (no sign), and
  fields are separated by spaces or tabs; any other control character (a NUL,
  a CR inside a line) is refused with its line.
  Sniffing: binary (u64be) if at least a quarter of the first 64 KiB is not
  text (control bytes other than tab, LF and CR, and bytes that are not UTF-8),
  so that a text trace with a stray byte is read as text and refused at that
  byte's line; else lines if the first non-blank line has one field, oltp if
  four; else an error that asks for --format.
  Gzip: every member of a concatenation is read; zero bytes after the last
  member are ignored (the output says so), anything else there is an error.
  Errors of the gzip layer name it, the member, and the compressed and
  decompressed bytes reached; offsets in a gzip trace are decompressed bytes.

A trace listed in a README.md beside it is compared with that README's anchors
(values in percent, from 0 to 100); any other trace with the exact LRU only. The
README must be a regular file of at most {readme} bytes (1 MiB) that parses:
beside a --trace file another one is skipped with a note (neither its anchors
nor its formats are used); in --traces DIR it is an error.
",
        formats = Format::NAMES,
        compressions = Compression::NAMES,
        bytes_per_request = BYTES_PER_REQUEST,
        max_capacity = MAX_CAPACITY,
        max_requests = DEFAULT_MAX_REQUESTS,
        max_line = MAX_LINE,
        readme = MAX_README_BYTES,
    )
}

/// What a run is to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--traces`: the directory of the traces and their README.
    pub traces: PathBuf,
    /// `--out`: where docs/hitratio.md and its plots go.
    pub out: Option<PathBuf>,
    /// `--jobs`: replays in parallel.
    pub jobs: usize,
    /// `--trace`: replay only these files.
    pub files: Vec<PathBuf>,
    /// `--format`: how the `--trace` files encode their keys.
    pub format: Option<Format>,
    /// `--compression`: whether the `--trace` files are gzip-compressed.
    pub compression: Compression,
    /// `--capacities`: each from 1 to [`MAX_CAPACITY`].
    pub capacities: Option<Vec<usize>>,
    /// `--max-requests`.
    pub max_requests: u64,
}

/// The command line's meaning: a run, or `--help`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print [`usage`] and exit successfully.
    Help,
    /// Replay.
    Run(Args),
}

/// A positive count of `what` (a capacity, a number of jobs or requests).
fn positive<T: std::str::FromStr<Err = std::num::ParseIntError> + Default + PartialEq>(
    what: &str,
    value: &str,
) -> Result<T, String> {
    let n: T = value
        .trim()
        .parse()
        .map_err(|e| format!("{what} {value:?}: {e}"))?;
    if n == T::default() {
        return Err(format!("{what} {value:?}: must be at least 1"));
    }
    Ok(n)
}

/// The `--capacities` list: each from 1 to [`MAX_CAPACITY`], each once (a
/// capacity listed twice would count twice in the averages over capacities).
pub fn capacities(list: &str) -> Result<Vec<usize>, String> {
    let capacities = list
        .split(',')
        .map(|c| {
            let what = "--capacities: capacity";
            // Parsed as a u64 first, so that a number past usize is "too large"
            // like any other past the limit (it is one on every target).
            let n: u64 = positive(what, c)?;
            match usize::try_from(n) {
                Ok(n) if n <= MAX_CAPACITY => Ok(n),
                _ => Err(format!(
                    "{what} {n}: too large (at most {MAX_CAPACITY}, 2^31 entries)"
                )),
            }
        })
        .collect::<Result<Vec<usize>, String>>()?;
    for (i, c) in capacities.iter().enumerate() {
        if capacities[..i].contains(c) {
            return Err(format!("--capacities: capacity {c} is listed twice"));
        }
    }
    Ok(capacities)
}

/// A value that must be text (a number, a format, a list).
fn text<'a>(flag: &str, value: &'a OsStr) -> Result<&'a str, String> {
    value
        .to_str()
        .ok_or_else(|| format!("{flag} {value:?}: not UTF-8 text"))
}

/// A path value: any bytes the OS accepts, but not none.
fn path(flag: &str, value: OsString) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err(format!("{flag}: the path is empty"));
    }
    Ok(value.into())
}

/// The arguments after the program's name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut args_out = Args {
        traces: trace::default_dir(),
        out: None,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        files: Vec::new(),
        format: None,
        compression: Compression::Auto,
        capacities: None,
        max_requests: DEFAULT_MAX_REQUESTS,
    };
    let a = &mut args_out;
    let mut compression = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(flag) = arg.to_str() else {
            return Err(format!("unknown argument {arg:?} (see --help)"));
        };
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag {
            "--help" | "-h" => return Ok(Command::Help),
            "--traces" => a.traces = path(flag, value()?)?,
            "--out" => a.out = Some(path(flag, value()?)?),
            "--jobs" => a.jobs = positive(flag, text(flag, &value()?)?)?,
            "--trace" => a.files.push(path(flag, value()?)?),
            "--format" => a.format = Some(text(flag, &value()?)?.parse()?),
            "--compression" => compression = Some(text(flag, &value()?)?.parse()?),
            "--capacities" => a.capacities = Some(capacities(text(flag, &value()?)?)?),
            "--max-requests" => a.max_requests = positive(flag, text(flag, &value()?)?)?,
            _ => return Err(format!("unknown argument {arg:?} (see --help)")),
        }
    }
    if let Some(compression) = compression {
        args_out.compression = compression;
    }
    if args_out.files.is_empty() {
        if args_out.format.is_some() {
            return Err(
                "--format applies to --trace files only (a directory's traces are \
                        read in the README's formats, or sniffed)"
                    .into(),
            );
        }
        if compression.is_some() {
            return Err(
                "--compression applies to --trace files only (a directory's traces are \
                 gzip files)"
                    .into(),
            );
        }
    } else if args_out.out.is_some() {
        return Err(
            "--out writes the project's docs/hitratio.md, which covers every trace \
                    of --traces and the synthetic workloads: not with --trace"
                .into(),
        );
    }
    Ok(Command::Run(args_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::ffi::OsStrExt;

    fn parse_strs(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from))
    }

    fn run_args(args: &[&str]) -> Args {
        match parse_strs(args).unwrap() {
            Command::Run(args) => args,
            Command::Help => panic!("help for {args:?}"),
        }
    }

    /// F1: `--help` and `-h` print the usage (flags, formats, limits) rather
    /// than being unknown; an unknown argument points at `--help`.
    #[test]
    fn help_is_an_option_and_unknown_arguments_point_at_it() {
        assert_eq!(parse_strs(&["--help"]), Ok(Command::Help));
        assert_eq!(parse_strs(&["--trace", "x", "-h"]), Ok(Command::Help));
        let e = parse_strs(&["--hepl"]).unwrap_err();
        assert_eq!(e, "unknown argument \"--hepl\" (see --help)");
        assert!(!e.contains("src/main.rs"));
        let text = usage();
        for needle in [
            "--traces",
            "--out",
            "--trace FILE",
            "--format",
            "--compression",
            "--capacities",
            "--jobs",
            "--max-requests",
            "oltp",
            "lines",
            "u64be",
            "2147483648",
            "67108864",
            "1048576",
            "4096 bytes",
        ] {
            assert!(text.contains(needle), "usage lacks {needle:?}:\n{text}");
        }
    }

    /// F2: a capacity over 2^31 is a clear error naming the limit, however
    /// large (2^32 - 1 panicked in the exact LRU, 2^30 aborted on allocation).
    #[test]
    fn capacities_over_the_limit_are_errors_that_state_it() {
        assert_eq!(
            capacities("1,250,2147483648").unwrap(),
            [1, 250, MAX_CAPACITY]
        );
        for too_large in [
            "2147483649",
            "4294967295",
            "4294967296",
            "18446744073709551615",
        ] {
            let e = capacities(too_large).unwrap_err();
            assert_eq!(
                e,
                format!(
                    "--capacities: capacity {too_large}: too large (at most 2147483648, 2^31 entries)"
                )
            );
        }
        assert!(capacities("18446744073709551616")
            .unwrap_err()
            .contains("too large"));
        assert!(capacities("0").unwrap_err().contains("at least 1"));
        assert!(capacities("1,,2").is_err());
        // L7: a capacity listed twice counted twice in the averages.
        assert_eq!(
            capacities("100,50,100").unwrap_err(),
            "--capacities: capacity 100 is listed twice"
        );
        let e = parse_strs(&["--trace", "t", "--capacities", "4294967296"]).unwrap_err();
        assert!(e.contains("too large (at most 2147483648"), "{e}");
    }

    /// F4: arguments are read as the OS gives them: a trace file name that is
    /// not UTF-8 is a path like any other; a non-UTF-8 number is an error; an
    /// empty path says so.
    #[cfg(unix)]
    #[test]
    fn non_utf8_arguments_are_handled_and_an_empty_path_is_named() {
        let bad = OsStr::from_bytes(b"bad\xffname").to_os_string();
        let args = parse([OsString::from("--trace"), bad.clone()]).unwrap();
        let Command::Run(args) = args else {
            panic!("help")
        };
        assert_eq!(args.files, [PathBuf::from(bad.clone())]);
        let e = parse([OsString::from("--jobs"), bad.clone()]).unwrap_err();
        assert_eq!(e, "--jobs \"bad\\xFFname\": not UTF-8 text");
        let e = parse([bad]).unwrap_err();
        assert_eq!(e, "unknown argument \"bad\\xFFname\" (see --help)");
        for flag in ["--trace", "--traces", "--out"] {
            let e = parse_strs(&[flag, ""]).unwrap_err();
            assert_eq!(e, format!("{flag}: the path is empty"));
        }
    }

    #[test]
    fn the_flags_and_their_checks() {
        let args = run_args(&[
            "--trace",
            "a.gz",
            "--trace",
            "b",
            "--format",
            "arc",
            "--capacities",
            "5,7",
            "--jobs",
            "3",
            "--max-requests",
            "9",
            "--compression",
            "none",
        ]);
        assert_eq!(args.compression, Compression::None);
        assert_eq!(args.files, [PathBuf::from("a.gz"), PathBuf::from("b")]);
        assert_eq!(args.format, Some(Format::Oltp));
        assert_eq!(args.capacities, Some(vec![5, 7]));
        assert_eq!((args.jobs, args.max_requests), (3, 9));
        assert_eq!(run_args(&[]).max_requests, DEFAULT_MAX_REQUESTS);
        assert!(parse_strs(&["--jobs"])
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_strs(&["--jobs", "0"]).is_err());
        assert!(parse_strs(&["--format", "oltp"]).is_err());
        assert_eq!(run_args(&[]).compression, Compression::Auto);
        assert!(parse_strs(&["--compression", "none"]).is_err());
        assert!(parse_strs(&["--trace", "a", "--compression", "xz"])
            .unwrap_err()
            .contains("auto, none, gzip"));
        assert!(parse_strs(&["--trace", "a", "--out", "d"]).is_err());
    }
}
