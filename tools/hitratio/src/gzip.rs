//! The gzip layer of a trace file: every member of a file made by `cat a.gz
//! b.gz` is read, and every failure of this layer says that it is the gzip
//! layer and where it happened, so that a damaged file is never blamed on the
//! trace format or reported as a bare "unexpected end of file".
//!
//! Members are read one by one (flate2's single-member decoder, which leaves
//! the bytes after a member unread), so that what follows the last member can
//! be judged: nothing (the normal end), zero bytes only (padding, as tape and
//! block devices write it; accepted, as GNU gzip accepts it, and counted so
//! that the output can say so), or anything else (refused as "bytes that are
//! not gzip": the data before them is complete, but a file with junk at its end
//! is not a trace as written).

use std::fmt;
use std::io::{self, BufRead, Read};
use std::str::FromStr;

use flate2::bufread::GzDecoder;

/// The two bytes every gzip member starts with.
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether a trace file is gzip-compressed (`--compression`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// Gzip if the file starts with [`MAGIC`], else plain.
    #[default]
    Auto,
    /// Never gzip: the bytes are the trace (a u64be trace whose first key
    /// starts with `1f 8b` is one).
    None,
    /// Always gzip: a file that does not start with [`MAGIC`] is an error.
    Gzip,
}

impl Compression {
    /// The names `--compression` accepts.
    pub const NAMES: &'static str = "auto, none, gzip";
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(name: &str) -> Result<Compression, String> {
        match name {
            "auto" => Ok(Compression::Auto),
            "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            _ => Err(format!(
                "unknown compression {name:?} (one of: {})",
                Compression::NAMES
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::Auto => "auto",
            Compression::None => "none",
            Compression::Gzip => "gzip",
        })
    }
}

/// A `BufRead` that counts the bytes consumed from it: the offset in the
/// compressed file that the gzip layer's messages give.
#[derive(Debug)]
struct Counted<R> {
    inner: R,
    consumed: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// The decompressed stream of a gzip file: every member, then the end.
#[derive(Debug)]
pub struct Gunzip<R: BufRead> {
    /// The member being read; `None` once the stream has ended (or failed).
    decoder: Option<GzDecoder<Counted<R>>>,
    /// The member being read, from 1.
    member: u64,
    /// Decompressed bytes produced so far.
    produced: u64,
    /// The compressed file's size, if known, for the messages.
    size: Option<u64>,
    /// Zero bytes after the last member, ignored.
    padding: u64,
}

impl<R: BufRead> Gunzip<R> {
    /// The decompressed stream of `reader`, a gzip file of `size` bytes if
    /// known.
    pub fn new(reader: R, size: Option<u64>) -> Gunzip<R> {
        let counted = Counted {
            inner: reader,
            consumed: 0,
        };
        Gunzip {
            decoder: Some(GzDecoder::new(counted)),
            member: 1,
            produced: 0,
            size,
            padding: 0,
        }
    }

    /// The zero bytes found (and ignored) after the last member.
    pub fn padding(&self) -> u64 {
        self.padding
    }

    /// `e`, said to be the gzip layer's, with where it happened: the member,
    /// the compressed byte reached and the decompressed bytes produced.
    fn located(&self, e: &io::Error, consumed: u64) -> io::Error {
        let of = self
            .size
            .map_or(String::new(), |size| format!(" of {size}"));
        let mut message = format!(
            "gzip layer: {e}, in member {}, at compressed byte {consumed}{of} \
             (decompressed byte {})",
            self.member, self.produced
        );
        if self.member == 1 && self.produced == 0 {
            message.push_str(
                "; if the file is not gzip at all (a u64be key may start with the bytes \
                 1f 8b), name --compression none",
            );
        }
        io::Error::new(e.kind(), message)
    }

