//! Emits the transformer as an MLIR module: linalg on memrefs, weights as
//! `ditto.weight` ops, the KV cache as arguments (docs/contracts.md §3).
//!
//! The module has five functions, read top to bottom:
//!
//! - `@ditto_decode`: one token at `pos` → logits; calls `@decode_layer` per layer.
//! - `@decode_layer`: one transformer block on a vector `x: memref<D>`.
//! - `@ditto_prefill`: T tokens at `pos..pos+T` → final-normed hidden rows.
//! - `@prefill_layer`: one transformer block on rows `x: memref<TxD>`.
//! - `@ditto_lm_head`: hidden rows → logits rows.
//!
//! Decode and prefill are the same block written at two ranks: a matrix-vector
//! product per projection when there is one token (which the e-graph stage maps
//! to sgemv), a matrix-matrix product when there are T (sgemm).

use ditto_contracts::model::attr;
use std::fmt::Write;

use crate::config::ModelConfig;

/// File names the module refers to, relative to the module's directory.
#[derive(Clone, Debug)]
pub struct Sidecars {
    pub weights: String,
    pub tokenizer: String,
    pub tokenizer_config: String,
}

/// The whole module as text.
pub fn emit_module(cfg: &ModelConfig, sidecars: &Sidecars) -> String {
    let mut text = String::new();
    // The model contract's attributes (ditto_contracts::model::attr).
    let strings = [
        (attr::ARCH, cfg.arch.name()),
        (attr::WEIGHTS, &sidecars.weights),
        (attr::TOKENIZER, &sidecars.tokenizer),
        (attr::TOKENIZER_CONFIG, &sidecars.tokenizer_config),
    ];
    let integers = [
        (attr::N_LAYERS, cfg.n_layers),
        (attr::D_MODEL, cfg.d_model),
        (attr::N_HEADS, cfg.n_heads),
        (attr::N_KV_HEADS, cfg.n_kv_heads),
        (attr::HEAD_DIM, cfg.head_dim),
        (attr::FFN, cfg.ffn),
        (attr::VOCAB, cfg.vocab),
        (attr::MAX_CTX, cfg.max_ctx),
    ];
    let attributes: Vec<String> = strings
        .iter()
        .map(|(key, value)| format!("{key} = \"{}\"", escape(value)))
        .chain(
            integers
                .iter()
                .map(|(key, value)| format!("{key} = {value} : i64")),
        )
        .collect();
    writeln!(text, "module attributes {{{}}} {{", attributes.join(", ")).unwrap();
    text.push_str(&entry_decode(cfg));
    text.push_str(&layer(cfg, Mode::Decode));
    text.push_str(&entry_prefill(cfg));
    text.push_str(&layer(cfg, Mode::Prefill));
    text.push_str(&entry_lm_head(cfg));
    text.push_str("}\n");
    text
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// One token (vectors) or T tokens (rows of a matrix).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Decode,
    Prefill,
}

/// A memref value and its type.
#[derive(Clone)]
struct Buf {
    name: String,
    ty: String,
}

/// A function body under construction. Buffers get a leading row dimension
/// of extent `rows` in prefill mode.
struct Func {
    mode: Mode,
    text: String,
    counter: usize,
    /// SSA value holding T (prefill only).
    rows: Option<String>,
    /// Heap buffers to free before returning.
    heap: Vec<Buf>,
}

impl Func {
    fn new(mode: Mode) -> Self {
        Func {
            mode,
            text: String::new(),
            counter: 0,
            rows: None,
            heap: Vec::new(),
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("%{hint}{}", self.counter)
    }

    fn line(&mut self, line: &str) {
        self.text.push_str("    ");
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// `%c = arith.constant V : index`
    fn index(&mut self, value: usize) -> String {
        let name = self.fresh("c");
        self.line(&format!("{name} = arith.constant {value} : index"));
        name
    }

    fn f32(&mut self, value: f32) -> String {
        let name = self.fresh("cst");
        self.line(&format!(
            "{name} = arith.constant {} : f32",
            float(value as f64)
        ));
        name
    }

    /// Row dims prepended to a shape in prefill mode (`?` for T).
    fn shape(&self, dims: &[usize]) -> String {
        let mut s = String::new();
        if self.mode == Mode::Prefill {
            s.push_str("?x");
        }
        for d in dims {
            write!(s, "{d}x").unwrap();
        }
        s
    }

    /// A scratch buffer of `dims` per row: on the stack for decode, on the
    /// heap (freed at return) for prefill.
    fn buffer(&mut self, hint: &str, dims: &[usize]) -> Buf {
        let name = self.fresh(hint);
        let ty = format!("memref<{}f32>", self.shape(dims));
        match self.mode {
            Mode::Decode => self.line(&format!("{name} = memref.alloca() : {ty}")),
            Mode::Prefill => {
                let rows = self.rows.clone().expect("prefill rows");
                self.line(&format!("{name} = memref.alloc({rows}) : {ty}"));
            }
        }
        let buf = Buf { name, ty };
        if self.mode == Mode::Prefill {
            self.heap.push(buf.clone());
        }
        buf
    }

    /// Row loop dims for indexing maps: `["t"]` in prefill, none in decode.
    fn row_dims(&self) -> Vec<&'static str> {
        match self.mode {
            Mode::Decode => vec![],
            Mode::Prefill => vec!["t"],
        }
    }

    fn fill(&mut self, buf: &Buf, value: &str) {
        self.line(&format!(
            "linalg.fill ins({value} : f32) outs({} : {})",
            buf.name, buf.ty
        ));
    }

    /// A `linalg.generic` over `dims` (those in `reduce` are reductions).
    /// Operands are `(buffer, indexing expressions)`. `body` receives the
    /// block arguments (inputs then outputs) and returns the yielded value.
    fn generic(
        &mut self,
        dims: &[&str],
        reduce: &[&str],
        ins: &[(&Buf, &[&str])],
        outs: &[(&Buf, &[&str])],
        body: impl FnOnce(&mut Func, &[String]) -> String,
    ) {
        let domain = dims.join(", ");
        let maps: Vec<String> = ins
            .iter()
            .chain(outs)
            .map(|(_, exprs)| format!("affine_map<({domain}) -> ({})>", exprs.join(", ")))
            .collect();
        let iterators: Vec<String> = dims
            .iter()
            .map(|d| {
                if reduce.contains(d) {
                    "\"reduction\"".to_string()
                } else {
                    "\"parallel\"".to_string()
                }
            })
            .collect();
        let operands = |list: &[(&Buf, &[&str])]| {
            let names: Vec<&str> = list.iter().map(|(b, _)| b.name.as_str()).collect();
            let types: Vec<&str> = list.iter().map(|(b, _)| b.ty.as_str()).collect();
            format!("{} : {}", names.join(", "), types.join(", "))
        };
        let mut head = format!(
            "linalg.generic {{indexing_maps = [{}], iterator_types = [{}]}}",
            maps.join(", "),
            iterators.join(", ")
        );
        if !ins.is_empty() {
            write!(head, " ins({})", operands(ins)).unwrap();
        }
        write!(head, " outs({}) {{", operands(outs)).unwrap();
        self.line(&head);
        let args: Vec<String> = (0..ins.len() + outs.len())
            .map(|_| self.fresh("arg"))
            .collect();
        let arg_list: Vec<String> = args.iter().map(|a| format!("{a}: f32")).collect();
        self.line(&format!("^bb0({}):", arg_list.join(", ")));
        let result = body(self, &args);
        self.line(&format!("  linalg.yield {result} : f32"));
        self.line("}");
    }

    /// `%r = OP %a, %b : f32` inside a body.
    fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        let name = self.fresh("v");
        self.line(&format!("  {name} = arith.{op} {a}, {b} : f32"));
        name
    }

