//! The trace files and their three formats (`../shared/traces/README.md` is the
//! reference): every request is a `u64` key.
//!
//! A trace is read as a stream (through the gzip layer, [`crate::gzip`], when it
//! is gzip-compressed), so that a file's size in memory is its requests' keys
//! only, and a hostile file is refused with the line or byte where it is wrong:
//! a line over [`MAX_LINE`] bytes, a byte that is not text in a text trace, a
//! line that is not exactly one key (`lines`) or four unsigned integers
//! (`oltp`), an OLTP range that overflows, or more requests than the caller's
//! limit (an OLTP line `0 18446744073709551615 0 0` stands for 2^64 requests in
//! 26 bytes). The work is bounded with the requests: a stream may hold at most
//! [`BYTES_PER_REQUEST`] (decompressed) bytes, and one line without a request,
//! per request the limit allows, so that a small gzip of blank lines cannot
//! keep the harness busy for minutes.
//!
//! The format is `--format`'s, else the one a README beside the file gives it
//! (only if there is one and it lists that file: [`crate::listing`]), else the
//! one [`crate::sniff`] tells from the first bytes; the trace says which, and
//! why, in [`Trace::read_as`] and in every error.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::str::FromStr;

use crate::anchors::Readme;
use crate::gzip::{Compression, Gunzip, MAGIC};
use crate::sniff::{sniff, SNIFF_BYTES};

/// How a trace file encodes its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text lines `start count x y`: the keys `start .. start + count`, in order
    /// (the ARC paper's traces; the last two fields, unsigned integers too, are
    /// ignored).
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

/// The longest text line accepted, in bytes, its line end (LF or CRLF) not
/// counted: a trace line is a few numbers, so anything longer is not a trace
/// (and would otherwise be read into memory whole, however long).
pub const MAX_LINE: usize = 4096;

/// The default limit on a trace's requests (`--max-requests`): 2^26, about 70
/// times the largest of the README's traces. Every request is held in memory as
/// its 8-byte key (each replay, at each capacity and in parallel, runs over the
/// whole trace), so this is 512 MiB of keys at most: a 20-byte OLTP line or a
/// small gzip bomb can ask for that much and no more. (It was 2^30, 8 GiB.)
pub const DEFAULT_MAX_REQUESTS: u64 = 1 << 26;

/// The (decompressed) bytes a stream may hold per request the limit allows:
/// a request takes at most 22 bytes in `lines` (20 digits and CRLF) and 8 in
/// `u64be`, and an OLTP line of four 20-digit numbers is 85 bytes for at least
/// one request, so only a trace near the limit that is mostly such lines (or
/// long runs of spaces) reaches it. 4 GiB under the default limit: seconds,
/// where a 2 MB gzip of blank lines without it was a minute.
pub const BYTES_PER_REQUEST: u64 = 64;

/// A text trace's line as an error shows it: quoted and escaped, and cut to
/// about 80 characters (a 4 KiB line of control bytes made a 20 KB message).
fn quoted(text: &str) -> String {
    const SHOWN: usize = 80;
    let mut out = String::from('"');
    for c in text.chars() {
        let escaped: String = c.escape_debug().collect();
        if out.len() + escaped.len() > SHOWN {
            return format!("{out}\"... ({} bytes)", text.len());
        }
        out.push_str(&escaped);
    }
    out.push('"');
    out
}

/// An unsigned decimal integer: digits only (`u64::from_str` also takes a
/// leading `+`, which no trace writes).
fn integer(text: &str) -> Result<u64, String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not an unsigned decimal integer".into());
    }
    text.parse::<u64>().map_err(|e| e.to_string())
}

/// The keys read so far, within the request limit, and the lines without a
/// request, within the same number.
struct Keys {
    keys: Vec<u64>,
    max_requests: u64,
    idle_lines: u64,
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

    /// One more line that carries no request, or the error that says it is
    /// one too many.
    fn idle_line(&mut self, at: &dyn Fn() -> String) -> Result<(), String> {
        self.idle_lines += 1;
        if self.idle_lines > self.max_requests {
            return Err(format!(
                "{}: more than {} lines without a request (blank, or an OLTP count of 0): \
                 at most one per request the limit allows (raise it with --max-requests)",
                at(),
                self.max_requests
            ));
        }
        Ok(())
    }
}

