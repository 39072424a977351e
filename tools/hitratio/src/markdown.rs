//! The little of markdown the traces README is read for: a table's rows, as
//! trimmed cells, for the anchor tables (`anchors`) and the file table
//! (`listing`).

use std::iter::{Enumerate, Peekable};
use std::str::Lines;

/// A README's lines, numbered from 0, with one line of lookahead.
pub type ReadmeLines<'a> = Peekable<Enumerate<Lines<'a>>>;

/// The cells of a markdown table row, trimmed.
pub fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_start_matches('|')
        .trim_end_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// The body rows of the table whose header row was just read from `lines`:
/// each row's line number (from 0) and cells, the separator row left out.
/// Stops at the first line that is not a table row, leaving it in `lines`.
pub fn body_rows<'a>(lines: &mut ReadmeLines<'a>) -> Vec<(usize, Vec<&'a str>)> {
    let mut rows = Vec::new();
    while let Some((n, l)) = lines.next_if(|(_, l)| l.trim().starts_with('|')) {
        let row = cells(l);
        if row
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue; // The separator row.
        }
        rows.push((n, row));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_rows_skip_the_separator_and_stop_after_the_table() {
        let text = "| a | b |\n|---|:-:|\n| 1 | 2 |\n|3|4|\nafter\n| not | this |";
        let mut lines = text.lines().enumerate().peekable();
        assert_eq!(cells(lines.next().unwrap().1), ["a", "b"]);
        assert_eq!(
            body_rows(&mut lines),
            [(2, vec!["1", "2"]), (3, vec!["3", "4"])]
        );
        assert_eq!(lines.next(), Some((4, "after")));
    }
}