    /// As [`Func::bin`], allowing LLVM to reassociate and contract (so that a
    /// dot product over a contiguous row vectorizes).
    fn bin_reassoc(&mut self, op: &str, a: &str, b: &str) -> String {
        let name = self.fresh("v");
        self.line(&format!(
            "  {name} = arith.{op} {a}, {b} fastmath<reassoc,contract> : f32"
        ));
        name
    }

    fn linalg_index(&mut self, dim: usize) -> String {
        let name = self.fresh("i");
        self.line(&format!("  {name} = linalg.index {dim} : index"));
        name
    }

    fn finish(mut self, signature: &str, attributes: &str) -> String {
        for buf in std::mem::take(&mut self.heap) {
            self.line(&format!("memref.dealloc {} : {}", buf.name, buf.ty));
        }
        self.line("return");
        format!(
            "  func.func {signature}{attributes} {{\n{}  }}\n",
            self.text
        )
    }
}

/// A float literal MLIR parses back to the same value.
fn float(value: f64) -> String {
    if value == f64::NEG_INFINITY {
        return "0xFF800000".into();
    }
    // MLIR float literals need a decimal point; 17 digits round-trip an f64.
    format!("{value:.17e}")
}

fn cache_type(cfg: &ModelConfig) -> String {
    format!(
        "memref<{}x?x{}x{}xf32>",
        cfg.n_layers, cfg.n_kv_heads, cfg.head_dim
    )
}

/// `%w = "ditto.weight"() {name = ...}` for a tensor of the model.
fn weight(f: &mut Func, name: &str, shape: &[usize]) -> Buf {
    let ssa = f.fresh("w");
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let ty = format!("memref<{}xf32>", dims.join("x"));
    f.line(&format!(
        "{ssa} = \"ditto.weight\"() {{name = \"{name}\"}} : () -> {ty}"
    ));
    Buf { name: ssa, ty }
}

/// The per-layer weights as block arguments / call operands, in the order
/// of [`ModelConfig::layer_tensors`].
fn layer_weights(f: &mut Func, cfg: &ModelConfig, layer: usize) -> Vec<Buf> {
    cfg.layer_tensors(cfg.d_model, cfg.q_dim(), cfg.kv_dim(), cfg.ffn)
        .into_iter()
        .map(|(name, shape)| weight(f, &format!("blk.{layer}.{name}"), &shape))
        .collect()
}

fn call_layers(f: &mut Func, cfg: &ModelConfig, callee: &str, x: &Buf) {
    for layer in 0..cfg.n_layers {
        let weights = layer_weights(f, cfg, layer);
        let l = f.index(layer);
        let mut operands = vec![
            x.name.clone(),
            "%k_cache".into(),
            "%v_cache".into(),
            l,
            "%pos".into(),
        ];
        let mut types = vec![
            x.ty.clone(),
            cache_type(cfg),
            cache_type(cfg),
            "index".into(),
            "index".into(),
        ];
        for w in &weights {
            operands.push(w.name.clone());
            types.push(w.ty.clone());
        }
        f.line(&format!(
            "func.call @{callee}({}) : ({}) -> ()",
            operands.join(", "),
            types.join(", ")
        ));
    }
}