/// A stream cut off, with an error, after `left` bytes.
struct Budget<R> {
    inner: R,
    left: u64,
    message: String,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One byte more than allowed, or the end.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(self.message.clone())),
            };
        }
        let room = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The keys of one text line (`Oltp` or `Lines`), numbered `number`, its line
/// end (LF or CRLF, or none at the end of the stream) included.
fn read_line(line: &[u8], number: u64, oltp: bool, keys: &mut Keys) -> Result<(), String> {
    let at = || format!("line {number}");
    let content = line.strip_suffix(b"\n").unwrap_or(line);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    if content.len() > MAX_LINE {
        return Err(format!("line {number}: longer than {MAX_LINE} bytes"));
    }
    // A control byte is no part of a trace line: a NUL is damage, and a CR
    // inside a line means CR-only line ends, whose "fields" are lines.
    if let Some(at_byte) = content
        .iter()
        .position(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        let c = char::from(content[at_byte]);
        let hint = if c == '\r' {
            " (CR-only line ends? a line ends with LF or CRLF)"
        } else {
            ""
        };
        return Err(format!(
            "line {number}: not text: the control character {c:?} at byte {} of the line{hint}",
            at_byte + 1
        ));
    }
    let text =
        std::str::from_utf8(content).map_err(|e| format!("line {number}: not UTF-8 text: {e}"))?;
    // No control byte is left but tab: ASCII whitespace is spaces and tabs.
    let text = text.trim_ascii();
    if text.is_empty() {
        return keys.idle_line(&at);
    }
    if !oltp {
        let key = integer(text).map_err(|e| format!("line {number}: {}: {e}", quoted(text)))?;
        keys.make_room(1, &at)?;
        keys.keys.push(key);
        return Ok(());
    }
    let mut fields = text.split_ascii_whitespace();
    let mut field = |what: &str| -> Result<u64, String> {
        let value = fields.next().ok_or_else(|| {
            format!(
                "line {number}: no {what} field in {} (an OLTP line is `start count x y`)",
                quoted(text)
            )
        })?;
        integer(value).map_err(|e| format!("line {number}: {what} {}: {e}", quoted(value)))
    };
    let start = field("start")?;
    let count = field("count")?;
    field("x")?;
    field("y")?;
    if fields.next().is_some() {
        return Err(format!(
            "line {number}: more than four fields in {} (an OLTP line is `start count x y`)",
            quoted(text)
        ));
    }
    if count == 0 {
        return keys.idle_line(&at);
    }
    // The last key, start + count - 1, must be a u64 (start + count need not).
    let last = start
        .checked_add(count - 1)
        .ok_or_else(|| format!("line {number}: start + count - 1 overflows a u64"))?;
    keys.make_room(count, &at)?;
    keys.keys.extend(start..=last);
    Ok(())
}

/// The keys of a text trace (`Oltp` or `Lines`), line by line. Blank lines and
/// `\r\n` line ends are accepted (the LIRS files have both).
fn read_text(mut reader: impl BufRead, oltp: bool, keys: &mut Keys) -> Result<(), String> {
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        // Up to MAX_LINE bytes and CRLF; a longer line stops here, refused.
        let limit = MAX_LINE as u64 + 2;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("after line {number}: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        read_line(&line, number, oltp, keys)?;
    }
}

/// The keys of a stream of 8-byte big-endian integers; `byte` is how its
/// offsets are named (`byte`, or `decompressed byte` in a gzip file).
fn read_u64_big_endian(mut reader: impl Read, byte: &str, keys: &mut Keys) -> Result<(), String> {
    let mut chunk = [0u8; 8];
    let mut offset = 0u64;
    loop {
        let mut filled = 0;
        while filled < 8 {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("at {byte} {}: {e}", offset + filled as u64)),
            }
        }
        match filled {
            0 => return Ok(()),
            8 => {}
            _ => {
                return Err(format!(
                    "{} {byte}s is not a whole number of 8-byte keys",
                    offset + filled as u64
                ))
            }
        }
        keys.make_room(1, &|| format!("at {byte} {offset}"))?;
        keys.keys.push(u64::from_be_bytes(chunk));
        offset += 8;
    }
}

