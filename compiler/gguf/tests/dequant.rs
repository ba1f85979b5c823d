//! Dequantization against gguf-py's `gguf.quants.dequantize` (fixtures from
//! tests/fixtures/make_fixtures.py): every value must be bit-identical.

mod common;

use common::{assert_same_f32, fixture, read_f32, temp_file, Builder};
use ditto_gguf::{GgmlType, GgufError, GgufFile};

const TYPES: &[(&str, GgmlType)] = &[
    ("f32", GgmlType::F32),
    ("f16", GgmlType::F16),
    ("bf16", GgmlType::BF16),
    ("q4_0", GgmlType::Q4_0),
    ("q4_1", GgmlType::Q4_1),
    ("q5_0", GgmlType::Q5_0),
    ("q5_1", GgmlType::Q5_1),
    ("q8_0", GgmlType::Q8_0),
    ("q4_k", GgmlType::Q4_K),
    ("q5_k", GgmlType::Q5_K),
    ("q6_k", GgmlType::Q6_K),
];

#[test]
fn every_supported_type_matches_gguf_py() {
    for &(name, ty) in TYPES {
        let f = GgufFile::open(fixture(&format!("dq_{name}.gguf"))).unwrap();
        let want = read_f32(&format!("dq_{name}.expected.f32"));
        let mut got = Vec::new();
        assert!(
            f.tensors().len() >= 2,
            "{name}: fixture has several tensors"
        );
        for t in f.tensors() {
            assert_eq!(t.ggml_type, ty, "{name}: tensor {}", t.name);
            assert!(ty.can_dequantize());
            let v = f.dequantize(t).unwrap();
            assert_eq!(v.len(), t.n_elements());
            // The streaming form gives the same values.
            let mut buf = vec![f32::NAN; t.n_elements()];
            f.dequantize_into(t, &mut buf).unwrap();
            assert_same_f32(&format!("{name}/{} into", t.name), &buf, &v);
            got.extend(v);
        }
        assert_same_f32(name, &got, &want);
    }
}

/// Large tensors take the parallel path: a tensor made of the fixture's
/// blocks repeated many times must give the fixture's values repeated.
#[test]
fn large_tensors_are_split_across_threads_correctly() {
    for &(name, ty) in TYPES {
        let f = GgufFile::open(fixture(&format!("dq_{name}.gguf"))).unwrap();
        let want_all = read_f32(&format!("dq_{name}.expected.f32"));
        // The last tensor of each fixture is random blocks (or plain values).
        let t = f.tensors().last().unwrap();
        let n = t.n_elements();
        let start = want_all.len() - n;
        let want_one = &want_all[start..];
        let raw = f.tensor_data(t).unwrap();
        let reps = (300_000 / n).max(1) + 7;
        let data: Vec<u8> = raw.repeat(reps);
        let elems = (n * reps) as u64;
        let bytes = Builder::default()
            .tensor("big", &[elems], ty.id(), &data)
            .build();
        let tmp = temp_file(&bytes);
        let big = GgufFile::open(tmp.path()).unwrap();
        let got = big.dequantize(big.get_tensor("big").unwrap()).unwrap();
        let want: Vec<f32> = want_one.repeat(reps);
        assert_same_f32(&format!("{name} x{reps}"), &got, &want);
    }
}

#[test]
fn unsupported_type_is_a_clear_error() {
    let path = fixture("unsupported_q2_k.gguf");
    let f = GgufFile::open(&path).unwrap();
    let t = f.get_tensor("w").unwrap();
    assert_eq!(t.ggml_type, GgmlType::Q2_K);
    assert!(!t.ggml_type.can_dequantize());
    let err = f.dequantize(t).unwrap_err();
    assert!(
        matches!(&err, GgufError::UnsupportedType { tensor, ty: GgmlType::Q2_K, .. } if tensor == "w"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("unsupported_q2_k.gguf") && msg.contains("Q2_K") && msg.contains("`w`"),
        "{msg}"
    );
    let mut buf = vec![0f32; 256];
    assert!(f.dequantize_into(t, &mut buf).is_err());
}

#[test]
fn wrong_buffer_size_is_an_error() {
    let f = GgufFile::open(fixture("dq_q4_k.gguf")).unwrap();
    let t = &f.tensors()[0];
    let mut buf = vec![0f32; t.n_elements() - 1];
    let err = f.dequantize_into(t, &mut buf).unwrap_err();
    assert!(matches!(err, GgufError::BufferSize { .. }), "{err:?}");
    assert!(err.to_string().contains("dq_q4_k.gguf"));
}

#[test]
fn type_table_matches_ggml() {
    // ids and sizes as in ggml.h / ggml.c type_traits.
    let expect = [
        (GgmlType::F32, 0, 1, 4),
        (GgmlType::F16, 1, 1, 2),
        (GgmlType::Q4_0, 2, 32, 18),
        (GgmlType::Q4_1, 3, 32, 20),
        (GgmlType::Q5_0, 6, 32, 22),
        (GgmlType::Q5_1, 7, 32, 24),
        (GgmlType::Q8_0, 8, 32, 34),
        (GgmlType::Q8_1, 9, 32, 36),
        (GgmlType::Q2_K, 10, 256, 84),
        (GgmlType::Q3_K, 11, 256, 110),
        (GgmlType::Q4_K, 12, 256, 144),
        (GgmlType::Q5_K, 13, 256, 176),
        (GgmlType::Q6_K, 14, 256, 210),
        (GgmlType::Q8_K, 15, 256, 292),
        (GgmlType::IQ4_NL, 20, 32, 18),
        (GgmlType::IQ4_XS, 23, 256, 136),
        (GgmlType::BF16, 30, 1, 2),
    ];
    for (ty, id, block, size) in expect {
        assert_eq!(ty.id(), id, "{ty}");
        assert_eq!(GgmlType::from_id(id), Some(ty));
        assert_eq!((ty.block_size(), ty.type_size()), (block, size), "{ty}");
    }
    for removed in [4, 5, 31, 32, 33, 36, 37, 38, 1000] {
        assert_eq!(GgmlType::from_id(removed), None);
    }
}
