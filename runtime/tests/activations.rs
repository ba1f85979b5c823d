//! `--activations int8|f32`: the process-wide switch of the codebook GEMV
//! and GEMM, from the command line to `cb_gemv`, `cb_gemm` and the C
//! adapters the generated code calls. One test, so that nothing else in this process flips the switch
//! meanwhile.

mod common;

#[path = "../kernels/tests/common/mod.rs"]
mod kernels_common;

use clap::Parser;
use common::fake_model::{self, WEIGHTS};
use common::payload_file::{model_json, with_payload, write, Sections};
use common::tiny_tokenizer;
use ditto_rt::app::Console;
use ditto_rt::cli::{Activations, Args};
use ditto_rt::codebook::GemmRows;
use ditto_rt::codebook::{
    abi, cb_gemm, cb_gemm_int8_with, cb_gemm_with, cb_gemv, cb_gemv_int8_with, cb_gemv_with,
    gemm_int8, gemm_int8_isa, gemv_int8_isa, Int8Isa, Isa,
};
use ditto_rt::entry::main_with;
use ditto_rt::kernels::GEMV_ORDER_ROWS;
use ditto_rt::model::MemRefDescriptor;
use ditto_rt::pool::Pool;
use ditto_rt::state::{configure, settings, Settings};
use kernels_common::{assert_same, Lcg, Quantized};

/// Runs the fake model with `args`; returns the exit code.
fn run(payload: &std::path::Path, args: &[&str]) -> i32 {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        out_is_terminal: false,
    };
    let argv = std::iter::once("model")
        .chain(args.iter().copied())
        .map(Into::into)
        .collect();
    main_with(
        argv,
        payload,
        fake_model::entry_points_for(payload),
        &mut console,
    )
}

/// y := Ŵ·x through the C adapter.
fn abi_gemv(q: &Quantized, x: &[f32]) -> Vec<f32> {
    let (n, k, levels) = (q.n, q.k, 1usize << q.bits);
    let mut stream = q.stream.clone();
    let mut cbs: Vec<u16> = q.codebooks.iter().map(|c| c.to_bits()).collect();
    let mut xs = x.to_vec();
    let mut y = vec![f32::NAN; n];
    let d_idx = MemRefDescriptor {
        allocated: stream.as_mut_ptr(),
        aligned: stream.as_mut_ptr(),
        offset: 0,
        sizes: [q.stream.len() as i64],
        strides: [1],
    };
    let d_cb = MemRefDescriptor {
        allocated: cbs.as_mut_ptr(),
        aligned: cbs.as_mut_ptr(),
        offset: 0,
        sizes: [(q.codebooks.len() / levels) as i64, levels as i64],
        strides: [levels as i64, 1],
    };
    let d_x = MemRefDescriptor {
        allocated: xs.as_mut_ptr(),
        aligned: xs.as_mut_ptr(),
        offset: 0,
        sizes: [k as i64],
        strides: [1],
    };
    let d_y = MemRefDescriptor {
        allocated: y.as_mut_ptr(),
        aligned: y.as_mut_ptr(),
        offset: 0,
        sizes: [n as i64],
        strides: [1],
    };
    // SAFETY: the descriptors describe the live vectors above.
    unsafe {
        abi::_mlir_ciface_ditto_rt_cb_gemv(
            &d_idx,
            &d_cb,
            &d_x,
            &d_y,
            q.bits as i64,
            q.block as i64,
            1.0,
            0.0,
        )
    };
    y
}

