//! The model data appended to the executable (docs/contracts.md §2): the
//! weight blob (each tensor 64-byte aligned, at offsets compiled into the
//! code), the tokenizer files, and a JSON manifest found from the end.

use std::{
    collections::HashMap,
    fs::File,
    io::{Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::json;

use crate::CodegenError;

const SECTION_ALIGN: u64 = 4096;
const TENSOR_ALIGN: u64 = 64;
const MAGIC: &[u8; 8] = b"DITTOPAY";

/// Where each weight goes in the blob, computed before codegen.
pub struct WeightLayout {
    /// (name, byte offset, byte length), in blob order.
    pub entries: Vec<(String, u64, u64)>,
    pub total: u64,
    sidecar: PathBuf,
}

impl WeightLayout {
    /// Lays out the weights a module uses, checking each against the sidecar:
    /// present, f32, and of the shape the module's `memref` type says.
    pub fn new(sidecar: &Path, used: &[(String, String)]) -> Result<Self, CodegenError> {
        let mmap = map(sidecar)?;
        let tensors = SafeTensors::deserialize(&mmap).map_err(|e| {
            CodegenError::new(format!(
                "{}: not a valid weight file: {e}",
                sidecar.display()
            ))
        })?;
        let mut entries: Vec<(String, u64, u64)> = Vec::new();
        let mut offset = 0u64;
        for (name, ty) in used {
            if entries.iter().any(|(n, _, _)| n == name) {
                continue;
            }
            let view = tensors.tensor(name).map_err(|_| {
                CodegenError::new(format!(
                    "{}: no tensor \"{name}\" (used by a ditto.weight op)",
                    sidecar.display()
                ))
            })?;
            let expected = memref_shape(ty).ok_or_else(|| {
                CodegenError::new(format!("ditto.weight \"{name}\" has unsupported type {ty}"))
            })?;
            if view.dtype() != Dtype::F32 || view.shape() != expected.as_slice() {
                return Err(CodegenError::new(format!(
                    "{}: tensor \"{name}\" is {:?} {:?}, but the module uses it as {ty}",
                    sidecar.display(),
                    view.dtype(),
                    view.shape()
                )));
            }
            let length = view.data().len() as u64;
            entries.push((name.clone(), offset, length));
            offset = (offset + length).next_multiple_of(TENSOR_ALIGN);
        }
        Ok(WeightLayout {
            entries,
            total: offset,
            sidecar: sidecar.to_path_buf(),
        })
    }

    pub fn offsets(&self) -> HashMap<String, u64> {
        self.entries
            .iter()
            .map(|(name, offset, _)| (name.clone(), *offset))
            .collect()
    }

    fn write(&self, out: &mut File) -> Result<(), CodegenError> {
        let mmap = map(&self.sidecar)?;
        let tensors = SafeTensors::deserialize(&mmap)
            .map_err(|e| CodegenError::new(format!("{}: {e}", self.sidecar.display())))?;
        let start = out.stream_position().map_err(io)?;
        for (name, offset, _) in &self.entries {
            let view = tensors.tensor(name).expect("checked when laid out");
            out.seek(SeekFrom::Start(start + offset)).map_err(io)?;
            out.write_all(view.data()).map_err(io)?;
        }
        out.seek(SeekFrom::Start(start + self.total)).map_err(io)?;
        Ok(())
    }
}

/// `memref<896x128xf32>` → [896, 128].
fn memref_shape(ty: &str) -> Option<Vec<usize>> {
    let inner = ty.strip_prefix("memref<")?.strip_suffix("xf32>")?;
    inner.split('x').map(|d| d.parse().ok()).collect()
}

fn map(path: &Path) -> Result<Mmap, CodegenError> {
    let file = File::open(path)
        .map_err(|e| CodegenError::new(format!("{}: cannot open: {e}", path.display())))?;
    // SAFETY: read-only mapping of a file nobody modifies while we read it.
    unsafe { Mmap::map(&file) }
        .map_err(|e| CodegenError::new(format!("{}: cannot map: {e}", path.display())))
}

fn io(e: std::io::Error) -> CodegenError {
    CodegenError::new(format!("writing the payload: {e}"))
}

/// Appends the payload to the linked executable at `exe`.
pub fn append(
    exe: &Path,
    weights: &WeightLayout,
    tokenizer: &Path,
    tokenizer_config: &Path,
    model: serde_json::Value,
) -> Result<(), CodegenError> {
    let read = |p: &Path| {
        std::fs::read(p)
            .map_err(|e| CodegenError::new(format!("{}: cannot read: {e}", p.display())))
    };
    let tokenizer_bytes = read(tokenizer)?;
    let tokenizer_config_bytes = read(tokenizer_config)?;
    let mut out = std::fs::OpenOptions::new()
        .append(false)
        .write(true)
        .open(exe)
        .map_err(|e| CodegenError::new(format!("{}: cannot open: {e}", exe.display())))?;
    let mut sections = serde_json::Map::new();
    let mut position = out.seek(SeekFrom::End(0)).map_err(io)?;
    let start_section = |out: &mut File, position: &mut u64| -> Result<u64, CodegenError> {
        let start = position.next_multiple_of(SECTION_ALIGN);
        out.seek(SeekFrom::Start(start)).map_err(io)?;
        Ok(start)
    };
    let start = start_section(&mut out, &mut position)?;
    weights.write(&mut out)?;
    sections.insert(
        "weights".into(),
        json!({"offset": start, "len": weights.total}),
    );
    position = start + weights.total;
    for (key, bytes) in [
        ("tokenizer", &tokenizer_bytes),
        ("tokenizer_config", &tokenizer_config_bytes),
    ] {
        let start = start_section(&mut out, &mut position)?;
        out.write_all(bytes).map_err(io)?;
        sections.insert(key.into(), json!({"offset": start, "len": bytes.len()}));
        position = start + bytes.len() as u64;
    }
    let manifest = json!({"format": 1, "sections": sections, "model": model}).to_string();
    out.write_all(manifest.as_bytes()).map_err(io)?;
    out.write_all(&(manifest.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(MAGIC).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::memref_shape;

    #[test]
    fn memref_shapes() {
        assert_eq!(memref_shape("memref<896x128xf32>"), Some(vec![896, 128]));
        assert_eq!(memref_shape("memref<7xf32>"), Some(vec![7]));
        assert_eq!(memref_shape("memref<?x7xf32>"), None);
        assert_eq!(memref_shape("memref<7xf16>"), None);
    }
}
