//! The model data appended to the executable (docs/contracts.md §2):
//!
//! ```text
//! [ELF image][pad to 4096][section]...[pad to 4096][section][manifest JSON][u64 LE manifest length]["DITTOPAY"]
//! ```
//!
//! `dittoc` writes the sections and ends the file with [`Manifest::trailer`];
//! the runtime finds the manifest from the end with [`read_trailer`], which
//! checks it against the file before anything trusts it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::ModelConfig;

/// The last 8 bytes of an executable that carries a payload.
pub const MAGIC: &[u8; 8] = b"DITTOPAY";
/// `[u64 LE manifest length][MAGIC]`
pub const TRAILER_LEN: usize = 16;
/// Every section starts on this boundary (from the start of the file).
pub const SECTION_ALIGN: u64 = 4096;
/// The manifest `format` written and read.
pub const FORMAT: u32 = 1;

/// The sections every payload has.
pub const WEIGHTS: &str = "weights";
pub const TOKENIZER: &str = "tokenizer";
pub const TOKENIZER_CONFIG: &str = "tokenizer_config";
pub const REQUIRED_SECTIONS: [&str; 3] = [WEIGHTS, TOKENIZER, TOKENIZER_CONFIG];
/// An optional section: a datastore file (`ditto_datastore::file`) baked in
/// by `dittoc --datastore`, whose fingerprint is the tokenizer section's.
pub const DATASTORE: &str = "datastore";

/// The fingerprint of a tokenizer, which a datastore built with it carries:
/// the SHA-256 of its `tokenizer.json` bytes (the tokenizer section's, the
/// module's `ditto.tokenizer` sidecar, which `dittoc quantize` copies byte
/// for byte).
pub fn tokenizer_fingerprint(tokenizer_json: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(tokenizer_json).into()
}

/// Where the next section starts after `position`.
pub fn section_start(position: u64) -> u64 {
    position.next_multiple_of(SECTION_ALIGN)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub sections: BTreeMap<String, Section>,
    pub model: ModelConfig,
    /// Where each tensor sits in the weights section.
    #[serde(default)]
    pub weights_index: BTreeMap<String, IndexEntry>,
}

/// One tensor of the weights section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub offset: u64,
    pub bytes: u64,
    pub shape: Vec<usize>,
}

/// A byte range of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
}

impl Manifest {
    /// The bytes that end the file: the manifest's JSON, its length and
    /// [`MAGIC`].
    pub fn trailer(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("a manifest serializes");
        let len = out.len() as u64;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(MAGIC);
        out
    }

    /// Checks what readers rely on against a file whose manifest starts at
    /// `manifest_start`: the format, the required sections, each section
    /// aligned and inside the file before the manifest, every index entry
    /// inside the weights section, and the model's dimensions.
    pub fn check(&self, manifest_start: u64) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "manifest format {} is not supported (this runtime reads format {FORMAT}); rebuild with a matching dittoc",
                self.format
            ));
        }
        for required in REQUIRED_SECTIONS {
            if !self.sections.contains_key(required) {
                return Err(format!("manifest has no \"{required}\" section"));
            }
        }
        for (name, s) in &self.sections {
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
        let weights = self.sections[WEIGHTS].len;
        for (name, entry) in &self.weights_index {
            let end = entry.offset.checked_add(entry.bytes);
            if end.is_none_or(|end| end > weights) {
                return Err(format!(
                    "weights_index \"{name}\" (offset {}, {} bytes) runs past the weights section of {weights} bytes",
                    entry.offset, entry.bytes
                ));
            }
        }
        self.model.check()
    }
}

/// Why [`read_trailer`] found no usable manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailerError {
    /// The file does not end with [`MAGIC`]: it carries no payload.
    NoPayload,
    /// It does, but the trailer or manifest is broken.
    Bad(String),
}

/// Reads and checks the manifest at the end of `file`.
pub fn read_trailer(file: &[u8]) -> Result<Manifest, TrailerError> {
    if file.len() < TRAILER_LEN {
        return Err(TrailerError::NoPayload);
    }
    let file_len = file.len() as u64;
    let trailer = &file[file.len() - TRAILER_LEN..];
    if &trailer[8..] != MAGIC {
        return Err(TrailerError::NoPayload);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&trailer[..8]);
    let manifest_len = u64::from_le_bytes(len);
    let manifest_end = file_len - TRAILER_LEN as u64;
    if manifest_len == 0 || manifest_len > manifest_end {
        return Err(TrailerError::Bad(format!(
            "corrupt trailer: manifest length {manifest_len} does not fit in a file of {file_len} bytes"
        )));
    }
    let manifest_start = manifest_end - manifest_len;
    let json = &file[manifest_start as usize..manifest_end as usize];
    let manifest: Manifest = serde_json::from_slice(json).map_err(|e| {
        TrailerError::Bad(format!(
            "manifest is not valid JSON of the expected shape: {e}"
        ))
    })?;
    manifest.check(manifest_start).map_err(TrailerError::Bad)?;
    Ok(manifest)
}
