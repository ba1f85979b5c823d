//! The datastore file: one [`SuffixStore`] with the fingerprint of the
//! tokenizer that made its tokens and a summary of its sources, as `dittoc
//! datastore build` writes it, `--datastore FILE` reads it and an
//! executable carries it in its payload's `datastore` section.
//!
//! ```text
//! offset        bytes  field (little-endian)
//! 0             128    Header (below), its own CRC-32 with that field zero
//! 128           4n     tokens: the joined corpus, each document ended by SEPARATOR (u32::MAX)
//! 128 + 4n      4n     suffixes: the suffix array, u32 starts into tokens
//! 128 + 8n             end of file (file_bytes)
//! ```
//!
//! The CRC-32 of everything after the header (`body_crc32`) catches a
//! damaged file; the reader does not trust it for safety. Before anything
//! is allocated every count and offset is checked against the bytes there
//! are, then every token id against the vocabulary the caller gives (a
//! drafted id goes into the model's embedding lookup), the documents
//! against the file count, and the suffix array is checked to be a
//! permutation of the positions, sorted ([`Order::Full`], O(n): `dittoc`
//! when it bakes a file in) or sorted at sampled pairs ([`Order::Sampled`]:
//! the executable at start-up, where the checksum vouches for the rest). A
//! file that fails says which file and which field.
//!
//! The fingerprint is 32 bytes the caller computes from its tokenizer
//! (dittoc and the runtime: SHA-256 of the tokenizer.json bytes); this
//! crate only compares them.
//!
//! The arrays are read in place from the bytes (a mapped file, the mapped
//! executable) on a little-endian host; elsewhere they are copied once.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::suffix::{check_suffix_array, check_suffix_sample, SharedBytes, SuffixStore, SEPARATOR};

/// The first 8 bytes of a datastore file.
pub const MAGIC: [u8; 8] = *b"DITTODS\0";
/// The format version written and read.
pub const VERSION: u32 = 1;
/// Bytes of [`Header`].
pub const HEADER_BYTES: usize = 128;

/// The header as laid out in the file: `repr(C)` fields in this order at
/// these offsets, every integer little-endian. Encoded and decoded field by
/// field ([`Header::encode`], [`Header::decode`]), never transmuted.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// [`MAGIC`]
    magic: [u8; 8],
    /// [`VERSION`]
    version: u32,
    /// [`HEADER_BYTES`]
    header_bytes: u32,
    /// The tokenizer's fingerprint, opaque here.
    fingerprint: [u8; 32],
    /// Source files (documents) in the corpus.
    files: u64,
    /// Bytes of source text read.
    source_bytes: u64,
    /// n: tokens in the joined corpus (one separator per document
    /// included), and entries of the suffix array.
    entries: u64,
    /// Where the tokens start: [`HEADER_BYTES`].
    tokens_offset: u64,
    /// Where the suffix array starts: `tokens_offset + 4n`.
    suffixes_offset: u64,
    /// The file's length: `suffixes_offset + 4n`.
    file_bytes: u64,
    /// CRC-32 (IEEE) of bytes `HEADER_BYTES..file_bytes`.
    body_crc32: u32,
    /// CRC-32 of the header with this field zero.
    header_crc32: u32,
    /// Zero.
    reserved: [u8; 24],
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER_BYTES);
const _: () = assert!(std::mem::offset_of!(Header, fingerprint) == 16);
const _: () = assert!(std::mem::offset_of!(Header, body_crc32) == 96);
const _: () = assert!(std::mem::offset_of!(Header, header_crc32) == 100);
const _: () = assert!(std::mem::offset_of!(Header, reserved) == 104);

