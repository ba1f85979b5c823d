//! The model data appended to the executable (contracts.md §2):
//!
//! ```text
//! [ELF image][pad to 4096][section]...[pad to 4096][section][manifest JSON][u64 LE manifest length]["DITTOPAY"]
//! ```
//!
//! The whole file is mapped read-only; sections are borrowed straight from
//! the mapping, so the weights are never copied (pages are read in as the
//! generated code touches them).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Deserialize;

use crate::Error;

/// The last 8 bytes of an executable that carries a payload.
pub const MAGIC: &[u8; 8] = b"DITTOPAY";
/// `[u64 LE manifest length][MAGIC]`
pub const TRAILER_LEN: usize = 16;
/// Every section starts on this boundary (from the start of the file).
pub const SECTION_ALIGN: u64 = 4096;
/// The manifest `format` this runtime reads.
pub const FORMAT: u32 = 1;

/// The sections every payload must have.
pub const WEIGHTS: &str = "weights";
pub const TOKENIZER: &str = "tokenizer";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config";

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub sections: BTreeMap<String, Section>,
    pub model: ModelConfig,
    /// Where each tensor sits in the weights section.
    #[serde(default)]
    pub weights_index: std::collections::HashMap<String, IndexEntry>,
}

/// One tensor of the weights section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexEntry {
    pub offset: u64,
    pub bytes: u64,
    pub shape: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
}

/// What the runtime needs to know about the compiled model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelConfig {
    pub arch: String,
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub max_ctx: usize,
}

/// An opened payload: the mapped file and its parsed manifest.
pub struct Payload {
    path: PathBuf,
    map: Mmap,
    manifest: Manifest,
}

impl Payload {
    /// The payload of the running executable.
    pub fn open_self() -> Result<Payload, Error> {
        Payload::open(Path::new("/proc/self/exe"))
    }

    /// Maps `path` and checks trailer, manifest and sections.
    pub fn open(path: &Path) -> Result<Payload, Error> {
        // Name the real file in messages, not /proc/self/exe.
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let file = File::open(path).map_err(|e| Error::io(format!("{}", shown.display()), e))?;
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(format!("{}", shown.display()), e))?
            .len();
        if file_len < TRAILER_LEN as u64 {
            return Err(Error::NoPayload { path: shown });
        }
        // SAFETY: the mapping is read-only and private; the executable is
        // not expected to change under us while it runs (as with any binary).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::io(format!("mapping {}", shown.display()), e))?;
        let manifest = parse_trailer(&map).map_err(|problem| match problem {
            None => Error::NoPayload {
                path: shown.clone(),
            },
            Some(problem) => Error::BadPayload {
                path: shown.clone(),
                problem,
            },
        })?;
        Ok(Payload {
            path: shown,
            map,
            manifest,
        })
    }

    /// The file the payload came from (resolved, for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn model(&self) -> &ModelConfig {
        &self.manifest.model
    }

    /// The bytes of a section, borrowed from the mapping.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        let s = self.manifest.sections.get(name)?;
        Some(&self.map[s.offset as usize..(s.offset + s.len) as usize])
    }

    /// The weights, page-aligned, exactly as `dittoc` laid them out.
    pub fn weights(&self) -> &[u8] {
        self.section(WEIGHTS).expect("checked in open")
    }

    pub fn tokenizer_json(&self) -> &[u8] {
        self.section(TOKENIZER).expect("checked in open")
    }

    pub fn tokenizer_config_json(&self) -> &[u8] {
        self.section(TOKENIZER_CONFIG).expect("checked in open")
    }
}

/// Reads the trailer and manifest at the end of `file`.
/// `Err(None)`: no payload at all; `Err(Some(problem))`: a broken one.
fn parse_trailer(file: &[u8]) -> Result<Manifest, Option<String>> {
    let file_len = file.len() as u64;
    let trailer = &file[file.len() - TRAILER_LEN..];
    if &trailer[8..] != MAGIC {
        return Err(None);
    }
    let manifest_len = u64::from_le_bytes(trailer[..8].try_into().unwrap());
    let manifest_end = file_len - TRAILER_LEN as u64;
    if manifest_len == 0 || manifest_len > manifest_end {
        return Err(Some(format!(
            "corrupt trailer: manifest length {manifest_len} does not fit in a file of {file_len} bytes"
        )));
    }
    let manifest_start = manifest_end - manifest_len;
    let json = &file[manifest_start as usize..manifest_end as usize];
    let manifest: Manifest = serde_json::from_slice(json).map_err(|e| {
        Some(format!(
            "manifest is not valid JSON of the expected shape: {e}"
        ))
    })?;
    check_manifest(&manifest, manifest_start).map_err(Some)?;
    Ok(manifest)
}

fn check_manifest(manifest: &Manifest, manifest_start: u64) -> Result<(), String> {
    if manifest.format != FORMAT {
        return Err(format!(
            "manifest format {} is not supported (this runtime reads format {FORMAT}); rebuild with a matching dittoc",
            manifest.format
        ));
    }
    for required in [WEIGHTS, TOKENIZER, TOKENIZER_CONFIG] {
        if !manifest.sections.contains_key(required) {
            return Err(format!("manifest has no \"{required}\" section"));
        }
    }
    for (name, s) in &manifest.sections {
        if s.offset % SECTION_ALIGN != 0 {
            return Err(format!(
                "section \"{name}\" starts at {}, not on a {SECTION_ALIGN}-byte boundary",
                s.offset
            ));
        }
        let end = s.offset.checked_add(s.len);
        if end.is_none_or(|end| end > manifest_start) {
            return Err(format!(
                "section \"{name}\" (offset {}, len {}) runs past the manifest at {manifest_start}",
                s.offset, s.len
            ));
        }
    }
    let m = &manifest.model;
    let dims = [
        ("n_layers", m.n_layers),
        ("d_model", m.d_model),
        ("n_heads", m.n_heads),
        ("n_kv_heads", m.n_kv_heads),
        ("head_dim", m.head_dim),
        ("vocab", m.vocab),
        ("max_ctx", m.max_ctx),
    ];
    for (name, value) in dims {
        if value == 0 {
            return Err(format!("model.{name} is 0"));
        }
    }
    if m.vocab > i32::MAX as usize {
        return Err(format!("model.vocab {} does not fit token ids", m.vocab));
    }
    Ok(())
}
