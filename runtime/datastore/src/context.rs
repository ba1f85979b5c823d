//! The dynamic store: an index of the running context (the prompt and the
//! tokens the model has written), so that a continuation the context
//! already holds (a repeated call, the rest of a pattern it began) can be
//! drafted from it. Every n-gram of 1 to [`ContextStore::ORDER`] tokens
//! maps to the positions after its most recent occurrences; appending a
//! token updates ORDER entries.

use std::collections::HashMap;

use crate::draft::Trie;
use crate::suffix::Query;
use crate::Retrieved;

/// The running context and its n-gram index.
#[derive(Debug, Default, Clone)]
pub struct ContextStore {
    tokens: Vec<u32>,
    /// n-gram → the positions right after its latest occurrences, newest last.
    after: HashMap<Vec<u32>, Vec<u32>>,
}

/// Positions kept per n-gram: its most recent occurrences.
const KEPT: usize = 8;

impl ContextStore {
    /// The longest n-gram indexed.
    pub const ORDER: usize = 8;

    pub fn new() -> ContextStore {
        ContextStore::default()
    }

    /// Tokens seen so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Appends `token` to the context. The n-grams ending just before it
    /// now have a continuation.
    pub fn push(&mut self, token: u32) {
        let end = self.tokens.len();
        for n in 1..=Self::ORDER.min(end) {
            let positions = self
                .after
                .entry(self.tokens[end - n..].to_vec())
                .or_default();
            if positions.len() == KEPT {
                positions.remove(0);
            }
            positions.push(end as u32);
        }
        self.tokens.push(token);
    }

    pub fn extend(&mut self, tokens: &[u32]) {
        for &t in tokens {
            self.push(t);
        }
    }

    /// Forgets every token from `len` on (the index keeps only
    /// positions below it).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.tokens.len() {
            return;
        }
        self.tokens.truncate(len);
        // A position p is the continuation of an n-gram ending at p - 1.
        self.after.retain(|_, positions| {
            positions.retain(|&p| (p as usize) < len);
            !positions.is_empty()
        });
    }

    /// The longest n-gram ending the context (at least `query.min_match`)
    /// that occurred earlier, and the draft of what followed it there.
    pub fn retrieve(&self, query: &Query) -> Option<Retrieved> {
        let end = self.tokens.len();
        let longest = Self::ORDER.min(query.max_match).min(end);
        for n in (query.min_match.max(1)..=longest).rev() {
            let Some(positions) = self.after.get(&self.tokens[end - n..]) else {
                continue;
            };
            let mut trie = Trie::default();
            for &p in positions.iter().rev() {
                let p = p as usize;
                trie.insert(self.tokens[p..end].iter().take(query.max_draft).copied());
            }
            return Some(Retrieved {
                matched: n,
                draft: trie.most_frequent_path(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_pattern_is_drafted_from_the_context() {
        let mut store = ContextStore::new();
        store.extend(&[5, 1, 2, 3, 4, 9, 9, 1, 2]);
        let r = store.retrieve(&Query::default()).unwrap();
        assert_eq!(r.matched, 2);
        assert_eq!(r.draft.tokens, [3, 4, 9, 9, 1, 2]);
        let short = Query {
            max_draft: 2,
            ..Query::default()
        };
        assert_eq!(store.retrieve(&short).unwrap().draft.tokens, [3, 4]);
    }

    #[test]
    fn truncation_forgets_the_tail() {
        let mut store = ContextStore::new();
        store.extend(&[1, 2, 3, 1, 2]);
        store.truncate(3);
        assert_eq!(store.tokens(), [1, 2, 3]);
        assert!(store.retrieve(&Query::default()).is_none());
        store.extend(&[1, 2]);
        assert_eq!(
            store.retrieve(&Query::default()).unwrap().draft.tokens,
            [3, 1, 2]
        );
    }

    #[test]
    fn nothing_to_match_in_a_fresh_context() {
        let mut store = ContextStore::new();
        assert!(store.retrieve(&Query::default()).is_none());
        store.extend(&[1, 2, 3, 4]);
        assert!(store.retrieve(&Query::default()).is_none());
    }
}
