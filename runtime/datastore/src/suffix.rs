//! A suffix array over a corpus of token ids (REST's datastore): the
//! documents joined with a separator id, and every suffix's start sorted
//! lexicographically. A context suffix of length L is found by binary
//! search in O(L log n); its occurrences are one interval of the array,
//! and the tokens after each occurrence are the candidate continuations.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};
use std::sync::Arc;
use std::time::Instant;

use crate::draft::Trie;
use crate::Retrieved;

/// Ends each document in the joined corpus: no tokenizer has 2^32−1 ids,
/// and a continuation stops there.
pub const SEPARATOR: u32 = u32::MAX;

/// A corpus and its suffix array.
#[derive(Clone)]
pub struct SuffixStore {
    /// [n]: the documents' tokens, each document followed by [`SEPARATOR`].
    tokens: Words,
    /// [n]: suffix starts in lexicographic order of `tokens[start..]`.
    suffixes: Words,
    /// Where the store came from, for messages (`code.ds`, `--repo src`).
    label: String,
    usage: Usage,
}

/// Bytes a store's arrays can be read from in place: a mapped file, the
/// executable's payload.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// `u32`s owned, or read in place from shared bytes.
#[derive(Clone)]
enum Words {
    Owned(Vec<u32>),
    /// `len` words at byte `start` of `bytes`, 4-aligned in memory (checked
    /// by [`Words::shared`]).
    Shared {
        bytes: SharedBytes,
        start: usize,
        len: usize,
    },
}

impl Words {
    /// `len` little-endian words at byte `start` of `bytes`, read in place
    /// when the host is little-endian and they are aligned, else copied.
    /// `None` when the range is not inside `bytes`.
    fn shared(bytes: &SharedBytes, start: usize, len: usize) -> Option<Words> {
        let end = len.checked_mul(4)?.checked_add(start)?;
        let raw = (**bytes).as_ref().get(start..end)?;
        if cfg!(target_endian = "little")
            && (raw.as_ptr() as usize).is_multiple_of(std::mem::align_of::<u32>())
        {
            return Some(Words::Shared {
                bytes: Arc::clone(bytes),
                start,
                len,
            });
        }
        let words = raw
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        Some(Words::Owned(words))
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Words::Owned(words) => words,
            Words::Shared { bytes, start, len } => {
                let raw = &(**bytes).as_ref()[*start..*start + *len * 4];
                // SAFETY: `raw` holds `len` * 4 initialized bytes, its
                // address is 4-aligned (checked in `shared`; the bytes behind
                // an `Arc` do not move), any bit pattern is a valid u32, and
                // the host is little-endian, so they read as the file's words.
                unsafe { std::slice::from_raw_parts(raw.as_ptr().cast::<u32>(), *len) }
            }
        }
    }
}

/// What a store's retrievals found, counted as they run (the drafter
/// decides which store's draft is used; these say what each offered).
#[derive(Default)]
struct Usage {
    retrievals: AtomicU64,
    matches: AtomicU64,
    proposed: AtomicU64,
    nanos: AtomicU64,
}

impl Clone for Usage {
    fn clone(&self) -> Usage {
        let copy = |a: &AtomicU64| AtomicU64::new(a.load(Atomic::Relaxed));
        Usage {
            retrievals: copy(&self.retrievals),
            matches: copy(&self.matches),
            proposed: copy(&self.proposed),
            nanos: copy(&self.nanos),
        }
    }
}

/// A store's retrievals so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageStats {
    /// Calls of [`SuffixStore::retrieve`].
    pub retrievals: u64,
    /// Calls that found a match.
    pub matches: u64,
    /// Draft tokens those matches offered.
    pub proposed: u64,
    /// Time spent in them.
    pub nanos: u64,
}

impl std::fmt::Debug for SuffixStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuffixStore")
            .field("label", &self.label)
            .field("tokens", &self.tokens().len())
            .finish_non_exhaustive()
    }
}

