//! The anchors: hit ratios of production caches on the same traces, as the
//! traces README records them (one `### Title (file.gz)` section per trace, each
//! with a markdown table whose header row is `CACHE` and the capacities, one row
//! per cache, values in percent). Parsed at run time, so that the harness and
//! the README cannot disagree.
//!
//! The README is read as carefully as a trace: only a regular file (a FIFO would
//! block the run, a link to `/dev/zero` would read for ever) of at most
//! [`MAX_README_BYTES`], and every value must be a percentage (finite, from 0 to
//! 100).
//!
//! [`beside`] reads such a README once for both things the harness takes from
//! it: the anchor tables (here) and the formats of the files it lists
//! ([`crate::listing`]).

use std::io::Read;
use std::path::Path;

use crate::markdown::{self, cells};
use crate::trace::Format;

/// The largest README read for anchors: 1 MiB (the traces README is about 6 KB).
pub const MAX_README_BYTES: u64 = 1 << 20;

/// One trace's anchor table.
#[derive(Clone, Debug, PartialEq)]
pub struct AnchorTable {
    /// The trace: the file name without `.gz` named in the section title, or the
    /// title's first word in lower case when it names no file (`mixed`).
    pub trace: String,
    /// The capacities of the columns, in entries.
    pub capacities: Vec<usize>,
    /// Each cache and its hit ratios in percent, one per capacity, in the
    /// README's order.
    pub rows: Vec<(String, Vec<f64>)>,
}

impl AnchorTable {
    /// The hit ratio (percent) of `cache` at `capacity`, if the table has it.
    pub fn value(&self, cache: &str, capacity: usize) -> Option<f64> {
        let column = self.capacities.iter().position(|&c| c == capacity)?;
        let (_, values) = self.rows.iter().find(|(name, _)| name == cache)?;
        Some(values[column])
    }
}

/// The trace a section title names: `Glimpse (gli.gz)` is `gli`; `Mixed (...)`
/// is `mixed`.
fn trace_of_title(title: &str) -> String {
    if let Some((_, rest)) = title.split_once('(') {
        let inside = rest.split(')').next().unwrap_or("").trim();
        if let Some(stem) = inside.strip_suffix(".gz") {
            return stem.to_string();
        }
    }
    title.split_whitespace().next().unwrap_or("").to_lowercase()
}

