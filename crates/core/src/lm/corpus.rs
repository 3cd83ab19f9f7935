//! A training text held once, as vocabulary indices in the narrowest integer type that fits
//! the vocabulary: one byte per character for up to 256 distinct characters (any text in one
//! script), two up to 65 536, four beyond. A text file is read in two streaming passes (the
//! vocabulary, then the indices) through a fixed 1 MiB buffer, so a 100 MB corpus costs
//! ≈ 100 MB of memory, not the file plus its string plus 4 bytes per character.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::vocab::Vocab;
use crate::error::{CoreError, Result};

/// Vocabulary indices of a text, `U8` when the vocabulary has at most 256 characters.
#[derive(Debug, Clone, PartialEq)]
pub enum Tokens {
    /// Vocabularies of up to 256 characters.
    U8(Vec<u8>),
    /// Up to 65 536 characters.
    U16(Vec<u16>),
    /// Larger vocabularies.
    U32(Vec<u32>),
}

impl Tokens {
    /// Empty storage sized for a vocabulary of `vocab_len` characters.
    pub fn for_vocab(vocab_len: usize, capacity: usize) -> Tokens {
        if vocab_len <= 1 << 8 {
            Tokens::U8(Vec::with_capacity(capacity))
        } else if vocab_len <= 1 << 16 {
            Tokens::U16(Vec::with_capacity(capacity))
        } else {
            Tokens::U32(Vec::with_capacity(capacity))
        }
    }

    /// The indices of `text` (every character must be in `vocab`; the error names the unknown
    /// ones, `what` names the argument).
    pub fn encode(vocab: &Vocab, text: &str, what: &str) -> Result<Tokens> {
        let mut out = Tokens::for_vocab(vocab.len(), text.chars().count());
        vocab.encode_each(text, what, |i| out.push(i))?;
        Ok(out)
    }

    /// The indices of the UTF-8 text file at `path`, read in one streaming pass; a character
    /// outside `vocab` is an error naming the file, its line and column.
    pub fn read_file(vocab: &Vocab, path: &Path) -> Result<Tokens> {
        let size = std::fs::metadata(path)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        // characters ≤ bytes: reserve the byte count, then give back the excess
        let mut out = Tokens::for_vocab(vocab.len(), size);
        for_each_char(path, |ch, pos| match vocab.get(ch) {
            Some(i) => {
                out.push(i);
                Ok(())
            }
            None => Err(CoreError::invalid(format!(
                "{}:{}:{}: character {ch:?} is not in the model's vocabulary",
                path.display(),
                pos.line,
                pos.column
            ))),
        })?;
        out.shrink_to_fit();
        Ok(out)
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        match self {
            Tokens::U8(v) => v.len(),
            Tokens::U16(v) => v.len(),
            Tokens::U32(v) => v.len(),
        }
    }

    /// Whether there are no characters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per character of this storage.
    pub fn bytes_per_char(&self) -> usize {
        match self {
            Tokens::U8(_) => 1,
            Tokens::U16(_) => 2,
            Tokens::U32(_) => 4,
        }
    }

    /// Index of character `i`.
    #[inline]
    pub fn at(&self, i: usize) -> u32 {
        match self {
            Tokens::U8(v) => v[i] as u32,
            Tokens::U16(v) => v[i] as u32,
            Tokens::U32(v) => v[i],
        }
    }

    /// Every index, widened (for tests and small texts).
    pub fn to_vec(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.at(i)).collect()
    }

    /// Splits off the characters from `at` on (the tail), as `Vec::split_off`; the head keeps
    /// its storage, shrunk to fit.
    pub fn split_off(&mut self, at: usize) -> Tokens {
        let tail = match self {
            Tokens::U8(v) => Tokens::U8(v.split_off(at)),
            Tokens::U16(v) => Tokens::U16(v.split_off(at)),
            Tokens::U32(v) => Tokens::U32(v.split_off(at)),
        };
        self.shrink_to_fit();
        tail
    }

    fn push(&mut self, i: u32) {
        // `for_vocab` chose a type that holds every index of the vocabulary
        match self {
            Tokens::U8(v) => v.push(i as u8),
            Tokens::U16(v) => v.push(i as u16),
            Tokens::U32(v) => v.push(i),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Tokens::U8(v) => v.shrink_to_fit(),
            Tokens::U16(v) => v.shrink_to_fit(),
            Tokens::U32(v) => v.shrink_to_fit(),
        }
    }
}

