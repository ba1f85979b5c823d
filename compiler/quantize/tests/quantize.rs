//! The tensor quantizer against the format doc and against exact cases.

mod common;

use common::{decode, rel_frobenius, Rng};
use ditto_quantize::{dequantize, quantize, Format, QuantizeError, Quantized, SUPPORTED_BITS};
use half::f16;

/// Every stored array has the doc's length, codebooks ascend, dequantize
/// agrees with a bit-by-bit decoding of the doc's formula, and every weight
/// maps to the nearest centroid of its block's codebook.
#[test]
fn layout_and_nearest_centroids_follow_the_doc() {
    let mut rng = Rng::new(11);
    // Blocks shorter than, longer than and straddling rows, and a short last block.
    for (n, k, bits, block) in [
        (7, 24, 4, 40),
        (5, 16, 3, 8),
        (3, 64, 2, 256),
        (9, 40, 5, 48),
        (4, 8, 6, 16),
        (6, 32, 8, 64),
    ] {
        let w = rng.normals(n * k, 1.0);
        let q = quantize(&w, n, k, None, bits, block, 1).unwrap();
        let levels = 1usize << bits;
        assert_eq!(q.indices.len(), (n * k * bits as usize).div_ceil(8));
        assert_eq!(q.codebooks.len(), (n * k).div_ceil(block) * levels);
        for book in q.codebooks.chunks(levels) {
            assert!(book.windows(2).all(|p| p[0] <= p[1]), "{book:?}");
        }
        let reference = decode(&q);
        assert_eq!(dequantize(&q).unwrap(), reference);
        for (i, (&x, &y)) in w.iter().zip(&reference).enumerate() {
            let book = &q.codebooks[(i / block) * levels..(i / block + 1) * levels];
            let best = book
                .iter()
                .map(|c| (x as f64 - c.to_f64()).abs())
                .fold(f64::INFINITY, f64::min);
            assert_eq!((x as f64 - y as f64).abs(), best, "weight {i}");
        }
        let mut row = vec![0.0f32; k];
        for r in 0..n {
            q.dequantize_row(r, &mut row).unwrap();
            assert_eq!(row, reference[r * k..(r + 1) * k]);
        }
    }
}

#[test]
fn error_decreases_as_bits_grow() {
    let mut rng = Rng::new(3);
    let (n, k) = (64, 256);
    let w = rng.normals(n * k, 0.02);
    let errors: Vec<f64> = SUPPORTED_BITS
        .iter()
        .map(|&b| {
            rel_frobenius(
                &w,
                &dequantize(&quantize(&w, n, k, None, b, 1024, 9).unwrap()).unwrap(),
            )
        })
        .collect();
    for p in errors.windows(2) {
        assert!(p[1] < p[0], "{errors:?}");
    }
    // Gaussian data: the optimal b-bit scalar quantizer of N(0, 1) has mean
    // squared error 0.1175, 0.03454, 0.009497 for b = 2, 3, 4 (Max 1960), so
    // the relative error should be near the square roots.
    for (e, d) in errors.iter().zip([0.1175f64, 0.03454, 0.009497]) {
        let ratio = e / d.sqrt();
        assert!((0.9..1.1).contains(&ratio), "{errors:?}");
    }
}

#[test]
fn eight_bits_with_small_blocks_is_f16_exact() {
    let mut rng = Rng::new(4);
    let (n, k) = (32, 128);
    let w = rng.normals(n * k, 1.0);
    for block in [64, 256] {
        let w_hat = dequantize(&quantize(&w, n, k, None, 8, block, 0).unwrap()).unwrap();
        // At most 256 distinct values per block: each is its own centroid,
        // off only by f16 rounding (relative 2^-11).
        for (&x, &y) in w.iter().zip(&w_hat) {
            assert_eq!(y, f16::from_f32(x).to_f32());
        }
        assert!(rel_frobenius(&w, &w_hat) < 4.9e-4);
    }
}

/// Blocks holding exactly 2^b distinct f16-representable values (different
/// ones per block) are reproduced exactly, whatever the importances.
#[test]
fn exactly_two_to_the_b_values_per_block_is_lossless() {
    let mut rng = Rng::new(8);
    for &bits in &SUPPORTED_BITS {
        let levels = 1usize << bits;
        let block = (levels * 2).max(64);
        let (n, k) = (8, block / 2);
        let blocks = (n * k).div_ceil(block);
        let mut w = Vec::with_capacity(n * k);
        for _ in 0..blocks {
            let book: Vec<f32> = (0..levels)
                .map(|_| f16::from_f64(rng.normal()).to_f32())
                .collect();
            // Every value appears at least once, then random picks.
            let mut vals: Vec<f32> = book.clone();
            while vals.len() < block {
                vals.push(book[rng.below(levels)]);
            }
            for i in (1..vals.len()).rev() {
                vals.swap(i, rng.below(i + 1));
            }
            w.extend(vals);
        }
        w.truncate(n * k);
        let imp: Vec<f32> = (0..k).map(|_| rng.uniform() as f32).collect();
        let q = quantize(&w, n, k, Some(&imp), bits, block, 5).unwrap();
        assert_eq!(dequantize(&q).unwrap(), w, "bits {bits}");
    }
}

