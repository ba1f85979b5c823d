//! The model data appended to the executable (contracts.md §2):
//!
//! ```text
//! [ELF image][pad to 4096][section]...[pad to 4096][section][manifest JSON][u64 LE manifest length]["DITTOPAY"]
//! ```
//!
//! The whole file is mapped read-only; sections are borrowed straight from
//! the mapping, so the weights are never copied (pages are read in as the
//! generated code touches them).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ditto_contracts::model::CompiledShape;
use ditto_contracts::payload::{read_trailer, TrailerError};
pub use ditto_contracts::payload::{
    IndexEntry, Manifest, ModelConfig, Section, DATASTORE, MAGIC, SECTION_ALIGN, TOKENIZER,
    TOKENIZER_CONFIG, TRAILER_LEN, WEIGHTS,
};
use memmap2::Mmap;

use crate::Error;

/// An opened payload: the mapped file and its parsed manifest.
pub struct Payload {
    path: PathBuf,
    /// Shared with the datastore read in place from it.
    map: Arc<Mmap>,
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
        let manifest = read_trailer(&map).map_err(|problem| match problem {
            TrailerError::NoPayload => Error::NoPayload {
                path: shown.clone(),
            },
            TrailerError::Bad(problem) => Error::BadPayload {
                path: shown.clone(),
                problem,
            },
        })?;
        Ok(Payload {
            path: shown,
            map: Arc::new(map),
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

    /// The `datastore` section, if one was baked in: the mapping it lies in
    /// (shared, so the store can read it in place) and where.
    pub fn datastore(&self) -> Option<(ditto_datastore::suffix::SharedBytes, Section)> {
        let section = *self.manifest.sections.get(DATASTORE)?;
        Some((
            Arc::clone(&self.map) as ditto_datastore::suffix::SharedBytes,
            section,
        ))
    }
}
