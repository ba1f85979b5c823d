//! One run of the executable: open the payload, build the prompt, prefill,
//! optionally dump the prompt's logits, then generate and stream the text.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::cli::{Args, LogitsVia, DEFAULT_MAX_CTX, DEFAULT_MAX_NEW_TOKENS};
use crate::generate::{generate, Session, Stats, PREFILL_BATCH};
use crate::kernels;
use crate::model::{EntryPoints, Model};
use crate::npy;
use crate::payload::Payload;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::{Tokenizer, TokenizerConfig};
use crate::Error;

/// Where a run writes: generated text (or ids) and the timing lines.
pub struct Console<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// A terminal gets a final newline after the text; a pipe gets the text exactly.
    pub out_is_terminal: bool,
}

/// Runs the model in `payload_path` (the executable itself, normally) as `args` ask.
pub fn run(
    args: &Args,
    payload_path: &Path,
    entry: EntryPoints,
    console: &mut Console,
) -> Result<(), Error> {
    let payload = Payload::open(payload_path)?;
    let config = payload.model();
    let tokenizer_config = TokenizerConfig::from_json(payload.tokenizer_config_json())?;
    // Parsing a 150k-token vocabulary takes a moment: only when text is involved.
    let tokenizer = if args.tokens.is_none() || !args.ids {
        Some(Tokenizer::from_json(payload.tokenizer_json())?)
    } else {
        None
    };

    let prompt = prompt_tokens(args, tokenizer.as_ref(), &tokenizer_config)?;
    if let Some(bad) = prompt.iter().find(|&&id| id as usize >= config.vocab) {
        return Err(Error::Usage(format!(
            "token id {bad} is out of range: the model's vocabulary has {} tokens",
            config.vocab
        )));
    }
    if prompt.is_empty() {
        return Err(Error::Usage("the prompt is empty: nothing to run".into()));
    }

    let ctx = match args.ctx {
        Some(ctx) if ctx as usize > config.max_ctx => {
            return Err(Error::Usage(format!(
                "--ctx {ctx} is more than the model's maximum context of {} tokens",
                config.max_ctx
            )))
        }
        Some(ctx) => ctx as usize,
        None => config.max_ctx.min(DEFAULT_MAX_CTX),
    };
    let max_new = args
        .max_new_tokens
        .unwrap_or(if args.dump_logits.is_some() {
            0
        } else {
            DEFAULT_MAX_NEW_TOKENS
        });
    let needed = prompt.len() + max_new;
    if needed > ctx {
        let remedy = if needed <= config.max_ctx {
            format!("raise --ctx to {needed} or more, or lower -n")
        } else {
            format!(
                "the model's maximum context is {} tokens: shorten the prompt or lower -n",
                config.max_ctx
            )
        };
        return Err(Error::Usage(format!(
            "the prompt ({} tokens) plus -n {max_new} does not fit in the context of {ctx} tokens; {remedy}",
            prompt.len()
        )));
    }

    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );
    kernels::check_blis()?;
    kernels::init_pool(threads)?;

    let model = Model::new(entry, payload.weights(), config);
    let mut session = Session::new(&model, ctx, PREFILL_BATCH)?;

    // The prompt: its last row of logits, and every row if asked for.
    let start = Instant::now();
    let logits = match &args.dump_logits {
        None => session.prefill(&prompt)?,
        Some(path) => {
            let all = match args.logits_via {
                LogitsVia::Prefill => session.prefill_all_logits(&prompt)?,
                LogitsVia::Decode => session.decode_all_logits(&prompt)?,
            };
            npy::write_f32(path, &[prompt.len(), config.vocab], &all)?;
            all[(prompt.len() - 1) * config.vocab..].to_vec()
        }
    };
    report(console, &Stats::since(start, prompt.len()).line("prefill"))?;
    if max_new == 0 {
        return Ok(());
    }

    let mut sampler = Sampler::new(SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    });
    let eos = &tokenizer_config.eos_token_ids;
    let generation = match &tokenizer {
        Some(tokenizer) if !args.ids => {
            let mut text = tokenizer.stream();
            let mut ends_with_newline = true;
            let mut print = |piece: &str, out: &mut dyn Write| -> Result<(), Error> {
                if !piece.is_empty() {
                    ends_with_newline = piece.ends_with('\n');
                    write_flush(out, piece.as_bytes())?;
                }
                Ok(())
            };
            let generation = generate(&mut session, logits, &mut sampler, max_new, eos, |id| {
                text.push(id)
                    .map_or(Ok(()), |piece| print(&piece, console.out))
            })?;
            print(&text.finish(), console.out)?;
            if console.out_is_terminal && !ends_with_newline {
                write_flush(console.out, b"\n")?;
            }
            generation
        }
        _ => {
            let mut separator = "";
            let generation = generate(&mut session, logits, &mut sampler, max_new, eos, |id| {
                let shown = format!("{separator}{id}");
                separator = " ";
                write_flush(console.out, shown.as_bytes())
            })?;
            write_flush(console.out, b"\n")?;
            generation
        }
    };
    report(console, &generation.decode.line("decode"))
}

/// The prompt's token ids: given directly, or the text tokenized (with BOS
/// when the tokenizer config asks for it).
fn prompt_tokens(
    args: &Args,
    tokenizer: Option<&Tokenizer>,
    config: &TokenizerConfig,
) -> Result<Vec<u32>, Error> {
    if let Some(ids) = &args.tokens {
        return Ok(ids.clone());
    }
    let text = match (&args.prompt, &args.file) {
        (Some(prompt), _) => prompt.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| Error::io(format!("reading the prompt file {}", file.display()), e))?,
        (None, None) => return Err(Error::Usage("give one of -p, -f or --tokens".into())),
    };
    let tokenizer = tokenizer.ok_or_else(|| Error::BadTokenizer("not loaded".into()))?;
    let mut ids: Vec<u32> = config.bos().into_iter().collect();
    ids.extend(tokenizer.encode(&text)?);
    Ok(ids)
}

fn write_flush(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

fn report(console: &mut Console, line: &str) -> Result<(), Error> {
    writeln!(console.err, "{line}").map_err(|e| Error::io("writing to stderr", e))
}
