//! Payload files written by the test per contracts.md §2, read back with
//! `Payload::open`; broken trailers and manifests give clean errors.

mod common;

use std::path::Path;

use common::payload_file::{append_manifest, model_json, with_payload, write, Sections};
use ditto_rt::payload::Payload;
use ditto_rt::Error;

const IMAGE: &[u8] = b"\x7fELF pretend this is an executable image, any bytes will do";

fn sections() -> Sections<'static> {
    Sections {
        weights: b"the weights \x00\x01\x02",
        tokenizer: b"{\"tokenizer\": true}",
        tokenizer_config: b"{\"eos_token_ids\": [2]}",
    }
}

fn open_bytes(bytes: &[u8]) -> Result<Payload, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    write(&path, bytes);
    Payload::open(&path)
}

fn bad_payload(bytes: &[u8]) -> String {
    match open_bytes(bytes) {
        Err(e @ Error::BadPayload { .. }) => e.to_string(),
        Err(e) => panic!("expected a bad-payload error, got {e}"),
        Ok(_) => panic!("expected a bad-payload error, got a payload"),
    }
}

#[test]
fn sections_and_model_read_back() {
    let bytes = with_payload(IMAGE, &sections(), model_json(300, 2048));
    let payload = open_bytes(&bytes).unwrap();
    assert_eq!(payload.weights(), sections().weights);
    assert_eq!(payload.tokenizer_json(), sections().tokenizer);
    assert_eq!(payload.tokenizer_config_json(), sections().tokenizer_config);
    assert_eq!(
        payload.weights().as_ptr() as usize % 4096,
        0,
        "weights are page-aligned in memory"
    );
    let model = payload.model();
    assert_eq!(
        (model.vocab, model.max_ctx, model.n_layers, model.d_model),
        (300, 2048, 2, 4)
    );
    assert_eq!(model.arch, "fake");
    assert_eq!(payload.manifest().sections["weights"].offset, 4096);
}

#[test]
fn a_file_without_trailer_has_no_payload() {
    for bytes in [&b""[..], b"short", IMAGE, &[0u8; 10000]] {
        let err = open_bytes(bytes).err().expect("no payload");
        assert!(matches!(err, Error::NoPayload { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("this executable has no model payload (was it built by dittoc?)"));
        assert_eq!(err.exit_code(), 1);
    }
}

#[test]
fn a_missing_file_is_named() {
    let err = Payload::open(Path::new("/nonexistent/model"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent/model"), "{err}");
}

#[test]
fn corrupt_trailers_are_clean_errors() {
    let good = with_payload(IMAGE, &sections(), model_json(300, 2048));

    // Manifest length larger than the file.
    let mut bytes = good.clone();
    let at = bytes.len() - 16;
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(bad_payload(&bytes).contains("corrupt trailer"));

    // Manifest length 0.
    bytes[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
    assert!(bad_payload(&bytes).contains("corrupt trailer"));

    // Manifest length one short: the JSON loses its first brace.
    let len = u64::from_le_bytes(good[at..at + 8].try_into().unwrap());
    bytes[at..at + 8].copy_from_slice(&(len - 1).to_le_bytes());
    assert!(bad_payload(&bytes).contains("manifest"));

    // Truncated file: the trailer is gone.
    assert!(matches!(
        open_bytes(&good[..good.len() - 3]),
        Err(Error::NoPayload { .. })
    ));
}

#[test]
fn bad_manifests_are_clean_errors() {
    let manifest_with = |manifest: serde_json::Value| {
        let mut bytes = IMAGE.to_vec();
        bytes.resize(8192, 0);
        bytes.extend_from_slice(b"0123456789");
        append_manifest(&mut bytes, manifest.to_string().as_bytes());
        bad_payload(&bytes)
    };
    let sec = |offset: u64, len: u64| serde_json::json!({"offset": offset, "len": len});
    let all = |weights| serde_json::json!({"weights": weights, "tokenizer": sec(8192, 2), "tokenizer_config": sec(8192, 3)});

    let err = manifest_with(
        serde_json::json!({"format": 2, "sections": all(sec(8192, 4)), "model": model_json(5, 8)}),
    );
    assert!(err.contains("format 2"), "{err}");

    let err = manifest_with(
        serde_json::json!({"format": 1, "sections": all(sec(100, 4)), "model": model_json(5, 8)}),
    );
    assert!(err.contains("\"weights\"") && err.contains("4096"), "{err}");

    let err = manifest_with(
        serde_json::json!({"format": 1, "sections": all(sec(8192, 1 << 40)), "model": model_json(5, 8)}),
    );
    assert!(
        err.contains("\"weights\"") && err.contains("runs past"),
        "{err}"
    );

    let err = manifest_with(
        serde_json::json!({"format": 1, "sections": all(sec(u64::MAX - 4095, 4096)), "model": model_json(5, 8)}),
    );
    assert!(err.contains("runs past"), "{err}");

    let err = manifest_with(serde_json::json!({"format": 1,
        "sections": {"weights": sec(8192, 4), "tokenizer": sec(8192, 4)}, "model": model_json(5, 8)}));
    assert!(err.contains("tokenizer_config"), "{err}");

    let err = manifest_with(
        serde_json::json!({"format": 1, "sections": all(sec(8192, 4)), "model": model_json(0, 8)}),
    );
    assert!(err.contains("vocab is 0"), "{err}");

    let err = manifest_with(serde_json::json!({"format": 1, "sections": all(sec(8192, 4))}));
    assert!(err.contains("model"), "{err}");

    let mut bytes = IMAGE.to_vec();
    append_manifest(&mut bytes, b"{not json");
    assert!(bad_payload(&bytes).contains("not valid JSON"));
}
