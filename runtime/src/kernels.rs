//! The kernels the generated code calls (contracts.md §4): `ditto_rt_sgemv`
//! and `ditto_rt_sgemm`, BLIS semantics, pointers as byte addresses, strides
//! in elements.
//!
//! BLIS here is the serial build, and its gemv is single-threaded anyway, so
//! the runtime parallelizes: the output is cut into one slice per thread of
//! the one [`Pool`] (`--threads`), one BLIS call per slice. Small products
//! run whole on the calling thread.

use std::sync::OnceLock;

use crate::Error;

/// BLIS's typed API (`blis.h`: `dim_t`, `inc_t` are int64_t in this
/// build; `trans_t`, `conj_t` are C enums, int-sized, NO_* = 0).
mod blis {
    use std::ffi::c_int;
    pub const NO_TRANSPOSE: c_int = 0;
    pub const NO_CONJUGATE: c_int = 0;
    extern "C" {
        pub fn bli_sgemv(
            transa: c_int,
            conjx: c_int,
            m: i64,
            n: i64,
            alpha: *const f32,
            a: *const f32,
            rs_a: i64,
            cs_a: i64,
            x: *const f32,
            incx: i64,
            beta: *const f32,
            y: *mut f32,
            incy: i64,
        );
        /// `gint_t bli_info_get_int_type_size(void)`: 64 here. Read as the
        /// low 32 bits, which are right whatever the build's gint_t.
        pub fn bli_info_get_int_type_size() -> i64;
        pub fn bli_sgemm(
            transa: c_int,
            transb: c_int,
            m: i64,
            n: i64,
            k: i64,
            alpha: *const f32,
            a: *const f32,
            rs_a: i64,
            cs_a: i64,
            b: *const f32,
            rs_b: i64,
            cs_b: i64,
            beta: *const f32,
            c: *mut f32,
            rs_c: i64,
            cs_c: i64,
        );
    }
}

/// Slices start on multiples of this many rows (whole micro-tiles).
const SLICE_ALIGN: usize = 16;
/// Below this many multiply-adds a product is not worth a thread hand-off.
const MIN_PARALLEL_WORK: usize = 1 << 16;

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

/// Fails unless the linked BLIS takes 64-bit dimensions and strides, as
/// the declarations above assume (a BLIS built with 32-bit integers,
/// picked up through DITTO_BLIS_LIB_DIR, would misread every call).
pub fn check_blis() -> Result<(), Error> {
    choose_blis_kernels();
    // SAFETY: a query without arguments.
    let bits = unsafe { blis::bli_info_get_int_type_size() } as i32;
    if bits != 64 {
        return Err(Error::Setup(format!(
            "the BLIS linked into this executable uses {bits}-bit integers; ditto-rt needs a BLIS built with 64-bit integers"
        )));
    }
    Ok(())
}

/// BLIS picks its kernel set (sub-configuration) from the CPU model once,
/// at initialization, and falls back to its reference kernels on a CPU its
/// version does not know (Debian's BLIS 0.9 on a current AMD EPYC measured
/// 0.5× of its x86 kernels' speed). Unless the user chose one with
/// `BLIS_ARCH_TYPE`, choose from the CPU's features before the first BLIS
/// call: AMD with AVX2+FMA → zen3, Intel with AVX-512 → skx, any other
/// AVX2+FMA CPU → haswell. (Ids: BLIS's `arch_t` enum in blis.h.)
fn choose_blis_kernels() {
    if std::env::var_os("BLIS_ARCH_TYPE").is_some() {
        return;
    }
    if let Some(id) = blis_arch_for_this_cpu() {
        std::env::set_var("BLIS_ARCH_TYPE", id.to_string());
    }
}

