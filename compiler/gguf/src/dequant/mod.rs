//! Dequantization of tensor data to f32, split across rayon's pool for large
//! tensors.

mod blocks;

use half::{bf16, f16};
use rayon::prelude::*;

use crate::error::{GgufError, Result};
use crate::{GgmlType, GgufFile, TensorInfo};
use blocks::{
    as_blocks, Block, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8_0,
};

/// Elements handled by one parallel task (a multiple of every block size).
const CHUNK_ELEMS: usize = 1 << 16;

/// Whether `ty` can be dequantized by this crate.
pub(crate) fn supported(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(
        ty,
        F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4_K | Q5_K | Q6_K
    )
}

/// Dequantizes `data` (the raw bytes of `out.len()` elements of type `ty`)
/// into `out`. Returns `false` when `ty` is not supported or `data` does not
/// hold exactly `out.len()` elements of it.
fn dequantize_slice(ty: GgmlType, data: &[u8], out: &mut [f32]) -> bool {
    let block = ty.block_size();
    let whole = out.len().is_multiple_of(block)
        && (out.len() / block).checked_mul(ty.type_size()) == Some(data.len());
    if !whole {
        return false;
    }
    match ty {
        GgmlType::F32 => plain(data, out, f32::from_le_bytes),
        GgmlType::F16 => plain(data, out, |b| f16::from_le_bytes(b).to_f32()),
        GgmlType::BF16 => plain(data, out, |b| bf16::from_le_bytes(b).to_f32()),
        GgmlType::Q4_0 => return quantized::<BlockQ4_0>(data, out),
        GgmlType::Q4_1 => return quantized::<BlockQ4_1>(data, out),
        GgmlType::Q5_0 => return quantized::<BlockQ5_0>(data, out),
        GgmlType::Q5_1 => return quantized::<BlockQ5_1>(data, out),
        GgmlType::Q8_0 => return quantized::<BlockQ8_0>(data, out),
        GgmlType::Q4_K => return quantized::<BlockQ4K>(data, out),
        GgmlType::Q5_K => return quantized::<BlockQ5K>(data, out),
        GgmlType::Q6_K => return quantized::<BlockQ6K>(data, out),
        _ => return false,
    }
    true
}

/// Plain element types: `N` bytes per element.
fn plain<const N: usize>(data: &[u8], out: &mut [f32], f: impl Fn([u8; N]) -> f32 + Sync) {
    let job = |(o, d): (&mut [f32], &[u8])| {
        for (y, b) in o.iter_mut().zip(d.chunks_exact(N)) {
            if let Ok(b) = <[u8; N]>::try_from(b) {
                *y = f(b);
            }
        }
    };
    if out.len() <= CHUNK_ELEMS {
        job((out, data));
    } else {
        out.par_chunks_mut(CHUNK_ELEMS)
            .zip(data.par_chunks(CHUNK_ELEMS * N))
            .for_each(job);
    }
}

fn quantized<B: Block>(data: &[u8], out: &mut [f32]) -> bool {
    let Some(blocks) = as_blocks::<B>(data) else {
        return false;
    };
    let job = |(o, bs): (&mut [f32], &[B])| {
        for (y, b) in o.chunks_exact_mut(B::QK).zip(bs) {
            b.dequantize(y);
        }
    };
    if out.len() <= CHUNK_ELEMS {
        job((out, blocks));
    } else {
        out.par_chunks_mut(CHUNK_ELEMS)
            .zip(blocks.par_chunks(CHUNK_ELEMS / B::QK))
            .for_each(job);
    }
    true
}

impl GgufFile {
    /// Dequantizes a tensor to a new f32 vector in GGUF element order
    /// (row-major for [`TensorInfo::shape`]).
    ///
    /// Supported types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
    /// Q5_K, Q6_K; the values are those of ggml's `dequantize_row_*`. Other
    /// types give [`GgufError::UnsupportedType`].
    pub fn dequantize(&self, info: &TensorInfo) -> Result<Vec<f32>> {
        self.check_supported(info)?;
        // The data must be in the file before its f32 form is allocated.
        self.tensor_data(info)?;
        let mut out = vec![0f32; info.n_elements()];
        self.dequantize_into(info, &mut out)?;
        Ok(out)
    }

    /// Dequantizes a tensor into a caller's buffer, which must hold exactly
    /// [`TensorInfo::n_elements`] values; large tensors are split across
    /// rayon's thread pool.
    pub fn dequantize_into(&self, info: &TensorInfo, out: &mut [f32]) -> Result<()> {
        self.check_supported(info)?;
        let n = info.n_elements();
        if out.len() != n {
            return Err(GgufError::BufferSize {
                path: self.path().to_path_buf(),
                tensor: info.name.clone(),
                expected: n,
                actual: out.len(),
            });
        }
        if !n.is_multiple_of(info.ggml_type.block_size()) {
            return Err(GgufError::Malformed {
                path: self.path().to_path_buf(),
                reason: format!(
                    "tensor `{}` has {n} elements, not a multiple of the {} block size {}",
                    info.name,
                    info.ggml_type,
                    info.ggml_type.block_size()
                ),
            });
        }
        let data = self.tensor_data(info)?;
        if dequantize_slice(info.ggml_type, data, out) {
            Ok(())
        } else {
            Err(GgufError::Malformed {
                path: self.path().to_path_buf(),
                reason: format!(
                    "tensor `{}`: {} bytes of {} do not hold {n} elements",
                    info.name,
                    data.len(),
                    info.ggml_type
                ),
            })
        }
    }

    fn check_supported(&self, info: &TensorInfo) -> Result<()> {
        if supported(info.ggml_type) {
            Ok(())
        } else {
            Err(GgufError::UnsupportedType {
                path: self.path().to_path_buf(),
                tensor: info.name.clone(),
                ty: info.ggml_type,
            })
        }
    }
}
