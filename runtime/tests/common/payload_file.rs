//! Writes files laid out as contracts.md §2 says, independently of the
//! runtime's reader.

use std::path::Path;

pub struct Sections<'a> {
    pub weights: &'a [u8],
    pub tokenizer: &'a [u8],
    pub tokenizer_config: &'a [u8],
}

pub fn model_json(vocab: usize, max_ctx: usize) -> serde_json::Value {
    serde_json::json!({
        "arch": "fake", "n_layers": 2, "d_model": 4, "n_heads": 1,
        "n_kv_heads": 1, "head_dim": 2, "vocab": vocab, "max_ctx": max_ctx
    })
}

fn pad_to_page(file: &mut Vec<u8>) {
    while !file.len().is_multiple_of(4096) {
        file.push(0);
    }
}

/// `image` followed by the payload; returns the file bytes.
pub fn with_payload(image: &[u8], sections: &Sections, model: serde_json::Value) -> Vec<u8> {
    let mut file = image.to_vec();
    let mut entries = serde_json::Map::new();
    for (name, bytes) in [
        ("weights", sections.weights),
        ("tokenizer", sections.tokenizer),
        ("tokenizer_config", sections.tokenizer_config),
    ] {
        pad_to_page(&mut file);
        entries.insert(
            name.into(),
            serde_json::json!({"offset": file.len(), "len": bytes.len()}),
        );
        file.extend_from_slice(bytes);
    }
    let manifest = serde_json::json!({"format": 1, "sections": entries, "model": model});
    append_manifest(&mut file, manifest.to_string().as_bytes());
    file
}

pub fn append_manifest(file: &mut Vec<u8>, manifest: &[u8]) {
    file.extend_from_slice(manifest);
    file.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
    file.extend_from_slice(b"DITTOPAY");
}

pub fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}
