//! The text builder the emitter writes function bodies with: [`Func`] holds
//! a body under construction and its SSA counter, [`Buf`] a memref value and
//! its type.

use std::fmt::Write;

use super::Mode;
use crate::config::ModelConfig;

/// A memref value and its type.
#[derive(Clone)]
pub(super) struct Buf {
    pub(super) name: String,
    pub(super) ty: String,
}

/// A function body under construction. Buffers get a leading row dimension
/// of extent `rows` in prefill mode.
pub(super) struct Func {
    pub(super) mode: Mode,
    pub(super) text: String,
    pub(super) counter: usize,
    /// SSA value holding T (prefill only).
    pub(super) rows: Option<String>,
    /// Heap buffers to free before returning.
    pub(super) heap: Vec<Buf>,
}

impl Func {
    pub(super) fn new(mode: Mode) -> Self {
        Func {
            mode,
            text: String::new(),
            counter: 0,
            rows: None,
            heap: Vec::new(),
        }
    }

    pub(super) fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("%{hint}{}", self.counter)
    }

    pub(super) fn line(&mut self, line: &str) {
        self.text.push_str("    ");
        self.text.push_str(line);
        self.text.push('\n');
    }

    /// `%c = arith.constant V : index`
    pub(super) fn index(&mut self, value: usize) -> String {
        let name = self.fresh("c");
        self.line(&format!("{name} = arith.constant {value} : index"));
        name
    }

    pub(super) fn f32(&mut self, value: f32) -> String {
        let name = self.fresh("cst");
        self.line(&format!(
            "{name} = arith.constant {} : f32",
            float(value as f64)
        ));
        name
    }

    /// Row dims prepended to a shape in prefill mode (`?` for T).
    pub(super) fn shape(&self, dims: &[usize]) -> String {
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
    pub(super) fn buffer(&mut self, hint: &str, dims: &[usize]) -> Buf {
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
    pub(super) fn row_dims(&self) -> Vec<&'static str> {
        match self.mode {
            Mode::Decode => vec![],
            Mode::Prefill => vec!["t"],
        }
    }

    pub(super) fn fill(&mut self, buf: &Buf, value: &str) {
        self.line(&format!(
            "linalg.fill ins({value} : f32) outs({} : {})",
            buf.name, buf.ty
        ));
    }

    /// A `linalg.generic` over `dims` (those in `reduce` are reductions).
    /// Operands are `(buffer, indexing expressions)`. `body` receives the
    /// block arguments (inputs then outputs) and returns the yielded value.
    pub(super) fn generic(
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
    pub(super) fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        let name = self.fresh("v");
        self.line(&format!("  {name} = arith.{op} {a}, {b} : f32"));
        name
    }

    /// As [`Func::bin`], allowing LLVM to reassociate and contract (so that a
    /// dot product over a contiguous row vectorizes).
    pub(super) fn bin_reassoc(&mut self, op: &str, a: &str, b: &str) -> String {
        let name = self.fresh("v");
        self.line(&format!(
            "  {name} = arith.{op} {a}, {b} fastmath<reassoc,contract> : f32"
        ));
        name
    }

    pub(super) fn linalg_index(&mut self, dim: usize) -> String {
        let name = self.fresh("i");
        self.line(&format!("  {name} = linalg.index {dim} : index"));
        name
    }

    pub(super) fn finish(mut self, signature: &str, attributes: &str) -> String {
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
pub(super) fn float(value: f64) -> String {
    if value == f64::NEG_INFINITY {
        return "0xFF800000".into();
    }
    // MLIR float literals need a decimal point; 17 digits round-trip an f64.
    format!("{value:.17e}")
}

pub(super) fn cache_type(cfg: &ModelConfig) -> String {
    format!(
        "memref<{}x?x{}x{}xf32>",
        cfg.n_layers, cfg.n_kv_heads, cfg.head_dim
    )
}