fn entry_decode(cfg: &ModelConfig) -> String {
    let mut f = Func::new(Mode::Decode);
    let embedding = weight(&mut f, "token_embd.weight", &[cfg.vocab, cfg.d_model]);
    let x = f.buffer("x", &[cfg.d_model]);
    // x[i] = token_embd[token, i]
    f.generic(&["i"], &[], &[], &[(&x, &["i"])], |f, _| {
        let i = f.linalg_index(0);
        let e = f.fresh("v");
        f.line(&format!(
            "  {e} = memref.load {}[%token, {i}] : {}",
            embedding.name, embedding.ty
        ));
        e
    });
    call_layers(&mut f, cfg, "decode_layer", &x);
    let norm = weight(&mut f, "output_norm.weight", &[cfg.d_model]);
    let xn = f.buffer("xn", &[cfg.d_model]);
    rmsnorm(&mut f, cfg, &x, &norm, &xn);
    let lm_head = if cfg.tied_embeddings {
        embedding
    } else {
        weight(&mut f, "output.weight", &[cfg.vocab, cfg.d_model])
    };
    let logits = Buf {
        name: "%logits".into(),
        ty: format!("memref<{}xf32>", cfg.vocab),
    };
    linear(&mut f, &xn, &lm_head, None, &logits);
    f.finish(
        &format!(
            "@ditto_decode(%weights: memref<?xi8>, %k_cache: {0}, %v_cache: {0}, %token: index, %pos: index, %logits: {1})",
            cache_type(cfg),
            logits.ty
        ),
        " attributes {llvm.emit_c_interface}",
    )
}

fn entry_prefill(cfg: &ModelConfig) -> String {
    let mut f = Func::new(Mode::Prefill);
    let c0 = f.index(0);
    f.line(&format!("%rows = memref.dim %tokens, {c0} : memref<?xi32>"));
    f.rows = Some("%rows".into());
    let embedding = weight(&mut f, "token_embd.weight", &[cfg.vocab, cfg.d_model]);
    let x = f.buffer("x", &[cfg.d_model]);
    // x[t, i] = token_embd[tokens[t], i]
    f.generic(&["t", "i"], &[], &[], &[(&x, &["t", "i"])], |f, _| {
        let t = f.linalg_index(0);
        let i = f.linalg_index(1);
        let id = f.fresh("id");
        f.line(&format!(
            "  {id} = memref.load %tokens[{t}] : memref<?xi32>"
        ));
        let row = f.fresh("row");
        f.line(&format!("  {row} = arith.index_cast {id} : i32 to index"));
        let e = f.fresh("v");
        f.line(&format!(
            "  {e} = memref.load {}[{row}, {i}] : {}",
            embedding.name, embedding.ty
        ));
        e
    });
    call_layers(&mut f, cfg, "prefill_layer", &x);
    let norm = weight(&mut f, "output_norm.weight", &[cfg.d_model]);
    let hidden = Buf {
        name: "%hidden".into(),
        ty: format!("memref<?x{}xf32>", cfg.d_model),
    };
    rmsnorm(&mut f, cfg, &x, &norm, &hidden);
    f.finish(
        &format!(
            "@ditto_prefill(%weights: memref<?xi8>, %k_cache: {0}, %v_cache: {0}, %tokens: memref<?xi32>, %pos: index, %hidden: {1})",
            cache_type(cfg),
            hidden.ty
        ),
        " attributes {llvm.emit_c_interface}",
    )
}

fn entry_lm_head(cfg: &ModelConfig) -> String {
    let mut f = Func::new(Mode::Prefill);
    let lm_head = weight(&mut f, cfg.lm_head_tensor(), &[cfg.vocab, cfg.d_model]);
    let hidden = Buf {
        name: "%hidden".into(),
        ty: format!("memref<?x{}xf32>", cfg.d_model),
    };
    let logits = Buf {
        name: "%logits".into(),
        ty: format!("memref<?x{}xf32>", cfg.vocab),
    };
    linear(&mut f, &hidden, &lm_head, None, &logits);
    f.finish(
        &format!(
            "@ditto_lm_head(%weights: memref<?xi8>, %hidden: {}, %logits: {})",
            hidden.ty, logits.ty
        ),
        " attributes {llvm.emit_c_interface}",
    )
}