/// The vocabulary of the UTF-8 text file at `path` (its sorted unique characters), read in
/// one streaming pass.
pub fn vocab_of_file(path: &Path) -> Result<Vocab> {
    let mut set = BTreeSet::new();
    for_each_char(path, |ch, _| {
        set.insert(ch);
        Ok(())
    })?;
    Vocab::from_chars(set.into_iter().collect()).map_err(|e| match e {
        CoreError::InvalidArgument(m) => CoreError::invalid(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// Where a character is in its file (1-based line and column, in characters).
#[derive(Clone, Copy, Debug)]
struct Position {
    line: u64,
    column: u64,
}

/// Calls `f` on every character of the UTF-8 file at `path`, in order, reading 1 MiB at a
/// time. A multi-byte character split between two reads is carried over; bytes that are not
/// UTF-8 are an error naming the file, the byte offset and the line.
fn for_each_char(path: &Path, mut f: impl FnMut(char, Position) -> Result<()>) -> Result<()> {
    let name = path.display();
    let mut file =
        File::open(path).map_err(|e| CoreError::invalid(format!("{name}: cannot open: {e}")))?;
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK + 4];
    let mut carry = 0; // bytes of an incomplete character at the start of `buf`
    let mut offset: u64 = 0; // file offset of buf[0]
    let mut pos = Position { line: 1, column: 0 };
    loop {
        let n = loop {
            match file.read(&mut buf[carry..carry + CHUNK]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(CoreError::invalid(format!(
                        "{name}: read failed at byte {}: {e}",
                        offset + carry as u64
                    )))
                }
            }
        };
        let end = carry + n;
        let (text, rest) = match std::str::from_utf8(&buf[..end]) {
            Ok(s) => (s, end),
            Err(e) => {
                let good = e.valid_up_to();
                // an incomplete character at the end of a read is completed by the next one;
                // anything else (or an incomplete one at the end of the file) is not UTF-8
                if e.error_len().is_some() || n == 0 {
                    let line =
                        pos.line + buf[..good].iter().filter(|&&b| b == b'\n').count() as u64;
                    return Err(CoreError::invalid(format!(
                        "{name}: not UTF-8 text: invalid byte 0x{:02x} at byte {} (line {line})",
                        buf[good],
                        offset + good as u64
                    )));
                }
                (
                    std::str::from_utf8(&buf[..good]).expect("valid prefix"),
                    good,
                )
            }
        };
        for ch in text.chars() {
            if ch == '\n' {
                pos.column += 1;
                f(ch, pos)?;
                pos.line += 1;
                pos.column = 0;
            } else {
                pos.column += 1;
                f(ch, pos)?;
            }
        }
        if n == 0 {
            return Ok(());
        }
        buf.copy_within(rest..end, 0);
        offset += rest as u64;
        carry = end - rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("rnnlab-corpus-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn a_file_reads_as_its_string_would() {
        // multi-byte characters straddling the 1 MiB read boundary at every offset 0..4
        for shift in 0..4 {
            let mut text = "a".repeat((1 << 20) - 2 + shift);
            text.push_str("é€𝄞ßx\nzé\n");
            text.push_str(&"€".repeat(5000));
            let p = tmp(&format!("utf8-{shift}"), text.as_bytes());
            let vocab = vocab_of_file(&p).unwrap();
            assert_eq!(vocab, Vocab::from_text(&text).unwrap());
            let t = Tokens::read_file(&vocab, &p).unwrap();
            assert_eq!(t, Tokens::encode(&vocab, &text, "text").unwrap());
            assert_eq!(t.len(), text.chars().count());
            assert_eq!(t.bytes_per_char(), 1);
            std::fs::remove_file(p).unwrap();
        }
    }

    #[test]
    fn storage_width_follows_the_vocabulary() {
        let small: String = (0..256u32)
            .map(|i| char::from_u32(0x100 + i).unwrap())
            .collect();
        let v = Vocab::from_text(&small).unwrap();
        let t = Tokens::encode(&v, &small, "text").unwrap();
        assert_eq!((t.bytes_per_char(), t.at(255)), (1, 255));
        let big: String = (0..257u32)
            .map(|i| char::from_u32(0x100 + i).unwrap())
            .collect();
        let v = Vocab::from_text(&big).unwrap();
        let t = Tokens::encode(&v, &big, "text").unwrap();
        assert_eq!((t.bytes_per_char(), t.at(256)), (2, 256));
        assert_eq!(t.to_vec(), (0..257).collect::<Vec<u32>>());
        let mut t = t;
        let tail = t.split_off(250);
        assert_eq!((t.len(), tail.len(), tail.at(0)), (250, 7, 250));
    }

    #[test]
    fn bad_files_are_errors_naming_file_and_place() {
        let p = tmp("latin1", b"line one\nline two caf\xe9\n");
        let e = vocab_of_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("latin1")
                && e.contains("not UTF-8")
                && e.contains("0xe9")
                && e.contains("byte 21")
                && e.contains("line 2"),
            "{e}"
        );
        std::fs::remove_file(p).unwrap();
        // truncated in the middle of a character at the end of the file
        let p = tmp("cut", "ok €".as_bytes().split_last().unwrap().1);
        assert!(vocab_of_file(&p)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
        std::fs::remove_file(p).unwrap();
        let p = tmp("unknown", "abc\nab\nabz\n".as_bytes());
        let v = Vocab::from_text("abc\n").unwrap();
        let e = Tokens::read_file(&v, &p).unwrap_err().to_string();
        assert!(e.contains(":3:3:") && e.contains("'z'"), "{e}");
        std::fs::remove_file(p).unwrap();
        let e = vocab_of_file(Path::new("/nonexistent/corpus.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/corpus.txt") && e.contains("cannot open"),
            "{e}"
        );
        let p = tmp("one-char", b"aaaa");
        assert!(vocab_of_file(&p)
            .unwrap_err()
            .to_string()
            .contains("one-char"));
        std::fs::remove_file(p).unwrap();
    }
}