/// Where `header_crc32` sits.
const HEADER_CRC_AT: usize = std::mem::offset_of!(Header, header_crc32);

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.magic);
        put(&self.version.to_le_bytes());
        put(&self.header_bytes.to_le_bytes());
        put(&self.fingerprint);
        for value in [
            self.files,
            self.source_bytes,
            self.entries,
            self.tokens_offset,
            self.suffixes_offset,
            self.file_bytes,
        ] {
            put(&value.to_le_bytes());
        }
        put(&self.body_crc32.to_le_bytes());
        put(&self.header_crc32.to_le_bytes());
        put(&self.reserved);
        out
    }

    fn decode(bytes: &[u8; HEADER_BYTES]) -> Header {
        use std::mem::offset_of;
        // Fixed offsets inside the fixed-size header: always in bounds.
        fn take<const N: usize>(bytes: &[u8; HEADER_BYTES], at: usize) -> [u8; N] {
            let mut out = [0u8; N];
            out.copy_from_slice(&bytes[at..at + N]);
            out
        }
        let u32_at = |at| u32::from_le_bytes(take(bytes, at));
        let u64_at = |at| u64::from_le_bytes(take(bytes, at));
        Header {
            magic: take(bytes, offset_of!(Header, magic)),
            version: u32_at(offset_of!(Header, version)),
            header_bytes: u32_at(offset_of!(Header, header_bytes)),
            fingerprint: take(bytes, offset_of!(Header, fingerprint)),
            files: u64_at(offset_of!(Header, files)),
            source_bytes: u64_at(offset_of!(Header, source_bytes)),
            entries: u64_at(offset_of!(Header, entries)),
            tokens_offset: u64_at(offset_of!(Header, tokens_offset)),
            suffixes_offset: u64_at(offset_of!(Header, suffixes_offset)),
            file_bytes: u64_at(offset_of!(Header, file_bytes)),
            body_crc32: u32_at(offset_of!(Header, body_crc32)),
            header_crc32: u32_at(offset_of!(Header, header_crc32)),
            reserved: take(bytes, offset_of!(Header, reserved)),
        }
    }

    /// The CRC-32 of the encoded header with `header_crc32` zero.
    fn checksum(encoded: &[u8; HEADER_BYTES]) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&encoded[..HEADER_CRC_AT]);
        hasher.update(&[0; 4]);
        hasher.update(&encoded[HEADER_CRC_AT + 4..]);
        hasher.finalize()
    }
}

/// What a datastore was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Source files, one document each.
    pub files: u64,
    /// Bytes of source text.
    pub source_bytes: u64,
}

/// A datastore read from a file.
#[derive(Debug, Clone)]
pub struct Datastore {
    pub store: SuffixStore,
    pub fingerprint: [u8; 32],
    pub summary: Summary,
}

impl Datastore {
    /// Tokens of source text (the corpus without its separators).
    pub fn tokens(&self) -> u64 {
        self.store.len() as u64 - self.summary.files
    }
}

/// What the reader checks a file against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The fingerprint of the tokenizer in use.
    pub fingerprint: &'a [u8; 32],
    /// Token ids must be below this (the model's vocabulary).
    pub vocab: u32,
    /// How the suffix array's order is checked.
    pub order: Order,
}

/// How much of the suffix array's order the reader checks. Either way it
/// is checked to be a permutation of the corpus's positions, which is what
/// retrieval needs to stay in bounds; an unsorted array only makes
/// retrieval miss (drafts are verified by the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Every neighbour pair, exactly ([`crate::suffix::check_suffix_array`]:
    /// O(n) with random access, 4n bytes; about 1 s for 28M tokens).
    Full,
    /// [`SAMPLED_PAIRS`] neighbour pairs over their first tokens
    /// ([`crate::suffix::check_suffix_sample`]; sequential, n/8 bytes).
    Sampled,
}

/// Neighbour pairs [`Order::Sampled`] compares.
pub const SAMPLED_PAIRS: usize = 1 << 16;

