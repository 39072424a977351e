//! The trace files and their three formats (`../shared/traces/README.md` is the
//! reference): every request is a `u64` key.
//!
//! A trace is read as a stream (gzip-compressed or not, several gzip members
//! concatenated included), so that a file's size in memory is its requests'
//! keys only, and a hostile file is refused with the line or byte where it is
//! wrong: a line over [`MAX_LINE`] bytes, a key that is not a `u64`, an OLTP
//! range that overflows, or more requests than the caller's limit (an OLTP line
//! `0 18446744073709551615 0 0` stands for 2^64 requests in 26 bytes).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::str::FromStr;

use flate2::read::MultiGzDecoder;

/// How a trace file encodes its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text lines `start count x y`: the keys `start .. start + count`, in order
    /// (the ARC paper's traces; the last two fields are ignored).
    Oltp,
    /// Text, one integer key per line (the LIRS paper's traces).
    Lines,
    /// A stream of 8-byte big-endian unsigned integers, one key each.
    U64BigEndian,
}

impl Format {
    /// The names `--format` accepts, in the order [`Format::from_str`] lists them.
    pub const NAMES: &'static str = "oltp (alias arc), lines (alias lirs), u64be (alias corda)";
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Format, String> {
        match name {
            "oltp" | "arc" => Ok(Format::Oltp),
            "lines" | "lirs" => Ok(Format::Lines),
            "u64be" | "corda" => Ok(Format::U64BigEndian),
            _ => Err(format!(
                "unknown trace format {name:?} (one of: {})",
                Format::NAMES
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Oltp => "oltp",
            Format::Lines => "lines",
            Format::U64BigEndian => "u64be",
        })
    }
}

/// The format of the trace named `name` (its file name without `.gz`), from the
/// traces README; `None` for a trace the README does not list, whose format
/// [`sniff`] tells from its first bytes.
pub fn format_of(name: &str) -> Option<Format> {
    match name {
        "oltp" => Some(Format::Oltp),
        "gli" | "loop" => Some(Format::Lines),
        "trace_vaultservice" => Some(Format::U64BigEndian),
        _ => None,
    }
}

/// The longest text line accepted, in bytes: a trace line is a few numbers, so
/// anything longer is not a trace (and would otherwise be read into memory
/// whole, however long).
pub const MAX_LINE: usize = 4096;

/// The default limit on a trace's requests (`--max-requests`): 2^26, about 70
/// times the largest of the README's traces. Every request is held in memory as
/// its 8-byte key (each replay, at each capacity and in parallel, runs over the
/// whole trace), so this is 512 MiB of keys at most: a 20-byte OLTP line or a
/// small gzip bomb can ask for that much and no more. (It was 2^30, 8 GiB.)
pub const DEFAULT_MAX_REQUESTS: u64 = 1 << 26;

/// How many bytes [`sniff`] looks at.
const SNIFF_BYTES: u64 = 64 * 1024;

/// The format of a trace whose README entry is unknown, from its first
/// (decompressed) bytes: binary keys if they hold a NUL byte or are not UTF-8
/// text (a text trace has neither; a stream of 8-byte keys below 2^56 has a NUL
/// in every key); else by the first non-blank line's fields: one is `lines`,
/// four is `oltp`. Anything else is an error that asks for `--format`.
pub fn sniff(head: &[u8]) -> Result<Format, String> {
    if head.is_empty() {
        return Err("empty: no requests".into());
    }
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // Cut inside a character by the sniff's length only: still text.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).expect("valid up to here")
        }
        Err(_) => return Ok(Format::U64BigEndian),
    };
    if text.contains('\0') {
        return Ok(Format::U64BigEndian);
    }
    let first = text.lines().map(str::trim).find(|line| !line.is_empty());
    match first.map(|line| line.split_ascii_whitespace().count()) {
        Some(1) => Ok(Format::Lines),
        Some(4) => Ok(Format::Oltp),
        Some(n) => Err(format!(
            "cannot tell its format: its first line has {n} fields (lines has 1, oltp 4); \
             name it with --format ({})",
            Format::NAMES
        )),
        None => Err("only blank lines in its first 64 KiB; name its format with --format".into()),
    }
}

