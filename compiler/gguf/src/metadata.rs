//! GGUF metadata values: the 13 value types, arrays (possibly nested) and
//! typed conversions used by the `get_*` accessors.

use std::fmt;

use crate::error::Result;
use crate::reader::{reserve, Cursor};

/// Arrays nested deeper than this are rejected (real files nest at most once;
/// the limit keeps a crafted file from exhausting the stack).
const MAX_ARRAY_DEPTH: usize = 8;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array. Elements all have one type; an array of arrays holds
/// inner arrays that may each have their own element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<Array>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// GGUF value type ids (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl Ty {
    fn from_id(id: u32) -> Option<Ty> {
        use Ty::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The least number of bytes one value of this type takes in the file.
    fn min_size(self) -> u64 {
        use Ty::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }
}

/// Reads one value of type id `type_id`; `key` names it in errors.
pub(crate) fn read_value(c: &mut Cursor<'_>, type_id: u32, key: &str) -> Result<Value> {
    let what = format!("value of metadata key `{key}`");
    let ty = ty_of(c, type_id, key)?;
    Ok(match ty {
        Ty::U8 => Value::U8(c.u8(&what)?),
        Ty::I8 => Value::I8(c.i8(&what)?),
        Ty::U16 => Value::U16(c.u16(&what)?),
        Ty::I16 => Value::I16(c.i16(&what)?),
        Ty::U32 => Value::U32(c.u32(&what)?),
        Ty::I32 => Value::I32(c.i32(&what)?),
        Ty::F32 => Value::F32(c.f32(&what)?),
        Ty::Bool => Value::Bool(c.u8(&what)? != 0),
        Ty::String => Value::String(c.string(&what)?),
        Ty::Array => Value::Array(read_array(c, key, 1)?),
        Ty::U64 => Value::U64(c.u64(&what)?),
        Ty::I64 => Value::I64(c.i64(&what)?),
        Ty::F64 => Value::F64(c.f64(&what)?),
    })
}

fn ty_of(c: &Cursor<'_>, type_id: u32, key: &str) -> Result<Ty> {
    Ty::from_id(type_id).ok_or_else(|| crate::GgufError::UnknownValueType {
        path: c.path().to_path_buf(),
        key: key.to_string(),
        type_id,
        offset: (c.pos() as u64).saturating_sub(4),
    })
}

/// Reads an array body (element type id, count, elements).
fn read_array(c: &mut Cursor<'_>, key: &str, depth: usize) -> Result<Array> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(c.malformed(format!(
            "metadata key `{key}` nests arrays deeper than {MAX_ARRAY_DEPTH} levels"
        )));
    }
    let what = format!("array of metadata key `{key}`");
    let type_id = c.u32(&what)?;
    let ty = ty_of(c, type_id, key)?;
    let count = c.u64(&what)?;
    let n = c.check_count(count, ty.min_size(), &what)?;
    macro_rules! many {
        ($variant:ident, $read:ident) => {{
            let mut v = Vec::with_capacity(reserve(n));
            for _ in 0..n {
                v.push(c.$read(&what)?);
            }
            Array::$variant(v)
        }};
    }
    Ok(match ty {
        Ty::U8 => Array::U8(c.take(n as u64, &what)?.to_vec()),
        Ty::I8 => many!(I8, i8),
        Ty::U16 => many!(U16, u16),
        Ty::I16 => many!(I16, i16),
        Ty::U32 => many!(U32, u32),
        Ty::I32 => many!(I32, i32),
        Ty::F32 => many!(F32, f32),
        Ty::Bool => Array::Bool(c.take(n as u64, &what)?.iter().map(|&b| b != 0).collect()),
        Ty::String => many!(String, string),
        Ty::U64 => many!(U64, u64),
        Ty::I64 => many!(I64, i64),
        Ty::F64 => many!(F64, f64),
        Ty::Array => {
            let mut v = Vec::with_capacity(reserve(n));
            for _ in 0..n {
                v.push(read_array(c, key, depth + 1)?);
            }
            Array::Array(v)
        }
    })
}

impl Value {
    /// The GGUF name of this value's type, e.g. `u32` or `array[string]`.
    pub fn type_name(&self) -> String {
        match self {
            Value::U8(_) => "u8".into(),
            Value::I8(_) => "i8".into(),
            Value::U16(_) => "u16".into(),
            Value::I16(_) => "i16".into(),
            Value::U32(_) => "u32".into(),
            Value::I32(_) => "i32".into(),
            Value::F32(_) => "f32".into(),
            Value::Bool(_) => "bool".into(),
            Value::String(_) => "string".into(),
            Value::Array(a) => format!("array[{}]", a.element_type_name()),
            Value::U64(_) => "u64".into(),
            Value::I64(_) => "i64".into(),
            Value::F64(_) => "f64".into(),
        }
    }

    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::Array(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The GGUF name of the element type, e.g. `string`.
    pub fn element_type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "u8",
            Array::I8(_) => "i8",
            Array::U16(_) => "u16",
            Array::I16(_) => "i16",
            Array::U32(_) => "u32",
            Array::I32(_) => "i32",
            Array::F32(_) => "f32",
            Array::Bool(_) => "bool",
            Array::String(_) => "string",
            Array::Array(_) => "array",
            Array::U64(_) => "u64",
            Array::I64(_) => "i64",
            Array::F64(_) => "f64",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(v) => write!(f, "{v:?}"),
            Value::Array(a) => write!(f, "[{} x {}]", a.len(), a.element_type_name()),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}
