//! One run of the executable: open the payload, build the prompt, prefill,
//! optionally dump the prompt's logits, then generate and stream the text.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use crate::cli::{Activations, Args, LogitsVia, DEFAULT_MAX_CTX, DEFAULT_MAX_NEW_TOKENS};
use crate::generate::{generate, Flow, Session, Stats, PREFILL_BATCH};
use crate::model::{EntryPoints, Model};
use crate::npy;
use crate::payload::Payload;
use crate::sampler::{Sampler, SamplerConfig};
use crate::speculate::{generate_speculative, Drafter, SpecGeneration};
use crate::stop::StopFilter;
use crate::tokenizer::{TextStream, Tokenizer, TokenizerConfig};
use crate::Error;
use crate::{bench, blis, pool};
use ditto_datastore::SuffixStore;

/// Where a run writes: generated text (or ids) and the timing lines.
pub struct Console<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
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
    refuse_overwrites(args, payload_path)?;
    let payload = Payload::open(payload_path)?;
    let config = payload.model();
    entry.check_manifest(config)?;
    let tokenizer_config = TokenizerConfig::from_json(payload.tokenizer_config_json())?;
    // Parsing a 150k-token vocabulary takes a moment: only when text is involved.
    let ids_only = args.tokens.is_some() || args.tokens_file.is_some();
    let tokenizer = if !ids_only || !args.ids {
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

    if let Some(out) = &args.calibrate {
        return calibrate(args, &payload, entry, prompt, out, console);
    }
    if args.perplexity {
        return perplexity(args, &payload, entry, prompt, console);
    }

    let max_new = args.max_new_tokens.unwrap_or(match args.dump_logits {
        Some(_) => 0,
        None => DEFAULT_MAX_NEW_TOKENS,
    });
    let ctx = context_length(args.ctx, config.max_ctx, prompt.len() + max_new)?;

    let stores = crate::datastores::open(args, &payload, |line| report(console, line))?;
    let model = load_model(args, &payload, entry)?;
    let plan = Plan {
        prompt,
        ctx,
        max_new,
        stores,
    };
    let eos = &tokenizer_config.eos_token_ids;
    // On a pool thread, the kernels split their work without hand-off waits.
    pool::pool().run(|| infer(args, &model, &plan, eos, tokenizer.as_ref(), console))
}

