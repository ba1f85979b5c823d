//! The runtime's threads: one rayon pool for the whole process
//! (`--threads`), in which the model runs and over which every kernel splits
//! its work.

use std::sync::OnceLock;

use crate::Error;

/// Slices start on multiples of this many rows (whole micro-tiles).
const SLICE_ALIGN: usize = 16;

/// Stack of each pool thread. The model runs on a pool thread, and the
/// compiled code keeps its per-token buffers on the stack: every layer's
/// activations (with the layers inlined, as in a quantized module, all in one
/// frame: about 2 MiB for Qwen2.5-Coder-0.5B) and each layer's attention
/// scores, which grow with the position (heads × context × 4 bytes per
/// layer). rayon's 2 MiB default overflowed at position ~216; this is address
/// space reserved, not memory used until touched.
pub const MODEL_STACK_BYTES: usize = 256 << 20;

/// The runtime's threads (`--threads`): one rayon pool.
///
/// The model runs *inside* the pool ([`Pool::run`]): a kernel called there
/// queues its slices on its own thread's deque and works through them while
/// the other threads steal, so a sleeping thread never delays a product (the
/// caller just does that slice itself). Called from outside the pool (tests,
/// foreign callers), a kernel still splits its work but blocks until done.
pub struct Pool {
    threads: usize,
    workers: Option<rayon::ThreadPool>,
}

impl Pool {
    /// A pool of `threads` threads with [`MODEL_STACK_BYTES`] of stack each
    /// (one thread too: the model then runs on it, not on the caller's
    /// smaller stack).
    pub fn new(threads: usize) -> Result<Pool, Error> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .stack_size(MODEL_STACK_BYTES)
            .thread_name(|i| format!("ditto-worker-{i}"))
            .build()
            .map_err(|e| Error::Setup(format!("cannot start {threads} threads: {e}")))?;
        Ok(Pool {
            threads,
            workers: Some(pool),
        })
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on one of the pool's threads and returns its result.
    pub fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.workers {
            Some(workers) => workers.install(work),
            None => work(),
        }
    }

    /// Calls `body(start, end)` for slices covering `0..len`, one per
    /// thread, the first on the calling thread; returns when all are done.
    pub fn for_each_slice(&self, len: usize, body: impl Fn(usize, usize) + Sync) {
        let slices = self.threads.min(len.div_ceil(SLICE_ALIGN)).max(1);
        let workers = match &self.workers {
            Some(workers) if slices > 1 => workers,
            _ => return body(0, len),
        };
        let chunk = len.div_ceil(slices).next_multiple_of(SLICE_ALIGN);
        if workers.current_thread_index().is_some() {
            rayon::scope(|scope| slices_in(scope, &body, len, chunk)) // on a pool thread: never blocks
        } else {
            workers.in_place_scope(|scope| slices_in(scope, &body, len, chunk))
        }
    }
}

/// Spawns slices 1.. of `0..len` in `scope` and runs slice 0 here.
fn slices_in<'s, F: Fn(usize, usize) + Sync>(
    scope: &rayon::Scope<'s>,
    body: &'s F,
    len: usize,
    chunk: usize,
) {
    for start in (chunk..len).step_by(chunk) {
        scope.spawn(move |_| body(start, (start + chunk).min(len)));
    }
    body(0, chunk.min(len));
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Starts the process-wide pool with `threads` threads. Only the first call
/// decides; returns whether this one did.
pub fn init_pool(threads: usize) -> Result<bool, Error> {
    if POOL.get().is_some() {
        return Ok(false);
    }
    let pool = Pool::new(threads)?;
    Ok(POOL.set(pool).is_ok())
}

/// The process-wide pool (all cores, if `init_pool` was not called).
pub fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool::new(cores).unwrap_or(Pool {
            threads: 1,
            workers: None,
        })
    })
}
