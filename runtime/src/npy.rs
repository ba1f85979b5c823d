//! A float32 `.npy` writer (format version 1.0), for `--dump-logits`.
//!
//! Layout: `\x93NUMPY`, version `1 0`, u16 LE header length, then a Python
//! dict literal padded with spaces and ending in `\n` so that the data
//! starts on a 64-byte boundary, then the data, C order, little-endian.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::Error;

pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The bytes before the data of a little-endian float32 C-order array.
pub fn header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(
        ' ',
        unpadded.next_multiple_of(64) - unpadded,
    ));
    dict.push('\n');

    let mut out = Vec::with_capacity(unpadded.next_multiple_of(64));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes `data` as an array of `shape` to `path`, through a temporary file
/// beside it (an old `path` stays as it was if the write fails).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), Error> {
    assert_eq!(shape.iter().product::<usize>(), data.len());
    Ok(ditto_files::write_with(path, |file: &mut File| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(shape))?;
        for value in data {
            out.write_all(&value.to_le_bytes())?;
        }
        out.flush()
    })?)
}