/// One transformer block, in place on the residual stream `%x`.
fn layer(cfg: &ModelConfig, mode: Mode) -> String {
    let mut f = Func::new(mode);
    let (d, q, kv, heads, kv_heads, hd) = (
        cfg.d_model,
        cfg.q_dim(),
        cfg.kv_dim(),
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.head_dim,
    );
    let x = Buf {
        name: "%x".into(),
        ty: format!("memref<{}f32>", f.shape(&[d])),
    };
    if mode == Mode::Prefill {
        let c0 = f.index(0);
        f.line(&format!("%rows = memref.dim %x, {c0} : {}", x.ty));
        f.rows = Some("%rows".into());
    }
    let tensors = cfg.layer_tensors(d, q, kv, cfg.ffn);
    let params: Vec<Buf> = tensors
        .iter()
        .map(|(name, shape)| {
            let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
            Buf {
                name: format!("%{}", name.replace('.', "_")),
                ty: format!("memref<{}xf32>", dims.join("x")),
            }
        })
        .collect();
    let param = |name: &str| -> Option<Buf> {
        let key = format!("%{}", name.replace('.', "_"));
        params.iter().find(|p| p.name == key).cloned()
    };
    let w = |name: &str| param(name).expect("layer tensor");

    // Attention: xn = rmsnorm(x); q, k, v = projections of xn.
    let xn = f.buffer("xn", &[d]);
    rmsnorm(&mut f, cfg, &x, &w("attn_norm.weight"), &xn);
    let qv = f.buffer("q", &[q]);
    linear(
        &mut f,
        &xn,
        &w("attn_q.weight"),
        param("attn_q.bias").as_ref(),
        &qv,
    );
    let kvec = f.buffer("k", &[kv]);
    linear(
        &mut f,
        &xn,
        &w("attn_k.weight"),
        param("attn_k.bias").as_ref(),
        &kvec,
    );
    let vvec = f.buffer("v", &[kv]);
    linear(
        &mut f,
        &xn,
        &w("attn_v.weight"),
        param("attn_v.bias").as_ref(),
        &vvec,
    );

    // Heads: [.., H*hd] viewed as [.., H, hd].
    let q_heads = expand(&mut f, &qv, heads, hd);
    let k_heads = expand(&mut f, &kvec, kv_heads, hd);
    let v_heads = expand(&mut f, &vvec, kv_heads, hd);
    let (cos, sin) = rope_tables(&mut f, cfg);
    let q_rot = f.buffer("q_rot", &[heads, hd]);
    rope(&mut f, cfg, (&cos, &sin), &q_heads, &q_rot);
    // This position's K (rotated) and V go straight into the caches.
    let k_slot = cache_slot(&mut f, cfg, "%k_cache");
    rope(&mut f, cfg, (&cos, &sin), &k_heads, &k_slot);
    let v_slot = cache_slot(&mut f, cfg, "%v_cache");
    copy(&mut f, &v_heads, &v_slot);

    let attn = f.buffer("attn", &[heads, hd]);
    attention(&mut f, cfg, &q_rot, &attn);
    let attn_flat = collapse(&mut f, &attn, q);
    let o = f.buffer("o", &[d]);
    linear(&mut f, &attn_flat, &w("attn_output.weight"), None, &o);
    add_into(&mut f, &x, &o);

    // SwiGLU MLP: x += down(silu(gate(xn)) * up(xn)).
    rmsnorm(&mut f, cfg, &x, &w("ffn_norm.weight"), &xn);
    let gate = f.buffer("gate", &[cfg.ffn]);
    linear(&mut f, &xn, &w("ffn_gate.weight"), None, &gate);
    let up = f.buffer("up", &[cfg.ffn]);
    linear(&mut f, &xn, &w("ffn_up.weight"), None, &up);
    let act = f.buffer("act", &[cfg.ffn]);
    silu_mul(&mut f, &gate, &up, &act);
    let down = f.buffer("down", &[d]);
    linear(&mut f, &act, &w("ffn_down.weight"), None, &down);
    add_into(&mut f, &x, &down);

    let mut signature = vec![
        format!("%x: {}", x.ty),
        format!("%k_cache: {}", cache_type(cfg)),
        format!("%v_cache: {}", cache_type(cfg)),
        "%layer: index".into(),
        "%pos: index".into(),
    ];
    signature.extend(params.iter().map(|p| format!("{}: {}", p.name, p.ty)));
    let name = match mode {
        Mode::Decode => "decode_layer",
        Mode::Prefill => "prefill_layer",
    };
    f.finish(&format!("private @{name}({})", signature.join(", ")), "")
}

/// out = x / sqrt(mean(x²) + eps) · w, per row.
fn rmsnorm(f: &mut Func, cfg: &ModelConfig, x: &Buf, w: &Buf, out: &Buf) {
    let rows = f.row_dims();
    let sum_sq = match f.mode {
        Mode::Decode => {
            let name = f.fresh("sum_sq");
            f.line(&format!("{name} = memref.alloca() : memref<f32>"));
            Buf {
                name,
                ty: "memref<f32>".into(),
            }
        }
        Mode::Prefill => f.buffer("sum_sq", &[]),
    };
    let zero = f.f32(0.0);
    f.fill(&sum_sq, &zero);
    let dims: Vec<&str> = rows.iter().copied().chain(["i"]).collect();
    let row_i: Vec<&str> = dims.clone();
    // sum_sq[t] += x[t, i]²
    f.generic(
        &dims,
        &["i"],
        &[(x, &row_i)],
        &[(&sum_sq, &rows)],
        |f, a| {
            let sq = f.bin("mulf", &a[0], &a[0]);
            f.bin("addf", &a[1], &sq)
        },
    );
    let width = f.f32(cfg.d_model as f32);
    let eps = f.f32(cfg.rms_eps as f32);
    // out[t, i] = x[t, i] * rsqrt(sum_sq[t] / D + eps) * w[i]
    f.generic(
        &dims,
        &[],
        &[(x, &row_i), (w, &["i"]), (&sum_sq, &rows)],
        &[(out, &row_i)],
        |f, a| {
            let mean = f.bin("divf", &a[2], &width);
            let var = f.bin("addf", &mean, &eps);
            let r = f.fresh("v");
            f.line(&format!("  {r} = math.rsqrt {var} : f32"));
            let scaled = f.bin("mulf", &a[0], &r);
            f.bin("mulf", &scaled, &a[1])
        },
    );
}

/// out = x · wᵀ (+ bias): out[t, n] = Σ_k x[t, k] · w[n, k].
fn linear(f: &mut Func, x: &Buf, w: &Buf, bias: Option<&Buf>, out: &Buf) {
    let zero = f.f32(0.0);
    match f.mode {
        Mode::Decode => multiply_accumulate(
            f,
            (&["n", "k"], &["k"]),
            [(w, &["n", "k"]), (x, &["k"])],
            (out, &["n"]),
            &zero,
        ),
        Mode::Prefill => multiply_accumulate(
            f,
            (&["t", "n", "k"], &["k"]),
            [(x, &["t", "k"]), (w, &["n", "k"])],
            (out, &["t", "n"]),
            &zero,
        ),
    }
    if let Some(bias) = bias {
        let rows = f.row_dims();
        let dims: Vec<&str> = rows.iter().copied().chain(["n"]).collect();
        f.generic(&dims, &[], &[(bias, &["n"])], &[(out, &dims)], |f, a| {
            f.bin("addf", &a[1], &a[0])
        });
    }
}