/// Stores are equal when their corpora and suffix arrays are.
impl PartialEq for SuffixStore {
    fn eq(&self, other: &SuffixStore) -> bool {
        self.tokens() == other.tokens() && self.suffixes() == other.suffixes()
    }
}

impl Eq for SuffixStore {}

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
        let n = documents.iter().map(|d| d.as_ref().len() + 1).sum();
        SuffixStore::join(documents.iter(), n)
    }

    /// The store of `documents`, each freed once joined (a large corpus is
    /// not held twice while its suffix array is built).
    pub fn from_documents(documents: Vec<Vec<u32>>) -> Result<SuffixStore, BuildError> {
        let n = documents.iter().map(|d| d.len() + 1).sum();
        SuffixStore::join(documents.into_iter(), n)
    }

    /// The store of `documents`, `n` tokens once joined.
    fn join<D: AsRef<[u32]>>(
        documents: impl Iterator<Item = D>,
        n: usize,
    ) -> Result<SuffixStore, BuildError> {
        if n >= u32::MAX as usize {
            return Err(BuildError::TooLarge(n));
        }
        let mut tokens = Vec::with_capacity(n);
        for (i, d) in documents.enumerate() {
            if d.as_ref().contains(&SEPARATOR) {
                return Err(BuildError::SeparatorInDocument { document: i });
            }
            tokens.extend_from_slice(d.as_ref());
            tokens.push(SEPARATOR);
        }
        let suffixes = suffix_array(&tokens);
        Ok(SuffixStore::new(
            Words::Owned(tokens),
            Words::Owned(suffixes),
        ))
    }

    fn new(tokens: Words, suffixes: Words) -> SuffixStore {
        SuffixStore {
            tokens,
            suffixes,
            label: String::new(),
            usage: Usage::default(),
        }
    }

    /// The store named `label` in messages.
    pub fn with_label(mut self, label: impl Into<String>) -> SuffixStore {
        self.label = label.into();
        self
    }

    /// Where the store came from (empty unless [`SuffixStore::with_label`] said).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What the store's retrievals have found so far.
    pub fn usage(&self) -> UsageStats {
        let get = |a: &AtomicU64| a.load(Atomic::Relaxed);
        UsageStats {
            retrievals: get(&self.usage.retrievals),
            matches: get(&self.usage.matches),
            proposed: get(&self.usage.proposed),
            nanos: get(&self.usage.nanos),
        }
    }

    /// A store from its parts, checked: `tokens` must end with the
    /// separator and `suffixes` must be its suffix array
    /// ([`check_suffix_array`]).
    pub fn from_parts(tokens: Vec<u32>, suffixes: Vec<u32>) -> Result<SuffixStore, String> {
        if tokens.last().is_some_and(|&t| t != SEPARATOR) {
            return Err("the last document is not terminated".into());
        }
        check_suffix_array(&tokens, &suffixes)?;
        Ok(SuffixStore::new(
            Words::Owned(tokens),
            Words::Owned(suffixes),
        ))
    }

    /// A store over `n` tokens and `n` suffix starts read in place from
    /// `bytes` (little-endian u32s at byte offsets `tokens_at` and
    /// `suffixes_at`), unchecked beyond the ranges: [`crate::file`] checks
    /// them with [`check_sorted`] and the rest of its checks first.
    pub(crate) fn from_bytes(
        bytes: &SharedBytes,
        n: usize,
        tokens_at: usize,
        suffixes_at: usize,
    ) -> Option<SuffixStore> {
        Some(SuffixStore::new(
            Words::shared(bytes, tokens_at, n)?,
            Words::shared(bytes, suffixes_at, n)?,
        ))
    }

    /// The joined corpus, documents separated by [`SEPARATOR`].
    pub fn tokens(&self) -> &[u32] {
        self.tokens.as_slice()
    }

    /// The suffix array.
    pub fn suffixes(&self) -> &[u32] {
        self.suffixes.as_slice()
    }

    /// Tokens in the corpus (separators included).
    pub fn len(&self) -> usize {
        self.tokens().len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens().is_empty()
    }

    /// The suffix-array interval of suffixes starting with `pattern`.
    fn interval(&self, pattern: &[u32]) -> (usize, usize) {
        let (tokens, suffixes) = (self.tokens(), self.suffixes());
        let cmp = |&start: &u32| -> Ordering {
            let suffix = tokens.get(start as usize..).unwrap_or_default();
            let common = suffix.len().min(pattern.len());
            match suffix[..common].cmp(&pattern[..common]) {
                Ordering::Equal if suffix.len() < pattern.len() => Ordering::Less,
                Ordering::Equal => Ordering::Equal,
                other => other,
            }
        };
        let lo = suffixes.partition_point(|s| cmp(s) == Ordering::Less);
        let hi = lo + suffixes[lo..].partition_point(|s| cmp(s) == Ordering::Equal);
        (lo, hi)
    }

    /// The longest suffix of `context` (from `query.min_match` to
    /// `query.max_match` tokens) that occurs in the corpus with at least
    /// one token after it, and the draft of its continuations.
    pub fn retrieve(&self, context: &[u32], query: &Query) -> Option<Retrieved> {
        let start = Instant::now();
        let found = self.find(context, query);
        let usage = &self.usage;
        usage.retrievals.fetch_add(1, Atomic::Relaxed);
        if let Some(found) = &found {
            usage.matches.fetch_add(1, Atomic::Relaxed);
            let proposed = found.draft.tokens.len() as u64;
            usage.proposed.fetch_add(proposed, Atomic::Relaxed);
        }
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        usage.nanos.fetch_add(nanos, Atomic::Relaxed);
        found
    }

    fn find(&self, context: &[u32], query: &Query) -> Option<Retrieved> {
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
        let tokens = self.tokens();
        for &start in &self.suffixes()[lo..hi.min(lo + query.max_occurrences)] {
            // In the corpus when the array is sorted (checked on load);
            // an empty continuation otherwise, never a panic.
            let after = start as usize + good;
            let continuation = tokens
                .get(after..)
                .unwrap_or_default()
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

/// Checks that `suffixes` is the suffix array of `tokens`: a permutation
/// of `0..n`, each suffix less than the next. O(n) time and 4n bytes, by
/// Burkhardt and Kärkkäinen's check: with `rank` the inverse permutation
/// (the empty suffix ranked lowest), the array is sorted exactly when every
/// neighbour pair `a, b` has `(tokens[a], rank[a + 1]) < (tokens[b],
/// rank[b + 1])` (a suffix is its first token followed by the suffix after
/// it; by induction on the length, the ranks compared are those of
/// correctly ordered suffixes).
pub fn check_suffix_array(tokens: &[u32], suffixes: &[u32]) -> Result<(), String> {
    let n = tokens.len();
    if suffixes.len() != n {
        return Err(format!("{n} tokens but {} suffixes", suffixes.len()));
    }
    if n >= u32::MAX as usize {
        return Err(BuildError::TooLarge(n).to_string());
    }
    const UNSEEN: u32 = u32::MAX;
    let mut rank = vec![UNSEEN; n];
    for (i, &s) in suffixes.iter().enumerate() {
        match rank.get_mut(s as usize) {
            Some(slot) if *slot == UNSEEN => *slot = i as u32,
            Some(_) => return Err(format!("suffix {s} appears twice")),
            None => return Err(format!("suffix {s} is past the end of the {n} tokens")),
        }
    }
    // The rank of the suffix after `s`, one up so that the empty one is 0.
    let after = |s: usize| rank.get(s + 1).map_or(0, |&r| u64::from(r) + 1);
    for (i, pair) in suffixes.windows(2).enumerate() {
        let (a, b) = (pair[0] as usize, pair[1] as usize);
        if (tokens[a], after(a)) >= (tokens[b], after(b)) {
            return Err(format!(
                "the suffix array is not sorted: the suffix at {} (entry {i}) is not less than the one at {} (entry {})",
                a,
                b,
                i + 1
            ));
        }
    }
    Ok(())
}

/// Checks what retrieval from `suffixes` over `tokens` needs cheaply: a
/// permutation of `0..n` (a bitmap of n bits), and, at `samples` neighbour
/// pairs spread over the array, each suffix less than the next (compared
/// over their first [`SAMPLED_PREFIX`] tokens; longer ties pass). O(n)
/// sequential work; the full order is [`check_suffix_array`]'s. An array
/// that passes but is not sorted only makes retrieval miss: every slice it
/// takes is bounds-checked, and drafts are verified by the model.
pub fn check_suffix_sample(tokens: &[u32], suffixes: &[u32], samples: usize) -> Result<(), String> {
    let n = tokens.len();
    if suffixes.len() != n {
        return Err(format!("{n} tokens but {} suffixes", suffixes.len()));
    }
    let mut seen = vec![0u64; n.div_ceil(64)];
    for &s in suffixes {
        // The bitmap has room past n (to a multiple of 64): the bound is n.
        let word = match seen.get_mut(s as usize / 64) {
            Some(word) if (s as usize) < n => word,
            _ => return Err(format!("suffix {s} is past the end of the {n} tokens")),
        };
        let bit = 1u64 << (s % 64);
        if *word & bit != 0 {
            return Err(format!("suffix {s} appears twice"));
        }
        *word |= bit;
    }
    if n < 2 {
        return Ok(());
    }
    let step = ((n - 1) / samples.max(1)).max(1);
    for i in (0..n - 1).step_by(step) {
        let (a, b) = (suffixes[i] as usize, suffixes[i + 1] as usize);
        let prefix = |s: usize| &tokens[s..n.min(s + SAMPLED_PREFIX)];
        // Equal prefixes are full-length ones (a permutation has no a == b).
        if prefix(a) > prefix(b) {
            return Err(format!(
                "the suffix array is not sorted: the suffix at {a} (entry {i}) is not less than the one at {b} (entry {})",
                i + 1
            ));
        }
    }
    Ok(())
}

/// Tokens of each suffix [`check_suffix_sample`] compares.
pub const SAMPLED_PREFIX: usize = 256;

/// The suffix array of `tokens` by prefix doubling over groups (Larsson
/// and Sadakane's refinement): suffixes sorted by their first token, then
/// each group of suffixes that still tie sorted by the rank of the suffix h
/// tokens later, h doubling each round, until no group ties. A suffix's
/// rank is the first index of its group, so a group splits into ranks
/// inside its own range and the other groups' order holds; suffixes
/// already apart are never looked at again. O(n log n) per round, and the
/// rounds end at the longest repeat's length doubled; 8 bytes a token
/// beside the tokens (the array and the ranks).
pub fn suffix_array(tokens: &[u32]) -> Vec<u32> {
    let n = tokens.len();
    let mut by_token: Vec<(u32, u32)> = (0..n as u32).map(|s| (tokens[s as usize], s)).collect();
    by_token.sort_unstable();
    let mut suffixes: Vec<u32> = by_token.iter().map(|&(_, s)| s).collect();
    drop(by_token);
    let mut rank = vec![0u32; n];
    // Groups [lo, hi) of suffixes that tie so far, two or more each.
    let mut groups = Vec::new();
    let mut lo = 0;
    for i in 1..=n {
        if i == n || tokens[suffixes[i] as usize] != tokens[suffixes[lo] as usize] {
            for &s in &suffixes[lo..i] {
                rank[s as usize] = lo as u32;
            }
            if i - lo > 1 {
                groups.push((lo, i));
            }
            lo = i;
        }
    }
    let mut h = 1;
    let mut keyed: Vec<(u64, u32)> = Vec::new();
    while !groups.is_empty() {
        let mut ties = Vec::new();
        for &(lo, hi) in &groups {
            // The rank of the suffix h later, one up (0: past the end, the
            // empty suffix, which is less than any other).
            keyed.clear();
            keyed.extend(suffixes[lo..hi].iter().map(|&s| {
                let after = s as usize + h;
                let key = rank.get(after).map_or(0, |&r| u64::from(r) + 1);
                (key, s)
            }));
            keyed.sort_unstable_by_key(|&(key, _)| key);
            let mut start = 0;
            for i in 1..=keyed.len() {
                if i == keyed.len() || keyed[i].0 != keyed[start].0 {
                    for (at, &(_, s)) in keyed[start..i].iter().enumerate() {
                        suffixes[lo + start + at] = s;
                        rank[s as usize] = (lo + start) as u32;
                    }
                    if i - start > 1 {
                        ties.push((lo + start, lo + i));
                    }
                    start = i;
                }
            }
        }
        groups = ties;
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
        fn long_repeats_are_sorted(
            unit in prop::collection::vec(0u32..3, 1..8),
            times in 1usize..60,
            tail in prop::collection::vec(0u32..3, 0..8),
        ) {
            let mut tokens: Vec<u32> = unit.iter().copied().cycle().take(unit.len() * times).collect();
            tokens.extend(tail);
            tokens.push(SEPARATOR);
            prop_assert_eq!(suffix_array(&tokens), naive_suffix_array(&tokens));
        }

        #[test]
        fn the_check_takes_suffix_arrays_and_nothing_else(
            tokens in prop::collection::vec(0u32..3, 1..60),
            swap in (0usize..60, 0usize..60),
        ) {
            let good = suffix_array(&tokens);
            prop_assert!(check_suffix_array(&tokens, &good).is_ok());
            let (i, j) = (swap.0 % tokens.len(), swap.1 % tokens.len());
            let mut bad = good.clone();
            bad.swap(i, j);
            // Suffixes all differ: any other order is not sorted.
            prop_assert_eq!(check_suffix_array(&tokens, &bad).is_ok(), i == j);
        }

        #[test]
        fn the_sampled_check_takes_suffix_arrays(
            tokens in prop::collection::vec(0u32..3, 1..200),
            swap in (0usize..200, 0usize..200),
        ) {
            let good = suffix_array(&tokens);
            prop_assert!(check_suffix_sample(&tokens, &good, 1 << 16).is_ok());
            let (i, j) = (swap.0 % tokens.len(), swap.1 % tokens.len());
            let mut bad = good.clone();
            bad.swap(i, j);
            // Every pair sampled: a swap is seen (no two suffixes here tie
            // over the prefix compared: they are shorter).
            prop_assert_eq!(check_suffix_sample(&tokens, &bad, 1 << 16).is_ok(), i == j);
            bad[i] = bad[j];
            prop_assert_eq!(check_suffix_sample(&tokens, &bad, 1).is_ok(), i == j);
            // Past the end, within the bitmap's last word or beyond it.
            for past in [tokens.len(), tokens.len().next_multiple_of(64) - 1, 1 << 20] {
                let mut bad = good.clone();
                bad[i] = past as u32;
                if past >= tokens.len() {
                    let why = check_suffix_sample(&tokens, &bad, 1).unwrap_err();
                    prop_assert!(why.contains("past the end"), "{}", why);
                }
            }
        }

        #[test]
        fn retrieval_finds_the_longest_suffix_that_occurs(
            corpus in prop::collection::vec(0u32..3, 1..120),
            context in prop::collection::vec(0u32..3, 1..12),
        ) {
            let store = SuffixStore::build(std::slice::from_ref(&corpus)).unwrap();
            prop_assert_eq!(&SuffixStore::from_documents(vec![corpus.clone()]).unwrap(), &store);
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
        assert!(SuffixStore::from_parts(t.clone(), vec![1, 0, 2, 3])
            .unwrap_err()
            .contains("not sorted"));
        assert!(SuffixStore::from_parts(t, vec![0, 1, 2])
            .unwrap_err()
            .contains("4 tokens but 3 suffixes"));
        assert!(SuffixStore::build(&[vec![SEPARATOR]]).is_err());
    }
}