/// Why a datastore file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It cannot be opened or read.
    Io(String),
    /// It does not start with [`MAGIC`].
    NotADatastore,
    /// A version this reader does not read.
    Version(u32),
    /// Fewer bytes than the header or a field needs.
    Truncated {
        field: &'static str,
        needed: u64,
        have: u64,
    },
    /// A header field holds a value the format does not allow.
    Field {
        field: &'static str,
        problem: String,
    },
    /// A checksum does not match: the header or the body is damaged.
    Checksum { part: &'static str },
    /// Built with another tokenizer.
    Fingerprint { found: [u8; 32], expected: [u8; 32] },
    /// A token id the model does not have.
    Token { index: u64, id: u32, vocab: u32 },
    /// The suffix array is not the corpus's.
    Suffixes(String),
}

/// A datastore file that cannot be used, naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreError {
    /// The file as shown to the user.
    pub file: String,
    pub problem: Problem,
}

/// The first 8 bytes of a fingerprint in hex: enough to tell two apart.
pub fn short_hex(fingerprint: &[u8; 32]) -> String {
    fingerprint[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl fmt::Display for DatastoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        match &self.problem {
            Problem::Io(e) => write!(f, "{file}: {e}"),
            Problem::NotADatastore => write!(
                f,
                "{file}: not a datastore file (it does not start with \"DITTODS\"; `dittoc datastore build` makes one)"
            ),
            Problem::Version(v) => write!(
                f,
                "{file}: datastore format version {v}, this build reads version {VERSION} (rebuild it with this dittoc)"
            ),
            Problem::Truncated {
                field,
                needed,
                have,
            } => write!(
                f,
                "{file}: truncated in the {field}: {have} bytes, {needed} expected"
            ),
            Problem::Field { field, problem } => write!(f, "{file}: bad {field}: {problem}"),
            Problem::Checksum { part } => write!(
                f,
                "{file}: the {part} checksum does not match: the file is damaged"
            ),
            Problem::Fingerprint { found, expected } => write!(
                f,
                "{file} was built for another tokenizer (fingerprint {}…), this model's is {}…",
                short_hex(found),
                short_hex(expected)
            ),
            Problem::Token { index, id, vocab } => write!(
                f,
                "{file}: bad tokens: token {index} is id {id}, outside the model's vocabulary of {vocab}"
            ),
            Problem::Suffixes(why) => write!(f, "{file}: bad suffixes: {why}"),
        }
    }
}

impl std::error::Error for DatastoreError {}

/// The whole file for `store`, as [`write`] writes it.
pub fn encode(store: &SuffixStore, fingerprint: &[u8; 32], summary: Summary) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + 8 * store.len());
    // Writing into a Vec cannot fail.
    let _ = write(&mut out, store, fingerprint, summary);
    out
}

/// Bytes of the file for a store of `n` tokens.
pub fn file_bytes(n: usize) -> u64 {
    HEADER_BYTES as u64 + 8 * n as u64
}

/// Feeds `words` to `sink` as little-endian bytes, in chunks.
fn le_chunks(
    words: &[u32],
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(1 << 16);
    for chunk in words.chunks(1 << 14) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|w| w.to_le_bytes()));
        sink(&buffer)?;
    }
    Ok(())
}

/// Writes the file for `store` to `out`.
pub fn write(
    out: &mut impl Write,
    store: &SuffixStore,
    fingerprint: &[u8; 32],
    summary: Summary,
) -> std::io::Result<()> {
    let n = store.len() as u64;
    let mut body = crc32fast::Hasher::new();
    for words in [store.tokens(), store.suffixes()] {
        le_chunks(words, |bytes| {
            body.update(bytes);
            Ok(())
        })?;
    }
    let mut header = Header {
        magic: MAGIC,
        version: VERSION,
        header_bytes: HEADER_BYTES as u32,
        fingerprint: *fingerprint,
        files: summary.files,
        source_bytes: summary.source_bytes,
        entries: n,
        tokens_offset: HEADER_BYTES as u64,
        suffixes_offset: HEADER_BYTES as u64 + 4 * n,
        file_bytes: file_bytes(store.len()),
        body_crc32: body.finalize(),
        header_crc32: 0,
        reserved: [0; 24],
    };
    header.header_crc32 = Header::checksum(&header.encode());
    out.write_all(&header.encode())?;
    for words in [store.tokens(), store.suffixes()] {
        le_chunks(words, |bytes| out.write_all(bytes))?;
    }
    Ok(())
}