/// out = Σ over the `reduce` dims of a·b (a product of two operands):
/// `out` zero-filled, then a `linalg.generic` over `dims` whose body is the
/// multiply-add that kernel selection recognizes.
fn multiply_accumulate(
    f: &mut Func,
    (dims, reduce): (&[&str], &[&str]),
    ins: [(&Buf, &[&str]); 2],
    out: (&Buf, &[&str]),
    zero: &str,
) {
    f.fill(out.0, zero);
    f.generic(dims, reduce, &ins, &[out], |f, a| {
        let p = f.bin("mulf", &a[0], &a[1]);
        f.bin("addf", &a[2], &p)
    });
}

/// x += y, elementwise.
fn add_into(f: &mut Func, x: &Buf, y: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["i"]).collect();
    f.generic(&dims, &[], &[(y, &dims)], &[(x, &dims)], |f, a| {
        f.bin("addf", &a[1], &a[0])
    });
}

/// dst = src, elementwise over [.., heads, hd].
fn copy(f: &mut Func, src: &Buf, dst: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["h", "d"]).collect();
    f.generic(&dims, &[], &[(src, &dims)], &[(dst, &dims)], |_, a| {
        a[0].clone()
    });
}

/// out = silu(gate) · up, where silu(g) = g / (1 + e^-g).
fn silu_mul(f: &mut Func, gate: &Buf, up: &Buf, out: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["i"]).collect();
    let one = f.f32(1.0);
    f.generic(
        &dims,
        &[],
        &[(gate, &dims), (up, &dims)],
        &[(out, &dims)],
        |f, a| {
            let neg = f.fresh("v");
            f.line(&format!("  {neg} = arith.negf {} : f32", a[0]));
            let e = exp_f32(f, &neg);
            let denom = f.bin("addf", &one, &e);
            let silu = f.bin("divf", &a[0], &denom);
            f.bin("mulf", &silu, &a[1])
        },
    );
}

/// `e^x` in f32 inside a body, written out in arith ops so that LLVM
/// vectorizes the loop around it (`math.exp` becomes a call of libm's
/// scalar `expf` per element): x clamped to [−87.33, 88.37] (NaN passes
/// through), `x = k·ln 2 + r` with k = round(x·log₂e) and |r| ≤ ln 2 / 2 (ln 2
/// in two parts, Cody–Waite), e^r by Cephes' degree-5 minimax polynomial
/// (`expf.c`: 1 + r + r²·p(r)), times 2^k built in the exponent bits. Below
/// the clamp the result is 2⁻¹²⁶·e^r instead of a smaller number or 0: a
/// softmax term or SiLU's e^−g that small changes nothing it is added to.
/// These operations, emulated in numpy's float32 (f64 for each fused
/// multiply-add), are within 1.24 ulp of e^x over [−87.3, 88.3] (2·10⁶
/// points); the model tests compare the logits with the numpy reference.
fn exp_f32(f: &mut Func, x: &str) -> String {
    let (lo, hi) = (f.f32(-87.33), f.f32(88.37));
    let clamped = f.bin("maximumf", x, &lo);
    let clamped = f.bin("minimumf", &clamped, &hi);
    let log2e = f.f32(std::f32::consts::LOG2_E);
    let scaled = f.bin("mulf", &clamped, &log2e);
    let k = f.fresh("v");
    f.line(&format!("  {k} = math.roundeven {scaled} : f32"));
    let (ln2_hi, ln2_lo) = (f.f32(0.693_359_4), f.f32(-2.121_944_4e-4));
    let t = f.fresh("v");
    f.line(&format!("  {t} = arith.negf {k} : f32"));
    let r = f.fresh("v");
    f.line(&format!("  {r} = math.fma {t}, {ln2_hi}, {clamped} : f32"));
    let r2 = f.fresh("v");
    f.line(&format!("  {r2} = math.fma {t}, {ln2_lo}, {r} : f32"));
    let r = r2;
    let coefficients = [
        1.987_569_2e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5, // Cephes: 5.0000001e-1, the same f32
    ];
    let mut p = f.f32(coefficients[0]);
    for &coefficient in &coefficients[1..] {
        let a = f.f32(coefficient);
        let next = f.fresh("v");
        f.line(&format!("  {next} = math.fma {p}, {r}, {a} : f32"));
        p = next;
    }
    let rr = f.bin("mulf", &r, &r);
    let one = f.f32(1.0);
    let r1 = f.bin("addf", &r, &one);
    let er = f.fresh("v");
    f.line(&format!("  {er} = math.fma {p}, {rr}, {r1} : f32"));
    let ki = f.fresh("v");
    f.line(&format!("  {ki} = arith.fptosi {k} : f32 to i32"));
    let (bias, shift) = (f.fresh("v"), f.fresh("v"));
    f.line(&format!("  {bias} = arith.constant 127 : i32"));
    f.line(&format!("  {shift} = arith.constant 23 : i32"));
    let biased = f.fresh("v");
    f.line(&format!("  {biased} = arith.addi {ki}, {bias} : i32"));
    let bits = f.fresh("v");
    f.line(&format!("  {bits} = arith.shli {biased}, {shift} : i32"));
    let two_k = f.fresh("v");
    f.line(&format!("  {two_k} = arith.bitcast {bits} : i32 to f32"));
    let e = f.bin("mulf", &er, &two_k);
    // NaN's k converts to no integer: give back x itself.
    let nan = f.fresh("v");
    f.line(&format!("  {nan} = arith.cmpf uno, {x}, {x} : f32"));
    let out = f.fresh("v");
    f.line(&format!("  {out} = arith.select {nan}, {x}, {e} : f32"));
    out
}

/// [.., H*hd] → [.., H, hd] (a view).
fn expand(f: &mut Func, buf: &Buf, heads: usize, hd: usize) -> Buf {
    let name = f.fresh("heads");
    let ty = format!("memref<{}f32>", f.shape(&[heads, hd]));
    let line = match f.mode {
        Mode::Decode => format!(
            "{name} = memref.expand_shape {} [[0, 1]] output_shape [{heads}, {hd}] : {} into {ty}",
            buf.name, buf.ty
        ),
        Mode::Prefill => format!(
            "{name} = memref.expand_shape {} [[0], [1, 2]] output_shape [%rows, {heads}, {hd}] : {} into {ty}",
            buf.name, buf.ty
        ),
    };
    f.line(&line);
    Buf { name, ty }
}

