//! GGUF v3 reader: metadata, tensor directory, dequantization to f32, tokenizer conversion
