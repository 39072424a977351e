//! The format of a trace that neither `--format` nor a README names, told from
//! its first [`SNIFF_BYTES`] (decompressed) bytes.
//!
//! Binary or text is decided by how much of the head is not text, never by
//! one byte: a text trace with a stray byte (a Latin-1 letter, a NUL) must be
//! read as text, so that the reader refuses that byte by its line number; read
//! as binary keys it would give garbage hit ratios, or a refusal that names no
//! line and blames a format the file is not in. The rule: the head is binary
//! when at least a quarter of its bytes are not text (text: printable ASCII,
//! tab, LF, CR and well-formed UTF-8 beyond ASCII). Binary keys are far above
//! that: a key below 2^56 has a NUL in each 8 bytes and a small one has seven,
//! and a random or hashed key has about 62% bytes that are not text. A text
//! trace is far below it unless it is mostly damage, and then reading it as
//! text refuses it at its first bad line anyway. (Binary keys whose bytes all
//! happen to be printable ASCII read as text: `--format u64be` says otherwise.)
//!
//! Text is then told by its first non-blank line's fields: one is `lines`,
//! four is `oltp`. Anything else is an error that asks for `--format`.

use crate::trace::Format;

/// How many bytes [`sniff`] looks at.
pub const SNIFF_BYTES: u64 = 64 * 1024;

/// `head` without a character that its end cuts short (a text head cut by
/// the sniff's length is still text).
fn without_cut_character(head: &[u8]) -> &[u8] {
    for k in 1..=head.len().min(3) {
        let start = head.len() - k;
        if let Err(e) = std::str::from_utf8(&head[start..]) {
            if e.valid_up_to() == 0 && e.error_len().is_none() {
                return &head[..start];
            }
        }
    }
    head
}

