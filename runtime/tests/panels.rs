//! The codebook products on matrices in panels (`Int8Panels`), as a model's
//! weights are multiplied where the AVX-512 int8 kernels run: with the
//! matrix in the section of `convert_codebooks_in`, `cb_gemv` and `cb_gemm`
//! of 1 to 40 rows on 1 and 3 threads give the int8 GEMM's outputs on the
//! calling thread bit for bit, each row the 1-row product's, on the call
//! that makes the panels and later ones. (Its own binary: the section is
//! process-wide.)

#[path = "../kernels/tests/common/mod.rs"]
mod common;

use common::*;
use ditto_kernels::codebook::gemm_int8;
use ditto_rt::codebook::{
    cb_gemm, cb_gemv, convert_codebooks_in, forget_converted_codebooks, gemm_int8_isa, GemmRows,
    Int8Isa,
};
use ditto_rt::pool::Pool;

#[test]
fn products_from_panels_are_the_int8_gemms_whatever_the_rows() {
    let Some(isa) = Int8Isa::detected().filter(|&isa| isa == Int8Isa::Avx512Vnni) else {
        eprintln!("note: no AVX-512 int8 kernels here: no panels to test");
        return;
    };
    let mut rng = Lcg(17);
    for pool in [Pool::new(1).unwrap(), Pool::new(3).unwrap()] {
        for bits in [2, 3, 4] {
            for ((n, k), block) in [((97, 640), 64), ((131, 576), 32 << bits), ((40, 104), 4160)] {
                let q = Quantized::random(&mut rng, (n, k), bits, block);
                let w = q.matrix();
                if !isa.fits(&w) {
                    continue;
                }
                assert_eq!(gemm_int8_isa(&w), Some(isa));
                // SAFETY: the codebooks' f16 values viewed as their bytes.
                let section = unsafe {
                    std::slice::from_raw_parts(
                        q.codebooks.as_ptr() as *const u8,
                        std::mem::size_of_val(q.codebooks.as_slice()),
                    )
                };
                convert_codebooks_in(section);
                let what = format!("b={bits} [{n}, {k}] B={block} threads={}", pool.threads());
                let product = |m: usize, x: &[f32], c: &mut [f32], via_gemm: bool| {
                    let rows = GemmRows {
                        m,
                        x,
                        ldx: k,
                        c,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    };
                    if via_gemm {
                        cb_gemm(&pool, &w, rows)
                    } else {
                        gemm_int8(isa, &w, rows)
                    }
                };
                for m in [1, 2, 7, 8, 9, 16, 17, 40] {
                    let x = rng.vec(m * k);
                    let (mut got, mut want) = (vec![f32::NAN; m * n], vec![0.0; m * n]);
                    product(m, &x, &mut got, true);
                    product(m, &x, &mut want, false);
                    assert_same(&got, &want, &format!("cb_gemm m={m} {what}"));
                    for (r, x_r) in x.chunks(k).enumerate() {
                        let mut one = vec![f32::NAN; n];
                        cb_gemv(&pool, &w, x_r, &mut one, 1.0, 0.0);
                        assert_same(
                            &one,
                            &want[r * n..(r + 1) * n],
                            &format!("cb_gemv row {r} of m={m} {what}"),
                        );
                    }
                }
                forget_converted_codebooks();
            }
        }
    }
}
