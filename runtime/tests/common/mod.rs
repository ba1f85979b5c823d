//! Test helpers: payload files, tiny tokenizers and a fake model that
//! implements the entry-point ABI of contracts.md §3 by a trivial rule.
#![allow(dead_code)]

pub mod fake_model;
pub mod payload_file;
pub mod tiny_tokenizer;