    /// After a member: the next one, or the end (nothing, or zero padding), or
    /// the error that names the bytes that are neither.
    fn next_member(&mut self, decoder: GzDecoder<Counted<R>>) -> io::Result<()> {
        let mut reader = decoder.into_inner();
        let ends_at = reader.consumed;
        // Another member if it starts with the magic bytes (or with the first
        // of them, when only that one is buffered: the decoder then judges).
        let next = match reader.fill_buf() {
            Ok(buf) => buf.first().map(|&b| (b, buf.get(1).copied())),
            Err(e) => return Err(self.located(&e, ends_at)),
        };
        match next {
            None => Ok(()),
            Some((first, second))
                if first == MAGIC[0] && second.map_or(true, |b| b == MAGIC[1]) =>
            {
                self.member += 1;
                self.decoder = Some(GzDecoder::new(reader));
                Ok(())
            }
            Some(_) => {
                // Read what is left (no more than the file holds) to tell
                // padding from junk, and to say how much there is.
                let mut zeros = 0u64;
                let mut other = 0u64;
                loop {
                    let buf = match reader.fill_buf() {
                        Ok(buf) => buf,
                        Err(e) => return Err(self.located(&e, reader.consumed)),
                    };
                    if buf.is_empty() {
                        break;
                    }
                    let n = buf.len();
                    let z = buf.iter().filter(|&&b| b == 0).count();
                    zeros += z as u64;
                    other += (n - z) as u64;
                    reader.consume(n);
                }
                if other == 0 {
                    self.padding = zeros;
                    return Ok(());
                }
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "gzip layer: after the last gzip member (member {}, which ends at \
                         compressed byte {ends_at}, decompressed byte {}): {} bytes that are \
                         not gzip",
                        self.member,
                        self.produced,
                        zeros + other
                    ),
                ))
            }
        }
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            match decoder.read(buf) {
                Ok(0) => {
                    let decoder = self.decoder.take().expect("read above");
                    self.next_member(decoder)?;
                }
                Ok(n) => {
                    self.produced += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let consumed = decoder.get_ref().consumed;
                    self.decoder = None;
                    return Err(self.located(&e, consumed));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// All of `bytes` through the gzip layer, or its error's message.
    fn gunzip(bytes: &[u8]) -> Result<(Vec<u8>, u64), String> {
        let mut g = Gunzip::new(bytes, Some(bytes.len() as u64));
        let mut out = Vec::new();
        g.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok((out, g.padding()))
    }

    #[test]
    fn every_member_is_read() {
        let mut bytes = gz(b"1\n2\n");
        bytes.extend(gz(b""));
        bytes.extend(gz(b"3\n"));
        assert_eq!(gunzip(&bytes).unwrap(), (b"1\n2\n3\n".to_vec(), 0));
        assert_eq!(gunzip(&gz(b"")).unwrap(), (Vec::new(), 0));
    }

    /// F2: junk after a complete member is named as such (it was "unexpected
    /// end of file", or "invalid gzip header" for zeros), with where the last
    /// member ends; zero padding is accepted and counted.
    #[test]
    fn what_follows_the_last_member_is_judged() {
        let member = gz(b"1\n2\n1\n2\n");
        let mut junk = member.clone();
        junk.extend_from_slice(b"garbage");
        assert_eq!(
            gunzip(&junk).unwrap_err(),
            format!(
                "gzip layer: after the last gzip member (member 1, which ends at compressed \
                 byte {}, decompressed byte 8): 7 bytes that are not gzip",
                member.len()
            )
        );
        let mut padded = member.clone();
        padded.extend_from_slice(&[0; 16]);
        assert_eq!(gunzip(&padded).unwrap(), (b"1\n2\n1\n2\n".to_vec(), 16));
        // Zeros, then junk: junk (all of it counted).
        padded.push(b'x');
        let e = gunzip(&padded).unwrap_err();
        assert!(e.ends_with("17 bytes that are not gzip"), "{e}");
    }

    /// F2: a cut, a bad CRC or a bad header names the gzip layer, the member
    /// and the compressed and decompressed bytes reached.
    #[test]
    fn errors_say_they_are_the_gzip_layer_and_where() {
        let member = gz(b"1\n2\n1\n2\n");
        let cut = &member[..member.len() - 3];
        let e = gunzip(cut).unwrap_err();
        assert!(
            e.starts_with("gzip layer: ")
                && e.contains("in member 1, at compressed byte")
                && e.contains(&format!("of {}", cut.len()))
                && e.contains("(decompressed byte 8)"),
            "{e}"
        );
        let mut bad_crc = member.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 0xff;
        let e = gunzip(&bad_crc).unwrap_err();
        assert!(
            e.starts_with("gzip layer: ") && e.contains("member 1"),
            "{e}"
        );
        let e = gunzip(&MAGIC).unwrap_err();
        assert!(
            e.starts_with("gzip layer: ") && e.contains("--compression none"),
            "{e}"
        );
        // A bad second member: member 2, past the first one's bytes.
        let mut two = member.clone();
        two.extend_from_slice(&[0x1f, 0x8b, 0x99]);
        let e = gunzip(&two).unwrap_err();
        assert!(
            e.contains("in member 2") && !e.contains("--compression"),
            "{e}"
        );
    }

    #[test]
    fn compression_names() {
        assert_eq!("auto".parse(), Ok(Compression::Auto));
        assert_eq!("none".parse(), Ok(Compression::None));
        assert_eq!("gzip".parse(), Ok(Compression::Gzip));
        assert!("zstd".parse::<Compression>().unwrap_err().contains("none"));
        assert_eq!(Compression::None.to_string(), "none");
    }
}
