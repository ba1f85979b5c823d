//! Each contract's two directions against each other, and against the
//! definitions its docs give (docs/contracts.md, docs/codebook-format.md).

use std::collections::BTreeMap;

use ditto_contracts::{
    calibration::{self, Stat},
    codebook::{self, Format, FormatError},
    kernel_abi::{self, KERNELS},
    model::{attr, ModelConfig},
    payload::{self, IndexEntry, Manifest, Section, TrailerError},
    tensor_names::{self, Part},
};

fn model() -> ModelConfig {
    ModelConfig {
        arch: "qwen2".into(),
        n_layers: 2,
        d_model: 64,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        vocab: 320,
        max_ctx: 128,
    }
}

/// A file laid out as dittoc writes it: image, sections, trailer.
fn file_with_payload(manifest: &Manifest, len: usize) -> Vec<u8> {
    let mut file = vec![0x7fu8; len];
    file.extend_from_slice(&manifest.trailer());
    file
}

fn manifest() -> Manifest {
    let sections = BTreeMap::from([
        (
            payload::WEIGHTS.to_string(),
            Section {
                offset: 4096,
                len: 256,
            },
        ),
        (
            payload::TOKENIZER.to_string(),
            Section {
                offset: 8192,
                len: 10,
            },
        ),
        (
            payload::TOKENIZER_CONFIG.to_string(),
            Section {
                offset: 12288,
                len: 10,
            },
        ),
    ]);
    let weights_index = BTreeMap::from([(
        "token_embd.weight".to_string(),
        IndexEntry {
            offset: 64,
            bytes: 192,
            shape: vec![4, 12],
        },
    )]);
    Manifest {
        format: payload::FORMAT,
        sections,
        model: model(),
        weights_index,
    }
}

#[test]
fn a_written_trailer_reads_back() {
    let m = manifest();
    let file = file_with_payload(&m, 12288 + 10);
    assert_eq!(payload::read_trailer(&file), Ok(m));
}

#[test]
fn broken_trailers_are_named() {
    let m = manifest();
    assert_eq!(
        payload::read_trailer(b"short"),
        Err(TrailerError::NoPayload)
    );
    assert_eq!(
        payload::read_trailer(&[0u8; 64]),
        Err(TrailerError::NoPayload)
    );
    // The sections run past the manifest when the file is too short for them.
    let short = file_with_payload(&m, 9000);
    let Err(TrailerError::Bad(why)) = payload::read_trailer(&short) else {
        panic!("a section past the manifest was accepted")
    };
    assert!(why.contains("tokenizer"), "{why}");
    // A manifest length larger than the file.
    let mut file = file_with_payload(&m, 12298);
    let n = file.len();
    file[n - 16..n - 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let Err(TrailerError::Bad(why)) = payload::read_trailer(&file) else {
        panic!("a huge manifest length was accepted")
    };
    assert!(why.contains("manifest length"), "{why}");
    // An index entry outside the weights section.
    let mut outside = m.clone();
    outside
        .weights_index
        .get_mut("token_embd.weight")
        .unwrap()
        .offset = 200;
    let Err(TrailerError::Bad(why)) = payload::read_trailer(&file_with_payload(&outside, 12298))
    else {
        panic!("an index entry past the weights was accepted")
    };
    assert!(why.contains("token_embd.weight"), "{why}");
    // A zero dimension names the manifest field.
    let mut zero = m.clone();
    zero.model.n_kv_heads = 0;
    assert_eq!(
        payload::read_trailer(&file_with_payload(&zero, 12298)),
        Err(TrailerError::Bad("model.n_kv_heads is 0".into()))
    );
    let mut format = m;
    format.format = 2;
    let Err(TrailerError::Bad(why)) = payload::read_trailer(&file_with_payload(&format, 12298))
    else {
        panic!("format 2 was accepted")
    };
    assert!(why.contains("format 2"), "{why}");
}

#[test]
fn the_model_config_comes_from_the_module_attributes() {
    let want = model();
    let attributes: BTreeMap<&str, i64> = BTreeMap::from([
        (attr::N_LAYERS, 2),
        (attr::D_MODEL, 64),
        (attr::N_HEADS, 4),
        (attr::N_KV_HEADS, 2),
        (attr::HEAD_DIM, 16),
        (attr::VOCAB, 320),
        (attr::MAX_CTX, 128),
    ]);
    let got = ModelConfig::from_attributes(
        "qwen2".into(),
        |key| attributes.get(key).copied().ok_or(format!("no {key}")),
        |key, v| format!("{key} = {v}"),
    );
    assert_eq!(got, Ok(want.clone()));
    let missing = ModelConfig::from_attributes(
        "qwen2".into(),
        |key| (key != attr::VOCAB).then_some(1).ok_or(format!("no {key}")),
        |key, v| format!("{key} = {v}"),
    );
    assert_eq!(missing, Err("no ditto.vocab".into()));
    let negative = ModelConfig::from_attributes(
        "qwen2".into(),
        |key| Ok::<_, String>(if key == attr::HEAD_DIM { -4 } else { 1 }),
        |key, v| format!("{key} = {v}"),
    );
    assert_eq!(negative, Err("ditto.head_dim = -4".into()));
    // The manifest's spelling of the same configuration.
    let json = serde_json::to_value(&want).unwrap();
    for (name, value) in want.integers() {
        assert_eq!(json[name], value, "{name}");
    }
    assert_eq!(serde_json::from_value::<ModelConfig>(json).unwrap(), want);
}

/// Bit `t` of the stream is bit `t mod 8` of byte `t / 8`; index `i` is
/// bits `[i·b, (i+1)·b)` (docs/codebook-format.md), one bit at a time.
fn bitwise_index(stream: &[u8], i: usize, bits: usize) -> u8 {
    (0..bits)
        .map(|t| {
            let bit = i * bits + t;
            ((stream[bit / 8] >> (bit % 8)) & 1) << t
        })
        .sum()
}

#[test]
fn packing_follows_the_bitwise_definition() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for bits in codebook::SUPPORTED_BITS {
        for len in [1usize, 7, 8, 9, 63, 64, 65, 200] {
            let indices: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % (1u64 << bits)) as u8
                })
                .collect();
            let stream = codebook::pack(&indices, bits).unwrap();
            assert_eq!(stream.len(), codebook::packed_len(len, bits));
            for (i, &q) in indices.iter().enumerate() {
                assert_eq!(
                    bitwise_index(&stream, i, bits as usize),
                    q,
                    "b={bits} i={i}"
                );
            }
            assert_eq!(codebook::unpack(&stream, bits, len).unwrap(), indices);
        }
    }
}