/// The keys read so far, within the request limit.
struct Keys {
    keys: Vec<u64>,
    max_requests: u64,
}

impl Keys {
    /// Room for `more` requests, or the error that says which limit they pass.
    fn make_room(&mut self, more: u64, at: &dyn Fn() -> String) -> Result<(), String> {
        let total = (self.keys.len() as u64).saturating_add(more);
        if total > self.max_requests {
            return Err(format!(
                "{}: more than {} requests (the limit; raise it with --max-requests)",
                at(),
                self.max_requests
            ));
        }
        let more = usize::try_from(more).map_err(|_| format!("{}: too many requests", at()))?;
        self.keys
            .try_reserve(more)
            .map_err(|e| format!("{}: {e}", at()))
    }
}

/// The keys of a text trace (`Oltp` or `Lines`), line by line. Blank lines and
/// `\r\n` line ends are accepted (the LIRS files have both).
fn read_text(reader: impl BufRead, oltp: bool, keys: &mut Keys) -> Result<(), String> {
    let mut reader = reader;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("after line {number}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        // Up to MAX_LINE bytes and the newline; `take` stopped it at one more.
        if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            return Err(format!("line {number}: longer than {MAX_LINE} bytes"));
        }
        let at = || format!("line {number}");
        let text = std::str::from_utf8(&line)
            .map_err(|e| format!("line {number}: not UTF-8 text: {e}"))?
            .trim();
        if text.is_empty() {
            continue;
        }
        if !oltp {
            let key = text
                .parse::<u64>()
                .map_err(|e| format!("line {number}: {text:?}: {e}"))?;
            keys.make_room(1, &at)?;
            keys.keys.push(key);
            continue;
        }
        let mut fields = text.split_ascii_whitespace();
        let mut field = |what: &str| -> Result<u64, String> {
            let value = fields
                .next()
                .ok_or_else(|| format!("line {number}: no {what} field in {text:?}"))?;
            value
                .parse::<u64>()
                .map_err(|e| format!("line {number}: {what} {value:?}: {e}"))
        };
        let start = field("start")?;
        let count = field("count")?;
        if count == 0 {
            continue;
        }
        // The last key, start + count - 1, must be a u64 (start + count need not).
        let last = start
            .checked_add(count - 1)
            .ok_or_else(|| format!("line {number}: start + count - 1 overflows a u64"))?;
        keys.make_room(count, &at)?;
        keys.keys.extend(start..=last);
    }
}

/// The keys of a stream of 8-byte big-endian integers.
fn read_u64_big_endian(mut reader: impl Read, keys: &mut Keys) -> Result<(), String> {
    let mut chunk = [0u8; 8];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < 8 {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("at byte {}: {e}", offset + filled as u64)),
            }
        }
        match filled {
            0 => return Ok(()),
            8 => {}
            _ => {
                return Err(format!(
                    "{} bytes is not a whole number of 8-byte keys",
                    offset + filled as u64
                ))
            }
        }
        keys.make_room(1, &|| format!("at byte {offset}"))?;
        keys.keys.push(u64::from_be_bytes(chunk));
        offset += 8;
    }
}

/// The keys of the (decompressed) stream `reader` in `format`, refused once
/// they pass `max_requests`.
pub fn read(reader: impl Read, format: Format, max_requests: u64) -> Result<Vec<u64>, String> {
    let mut keys = Keys {
        keys: Vec::new(),
        max_requests,
    };
    let reader = BufReader::with_capacity(1 << 16, reader);
    match format {
        Format::Oltp => read_text(reader, true, &mut keys)?,
        Format::Lines => read_text(reader, false, &mut keys)?,
        Format::U64BigEndian => read_u64_big_endian(reader, &mut keys)?,
    }
    Ok(keys.keys)
}

