//! The generated forward pass (contracts.md §3) behind a safe wrapper.
//!
//! The compiler's functions carry `llvm.emit_c_interface`: every memref
//! argument is a pointer to a [`MemRefDescriptor`]. The wrapper builds those
//! from slices and checks every shape before the call.

use std::ffi::c_void;

use crate::kv_cache::KvCache;
use crate::payload::{CompiledShape, ModelConfig};
use crate::Error;

pub use ditto_contracts::memref::MemRefDescriptor;

type Weights = MemRefDescriptor<u8, 1>;
type Cache = MemRefDescriptor<f32, 4>;

/// `_mlir_ciface_ditto_decode(weights, k_cache, v_cache, token, pos, logits[vocab])`
pub type DecodeFn = unsafe extern "C" fn(
    *mut Weights,
    *mut Cache,
    *mut Cache,
    i64,
    i64,
    *mut MemRefDescriptor<f32, 1>,
);
/// `_mlir_ciface_ditto_prefill(weights, k_cache, v_cache, tokens[T], pos, hidden[T, d])`
pub type PrefillFn = unsafe extern "C" fn(
    *mut Weights,
    *mut Cache,
    *mut Cache,
    *mut MemRefDescriptor<i32, 1>,
    i64,
    *mut MemRefDescriptor<f32, 2>,
);
/// `_mlir_ciface_ditto_lm_head(weights, hidden[R, d], logits[R, vocab])`
pub type LmHeadFn = unsafe extern "C" fn(
    *mut Weights,
    *mut MemRefDescriptor<f32, 2>,
    *mut MemRefDescriptor<f32, 2>,
);

/// The three functions of the generated code, and the model shape they
/// were compiled for.
#[derive(Clone, Copy)]
pub struct EntryPoints {
    pub decode: DecodeFn,
    pub prefill: PrefillFn,
    pub lm_head: LmHeadFn,
    pub shape: CompiledShape,
}

impl EntryPoints {
    /// # Safety
    /// Each non-null pointer must be a function with the signature of
    /// contracts.md §3 that reads and writes only within the memrefs it is
    /// given (the generated code of a model of the shape `shape` points
    /// at, a [`CompiledShape`]).
    pub unsafe fn from_raw(
        decode: *const c_void,
        prefill: *const c_void,
        lm_head: *const c_void,
        shape: *const i64,
    ) -> Result<EntryPoints, Error> {
        if decode.is_null() || prefill.is_null() || lm_head.is_null() || shape.is_null() {
            return Err(Error::Setup(
                "ditto_rt_main was given a null pointer (a bug in the generated main)".into(),
            ));
        }
        Ok(EntryPoints {
            decode: std::mem::transmute::<*const c_void, DecodeFn>(decode),
            prefill: std::mem::transmute::<*const c_void, PrefillFn>(prefill),
            lm_head: std::mem::transmute::<*const c_void, LmHeadFn>(lm_head),
            shape: *shape.cast::<CompiledShape>(),
        })
    }

    /// The payload's model configuration against the shape the code was
    /// compiled for: a payload of another model (appended or edited) is
    /// refused before its weights are read.
    pub fn check_manifest(&self, config: &ModelConfig) -> Result<(), Error> {
        config.check_compiled(&self.shape).map_err(Error::Setup)
    }
}

/// The compiled model over its weights.
pub struct Model<'w> {
    entry: EntryPoints,
    weights: &'w [u8],
    config: ModelConfig,
}

impl Drop for Model<'_> {
    fn drop(&mut self) {
        crate::codebook::forget_converted_codebooks();
    }
}

impl<'w> Model<'w> {
    pub fn new(entry: EntryPoints, weights: &'w [u8], config: &ModelConfig) -> Model<'w> {
        crate::codebook::convert_codebooks_in(weights);
        Model {
            entry,
            weights,
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn vocab(&self) -> usize {
        self.config.vocab
    }

    pub fn d_model(&self) -> usize {
        self.config.d_model
    }

    /// One token at `pos`: writes its K/V into `cache` and the next-token
    /// `logits` [vocab].
    pub fn decode(&self, cache: &mut KvCache, token: u32, pos: usize, logits: &mut [f32]) {
        assert!(cache.fits(&self.config) && pos < cache.ctx());
        assert_eq!(logits.len(), self.vocab());
        let mut weights = self.weights_memref();
        let (mut k, mut v) = cache.memrefs();
        let mut logits = MemRefDescriptor::contiguous(logits.as_mut_ptr(), [logits.len()]);
        // SAFETY: shapes checked above; `EntryPoints::from_raw` vouches for the code.
        unsafe {
            (self.entry.decode)(
                &mut weights,
                &mut k,
                &mut v,
                token as i64,
                pos as i64,
                &mut logits,
            )
        }
    }

    /// `tokens` [T] at positions pos..pos+T: writes their K/V into `cache`
    /// and their final-normed hidden states into `hidden` [T, d_model].
    pub fn prefill(&self, cache: &mut KvCache, tokens: &[i32], pos: usize, hidden: &mut [f32]) {
        let t = tokens.len();
        assert!(cache.fits(&self.config) && t > 0 && pos + t <= cache.ctx());
        assert_eq!(hidden.len(), t * self.d_model());
        let mut weights = self.weights_memref();
        let (mut k, mut v) = cache.memrefs();
        // The generated code only reads the tokens.
        let mut tokens = MemRefDescriptor::contiguous(tokens.as_ptr().cast_mut(), [t]);
        let mut hidden = MemRefDescriptor::contiguous(hidden.as_mut_ptr(), [t, self.d_model()]);
        // SAFETY: shapes checked above; `EntryPoints::from_raw` vouches for the code.
        unsafe {
            (self.entry.prefill)(
                &mut weights,
                &mut k,
                &mut v,
                &mut tokens,
                pos as i64,
                &mut hidden,
            )
        }
    }

    /// Logits `[R, vocab]` of final-normed hidden states `hidden` [R, d_model].
    pub fn lm_head(&self, hidden: &[f32], logits: &mut [f32]) {
        let rows = hidden.len() / self.d_model();
        assert!(rows > 0 && hidden.len() == rows * self.d_model());
        assert_eq!(logits.len(), rows * self.vocab());
        let mut weights = self.weights_memref();
        // The generated code only reads the hidden states.
        let mut hidden =
            MemRefDescriptor::contiguous(hidden.as_ptr().cast_mut(), [rows, self.d_model()]);
        let mut logits = MemRefDescriptor::contiguous(logits.as_mut_ptr(), [rows, self.vocab()]);
        // SAFETY: shapes checked above; `EntryPoints::from_raw` vouches for the code.
        unsafe { (self.entry.lm_head)(&mut weights, &mut hidden, &mut logits) }
    }

    /// The weights section, read-only mapped: the generated code only reads it.
    fn weights_memref(&self) -> Weights {
        MemRefDescriptor::contiguous(self.weights.as_ptr().cast_mut(), [self.weights.len()])
    }
}