/// How many bytes of `head` are not text: control bytes other than tab, LF
/// and CR, DEL, and bytes that are not well-formed UTF-8.
fn not_text(head: &[u8]) -> usize {
    head.utf8_chunks()
        .map(|chunk| {
            let controls = chunk
                .valid()
                .bytes()
                .filter(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
                .count();
            controls + chunk.invalid().len()
        })
        .sum()
}

/// Whether `head` is UTF-16 text of ASCII characters: a byte-order mark, then
/// a NUL as every other byte.
fn utf16(head: &[u8]) -> bool {
    let high = match head {
        [0xff, 0xfe, ..] => 1, // little-endian: the high byte second
        [0xfe, 0xff, ..] => 0,
        _ => return false,
    };
    head.len() >= 4
        && head[2..]
            .chunks(2)
            .all(|pair| pair.len() == 2 && pair[high] == 0 && pair[1 - high] != 0)
}

/// The format of a trace from its first bytes, and why, for the output (e.g.
/// `sniffed: one field on its first line`).
pub fn sniff(head: &[u8]) -> Result<(Format, String), String> {
    if head.is_empty() {
        return Err("empty: no requests".into());
    }
    if utf16(head) {
        return Err(
            "UTF-16 text (a byte-order mark, then a NUL as every other byte): \
                    the text formats are UTF-8; convert it (iconv -f UTF-16 -t UTF-8), or \
                    name its format with --format"
                .into(),
        );
    }
    let whole = without_cut_character(head);
    let bad = not_text(whole);
    if bad * 4 >= whole.len().max(1) {
        return Ok((
            Format::U64BigEndian,
            format!(
                "sniffed: {bad} of its first {} bytes are not text",
                whole.len()
            ),
        ));
    }
    let text = String::from_utf8_lossy(whole);
    let fields = |line: &str| {
        line.split([' ', '\t'])
            .filter(|field| !field.is_empty())
            .count()
    };
    // Only LF ends a line (the reader refuses a CR inside one, so that old
    // Mac line ends are one long line here too, and refused there).
    let first = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .find(|line| fields(line) > 0);
    match first.map(fields) {
        Some(1) => Ok((Format::Lines, "sniffed: one field on its first line".into())),
        Some(4) => Ok((
            Format::Oltp,
            "sniffed: four fields on its first line".into(),
        )),
        Some(n) => Err(format!(
            "cannot tell its format: its first line has {n} fields (lines has 1, oltp 4); \
             name it with --format ({})",
            Format::NAMES
        )),
        None => Err(format!(
            "only blank lines in the {} bytes sniffed; name its format with --format",
            head.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(head: &[u8]) -> Format {
        sniff(head).unwrap().0
    }

    #[test]
    fn sniff_tells_the_three_formats_apart_and_asks_when_it_cannot() {
        assert_eq!(format(&7u64.to_be_bytes()), Format::U64BigEndian);
        assert_eq!(format(&[0xff; 16]), Format::U64BigEndian);
        assert_eq!(format(b"\n\n12\n13\n"), Format::Lines);
        assert_eq!(format(b"12 4 0 0\n"), Format::Oltp);
        assert_eq!(format(b"12\t4\t0\t0\r\n"), Format::Oltp);
        // Text cut inside a character by the sniff's length is still text.
        assert_eq!(format("5\n\u{e9}".as_bytes()[..3].as_ref()), Format::Lines);
        let e = sniff(b"1 2 3\n").unwrap_err();
        assert!(e.contains("3 fields") && e.contains("--format"), "{e}");
        assert!(sniff(b"").unwrap_err().contains("no requests"));
        assert!(sniff(b"\n \n").unwrap_err().contains("--format"));
        let (_, why) = sniff(&[0u8; 16]).unwrap();
        assert_eq!(why, "sniffed: 16 of its first 16 bytes are not text");
    }

    /// F1: one stray byte (not UTF-8, or a NUL) in a text head leaves it text,
    /// wherever it is and whatever the head's length; it took the whole file
    /// for binary keys.
    #[test]
    fn a_stray_byte_leaves_text_text() {
        let mut text: Vec<u8> = (0..20_000u32)
            .flat_map(|k| format!("{}\n", k % 100).into_bytes())
            .collect();
        text.extend_from_slice(b"\xe9\n");
        while text.len() % 8 != 0 {
            text.push(b'\n');
        }
        assert_eq!(format(&text), Format::Lines);
        assert_eq!(format(b"1\n2\n\0\n"), Format::Lines);
        assert_eq!(format(b"1\n2\n\xe9\n"), Format::Lines);
        assert_eq!(format(b"12\n13\n\xe912\n14\n12\n"), Format::Lines);
        // Binary keys stay binary: small ones, random-looking ones, and keys
        // with a byte or two that look like text.
        let keys = |f: &dyn Fn(u64) -> u64| -> Vec<u8> {
            (0..1000).flat_map(|k| f(k).to_be_bytes()).collect()
        };
        assert_eq!(format(&keys(&|k| k)), Format::U64BigEndian);
        assert_eq!(format(&keys(&|k| k << 40 | 0x0a31)), Format::U64BigEndian);
        let random = keys(&|k| (k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_eq!(format(&random), Format::U64BigEndian);
    }

    /// F1: UTF-16 text is named as such, not read as binary keys.
    #[test]
    fn utf16_text_is_named() {
        let e = sniff(b"\xff\xfe1\0\n\x002\0\n\0").unwrap_err();
        assert!(
            e.starts_with("UTF-16 text") && e.contains("--format"),
            "{e}"
        );
        let e = sniff(b"\xfe\xff\x001\0\n").unwrap_err();
        assert!(e.starts_with("UTF-16 text"), "{e}");
        // A binary key that starts with the same bytes is binary.
        assert_eq!(
            format(&0xfffe_0102_0304_0506u64.to_be_bytes()),
            Format::U64BigEndian
        );
    }

    /// L3: CR-only line ends make one line, of one field: `lines`, whose
    /// reader refuses the CR (they were four fields, read as OLTP).
    #[test]
    fn cr_only_line_ends_are_not_fields() {
        assert_eq!(format(b"1\r2\r3\r4\r"), Format::Lines);
    }
}
