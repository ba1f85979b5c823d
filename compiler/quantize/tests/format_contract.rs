//! The codebook format across its two sides: what the quantizer writes
//! (`ditto_quantize::quantize`) the kernels read (`ditto_kernels::codebook`)
//! as the same matrix that the quantizer's own dequantization gives.

use ditto_kernels::codebook::{dequantize, CbMatrix, Isa};

#[test]
fn the_kernels_read_what_the_quantizer_writes() {
    for (bits, (n, k), block) in [
        (2u8, (8usize, 64usize), 64usize),
        (3, (5, 40), 32),
        (4, (7, 96), 512),
        (5, (3, 72), 24),
        (6, (4, 52), 16),
        (8, (6, 33), 64),
    ] {
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 300.0)
            .collect();
        let q = ditto_quantize::quantize(&w, n, k, None, bits, block, 1).unwrap();
        let reference = ditto_quantize::dequantize(&q).unwrap();
        let m = CbMatrix::new(n, k, bits as usize, block, &q.indices, &q.codebooks).unwrap();
        for isa in [Isa::Scalar { lanes: 16 }, Isa::detected()] {
            let mut out = vec![f32::NAN; n * k];
            dequantize(isa, &m, &mut out);
            assert_eq!(out, reference, "b={bits} [{n}, {k}] B={block} {isa:?}");
        }
    }
}