/// The keys of the stream `reader` (not compressed) in `format`, refused once
/// they pass `max_requests` (or the work bound that goes with it).
pub fn read(reader: impl Read, format: Format, max_requests: u64) -> Result<Vec<u64>, String> {
    read_stream(reader, format, max_requests, false)
}

/// [`read`], of a stream decompressed from gzip if `decompressed` (its offsets
/// are named so).
fn read_stream(
    reader: impl Read,
    format: Format,
    max_requests: u64,
    decompressed: bool,
) -> Result<Vec<u64>, String> {
    let byte = if decompressed {
        "decompressed byte"
    } else {
        "byte"
    };
    let mut keys = Keys {
        keys: Vec::new(),
        max_requests,
        idle_lines: 0,
    };
    let cap = max_requests.saturating_mul(BYTES_PER_REQUEST);
    let reader = Budget {
        inner: reader,
        left: cap,
        message: format!(
            "more than {cap} {byte}s ({BYTES_PER_REQUEST} per request the limit allows; \
             raise it with --max-requests)"
        ),
    };
    let reader = BufReader::with_capacity(1 << 16, reader);
    match format {
        Format::Oltp => read_text(reader, true, &mut keys)?,
        Format::Lines => read_text(reader, false, &mut keys)?,
        Format::U64BigEndian => read_u64_big_endian(reader, byte, &mut keys)?,
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
    /// The format its keys were read in (for "mixed": its first trace's).
    pub format: Format,
    /// How its keys were read: the format and why, e.g. `lines (sniffed: one
    /// field on its first line)`, and any gzip padding ignored.
    pub read_as: String,
    /// The requests, in order.
    pub keys: Vec<u64>,
}

/// How the command line asks for a trace file to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// `--format`: wins over the README and the sniff.
    pub format: Option<Format>,
    /// `--compression`.
    pub compression: Compression,
    /// `--max-requests`.
    pub max_requests: u64,
}

impl Options {
    /// The defaults: the format from the README or the sniff, gzip by its magic
    /// bytes, at most `max_requests` requests.
    pub fn new(max_requests: u64) -> Options {
        Options {
            format: None,
            compression: Compression::Auto,
            max_requests,
        }
    }
}

/// A trace file's bytes: plain, or through the gzip layer.
enum Stream {
    Plain(BufReader<File>),
    // Boxed: the decoder's state is at least 256 bytes, a plain file's 48.
    Gzip(Box<Gunzip<BufReader<File>>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(file) => file.read(buf),
            Stream::Gzip(gunzip) => gunzip.read(buf),
        }
    }
}