#[cfg(target_arch = "x86_64")]
fn blis_arch_for_this_cpu() -> Option<u32> {
    const SKX: u32 = 0;
    const HASWELL: u32 = 3;
    const ZEN3: u32 = 6;
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
        return None;
    }
    let vendor = std::arch::x86_64::__cpuid(0);
    let amd = [vendor.ebx, vendor.edx, vendor.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163];
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl");
    Some(if amd {
        ZEN3
    } else if avx512 {
        SKX
    } else {
        HASWELL
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn blis_arch_for_this_cpu() -> Option<u32> {
    None
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

/// y := beta*y + alpha*A*x; A is m x n with strides (rsa, csa), x has n
/// entries at stride incx, y has m entries at stride incy.
///
/// # Safety
/// The pointers must address arrays of those shapes and strides; y must not
/// overlap A or x.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemv(
    pool: &Pool,
    m: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    x: *const f32,
    incx: isize,
    beta: f32,
    y: *mut f32,
    incy: isize,
) {
    if m == 0 {
        return;
    }
    let (a, x, y) = (a as usize, x as usize, y as usize);
    // Row-major A with contiguous x and y: the streaming kernel of
    // gemv_f32 where the CPU has AVX-512 (see there why not BLIS).
    let streaming = csa == 1
        && incx == 1
        && incy == 1
        && rsa >= n as isize
        && crate::gemv_f32::avx512_available();
    let rows = |r0: usize, r1: usize| {
        let a = (a as *const f32).wrapping_offset(r0 as isize * rsa);
        let y = (y as *mut f32).wrapping_offset(r0 as isize * incy);
        #[cfg(target_arch = "x86_64")]
        if streaming {
            // SAFETY: rows r0..r1 of A, x and y[r0..r1], per the caller;
            // the CPU supports AVX-512F.
            unsafe {
                crate::gemv_f32::rows_avx512(
                    r1 - r0,
                    n,
                    alpha,
                    a,
                    rsa as usize,
                    x as *const f32,
                    beta,
                    y,
                )
            };
            return;
        }
        // SAFETY: rows r0..r1 of A and entries r0..r1 of y, per the caller.
        unsafe {
            blis::bli_sgemv(
                blis::NO_TRANSPOSE,
                blis::NO_CONJUGATE,
                (r1 - r0) as i64,
                n as i64,
                &alpha,
                a,
                rsa as i64,
                csa as i64,
                x as *const f32,
                incx as i64,
                &beta,
                y,
                incy as i64,
            )
        }
    };
    if m.saturating_mul(n) < MIN_PARALLEL_WORK {
        rows(0, m)
    } else {
        pool.for_each_slice(m, rows)
    }
}

/// C := beta*C + alpha*A*B; A is m x k, B is k x n, C is m x n, each with
/// its own (row, column) strides.
///
/// Slices cut the rows of C (and A) when m >= n, else its columns (and B's):
/// a prefill's `hidden[T, d] x W^T` has few rows and many columns.
///
/// # Safety
/// The pointers must address arrays of those shapes and strides; C must not
/// overlap A or B.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    pool: &Pool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: *const f32,
    (rsa, csa): (isize, isize),
    b: *const f32,
    (rsb, csb): (isize, isize),
    beta: f32,
    c: *mut f32,
    (rsc, csc): (isize, isize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let (a, b, c) = (a as usize, b as usize, c as usize);
    // One BLIS call on rows r0..r1 and columns c0..c1 of C.
    let block = |(r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
        let a = (a as *const f32).wrapping_offset(r0 as isize * rsa);
        let b = (b as *const f32).wrapping_offset(c0 as isize * csb);
        let c = (c as *mut f32).wrapping_offset(r0 as isize * rsc + c0 as isize * csc);
        // SAFETY: a block of C and the rows of A / columns of B it needs.
        unsafe {
            blis::bli_sgemm(
                blis::NO_TRANSPOSE,
                blis::NO_TRANSPOSE,
                (r1 - r0) as i64,
                (c1 - c0) as i64,
                k as i64,
                &alpha,
                a,
                rsa as i64,
                csa as i64,
                b,
                rsb as i64,
                csb as i64,
                &beta,
                c,
                rsc as i64,
                csc as i64,
            )
        }
    };
    if m.saturating_mul(n).saturating_mul(k) < MIN_PARALLEL_WORK {
        block((0, m), (0, n))
    } else if m >= n {
        pool.for_each_slice(m, |r0, r1| block((r0, r1), (0, n)))
    } else {
        pool.for_each_slice(n, |c0, c1| block((0, m), (c0, c1)))
    }
}

/// `void ditto_rt_sgemv(int64_t m, int64_t n, float alpha, int64_t a, int64_t rsa, int64_t csa,
///                      int64_t x, int64_t incx, float beta, int64_t y, int64_t incy)`
///
/// # Safety
/// As [`sgemv`], with pointers given as addresses.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ditto_rt_sgemv(
    m: i64,
    n: i64,
    alpha: f32,
    a: i64,
    rsa: i64,
    csa: i64,
    x: i64,
    incx: i64,
    beta: f32,
    y: i64,
    incy: i64,
) {
    if m <= 0 || n < 0 {
        return;
    }
    sgemv(
        pool(),
        m as usize,
        n as usize,
        alpha,
        a as usize as *const f32,
        rsa as isize,
        csa as isize,
        x as usize as *const f32,
        incx as isize,
        beta,
        y as usize as *mut f32,
        incy as isize,
    )
}

/// `void ditto_rt_sgemm(int64_t m, int64_t n, int64_t k, float alpha,
///                      int64_t a, int64_t rsa, int64_t csa, int64_t b, int64_t rsb, int64_t csb,
///                      float beta, int64_t c, int64_t rsc, int64_t csc)`
///
/// # Safety
/// As [`sgemm`], with pointers given as addresses.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ditto_rt_sgemm(
    m: i64,
    n: i64,
    k: i64,
    alpha: f32,
    a: i64,
    rsa: i64,
    csa: i64,
    b: i64,
    rsb: i64,
    csb: i64,
    beta: f32,
    c: i64,
    rsc: i64,
    csc: i64,
) {
    if m <= 0 || n <= 0 || k < 0 {
        return;
    }
    sgemm(
        pool(),
        m as usize,
        n as usize,
        k as usize,
        alpha,
        a as usize as *const f32,
        (rsa as isize, csa as isize),
        b as usize as *const f32,
        (rsb as isize, csb as isize),
        beta,
        c as usize as *mut f32,
        (rsc as isize, csc as isize),
    )
}
