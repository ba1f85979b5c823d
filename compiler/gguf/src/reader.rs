//! A bounds-checked little-endian cursor over the file bytes. Every read that
//! would run past the end returns [`GgufError::Truncated`] with the offset.

use std::path::Path;

use crate::error::{GgufError, Result};

pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Cursor {
            bytes,
            pos: 0,
            path,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn path(&self) -> &'a Path {
        self.path
    }

    pub(crate) fn truncated(&self, what: &str, needed: u64) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            what: what.to_string(),
            offset: self.pos as u64,
            needed,
            file_len: self.bytes.len() as u64,
        }
    }

    pub(crate) fn malformed(&self, reason: String) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    /// Takes `n` bytes; `what` names them in the error.
    pub(crate) fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let range = usize::try_from(n)
            .ok()
            .and_then(|n| Some(self.pos..self.pos.checked_add(n)?));
        match range.and_then(|r| Some((r.end, self.bytes.get(r)?))) {
            Some((end, out)) => {
                self.pos = end;
                Ok(out)
            }
            None => Err(self.truncated(what, n)),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        let [b] = self.array::<1>(what)?;
        Ok(b)
    }
    pub(crate) fn i8(&mut self, what: &str) -> Result<i8> {
        Ok(self.u8(what)? as i8)
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn i16(&mut self, what: &str) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 length, then that many UTF-8 bytes.
    pub(crate) fn string(&mut self, what: &str) -> Result<String> {
        let start = self.pos;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(self.malformed(format!(
                "{what} at byte offset {start} is not valid UTF-8 ({e})"
            ))),
        }
    }

    /// Checks that `count` items of at least `min_size` bytes each can still
    /// fit in the rest of the file, so that an absurd count fails before any
    /// allocation.
    pub(crate) fn check_count(&self, count: u64, min_size: u64, what: &str) -> Result<usize> {
        let needed = count.saturating_mul(min_size);
        match usize::try_from(count) {
            Ok(n) if needed <= self.remaining() as u64 => Ok(n),
            _ => Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                what: format!("{what} (count {count})"),
                offset: self.pos as u64,
                needed,
                file_len: self.bytes.len() as u64,
            }),
        }
    }
}

/// How many elements to reserve for `count` items a file declares (already
/// checked against the bytes left by [`Cursor::check_count`]): at most a
/// page's worth, so that what is allocated grows with what is actually read,
/// never with what a header claims.
pub(crate) fn reserve(count: usize) -> usize {
    count.min(4096)
}
