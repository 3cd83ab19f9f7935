//! The character vocabulary: sorted unique characters (Unicode scalar values) of a text.

use std::collections::{BTreeSet, HashMap};

use crate::error::{CoreError, Result};

/// Characters ↔ indices. Index order is the sorted order of the characters (as in the course).
#[derive(Clone, Debug, PartialEq)]
pub struct Vocab {
    chars: Vec<char>,
    index: HashMap<char, u32>,
}

impl Vocab {
    /// The sorted unique characters of `text`; at least two are needed to learn anything.
    pub fn from_text(text: &str) -> Result<Self> {
        let set: BTreeSet<char> = text.chars().collect();
        Self::from_chars(set.into_iter().collect())
    }

    /// A vocabulary from an explicit list (as stored in a checkpoint); must be unique.
    pub fn from_chars(chars: Vec<char>) -> Result<Self> {
        if chars.len() < 2 {
            return Err(CoreError::invalid(format!(
                "text: expected at least 2 distinct characters, got {}",
                chars.len()
            )));
        }
        let mut index = HashMap::with_capacity(chars.len());
        for (i, &ch) in chars.iter().enumerate() {
            if index.insert(ch, i as u32).is_some() {
                return Err(CoreError::invalid(format!(
                    "vocabulary: character {ch:?} appears twice"
                )));
            }
        }
        Ok(Vocab { chars, index })
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Always false (a vocabulary has at least 2 characters).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters in index order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The vocabulary as one string (index order), for metadata.
    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }

    /// Index of a character, if known.
    pub fn get(&self, ch: char) -> Option<u32> {
        self.index.get(&ch).copied()
    }

    /// Indices of every character of `text`; unknown characters give one error naming all of
    /// them (`what` names the argument, e.g. "prompt").
    pub fn encode(&self, text: &str, what: &str) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len());
        self.encode_each(text, what, |i| out.push(i))?;
        Ok(out)
    }

    /// `emit(index)` for every character of `text`, in order; then the error naming every
    /// character outside the vocabulary, if any.
    pub(crate) fn encode_each(
        &self,
        text: &str,
        what: &str,
        mut emit: impl FnMut(u32),
    ) -> Result<()> {
        let mut unknown: BTreeSet<char> = BTreeSet::new();
        for ch in text.chars() {
            match self.index.get(&ch) {
                Some(&i) => emit(i),
                None => {
                    unknown.insert(ch);
                }
            }
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            let list: Vec<String> = unknown.iter().map(|c| format!("{c:?}")).collect();
            Err(CoreError::invalid(format!(
                "{what}: characters not in the model's vocabulary: {}",
                list.join(", ")
            )))
        }
    }

    /// The text for a list of indices (indices must be valid).
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(|&i| self.chars[i as usize]).collect()
    }
}
