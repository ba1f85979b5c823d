//! The payload contract across its two sides: dittoc's writer
//! (`ditto_codegen::payload::append`) on a file that stands for the linked
//! image, read back by the runtime's reader (`ditto_rt::payload::Payload`).

use std::collections::HashMap;

use ditto_codegen::payload::{append, WeightLayout};
use ditto_contracts::model::ModelConfig;
use ditto_passes::weights::{Element, WeightUse};
use safetensors::{serialize_to_file, tensor::TensorView, Dtype};

#[test]
fn what_dittoc_appends_the_runtime_reads() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("m.weights");
    let embd: Vec<u8> = (0..4 * 12 * 4).map(|i| i as u8).collect();
    let idx: Vec<u8> = (0..40).map(|i| (i * 7) as u8).collect();
    let tensors = HashMap::from([
        (
            "token_embd.weight".to_string(),
            TensorView::new(Dtype::F32, vec![4, 12], &embd).unwrap(),
        ),
        (
            "w#indices".to_string(),
            TensorView::new(Dtype::U8, vec![40], &idx).unwrap(),
        ),
    ]);
    serialize_to_file(&tensors, None, &weights).unwrap();
    let used = vec![
        WeightUse {
            name: "w#indices".into(),
            layout: Some((Element::I8, vec![40])),
            type_text: "memref<40xi8>".into(),
        },
        WeightUse {
            name: "token_embd.weight".into(),
            layout: Some((Element::F32, vec![4, 12])),
            type_text: "memref<4x12xf32>".into(),
        },
    ];
    let layout = WeightLayout::new(&weights, &used).unwrap();

    let (tokenizer, tokenizer_config) = (dir.path().join("t.json"), dir.path().join("tc.json"));
    std::fs::write(&tokenizer, b"{\"tokenizer\": true}").unwrap();
    std::fs::write(&tokenizer_config, b"{\"bos_token_id\": null}").unwrap();
    let exe = dir.path().join("model");
    let image: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&exe, &image).unwrap();
    let model = ModelConfig {
        arch: "llama".into(),
        n_layers: 1,
        d_model: 12,
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 6,
        vocab: 4,
        max_ctx: 32,
    };
    // A datastore made with the tokenizer, baked in.
    let store = ditto_datastore::SuffixStore::build(&[vec![1, 2, 3], vec![2, 3]]).unwrap();
    let fingerprint = ditto_contracts::payload::tokenizer_fingerprint(b"{\"tokenizer\": true}");
    let summary = ditto_datastore::file::Summary {
        files: 2,
        source_bytes: 9,
    };
    let datastore = dir.path().join("code.ds");
    std::fs::write(
        &datastore,
        ditto_datastore::file::encode(&store, &fingerprint, summary),
    )
    .unwrap();
    append(
        &exe,
        &layout,
        &tokenizer,
        &tokenizer_config,
        Some(&datastore),
        model.clone(),
    )
    .unwrap();

    let file = std::fs::read(&exe).unwrap();
    assert_eq!(
        &file[..image.len()],
        &image[..],
        "the image is left as it was"
    );
    let payload = ditto_rt::payload::Payload::open(&exe).unwrap();
    assert_eq!(payload.model(), &model);
    assert_eq!(payload.tokenizer_json(), b"{\"tokenizer\": true}");
    assert_eq!(payload.tokenizer_config_json(), b"{\"bos_token_id\": null}");
    let offsets = layout.offsets();
    for (name, data) in [("token_embd.weight", &embd), ("w#indices", &idx)] {
        let entry = &payload.manifest().weights_index[name];
        assert_eq!(entry.offset, offsets[name], "{name}");
        assert_eq!(entry.offset % 64, 0, "{name} is 64-byte aligned");
        let at = entry.offset as usize;
        assert_eq!(&payload.weights()[at..at + data.len()], &data[..], "{name}");
    }
    assert_eq!(
        payload.manifest().weights_index["w#indices"].shape,
        vec![40]
    );
    // The datastore section: page-aligned, read in place, checked against
    // the fingerprint of the tokenizer section as the runtime computes it.
    let (bytes, section) = payload.datastore().expect("a datastore section");
    assert_eq!(section.offset % 4096, 0);
    let expect = ditto_datastore::file::Expect {
        fingerprint: &ditto_contracts::payload::tokenizer_fingerprint(payload.tokenizer_json()),
        vocab: 4,
        order: ditto_datastore::file::Order::Full,
    };
    let baked = ditto_datastore::file::read_in(
        &bytes,
        section.offset as usize,
        section.len as usize,
        "the datastore section",
        expect,
    )
    .unwrap();
    assert_eq!(baked.store, store);
    assert_eq!(baked.summary, summary);
}

/// The offsets `ditto-lower-weights` compiled in (its module attribute) must
/// be the payload's; dittoc refuses to write a payload the code would
/// misread.
#[test]
fn compiled_offsets_must_match_the_payload_layout() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("m.weights");
    let a: Vec<u8> = vec![0; 3 * 4];
    let b: Vec<u8> = vec![0; 5 * 4];
    let tensors = HashMap::from([
        (
            "a".to_string(),
            TensorView::new(Dtype::F32, vec![3], &a).unwrap(),
        ),
        (
            "b".to_string(),
            TensorView::new(Dtype::F32, vec![5], &b).unwrap(),
        ),
    ]);
    serialize_to_file(&tensors, None, &weights).unwrap();

    ditto_passes::registry::register();
    let context = ditto_ir::create_context().unwrap();
    let source = r#"func.func @f(%blob: memref<?xi8>) {
  %a = "ditto.weight"() {name = "a"} : () -> memref<3xf32>
  %b = "ditto.weight"() {name = "b"} : () -> memref<5xf32>
  return
}"#;
    let mut module = ditto_ir::parse_module(&context, source, "m.mlir").unwrap();
    let used = ditto_passes::weights::weights_used(&module).unwrap();
    let layout = WeightLayout::new(&weights, &used).unwrap();
    ditto_ir::run_pipeline(
        &context,
        &mut module,
        "builtin.module(ditto-lower-weights)",
        false,
    )
    .unwrap();
    assert_eq!(
        ditto_passes::weights::recorded_layout(&module).unwrap(),
        vec![("a".to_string(), 0), ("b".to_string(), 64)]
    );
    layout.check_compiled(&module).unwrap();

    for (recorded, expected) in [
        (
            r#"[["a", 0], ["b", 128]]"#,
            r#"the payload puts "b" at byte 64, but the code was compiled to read "b" at byte 128"#,
        ),
        (
            r#"[["a", 0]]"#,
            "the payload holds 2 weights, but the code was compiled to read 1",
        ),
    ] {
        let other = ditto_ir::parse_module(
            &context,
            &format!("module attributes {{ditto.weight_layout = {recorded}}} {{}}"),
            "other.mlir",
        )
        .unwrap();
        let error = layout.check_compiled(&other).unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
    }
    let none = ditto_ir::parse_module(&context, "module {}", "none.mlir").unwrap();
    let error = layout.check_compiled(&none).unwrap_err().to_string();
    assert!(error.contains("ditto.weight_layout"), "{error}");
}
