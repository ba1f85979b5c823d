//! The activation statistics file that an executable's `--calibrate OUT`
//! writes and `dittoc quantize --calib-stats` reads: a safetensors file of
//! f32 tensors, four per weight `NAME` whose input activations `X [M, K]`
//! were observed (every linear layer in prefill):
//!
//! | tensor | shape | holds |
//! |---|---|---|
//! | `NAME.sumsq` | `[K]` | Σ over rows of x_k² (the diagonal of XᵀX) |
//! | `NAME.rows` | `[1]` | M, the number of rows seen |
//! | `NAME.samples` | `[S, K]` | S rows kept by seeded reservoir sampling |
//! | `NAME.xtx` | `[K, K]` | XᵀX over every row |

/// One of the statistics kept per weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    SumSq,
    Rows,
    Samples,
    Xtx,
}

impl Stat {
    /// Every statistic, in the order the file is written.
    pub const ALL: [Stat; 4] = [Stat::SumSq, Stat::Rows, Stat::Samples, Stat::Xtx];

    pub fn suffix(self) -> &'static str {
        match self {
            Stat::SumSq => ".sumsq",
            Stat::Rows => ".rows",
            Stat::Samples => ".samples",
            Stat::Xtx => ".xtx",
        }
    }
}

/// The name in the file of weight `weight`'s statistic `stat`.
pub fn key(weight: &str, stat: Stat) -> String {
    format!("{weight}{}", stat.suffix())
}

/// The weight and statistic a tensor of the file holds, if it is one.
pub fn split(key: &str) -> Option<(&str, Stat)> {
    Stat::ALL
        .into_iter()
        .find_map(|stat| key.strip_suffix(stat.suffix()).map(|w| (w, stat)))
}