/// Reads one trace file: gzip-compressed or not as `options.compression`
/// says (by its magic bytes, whatever its name, by default), in
/// `options.format` if given, else in the format `readme` (the README beside
/// it) lists it in, else in the format [`sniff`] finds. At most
/// `options.max_requests` requests, and at least one.
pub fn load(path: &Path, readme: &Readme, options: &Options) -> Result<Trace, String> {
    if path.as_os_str().is_empty() {
        return Err("a trace path is empty".into());
    }
    let fail = |e: String| format!("{}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    // A regular file has a name; one that is not UTF-8 is shown with U+FFFD
    // for the bytes that are not (no README lists it, so it is sniffed).
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .ok_or_else(|| fail("no file name".into()))?;
    let name = file_name
        .strip_suffix(".gz")
        .unwrap_or(&file_name)
        .to_string();
    let mut file =
        BufReader::with_capacity(1 << 16, File::open(path).map_err(|e| fail(e.to_string()))?);
    let magic = file
        .fill_buf()
        .map_err(|e| fail(e.to_string()))?
        .starts_with(&MAGIC);
    let gzip = match options.compression {
        Compression::Auto => magic,
        Compression::None => false,
        Compression::Gzip if magic => true,
        Compression::Gzip => {
            return Err(fail(
                "--compression gzip: not gzip (it does not start with the bytes 1f 8b)".into(),
            ))
        }
    };
    let mut stream = if gzip {
        Stream::Gzip(Box::new(Gunzip::new(file, Some(meta.len()))))
    } else {
        Stream::Plain(file)
    };
    // The gzip layer's errors say where they are; a plain file's say so here.
    let mut head = Vec::new();
    (&mut stream)
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)
        .map_err(|e| fail(e.to_string()))?;
    let (format, why) = match (options.format, readme.format_of(&file_name)) {
        (Some(format), _) => (format, "named with --format".to_string()),
        (None, Some(format)) => (format, "the README beside it lists it so".to_string()),
        (None, None) => sniff(&head).map_err(fail)?,
    };
    let keys = read_stream(
        Cursor::new(head).chain(&mut stream),
        format,
        options.max_requests,
        gzip,
    )
    .map_err(|e| fail(format!("as {format} ({why}): {e}")))?;
    if keys.is_empty() {
        return Err(fail("no requests".into()));
    }
    let mut read_as = format!("{format} ({why})");
    if let Stream::Gzip(gunzip) = &stream {
        if gunzip.padding() > 0 {
            read_as.push_str(&format!(
                "; {} zero bytes of padding after the last gzip member ignored",
                gunzip.padding()
            ));
        }
    }
    Ok(Trace {
        name,
        format,
        read_as,
        keys,
    })
}

