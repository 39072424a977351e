//! What a run found, per workload: the table (capacity columns; rows mapcache,
//! the exact LRU, the anchors, and mapcache's margin), the plain-words summary,
//! and `docs/hitratio.md`.

use std::fmt::Write;

/// A row of hit ratios, in percent, one per capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The policy.
    pub name: String,
    /// Percent of requests that hit, per capacity.
    pub values: Vec<f64>,
}

/// One workload's results.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadResult {
    /// The trace (`oltp`, ...) or synthetic workload (`zipf-0.9`, ...).
    pub name: String,
    /// What it is, in words.
    pub description: String,
    /// Requests in the workload.
    pub requests: usize,
    /// The capacities of the columns, in entries.
    pub capacities: Vec<usize>,
    /// mapcache, replayed through the library.
    pub mapcache: Row,
    /// The harness's exact LRU.
    pub lru: Row,
    /// The README's anchors (empty for the synthetic workloads, which have none).
    pub anchors: Vec<Row>,
    /// Why mapcache's row is not a valid measurement, if it is not (e.g. the
    /// cache ended holding more than its capacity): then there is no verdict.
    pub invalid: Vec<String>,
}

/// Where mapcache stands against the best anchor at one capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct Margin {
    /// The capacity.
    pub capacity: usize,
    /// The best anchor there and its hit ratio.
    pub best: (String, f64),
    /// mapcache's hit ratio there.
    pub mapcache: f64,
}

impl Margin {
    /// mapcache minus the best anchor, in points (negative: a shortfall),
    /// to the hundredth the anchors are given in.
    pub fn points(&self) -> f64 {
        hundredths(self.mapcache - self.best.1)
    }
}

