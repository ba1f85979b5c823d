//! `GgufFile`: opening, header / metadata / tensor directory parsing, and
//! typed metadata accessors.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{GgufError, Result};
use crate::metadata::{read_value, Array, Value};
use crate::reader::{reserve, Cursor};
use crate::GgmlType;

/// ggml's GGML_MAX_DIMS: tensors have at most this many dimensions.
const MAX_DIMS: u32 = 4;
/// Alignment of the data section and of every tensor when the file does not
/// set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// One entry of the tensor directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in GGUF / ggml order: `dims[0]` (ne\[0\]) varies fastest.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Row-major shape (outermost first): the GGUF dims reversed. A linear
    /// weight stored with ne = \[in, out\] has shape `[out, in]`. (Dims
    /// read from a file fit a `usize`; a hand-made one that does not
    /// saturates.)
    pub fn shape(&self) -> Vec<usize> {
        self.dims
            .iter()
            .rev()
            .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect()
    }

    /// Number of elements (saturates instead of overflowing for a
    /// hand-made `TensorInfo`; ones read from a file never overflow).
    pub fn n_elements(&self) -> usize {
        self.dims.iter().fold(1usize, |acc, &d| {
            acc.saturating_mul(usize::try_from(d).unwrap_or(usize::MAX))
        })
    }

    /// Number of bytes the data occupies in the file (saturating, as
    /// [`n_elements`](Self::n_elements)).
    pub fn n_bytes(&self) -> usize {
        self.byte_len()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(usize::MAX)
    }

    /// Number of bytes the data occupies in the file, `None` when the
    /// element count or the byte count overflows a `u64`.
    pub fn byte_len(&self) -> Option<u64> {
        let n = self
            .dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        let block = self.ggml_type.block_size() as u64;
        (n / block).checked_mul(self.ggml_type.type_size() as u64)
    }
}