/// C [m, N] := X [m, K]·Ŵᵀ through the C adapter.
fn abi_gemm(q: &Quantized, m: usize, x: &[f32]) -> Vec<f32> {
    let (n, k, levels) = (q.n, q.k, 1usize << q.bits);
    let mut stream = q.stream.clone();
    let mut cbs: Vec<u16> = q.codebooks.iter().map(|c| c.to_bits()).collect();
    let mut xs = x.to_vec();
    let mut c = vec![f32::NAN; m * n];
    let d_idx = MemRefDescriptor {
        allocated: stream.as_mut_ptr(),
        aligned: stream.as_mut_ptr(),
        offset: 0,
        sizes: [q.stream.len() as i64],
        strides: [1],
    };
    let d_cb = MemRefDescriptor {
        allocated: cbs.as_mut_ptr(),
        aligned: cbs.as_mut_ptr(),
        offset: 0,
        sizes: [(q.codebooks.len() / levels) as i64, levels as i64],
        strides: [levels as i64, 1],
    };
    let d_x = MemRefDescriptor {
        allocated: xs.as_mut_ptr(),
        aligned: xs.as_mut_ptr(),
        offset: 0,
        sizes: [m as i64, k as i64],
        strides: [k as i64, 1],
    };
    let d_c = MemRefDescriptor {
        allocated: c.as_mut_ptr(),
        aligned: c.as_mut_ptr(),
        offset: 0,
        sizes: [m as i64, n as i64],
        strides: [n as i64, 1],
    };
    // SAFETY: the descriptors describe the live arrays above.
    unsafe {
        abi::_mlir_ciface_ditto_rt_cb_gemm(
            &d_idx,
            &d_cb,
            &d_x,
            &d_c,
            q.bits as i64,
            q.block as i64,
            1.0,
            0.0,
        )
    };
    c
}