/// `x` rounded to hundredths, with no negative zero (so that a tie prints as
/// +0.00 and is not a shortfall).
fn hundredths(x: f64) -> f64 {
    (x * 100.0).round() / 100.0 + 0.0
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

impl WorkloadResult {
    /// The margin at each capacity against the best anchor there (ties: the
    /// first in the README's order); empty without anchors.
    pub fn margins(&self) -> Vec<Margin> {
        if self.anchors.is_empty() {
            return Vec::new();
        }
        (0..self.capacities.len())
            .map(|i| {
                let best = self
                    .anchors
                    .iter()
                    .fold(None::<&Row>, |best, row| match best {
                        Some(b) if b.values[i] >= row.values[i] => Some(b),
                        _ => Some(row),
                    })
                    .expect("anchors is not empty");
                Margin {
                    capacity: self.capacities[i],
                    best: (best.name.clone(), best.values[i]),
                    mapcache: self.mapcache.values[i],
                }
            })
            .collect()
    }

    /// The capacity with the smallest margin (the worst shortfall, when negative).
    pub fn worst(&self) -> Option<Margin> {
        self.margins()
            .into_iter()
            .min_by(|a, b| a.points().total_cmp(&b.points()))
    }

    fn anchor(&self, name: &str) -> Option<&Row> {
        self.anchors.iter().find(|row| row.name == name)
    }

    /// The rows of the table: mapcache, the exact LRU, the anchors, and the
    /// margin row (against the best anchor, or against the exact LRU when there
    /// are no anchors).
    pub fn rows(&self) -> Vec<(String, Vec<String>)> {
        let cells = |values: &[f64]| values.iter().map(|v| format!("{v:.2}")).collect();
        let mut rows = vec![
            ("mapcache".to_string(), cells(&self.mapcache.values)),
            ("exact LRU (harness)".to_string(), cells(&self.lru.values)),
        ];
        rows.extend(
            self.anchors
                .iter()
                .map(|row| (row.name.clone(), cells(&row.values))),
        );
        if self.anchors.is_empty() {
            let diff = self.mapcache.values.iter().zip(&self.lru.values);
            rows.push((
                "mapcache - exact LRU".to_string(),
                diff.map(|(m, l)| format!("{:+.2}", hundredths(m - l)))
                    .collect(),
            ));
        } else {
            rows.push((
                "mapcache - best anchor".to_string(),
                self.margins()
                    .iter()
                    .map(|m| format!("{:+.2}", m.points()))
                    .collect(),
            ));
        }
        rows
    }

    /// The findings in plain words, one per line.
    pub fn summary(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .invalid
            .iter()
            .map(|w| format!("INVALID: {w}"))
            .collect();
        if let Some(check) = self.lru_check() {
            lines.push(check);
        }
        if !self.invalid.is_empty() {
            lines.push("No verdict on this workload.".to_string());
            return lines;
        }
        let average = mean(&self.mapcache.values);
        if let Some(worst) = self.worst() {
            let shortfall = -worst.points();
            lines.push(if shortfall > 0.0 {
                format!(
                    "Worst shortfall against the best anchor: {shortfall:.2} points at {} entries \
                     (mapcache {:.2}%, best {} {:.2}%).",
                    worst.capacity, worst.mapcache, worst.best.0, worst.best.1
                )
            } else {
                format!(
                    "No shortfall: mapcache is at or above the best anchor at every capacity \
                     (smallest margin {:+.2} points, at {} entries, against {}).",
                    worst.points(),
                    worst.capacity,
                    worst.best.0
                )
            });
            let misses = self
                .margins()
                .iter()
                .filter(|m| m.points() < -1.0)
                .map(|m| m.capacity.to_string())
                .collect::<Vec<_>>();
            lines.push(if misses.is_empty() {
                "Within 1 point of the best anchor at every capacity: yes.".to_string()
            } else {
                format!(
                    "Within 1 point of the best anchor at every capacity: no (more than 1 point \
                     short at {}).",
                    misses.join(", ")
                )
            });
            if let Some(otter) = self.anchor("otter") {
                let otter_average = mean(&otter.values);
                lines.push(format!(
                    "Average over the capacities: mapcache {average:.2}% vs otter {otter_average:.2}% \
                     ({:+.2} points: {}).",
                    hundredths(average - otter_average),
                    if average > otter_average { "above otter" } else { "not above otter" }
                ));
            }
        } else {
            let lru_average = mean(&self.lru.values);
            lines.push(format!(
                "Average over the capacities: mapcache {average:.2}% vs exact LRU {lru_average:.2}% \
                 ({:+.2} points; no published anchors exist for this workload).",
                hundredths(average - lru_average)
            ));
        }
        lines
    }

    /// The harness's own check, where the README has an lru row: how far its
    /// exact LRU is from the README's (the same algorithm, so 0 unless a trace
    /// is parsed differently).
    fn lru_check(&self) -> Option<String> {
        let lru = self.anchor("lru")?;
        let gap = self
            .lru
            .values
            .iter()
            .zip(&lru.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        Some(format!(
            "Check of the harness: its exact LRU and the README's lru differ by at most {gap:.2} points."
        ))
    }

    /// The table as fixed-width text, for the terminal.
    pub fn text_table(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{:<24}", "capacity");
        for c in &self.capacities {
            let _ = write!(out, "{c:>9}");
        }
        out.push('\n');
        for (name, cells) in self.rows() {
            let _ = write!(out, "{name:<24}");
            for cell in cells {
                let _ = write!(out, "{cell:>9}");
            }
            out.push('\n');
        }
        out
    }

    /// The table as markdown.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| policy |");
        for c in &self.capacities {
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.capacities.len()));
        out.push('\n');
        for (name, cells) in self.rows() {
            let name = if name == "mapcache" {
                "**mapcache**".to_string()
            } else {
                name
            };
            let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
        }
        out
    }
}

