//! The executable's command line (contracts.md §5).

use std::path::PathBuf;

use clap::{ArgGroup, Parser, ValueEnum};

/// Run the code model compiled into this executable by dittoc.
///
/// Generated text goes to stdout as it is produced; timings go to stderr.
#[derive(Debug, Clone, Parser)]
#[command(version)]
#[command(group(ArgGroup::new("input").required(true).args(["prompt", "file", "tokens", "tokens_file"])))]
pub struct Args {
    /// The prompt text
    #[arg(short = 'p', long, value_name = "PROMPT")]
    pub prompt: Option<String>,

    /// Read the prompt text from FILE
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Feed these token ids directly (no tokenizer, no BOS)
    #[arg(long, value_name = "ID,ID,...", value_delimiter = ',', num_args = 1,
          allow_negative_numbers = true, value_parser = parse_token_id)]
    pub tokens: Option<Vec<u32>>,

    /// Read the token ids to feed directly from FILE (separated by
    /// whitespace or commas; no tokenizer, no BOS)
    #[arg(long, value_name = "FILE")]
    pub tokens_file: Option<PathBuf>,

    /// End the generation when its text contains TEXT (repeatable); the
    /// output stops right before it. Escapes \n, \t and \\ are understood
    #[arg(long, value_name = "TEXT", conflicts_with = "ids", value_parser = parse_stop)]
    pub stop: Vec<String>,

    /// Generate at most N tokens [default: 128, or 0 with --dump-logits]
    #[arg(short = 'n', long = "max-new-tokens", value_name = "N",
          allow_negative_numbers = true, value_parser = parse_max_new_tokens)]
    pub max_new_tokens: Option<usize>,

    /// Sampling temperature; 0 is greedy
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true,
          value_parser = parse_temperature)]
    pub temp: f32,

    /// Sample only from the K most likely tokens (0, or K at least the
    /// vocabulary: all of them)
    #[arg(long, default_value_t = 40, value_name = "K", allow_negative_numbers = true,
          value_parser = parse_top_k)]
    pub top_k: usize,

    /// Sample only from the most likely tokens that together reach P
    #[arg(long, default_value_t = 0.95, value_name = "P", allow_negative_numbers = true,
          value_parser = parse_top_p)]
    pub top_p: f32,

    /// Seed of the sampler's random numbers
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: u64,

    /// Threads for the matrix kernels, 1 to 1024 [default: all cores]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_threads)]
    pub threads: Option<u16>,

    /// Context length in tokens, at most the model's [default: the model's,
    /// at most 4096]
    #[arg(long, value_name = "TOKENS", allow_negative_numbers = true, value_parser = parse_ctx)]
    pub ctx: Option<u32>,

    /// Write the logits of every prompt position as a float32 [T, vocab]
    /// .npy file; then stop, unless -n is given
    #[arg(long, value_name = "FILE.npy")]
    pub dump_logits: Option<PathBuf>,

    /// How --dump-logits and --perplexity compute the logits: through the
    /// prompt path (one ditto_prefill call per chunk) or the generation path
    /// (one ditto_decode call per position, the numerics of generated tokens)
    #[arg(long, value_enum, default_value_t = LogitsVia::Prefill)]
    pub logits_via: LogitsVia,

    /// Print the generated token ids (one line, space separated) instead of text
    #[arg(long)]
    pub ids: bool,

    /// Run the input (text or token ids) through the model in windows of
    /// --ctx tokens (default 512) and write the activation statistics of
    /// every weight matrix to this safetensors file (for `dittoc quantize`)
    #[arg(long, value_name = "OUT.safetensors", conflicts_with = "dump_logits")]
    pub calibrate: Option<PathBuf>,

    /// Compute the perplexity of the prompt text: non-overlapping windows of
    /// --ctx tokens (default 512), every token after a window's first
    /// predicted from the ones before it; prints the perplexity on stdout
    #[arg(long, conflicts_with_all = ["dump_logits", "calibrate"])]
    pub perplexity: bool,

    /// Activation rows kept per weight by --calibrate
    #[arg(long, value_name = "ROWS", default_value_t = 256, allow_negative_numbers = true,
          value_parser = parse_calib_samples)]
    pub calib_samples: usize,

    /// Speculative decoding: draft the continuation from the datastores
    /// (the prompt and the text written so far, a datastore baked into the
    /// executable, --datastore, --repo) and verify each draft with one
    /// forward of the model; the output is that of generation without
    /// drafts through the same forward (docs/speculation.md). auto: on when
    /// there is a datastore to draft from (baked in, --datastore or --repo)
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Spec::Auto)]
    pub spec: Spec,

    /// The same as --spec on
    #[arg(long)]
    pub speculate: bool,

    /// Draft from this datastore file too (`dittoc datastore build`; it must
    /// have been built with this model's tokenizer). Repeatable; turns
    /// speculation on
    #[arg(long, value_name = "FILE")]
    pub datastore: Vec<PathBuf>,

    /// Index the code files of this repository (.gitignore honoured) at
    /// start-up and draft from them; turns speculation on
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// Draft tokens verified per forward at most, 1 to 15 (with the token
    /// before them, at most 16 rows: the products that do not depend on
    /// their row count)
    #[arg(long, value_name = "K", default_value_t = 8, allow_negative_numbers = true,
          value_parser = parse_draft_max)]
    pub draft_max: usize,

    /// How long a draft to verify: adaptive picks, per draft, the length
    /// with the most expected tokens per second from the measured cost of
    /// appending k rows and how often drafts of such a match were taken;
    /// fixed verifies all the stores offer (up to --draft-max)
    #[arg(long, value_enum, value_name = "HOW", default_value_t = DraftSizing::Adaptive)]
    pub draft_sizing: DraftSizing,

    /// Benchmark: after the prompt, time one append of k rows (k = 1 to 32)
    /// against one append of 1 row, each rolled back, and print the table of
    /// c(k) on stdout (docs/speculation.md)
    #[arg(long, conflicts_with_all = ["dump_logits", "calibrate", "perplexity"])]
    pub measure_verify: bool,

    /// How the products with quantized weights (decode's matrix-vector and
    /// prefill's matrix products) treat their input
    #[arg(long, value_enum, default_value_t = Activations::Int8)]
    pub activations: Activations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Activations {
    /// Quantize it to int8 in groups of 64 and multiply with integer dot
    /// products, as llama.cpp does (x86-64 with AVX-512 VBMI + VNNI: decode
    /// and prefill, 2- to 6-bit weights, each prompt row's product equal to
    /// decode's; with AVX-VNNI only: decode, 4-bit weights; other CPUs and
    /// widths keep f32)
    Int8,
    /// Keep it f32: the exact product of the quantized weights
    F32,
}

