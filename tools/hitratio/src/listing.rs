//! The traces README's file table: the files it lists and the format of each,
//! parsed at run time (like the anchors), so that a trace is read in the
//! README's format only when a README is there and lists that very file. A
//! file that no README lists is sniffed, whatever its name.
//!
//! The table is the one whose header row has a `file` and a `format` column.
//! A format cell is a format's name (`lines`, `oltp`, `u64be` and their
//! aliases) or the README's own description of it: `start count` (oltp),
//! `one integer key per line` (lines), `8-byte big-endian` (u64be). A cell that
//! is none of these is an error, so that a README the harness cannot follow is
//! never half-followed.

use crate::markdown::{self, cells};
use crate::trace::Format;

/// The format a README's format cell describes.
fn format_of_cell(cell: &str) -> Option<Format> {
    let plain = cell.trim_matches('`');
    if let Ok(format) = plain.parse() {
        return Some(format);
    }
    let cell = cell.to_lowercase();
    if cell.contains("start count") {
        Some(Format::Oltp)
    } else if cell.contains("8-byte big-endian") {
        Some(Format::U64BigEndian)
    } else if cell.contains("one integer key per line") {
        Some(Format::Lines)
    } else {
        None
    }
}

/// Every file of the README text `readme`'s file table and its format, in the
/// table's order (none if it has no such table).
pub fn parse(readme: &str) -> Result<Vec<(String, Format)>, String> {
    let mut lines = readme.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        if !line.trim().starts_with('|') {
            continue;
        }
        let header = cells(line);
        let column = |name: &str| header.iter().position(|c| c.eq_ignore_ascii_case(name));
        let (Some(file), Some(format)) = (column("file"), column("format")) else {
            continue;
        };
        let mut listed = Vec::new();
        for (n, row) in markdown::body_rows(&mut lines) {
            let (Some(name), Some(cell)) = (row.get(file), row.get(format)) else {
                return Err(format!("line {}: no file or format cell", n + 1));
            };
            let name = name.trim_matches('`').to_string();
            let format = format_of_cell(cell).ok_or_else(|| {
                format!(
                    "line {}: {name}: the format {cell:?} is none the harness reads ({})",
                    n + 1,
                    Format::NAMES
                )
            })?;
            listed.push((name, format));
        }
        return Ok(listed);
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F5: the formats come from the README's table (the project's wording,
    /// or a format's name), not from a file's name.
    #[test]
    fn the_file_table_gives_each_file_its_format() {
        let readme = "\
# Traces

| file | origin | format | requests |
|---|---|---|---|
| oltp.gz | ARC | text lines `start count x y`: the line stands for ... | 914,145 lines |
| gli.gz | LIRS | text, one integer key per line | 6,016 |
| trace_vaultservice.gz | Corda | binary: a stream of 8-byte big-endian unsigned integers | 135,702 |
| `mine` | me | `lirs` | 3 |

### OLTP (oltp.gz)

| CACHE | 250 |
|---|---|
| lru | 1.00 |
";
        assert_eq!(
            parse(readme).unwrap(),
            [
                ("oltp.gz".to_string(), Format::Oltp),
                ("gli.gz".to_string(), Format::Lines),
                ("trace_vaultservice.gz".to_string(), Format::U64BigEndian),
                ("mine".to_string(), Format::Lines),
            ]
        );
        assert_eq!(parse("# No table\n| CACHE | 1 |\n").unwrap(), []);
        let e = parse("| file | format |\n|---|---|\n| x.gz | csv |\n").unwrap_err();
        assert!(e.starts_with("line 3: x.gz: the format \"csv\""), "{e}");
    }

    /// The README shipped beside the traces lists each of its trace files in a
    /// format the harness reads (else that file would be sniffed).
    #[test]
    fn the_traces_readme_lists_every_trace_in_a_known_format() {
        let dir = crate::trace::default_dir();
        let readme = std::fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|e| panic!("{}: {e} (set HITRATIO_TRACES)", dir.display()));
        let listed = parse(&readme).unwrap();
        let mut names: Vec<&str> = listed.iter().map(|(name, _)| name.as_str()).collect();
        names.sort();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".gz"))
            .collect();
        files.sort();
        assert_eq!(names, files);
        let format = |name: &str| listed.iter().find(|(n, _)| n == name).map(|(_, f)| *f);
        assert_eq!(format("oltp.gz"), Some(Format::Oltp));
        assert_eq!(format("loop.gz"), Some(Format::Lines));
        assert_eq!(format("trace_vaultservice.gz"), Some(Format::U64BigEndian));
    }
}