/// The overall verdict over all workloads with anchors: the worst shortfall,
/// and the traces where mapcache's average is not above otter's.
pub fn overall(results: &[WorkloadResult]) -> Vec<String> {
    let invalid: Vec<&str> = results
        .iter()
        .filter(|r| !r.invalid.is_empty())
        .map(|r| r.name.as_str())
        .collect();
    if !invalid.is_empty() {
        return vec![format!(
            "INVALID RUN: mapcache's numbers are not valid measurements on {} (see INVALID under \
             each); no verdict.",
            invalid.join(", ")
        )];
    }
    let mut lines = Vec::new();
    let worst = results
        .iter()
        .filter_map(|r| r.worst().map(|m| (r.name.as_str(), m)))
        .min_by(|a, b| a.1.points().total_cmp(&b.1.points()));
    if let Some((trace, m)) = worst {
        lines.push(if m.points() < 0.0 {
            format!(
                "Worst shortfall against the best anchor over all traces: {:.2} points, on {trace} \
                 at {} entries (mapcache {:.2}%, best {} {:.2}%).",
                -m.points(),
                m.capacity,
                m.mapcache,
                m.best.0,
                m.best.1
            )
        } else {
            format!(
                "No shortfall against the best anchor on any trace (smallest margin {:+.2} points, \
                 on {trace} at {} entries, against {}).",
                m.points(),
                m.capacity,
                m.best.0
            )
        });
        let far: Vec<String> = results
            .iter()
            .flat_map(|r| {
                r.margins()
                    .into_iter()
                    .filter(|m| m.points() < -1.0)
                    .map(move |m| format!("{} at {}", r.name, m.capacity))
            })
            .collect();
        lines.push(if far.is_empty() {
            "Within 1 point of the best anchor at every capacity of every trace: yes.".to_string()
        } else {
            format!(
                "Within 1 point of the best anchor at every capacity of every trace: no ({}).",
                far.join(", ")
            )
        });
    }
    if results.iter().all(|r| r.anchors.is_empty()) {
        lines.push(
            "No workload has published anchors: the exact LRU above is the only comparison."
                .to_string(),
        );
        return lines;
    }
    if results.iter().all(|r| r.anchor("otter").is_none()) {
        return lines;
    }
    let below_otter: Vec<&str> = results
        .iter()
        .filter(|r| {
            r.anchor("otter")
                .is_some_and(|otter| mean(&r.mapcache.values) <= mean(&otter.values))
        })
        .map(|r| r.name.as_str())
        .collect();
    lines.push(if below_otter.is_empty() {
        "Above otter on average over every trace: yes.".to_string()
    } else {
        format!(
            "Above otter on average over every trace: no (not above on {}).",
            below_otter.join(", ")
        )
    });
    lines
}