/// [.., H, hd] → [.., H*hd] (a view).
fn collapse(f: &mut Func, buf: &Buf, width: usize) -> Buf {
    let name = f.fresh("flat");
    let ty = format!("memref<{}f32>", f.shape(&[width]));
    let reassociation = match f.mode {
        Mode::Decode => "[[0, 1]]",
        Mode::Prefill => "[[0], [1, 2]]",
    };
    f.line(&format!(
        "{name} = memref.collapse_shape {} {reassociation} : {} into {ty}",
        buf.name, buf.ty
    ));
    Buf { name, ty }
}

/// The cache rows of this layer at this step's positions:
/// cache[layer, pos.., :, :] as [.., KV, hd].
fn cache_slot(f: &mut Func, cfg: &ModelConfig, cache: &str) -> Buf {
    let (kvh, hd) = (cfg.n_kv_heads, cfg.head_dim);
    let name = f.fresh("slot");
    let (extent, ty) = match f.mode {
        Mode::Decode => (
            "1".to_string(),
            format!("memref<{kvh}x{hd}xf32, strided<[{hd}, 1], offset: ?>>"),
        ),
        Mode::Prefill => (
            "%rows".to_string(),
            format!(
                "memref<?x{kvh}x{hd}xf32, strided<[{}, {hd}, 1], offset: ?>>",
                kvh * hd
            ),
        ),
    };
    f.line(&format!(
        "{name} = memref.subview {cache}[%layer, %pos, 0, 0] [1, {extent}, {kvh}, {hd}] [1, 1, 1, 1] : {} to {ty}",
        cache_type(cfg)
    ));
    Buf { name, ty }
}

/// The rotary angles' cosines and sines, one per row and frequency
/// (`[(T,) hd/2]`): for frequency j at position p = pos (+ t), the angle
/// p·θ^(−2j/hd), computed in f64 and rounded to f32. Computed once per
/// layer for both of its [`rope`]s, instead of once per head and element.
fn rope_tables(f: &mut Func, cfg: &ModelConfig) -> (Buf, Buf) {
    let half = cfg.head_dim / 2;
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["j"]).collect();
    let log_scale = -2.0 * cfg.rope_theta.ln() / cfg.head_dim as f64;
    let table = |f: &mut Func, op: &str| {
        let buf = f.buffer(&format!("rope_{op}"), &[half]);
        f.generic(&dims, &[], &[], &[(&buf, &dims)], |f, _| {
            let position = if rows.is_empty() {
                "%pos".to_string()
            } else {
                let t = f.linalg_index(0);
                let p = f.fresh("i");
                f.line(&format!("  {p} = arith.addi %pos, {t} : index"));
                p
            };
            let j = f.linalg_index(rows.len());
            let to_f64 = |f: &mut Func, index: &str| {
                let i = f.fresh("n");
                f.line(&format!("  {i} = arith.index_cast {index} : index to i64"));
                let x = f.fresh("n");
                f.line(&format!("  {x} = arith.sitofp {i} : i64 to f64"));
                x
            };
            let jf = to_f64(f, &j);
            let pf = to_f64(f, &position);
            let scale = f.fresh("n");
            f.line(&format!(
                "  {scale} = arith.constant {} : f64",
                float(log_scale)
            ));
            let exponent = f.fresh("n");
            f.line(&format!("  {exponent} = arith.mulf {jf}, {scale} : f64"));
            let inv_freq = f.fresh("n");
            f.line(&format!("  {inv_freq} = math.exp {exponent} : f64"));
            let angle = f.fresh("n");
            f.line(&format!("  {angle} = arith.mulf {pf}, {inv_freq} : f64"));
            let v = f.fresh("n");
            f.line(&format!("  {v} = math.{op} {angle} : f64"));
            let v32 = f.fresh("v");
            f.line(&format!("  {v32} = arith.truncf {v} : f64 to f32"));
            v32
        });
        buf
    };
    let cos = table(f, "cos");
    let sin = table(f, "sin");
    (cos, sin)
}

/// Rotary position embedding in the "rotate half" form: for d < hd/2,
/// out[d] = x[d]·cos − x[d+hd/2]·sin, and out[d+hd/2] = x[d+hd/2]·cos + x[d]·sin,
/// with the cosine and sine of frequency d mod hd/2 from [`rope_tables`].
fn rope(f: &mut Func, cfg: &ModelConfig, (cos, sin): (&Buf, &Buf), src: &Buf, out: &Buf) {
    let rows = f.row_dims();
    let dims: Vec<&str> = rows.iter().copied().chain(["h", "d"]).collect();
    let n_rows = rows.len();
    let half = cfg.head_dim / 2;
    let freq = format!("d mod {half}");
    let table: Vec<&str> = rows.iter().copied().chain([freq.as_str()]).collect();
    f.generic(
        &dims,
        &[],
        &[(cos, &table), (sin, &table)],
        &[(out, &dims)],
        |f, a| {
            let t = (n_rows == 1).then(|| f.linalg_index(0));
            let h = f.linalg_index(n_rows);
            let d = f.linalg_index(n_rows + 1);
            let half_c = f.fresh("c");
            f.line(&format!("  {half_c} = arith.constant {half} : index"));
            let is_lo = f.fresh("lo");
            f.line(&format!(
                "  {is_lo} = arith.cmpi ult, {d}, {half_c} : index"
            ));
            let d_plus = f.fresh("i");
            f.line(&format!("  {d_plus} = arith.addi {d}, {half_c} : index"));
            let d_minus = f.fresh("i");
            f.line(&format!("  {d_minus} = arith.subi {d}, {half_c} : index"));
            let partner = f.fresh("i");
            f.line(&format!(
                "  {partner} = arith.select {is_lo}, {d_plus}, {d_minus} : index"
            ));
            let prefix = t.as_ref().map(|t| format!("{t}, ")).unwrap_or_default();
            let xv = f.fresh("v");
            f.line(&format!(
                "  {xv} = memref.load {}[{prefix}{h}, {d}] : {}",
                src.name, src.ty
            ));
            let xp = f.fresh("v");
            f.line(&format!(
                "  {xp} = memref.load {}[{prefix}{h}, {partner}] : {}",
                src.name, src.ty
            ));
            let xc = f.bin("mulf", &xv, &a[0]);
            let ps = f.bin("mulf", &xp, &a[1]);
            let neg = f.fresh("v");
            f.line(&format!("  {neg} = arith.negf {ps} : f32"));
            let rot = f.fresh("v");
            f.line(&format!(
                "  {rot} = arith.select {is_lo}, {neg}, {ps} : f32"
            ));
            f.bin("addf", &xc, &rot)
        },
    );
}

