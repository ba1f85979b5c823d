//! A suffix array over a corpus of token ids (REST's datastore): the
//! documents joined with a separator id, and every suffix's start sorted
//! lexicographically. A context suffix of length L is found by binary
//! search in O(L log n); its occurrences are one interval of the array,
//! and the tokens after each occurrence are the candidate continuations.

use std::cmp::Ordering;

use crate::draft::Trie;
use crate::Retrieved;

/// Ends each document in the joined corpus: no tokenizer has 2^32−1 ids,
/// and a continuation stops there.
pub const SEPARATOR: u32 = u32::MAX;

/// A corpus and its suffix array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuffixStore {
    /// [n]: the documents' tokens, each document followed by [`SEPARATOR`].
    tokens: Vec<u32>,
    /// [n]: suffix starts in lexicographic order of `tokens[start..]`.
    suffixes: Vec<u32>,
}

/// How a retrieval is bounded.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    /// The longest context suffix tried.
    pub max_match: usize,
    /// The shortest match that counts.
    pub min_match: usize,
    /// Occurrences whose continuations are counted (the first ones of the interval).
    pub max_occurrences: usize,
    /// Draft tokens at most.
    pub max_draft: usize,
}

impl Default for Query {
    fn default() -> Query {
        Query {
            max_match: 32,
            min_match: 2,
            max_occurrences: 64,
            max_draft: 16,
        }
    }
}

