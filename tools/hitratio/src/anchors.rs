//! The anchors: hit ratios of production caches on the same traces, as the
//! traces README records them (one `### Title (file.gz)` section per trace, each
//! with a markdown table whose header row is `CACHE` and the capacities, one row
//! per cache, values in percent). Parsed at run time, so that the harness and
//! the README cannot disagree.

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

/// The cells of a markdown table row, trimmed.
fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
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
        while let Some((n, l)) = lines.next_if(|(_, l)| l.trim().starts_with('|')) {
            let row = cells(l);
            if row
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue; // The separator row.
            }
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
                    v.parse::<f64>()
                        .map_err(|e| format!("line {}: {v:?}: {e}", n + 1))
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

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Traces

| file | format |
|---|---|
| a.gz | text |

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