/// Refuses an output (`--dump-logits`, `--calibrate`) that is a file the run
/// reads: this executable (its payload is mapped), `-f`, `--tokens-file`.
fn refuse_overwrites(args: &Args, payload_path: &Path) -> Result<(), Error> {
    // Named as the real file in messages, not /proc/self/exe.
    let executable = std::fs::canonicalize(payload_path).unwrap_or_else(|_| payload_path.into());
    let mut inputs: Vec<(&Path, &str)> = vec![(&executable, "the running executable")];
    if let Some(file) = &args.file {
        inputs.push((file, "the prompt file (-f)"));
    }
    if let Some(file) = &args.tokens_file {
        inputs.push((file, "the token file (--tokens-file)"));
    }
    for file in &args.datastore {
        inputs.push((file, "a datastore (--datastore)"));
    }
    for (flag, output) in [
        ("--dump-logits", &args.dump_logits),
        ("--calibrate", &args.calibrate),
    ] {
        if let Some(output) = output {
            ditto_files::refuse_overwrite(flag, output, &[(output, "")], &inputs)?;
            // Said now, in the flag's words, rather than after the run by
            // the temporary file that cannot be made beside it.
            let parent = match output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(Error::io(
                    format!("{flag} {}", output.display()),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no directory {}", parent.display()),
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The kernels' thread pool (`--threads`, default: every core), the GEMV's
/// activations (`--activations`) and the model over the payload's weights.
fn load_model<'p>(
    args: &Args,
    payload: &'p Payload,
    entry: EntryPoints,
) -> Result<Model<'p>, Error> {
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );
    blis::check_blis()?;
    pool::init_pool(threads)?;
    crate::state::configure(crate::state::Settings {
        int8_activations: args.activations == Activations::Int8,
    });
    Ok(Model::new(entry, payload.weights(), payload.model()))
}

/// `--calibrate`: the prompt in windows of `--ctx` tokens (default 512),
/// every row through the LM head, with the kernel adapters recording each
/// weight's activations.
fn calibrate(
    args: &Args,
    payload: &Payload,
    entry: EntryPoints,
    prompt: Vec<u32>,
    out: &Path,
    console: &mut Console,
) -> Result<(), Error> {
    let config = payload.model();
    let window = window_length(args.ctx, config.max_ctx)?;
    let model = load_model(args, payload, entry)?;
    crate::calibrate::start(
        payload.weights(),
        &payload.manifest().weights_index,
        args.calib_samples,
        args.seed,
    );
    let start = Instant::now();
    // On a terminal, a line that counts the windows as they go.
    let progress = std::io::stderr().is_terminal();
    let windows = prompt.len().div_ceil(window);
    let run = pool::pool().run(|| -> Result<(), Error> {
        for (done, chunk) in prompt.chunks(window).enumerate() {
            if progress {
                let seen = done * window;
                eprint!(
                    "\rcalibration: window {}/{windows} ({seen}/{} tokens, {:.0} s)",
                    done + 1,
                    prompt.len(),
                    start.elapsed().as_secs_f64()
                );
            }
            let mut session = Session::new(&model, window, PREFILL_BATCH)?;
            session.prefill_all_logits(chunk)?;
        }
        if progress {
            eprintln!();
        }
        Ok(())
    });
    let tensors = crate::calibrate::finish(out)?;
    run?;
    report(
        console,
        &format!(
            "calibration: {} tokens in {:.1} s, statistics of {tensors} weights → {}",
            prompt.len(),
            start.elapsed().as_secs_f64(),
            out.display()
        ),
    )
}

/// `--perplexity`: exp of the mean negative log-likelihood of every token
/// after the first of each non-overlapping window of `--ctx` tokens.
fn perplexity(
    args: &Args,
    payload: &Payload,
    entry: EntryPoints,
    prompt: Vec<u32>,
    console: &mut Console,
) -> Result<(), Error> {
    let config = payload.model();
    let window = window_length(args.ctx, config.max_ctx)?;
    if window < 2 {
        return Err(Error::Usage(
            "--perplexity needs windows (--ctx) of at least 2 tokens: in a window of 1 no token is scored"
                .into(),
        ));
    }
    let model = load_model(args, payload, entry)?;
    let vocab = config.vocab;
    let start = Instant::now();
    let (nll, scored) = pool::pool().run(|| -> Result<(f64, usize), Error> {
        let (mut nll, mut scored) = (0.0f64, 0usize);
        for chunk in prompt.chunks(window).filter(|c| c.len() > 1) {
            let mut session = Session::new(&model, window, PREFILL_BATCH)?;
            let logits = match args.logits_via {
                LogitsVia::Prefill => session.prefill_all_logits(chunk)?,
                LogitsVia::Decode => session.decode_all_logits(chunk)?,
            };
            for (row, &next) in chunk[1..].iter().enumerate() {
                let row = &logits[row * vocab..(row + 1) * vocab];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = row.iter().map(|&l| f64::from(l - max).exp()).sum();
                nll += sum.ln() - f64::from(row[next as usize] - max);
                scored += 1;
            }
        }
        Ok((nll, scored))
    })?;
    if scored == 0 {
        return Err(Error::Usage(
            "--perplexity needs a text of at least two tokens".into(),
        ));
    }
    let ppl = (nll / scored as f64).exp();
    write_flush(console.out, format!("{ppl:.6}\n").as_bytes())?;
    report(
        console,
        &format!(
            "perplexity: {ppl:.4} over {scored} scored tokens (windows of {window}) in {:.1} s",
            start.elapsed().as_secs_f64()
        ),
    )
}

/// What to run, checked against the model and the context.
struct Plan {
    prompt: Vec<u32>,
    ctx: usize,
    max_new: usize,
    /// The datastores to draft from; `None`: no speculation.
    stores: Option<Vec<SuffixStore>>,
}

/// Runs the model: the prompt (its logits dumped if asked), then the
/// generated tokens, streamed to the console.
fn infer(
    args: &Args,
    model: &Model,
    plan: &Plan,
    eos: &[u32],
    tokenizer: Option<&Tokenizer>,
    console: &mut Console,
) -> Result<(), Error> {
    let (prompt, vocab) = (&plan.prompt, model.vocab());
    let mut session = Session::new(model, plan.ctx, PREFILL_BATCH)?;

    // The prompt: its last row of logits, and every row if asked for.
    let start = Instant::now();
    let logits = match &args.dump_logits {
        None => session.prefill(prompt)?,
        Some(path) => {
            let all = match args.logits_via {
                LogitsVia::Prefill => session.prefill_all_logits(prompt)?,
                LogitsVia::Decode => session.decode_all_logits(prompt)?,
            };
            npy::write_f32(path, &[prompt.len(), vocab], &all)?;
            all[(prompt.len() - 1) * vocab..].to_vec()
        }
    };
    report(console, &Stats::since(start, prompt.len()).line("prefill"))?;
    if args.measure_verify {
        let costs = bench::measure_verify(&mut session, prompt, &bench::VERIFY_SIZES, 7)?;
        let table = costs.table(pool::pool().threads(), session.pos());
        return write_flush(console.out, table.as_bytes());
    }
    if plan.max_new == 0 {
        return Ok(());
    }

    let mut sampler = Sampler::new(SamplerConfig {
        temperature: args.temp,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    });
    let max_new = plan.max_new;
    let mut drafter = match &plan.stores {
        Some(stores) => Some(drafter(args, tokenizer, prompt, stores.clone(), console)?),
        None => None,
    };
    // Generates with `emit`: speculatively, or one ditto_decode per token.
    let mut run = |emit: &mut dyn FnMut(u32) -> Result<Flow, Error>| -> Result<String, Error> {
        match &mut drafter {
            Some(drafter) => {
                let g = generate_speculative(
                    &mut session,
                    &logits,
                    &mut sampler,
                    (max_new, eos),
                    drafter,
                    emit,
                )?;
                Ok(speculation_line(&g) + &crate::datastores::usage(&drafter.stores))
            }
            None => {
                let g = generate(
                    &mut session,
                    logits.clone(),
                    &mut sampler,
                    max_new,
                    eos,
                    emit,
                )?;
                Ok(g.decode.line("decode"))
            }
        }
    };
    let line = match tokenizer {
        Some(tokenizer) if !args.ids => {
            let mut text = TextOut::new(tokenizer, &args.stop, console);
            let line = run(&mut |id| text.push(id))?;
            text.finish()?;
            line
        }
        _ => {
            let mut separator = "";
            let line = run(&mut |id| {
                let shown = format!("{separator}{id}");
                separator = " ";
                write_flush(console.out, shown.as_bytes()).map(|()| Flow::Continue)
            })?;
            write_flush(console.out, b"\n")?;
            line
        }
    };
    report(console, &line)
}

/// The drafter of speculative decoding: the prompt as its first context,
/// `stores` (the datastores), and the code of `--repo` tokenized into a
/// suffix array.
fn drafter(
    args: &Args,
    tokenizer: Option<&Tokenizer>,
    prompt: &[u32],
    mut stores: Vec<SuffixStore>,
    console: &mut Console,
) -> Result<Drafter, Error> {
    if let Some(dir) = &args.repo {
        let Some(tokenizer) = tokenizer else {
            return Err(Error::Usage(
                "--repo needs the tokenizer: it cannot be used with --ids and --tokens".into(),
            ));
        };
        let start = Instant::now();
        let corpus = ditto_datastore::repo::read_repository(
            dir,
            ditto_datastore::repo::Limits::default(),
            |text| tokenizer.encode(text).ok(),
        )
        .map_err(|e| Error::Usage(format!("--repo: {e}")))?;
        let tokens: usize = corpus.documents.iter().map(Vec::len).sum();
        let store = SuffixStore::build(&corpus.documents)
            .map_err(|e| Error::Usage(format!("--repo {}: {e}", dir.display())))?;
        report(
            console,
            &format!(
                "repository: {} files, {} KiB, {tokens} tokens indexed in {:.2} s{}",
                corpus.files.len(),
                corpus.bytes / 1024,
                start.elapsed().as_secs_f64(),
                if corpus.truncated {
                    " (stopped at the size limit)"
                } else {
                    ""
                }
            ),
        )?;
        stores.push(store.with_label(format!("--repo {}", dir.display())));
    }
    Ok(Drafter::new(stores, prompt, args.draft_max).sized(args.draft_sizing.into()))
}

/// `speculation: 40 tokens in 12 forwards (3.33 per forward), 0.500 s (80.0 tok/s,
/// 1.95x the plain step's 41.0 tok/s); 10 verifications (mean accepted 2.80),
/// retrieval 1.2 ms (0.2%); drafted 60, accepted 28 (47%)`
fn speculation_line(g: &SpecGeneration) -> String {
    let per = |a: f64, b: usize| if b > 0 { a / b as f64 } else { 0.0 };
    let rate = if g.appends.seconds > 0.0 {
        g.generated as f64 / g.appends.seconds
    } else {
        0.0
    };
    let against_plain = match g.plain_step_seconds {
        Some(step) if step > 0.0 && rate > 0.0 => {
            format!(
                ", {:.2}x the plain step's {:.1} tok/s",
                rate * step,
                1.0 / step
            )
        }
        _ => String::new(),
    };
    let retrieval_share = if g.appends.seconds > 0.0 {
        100.0 * g.retrieval_seconds / g.appends.seconds
    } else {
        0.0
    };
    format!(
        "speculation: {} tokens in {} forwards ({:.2} per forward), {:.3} s ({rate:.1} tok/s{against_plain}); \
         {} verifications (mean accepted {:.2}), retrieval {:.1} ms ({retrieval_share:.1}%); \
         drafted {}, accepted {} ({:.0}%)",
        g.generated,
        g.appends.tokens,
        per(g.generated as f64, g.appends.tokens),
        g.appends.seconds,
        g.verifications,
        per(g.accepted as f64, g.verifications),
        g.retrieval_seconds * 1e3,
        g.drafted,
        g.accepted,
        100.0 * per(g.accepted as f64, g.drafted),
    )
}

/// The windows of `--perplexity` and `--calibrate`: `--ctx` tokens, which
/// must fit the model's context, or 512 (the model's context if shorter).
fn window_length(asked: Option<u32>, max_ctx: usize) -> Result<usize, Error> {
    match asked {
        Some(ctx) if ctx as usize > max_ctx => Err(Error::Usage(format!(
            "--ctx {ctx} is more than the model's maximum context of {max_ctx} tokens"
        ))),
        Some(ctx) => Ok(ctx as usize),
        None => Ok(max_ctx.min(512)),
    }
}

/// The context to allocate: `--ctx`, or the model's own up to 4096; it
/// must hold `needed` positions (the prompt plus -n).
fn context_length(asked: Option<u32>, max_ctx: usize, needed: usize) -> Result<usize, Error> {
    let ctx = match asked {
        Some(ctx) if ctx as usize > max_ctx => {
            return Err(Error::Usage(format!(
                "--ctx {ctx} is more than the model's maximum context of {max_ctx} tokens"
            )))
        }
        Some(ctx) => ctx as usize,
        None => max_ctx.min(DEFAULT_MAX_CTX),
    };
    if needed > ctx {
        let remedy = if needed <= max_ctx {
            format!("raise --ctx to {needed} or more, or lower -n")
        } else {
            format!(
                "the model's maximum context is {max_ctx} tokens: shorten the prompt or lower -n"
            )
        };
        return Err(Error::Usage(format!(
            "the prompt plus -n needs {needed} positions, more than the context of {ctx} tokens; {remedy}"
        )));
    }
    Ok(ctx)
}

/// Generated text on its way to stdout, flushed piece by piece, cut before
/// the first `--stop` string.
struct TextOut<'t, 'c, 'o> {
    text: TextStream<'t>,
    stops: StopFilter,
    stopped: bool,
    console: &'c mut Console<'o>,
    ends_with_newline: bool,
}

impl<'t, 'c, 'o> TextOut<'t, 'c, 'o> {
    fn new(tokenizer: &'t Tokenizer, stops: &[String], console: &'c mut Console<'o>) -> Self {
        TextOut {
            text: tokenizer.stream(),
            stops: StopFilter::new(stops),
            stopped: false,
            console,
            ends_with_newline: true,
        }
    }

    fn push(&mut self, id: u32) -> Result<Flow, Error> {
        let Some(piece) = self.text.push(id) else {
            return Ok(Flow::Continue);
        };
        let released = self.stops.push(&piece);
        self.print(&released.text)?;
        self.stopped = released.stopped;
        Ok(if released.stopped {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    /// Prints what is held back (unless a stop string ended the text), and a
    /// newline for a terminal.
    fn finish(mut self) -> Result<(), Error> {
        if !self.stopped {
            let rest = self.text.finish();
            let released = self.stops.push(&rest);
            self.print(&released.text)?;
            if !released.stopped {
                let held = self.stops.finish();
                self.print(&held)?;
            }
        }
        if self.console.out_is_terminal && !self.ends_with_newline {
            write_flush(self.console.out, b"\n")?;
        }
        Ok(())
    }

    fn print(&mut self, piece: &str) -> Result<(), Error> {
        if piece.is_empty() {
            return Ok(());
        }
        self.ends_with_newline = piece.ends_with('\n');
        write_flush(self.console.out, piece.as_bytes())
    }
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
    if let Some(path) = &args.tokens_file {
        return read_token_ids(path);
    }
    let text = match (&args.prompt, &args.file) {
        (Some(prompt), _) => prompt.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| Error::io(format!("-f {}: cannot read the prompt", file.display()), e))?,
        (None, None) => return Err(Error::Usage("give one of -p, -f or --tokens".into())),
    };
    let tokenizer = tokenizer.ok_or_else(|| Error::BadTokenizer("not loaded".into()))?;
    let mut ids: Vec<u32> = config.bos().into_iter().collect();
    ids.extend(tokenizer.encode(&text)?);
    Ok(ids)
}

/// Token ids from a file: decimal numbers separated by whitespace or commas.
fn read_token_ids(path: &Path) -> Result<Vec<u32>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("--tokens-file {}: cannot read", path.display()), e))?;
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.parse::<u32>().map_err(|_| {
                Error::Usage(format!(
                    "{}: \"{word}\" is not a token id (a number between 0 and {})",
                    path.display(),
                    u32::MAX
                ))
            })
        })
        .collect()
}

fn write_flush(out: &mut (dyn Write + Send), bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("writing to stdout", e))
}

fn report(console: &mut Console, line: &str) -> Result<(), Error> {
    writeln!(console.err, "{line}").map_err(|e| Error::io("writing to stderr", e))
}