/// Where the traces are: `$HITRATIO_TRACES`, else `../shared/traces` beside the
/// repository (where the project keeps them; `make hitratio` passes it).
pub fn default_dir() -> std::path::PathBuf {
    match std::env::var_os("HITRATIO_TRACES") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"),
    }
}

/// How a trace directory is named in the report: `../shared/traces` for the
/// project's own (so that docs/hitratio.md names no machine's path), else as given.
pub fn shown(dir: &Path) -> String {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces");
    match (dir.canonicalize(), project.canonicalize()) {
        (Ok(a), Ok(b)) if a == b => "../shared/traces".to_string(),
        _ => dir.display().to_string(),
    }
}

/// A trace file's name (without `.gz`), format and keys.
#[derive(Debug)]
pub struct Trace {
    /// The file name without `.gz`, e.g. `oltp`.
    pub name: String,
    /// How its keys were read: the format and where it came from, e.g.
    /// `lines (sniffed)`.
    pub read_as: String,
    /// The requests, in order.
    pub keys: Vec<u64>,
}

/// Reads one trace file, gzip-compressed (by its magic bytes, whatever its name)
/// or not, in `format` if given, else the README's format for its name, else
/// the format [`sniff`] finds. At most `max_requests` requests, and at least one.
pub fn load(path: &Path, format: Option<Format>, max_requests: u64) -> Result<Trace, String> {
    if path.as_os_str().is_empty() {
        return Err("a trace path is empty".into());
    }
    let fail = |e: String| format!("{}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    // A regular file has a name; one that is not UTF-8 is shown with U+FFFD
    // for the bytes that are not (it names no README format, so is sniffed).
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .ok_or_else(|| fail("no file name".into()))?;
    let name = file_name
        .strip_suffix(".gz")
        .unwrap_or(&file_name)
        .to_string();
    let mut file = BufReader::new(File::open(path).map_err(|e| fail(e.to_string()))?);
    let gzip = file
        .fill_buf()
        .map_err(|e| fail(e.to_string()))?
        .starts_with(&[0x1f, 0x8b]);
    let mut stream: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut head = Vec::new();
    (&mut stream)
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| fail(e.to_string()))?;
    let (format, format_from) = match (format, format_of(&name)) {
        (Some(format), _) => (format, "named with --format"),
        (None, Some(format)) => (format, "the traces README"),
        (None, None) => (sniff(&head).map_err(fail)?, "sniffed"),
    };
    let keys = read(Cursor::new(head).chain(stream), format, max_requests)
        .map_err(|e| fail(format!("as {format}: {e}")))?;
    if keys.is_empty() {
        return Err(fail("no requests".into()));
    }
    Ok(Trace {
        name,
        read_as: format!("{format} ({format_from})"),
        keys,
    })
}

/// Every `.gz` trace of `dir`, sorted by name (the README and any other file
/// are not traces).
pub fn load_dir(dir: &Path, max_requests: u64) -> Result<Vec<Trace>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    paths.retain(|path| path.extension().is_some_and(|ext| ext == "gz"));
    paths.sort();
    if paths.is_empty() {
        return Err(format!("{}: no .gz trace files", dir.display()));
    }
    paths
        .iter()
        .map(|path| load(path, None, max_requests))
        .collect()
}

