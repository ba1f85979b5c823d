//! Metadata and tensor directory parsing against a file written by gguf-py's
//! GGUFWriter (tests/fixtures/metadata.gguf) and the values it was given
//! (metadata.expected.json).

mod common;

use common::{fixture, temp_file};
use ditto_gguf::{Array, GgmlType, GgufError, GgufFile, Value};
use serde_json::Value as Json;

fn expected() -> Json {
    let text = std::fs::read_to_string(fixture("metadata.expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn json_f64(j: &Json) -> f64 {
    j.as_f64().unwrap()
}

/// Compares one array with its expected JSON list.
fn check_array(key: &str, a: &Array, ty: &str, want: &[Json]) {
    assert_eq!(a.len(), want.len(), "{key}");
    match (a, ty) {
        (Array::U8(v), "UINT8") => assert!(v
            .iter()
            .zip(want)
            .all(|(x, w)| *x as u64 == w.as_u64().unwrap())),
        (Array::I8(v), "INT8") => assert!(v
            .iter()
            .zip(want)
            .all(|(x, w)| *x as i64 == w.as_i64().unwrap())),
        (Array::U16(v), "UINT16") => assert!(v
            .iter()
            .zip(want)
            .all(|(x, w)| *x as u64 == w.as_u64().unwrap())),
        (Array::I16(v), "INT16") => assert!(v
            .iter()
            .zip(want)
            .all(|(x, w)| *x as i64 == w.as_i64().unwrap())),
        (Array::U32(v), "UINT32") => assert!(v
            .iter()
            .zip(want)
            .all(|(x, w)| *x as u64 == w.as_u64().unwrap())),
        (Array::I32(v), "INT32") => assert!(v
            .iter()
            .zip(want)
            .all(|(x, w)| *x as i64 == w.as_i64().unwrap())),
        (Array::U64(v), "UINT64") => {
            assert!(v.iter().zip(want).all(|(x, w)| *x == w.as_u64().unwrap()))
        }
        (Array::I64(v), "INT64") => {
            assert!(v.iter().zip(want).all(|(x, w)| *x == w.as_i64().unwrap()))
        }
        (Array::F32(v), "FLOAT32") => {
            assert!(v.iter().zip(want).all(|(x, w)| *x as f64 == json_f64(w)))
        }
        (Array::F64(v), "FLOAT64") => assert!(v.iter().zip(want).all(|(x, w)| *x == json_f64(w))),
        (Array::Bool(v), "BOOL") => {
            assert!(v.iter().zip(want).all(|(x, w)| *x == w.as_bool().unwrap()))
        }
        (Array::String(v), "STRING") => {
            assert!(v.iter().zip(want).all(|(x, w)| x == w.as_str().unwrap()))
        }
        (a, ty) => panic!("{key}: array {a:?} is not {ty}"),
    }
}

#[test]
fn every_value_type_reads_as_written() {
    let f = GgufFile::open(fixture("metadata.gguf")).unwrap();
    let exp = expected();
    let kv = exp["kv"].as_object().unwrap();
    assert_eq!(f.metadata().count(), kv.len());
    for (key, e) in kv {
        let ty = e["type"].as_str().unwrap();
        let want = &e["value"];
        let v = f.get(key).unwrap_or_else(|| panic!("missing {key}"));
        match (v, ty) {
            (Value::U8(x), "UINT8") => assert_eq!(*x as u64, want.as_u64().unwrap()),
            (Value::I8(x), "INT8") => assert_eq!(*x as i64, want.as_i64().unwrap()),
            (Value::U16(x), "UINT16") => assert_eq!(*x as u64, want.as_u64().unwrap()),
            (Value::I16(x), "INT16") => assert_eq!(*x as i64, want.as_i64().unwrap()),
            (Value::U32(x), "UINT32") => assert_eq!(*x as u64, want.as_u64().unwrap()),
            (Value::I32(x), "INT32") => assert_eq!(*x as i64, want.as_i64().unwrap()),
            (Value::U64(x), "UINT64") => assert_eq!(*x, want.as_u64().unwrap()),
            (Value::I64(x), "INT64") => assert_eq!(*x, want.as_i64().unwrap()),
            (Value::F32(x), "FLOAT32") => assert_eq!(*x as f64, json_f64(want)),
            (Value::F64(x), "FLOAT64") => assert_eq!(*x, json_f64(want)),
            (Value::Bool(x), "BOOL") => assert_eq!(*x, want.as_bool().unwrap()),
            (Value::String(x), "STRING") => assert_eq!(x, want.as_str().unwrap()),
            (Value::Array(Array::Array(inner)), "ARRAY") => {
                // [[1, 2, 3], [4], ["x", "y"]]: gguf-py infers i32 and string.
                let want = want.as_array().unwrap();
                assert_eq!(inner.len(), want.len());
                for (a, w) in inner.iter().zip(want) {
                    let w = w.as_array().unwrap();
                    let ty = if w[0].is_string() { "STRING" } else { "INT32" };
                    check_array(key, a, ty, w);
                }
            }
            (Value::Array(a), t) if t.starts_with("ARRAY[") => {
                check_array(key, a, &t[6..t.len() - 1], want.as_array().unwrap())
            }
            (v, ty) => panic!("{key}: read {v:?}, written as {ty} {want}"),
        }
    }
}

#[test]
fn typed_accessors() {
    let path = fixture("metadata.gguf");
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture().unwrap(), "testarch");
    assert_eq!(f.arch_u32("block_count").unwrap(), 3);
    assert_eq!(f.get_u32("t.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_u32("t.u8").unwrap(), 250); // widening is allowed
    assert_eq!(f.get_u64("t.u64").unwrap(), (1u64 << 63) + 12345);
    assert_eq!(f.get_i32("t.i16").unwrap(), -32000);
    assert_eq!(f.get_i64("t.i64").unwrap(), -(1i64 << 62) - 7);
    assert_eq!(f.get_f32("t.f32").unwrap(), 0.15625);
    assert_eq!(f.get_f64("t.f64").unwrap(), 1.0000000000000002);
    assert!(f.get_bool("t.bool_true").unwrap());
    assert_eq!(f.get_str("t.string").unwrap(), "héllo wörld ✓ 中文");
    assert_eq!(f.get_str("t.empty_string").unwrap(), "");
    assert_eq!(
        f.get_str_array("t.arr_str").unwrap(),
        &["a", "", "Ġhello", "<|im_end|>", "ünï", "a b"]
    );
    assert_eq!(
        f.get_i32_array("t.arr_i32").unwrap(),
        &[-5, 0, 5, 2147483647]
    );
    assert_eq!(f.get_u32_array("t.arr_u32").unwrap(), &[7, 4294967295]);
    assert_eq!(f.get_f32_array("t.arr_f32").unwrap(), &[0.5, -1.25, 3.0]);
    assert_eq!(f.get_opt::<u32>("no.such.key").unwrap(), None);

    // Errors name the file, the key and both types.
    let e = f.get_u32("t.i8").unwrap_err(); // -100 does not fit in u32
    assert!(matches!(e, GgufError::WrongKeyType { .. }));
    let e = f.get_u32("t.string").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("metadata.gguf")
            && msg.contains("t.string")
            && msg.contains("string")
            && msg.contains("u32"),
        "{msg}"
    );
    let e = f.get_str_array("t.arr_i32").unwrap_err();
    assert!(e.to_string().contains("array[i32]"), "{e}");
    let e = f.get_f32("t.f64").unwrap_err();
    assert!(matches!(e, GgufError::WrongKeyType { .. }));
    let e = f.get_str("no.such.key").unwrap_err();
    assert!(matches!(e, GgufError::MissingKey { .. }));
    assert!(e.to_string().contains("no.such.key") && e.to_string().contains("metadata.gguf"));
    let e = f.get_tensor("nope").unwrap_err();
    assert!(e.to_string().contains("nope"));
}

#[test]
fn tensor_directory_and_data() {
    let f = GgufFile::open(fixture("metadata.gguf")).unwrap();
    let exp = expected();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    let tensors = exp["tensors"].as_array().unwrap();
    assert_eq!(f.tensors().len(), tensors.len());
    for (t, e) in f.tensors().iter().zip(tensors) {
        assert_eq!(t.name, e["name"].as_str().unwrap());
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.shape(), shape, "{}", t.name);
        let mut dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        dims.reverse();
        assert_eq!(t.dims, dims, "GGUF order is reversed: {}", t.name);
        assert_eq!(t.n_elements(), shape.iter().product::<usize>());
        assert_eq!(t.offset % 64, 0);
        let ty = e["type"].as_str().unwrap();
        assert_eq!(t.ggml_type.name(), ty);
        assert_eq!(f.tensor(&t.name), Some(t));
        if ty == "F32" {
            assert_eq!(t.n_bytes(), 4 * t.n_elements());
            let want: Vec<f32> = e["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(f.dequantize(t).unwrap(), want, "{}", t.name);
        } else {
            assert_eq!(t.ggml_type, GgmlType::Q8_0);
            assert_eq!(t.n_bytes(), 34 * t.n_elements() / 32);
            assert_eq!(f.tensor_data(t).unwrap().len(), t.n_bytes());
        }
    }
}

#[test]
fn version_2_is_accepted() {
    let mut bytes = std::fs::read(fixture("metadata.gguf")).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let tmp = temp_file(&bytes);
    let f = GgufFile::open(tmp.path()).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.get_u32("t.u32").unwrap(), 4_000_000_000);
}

#[test]
fn file_can_be_shared_across_threads() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<GgufFile>();
    let f = GgufFile::open(fixture("metadata.gguf")).unwrap();
    std::thread::scope(|s| {
        for t in f.tensors() {
            let f = &f;
            s.spawn(move || f.dequantize(t).unwrap());
        }
    });
}