/// `docs/hitratio.md`: the verdict, then per workload its description, table,
/// summary and plot (`hitratio/<name>.svg`, relative to the document).
pub fn markdown(results: &[WorkloadResult], command: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Hit ratio on real traces, through the real cache\n\n\
         <!-- Generated by `{command}`: do not edit by hand; rerun it. -->\n\n\
         Generated by `{command}` (the harness is `tools/hitratio`). Each trace is replayed \
         through `mapcache::Map` itself: for each capacity a fresh cache with the library's \
         default configuration for that capacity (`Config {{ max_entries: capacity, seed: \
         Some(fixed), ..Default::default() }}`), starting empty; per request a `get`, and on a \
         miss an `insert` of an 8-byte value. Hit ratio = hits / requests over the whole trace, \
         in percent. Beside it: an exact LRU computed by the harness, and the anchors that \
         `../shared/traces/README.md` records for the same trace and capacity (otter v2, theine, \
         ristretto, S3-FIFO, CLOCK-Pro, ARC and LRU, measured with otter's simulator), parsed \
         from that README at run time. The synthetic Zipf workloads have no published anchors; \
         the exact LRU is their comparison.\n\n\
         The goal (issue 11): at every capacity of every trace within 1 point of the best anchor \
         at that capacity, and above otter v2 on average over each trace.\n"
    );
    let _ = writeln!(out, "## Verdict\n");
    for line in overall(results) {
        let _ = writeln!(out, "- {line}");
    }
    out.push('\n');
    for r in results {
        let _ = writeln!(
            out,
            "## {}\n\n{} ({} requests)\n",
            r.name, r.description, r.requests
        );
        out.push_str(&r.markdown_table());
        out.push('\n');
        for line in r.summary() {
            let _ = writeln!(out, "- {line}");
        }
        let _ = writeln!(
            out,
            "\n![{0}: hit ratio against capacity](hitratio/{0}.svg)\n",
            r.name
        );
    }
    let _ = writeln!(
        out,
        "## How the traces are read\n\n\
         Each trace is read in the format `--format` names (`make hitratio-trace FORMAT=...`), \
         else in the one the README beside it gives it in its file table (only if there is a \
         README and it lists that file by name: a file's name alone chooses nothing), else in \
         the one sniffed from its first 64 KiB: binary (`u64be`) if at least a quarter of \
         those bytes are not text, so that a text trace with a stray byte is read as text and \
         refused at that byte's line; else `lines` or `oltp` by the fields of the first \
         non-blank line. The description of each trace \
         above says which format was used and why. A gzip file (by its magic bytes, or \
         `--compression`) is read member by member; zero bytes after the last member are \
         ignored and said, anything else there is refused, and every error of the gzip layer \
         names it, the member, and the compressed and decompressed bytes reached. A trace is \
         refused past the request limit (`--max-requests`, 2^26 by default), past 64 \
         decompressed bytes per request allowed, or past one line without a request (blank, or \
         an OLTP count of 0) per request allowed, so that a small gzip bomb costs seconds. \
         `hitratio --help` has the details.\n"
    );
    let _ = writeln!(
        out,
        "## How the plots are drawn\n\n\
         The harness draws them with the `plotters` crate's SVG backend: a maintained, pure-Rust \
         plotting library, so the plots come from the same program and run as the numbers, with \
         no Python or gnuplot step; SVG is text, diffs in review and renders on any forge. It \
         lives in the harness's own crate, so `make demo` and `make test` never compile it."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, values: &[f64]) -> Row {
        Row {
            name: name.into(),
            values: values.to_vec(),
        }
    }

    fn result(anchors: Vec<Row>) -> WorkloadResult {
        WorkloadResult {
            name: "t".into(),
            description: "a test".into(),
            requests: 10,
            capacities: vec![250, 500],
            mapcache: row("mapcache", &[20.0, 40.0]),
            lru: row("lru", &[10.0, 30.0]),
            anchors,
            invalid: vec![],
        }
    }

    #[test]
    fn the_margin_is_against_the_best_anchor_of_each_capacity() {
        let r = result(vec![
            row("otter", &[22.5, 30.0]),
            row("s3-fifo", &[19.0, 39.5]),
        ]);
        let margins = r.margins();
        assert_eq!(margins[0].best, ("otter".to_string(), 22.5));
        assert_eq!(margins[1].best, ("s3-fifo".to_string(), 39.5));
        assert_eq!(r.worst().unwrap().capacity, 250);
        let (name, cells) = r.rows().pop().unwrap();
        assert_eq!(name, "mapcache - best anchor");
        assert_eq!(cells, ["-2.50", "+0.50"]);
        let summary = r.summary().join("\n");
        assert!(summary.contains("Worst shortfall against the best anchor: 2.50 points at 250"));
        assert!(summary.contains("no (more than 1 point short at 250)"));
        assert!(summary.contains("mapcache 30.00% vs otter 26.25%"));
        let verdict = overall(std::slice::from_ref(&r)).join("\n");
        assert!(
            verdict.contains("2.50 points, on t at 250 entries"),
            "{verdict}"
        );
        assert!(verdict.contains("every trace: no (t at 250)"), "{verdict}");
        assert!(
            verdict.contains("Above otter on average over every trace: yes."),
            "{verdict}"
        );
    }

    #[test]
    fn an_invalid_measurement_gets_no_verdict() {
        let mut r = result(vec![row("otter", &[1.0, 2.0]), row("lru", &[10.0, 31.0])]);
        r.invalid.push("it overflowed".into());
        let summary = r.summary();
        assert_eq!(
            summary,
            [
                "INVALID: it overflowed",
                "Check of the harness: its exact LRU and the README's lru differ by at most 1.00 points.",
                "No verdict on this workload.",
            ]
        );
        let verdict = overall(&[r]);
        assert_eq!(verdict.len(), 1);
        assert!(verdict[0].starts_with("INVALID RUN"), "{verdict:?}");
    }

    #[test]
    fn a_tie_to_the_hundredth_is_no_shortfall() {
        let mut r = result(vec![row("otter", &[57.96, 40.0])]);
        r.mapcache.values = vec![57.96 - 1e-9, 40.004];
        assert_eq!(r.worst().unwrap().points(), 0.0);
        assert_eq!(r.rows().pop().unwrap().1, ["+0.00", "+0.00"]);
        assert!(
            r.summary()[0].starts_with("No shortfall"),
            "{:?}",
            r.summary()
        );
    }

    #[test]
    fn without_anchors_the_comparison_is_the_exact_lru() {
        let r = result(vec![]);
        assert!(r.worst().is_none());
        let (name, cells) = r.rows().pop().unwrap();
        assert_eq!(name, "mapcache - exact LRU");
        assert_eq!(cells, ["+10.00", "+10.00"]);
        // And the verdict claims nothing about otter.
        assert_eq!(
            overall(&[r]),
            ["No workload has published anchors: the exact LRU above is the only comparison."]
        );
        // Anchors without otter: the shortfall lines, and nothing about otter.
        let verdict = overall(&[result(vec![row("s3-fifo", &[19.0, 39.5])])]).join("\n");
        assert!(verdict.contains("against the best anchor"), "{verdict}");
        assert!(
            !verdict.contains("otter") && !verdict.contains("No workload"),
            "{verdict}"
        );
    }
}