/// A memory-mapped GGUF file (version 2 or 3, little-endian) with its parsed
/// metadata and tensor directory. Tensor data stays in the mapping until it
/// is asked for.
///
/// The mapping is read-only; as with any mmap, changing the file on disk
/// while it is open is not supported.
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and memory-maps `path`, parses the header, all metadata and the
    /// tensor directory, and checks that every tensor's data lies inside the
    /// file. Never panics on malformed input.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 4 {
            return Err(GgufError::Truncated {
                path,
                what: "magic".into(),
                offset: 0,
                needed: 4,
                file_len: len,
            });
        }
        // SAFETY: the mapping is read-only and private to this struct; the
        // usual mmap caveat (the file must not be truncated meanwhile) is
        // documented on the type.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, map)
    }

    fn parse(path: PathBuf, map: Mmap) -> Result<GgufFile> {
        let bytes: &[u8] = &map;
        let mut c = Cursor::new(bytes, &path);
        let magic = c.take(4, "magic")?;
        if magic != b"GGUF" {
            return Err(GgufError::BadMagic {
                path: path.clone(),
                found: magic.to_vec(),
            });
        }
        let version = c.u32("version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion {
                path: path.clone(),
                version,
            });
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;

        // Metadata.
        let n_kv = c.check_count(n_kv, 13, "metadata key/value pairs")?;
        let mut metadata = Vec::with_capacity(reserve(n_kv));
        let mut key_index = HashMap::with_capacity(reserve(n_kv));
        for i in 0..n_kv {
            let key = c.string(&format!("key of metadata pair #{i}"))?;
            let type_id = c.u32(&format!("value type of metadata key `{key}`"))?;
            let value = read_value(&mut c, type_id, &key)?;
            if key_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(c.malformed(format!("duplicate metadata key `{key}`")));
            }
            metadata.push((key, value));
        }

        let alignment = match key_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => match metadata.get(i).map(|(_, v)| v) {
                Some(&Value::U32(a)) if a != 0 && a.is_power_of_two() => a as u64,
                None => DEFAULT_ALIGNMENT,
                Some(v) => {
                    return Err(c.malformed(format!(
                        "general.alignment must be a power-of-two u32, found {} {}",
                        v.type_name(),
                        v
                    )))
                }
            },
        };

        // Tensor directory.
        let n_tensors = c.check_count(n_tensors, 24, "tensor infos")?;
        let mut tensors = Vec::with_capacity(reserve(n_tensors));
        let mut tensor_index = HashMap::with_capacity(reserve(n_tensors));
        for i in 0..n_tensors {
            let info = read_tensor_info(&mut c, i)?;
            if tensor_index
                .insert(info.name.clone(), tensors.len())
                .is_some()
            {
                return Err(c.malformed(format!("duplicate tensor name `{}`", info.name)));
            }
            tensors.push(info);
        }

        let data_offset = (c.pos() as u64)
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or_else(|| c.malformed("the data section's offset overflows".into()))?;
        let file = GgufFile {
            path,
            version,
            alignment,
            data_offset,
            metadata,
            key_index,
            tensors,
            tensor_index,
            map,
        };
        for t in &file.tensors {
            if t.offset % alignment != 0 {
                return Err(GgufError::Malformed {
                    path: file.path.clone(),
                    reason: format!(
                        "tensor `{}` offset {} is not a multiple of the alignment {alignment}",
                        t.name, t.offset
                    ),
                });
            }
            file.tensor_data(t)?;
        }
        Ok(file)
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute byte offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// All metadata pairs in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let &i = self.key_index.get(key)?;
        self.metadata.get(i).map(|(_, v)| v)
    }

    /// The value of `key` converted to `T`; errors name the key and both types.
    pub fn get_as<'a, T: FromValue<'a>>(&'a self, key: &str) -> Result<T> {
        match self.get_opt(key)? {
            Some(v) => Ok(v),
            None => Err(GgufError::MissingKey {
                path: self.path.clone(),
                key: key.to_string(),
            }),
        }
    }

    /// Like [`GgufFile::get_as`], but a missing key is `Ok(None)` (a key of
    /// the wrong type is still an error).
    pub fn get_opt<'a, T: FromValue<'a>>(&'a self, key: &str) -> Result<Option<T>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        T::from_value(v)
            .map(Some)
            .ok_or_else(|| GgufError::WrongKeyType {
                path: self.path.clone(),
                key: key.to_string(),
                expected: T::EXPECTED.to_string(),
                // A scalar's value too: an i32 -1 asked for as a u32 has a
                // type that converts, but not that value.
                actual: match v {
                    Value::Array(_) | Value::String(_) => v.type_name(),
                    _ => format!("{} (= {v})", v.type_name()),
                },
            })
    }

    /// An unsigned integer that fits in u32 (any integer type is accepted
    /// when the value fits exactly).
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.get_as(key)
    }
    /// An unsigned integer that fits in u64.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_as(key)
    }
    /// A signed integer that fits in i32.
    pub fn get_i32(&self, key: &str) -> Result<i32> {
        self.get_as(key)
    }
    /// A signed integer that fits in i64.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.get_as(key)
    }
    /// An f32 value (f64 values are not narrowed).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_as(key)
    }
    /// An f32 or f64 value.
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get_as(key)
    }
    /// A bool value.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.get_as(key)
    }
    /// A string value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get_as(key)
    }
    /// An array of any element type.
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        self.get_as(key)
    }
    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        self.get_as(key)
    }
    /// An array of i32.
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        self.get_as(key)
    }
    /// An array of u32.
    pub fn get_u32_array(&self, key: &str) -> Result<&[u32]> {
        self.get_as(key)
    }
    /// An array of f32.
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        self.get_as(key)
    }

    /// `general.architecture`, e.g. `qwen2` or `llama`.
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    /// An architecture-scoped u32 such as `qwen2.block_count`
    /// (`arch_u32("block_count")`).
    pub fn arch_u32(&self, suffix: &str) -> Result<u32> {
        let key = format!("{}.{suffix}", self.architecture()?);
        self.get_u32(&key)
    }

    /// The tensor directory in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        let &i = self.tensor_index.get(name)?;
        self.tensors.get(i)
    }

    /// The tensor named `name`, or a [`GgufError::MissingTensor`].
    pub fn get_tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name).ok_or_else(|| GgufError::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_string(),
        })
    }

    /// The raw (possibly quantized) bytes of a tensor.
    pub fn tensor_data(&self, info: &TensorInfo) -> Result<&[u8]> {
        let file_len = self.file_len();
        let start = self.data_offset.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(info.byte_len()?));
        let range = match (start, end) {
            (Some(s), Some(e)) => usize::try_from(s).ok().zip(usize::try_from(e).ok()),
            _ => None,
        };
        match range.and_then(|(s, e)| self.map.get(s..e)) {
            Some(bytes) => Ok(bytes),
            None => Err(GgufError::TensorOutOfBounds {
                path: self.path.clone(),
                tensor: info.name.clone(),
                start: start.unwrap_or(u64::MAX),
                end: end.unwrap_or(u64::MAX),
                file_len,
            }),
        }
    }
}