#[test]
fn activations_flag_switches_the_codebook_gemv() {
    // The flag: int8 by default, f32 on request, nothing else.
    let args = Args::try_parse_from(["model", "--tokens", "1"]).unwrap();
    assert_eq!(args.activations, Activations::Int8);
    let args = Args::try_parse_from(["model", "--tokens", "1", "--activations", "f32"]).unwrap();
    assert_eq!(args.activations, Activations::F32);
    assert!(Args::try_parse_from(["model", "--tokens", "1", "--activations", "int4"]).is_err());

    // A run sets the switch.
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("model");
    let config = format!(
        r#"{{"bos_token_id": 1, "eos_token_ids": [{}], "add_bos_token": false}}"#,
        tiny_tokenizer::BYTE_LEVEL_EOS
    );
    let tokenizer = tiny_tokenizer::byte_level();
    let sections = Sections {
        weights: WEIGHTS,
        tokenizer: tokenizer.as_bytes(),
        tokenizer_config: config.as_bytes(),
    };
    write(
        &payload,
        &with_payload(b"\x7fELF fake image", &sections, model_json(259, 64)),
    );
    assert!(settings().int8_activations, "int8 is the default");
    assert_eq!(
        run(
            &payload,
            &["--tokens", "1,2", "-n", "2", "--activations", "f32"]
        ),
        0
    );
    assert!(!settings().int8_activations, "--activations f32");
    assert_eq!(run(&payload, &["--tokens", "1,2", "-n", "2"]), 0);
    assert!(settings().int8_activations, "no --activations");

    // cb_gemv and the C adapter follow the switch: the int8 kernel where it
    // applies, the f32 one otherwise and for matrices it does not fit.
    let pool = Pool::new(2).unwrap();
    let mut rng = Lcg(31);
    for ((n, k), bits, block) in [
        ((300, 256), 4, 512),
        ((70, 896), 3, 256),
        ((40, 104), 4, 64),
    ] {
        let q = Quantized::random(&mut rng, (n, k), bits, block);
        let w = q.matrix();
        let x = rng.vec(k);
        let mut exact = vec![0.0; n];
        cb_gemv_with(Isa::detected(), &pool, &w, &x, &mut exact, 1.0, 0.0);
        let int8 = Int8Isa::detected().filter(|isa| isa.fits(&w)).map(|isa| {
            let mut y = vec![0.0; n];
            cb_gemv_int8_with(isa, &pool, &w, &x, &mut y, 1.0, 0.0);
            y
        });
        let what = format!("[{n}, {k}] b={bits} B={block}");
        for on in [true, false] {
            configure(Settings {
                int8_activations: on,
            });
            let want = match (&int8, on) {
                (Some(y), true) => y,
                _ => &exact,
            };
            assert_eq!(gemv_int8_isa(&w).is_some(), on && int8.is_some(), "{what}");
            let mut y = vec![f32::NAN; n];
            cb_gemv(&pool, &w, &x, &mut y, 1.0, 0.0);
            assert_same(&y, want, &format!("cb_gemv {what} int8={on}"));
            assert_same(&abi_gemv(&q, &x), want, &format!("abi {what} int8={on}"));
        }
        if let Some(y) = &int8 {
            assert!(
                y != &exact,
                "{what}: int8 and f32 agree exactly: was int8 used?"
            );
        }

        // cb_gemm of at most GEMV_ORDER_ROWS rows: cb_gemv of each row,
        // under either setting, bit for bit.
        let m = 5;
        assert!(m <= GEMV_ORDER_ROWS);
        let xs = rng.vec(m * k);
        for on in [true, false] {
            configure(Settings {
                int8_activations: on,
            });
            let mut want = vec![0.0; m * n];
            for (x, y) in xs.chunks(k).zip(want.chunks_mut(n)) {
                cb_gemv(&pool, &w, x, y, 1.0, 0.0);
            }
            let mut c = vec![f32::NAN; m * n];
            cb_gemm(
                &pool,
                &w,
                GemmRows {
                    m,
                    x: &xs,
                    ldx: k,
                    c: &mut c,
                    ldc: n,
                    alpha: 1.0,
                    beta: 0.0,
                },
            );
            assert_same(&c, &want, &format!("cb_gemm of {m} rows {what} int8={on}"));
            let via_abi = abi_gemm(&q, m, &xs);
            assert_same(
                &via_abi,
                &want,
                &format!("abi gemm of {m} rows {what} int8={on}"),
            );
        }

        // More rows: the int8 GEMM where it applies (split over the pool,
        // the kernels' own product), the f32 GEMM otherwise.
        let m = GEMV_ORDER_ROWS + 3;
        let xs = rng.vec(m * k);
        let mut exact = vec![0.0; m * n];
        cb_gemm_with(
            Isa::detected(),
            &pool,
            &w,
            GemmRows {
                m,
                x: &xs,
                ldx: k,
                c: &mut exact,
                ldc: n,
                alpha: 1.0,
                beta: 0.0,
            },
        );
        let int8 = Int8Isa::detected()
            .filter(|&isa| isa == Int8Isa::Avx512Vnni && isa.fits(&w))
            .map(|isa| {
                let mut c = vec![0.0; m * n];
                cb_gemm_int8_with(
                    isa,
                    &pool,
                    &w,
                    GemmRows {
                        m,
                        x: &xs,
                        ldx: k,
                        c: &mut c,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                );
                let mut one_thread = vec![0.0; m * n];
                gemm_int8(
                    isa,
                    &w,
                    GemmRows {
                        m,
                        x: &xs,
                        ldx: k,
                        c: &mut one_thread,
                        ldc: n,
                        alpha: 1.0,
                        beta: 0.0,
                    },
                );
                assert_same(&c, &one_thread, &format!("{what}: split over the pool"));
                c
            });
        for on in [true, false] {
            configure(Settings {
                int8_activations: on,
            });
            let want = match (&int8, on) {
                (Some(c), true) => c,
                _ => &exact,
            };
            assert_eq!(gemm_int8_isa(&w).is_some(), on && int8.is_some(), "{what}");
            let mut c = vec![f32::NAN; m * n];
            cb_gemm(
                &pool,
                &w,
                GemmRows {
                    m,
                    x: &xs,
                    ldx: k,
                    c: &mut c,
                    ldc: n,
                    alpha: 1.0,
                    beta: 0.0,
                },
            );
            assert_same(&c, want, &format!("cb_gemm {what} int8={on}"));
            assert_same(
                &abi_gemm(&q, m, &xs),
                want,
                &format!("abi gemm {what} int8={on}"),
            );
        }
        if let Some(c) = &int8 {
            assert!(c != &exact, "{what}: int8 and f32 GEMMs agree exactly");
        }
    }
    configure(Settings::default());
    if Int8Isa::detected().is_none() {
        eprintln!("note: this CPU runs no int8 kernel: cb_gemv is f32 either way");
    }
}