/// Recomputes both checksums of a file's bytes in place (no-op on fewer
/// bytes than a header), whatever the fields say: lets fuzzers and tests
/// reach the checks behind the checksums with edited files.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_BYTES {
        return;
    }
    let at = std::mem::offset_of!(Header, body_crc32);
    let body = crc32fast::hash(&bytes[HEADER_BYTES..]);
    bytes[at..at + 4].copy_from_slice(&body.to_le_bytes());
    let mut head = [0u8; HEADER_BYTES];
    head.copy_from_slice(&bytes[..HEADER_BYTES]);
    let crc = Header::checksum(&head);
    bytes[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Opens and checks the datastore file at `path` (mapped, read in place).
pub fn open(path: &Path, expect: Expect) -> Result<Datastore, DatastoreError> {
    let name = path.display().to_string();
    let fail = |problem| DatastoreError {
        file: name.clone(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(Problem::Io(e.to_string())))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(Problem::Io(e.to_string())))?;
    if meta.is_dir() {
        return Err(fail(Problem::Io("it is a directory".into())));
    }
    if meta.len() < HEADER_BYTES as u64 {
        // Too short to map usefully (or at all, when empty): read, then
        // refused as not a datastore or as truncated.
        let bytes = std::fs::read(path).map_err(|e| fail(Problem::Io(e.to_string())))?;
        return read(&bytes, &name, expect);
    }
    // SAFETY: a private read-only mapping. The file could still be changed
    // by another process while mapped (as any mapped input); nothing here
    // relies on its bytes for memory safety beyond the checks, which read
    // them once.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| fail(Problem::Io(format!("cannot map: {e}"))))?;
    let bytes: SharedBytes = Arc::new(map);
    let len = (*bytes).as_ref().len();
    read_in(&bytes, 0, len, &name, expect)
}

/// Reads and checks the datastore in bytes `at..at + len` of `bytes`,
/// named `name` in errors.
pub fn read_in(
    bytes: &SharedBytes,
    at: usize,
    len: usize,
    name: &str,
    expect: Expect,
) -> Result<Datastore, DatastoreError> {
    let fail = |problem| DatastoreError {
        file: name.to_string(),
        problem,
    };
    let all = (**bytes).as_ref();
    let Some(data) = at.checked_add(len).and_then(|end| all.get(at..end)) else {
        return Err(fail(Problem::Truncated {
            field: "section",
            needed: at as u64 + len as u64,
            have: all.len() as u64,
        }));
    };
    let have = data.len() as u64;
    // A file that is not one at all is said to be so, however short.
    if !MAGIC.starts_with(&data[..data.len().min(MAGIC.len())]) {
        return Err(fail(Problem::NotADatastore));
    }
    let Some(head) = data.first_chunk::<HEADER_BYTES>() else {
        return Err(fail(Problem::Truncated {
            field: "header",
            needed: HEADER_BYTES as u64,
            have,
        }));
    };
    let header = Header::decode(head);
    if header.magic != MAGIC {
        return Err(fail(Problem::NotADatastore));
    }
    if header.version != VERSION {
        return Err(fail(Problem::Version(header.version)));
    }
    if Header::checksum(head) != header.header_crc32 {
        return Err(fail(Problem::Checksum { part: "header" }));
    }
    let field = |field: &'static str, problem: String| fail(Problem::Field { field, problem });
    if header.header_bytes as usize != HEADER_BYTES {
        return Err(field(
            "header_bytes",
            format!("{}, expected {HEADER_BYTES}", header.header_bytes),
        ));
    }
    if header.fingerprint != *expect.fingerprint {
        return Err(fail(Problem::Fingerprint {
            found: header.fingerprint,
            expected: *expect.fingerprint,
        }));
    }
    // The layout, in checked arithmetic, before anything is allocated.
    let n = header.entries;
    if n >= u64::from(u32::MAX) {
        return Err(field(
            "entries",
            format!(
                "{n}, more than suffix starts of 32 bits address ({})",
                u32::MAX - 1
            ),
        ));
    }
    let words = 4 * n;
    if header.tokens_offset != HEADER_BYTES as u64 {
        return Err(field(
            "tokens_offset",
            format!("{}, expected {HEADER_BYTES}", header.tokens_offset),
        ));
    }
    let suffixes_at = HEADER_BYTES as u64 + words;
    if header.suffixes_offset != suffixes_at {
        return Err(field(
            "suffixes_offset",
            format!(
                "{}, expected {suffixes_at} (after {n} tokens)",
                header.suffixes_offset
            ),
        ));
    }
    let end = suffixes_at + words;
    if header.file_bytes != end {
        return Err(field(
            "file_bytes",
            format!("{}, expected {end} for {n} entries", header.file_bytes),
        ));
    }
    if have < end {
        let what = if have < suffixes_at {
            "tokens"
        } else {
            "suffixes"
        };
        return Err(fail(Problem::Truncated {
            field: what,
            needed: end,
            have,
        }));
    }
    if have > end {
        return Err(field(
            "file_bytes",
            format!("{end}, but the file has {have} bytes (trailing data)"),
        ));
    }
    if header.files > n {
        return Err(field(
            "files",
            format!(
                "{} files, more than the {n} tokens (each file ends with a separator)",
                header.files
            ),
        ));
    }
    if header.reserved != [0; 24] {
        return Err(field("reserved", "not zero".into()));
    }
    let body = &data[HEADER_BYTES..];
    if crc32fast::hash(body) != header.body_crc32 {
        return Err(fail(Problem::Checksum { part: "body" }));
    }
    // In range of `bytes` (checked above): the store reads them in place.
    let Some(store) = SuffixStore::from_bytes(
        bytes,
        n as usize,
        at + HEADER_BYTES,
        at + suffixes_at as usize,
    ) else {
        return Err(fail(Problem::Truncated {
            field: "suffixes",
            needed: end,
            have,
        }));
    };
    let tokens = store.tokens();
    let mut separators = 0u64;
    for (index, &id) in tokens.iter().enumerate() {
        if id == SEPARATOR {
            separators += 1;
        } else if id >= expect.vocab {
            return Err(fail(Problem::Token {
                index: index as u64,
                id,
                vocab: expect.vocab,
            }));
        }
    }
    if separators != header.files {
        return Err(field(
            "files",
            format!(
                "{}, but the tokens hold {separators} documents",
                header.files
            ),
        ));
    }
    if tokens.last().is_some_and(|&t| t != SEPARATOR) {
        return Err(fail(Problem::Suffixes(
            "the last document of the tokens is not terminated".into(),
        )));
    }
    match expect.order {
        Order::Full => check_suffix_array(tokens, store.suffixes()),
        Order::Sampled => check_suffix_sample(tokens, store.suffixes(), SAMPLED_PAIRS),
    }
    .map_err(|why| fail(Problem::Suffixes(why)))?;
    Ok(Datastore {
        store,
        fingerprint: header.fingerprint,
        summary: Summary {
            files: header.files,
            source_bytes: header.source_bytes,
        },
    })
}

/// Reads and checks a datastore held in `bytes` (copied into shared bytes).
pub fn read(bytes: &[u8], name: &str, expect: Expect) -> Result<Datastore, DatastoreError> {
    let shared: SharedBytes = Arc::new(bytes.to_vec());
    read_in(&shared, 0, bytes.len(), name, expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINT: [u8; 32] = [7; 32];

    fn expect() -> Expect<'static> {
        Expect {
            fingerprint: &PRINT,
            vocab: 50,
            order: Order::Full,
        }
    }

    fn small() -> (SuffixStore, Vec<u8>) {
        let docs = [vec![1, 2, 3, 1, 2], vec![4, 1, 2, 3], vec![]];
        let store = SuffixStore::build(&docs).unwrap();
        let summary = Summary {
            files: 3,
            source_bytes: 40,
        };
        let bytes = encode(&store, &PRINT, summary);
        (store, bytes)
    }

    fn problem(bytes: &[u8], expect: Expect) -> Problem {
        read(bytes, "x.ds", expect).unwrap_err().problem
    }

    /// `bytes` with both checksums made right again after an edit.
    fn sealed(mut bytes: Vec<u8>) -> Vec<u8> {
        reseal(&mut bytes);
        bytes
    }

    #[test]
    fn a_store_comes_back_as_written() {
        let (store, bytes) = small();
        assert_eq!(bytes.len() as u64, file_bytes(store.len()));
        let back = read(&bytes, "x.ds", expect()).unwrap();
        assert_eq!(back.store, store);
        assert_eq!(back.fingerprint, PRINT);
        assert_eq!(
            back.summary,
            Summary {
                files: 3,
                source_bytes: 40
            }
        );
        assert_eq!(back.tokens(), 9);
        let query = crate::suffix::Query::default();
        assert_eq!(
            back.store.retrieve(&[9, 1, 2], &query),
            store.retrieve(&[9, 1, 2], &query)
        );
        // Read in place from the middle of other bytes (a payload section).
        let mut outer = vec![0u8; 4096];
        outer.extend_from_slice(&bytes);
        outer.extend_from_slice(&[1, 2, 3]);
        let shared: SharedBytes = Arc::new(outer);
        let inner = read_in(&shared, 4096, bytes.len(), "section", expect()).unwrap();
        assert_eq!(inner.store, store);
        // An empty store.
        let empty = SuffixStore::build::<Vec<u32>>(&[]).unwrap();
        let bytes = encode(&empty, &PRINT, Summary::default());
        assert!(read(&bytes, "e.ds", expect()).unwrap().store.is_empty());
    }

    #[test]
    fn a_file_cut_anywhere_is_refused() {
        let (_, bytes) = small();
        for cut in 0..bytes.len() {
            let err = read(&bytes[..cut], "x.ds", expect()).unwrap_err();
            assert!(
                matches!(err.problem, Problem::Truncated { .. }),
                "cut at {cut}: {err}"
            );
            assert!(
                err.to_string().starts_with("x.ds: truncated in the "),
                "{err}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            problem(&longer, expect()),
            Problem::Field {
                field: "file_bytes",
                ..
            }
        ));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let (_, bytes) = small();
        for at in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= bit;
                let err = read(&bad, "x.ds", expect()).unwrap_err();
                assert!(err.to_string().starts_with("x.ds"), "{err}");
            }
        }
    }

    #[test]
    fn magic_version_and_fingerprint() {
        let (_, bytes) = small();
        let mut bad = bytes.clone();
        bad[..4].copy_from_slice(b"GGUF");
        assert_eq!(problem(&bad, expect()), Problem::NotADatastore);
        assert_eq!(problem(b"hello, world", expect()), Problem::NotADatastore);
        assert!(matches!(
            problem(b"", expect()),
            Problem::Truncated { have: 0, .. }
        ));
        assert!(read(b"DITTODS", "g.ds", expect())
            .unwrap_err()
            .to_string()
            .contains("g.ds: truncated in the header: 7 bytes, 128 expected"));
        let mut bad = bytes.clone();
        bad[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(problem(&bad, expect()), Problem::Version(2));
        let other = [9u8; 32];
        let err = read(
            &bytes,
            "code.ds",
            Expect {
                fingerprint: &other,
                ..expect()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "code.ds was built for another tokenizer (fingerprint 0707070707070707…), \
             this model's is 0909090909090909…"
        );
    }

    #[test]
    fn sealed_lies_are_refused_too() {
        // Checksums right, contents wrong: what a fuzzer or a buggy writer
        // makes. Each names its field.
        let (store, bytes) = small();
        let n = store.len() as u64;
        let set = |at: usize, value: u64| {
            let mut bad = bytes.clone();
            bad[at..at + 8].copy_from_slice(&value.to_le_bytes());
            sealed(bad)
        };
        let field_of = |bad: &[u8]| match problem(bad, expect()) {
            Problem::Field { field, .. } => field,
            Problem::Truncated { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(&set(64, u64::MAX)), "entries");
        assert_eq!(field_of(&set(64, n + 1)), "suffixes_offset");
        assert_eq!(field_of(&set(72, 0)), "tokens_offset");
        assert_eq!(field_of(&set(88, 1 << 40)), "file_bytes");
        assert_eq!(field_of(&set(48, n + 1)), "files");
        assert_eq!(field_of(&sealed(set(48, 2))), "files");
        // A huge count with a matching layout: refused by size, nothing allocated.
        let mut huge = bytes.clone();
        let big = (1u64 << 31) - 1;
        huge[64..72].copy_from_slice(&big.to_le_bytes());
        huge[80..88].copy_from_slice(&(128 + 4 * big).to_le_bytes());
        huge[88..96].copy_from_slice(&(128 + 8 * big).to_le_bytes());
        assert_eq!(field_of(&sealed(huge)), "tokens");
        // A token outside the vocabulary.
        let mut bad = bytes.clone();
        bad[128..132].copy_from_slice(&60u32.to_le_bytes());
        assert_eq!(
            problem(&sealed(bad), expect()),
            Problem::Token {
                index: 0,
                id: 60,
                vocab: 50
            }
        );
        assert!(matches!(
            problem(
                &bytes,
                Expect {
                    vocab: 3,
                    ..expect()
                }
            ),
            Problem::Token { id: 3, .. }
        ));
        // Two suffixes swapped, and a suffix repeated.
        let s = 128 + 4 * n as usize;
        let mut swapped = bytes.clone();
        let (a, b) = (swapped[s..s + 4].to_vec(), swapped[s + 4..s + 8].to_vec());
        swapped[s..s + 4].copy_from_slice(&b);
        swapped[s + 4..s + 8].copy_from_slice(&a);
        let swapped = sealed(swapped);
        let sampled = Expect {
            order: Order::Sampled,
            ..expect()
        };
        assert!(matches!(problem(&swapped, sampled), Problem::Suffixes(_)));
        let err = read(&swapped, "x.ds", expect()).unwrap_err();
        assert!(
            err.to_string()
                .contains("x.ds: bad suffixes: the suffix array is not sorted"),
            "{err}"
        );
        let mut twice = bytes.clone();
        twice.copy_within(s..s + 4, s + 4);
        let err = read(&sealed(twice), "x.ds", expect()).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let mut nonzero = bytes.clone();
        nonzero[120] = 1;
        assert_eq!(field_of(&sealed(nonzero)), "reserved");
    }

    #[test]
    fn a_file_on_disk_is_mapped() {
        let (store, bytes) = small();
        let dir = std::env::temp_dir().join(format!("ditto-ds-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("code.ds");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(open(&path, expect()).unwrap().store, store);
        std::fs::write(&path, &bytes[..100]).unwrap();
        let err = open(&path, expect()).unwrap_err().to_string();
        assert!(
            err.contains("code.ds: truncated in the header: 100 bytes, 128 expected"),
            "{err}"
        );
        let err = open(&dir.join("none.ds"), expect())
            .unwrap_err()
            .to_string();
        assert!(err.contains("none.ds: No such file"), "{err}");
        assert!(open(&dir, expect())
            .unwrap_err()
            .to_string()
            .contains("directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
