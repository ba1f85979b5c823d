//! The model data appended to the executable (docs/contracts.md §2): the
//! weight blob (each tensor 64-byte aligned, at offsets compiled into the
//! code), the tokenizer files, a datastore file when one is baked in, and a
//! JSON manifest found from the end.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use ditto_contracts::payload::{
    section_start, IndexEntry, Manifest, ModelConfig, Section, DATASTORE, FORMAT, TOKENIZER,
    TOKENIZER_CONFIG, WEIGHTS,
};
use ditto_ir::melior::ir::Module;
use ditto_passes::weights::{Element, WeightUse};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::CodegenError;

/// Where each weight goes in the blob, computed before codegen.
pub struct WeightLayout {
    /// Each tensor's place in the blob, in blob order.
    pub placements: Vec<ditto_passes::weights::Placement>,
    pub total: u64,
    sidecar: PathBuf,
}

impl WeightLayout {
    /// Lays out the weights a module uses (`ditto_passes::weights::layout`),
    /// checking each against the sidecar: present, and of the element type
    /// and shape the module's `memref` type says.
    pub fn new(sidecar: &Path, used: &[WeightUse]) -> Result<Self, CodegenError> {
        let mmap = map(sidecar)?;
        let tensors = SafeTensors::deserialize(&mmap).map_err(|e| {
            CodegenError::new(format!(
                "{}: not a valid weight file: {e}",
                sidecar.display()
            ))
        })?;
        let (placements, total) = ditto_passes::weights::layout(used)?;
        for placement in &placements {
            let name = &placement.name;
            let view = tensors.tensor(name).map_err(|_| {
                CodegenError::new(format!(
                    "{}: no tensor \"{name}\" (used by a ditto.weight op)",
                    sidecar.display()
                ))
            })?;
            let dtype = match placement.element {
                Element::F32 => Dtype::F32,
                Element::F16 => Dtype::F16,
                Element::I8 => Dtype::U8,
            };
            if view.dtype() != dtype || view.shape() != placement.shape.as_slice() {
                return Err(CodegenError::new(format!(
                    "{}: tensor \"{name}\" is {:?} {:?}, but the module uses it as {:?} {:?}",
                    sidecar.display(),
                    view.dtype(),
                    view.shape(),
                    dtype,
                    placement.shape
                )));
            }
        }
        Ok(WeightLayout {
            placements,
            total,
            sidecar: sidecar.to_path_buf(),
        })
    }

    pub fn offsets(&self) -> std::collections::HashMap<String, u64> {
        ditto_passes::weights::offsets(&self.placements)
    }

    /// Checks that the offsets `ditto-lower-weights` compiled into `module`
    /// are this layout's, entry for entry: the payload written next to the
    /// code must be the one the code reads.
    pub fn check_compiled(&self, module: &Module) -> Result<(), CodegenError> {
        let compiled = ditto_passes::weights::recorded_layout(module)?;
        let planned: Vec<(&str, u64)> = self
            .placements
            .iter()
            .map(|p| (p.name.as_str(), p.offset))
            .collect();
        let compiled: Vec<(&str, u64)> = compiled.iter().map(|(n, o)| (n.as_str(), *o)).collect();
        if let Some(((name, offset), (compiled_name, compiled_offset))) = planned
            .iter()
            .zip(&compiled)
            .find(|(planned, compiled)| planned != compiled)
        {
            return Err(CodegenError::new(format!(
                "internal error: the payload puts \"{name}\" at byte {offset}, but the code was compiled to read \"{compiled_name}\" at byte {compiled_offset}"
            )));
        }
        if planned.len() != compiled.len() {
            return Err(CodegenError::new(format!(
                "internal error: the payload holds {} weights, but the code was compiled to read {}",
                planned.len(),
                compiled.len()
            )));
        }
        Ok(())
    }

    fn write(&self, out: &mut File) -> Result<(), CodegenError> {
        let mmap = map(&self.sidecar)?;
        let tensors = SafeTensors::deserialize(&mmap)
            .map_err(|e| CodegenError::new(format!("{}: {e}", self.sidecar.display())))?;
        let start = out.stream_position().map_err(io)?;
        for placement in &self.placements {
            let view = tensors
                .tensor(&placement.name)
                .expect("checked when laid out");
            out.seek(SeekFrom::Start(start + placement.offset))
                .map_err(io)?;
            out.write_all(view.data()).map_err(io)?;
        }
        out.seek(SeekFrom::Start(start + self.total)).map_err(io)?;
        Ok(())
    }
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

/// Appends the payload to the linked executable at `exe`: the weights, the
/// tokenizer files and, when given, a datastore file (checked by the caller).
pub fn append(
    exe: &Path,
    weights: &WeightLayout,
    tokenizer: &Path,
    tokenizer_config: &Path,
    datastore: Option<&Path>,
    model: ModelConfig,
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
    let mut sections = BTreeMap::new();
    let end = out.seek(SeekFrom::End(0)).map_err(io)?;
    let start = section_start(end);
    out.seek(SeekFrom::Start(start)).map_err(io)?;
    weights.write(&mut out)?;
    sections.insert(
        WEIGHTS.to_string(),
        Section {
            offset: start,
            len: weights.total,
        },
    );
    let mut position = start + weights.total;
    for (key, bytes) in [
        (TOKENIZER, &tokenizer_bytes),
        (TOKENIZER_CONFIG, &tokenizer_config_bytes),
    ] {
        let start = section_start(position);
        out.seek(SeekFrom::Start(start)).map_err(io)?;
        out.write_all(bytes).map_err(io)?;
        let len = bytes.len() as u64;
        sections.insert(key.to_string(), Section { offset: start, len });
        position = start + len;
    }
    if let Some(datastore) = datastore {
        let start = section_start(position);
        out.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut file = File::open(datastore)
            .map_err(|e| CodegenError::new(format!("{}: cannot open: {e}", datastore.display())))?;
        let len = std::io::copy(&mut file, &mut out).map_err(|e| {
            CodegenError::new(format!(
                "copying {} into the payload: {e}",
                datastore.display()
            ))
        })?;
        sections.insert(DATASTORE.to_string(), Section { offset: start, len });
    }
    // Where each tensor sits in the weights section, for tools that map a
    // pointer back to a tensor (the runtime's --calibrate).
    let weights_index = weights
        .placements
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                IndexEntry {
                    offset: p.offset,
                    bytes: p.bytes,
                    shape: p.shape.clone(),
                },
            )
        })
        .collect();
    let manifest = Manifest {
        format: FORMAT,
        sections,
        model,
        weights_index,
    };
    out.write_all(&manifest.trailer()).map_err(io)?;
    Ok(())
}
