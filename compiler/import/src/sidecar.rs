//! The weight sidecar: a safetensors file of f32 tensors, written one tensor
//! at a time so that a model never needs its f32 form in memory at once.

use std::{borrow::Cow, path::Path};

use ditto_files::Staged;

use crate::ImportError;
use indicatif::{ProgressBar, ProgressStyle};
use safetensors::{tensor::View, Dtype};

/// Produces a tensor's f32 values on demand.
pub type Producer<'a> = Box<dyn Fn() -> Result<Vec<f32>, String> + Sync + 'a>;

/// A tensor to write: canonical name, row-major shape, and how to make it.
pub struct PendingTensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub produce: Producer<'a>,
}

struct LazyTensor<'a, 'p> {
    tensor: PendingTensor<'a>,
    progress: &'p ProgressBar,
    failure: &'p std::sync::Mutex<Option<String>>,
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
        let values = match (self.tensor.produce)() {
            Ok(values) if values.len() * 4 == self.data_len() => values,
            Ok(values) => {
                self.fail(format!(
                    "{}: produced {} values, expected {}",
                    self.tensor.name,
                    values.len(),
                    self.data_len() / 4
                ));
                vec![0.0; self.data_len() / 4]
            }
            Err(message) => {
                self.fail(message);
                vec![0.0; self.data_len() / 4]
            }
        };
        self.progress.inc(1);
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.tensor.shape.iter().product::<usize>() * 4
    }
}

impl LazyTensor<'_, '_> {
    fn fail(&self, message: String) {
        let mut failure = self.failure.lock().unwrap();
        failure.get_or_insert(message);
    }
}

/// Writes `tensors` as f32 safetensors for `path`, with a progress bar, into
/// a temporary file beside it that the caller commits (`path` itself is
/// untouched until then, and the temporary file is removed on failure).
pub fn write(path: &Path, tensors: Vec<PendingTensor>) -> Result<Staged, ImportError> {
    let progress = ProgressBar::new(tensors.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
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
    if let Some(message) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(ImportError::file(path, message));
    }
    result.map_err(|e| ImportError::file(path, format!("cannot write: {e}")))?;
    Ok(staged)
}