/// `--spec`: when to decode speculatively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Spec {
    /// When there is a datastore to draft from
    Auto,
    /// Always (with no datastore, drafts come from the prompt and the text so far)
    On,
    /// Never: one ditto_decode per token
    Off,
}

impl Args {
    /// `--spec`, with `--speculate` read as `--spec on`.
    pub fn spec(&self) -> Spec {
        if self.speculate {
            Spec::On
        } else {
            self.spec
        }
    }
}

/// `--draft-sizing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DraftSizing {
    /// The length with the most expected tokens per second
    Adaptive,
    /// Everything the stores offer, up to --draft-max
    Fixed,
}

impl From<DraftSizing> for crate::speculate::Sizing {
    fn from(d: DraftSizing) -> Self {
        match d {
            DraftSizing::Adaptive => crate::speculate::Sizing::Adaptive,
            DraftSizing::Fixed => crate::speculate::Sizing::Fixed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogitsVia {
    /// One ditto_prefill call per chunk, ditto_lm_head on every row
    Prefill,
    /// One ditto_decode call per position
    Decode,
}

/// Default context: the model's own, but no more than this.
pub const DEFAULT_MAX_CTX: usize = 4096;
pub const DEFAULT_MAX_NEW_TOKENS: usize = 128;

/// The most threads `--threads` starts: beyond the hardware threads of the
/// largest machines, where each kernel call's hand-offs already cost more
/// than they split (4,096 threads take seconds per token on any machine).
pub const MAX_THREADS: u16 = 1024;

fn parse_draft_max(s: &str) -> Result<usize, String> {
    let max = crate::kernels::GEMV_ORDER_ROWS as u64 - 1;
    whole_number(s, 1, max).map(|n| n as usize)
}

/// A whole number from `min` to `max`: clap's error names the flag and the
/// value before this message.
fn whole_number(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let range = || format!("expected a whole number from {min} to {max}");
    match s.trim().parse::<i128>() {
        Ok(n) if n >= i128::from(min) && n <= i128::from(max) => Ok(n as u64),
        Ok(n) => Err(format!("{n} is out of range: {}", range())),
        Err(_) => Err(range()),
    }
}

fn parse_token_id(s: &str) -> Result<u32, String> {
    whole_number(s, 0, u32::MAX.into()).map(|n| n as u32)
}

/// `-n`: no context holds more than u32::MAX positions.
fn parse_max_new_tokens(s: &str) -> Result<usize, String> {
    whole_number(s, 0, u32::MAX.into()).map(|n| n as usize)
}

fn parse_top_k(s: &str) -> Result<usize, String> {
    whole_number(s, 0, u32::MAX.into()).map(|n| n as usize)
}

fn parse_seed(s: &str) -> Result<u64, String> {
    whole_number(s, 0, u64::MAX)
}

fn parse_threads(s: &str) -> Result<u16, String> {
    whole_number(s, 1, MAX_THREADS.into()).map(|n| n as u16)
}

fn parse_ctx(s: &str) -> Result<u32, String> {
    whole_number(s, 1, u32::MAX.into()).map(|n| n as u32)
}

fn parse_calib_samples(s: &str) -> Result<usize, String> {
    whole_number(s, 1, u32::MAX.into()).map(|n| n as usize)
}

/// A decimal number (not NaN or infinite).
fn finite(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err("expected a finite number".into()),
        Err(_) => Err("expected a decimal number".into()),
    }
}

fn parse_temperature(s: &str) -> Result<f32, String> {
    let t = finite(s).map_err(|e| format!("{e}: the temperature must be 0 or more"))?;
    if t < 0.0 {
        return Err("the temperature must be 0 or more".into());
    }
    Ok(t)
}

/// A stop string with `\n`, `\t` and `\\` unescaped (shells make a real
/// newline awkward to pass).
fn parse_stop(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => return Err(format!("unknown escape \\{other} (use \\n, \\t or \\\\)")),
            None => return Err("a stop string cannot end with a lone \\".into()),
        }
    }
    if out.is_empty() {
        return Err("a stop string cannot be empty".into());
    }
    Ok(out)
}

fn parse_top_p(s: &str) -> Result<f32, String> {
    let p = finite(s).map_err(|e| format!("{e}: top-p must be in (0, 1]"))?;
    if !(p > 0.0 && p <= 1.0) {
        return Err("top-p must be in (0, 1]".into());
    }
    Ok(p)
}
