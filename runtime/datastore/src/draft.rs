//! Drafts: the continuations of a match counted in a trie, and the path a
//! linear draft takes through it.

use std::collections::HashMap;

/// A proposed continuation for the model to verify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub tokens: Vec<u32>,
}

/// Continuations sharing prefixes, each node counting how many went through it.
#[derive(Debug, Default)]
pub(crate) struct Trie {
    /// Node 0 is the root; `children[node]` maps a token to (node, count).
    children: Vec<HashMap<u32, (usize, u32)>>,
}

impl Trie {
    /// Adds one continuation.
    pub(crate) fn insert(&mut self, tokens: impl Iterator<Item = u32>) {
        if self.children.is_empty() {
            self.children.push(HashMap::new());
        }
        let mut node = 0;
        for token in tokens {
            let fresh = self.children.len();
            let entry = self.children[node].entry(token).or_insert((fresh, 0));
            entry.1 += 1;
            let child = entry.0;
            if child == fresh {
                self.children.push(HashMap::new());
            }
            node = child;
        }
    }

    /// From the root, the most frequent child at each step (ties: the
    /// smaller token id, so that a draft does not depend on hash order),
    /// to a leaf.
    pub(crate) fn most_frequent_path(&self) -> Draft {
        let mut tokens = Vec::new();
        let mut node = 0;
        while let Some(children) = self.children.get(node) {
            let Some((&token, &(child, _))) = children
                .iter()
                .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(a.0)))
            else {
                break;
            };
            tokens.push(token);
            node = child;
        }
        Draft { tokens }
    }
}