/// The "mixed" workload of the published results: trace_vaultservice, then
/// loop, then trace_vaultservice again, through the same cache; `None` unless
/// both traces are there.
pub fn mixed(traces: &[Trace]) -> Option<Trace> {
    let find = |name: &str| traces.iter().find(|trace| trace.name == name);
    let vault = find("trace_vaultservice")?;
    let looping = find("loop")?;
    let mut keys = Vec::with_capacity(2 * vault.keys.len() + looping.keys.len());
    keys.extend_from_slice(&vault.keys);
    keys.extend_from_slice(&looping.keys);
    keys.extend_from_slice(&vault.keys);
    Some(Trace {
        name: "mixed".to_string(),
        read_as: format!(
            "{}, then {}, then {}",
            vault.read_as, looping.read_as, vault.read_as
        ),
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The keys of `bytes` (already decompressed) in `format`, without a limit.
    fn parse(format: Format, bytes: &[u8]) -> Result<Vec<u64>, String> {
        read(bytes, format, u64::MAX)
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// A fresh directory for one test's files.
    fn scratch(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hitratio-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn oltp_lines_expand_to_count_consecutive_keys() {
        let text = b"5 3 0 0\n1 1 9 9\n\n100 2 7 7\n";
        assert_eq!(
            parse(Format::Oltp, text).unwrap(),
            vec![5, 6, 7, 1, 100, 101]
        );
    }

    #[test]
    fn oltp_count_zero_is_no_request_and_bad_lines_are_errors() {
        assert_eq!(parse(Format::Oltp, b"4 0 0 0\n2 1 0 0").unwrap(), vec![2]);
        assert!(parse(Format::Oltp, b"4\n").unwrap_err().contains("count"));
        assert!(parse(Format::Oltp, b"4 x 0 0\n")
            .unwrap_err()
            .contains("line 1"));
        let overflow = format!("{} 2 0 0", u64::MAX);
        assert!(parse(Format::Oltp, overflow.as_bytes())
            .unwrap_err()
            .contains("overflows"));
    }

    /// F12: a range whose last key is exactly 2^64 - 1 fits; one key more
    /// overflows.
    #[test]
    fn an_oltp_range_may_end_at_the_largest_u64_and_no_further() {
        let max = u64::MAX;
        let line = |start: u64, count: u64| format!("{start} {count} 0 0\n");
        assert_eq!(
            parse(Format::Oltp, line(max - 1, 2).as_bytes()).unwrap(),
            [max - 1, max]
        );
        assert_eq!(parse(Format::Oltp, line(max, 1).as_bytes()).unwrap(), [max]);
        assert_eq!(
            parse(Format::Oltp, line(max - 4, 5).as_bytes()).unwrap(),
            [max - 4, max - 3, max - 2, max - 1, max]
        );
        assert!(parse(Format::Oltp, line(max, 0).as_bytes())
            .unwrap()
            .is_empty());
        for (start, count) in [(max - 1, 3), (max, 2), (2, max), (max, max)] {
            let e = parse(Format::Oltp, line(start, count).as_bytes()).unwrap_err();
            assert_eq!(e, "line 1: start + count - 1 overflows a u64");
        }
        // 2^64 - 1 keys from 0 fit in a u64 but not in memory: an error.
        assert!(parse(Format::Oltp, line(0, max).as_bytes()).is_err());
    }

    /// F11: under the default limit a 20-byte line that stands for 10^9
    /// requests (8 GB of keys) is refused before anything is allocated for it.
    #[test]
    fn the_default_limit_bounds_the_keys_to_512_mib() {
        assert_eq!(DEFAULT_MAX_REQUESTS * 8, 512 << 20);
        let e = read(
            &b"0 1000000000 0 0\n"[..],
            Format::Oltp,
            DEFAULT_MAX_REQUESTS,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "line 1: more than 67108864 requests (the limit; raise it with --max-requests)"
        );
    }

    #[test]
    fn lines_accept_crlf_and_blank_lines() {
        assert_eq!(
            parse(Format::Lines, b"0\r\n1\r\n\r\n 2 \n\n").unwrap(),
            vec![0, 1, 2]
        );
        assert!(parse(Format::Lines, b"1\n-2\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse(Format::Lines, b"1\n\xff\n")
            .unwrap_err()
            .contains("line 2: not UTF-8"));
    }

    #[test]
    fn big_endian_u64_keys() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            parse(Format::U64BigEndian, &bytes).unwrap(),
            vec![0x0102_0304_0506_0708, u64::MAX]
        );
        let e = parse(Format::U64BigEndian, &bytes[..9]).unwrap_err();
        assert!(e.contains("9 bytes is not a whole number"), "{e}");
    }

    #[test]
    fn a_tiny_line_that_stands_for_2_to_the_64_requests_is_refused_at_once() {
        let hostile = format!("0 {} 0 0\n", u64::MAX);
        let e = read(hostile.as_bytes(), Format::Oltp, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert!(e.contains("line 1: more than 67108864 requests"), "{e}");
        // The limit counts across lines and in every format.
        let e = read(&b"0 3 0 0\n10 3 0 0\n"[..], Format::Oltp, 5).unwrap_err();
        assert!(e.starts_with("line 2: more than 5 requests"), "{e}");
        assert_eq!(
            read(&b"0 3 0 0\n10 2 0 0\n"[..], Format::Oltp, 5)
                .unwrap()
                .len(),
            5
        );
        let e = read(&b"1\n2\n3\n"[..], Format::Lines, 2).unwrap_err();
        assert!(e.starts_with("line 3: more than 2 requests"), "{e}");
        let e = read(&[0u8; 24][..], Format::U64BigEndian, 2).unwrap_err();
        assert!(e.starts_with("at byte 16: more than 2 requests"), "{e}");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_without_reading_it_whole() {
        // An endless line: the reader must stop after MAX_LINE + 1 bytes.
        let endless = std::io::repeat(b'7');
        let e = read(endless, Format::Lines, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert_eq!(e, format!("line 1: longer than {MAX_LINE} bytes"));
        let long = format!("1 1 0 0\n{}\n", "9".repeat(MAX_LINE + 1));
        assert!(parse(Format::Oltp, long.as_bytes())
            .unwrap_err()
            .starts_with("line 2: longer"));
        // A line of exactly MAX_LINE bytes (newline not counted) is read.
        let edge = format!("{}{}\n", " ".repeat(MAX_LINE - 2), "42");
        assert_eq!(parse(Format::Lines, edge.as_bytes()).unwrap(), [42]);
    }

    #[test]
    fn sniff_tells_the_three_formats_apart_and_asks_when_it_cannot() {
        assert_eq!(sniff(&7u64.to_be_bytes()).unwrap(), Format::U64BigEndian);
        assert_eq!(sniff(&[0xff; 16]).unwrap(), Format::U64BigEndian);
        assert_eq!(sniff(b"\n\n12\n13\n").unwrap(), Format::Lines);
        assert_eq!(sniff(b"12 4 0 0\n").unwrap(), Format::Oltp);
        // Text cut inside a character by the sniff's length is still text.
        assert_eq!(
            sniff("5\n\u{e9}".as_bytes()[..3].as_ref()).unwrap(),
            Format::Lines
        );
        let e = sniff(b"1 2 3\n").unwrap_err();
        assert!(e.contains("3 fields") && e.contains("--format"), "{e}");
        assert!(sniff(b"").unwrap_err().contains("no requests"));
        assert!(sniff(b"\n \n").unwrap_err().contains("--format"));
    }

    #[test]
    fn formats_by_name_and_their_aliases() {
        for (name, format) in [
            ("oltp", Format::Oltp),
            ("arc", Format::Oltp),
            ("lines", Format::Lines),
            ("lirs", Format::Lines),
            ("u64be", Format::U64BigEndian),
            ("corda", Format::U64BigEndian),
        ] {
            assert_eq!(name.parse::<Format>().unwrap(), format);
        }
        assert!("csv".parse::<Format>().unwrap_err().contains("oltp"));
        assert_eq!(Format::U64BigEndian.to_string(), "u64be");
    }

    #[test]
    fn load_decompresses_and_picks_the_format_from_the_name() {
        let dir = scratch("dir");
        let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), gz(bytes)).unwrap();
        write("oltp.gz", b"10 2 0 0\n");
        write("loop.gz", b"3\r\n4\r\n");
        write("trace_vaultservice.gz", &[0, 0, 0, 0, 0, 0, 1, 0]);
        std::fs::write(dir.join("README.md"), "not a trace").unwrap();
        let traces = load_dir(&dir, DEFAULT_MAX_REQUESTS).unwrap();
        let names: Vec<_> = traces.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["loop", "oltp", "trace_vaultservice"]);
        assert_eq!(traces[0].keys, [3, 4]);
        assert_eq!(traces[0].read_as, "lines (the traces README)");
        assert_eq!(traces[1].keys, [10, 11]);
        assert_eq!(traces[2].keys, [256]);
        assert_eq!(mixed(&traces).unwrap().keys, [256, 3, 4, 256]);
        assert!(mixed(&traces[1..]).is_none());

        // A trace the README does not list is sniffed, and says so.
        write("sprite.gz", b"1\n2\n1\n");
        let traces = load_dir(&dir, DEFAULT_MAX_REQUESTS).unwrap();
        let sprite = traces.iter().find(|t| t.name == "sprite").unwrap();
        assert_eq!(
            (sprite.keys.as_slice(), sprite.read_as.as_str()),
            (&[1, 2, 1][..], "lines (sniffed)")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_reads_plain_files_and_every_gzip_member_and_refuses_garbage() {
        let dir = scratch("load");
        let plain = dir.join("mine.txt");
        std::fs::write(&plain, b"5 2 0 0\n").unwrap();
        let t = load(&plain, None, DEFAULT_MAX_REQUESTS).unwrap();
        assert_eq!(
            (t.name.as_str(), t.keys.as_slice()),
            ("mine.txt", &[5, 6][..])
        );
        // An explicit format wins over the name and the sniff.
        let t = load(&plain, Some(Format::U64BigEndian), DEFAULT_MAX_REQUESTS).unwrap();
        assert_eq!(t.keys, [u64::from_be_bytes(*b"5 2 0 0\n")]);
        assert_eq!(t.read_as, "u64be (named with --format)");

        // `cat a.gz b.gz`: both members' requests, none lost.
        let two = dir.join("two.gz");
        let mut bytes = gz(b"1\n2\n");
        bytes.extend(gz(b"3\n"));
        std::fs::write(&two, &bytes).unwrap();
        assert_eq!(
            load(&two, None, DEFAULT_MAX_REQUESTS).unwrap().keys,
            [1, 2, 3]
        );
        // Bytes after the last member that are not a gzip member: an error.
        bytes.extend_from_slice(b"garbage");
        std::fs::write(&two, &bytes).unwrap();
        assert!(load(&two, None, DEFAULT_MAX_REQUESTS).is_err());
        // A truncated member: an error, not the requests before the cut.
        let cut = dir.join("cut.gz");
        let whole = gz(&(0..10_000u64)
            .map(|k| format!("{k}\n"))
            .collect::<String>()
            .into_bytes());
        std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
        assert!(load(&cut, None, DEFAULT_MAX_REQUESTS).is_err());

        let empty = dir.join("empty.gz");
        std::fs::write(&empty, gz(b"")).unwrap();
        let e = load(&empty, None, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert!(e.ends_with("empty: no requests"), "{e}");
        let e = load(&empty, Some(Format::Lines), DEFAULT_MAX_REQUESTS).unwrap_err();
        assert!(e.ends_with("no requests"), "{e}");
        let e = load(&dir, None, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert!(e.ends_with("not a regular file"), "{e}");
        let e = load(&dir.join("absent.gz"), None, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert!(e.contains("absent.gz"), "{e}");
        // F4: a file name that is not UTF-8 is read like any other (and shown
        // with U+FFFD); an empty path says so, not that it is not UTF-8.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
            std::fs::write(&odd, b"1\n2\n1\n").unwrap();
            let t = load(&odd, None, DEFAULT_MAX_REQUESTS).unwrap();
            assert_eq!(t.keys, [1, 2, 1]);
            assert_eq!(t.name, "bad\u{fffd}name");
            assert_eq!(t.read_as, "lines (sniffed)");
        }
        let e = load(Path::new(""), None, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert_eq!(e, "a trace path is empty");
        // A parse error names the file, the format and the line.
        std::fs::write(&plain, b"1\nx\n").unwrap();
        let e = load(&plain, None, DEFAULT_MAX_REQUESTS).unwrap_err();
        assert!(
            e.ends_with("mine.txt: as lines: line 2: \"x\": invalid digit found in string"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