/// Grouped-query attention of this step's rotated queries over the layer's
/// cache (positions 0..pos+T), causal: row t sees positions ≤ pos + t.
fn attention(f: &mut Func, cfg: &ModelConfig, q_rot: &Buf, out: &Buf) {
    let (heads, kvh, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);
    let group = cfg.group();
    let prefill = f.mode == Mode::Prefill;
    // Cached positions visible to this step.
    let kv_len = f.fresh("kv_len");
    match f.mode {
        Mode::Decode => {
            let one = f.index(1);
            f.line(&format!("{kv_len} = arith.addi %pos, {one} : index"));
        }
        Mode::Prefill => f.line(&format!("{kv_len} = arith.addi %pos, %rows : index")),
    }
    let cache_view = |f: &mut Func, cache: &str| {
        let name = f.fresh("past");
        let ty = format!(
            "memref<?x{kvh}x{hd}xf32, strided<[{}, {hd}, 1], offset: ?>>",
            kvh * hd
        );
        f.line(&format!(
            "{name} = memref.subview {cache}[%layer, 0, 0, 0] [1, {kv_len}, {kvh}, {hd}] [1, 1, 1, 1] : {} to {ty}",
            cache_type(cfg)
        ));
        Buf { name, ty }
    };
    let keys = cache_view(f, "%k_cache");
    let values = cache_view(f, "%v_cache");
    let kv_head = format!("h floordiv {group}");

    // scores[h, (t,) s] = Σ_d q[(t,) h, d] · k[s, h/group, d]
    let scores = {
        let name = f.fresh("scores");
        let (ty, line) = if prefill {
            let ty = format!("memref<{heads}x?x?xf32>");
            let line = format!("{name} = memref.alloc(%rows, {kv_len}) : {ty}");
            (ty, line)
        } else {
            let ty = format!("memref<{heads}x?xf32>");
            let line = format!("{name} = memref.alloca({kv_len}) : {ty}");
            (ty, line)
        };
        f.line(&line);
        let buf = Buf { name, ty };
        if prefill {
            f.heap.push(buf.clone());
        }
        buf
    };
    let zero = f.f32(0.0);
    let key_index: [&str; 3] = ["s", &kv_head, "d"];
    if prefill {
        // scores[h] = Q_h · K_gᵀ  ([T, hd] · [hd, s]), one 2-D product per
        // query head, which kernel selection hands to the threaded GEMM.
        per_head(f, cfg, |f, h, g| {
            let q_h = head_rows(f, q_rot, h, heads, hd);
            let k_g = head_rows(f, &keys, g, kvh, hd);
            let s_h = head_scores(f, &scores, h, &kv_len);
            multiply_accumulate(
                f,
                (&["t", "s", "d"], &["d"]),
                [(&q_h, &["t", "d"]), (&k_g, &["s", "d"])],
                (&s_h, &["t", "s"]),
                &zero,
            );
        });
    } else {
        f.fill(&scores, &zero);
        f.generic(
            &["h", "s", "d"],
            &["d"],
            &[(q_rot, &["h", "d"]), (&keys, &key_index)],
            &[(&scores, &["h", "s"])],
            |f, a| {
                let p = f.bin_reassoc("mulf", &a[0], &a[1]);
                f.bin_reassoc("addf", &a[2], &p)
            },
        );
    }
    softmax(f, &scores, heads, 1.0 / (hd as f64).sqrt());

    // out[(t,) h, d] = Σ_s p[h, (t,) s] · v[s, h/group, d].
    let value_index: [&str; 3] = ["s", &kv_head, "d"];
    if prefill {
        // out_h = P_h · V_g  ([T, s] · [s, hd]), per query head as above.
        per_head(f, cfg, |f, h, g| {
            let p_h = head_scores(f, &scores, h, &kv_len);
            let v_g = head_rows(f, &values, g, kvh, hd);
            let out_h = head_rows(f, out, h, heads, hd);
            multiply_accumulate(
                f,
                (&["t", "d", "s"], &["s"]),
                [(&p_h, &["t", "s"]), (&v_g, &["s", "d"])],
                (&out_h, &["t", "d"]),
                &zero,
            );
        });
    } else {
        // d innermost, so that the loop over a value row is contiguous.
        multiply_accumulate(
            f,
            (&["h", "s", "d"], &["s"]),
            [(&scores, &["h", "s"]), (&values, &value_index)],
            (out, &["h", "d"]),
            &zero,
        );
    }
}

