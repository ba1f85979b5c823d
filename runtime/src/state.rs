//! The runtime's process-wide state, in one value.
//!
//! The generated code calls the kernels through the C ABI (contracts.md §4),
//! whose signatures carry operands only, so whatever those calls depend on
//! besides their operands lives here, in one [`State`]:
//!
//! | part | set by | read by |
//! |---|---|---|
//! | `--activations` ([`Settings`]) | [`configure`], once at start-up | the codebook products (int8 or f32 kernels) |
//! | the converted codebooks | a [`crate::model::Model`] while it lives | the AVX-512 int8 GEMV |
//! | the calibration hook | `--calibrate` ([`crate::calibrate`]) | the GEMM adapter |
//!
//! The thread pool, the other process-wide value, is [`crate::pool`]'s.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};

/// What the command line decides for the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Whether the codebook products may use the int8 kernels
    /// (`--activations int8`, the default) or stay on the exact f32 ones.
    pub int8_activations: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            int8_activations: true,
        }
    }
}

/// Everything the C adapters read besides their operands.
pub(crate) struct State {
    int8_activations: AtomicBool,
    /// The weights section whose codebooks the AVX-512 int8 GEMV reads
    /// converted, and those converted so far.
    pub(crate) converted: Mutex<Option<crate::codebook::Converted>>,
    /// The statistics `--calibrate` gathers; `None` otherwise.
    pub(crate) calibration: Mutex<Option<crate::calibrate::Calibrator>>,
    /// Whether `calibration` holds a calibrator: the GEMM adapter checks
    /// this flag, not the lock, on every call.
    pub(crate) calibrating: AtomicBool,
}

static STATE: State = State {
    int8_activations: AtomicBool::new(true),
    converted: Mutex::new(None),
    calibration: Mutex::new(None),
    calibrating: AtomicBool::new(false),
};

/// The one state of the process.
pub(crate) fn state() -> &'static State {
    &STATE
}

/// Sets what the command line decides, at start-up (before the model runs).
pub fn configure(settings: Settings) {
    STATE
        .int8_activations
        .store(settings.int8_activations, Ordering::Relaxed);
}

/// The settings in force ([`Settings::default`] until [`configure`]).
pub fn settings() -> Settings {
    Settings {
        int8_activations: STATE.int8_activations.load(Ordering::Relaxed),
    }
}
