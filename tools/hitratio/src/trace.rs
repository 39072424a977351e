//! The trace files of `../shared/traces` and their three formats (its README is
//! the reference): every request is a `u64` key.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

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

/// The format of the trace named `name` (its file name without `.gz`), from the
/// traces README; `None` for a trace the harness does not know, which it refuses
/// rather than guess at.
pub fn format_of(name: &str) -> Option<Format> {
    match name {
        "oltp" => Some(Format::Oltp),
        "gli" | "loop" => Some(Format::Lines),
        "trace_vaultservice" => Some(Format::U64BigEndian),
        _ => None,
    }
}

/// The keys of an OLTP-format text.
pub fn parse_oltp(text: &str) -> Result<Vec<u64>, String> {
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let mut field = |what: &str| -> Result<u64, String> {
            let value = fields
                .next()
                .ok_or_else(|| format!("line {}: no {what} field in {line:?}", number + 1))?;
            value
                .parse::<u64>()
                .map_err(|e| format!("line {}: {what} {value:?}: {e}", number + 1))
        };
        let start = field("start")?;
        let count = field("count")?;
        let end = start
            .checked_add(count)
            .ok_or_else(|| format!("line {}: start + count overflows", number + 1))?;
        keys.extend(start..end);
    }
    Ok(keys)
}

/// The keys of a text with one integer per line (blank lines and `\r\n` line ends
/// are accepted: the LIRS files have both).
pub fn parse_lines(text: &str) -> Result<Vec<u64>, String> {
    text.lines()
        .enumerate()
        .map(|(number, line)| (number, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(number, line)| {
            line.parse::<u64>()
                .map_err(|e| format!("line {}: {line:?}: {e}", number + 1))
        })
        .collect()
}

/// The keys of a stream of 8-byte big-endian integers.
pub fn parse_u64_big_endian(bytes: &[u8]) -> Result<Vec<u64>, String> {
    if bytes.len() % 8 != 0 {
        return Err(format!(
            "{} bytes is not a whole number of 8-byte keys",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|chunk| u64::from_be_bytes(chunk.try_into().expect("chunks_exact(8)")))
        .collect())
}

/// The keys of `bytes` (already decompressed) in `format`.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Vec<u64>, String> {
    let text = || std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"));
    match format {
        Format::Oltp => parse_oltp(text()?),
        Format::Lines => parse_lines(text()?),
        Format::U64BigEndian => parse_u64_big_endian(bytes),
    }
}

/// Where the traces are: `$HITRATIO_TRACES`, else `../shared/traces` beside the
/// repository (where the project keeps them; `make hitratio` passes it).
pub fn default_dir() -> std::path::PathBuf {
    match std::env::var_os("HITRATIO_TRACES") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces"),
    }
}

/// A trace file's name (without `.gz`) and keys.
#[derive(Debug)]
pub struct Trace {
    /// The file name without `.gz`, e.g. `oltp`.
    pub name: String,
    /// The requests, in order.
    pub keys: Vec<u64>,
}

/// Reads, decompresses and parses one `.gz` trace file.
pub fn load(path: &Path) -> Result<Trace, String> {
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| format!("{}: not a UTF-8 file name", path.display()))?;
    let name = file_name
        .strip_suffix(".gz")
        .ok_or_else(|| format!("{}: not a .gz file", path.display()))?;
    let format = format_of(name).ok_or_else(|| {
        format!(
            "{}: no known format for trace {name:?} (add it to trace::format_of from the traces README)",
            path.display()
        )
    })?;
    let mut bytes = Vec::new();
    GzDecoder::new(File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = parse(format, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Trace {
        name: name.to_string(),
        keys,
    })
}

/// Every `.gz` trace of `dir`, sorted by name (the README and any other file
/// are not traces).
pub fn load_dir(dir: &Path) -> Result<Vec<Trace>, String> {
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
    paths.iter().map(|path| load(path)).collect()
}

/// The "mixed" workload of the published results: trace_vaultservice, then
/// loop, then trace_vaultservice again, through the same cache.
pub fn mixed(traces: &[Trace]) -> Result<Trace, String> {
    let find = |name: &str| {
        traces
            .iter()
            .find(|trace| trace.name == name)
            .ok_or_else(|| format!("mixed needs trace {name:?}, which is missing"))
    };
    let vault = find("trace_vaultservice")?;
    let looping = find("loop")?;
    let mut keys = Vec::with_capacity(2 * vault.keys.len() + looping.keys.len());
    keys.extend_from_slice(&vault.keys);
    keys.extend_from_slice(&looping.keys);
    keys.extend_from_slice(&vault.keys);
    Ok(Trace {
        name: "mixed".to_string(),
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn oltp_lines_expand_to_count_consecutive_keys() {
        let text = "5 3 0 0\n1 1 9 9\n\n100 2 7 7\n";
        assert_eq!(parse_oltp(text).unwrap(), vec![5, 6, 7, 1, 100, 101]);
    }

    #[test]
    fn oltp_count_zero_is_no_request_and_bad_lines_are_errors() {
        assert_eq!(parse_oltp("4 0 0 0\n2 1 0 0").unwrap(), vec![2]);
        assert!(parse_oltp("4\n").unwrap_err().contains("count"));
        assert!(parse_oltp("4 x 0 0\n").unwrap_err().contains("line 1"));
        assert!(parse_oltp(&format!("{} 2 0 0", u64::MAX)).is_err());
    }

    #[test]
    fn lines_accept_crlf_and_blank_lines() {
        assert_eq!(parse_lines("0\r\n1\r\n\r\n 2 \n\n").unwrap(), vec![0, 1, 2]);
        assert!(parse_lines("1\n-2\n").unwrap_err().contains("line 2"));
    }

    #[test]
    fn big_endian_u64_keys() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            parse_u64_big_endian(&bytes).unwrap(),
            vec![0x0102_0304_0506_0708, u64::MAX]
        );
        assert!(parse_u64_big_endian(&bytes[..9]).is_err());
    }

    #[test]
    fn load_decompresses_and_picks_the_format_from_the_name() {
        let dir = std::env::temp_dir().join(format!("hitratio-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(bytes).unwrap();
            std::fs::write(dir.join(name), gz.finish().unwrap()).unwrap();
        };
        write("oltp.gz", b"10 2 0 0\n");
        write("loop.gz", b"3\r\n4\r\n");
        write("trace_vaultservice.gz", &[0, 0, 0, 0, 0, 0, 1, 0]);
        std::fs::write(dir.join("README.md"), "not a trace").unwrap();
        let traces = load_dir(&dir).unwrap();
        let names: Vec<_> = traces.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["loop", "oltp", "trace_vaultservice"]);
        assert_eq!(traces[0].keys, [3, 4]);
        assert_eq!(traces[1].keys, [10, 11]);
        assert_eq!(traces[2].keys, [256]);
        assert_eq!(mixed(&traces).unwrap().keys, [256, 3, 4, 256]);

        write("unknown.gz", b"1\n");
        assert!(load_dir(&dir).unwrap_err().contains("no known format"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