fn read_tensor_info(c: &mut Cursor<'_>, i: usize) -> Result<TensorInfo> {
    let name = c.string(&format!("name of tensor #{i}"))?;
    let what = format!("info of tensor `{name}`");
    let n_dims = c.u32(&what)?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(c.malformed(format!(
            "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} are allowed)"
        )));
    }
    let mut dims = Vec::with_capacity(MAX_DIMS as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(&what)?);
    }
    let type_id = c.u32(&what)?;
    let offset = c.u64(&what)?;
    let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownGgmlType {
        path: c.path().to_path_buf(),
        tensor: name.clone(),
        type_id,
    })?;
    let mut n: u64 = 1;
    for &d in &dims {
        n = match n.checked_mul(d) {
            Some(n) if d <= i64::MAX as u64 && n <= i64::MAX as u64 => n,
            _ => {
                return Err(c.malformed(format!(
                    "tensor `{name}` dims {dims:?} overflow the element count"
                )))
            }
        };
    }
    let block = ggml_type.block_size() as u64;
    let row = dims.first().copied().unwrap_or(1);
    if row % block != 0 {
        return Err(c.malformed(format!(
            "tensor `{name}` of type {ggml_type} has row length {row} that is not a multiple of the block size {block}"
        )));
    }
    let info = TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    };
    // Whether its bytes lie inside the file is checked once the data
    // section's offset is known.
    match info.byte_len() {
        Some(_) => Ok(info),
        None => Err(c.malformed(format!(
            "tensor `{}` of type {ggml_type} with dims {:?} overflows the byte count",
            info.name, info.dims,
        ))),
    }
}

/// Conversion of a metadata [`Value`] to a Rust type, for the typed
/// accessors. Integers convert when the value fits exactly.
pub trait FromValue<'a>: Sized {
    /// Name of the expected type, for error messages.
    const EXPECTED: &'static str;
    /// The converted value, or `None` if `v` has another type.
    fn from_value(v: &'a Value) -> Option<Self>;
}

macro_rules! from_int {
    ($t:ty, $via:ident, $name:literal) => {
        impl<'a> FromValue<'a> for $t {
            const EXPECTED: &'static str = $name;
            fn from_value(v: &'a Value) -> Option<Self> {
                v.$via().and_then(|x| <$t>::try_from(x).ok())
            }
        }
    };
}
from_int!(u32, as_u64, "u32");
from_int!(u64, as_u64, "u64");
from_int!(i32, as_i64, "i32");
from_int!(i64, as_i64, "i64");

impl<'a> FromValue<'a> for f32 {
    const EXPECTED: &'static str = "f32";
    fn from_value(v: &'a Value) -> Option<Self> {
        match *v {
            Value::F32(x) => Some(x),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for f64 {
    const EXPECTED: &'static str = "f64";
    fn from_value(v: &'a Value) -> Option<Self> {
        match *v {
            Value::F32(x) => Some(x.into()),
            Value::F64(x) => Some(x),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for bool {
    const EXPECTED: &'static str = "bool";
    fn from_value(v: &'a Value) -> Option<Self> {
        match *v {
            Value::Bool(x) => Some(x),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for &'a str {
    const EXPECTED: &'static str = "string";
    fn from_value(v: &'a Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for &'a Array {
    const EXPECTED: &'static str = "array";
    fn from_value(v: &'a Value) -> Option<Self> {
        match v {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

macro_rules! from_array {
    ($t:ty, $variant:ident, $name:literal) => {
        impl<'a> FromValue<'a> for &'a [$t] {
            const EXPECTED: &'static str = $name;
            fn from_value(v: &'a Value) -> Option<Self> {
                match v {
                    Value::Array(Array::$variant(x)) => Some(x),
                    _ => None,
                }
            }
        }
    };
}
from_array!(String, String, "array[string]");
from_array!(i32, I32, "array[i32]");
from_array!(u32, U32, "array[u32]");
from_array!(f32, F32, "array[f32]");
from_array!(u8, U8, "array[u8]");
from_array!(u64, U64, "array[u64]");
from_array!(i64, I64, "array[i64]");