/// Why a corpus cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// More tokens than a `u32` suffix start can address.
    TooLarge(usize),
    /// A document holds the separator id.
    SeparatorInDocument { document: usize },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::TooLarge(n) => write!(
                f,
                "the corpus has {n} tokens, more than a datastore holds ({})",
                u32::MAX
            ),
            BuildError::SeparatorInDocument { document } => write!(
                f,
                "document {document} holds token id {SEPARATOR}, which separates documents"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

impl SuffixStore {
    /// The store of `documents` (each a token sequence).
    pub fn build<D: AsRef<[u32]>>(documents: &[D]) -> Result<SuffixStore, BuildError> {
        let n: usize = documents.iter().map(|d| d.as_ref().len() + 1).sum();
        if n >= u32::MAX as usize {
            return Err(BuildError::TooLarge(n));
        }
        let mut tokens = Vec::with_capacity(n);
        for (i, d) in documents.iter().enumerate() {
            if d.as_ref().contains(&SEPARATOR) {
                return Err(BuildError::SeparatorInDocument { document: i });
            }
            tokens.extend_from_slice(d.as_ref());
            tokens.push(SEPARATOR);
        }
        let suffixes = suffix_array(&tokens);
        Ok(SuffixStore { tokens, suffixes })
    }

    /// A store from its parts, checked: `suffixes` must be a permutation
    /// of `0..tokens.len()` and `tokens` must end with the separator. (An
    /// unsorted array only makes retrieval miss: drafts are verified.)
    pub fn from_parts(tokens: Vec<u32>, suffixes: Vec<u32>) -> Result<SuffixStore, String> {
        if tokens.len() != suffixes.len() {
            return Err(format!(
                "{} tokens but {} suffixes",
                tokens.len(),
                suffixes.len()
            ));
        }
        if tokens.last().is_some_and(|&t| t != SEPARATOR) {
            return Err("the last document is not terminated".into());
        }
        let mut seen = vec![false; tokens.len()];
        for &s in &suffixes {
            match seen.get_mut(s as usize) {
                Some(slot) if !*slot => *slot = true,
                Some(_) => return Err(format!("suffix {s} appears twice")),
                None => {
                    return Err(format!(
                        "suffix {s} is past the end of the {} tokens",
                        tokens.len()
                    ))
                }
            }
        }
        Ok(SuffixStore { tokens, suffixes })
    }

    /// The joined corpus, documents separated by [`SEPARATOR`].
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The suffix array.
    pub fn suffixes(&self) -> &[u32] {
        &self.suffixes
    }

    /// Tokens in the corpus (separators included).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The suffix-array interval of suffixes starting with `pattern`.
    fn interval(&self, pattern: &[u32]) -> (usize, usize) {
        let cmp = |&start: &u32| -> Ordering {
            let suffix = &self.tokens[start as usize..];
            let common = suffix.len().min(pattern.len());
            match suffix[..common].cmp(&pattern[..common]) {
                Ordering::Equal if suffix.len() < pattern.len() => Ordering::Less,
                Ordering::Equal => Ordering::Equal,
                other => other,
            }
        };
        let lo = self.suffixes.partition_point(|s| cmp(s) == Ordering::Less);
        let hi = lo + self.suffixes[lo..].partition_point(|s| cmp(s) == Ordering::Equal);
        (lo, hi)
    }

    /// The longest suffix of `context` (from `query.min_match` to
    /// `query.max_match` tokens) that occurs in the corpus with at least
    /// one token after it, and the draft of its continuations.
    pub fn retrieve(&self, context: &[u32], query: &Query) -> Option<Retrieved> {
        let longest = query.max_match.min(context.len());
        if longest < query.min_match.max(1)
            || context[context.len() - longest..].contains(&SEPARATOR)
        {
            return None;
        }
        // Whether the last `len` tokens occur is monotone in `len`: binary search.
        let occurs = |len: usize| {
            let (lo, hi) = self.interval(&context[context.len() - len..]);
            (lo < hi).then_some((lo, hi))
        };
        let (mut good, mut interval) = (0, None);
        let (mut lo, mut hi) = (query.min_match.max(1), longest);
        while lo <= hi {
            let mid = (lo + hi) / 2;
            match occurs(mid) {
                Some(found) => {
                    good = mid;
                    interval = Some(found);
                    lo = mid + 1;
                }
                None => hi = mid - 1,
            }
        }
        let (lo, hi) = interval?;
        let mut trie = Trie::default();
        for &start in &self.suffixes[lo..hi.min(lo + query.max_occurrences)] {
            let after = start as usize + good;
            let continuation = self.tokens[after..]
                .iter()
                .take(query.max_draft)
                .take_while(|&&t| t != SEPARATOR);
            trie.insert(continuation.copied());
        }
        Some(Retrieved {
            matched: good,
            draft: trie.most_frequent_path(),
        })
    }
}

/// The suffix array of `tokens` by prefix doubling: ranks of the first 2^h
/// tokens of every suffix, refined by sorting on (rank, rank 2^h later)
/// until all ranks differ. O(n log² n) at worst; a few rounds on code,
/// whose repeats are short.
pub fn suffix_array(tokens: &[u32]) -> Vec<u32> {
    let n = tokens.len();
    let mut suffixes: Vec<u32> = (0..n as u32).collect();
    if n == 0 {
        return suffixes;
    }
    let mut rank: Vec<u64> = tokens.iter().map(|&t| u64::from(t)).collect();
    let mut next = vec![0u64; n];
    let mut h = 1;
    loop {
        // (rank of the suffix, rank of the suffix h later; 0 past the end).
        let key = |s: u32, rank: &[u64]| {
            let s = s as usize;
            let second = if s + h < n { rank[s + h] + 1 } else { 0 };
            (rank[s], second)
        };
        suffixes.sort_unstable_by_key(|&s| key(s, &rank));
        next[suffixes[0] as usize] = 0;
        for w in 1..n {
            let (a, b) = (suffixes[w - 1], suffixes[w]);
            let bump = u64::from(key(a, &rank) != key(b, &rank));
            next[b as usize] = next[a as usize] + bump;
        }
        std::mem::swap(&mut rank, &mut next);
        if rank[suffixes[n - 1] as usize] as usize == n - 1 || h >= n {
            break;
        }
        h *= 2;
    }
    suffixes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_suffix_array(tokens: &[u32]) -> Vec<u32> {
        let mut s: Vec<u32> = (0..tokens.len() as u32).collect();
        s.sort_by(|&a, &b| tokens[a as usize..].cmp(&tokens[b as usize..]));
        s
    }

    proptest! {
        #[test]
        fn the_suffix_array_is_sorted(tokens in prop::collection::vec(0u32..4, 0..200)) {
            prop_assert_eq!(suffix_array(&tokens), naive_suffix_array(&tokens));
        }

        #[test]
        fn retrieval_finds_the_longest_suffix_that_occurs(
            corpus in prop::collection::vec(0u32..3, 1..120),
            context in prop::collection::vec(0u32..3, 1..12),
        ) {
            let store = SuffixStore::build(std::slice::from_ref(&corpus)).unwrap();
            let query = Query { min_match: 1, ..Query::default() };
            let got = store.retrieve(&context, &query);
            // The naive answer: the longest suffix with a token after it in the corpus.
            let occurs_with_next = |len: usize| {
                let pattern = &context[context.len() - len..];
                corpus.windows(len + 1).any(|w| &w[..len] == pattern)
                    || corpus.ends_with(pattern)
            };
            let best = (1..=context.len()).rev().find(|&len| occurs_with_next(len));
            prop_assert_eq!(got.as_ref().map(|r| r.matched), best);
            if let Some(r) = got {
                // The draft follows some occurrence of the match.
                let pattern = &context[context.len() - r.matched..];
                let mut followed = pattern.to_vec();
                followed.extend_from_slice(&r.draft.tokens);
                prop_assert!(corpus.windows(followed.len()).any(|w| w == followed.as_slice()));
            }
        }
    }

    #[test]
    fn the_continuation_seen_most_often_is_drafted() {
        let docs = [
            vec![1, 2, 3, 4, 5],
            vec![9, 2, 3, 4, 6, 7],
            vec![2, 3, 4, 6, 7, 8],
            vec![0, 0, 2, 3],
        ];
        let store = SuffixStore::build(&docs).unwrap();
        let r = store.retrieve(&[7, 7, 2, 3], &Query::default()).unwrap();
        assert_eq!(r.matched, 2);
        // After "2 3": "4 6 7" twice (one going on to 8), "4 5" once; a
        // document's end stops a continuation.
        assert_eq!(r.draft.tokens, [4, 6, 7, 8]);
    }

    #[test]
    fn no_match_no_draft() {
        let store = SuffixStore::build(&[vec![1, 2, 3]]).unwrap();
        assert!(store.retrieve(&[5, 6], &Query::default()).is_none());
        assert!(store.retrieve(&[3], &Query::default()).is_none()); // shorter than min_match
        let empty = SuffixStore::build::<Vec<u32>>(&[]).unwrap();
        assert!(empty.retrieve(&[1, 2], &Query::default()).is_none());
    }

    #[test]
    fn parts_are_checked() {
        let store = SuffixStore::build(&[vec![1, 2, 1]]).unwrap();
        let (t, s) = (store.tokens().to_vec(), store.suffixes().to_vec());
        assert_eq!(
            SuffixStore::from_parts(t.clone(), s.clone()).unwrap(),
            store
        );
        assert!(SuffixStore::from_parts(t.clone(), vec![0, 1, 2, 2])
            .unwrap_err()
            .contains("twice"));
        assert!(SuffixStore::from_parts(t.clone(), vec![0, 1, 2, 9])
            .unwrap_err()
            .contains("past the end"));
        assert!(SuffixStore::from_parts(vec![1, 2], vec![0, 1])
            .unwrap_err()
            .contains("not terminated"));
        assert!(SuffixStore::build(&[vec![SEPARATOR]]).is_err());
    }
}