#[test]
fn invalid_inputs_are_rejected_with_clear_errors() {
    let w = vec![0.5f32; 64];
    let e = |r: Result<Quantized, QuantizeError>| r.unwrap_err();
    assert_eq!(
        e(quantize(&w, 8, 8, None, 7, 64, 0)),
        QuantizeError::UnsupportedBits { bits: 7 }
    );
    assert_eq!(
        e(quantize(&w, 8, 8, None, 4, 12, 0)),
        QuantizeError::BadBlock { block: 12 }
    );
    assert_eq!(
        e(quantize(&w, 8, 8, None, 4, 0, 0)),
        QuantizeError::BadBlock { block: 0 }
    );
    assert_eq!(
        e(quantize(&w[..48], 16, 3, None, 4, 64, 0)),
        QuantizeError::RowNotByteAligned { k: 3, bits: 4 }
    );
    assert!(matches!(
        e(quantize(&w, 8, 9, None, 8, 64, 0)),
        QuantizeError::LengthMismatch {
            expected: 72,
            found: 64,
            ..
        }
    ));
    assert_eq!(
        e(quantize(&[], 0, 8, None, 4, 64, 0)),
        QuantizeError::BadShape { n: 0, k: 8 }
    );
    let mut bad = w.clone();
    bad[19] = f32::NAN;
    assert!(matches!(
        e(quantize(&bad, 8, 8, None, 4, 64, 0)),
        QuantizeError::NonFiniteWeight {
            index: 19,
            row: 2,
            col: 3,
            ..
        }
    ));
    bad[19] = 1e6;
    let err = e(quantize(&bad, 8, 8, None, 4, 64, 0));
    assert!(err.to_string().contains("row 2, column 3"), "{err}");
    let mut imp = vec![1.0f32; 8];
    imp[5] = -1.0;
    assert_eq!(
        e(quantize(&w, 8, 8, Some(&imp), 4, 64, 0)),
        QuantizeError::BadImportance {
            channel: 5,
            value: -1.0
        }
    );
    assert!(matches!(
        e(quantize(&w, 8, 8, Some(&imp[..4]), 4, 64, 0)),
        QuantizeError::LengthMismatch {
            expected: 8,
            found: 4,
            ..
        }
    ));
    // K = 2 at 4 bits is byte aligned (8 bits per row) and fine.
    assert!(quantize(&w, 32, 2, None, 4, 8, 0).is_ok());
    // Dequantizing a tampered tensor or a missing row is an error, not a panic.
    let mut q = quantize(&w, 8, 8, None, 4, 64, 0).unwrap();
    let mut row = vec![0.0f32; 8];
    assert_eq!(
        q.dequantize_row(8, &mut row),
        Err(QuantizeError::RowOutOfRange { row: 8, rows: 8 })
    );
    assert!(q.dequantize_row(0, &mut row[..7]).is_err());
    q.indices.pop();
    assert!(matches!(
        dequantize(&q),
        Err(QuantizeError::LengthMismatch { .. })
    ));
}

#[test]
fn storage_matches_the_doc_examples() {
    // b + 16·2^b / B bits per weight for whole blocks.
    for (bits, block, bpw) in [
        (4, 256, 5.0),
        (4, 1024, 4.25),
        (3, 256, 3.5),
        (2, 256, 2.25),
        (8, 65536, 8.0625),
    ] {
        let f = Format::new(1024, 1024, bits, block).unwrap();
        assert_eq!(f.bits_per_weight(), bpw, "b {bits} B {block}");
    }
}

#[test]
fn zero_importance_everywhere_falls_back_to_uniform() {
    let mut rng = Rng::new(12);
    let (n, k) = (16, 64);
    let w = rng.normals(n * k, 1.0);
    let zeros = vec![0.0f32; k];
    assert_eq!(
        quantize(&w, n, k, Some(&zeros), 3, 128, 2).unwrap(),
        quantize(&w, n, k, None, 3, 128, 2).unwrap()
    );
}

/// Channels with zero importance do not count in the objective, but their
/// weights still get finite centroids and valid indices.
#[test]
fn zero_importance_channels_are_handled() {
    let mut rng = Rng::new(13);
    let (n, k) = (32, 64);
    let w = rng.normals(n * k, 1.0);
    let imp: Vec<f32> = (0..k)
        .map(|c| if c % 2 == 0 { 0.0 } else { 1.0 + c as f32 })
        .collect();
    for bits in [2, 4, 6] {
        let q = quantize(&w, n, k, Some(&imp), bits, 256, 3).unwrap();
        assert!(q.codebooks.iter().all(|c| c.is_finite()));
        let w_hat = dequantize(&q).unwrap();
        assert_eq!(w_hat, decode(&q));
        // The weighted error over the important channels beats the error
        // over the ignored ones.
        let err = |keep: usize| {
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for i in (0..n * k).filter(|i| i % 2 == keep) {
                num += (w[i] as f64 - w_hat[i] as f64).powi(2);
                den += (w[i] as f64).powi(2);
            }
            (num / den).sqrt()
        };
        assert!(err(1) < err(0), "bits {bits}: {} vs {}", err(1), err(0));
    }
}
