//! Malformed input: every broken file gives an `Err` whose message names the
//! file; nothing panics and absurd counts allocate nothing.

mod common;

use common::{fixture, gguf_str, temp_file, Builder};
use ditto_gguf::{tokenizer_config, tokenizer_json, GgmlType, GgufError, GgufFile, TensorInfo};

/// Opens `bytes` from a temporary file; on success also exercises every
/// reading entry point (none may panic). Returns the open error, if any.
fn open_bytes(bytes: &[u8]) -> Option<GgufError> {
    let tmp = temp_file(bytes);
    match GgufFile::open(tmp.path()) {
        Ok(f) => {
            for t in f.tensors() {
                let _ = f.dequantize(t);
            }
            let _ = tokenizer_json(&f);
            let _ = tokenizer_config(&f);
            for (k, _) in f.metadata() {
                let _ = f.get_u32(k);
                let _ = f.get_str(k);
                let _ = f.get_str_array(k);
            }
            None
        }
        Err(e) => {
            let msg = e.to_string();
            let path = tmp.path().display().to_string();
            assert!(
                msg.starts_with(&path),
                "message does not start with the path: {msg}"
            );
            assert_eq!(msg.matches(&path).count(), 1, "path repeated: {msg}");
            Some(e)
        }
    }
}

fn expect_err(bytes: &[u8], what: &str) -> GgufError {
    open_bytes(bytes).unwrap_or_else(|| panic!("{what}: opened without error"))
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for name in ["metadata.gguf", "dq_q4_k.gguf", "dq_q8_0.gguf"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        // GGUFWriter pads the last tensor to the alignment: cutting that
        // padding off leaves a complete file.
        let full = GgufFile::open(fixture(name)).unwrap();
        let end = full
            .tensors()
            .iter()
            .map(|t| full.data_offset() + t.offset + t.n_bytes() as u64)
            .max()
            .unwrap() as usize;
        assert!(bytes.len() - end < 64);
        for cut in end..bytes.len() {
            assert!(open_bytes(&bytes[..cut]).is_none(), "{name} cut at {cut}");
        }
        for cut in 0..end {
            let e = expect_err(&bytes[..cut], &format!("{name} cut at {cut}"));
            assert!(
                matches!(
                    e,
                    GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. }
                ),
                "{name} cut at {cut}: {e}"
            );
        }
    }
    // A file with only metadata (GGUFWriter pads it to 32 bytes too).
    let bytes = std::fs::read(fixture("tok_smollm.gguf")).unwrap();
    for cut in (0..bytes.len() - 32).step_by(13) {
        expect_err(&bytes[..cut], &format!("tok_smollm.gguf cut at {cut}"));
    }
}

#[test]
fn truncated_message_gives_the_offset() {
    let bytes = std::fs::read(fixture("metadata.gguf")).unwrap();
    let e = expect_err(&bytes[..30], "cut");
    let msg = e.to_string();
    assert!(
        msg.contains("truncated") && msg.contains("offset 24"),
        "{msg}"
    );
}

/// A small xorshift generator, so the corruption test is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for name in [
        "metadata.gguf",
        "dq_q4_k.gguf",
        "dq_q6_k.gguf",
        "tok_qwen2.gguf",
    ] {
        let orig = std::fs::read(fixture(name)).unwrap();
        // Bias corruption towards the header and directory, where the
        // structure lives.
        let hot = orig.len().min(1024);
        for _ in 0..400 {
            let mut bytes = orig.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = if rng.next().is_multiple_of(4) {
                    rng.next() as usize % bytes.len()
                } else {
                    rng.next() as usize % hot
                };
                bytes[at] = match rng.next() % 4 {
                    0 => 0xFF,
                    1 => 0,
                    _ => rng.next() as u8,
                };
            }
            open_bytes(&bytes);
        }
    }
}

#[test]
fn bad_magic_and_versions() {
    let good = Builder::default().kv_u32("a", 1).build();
    assert!(open_bytes(&good).is_none());

    let mut b = good.clone();
    b[..4].copy_from_slice(b"GGML");
    let e = expect_err(&b, "magic");
    assert!(matches!(e, GgufError::BadMagic { .. }));
    assert!(e.to_string().contains("not a GGUF file"), "{e}");

    let e = expect_err(b"PK\x03\x04 this is a zip", "zip");
    assert!(matches!(e, GgufError::BadMagic { .. }));

    for (v, hint) in [(1u32, "obsolete"), (4, ""), (0x0300_0000, "big-endian")] {
        let b = Builder {
            version: v,
            ..Default::default()
        }
        .build();
        let e = expect_err(&b, "version");
        assert!(matches!(e, GgufError::UnsupportedVersion { version, .. } if version == v));
        assert!(e.to_string().contains(hint), "{e}");
    }

    for len in 0..4 {
        let e = expect_err(&b"GGUF"[..len], "tiny");
        assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    }
}