/// `body(f, h, g)` inside `scf.for h in 0..heads`, with `g = h / group` the
/// head's K/V head (prefill).
fn per_head(f: &mut Func, cfg: &ModelConfig, body: impl FnOnce(&mut Func, &str, &str)) {
    let (c0, c1) = (f.index(0), f.index(1));
    let heads = f.index(cfg.n_heads);
    let group = f.index(cfg.group());
    let h = f.fresh("h");
    f.line(&format!("scf.for {h} = {c0} to {heads} step {c1} {{"));
    let g = f.fresh("g");
    f.line(&format!("  {g} = arith.divui {h}, {group} : index"));
    body(f, &h, &g);
    f.line("}");
}

/// Rows `[R, hd]` of head `head` in `buf` (`[R, heads, hd]`, unit inner stride).
fn head_rows(f: &mut Func, buf: &Buf, head: &str, heads: usize, hd: usize) -> Buf {
    let name = f.fresh("head");
    let rows = f.fresh("n");
    let c0 = f.index(0);
    f.line(&format!(
        "{rows} = memref.dim {}, {c0} : {}",
        buf.name, buf.ty
    ));
    let ty = format!(
        "memref<?x{hd}xf32, strided<[{}, 1], offset: ?>>",
        heads * hd
    );
    f.line(&format!(
        "{name} = memref.subview {}[0, {head}, 0] [{rows}, 1, {hd}] [1, 1, 1] : {} to {ty}",
        buf.name, buf.ty
    ));
    Buf { name, ty }
}

/// Head `head`'s `[T, s]` slice of the prefill `scores` (`[H, T, s]`).
fn head_scores(f: &mut Func, scores: &Buf, head: &str, kv_len: &str) -> Buf {
    let name = f.fresh("head_scores");
    let rows = f.rows.clone().expect("prefill rows");
    let ty = "memref<?x?xf32, strided<[?, 1], offset: ?>>".to_string();
    f.line(&format!(
        "{name} = memref.subview {}[{head}, 0, 0] [1, {rows}, {kv_len}] [1, 1, 1] : {} to {ty}",
        scores.name, scores.ty
    ));
    Buf { name, ty }
}

/// In place over the last dim of `scores` ([H, s] or [H, T, s]):
/// p = softmax(scale · scores), with positions s > pos + t masked out in
/// prefill.
fn softmax(f: &mut Func, scores: &Buf, heads: usize, scale: f64) {
    let prefill = f.mode == Mode::Prefill;
    let (dims, row): (Vec<&str>, Vec<&str>) = if prefill {
        (vec!["h", "t", "s"], vec!["h", "t"])
    } else {
        (vec!["h", "s"], vec!["h"])
    };
    let row_buf = |f: &mut Func, hint: &str| {
        let name = f.fresh(hint);
        let (ty, line) = if prefill {
            let ty = format!("memref<{heads}x?xf32>");
            (ty.clone(), format!("{name} = memref.alloc(%rows) : {ty}"))
        } else {
            let ty = format!("memref<{heads}xf32>");
            (ty.clone(), format!("{name} = memref.alloca() : {ty}"))
        };
        f.line(&line);
        let buf = Buf { name, ty };
        if prefill {
            f.heap.push(buf.clone());
        }
        buf
    };
    let scale_c = f.f32(scale as f32);
    let neg_inf = f.f32(f32::NEG_INFINITY);
    let zero = f.f32(0.0);
    // In prefill, `visible` is s ≤ pos + t.
    let visible = |f: &mut Func| -> Option<String> {
        if !prefill {
            return None;
        }
        let t = f.linalg_index(1);
        let s = f.linalg_index(2);
        let last = f.fresh("i");
        f.line(&format!("  {last} = arith.addi %pos, {t} : index"));
        let ok = f.fresh("ok");
        f.line(&format!("  {ok} = arith.cmpi ule, {s}, {last} : index"));
        Some(ok)
    };

    // row_max = max_s scale·scores. `maxnumf`, not `maximumf`: LLVM vectorizes
    // its reduction (a NaN score still reaches the output through the exp).
    let row_max = row_buf(f, "row_max");
    f.fill(&row_max, &neg_inf);
    f.generic(
        &dims,
        &["s"],
        &[(scores, &dims)],
        &[(&row_max, &row)],
        |f, a| {
            let scaled = f.bin("mulf", &a[0], &scale_c);
            let candidate = match visible(f) {
                Some(ok) => {
                    let v = f.fresh("v");
                    f.line(&format!(
                        "  {v} = arith.select {ok}, {scaled}, {neg_inf} : f32"
                    ));
                    v
                }
                None => scaled,
            };
            f.bin("maxnumf", &a[1], &candidate)
        },
    );
    // scores = exp(scale·scores − row_max)  (0 where masked)
    f.generic(
        &dims,
        &[],
        &[(&row_max, &row)],
        &[(scores, &dims)],
        |f, a| {
            let scaled = f.bin("mulf", &a[1], &scale_c);
            let shifted = f.bin("subf", &scaled, &a[0]);
            let e = exp_f32(f, &shifted);
            match visible(f) {
                Some(ok) => {
                    let v = f.fresh("v");
                    f.line(&format!("  {v} = arith.select {ok}, {e}, {zero} : f32"));
                    v
                }
                None => e,
            }
        },
    );
    // row_sum = Σ_s scores; scores /= row_sum
    let row_sum = row_buf(f, "row_sum");
    f.fill(&row_sum, &zero);
    f.generic(
        &dims,
        &["s"],
        &[(scores, &dims)],
        &[(&row_sum, &row)],
        |f, a| f.bin("addf", &a[1], &a[0]),
    );
    f.generic(
        &dims,
        &[],
        &[(&row_sum, &row)],
        &[(scores, &dims)],
        |f, a| f.bin("divf", &a[1], &a[0]),
    );
}
