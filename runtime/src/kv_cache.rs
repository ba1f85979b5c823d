//! The key and value caches, `[n_layers, ctx, n_kv_heads, head_dim]` f32
//! each, written by the generated code at each position it runs.
//!
//! Allocated zeroed (calloc): pages are backed only once a position is
//! written, so a long `--ctx` costs address space, not memory.

use std::alloc::{alloc_zeroed, Layout};

use crate::model::MemRefDescriptor;
use crate::payload::ModelConfig;
use crate::Error;

pub struct KvCache {
    /// [n_layers, ctx, n_kv_heads, head_dim]
    k: Vec<f32>,
    /// [n_layers, ctx, n_kv_heads, head_dim]
    v: Vec<f32>,
    shape: [usize; 4],
}

impl KvCache {
    pub fn new(model: &ModelConfig, ctx: usize) -> Result<KvCache, Error> {
        let shape = [model.n_layers, ctx, model.n_kv_heads, model.head_dim];
        let len = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or(Error::OutOfMemory {
                what: "KV cache",
                bytes: usize::MAX,
            })?;
        Ok(KvCache {
            k: zeroed(len, "K cache")?,
            v: zeroed(len, "V cache")?,
            shape,
        })
    }

    /// Positions the cache holds.
    pub fn ctx(&self) -> usize {
        self.shape[1]
    }

    /// Bytes of both caches.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * size_of::<f32>()
    }

    /// Whether this cache has the layout `model` writes.
    pub fn fits(&self, model: &ModelConfig) -> bool {
        self.shape[0] == model.n_layers
            && self.shape[2] == model.n_kv_heads
            && self.shape[3] == model.head_dim
    }

    /// Descriptors of (k, v) for one call of the generated code.
    pub fn memrefs(&mut self) -> (MemRefDescriptor<f32, 4>, MemRefDescriptor<f32, 4>) {
        (
            MemRefDescriptor::contiguous(self.k.as_mut_ptr(), self.shape),
            MemRefDescriptor::contiguous(self.v.as_mut_ptr(), self.shape),
        )
    }
}

/// `vec![0.0; len]` that reports failure instead of aborting.
fn zeroed(len: usize, what: &'static str) -> Result<Vec<f32>, Error> {
    let bytes = len.saturating_mul(size_of::<f32>());
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = Layout::array::<f32>(len).map_err(|_| Error::OutOfMemory { what, bytes })?;
    // SAFETY: layout has non-zero size; a non-null result is `len` zeroed
    // f32s from the global allocator, which is what Vec::from_raw_parts needs.
    unsafe {
        let ptr = alloc_zeroed(layout).cast::<f32>();
        if ptr.is_null() {
            return Err(Error::OutOfMemory { what, bytes });
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}
