//! Retrieval for speculative decoding (CodeSwift, REST): given the tokens
//! of the running context, find where its suffix occurred before and
//! propose what followed it as a draft for the model to verify.
//!
//! The crate knows nothing of the model: tokens are `u32` ids, texts are
//! tokenized by a function the caller passes in.
//!
//! | module | store |
//! |---|---|
//! | [`suffix`] | [`SuffixStore`]: a suffix array over a fixed corpus (the user's repository, a common code corpus), built once |
//! | [`context`] | [`ContextStore`]: an n-gram index over the running context (the prompt and what the model wrote), updated per token |
//! | [`draft`] | [`Draft`]: the continuations of a match, counted in a trie, and the most frequent path through it |
//! | [`repo`] | walking a repository (`.gitignore` honoured, code files only) into a corpus |
//! | [`file`] | the datastore file: a suffix store with its tokenizer's fingerprint, checked on reading |

pub mod context;
pub mod draft;
pub mod file;
pub mod repo;
pub mod suffix;

pub use context::ContextStore;
pub use draft::Draft;
pub use suffix::SuffixStore;

/// A match of the context's suffix in a store: how many tokens matched and
/// the draft that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieved {
    /// Tokens of the context's suffix that matched.
    pub matched: usize,
    /// The proposed continuation (possibly empty).
    pub draft: Draft,
}