/// Every anchor table of the README text `readme`, in its order.
pub fn parse(readme: &str) -> Result<Vec<AnchorTable>, String> {
    let mut tables = Vec::new();
    let mut lines = readme.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        let Some(title) = line.strip_prefix("### ") else {
            continue;
        };
        let trace = trace_of_title(title);
        // Skip to the table's header row.
        let header = loop {
            match lines.next() {
                Some((_, l)) if l.trim().starts_with('|') => break l,
                Some((_, l)) if l.trim().is_empty() => continue,
                Some((n, l)) => return Err(format!("line {}: expected a table, got {l:?}", n + 1)),
                None => return Err(format!("section {title:?} has no table")),
            }
        };
        let header = cells(header);
        if !header
            .first()
            .is_some_and(|h| h.eq_ignore_ascii_case("cache"))
        {
            return Err(format!(
                "section {title:?}: header row {header:?} does not start with CACHE"
            ));
        }
        let capacities = header[1..]
            .iter()
            .map(|c| {
                c.replace(',', "")
                    .parse::<usize>()
                    .map_err(|e| format!("section {title:?}: capacity {c:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::new();
        for (n, row) in markdown::body_rows(&mut lines) {
            if row.len() != capacities.len() + 1 {
                return Err(format!(
                    "line {}: {} values for {} capacities",
                    n + 1,
                    row.len() - 1,
                    capacities.len()
                ));
            }
            let values = row[1..]
                .iter()
                .map(|v| {
                    let value = v
                        .parse::<f64>()
                        .map_err(|e| format!("line {}: {v:?}: {e}", n + 1))?;
                    if !(0.0..=100.0).contains(&value) {
                        return Err(format!(
                            "line {}: {v:?}: not a hit ratio in percent (from 0 to 100)",
                            n + 1
                        ));
                    }
                    Ok(value)
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.push((row[0].to_string(), values));
        }
        if rows.is_empty() {
            return Err(format!("section {title:?}: a table with no rows"));
        }
        tables.push(AnchorTable {
            trace,
            capacities,
            rows,
        });
    }
    Ok(tables)
}

/// The text of the README at `path`: a regular file (a link to one included)
/// of at most [`MAX_README_BYTES`], in UTF-8. Errors name the file.
pub fn read_readme(path: &Path) -> Result<String, String> {
    let fail = |e: String| format!("{}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let too_large = || fail(format!("larger than {MAX_README_BYTES} bytes (1 MiB)"));
    if meta.len() > MAX_README_BYTES {
        return Err(too_large());
    }
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    // It may have grown since: read one byte past the limit at most.
    let mut bytes = Vec::new();
    file.take(MAX_README_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_README_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text: {}", e.utf8_error())))
}

/// What a README beside traces gives the harness.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readme {
    /// Its anchor tables.
    pub tables: Vec<AnchorTable>,
    /// The files of its file table, each with its format.
    pub formats: Vec<(String, Format)>,
}

impl Readme {
    /// The format of the file named `file_name` (e.g. `oltp.gz`), if the
    /// README lists it.
    pub fn format_of(&self, file_name: &str) -> Option<Format> {
        self.formats
            .iter()
            .find(|(name, _)| name == file_name)
            .map(|&(_, format)| format)
    }
}

/// The README.md in `dir`, and a note for the output when it could not be
/// used. No README: nothing, and no note. A README that is no regular file, too
/// large, or does not parse is an error if `required` (the project's traces
/// directory), else a note (a README beside a trace of the user's, which the
/// user did not name), and then neither its anchors nor its formats are used.
pub fn beside(dir: &Path, required: bool) -> Result<(Readme, Option<String>), String> {
    let path = dir.join("README.md");
    if !required && std::fs::symlink_metadata(&path).is_err() {
        return Ok((Readme::default(), None));
    }
    let parsed = read_readme(&path).and_then(|readme| {
        let named = |e: String| format!("{}: {e}", path.display());
        Ok(Readme {
            tables: parse(&readme).map_err(named)?,
            formats: crate::listing::parse(&readme).map_err(named)?,
        })
    });
    match parsed {
        Ok(readme) => Ok((readme, None)),
        Err(e) if required => Err(e),
        Err(e) => Ok((
            Readme::default(),
            Some(format!("no anchors and no formats ({e})")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Traces

| file | format |
|---|---|
| a.gz | text, one integer key per line |

### Some trace (some_trace.gz)

|   CACHE   |  250  | 1,000 |
|-----------|-------|-------|
| otter     | 23.57 |  9.10 |
| lru       |  0.00 | 99.80 |

### Mixed (some_trace, then some_trace again)

| CACHE | 5 |
|---|---|
| arc | 1.5 |

Closing remarks.
";

    #[test]
    fn parses_sections_titles_capacities_and_rows() {
        let tables = parse(SAMPLE).unwrap();
        assert_eq!(
            tables,
            vec![
                AnchorTable {
                    trace: "some_trace".into(),
                    capacities: vec![250, 1000],
                    rows: vec![
                        ("otter".into(), vec![23.57, 9.10]),
                        ("lru".into(), vec![0.0, 99.80]),
                    ],
                },
                AnchorTable {
                    trace: "mixed".into(),
                    capacities: vec![5],
                    rows: vec![("arc".into(), vec![1.5])],
                },
            ]
        );
        assert_eq!(tables[0].value("lru", 1000), Some(99.80));
        assert_eq!(tables[0].value("lru", 500), None);
        assert_eq!(tables[0].value("arc", 250), None);
    }

    #[test]
    fn malformed_tables_are_errors() {
        assert!(parse("### T (t.gz)\n\nno table\n").is_err());
        assert!(parse("### T (t.gz)\n| CACHE | 1 |\n|---|---|\n| x | 1 | 2 |\n").is_err());
        assert!(parse("### T (t.gz)\n| CACHE | 1 |\n|---|---|\n| x | n/a |\n").is_err());
        assert!(parse("### T (t.gz)\n| NAME | 1 |\n").is_err());
    }

    /// F6: a value that is no percentage (not finite, negative, over 100) is an
    /// error naming the line, like a malformed one.
    #[test]
    fn anchor_values_must_be_percentages() {
        let table =
            |v: &str| format!("### T (t.gz)\n| CACHE | 1 | 2 |\n|---|---|---|\n| x | 5 | {v} |\n");
        for ok in ["0", "0.00", "100", "100.00", "57.81", "1e1"] {
            let tables = parse(&table(ok)).unwrap();
            assert_eq!(tables[0].value("x", 2), Some(ok.parse().unwrap()));
        }
        for bad in [
            "1e309", "inf", "-inf", "NaN", "nan", "-5.00", "-0.01", "100.01", "999.99",
        ] {
            let e = parse(&table(bad)).unwrap_err();
            assert_eq!(
                e,
                format!("line 4: {bad:?}: not a hit ratio in percent (from 0 to 100)"),
            );
        }
    }

    /// A fresh directory for one test's files.
    fn scratch(test: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hitratio-anchors-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// F5: the README beside a trace gets the checks the trace gets: a FIFO is
    /// not opened (it blocked the run for ever), a link to /dev/zero is not read
    /// (it read until out of memory), a file over 1 MiB is not read; each is a
    /// note naming the file beside a --trace file, an error for --traces.
    #[test]
    fn the_readme_must_be_a_regular_file_of_at_most_1_mib() {
        let dir = scratch("readme");
        let readme = dir.join("README.md");
        // None at all: no anchors, no note (an error if required).
        assert_eq!(beside(&dir, false), Ok((Readme::default(), None)));
        assert!(beside(&dir, true).is_err());

        let refused = |why: &str| {
            let (used, note) = beside(&dir, false).unwrap();
            assert_eq!(used, Readme::default());
            let note = note.unwrap();
            assert!(
                note.starts_with("no anchors and no formats (") && note.contains("README.md: "),
                "{note}"
            );
            assert!(note.ends_with(&format!("{why})")), "{note}");
            let e = beside(&dir, true).unwrap_err();
            assert!(e.contains("README.md: ") && e.ends_with(why), "{e}");
        };
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/dev/zero", &readme).unwrap();
            refused("not a regular file");
            std::fs::remove_file(&readme).unwrap();
            let made = std::process::Command::new("mkfifo").arg(&readme).status();
            if made.is_ok_and(|s| s.success()) {
                refused("not a regular file");
                std::fs::remove_file(&readme).unwrap();
            }
        }
        std::fs::create_dir(&readme).unwrap();
        refused("not a regular file");
        std::fs::remove_dir(&readme).unwrap();

        // At the limit it is read; one byte more is refused unread.
        let mut text = SAMPLE.to_string();
        text.push_str(&" ".repeat(MAX_README_BYTES as usize - SAMPLE.len()));
        std::fs::write(&readme, &text).unwrap();
        let (used, note) = beside(&dir, true).unwrap();
        assert_eq!((used.tables.len(), note), (2, None));
        assert_eq!(used.format_of("a.gz"), Some(Format::Lines));
        assert_eq!(used.format_of("a"), None);
        text.push(' ');
        std::fs::write(&readme, &text).unwrap();
        refused("larger than 1048576 bytes (1 MiB)");
        std::fs::write(&readme, b"\xff\xfe").unwrap();
        refused("not UTF-8 text: invalid utf-8 sequence of 1 bytes from index 0");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The README shipped beside the traces: every trace file and "mixed" has a
    /// table of the seven anchors at the eight capacities (a spot value checked
    /// per table against the README's text).
    #[test]
    fn the_traces_readme_has_a_full_table_for_every_trace() {
        let dir = crate::trace::default_dir();
        let readme = std::fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|e| panic!("{}: {e} (set HITRATIO_TRACES)", dir.display()));
        let tables = parse(&readme).unwrap();
        let mut expected: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".gz").map(str::to_string)
            })
            .chain(["mixed".to_string()])
            .collect();
        expected.sort();
        let mut found: Vec<String> = tables.iter().map(|t| t.trace.clone()).collect();
        found.sort();
        assert_eq!(found, expected);
        let policies = [
            "otter",
            "theine",
            "ristretto",
            "s3-fifo",
            "clock-pro",
            "arc",
            "lru",
        ];
        for table in &tables {
            assert_eq!(
                table.capacities,
                (1..=8).map(|i| i * 250).collect::<Vec<_>>()
            );
            let names: Vec<&str> = table.rows.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, policies, "{}", table.trace);
        }
        let oltp = tables.iter().find(|t| t.trace == "oltp").unwrap();
        assert_eq!(oltp.value("otter", 250), Some(23.57));
        assert_eq!(oltp.value("s3-fifo", 2000), Some(46.94));
    }
}