#[test]
fn io_errors_name_the_path() {
    let e = GgufFile::open("/nonexistent/dir/model.gguf").unwrap_err();
    assert!(matches!(e, GgufError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/dir/model.gguf"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = GgufFile::open(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
}

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend(n_kv.to_le_bytes());
    b
}

#[test]
fn absurd_counts_fail_without_allocating() {
    // 2^60 tensors / pairs: must fail at once (a Vec of that many would abort).
    let e = expect_err(&header(1 << 60, 0), "tensors");
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    let e = expect_err(&header(0, 1 << 60), "kv");
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
    let e = expect_err(&header(u64::MAX, u64::MAX), "max");
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");

    // A string of length 2^63.
    let mut b = header(0, 1);
    b.extend((1u64 << 63).to_le_bytes());
    b.extend(b"key");
    let e = expect_err(&b, "string");
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");

    // Arrays of 2^60 u64 / strings / arrays.
    for elem_type in [10u32, 8, 9] {
        let mut v = elem_type.to_le_bytes().to_vec();
        v.extend((1u64 << 60).to_le_bytes());
        let b = Builder::default().kv_raw("arr", 9, &v).build();
        let e = expect_err(&b, "array");
        assert!(e.to_string().contains("arr"), "{e}");
    }

    // Arrays nested far too deep.
    let mut v = Vec::new();
    for _ in 0..10_000 {
        v.extend(9u32.to_le_bytes());
        v.extend(1u64.to_le_bytes());
    }
    v.extend(4u32.to_le_bytes());
    v.extend(0u64.to_le_bytes());
    let b = Builder::default().kv_raw("deep", 9, &v).build();
    let e = expect_err(&b, "deep");
    assert!(e.to_string().contains("deep"), "{e}");
}

#[test]
fn bad_metadata() {
    let e = expect_err(&Builder::default().kv_raw("k", 13, &[0; 8]).build(), "type");
    assert!(
        matches!(e, GgufError::UnknownValueType { type_id: 13, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("`k`"));

    let mut arr = 77u32.to_le_bytes().to_vec();
    arr.extend(1u64.to_le_bytes());
    let e = expect_err(
        &Builder::default().kv_raw("k", 9, &arr).build(),
        "elem type",
    );
    assert!(
        matches!(e, GgufError::UnknownValueType { type_id: 77, .. }),
        "{e}"
    );

    let e = expect_err(
        &Builder::default().kv_u32("k", 1).kv_u32("k", 2).build(),
        "dup",
    );
    assert!(e.to_string().contains("duplicate metadata key `k`"), "{e}");

    let mut bad_utf8 = 2u64.to_le_bytes().to_vec();
    bad_utf8.extend([0xC3, 0x28]);
    let e = expect_err(
        &Builder::default().kv_raw("k", 8, &bad_utf8).build(),
        "utf8",
    );
    assert!(e.to_string().contains("UTF-8"), "{e}");

    for (ty, val) in [
        (4u32, 0u32.to_le_bytes().to_vec()),
        (4, 3u32.to_le_bytes().to_vec()),
        (10, 32u64.to_le_bytes().to_vec()),
    ] {
        let b = Builder::default()
            .kv_raw("general.alignment", ty, &val)
            .build();
        let e = expect_err(&b, "alignment");
        assert!(e.to_string().contains("general.alignment"), "{e}");
    }
}

#[test]
fn bad_tensor_infos() {
    let data = vec![0u8; 64];
    // Tensor data past the end of the file.
    let mut b = Builder::default().tensor("t", &[16], 0, &data[..32]);
    b.data.truncate(16);
    let e = expect_err(&b.build(), "past EOF");
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
    assert!(e.to_string().contains("`t`"));

    // Offset near u64::MAX (overflowing start + size).
    let mut b = Builder::default().tensor("t", &[4], 0, &data[..16]);
    let off_at = b.infos.len() - 8;
    b.infos[off_at..].copy_from_slice(&(u64::MAX - 31).to_le_bytes());
    let e = expect_err(&b.build(), "huge offset");
    assert!(
        matches!(
            e,
            GgufError::TensorOutOfBounds { .. } | GgufError::Malformed { .. }
        ),
        "{e}"
    );

    // Misaligned offset.
    let mut b = Builder::default().tensor("t", &[4], 0, &data[..16]);
    let off_at = b.infos.len() - 8;
    b.infos[off_at..].copy_from_slice(&4u64.to_le_bytes());
    let e = expect_err(&b.build(), "misaligned");
    assert!(e.to_string().contains("alignment"), "{e}");

    // Unknown / removed ggml type ids.
    for id in [4u32, 5, 31, 99] {
        let e = expect_err(
            &Builder::default().tensor("t", &[32], id, &data).build(),
            "type",
        );
        assert!(
            matches!(e, GgufError::UnknownGgmlType { type_id, .. } if type_id == id),
            "{e}"
        );
    }

    // Too many dims, dims overflowing, row not a multiple of the block.
    let e = expect_err(
        &Builder::default()
            .tensor("t", &[1, 1, 1, 1, 1], 0, &data[..4])
            .build(),
        "dims",
    );
    assert!(e.to_string().contains("dimensions"), "{e}");
    let e = expect_err(
        &Builder::default()
            .tensor("t", &[1 << 32, 1 << 32], 0, &data)
            .build(),
        "overflow",
    );
    assert!(e.to_string().contains("overflow"), "{e}");
    let e = expect_err(
        &Builder::default()
            .tensor("t", &[1 << 62, 8], 0, &data)
            .build(),
        "overflow",
    );
    assert!(e.to_string().contains("overflow"), "{e}");
    let e = expect_err(
        &Builder::default().tensor("t", &[48], 8, &data).build(),
        "block",
    );
    assert!(e.to_string().contains("block size"), "{e}");

    // Duplicate tensor names.
    let b = Builder::default()
        .tensor("t", &[4], 0, &data[..16])
        .tensor("t", &[4], 0, &data[..16]);
    let e = expect_err(&b.build(), "dup");
    assert!(e.to_string().contains("duplicate tensor name `t`"), "{e}");

    // Huge tensor-name length.
    let mut b = header(1, 0);
    b.extend(u64::MAX.to_le_bytes());
    b.extend(gguf_str("padding padding padding"));
    let e = expect_err(&b, "name");
    assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
}

#[test]
fn zero_dimensional_and_absurd_shapes_are_errors() {
    let data = vec![0u8; 64];
    // A 0-dimensional tensor (the importer took its first extent).
    let e = expect_err(
        &Builder::default()
            .tensor("token_embd.weight", &[], 0, &data[..4])
            .build(),
        "0-d",
    );
    let msg = e.to_string();
    assert!(
        msg.contains("`token_embd.weight` has 0 dimensions"),
        "{msg}"
    );
    // An element count that fits, a byte count that does not.
    for (dims, ty) in [(&[1u64 << 62][..], 0u32), (&[1 << 60, 4][..], 28)] {
        let e = expect_err(
            &Builder::default().tensor("t", dims, ty, &data).build(),
            "bytes",
        );
        let msg = e.to_string();
        assert!(
            msg.contains("`t`") && msg.contains("overflows the byte count"),
            "{msg}"
        );
    }
    // A dimension count far beyond ggml's.
    let e = expect_err(
        &Builder::default()
            .tensor("t", &[1; 1000], 0, &data[..4])
            .build(),
        "dims",
    );
    assert!(e.to_string().contains("1000 dimensions"), "{e}");
}

#[test]
fn a_tensor_info_not_from_the_file_is_an_error_not_an_allocation() {
    let bytes = Builder::default().tensor("t", &[4], 0, &[0; 16]).build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    for dims in [vec![u64::MAX, u64::MAX], vec![1 << 40], vec![5]] {
        let info = TensorInfo {
            name: "t".into(),
            dims,
            ggml_type: GgmlType::F32,
            offset: 0,
        };
        let e = f.dequantize(&info).unwrap_err();
        assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
        let e = f.tensor_data(&info).unwrap_err();
        assert!(e.to_string().contains("`t`"), "{e}");
    }
    let mut out = vec![0.0; 4];
    let info = TensorInfo {
        name: "t".into(),
        dims: vec![4],
        ggml_type: GgmlType::F32,
        offset: u64::MAX,
    };
    assert!(f.dequantize_into(&info, &mut out).is_err());
}

fn strings(key_values: &[&str]) -> Vec<u8> {
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend((key_values.len() as u64).to_le_bytes());
    for t in key_values {
        v.extend(gguf_str(t));
    }
    v
}

fn i32s(values: &[i32]) -> Vec<u8> {
    let mut v = 5u32.to_le_bytes().to_vec();
    v.extend((values.len() as u64).to_le_bytes());
    for x in values {
        v.extend(x.to_le_bytes());
    }
    v
}

/// A byte-level BPE tokenizer's metadata over the tokens `a b ab`.
fn bpe() -> Builder {
    Builder::default()
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str("tokenizer.ggml.pre", "qwen2")
        .kv_raw("tokenizer.ggml.tokens", 9, &strings(&["a", "b", "ab"]))
}

/// The tokenizer conversions' first error on `b` (the file itself opens).
fn tokenizer_err(b: Builder) -> String {
    let bytes = b.build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let e = tokenizer_config(&f)
        .err()
        .or_else(|| tokenizer_json(&f).err())
        .expect("an error");
    let msg = e.to_string();
    let path = tmp.path().display().to_string();
    assert!(msg.starts_with(&path), "{msg}");
    assert_eq!(msg.matches(&path).count(), 1, "path repeated: {msg}");
    msg
}

#[test]
fn tokenizer_ids_beyond_the_vocabulary_name_the_key() {
    let merges = |m: &[&str]| strings(m);
    let ok = bpe().kv_raw("tokenizer.ggml.merges", 9, &merges(&["a b"]));
    {
        let bytes = ok.build();
        let tmp = temp_file(&bytes);
        let f = GgufFile::open(tmp.path()).unwrap();
        tokenizer_json(&f).unwrap();
        tokenizer_config(&f).unwrap();
    }
    for key in [
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
        "tokenizer.ggml.fim_pre_token_id",
        "tokenizer.ggml.prefix_token_id",
        "tokenizer.ggml.suffix_token_id",
    ] {
        let b = bpe()
            .kv_raw("tokenizer.ggml.merges", 9, &merges(&["a b"]))
            .kv_u32(key, 3);
        let msg = tokenizer_err(b);
        assert!(
            msg.contains(&format!("{key} = 3 is outside the vocabulary of 3")),
            "{msg}"
        );
    }
    // A negative id (i32 -1, as some converters write "none").
    let b = bpe()
        .kv_raw("tokenizer.ggml.merges", 9, &merges(&["a b"]))
        .kv_raw("tokenizer.ggml.eos_token_id", 5, &(-1i32).to_le_bytes());
    let msg = tokenizer_err(b);
    assert!(
        msg.contains("tokenizer.ggml.eos_token_id") && msg.contains("-1"),
        "{msg}"
    );
    // Merges of tokens the vocabulary does not have, or not a pair.
    for (merge, what) in [
        ("a c", "\"c\""),
        ("b a", "\"ba\""),
        ("ab", "not two tokens"),
    ] {
        let b = bpe().kv_raw("tokenizer.ggml.merges", 9, &merges(&["a b", merge]));
        let msg = tokenizer_err(b);
        assert!(
            msg.contains("tokenizer.ggml.merges[1]") && msg.contains(what),
            "{msg}"
        );
    }
}

#[test]
fn malformed_tokenizer_arrays_name_the_key() {
    let with_merges = |b: Builder| b.kv_raw("tokenizer.ggml.merges", 9, &strings(&["a b"]));
    // Token types of another length, or another element type.
    let msg = tokenizer_err(with_merges(bpe()).kv_raw("tokenizer.ggml.token_type", 9, &i32s(&[1])));
    assert!(
        msg.contains("tokenizer.ggml.token_type has 1 entries but tokenizer.ggml.tokens has 3"),
        "{msg}"
    );
    let msg = tokenizer_err(with_merges(bpe()).kv_raw(
        "tokenizer.ggml.token_type",
        9,
        &strings(&["1", "1", "1"]),
    ));
    assert!(msg.contains("tokenizer.ggml.token_type"), "{msg}");
    // Tokens that are not strings; no tokens at all.
    let msg = tokenizer_err(with_merges(
        Builder::default()
            .kv_str("tokenizer.ggml.model", "gpt2")
            .kv_raw("tokenizer.ggml.tokens", 9, &i32s(&[1, 2])),
    ));
    assert!(msg.contains("tokenizer.ggml.tokens"), "{msg}");
    let msg = tokenizer_err(with_merges(
        Builder::default()
            .kv_str("tokenizer.ggml.model", "gpt2")
            .kv_raw("tokenizer.ggml.tokens", 9, &strings(&[])),
    ));
    assert!(msg.contains("tokenizer.ggml.tokens has 0 entries"), "{msg}");
    // Merges that are not strings; a model name that is not a string.
    let msg = tokenizer_err(bpe().kv_raw("tokenizer.ggml.merges", 9, &i32s(&[1])));
    assert!(msg.contains("tokenizer.ggml.merges"), "{msg}");
    let msg = tokenizer_err(with_merges(bpe()).kv_u32("tokenizer.ggml.add_bos_token", 1));
    assert!(msg.contains("tokenizer.ggml.add_bos_token"), "{msg}");
}

#[test]
fn wrong_key_types_give_the_value() {
    let bytes = Builder::default()
        .kv_raw("n", 5, &(-1i32).to_le_bytes())
        .kv_str("s", "x")
        .build();
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    let e = f.get_u32("n").unwrap_err().to_string();
    assert!(e.contains("`n` has type i32 (= -1), expected u32"), "{e}");
    let e = f.get_u32("s").unwrap_err().to_string();
    assert!(e.contains("`s` has type string, expected u32"), "{e}");
}