/// Every `.gz` trace of `dir`, sorted by name (the README and any other file
/// are not traces), each in the format `readme` (the README of `dir`) lists it
/// in, else sniffed.
pub fn load_dir(dir: &Path, readme: &Readme, max_requests: u64) -> Result<Vec<Trace>, String> {
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
    let options = Options::new(max_requests);
    paths
        .iter()
        .map(|path| load(path, readme, &options))
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
        format: vault.format,
        read_as: format!(
            "{}, then {}, then {} (as above)",
            vault.format, looping.format, vault.format
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
        read(bytes, format, u64::MAX / BYTES_PER_REQUEST)
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

    /// `load` with no README and the default options.
    fn load_plain(path: &Path) -> Result<Trace, String> {
        load(
            path,
            &Readme::default(),
            &Options::new(DEFAULT_MAX_REQUESTS),
        )
    }

    /// `count` lines `0..99` cycling, as a `lines` trace.
    fn cycling(count: u32) -> Vec<u8> {
        (0..count)
            .flat_map(|k| format!("{}\n", k % 100).into_bytes())
            .collect()
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

    /// L1: an OLTP line is exactly four unsigned integers, and a `lines` key
    /// is digits only: fewer or more fields, a non-numeric x or y, and a `+`
    /// were accepted without a word.
    #[test]
    fn oltp_lines_are_four_integers_and_keys_are_digits() {
        let e = parse(Format::Oltp, b"1 2 0 0\n1 2\n").unwrap_err();
        assert_eq!(
            e,
            "line 2: no x field in \"1 2\" (an OLTP line is `start count x y`)"
        );
        let e = parse(Format::Oltp, b"1 2 0 0 junk\n").unwrap_err();
        assert_eq!(
            e,
            "line 1: more than four fields in \"1 2 0 0 junk\" (an OLTP line is `start count x y`)"
        );
        let e = parse(Format::Oltp, b"1 2 0 0\n1 2 foo bar\n").unwrap_err();
        assert_eq!(e, "line 2: x \"foo\": not an unsigned decimal integer");
        let e = parse(Format::Oltp, b"1 +2 0 0\n").unwrap_err();
        assert_eq!(e, "line 1: count \"+2\": not an unsigned decimal integer");
        let e = parse(Format::Lines, b"1\n+1\n").unwrap_err();
        assert_eq!(e, "line 2: \"+1\": not an unsigned decimal integer");
        let e = parse(Format::Lines, b"3 junk\n").unwrap_err();
        assert_eq!(e, "line 1: \"3 junk\": not an unsigned decimal integer");
        // Tabs separate fields too, and the largest u64 is a key.
        assert_eq!(parse(Format::Oltp, b"1\t2\t0\t0\n").unwrap(), [1, 2]);
        let max = format!("{}\n", u64::MAX);
        assert_eq!(parse(Format::Lines, max.as_bytes()).unwrap(), [u64::MAX]);
        let e = parse(Format::Lines, b"18446744073709551616\n").unwrap_err();
        assert!(e.contains("too large"), "{e}");
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

    /// L3: CR-only line ends (`1\r2\r3\r4\r`) are refused with a word on
    /// them; they were one line of four fields, read as OLTP. A NUL is refused
    /// as what it is.
    #[test]
    fn a_control_character_in_a_line_is_refused_by_name() {
        for format in [Format::Lines, Format::Oltp] {
            let e = parse(format, b"1\r2\r3\r4\r").unwrap_err();
            assert_eq!(
                e,
                "line 1: not text: the control character '\\r' at byte 2 of the line \
                 (CR-only line ends? a line ends with LF or CRLF)"
            );
        }
        let e = parse(Format::Lines, b"1\n2\n\0\n").unwrap_err();
        assert_eq!(
            e,
            "line 3: not text: the control character '\\0' at byte 1 of the line"
        );
    }

    /// L4: an error shows at most about 80 characters of the line.
    #[test]
    fn an_error_cuts_the_line_it_shows() {
        let line = "\u{7f}".repeat(4000);
        let e = parse(Format::Lines, line.as_bytes()).unwrap_err();
        assert!(e.len() < 200, "{} bytes: {e}", e.len());
        let line = format!("{}x\n", "1".repeat(4000));
        let e = parse(Format::Lines, line.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            format!(
                "line 1: \"{}\"... (4001 bytes): not an unsigned decimal integer",
                "1".repeat(79)
            )
        );
        assert_eq!(quoted("ab\"c"), "\"ab\\\"c\"");
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

    /// F4: lines without a request (blank, or an OLTP count of 0) and bytes
    /// are bounded with the requests: a gzip of 2 GiB of newlines was read for
    /// a minute; now it stops at the request limit's worth, saying which limit
    /// and how to raise it.
    #[test]
    fn lines_without_requests_and_bytes_are_bounded_with_the_requests() {
        let blank = format!("1\n{}", "\n".repeat(10));
        assert_eq!(read(blank.as_bytes(), Format::Lines, 10).unwrap(), [1]);
        let blank = format!("1\n{}", "\n".repeat(11));
        let e = read(blank.as_bytes(), Format::Lines, 10).unwrap_err();
        assert_eq!(
            e,
            "line 12: more than 10 lines without a request (blank, or an OLTP count of 0): \
             at most one per request the limit allows (raise it with --max-requests)"
        );
        let idle = format!("1 1 0 0\n{}", "0 0 0 0\n".repeat(11));
        let e = read(idle.as_bytes(), Format::Oltp, 10).unwrap_err();
        assert!(e.starts_with("line 12: more than 10 lines without"), "{e}");
        // Long lines of spaces, each one request: the bytes run out first.
        let spaced = format!("{}1\n", " ".repeat(100)).repeat(8);
        let e = read(spaced.as_bytes(), Format::Lines, 10).unwrap_err();
        assert_eq!(
            e,
            "after line 6: more than 640 bytes (64 per request the limit allows; raise it \
             with --max-requests)"
        );
        assert_eq!(read(spaced.as_bytes(), Format::Lines, 13).unwrap().len(), 8);
        // At exactly the cap, the end of the stream is no error.
        let exact = [0u8; 10 * 8];
        assert_eq!(
            read(&exact[..], Format::U64BigEndian, 10).unwrap().len(),
            10
        );
        // The default limit bounds a bomb's work to 4 GiB of text.
        assert_eq!(DEFAULT_MAX_REQUESTS * BYTES_PER_REQUEST, 4 << 30);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_without_reading_it_whole() {
        // An endless line: the reader must stop after MAX_LINE + 2 bytes.
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

    /// L2: the line end is not counted, CRLF included: a 4096-byte line with
    /// CRLF was refused as longer than 4096 bytes.
    #[test]
    fn a_crlf_line_end_does_not_count_against_the_line_limit() {
        let edge = format!("{}42", " ".repeat(MAX_LINE - 2));
        for end in ["\n", "\r\n", ""] {
            let line = format!("{edge}{end}7\n");
            assert_eq!(
                parse(Format::Lines, line.as_bytes()).unwrap_or_default(),
                if end.is_empty() { vec![] } else { vec![42, 7] },
                "{end:?}"
            );
        }
        for end in ["\n", "\r\n", "\r", ""] {
            let line = format!(" {edge}{end}");
            let e = parse(Format::Lines, line.as_bytes()).unwrap_err();
            assert_eq!(
                e,
                format!("line 1: longer than {MAX_LINE} bytes"),
                "{end:?}"
            );
        }
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
    fn load_decompresses_and_takes_the_format_the_readme_lists() {
        let dir = scratch("dir");
        let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), gz(bytes)).unwrap();
        write("oltp.gz", b"10 2 0 0\n");
        write("loop.gz", b"3\r\n4\r\n");
        // 0x0a0a31 would be text; the README says it is u64be.
        write("trace_vaultservice.gz", &[0, 0, 0, 0, 0, 0x0a, 0x0a, 0x31]);
        let readme = Readme {
            tables: Vec::new(),
            formats: vec![
                ("oltp.gz".into(), Format::Oltp),
                ("loop.gz".into(), Format::Lines),
                ("trace_vaultservice.gz".into(), Format::U64BigEndian),
            ],
        };
        let traces = load_dir(&dir, &readme, DEFAULT_MAX_REQUESTS).unwrap();
        let names: Vec<_> = traces.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["loop", "oltp", "trace_vaultservice"]);
        assert_eq!(traces[0].keys, [3, 4]);
        assert_eq!(
            traces[0].read_as,
            "lines (the README beside it lists it so)"
        );
        assert_eq!(traces[1].keys, [10, 11]);
        assert_eq!(traces[2].keys, [0x0a0a31]);
        assert_eq!(mixed(&traces).unwrap().keys, [0x0a0a31, 3, 4, 0x0a0a31]);
        assert!(mixed(&traces[1..]).is_none());

        // A trace the README does not list is sniffed, and says so.
        write("sprite.gz", b"1\n2\n1\n");
        let traces = load_dir(&dir, &readme, DEFAULT_MAX_REQUESTS).unwrap();
        let sprite = traces.iter().find(|t| t.name == "sprite").unwrap();
        assert_eq!(
            (sprite.keys.as_slice(), sprite.read_as.as_str()),
            (
                &[1, 2, 1][..],
                "lines (sniffed: one field on its first line)"
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// F5: without a README that lists it, a file named like one of the
    /// project's traces is sniffed (it was read in that trace's format), and
    /// the format used, and why, is in every result and every error.
    #[test]
    fn a_name_alone_chooses_no_format() {
        let dir = scratch("named");
        let u64be: Vec<u8> = (0..100u64).flat_map(|k| k.to_be_bytes()).collect();
        for (name, bytes, format) in [
            ("loop", u64be.clone(), "u64be"),
            ("gli.gz", gz(b"0 100 0 0\n"), "oltp"),
            ("oltp.gz", b"0\n1\n".to_vec(), "lines"),
            ("trace_vaultservice", b"5\n".to_vec(), "lines"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let t = load_plain(&path).unwrap();
            assert!(
                t.read_as.starts_with(&format!("{format} (sniffed: ")),
                "{name}: {}",
                t.read_as
            );
        }
        // Listed under another name: still sniffed.
        let other = Readme {
            tables: Vec::new(),
            formats: vec![("loop.gz".into(), Format::Lines)],
        };
        let t = load(
            &dir.join("loop"),
            &other,
            &Options::new(DEFAULT_MAX_REQUESTS),
        )
        .unwrap();
        assert_eq!(t.keys, (0..100).collect::<Vec<_>>());
        // Listed: the README's format, and an error says it came from there.
        let listed = Readme {
            tables: Vec::new(),
            formats: vec![("loop".into(), Format::Lines)],
        };
        let e = load(
            &dir.join("loop"),
            &listed,
            &Options::new(DEFAULT_MAX_REQUESTS),
        )
        .unwrap_err();
        assert!(
            e.contains("loop: as lines (the README beside it lists it so): line 1: "),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// F1: a text trace with one stray byte in its first 64 KiB is refused by
    /// that byte's line, whatever the file's length; it was read as binary
    /// keys (garbage hit ratios when its length was a multiple of 8).
    #[test]
    fn a_stray_byte_in_a_text_trace_is_refused_by_its_line() {
        let dir = scratch("stray");
        let path = dir.join("t");
        for pad in [0, 2, 8] {
            let mut text = cycling(20_000);
            text.extend_from_slice(b"\xe9\n");
            text.resize(text.len() + pad, b'\n');
            std::fs::write(&path, &text).unwrap();
            let e = load_plain(&path).unwrap_err();
            assert!(
                e.contains(
                    ": as lines (sniffed: one field on its first line): line 20001: not UTF-8 text"
                ),
                "{e}"
            );
        }
        std::fs::write(&path, b"1\n2\n\0\n").unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(
            e.contains("as lines (sniffed: one field on its first line): line 3: not text"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// F2: errors of the gzip layer in the sniff's window name the gzip layer
    /// and where (they were a bare "unexpected end of file"); junk after the
    /// last member is called that, after 64 KiB too; zero padding is accepted
    /// and said.
    #[test]
    fn gzip_errors_are_named_and_placed() {
        let dir = scratch("gzip");
        let path = dir.join("t.gz");
        let small = gz(b"1\n2\n1\n2\n");
        std::fs::write(&path, &small[..small.len() - 3]).unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(
            e.contains("t.gz: gzip layer: ") && e.contains("(decompressed byte 8)"),
            "{e}"
        );
        std::fs::write(&path, MAGIC).unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(
            e.contains("t.gz: gzip layer: ") && e.contains("compressed byte 2 of 2"),
            "{e}"
        );

        let mut junk = small.clone();
        junk.extend_from_slice(b"garbage");
        std::fs::write(&path, &junk).unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(e.ends_with("7 bytes that are not gzip"), "{e}");
        let mut big = gz(&cycling(100_000));
        big.extend_from_slice(b"garbage");
        std::fs::write(&path, &big).unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(
            e.contains(": after line 100000: gzip layer: after the last gzip member")
                && e.ends_with("7 bytes that are not gzip"),
            "{e}"
        );

        let mut padded = small.clone();
        padded.extend_from_slice(&[0; 16]);
        std::fs::write(&path, &padded).unwrap();
        let t = load_plain(&path).unwrap();
        assert_eq!(t.keys, [1, 2, 1, 2]);
        assert!(
            t.read_as
                .ends_with("; 16 zero bytes of padding after the last gzip member ignored"),
            "{}",
            t.read_as
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// F3: a u64be trace whose first key starts with 1f 8b is read with
    /// `--compression none` (it was refused as a bad gzip header whatever the
    /// flags), and the gzip error points there; `--compression gzip` refuses a
    /// plain file. L6: offsets in a gzip trace are decompressed bytes, and say so.
    #[test]
    fn compression_can_be_named() {
        let dir = scratch("compression");
        let path = dir.join("keys");
        let mut keys = vec![0x1f8b_1234_5678_9abc_u64];
        keys.extend(0..1000);
        let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_be_bytes()).collect();
        std::fs::write(&path, &bytes).unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(
            e.contains("gzip layer: ") && e.contains("--compression none"),
            "{e}"
        );
        let options = Options {
            format: Some(Format::U64BigEndian),
            compression: Compression::None,
            max_requests: DEFAULT_MAX_REQUESTS,
        };
        assert_eq!(
            load(&path, &Readme::default(), &options).unwrap().keys,
            keys
        );
        // Sniffed too.
        let options = Options {
            format: None,
            ..options
        };
        assert_eq!(
            load(&path, &Readme::default(), &options).unwrap().keys,
            keys
        );
        let options = Options {
            compression: Compression::Gzip,
            ..options
        };
        let plain = dir.join("plain");
        std::fs::write(&plain, b"1\n").unwrap();
        let e = load(&plain, &Readme::default(), &options).unwrap_err();
        assert!(
            e.ends_with("--compression gzip: not gzip (it does not start with the bytes 1f 8b)"),
            "{e}"
        );

        std::fs::write(&path, gz(&bytes[..bytes.len() - 3])).unwrap();
        let e = load_plain(&path).unwrap_err();
        assert!(
            e.ends_with("8005 decompressed bytes is not a whole number of 8-byte keys"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_reads_plain_files_and_every_gzip_member_and_refuses_garbage() {
        let dir = scratch("load");
        let plain = dir.join("mine.txt");
        std::fs::write(&plain, b"5 2 0 0\n").unwrap();
        let t = load_plain(&plain).unwrap();
        assert_eq!(
            (t.name.as_str(), t.keys.as_slice()),
            ("mine.txt", &[5, 6][..])
        );
        // An explicit format wins over the README and the sniff.
        let options = Options {
            format: Some(Format::U64BigEndian),
            ..Options::new(DEFAULT_MAX_REQUESTS)
        };
        let listed = Readme {
            tables: Vec::new(),
            formats: vec![("mine.txt".into(), Format::Oltp)],
        };
        let t = load(&plain, &listed, &options).unwrap();
        assert_eq!(t.keys, [u64::from_be_bytes(*b"5 2 0 0\n")]);
        assert_eq!(t.read_as, "u64be (named with --format)");

        // `cat a.gz b.gz`: both members' requests, none lost.
        let two = dir.join("two.gz");
        let mut bytes = gz(b"1\n2\n");
        bytes.extend(gz(b"3\n"));
        std::fs::write(&two, &bytes).unwrap();
        assert_eq!(load_plain(&two).unwrap().keys, [1, 2, 3]);
        // Bytes after the last member that are not a gzip member: an error.
        bytes.extend_from_slice(b"garbage");
        std::fs::write(&two, &bytes).unwrap();
        assert!(load_plain(&two).is_err());
        // A truncated member: an error, not the requests before the cut.
        let cut = dir.join("cut.gz");
        let whole = gz(&(0..10_000u64)
            .map(|k| format!("{k}\n"))
            .collect::<String>()
            .into_bytes());
        std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
        let e = load_plain(&cut).unwrap_err();
        assert!(e.contains("gzip layer"), "{e}");

        let empty = dir.join("empty.gz");
        std::fs::write(&empty, gz(b"")).unwrap();
        let e = load_plain(&empty).unwrap_err();
        assert!(e.ends_with("empty: no requests"), "{e}");
        let lines = Options {
            format: Some(Format::Lines),
            ..Options::new(DEFAULT_MAX_REQUESTS)
        };
        let e = load(&empty, &Readme::default(), &lines).unwrap_err();
        assert!(e.ends_with("no requests"), "{e}");
        let e = load_plain(&dir).unwrap_err();
        assert!(e.ends_with("not a regular file"), "{e}");
        let e = load_plain(&dir.join("absent.gz")).unwrap_err();
        assert!(e.contains("absent.gz"), "{e}");
        // F4: a file name that is not UTF-8 is read like any other (and shown
        // with U+FFFD); an empty path says so, not that it is not UTF-8.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = dir.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
            std::fs::write(&odd, b"1\n2\n1\n").unwrap();
            let t = load_plain(&odd).unwrap();
            assert_eq!(t.keys, [1, 2, 1]);
            assert_eq!(t.name, "bad\u{fffd}name");
            assert_eq!(t.read_as, "lines (sniffed: one field on its first line)");
        }
        let e = load_plain(Path::new("")).unwrap_err();
        assert_eq!(e, "a trace path is empty");
        // A parse error names the file, the format and why, and the line.
        std::fs::write(&plain, b"1\nx\n").unwrap();
        let e = load_plain(&plain).unwrap_err();
        assert!(
            e.ends_with(
                "mine.txt: as lines (sniffed: one field on its first line): line 2: \"x\": \
                 not an unsigned decimal integer"
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
