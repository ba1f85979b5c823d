//! The weight sidecar: a safetensors file of f32 tensors, written one tensor
//! at a time so that a model never needs its f32 form in memory at once.

use std::{borrow::Cow, path::Path};

use ditto_files::Staged;

use crate::ImportError;
use indicatif::{ProgressBar, ProgressStyle};
use safetensors::{tensor::View, Dtype};

/// Produces a tensor's f32 values on demand; an error names the file it
/// read.
pub type Producer<'a> = Box<dyn Fn() -> Result<Vec<f32>, ImportError> + Sync + 'a>;

/// A tensor to write: canonical name, row-major shape, and how to make it.
pub struct PendingTensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub produce: Producer<'a>,
}

/// Why a tensor could not be produced: its producer's error, or a count of
/// values other than its shape's.
enum Failure {
    Source(ImportError),
    Count(String),
}

struct LazyTensor<'a, 'p> {
    tensor: PendingTensor<'a>,
    progress: &'p ProgressBar,
    failure: &'p std::sync::Mutex<Option<Failure>>,
}

impl View for LazyTensor<'_, '_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.tensor.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        self.progress.set_message(self.tensor.name.clone());
        let n = self.data_len() / 4;
        let values = match (self.tensor.produce)() {
            Ok(values) if values.len() == n => values,
            Ok(values) => {
                self.fail(Failure::Count(format!(
                    "{}: produced {} values, expected {n}",
                    self.tensor.name,
                    values.len(),
                )));
                vec![0.0; n]
            }
            Err(e) => {
                self.fail(Failure::Source(e));
                vec![0.0; n]
            }
        };
        self.progress.inc(1);
        let mut bytes = Vec::with_capacity(self.data_len());
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        // Shapes come from validated configurations (far below overflow).
        self.tensor
            .shape
            .iter()
            .fold(4usize, |n, &d| n.saturating_mul(d))
    }
}

impl LazyTensor<'_, '_> {
    fn fail(&self, why: Failure) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert(why);
    }
}

/// Writes `tensors` as f32 safetensors for `path`, with a progress bar, into
/// a temporary file beside it that the caller commits (`path` itself is
/// untouched until then, and the temporary file is removed on failure).
pub fn write(path: &Path, tensors: Vec<PendingTensor>) -> Result<Staged, ImportError> {
    let progress = ProgressBar::new(tensors.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}") {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.set_prefix("writing weights");
    let failure = std::sync::Mutex::new(None);
    let views: Vec<(String, LazyTensor)> = tensors
        .into_iter()
        .map(|tensor| {
            (
                tensor.name.clone(),
                LazyTensor {
                    tensor,
                    progress: &progress,
                    failure: &failure,
                },
            )
        })
        .collect();
    let staged = Staged::new(path)?;
    let result = safetensors::serialize_to_file(views, None, staged.path());
    progress.finish_and_clear();
    match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(Failure::Source(e)) => return Err(e),
        Some(Failure::Count(message)) => return Err(ImportError::file(path, message)),
        None => {}
    }
    result.map_err(|e| ImportError::file(path, format!("cannot write: {e}")))?;
    Ok(staged)
}
