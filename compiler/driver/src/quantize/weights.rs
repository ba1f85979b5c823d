//! The weight files: the f32 weights to quantize, read from the input's
//! file, and the output's file (f32 tensors as they were, quantized ones as
//! `NAME#indices` / `NAME#codebooks`).

use std::{borrow::Cow, collections::HashMap, path::Path};

use ditto_contracts::tensor_names::{self, Part};
use ditto_passes::weights::WeightUse;
use safetensors::{tensor::View, Dtype, SafeTensors};

/// One tensor of the output weight file.
pub(super) struct Entry<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl View for &Entry<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Tensor `name` of `source` as f32 values.
pub(super) fn read_f32(source: &SafeTensors, path: &Path, name: &str) -> Result<Vec<f32>, String> {
    let view = source
        .tensor(name)
        .map_err(|_| format!("{}: no tensor \"{name}\"", path.display()))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!("{}: \"{name}\" is not f32", path.display()));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The output's tensors: every entry the rewritten module uses, once; the
/// quantized ones from `quantized`, the others copied from `source`.
pub(super) fn output_entries<'a>(
    used: &[WeightUse],
    quantized: &HashMap<String, ditto_quantize::Quantized>,
    source: &'a SafeTensors,
    source_path: &Path,
) -> Result<Vec<(String, Entry<'a>)>, String> {
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for WeightUse { name, .. } in used {
        if entries.iter().any(|(n, _)| n == name) {
            continue;
        }
        let fresh = tensor_names::split(name)
            .and_then(|(tensor, part)| Some((quantized.get(tensor)?, part)));
        let entry = if let Some((q, part)) = fresh {
            match part {
                Part::Indices => Entry {
                    dtype: Dtype::U8,
                    shape: vec![q.indices.len()],
                    data: Cow::Owned(q.indices.clone()),
                },
                Part::Codebooks => Entry {
                    dtype: Dtype::F16,
                    shape: vec![q.codebooks.len() >> q.bits, 1 << q.bits],
                    data: Cow::Owned(q.codebooks.iter().flat_map(|c| c.to_le_bytes()).collect()),
                },
            }
        } else {
            // f32 tensors, and codebook tensors the input already had.
            let view = source
                .tensor(name)
                .map_err(|_| format!("{}: no tensor \"{name}\"", source_path.display()))?;
            Entry {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                data: Cow::Borrowed(view.data()),
            }
        };
        entries.push((name.clone(), entry));
    }
    Ok(entries)
}