#[test]
fn the_format_rejects_what_the_docs_exclude() {
    assert_eq!(
        Format::new(4, 64, 7, 64),
        Err(FormatError::UnsupportedBits { bits: 7 })
    );
    assert_eq!(
        Format::new(4, 64, 4, 12),
        Err(FormatError::BadBlock { block: 12 })
    );
    assert_eq!(
        Format::new(0, 64, 4, 64),
        Err(FormatError::BadShape { n: 0, k: 64 })
    );
    assert_eq!(
        Format::new(4, 3, 3, 64),
        Err(FormatError::RowNotByteAligned { k: 3, bits: 3 })
    );
    assert_eq!(
        Format::new(usize::MAX / 2, 4, 4, 64),
        Err(FormatError::BadShape {
            n: usize::MAX / 2,
            k: 4
        })
    );
    assert!(Format::new_or_empty(0, 64, 4, 64).unwrap().is_empty());
    assert_eq!(
        codebook::check_bits_i64(-1),
        Err(FormatError::UnsupportedBits { bits: -1 })
    );
    assert_eq!(
        codebook::check_bits_i64(256 + 4),
        Err(FormatError::UnsupportedBits { bits: 260 })
    );
    assert_eq!(
        codebook::check_block_i64(-8),
        Err(FormatError::BadBlock { block: -8 })
    );
    assert_eq!(codebook::check_block_i64(512), Ok(512));
    let f = Format::new(3, 40, 4, 64).unwrap();
    // 120 weights: 60 index bytes, 2 codebooks (the last one short) of 16.
    assert_eq!((f.index_bytes(), f.blocks(), f.codebook_len()), (60, 2, 32));
    assert_eq!(f.check_arrays(60, 32), Ok(()));
    assert!(f.check_arrays(59, 32).is_err() && f.check_arrays(60, 31).is_err());
}

#[test]
fn stored_names_split_back() {
    for part in Part::ALL {
        let stored = tensor_names::stored("blk.0.attn_q.weight", part);
        assert_eq!(
            tensor_names::split(&stored),
            Some(("blk.0.attn_q.weight", part))
        );
    }
    assert_eq!(tensor_names::stored("w", Part::Indices), "w#indices");
    assert_eq!(tensor_names::stored("w", Part::Codebooks), "w#codebooks");
    assert_eq!(tensor_names::split("blk.0.attn_q.weight"), None);
    for stat in Stat::ALL {
        let key = calibration::key("blk.3.ffn_down.weight", stat);
        assert_eq!(
            calibration::split(&key),
            Some(("blk.3.ffn_down.weight", stat))
        );
    }
    assert_eq!(calibration::key("w", Stat::Xtx), "w.xtx");
    assert_eq!(calibration::split("w.weight"), None);
}

#[test]
fn every_kernel_op_has_one_entry_and_distinct_callees() {
    let mut callees: Vec<&str> = KERNELS.iter().map(|k| k.callee).collect();
    callees.sort_unstable();
    callees.dedup();
    assert_eq!(callees.len(), KERNELS.len());
    for k in KERNELS {
        assert_eq!(kernel_abi::kernel(k.op).map(|f| f.callee), Some(k.callee));
    }
    assert!(kernel_abi::kernel("linalg.matmul").is_none());
}

#[test]
fn a_manifest_is_checked_against_the_compiled_shape() {
    let config = model();
    let compiled = config.compiled_shape();
    assert_eq!(config.check_compiled(&compiled), Ok(()));
    // The order is the manifest's integer fields'.
    let values: Vec<i64> = config.integers().iter().map(|&(_, v)| v as i64).collect();
    assert_eq!(compiled.to_vec(), values);
    let mut other = config.clone();
    other.n_kv_heads += 1;
    let error = other.check_compiled(&compiled).unwrap_err();
    assert!(
        error.contains(&format!(
            "model.n_kv_heads = {}, but this executable's code was compiled for {}",
            other.n_kv_heads, config.n_kv_heads
        )),
        "{error}"
    );
    let mut huge = config;
    huge.max_ctx = usize::MAX;
    assert!(huge.check_compiled(&compiled).is_err());
}
