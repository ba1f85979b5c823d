//! Ŵ in panels: the int8 GEMM's operand layout made once, so that no
//! product packs it again (`avx512_panels.rs` multiplies with it).
//!
//! The int8 GEMM (`int8.rs`, prefill) holds 16 rows of Ŵ in the 16 dword
//! lanes of a register, lane l holding 4 consecutive weights of row l,
//! and broadcasts 4 activations of a row of X against it. Its `pack` makes
//! those registers on every call: per row and group of 64 weights an
//! unpack and a table lookup, then a 16 × 16 transpose of the results, so
//! that a product of one row costs 2-3 times the GEMV's. Here the indices
//! are stored in the registers' order instead, and the 16 rows' int8
//! tables side by side, so one lookup in 16 tables makes a register:
//!
//! ```text
//! panel p: rows 16p .. 16p + 16 (the last one zero-padded)
//! for each group g of 64 columns and step s = 0..16:
//!     indices[p][g][s]: 64 b-bit indices, LSB first; index 4l + t is
//!                       that of row 16p + l, column 64g + 4s + t
//! tables[p][g]:  16 × 2^b bytes, row 16p + l's `qc + 128` at l·2^b
//!                (the table of the block holding its group g)
//! scales[p][g]:  16 f32, row 16p + l's `s_c` for group g
//! ```
//!
//! A register is then `table[(l << b) | index]` byte by byte: `vpermb`
//! over 64 table bytes (b = 2), `vpermi2b` over 128 (b = 3), two of them
//! and a blend over 256 (b = 4). Wider codebooks (b = 5, 6) do not fit
//! and keep the packing GEMM.
//!
//! The products sum exactly what the int8 GEMM sums, in its order (per
//! output and group the exact integer `D`, then one fused multiply-add by
//! `s_c·s_x[g]` in k order): bit for bit the GEMM's, its scalar twin's,
//! and the same for a row of X whether it comes alone or with others.
//!
//! Memory: 8b + 16·2^b/64 + 1 bytes... per 64 weights of a row, i.e. for
//! b = 4 6.5 bits a weight (4 of indices, 2 of tables, 0.5 of scales), on
//! top of the weights the file maps.

use super::int8::{int8_fits, Int8Codebooks, GROUP};
use super::layout::CbMatrix;

/// Rows of Ŵ per panel (the dword lanes of a register).
pub const PANEL_ROWS: usize = 16;

/// Steps of 4 columns per group.
const STEPS: usize = GROUP / 4;

/// Bytes read past the last index chunk by the widest load (`load::<3>`
/// reads 32 bytes of a 24-byte chunk).
const TAIL: usize = 64;

/// How [`Int8Panels::new_with`] spreads its work: `split(len, fill)`
/// calls `fill(start, end)` on disjoint ranges covering `0 .. len`.
pub type Split<'a> = &'a dyn Fn(usize, &(dyn Fn(usize, usize) + Sync));

/// The widths panels are made for.
pub const PANEL_BITS: [usize; 3] = [2, 3, 4];

/// Ŵ [N, K] in panels (the module comment).
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Panels {
    bits: usize,
    n: usize,
    k: usize,
    /// [panels][groups][STEPS][8b] bytes, then TAIL zero bytes.
    indices: Vec<u8>,
    /// [panels][groups][16 · 2^b] `qc + 128`.
    tables: Vec<u8>,
    /// [panels][groups][16] `s_c`.
    scales: Vec<f32>,
}

impl Int8Panels {
    /// Whether `w` can be put in panels: an int8 matrix ([`int8_fits`]) of
    /// b = 2, 3 or 4.
    pub fn fit(w: &CbMatrix) -> bool {
        int8_fits(w) && PANEL_BITS.contains(&w.bits())
    }

    /// `w` in panels, its tables from `codebooks` (`Int8Codebooks::new(w)`).
    /// Panics unless [`Int8Panels::fit`] and `codebooks.fits(w)`.
    pub fn new(w: &CbMatrix, codebooks: &Int8Codebooks) -> Int8Panels {
        Self::new_with(w, codebooks, &|panels, fill| fill(0, panels))
    }

    /// [`Int8Panels::new`] with the panels filled by `split(panels, fill)`,
    /// which must call `fill(p0, p1)` on disjoint ranges covering
    /// `0 .. panels` (from any threads: a pool's slices).
    pub fn new_with(w: &CbMatrix, codebooks: &Int8Codebooks, split: Split) -> Int8Panels {
        assert!(
            Self::fit(w) && codebooks.fits(w),
            "Int8Panels: {w:?} cannot be put in panels"
        );
        let (bits, n, k) = (w.bits(), w.n(), w.k());
        let (panels, groups) = (n.div_ceil(PANEL_ROWS), k.div_ceil(GROUP));
        let chunk = 8 * bits; // bytes of 64 indices
        let levels = 1usize << bits;
        let mut indices = vec![0u8; panels * groups * STEPS * chunk + TAIL];
        let mut tables = vec![0u8; panels * groups * PANEL_ROWS * levels];
        let mut scales = vec![0.0f32; panels * groups * PANEL_ROWS];
        let at = (
            indices.as_mut_ptr() as usize,
            tables.as_mut_ptr() as usize,
            scales.as_mut_ptr() as usize,
        );
        let fill = |p0: usize, p1: usize| {
            let per_panel = groups * STEPS * chunk;
            // SAFETY: panels p0..p1 own these disjoint parts of the three
            // arrays (`split` hands out disjoint ranges), which outlive it.
            let (indices, tables, scales) = unsafe {
                (
                    std::slice::from_raw_parts_mut(
                        (at.0 as *mut u8).add(p0 * per_panel),
                        (p1 - p0) * per_panel,
                    ),
                    std::slice::from_raw_parts_mut(
                        (at.1 as *mut u8).add(p0 * groups * PANEL_ROWS * levels),
                        (p1 - p0) * groups * PANEL_ROWS * levels,
                    ),
                    std::slice::from_raw_parts_mut(
                        (at.2 as *mut f32).add(p0 * groups * PANEL_ROWS),
                        (p1 - p0) * groups * PANEL_ROWS,
                    ),
                )
            };
            fill_panels(w, codebooks, (p0, p1), (indices, tables, scales));
        };
        split(panels, &fill);
        Int8Panels {
            bits,
            n,
            k,
            indices,
            tables,
            scales,
        }
    }

    /// Whether these are the panels of a matrix of `w`'s shape and width.
    pub fn fits(&self, w: &CbMatrix) -> bool {
        (self.bits, self.n, self.k) == (w.bits(), w.n(), w.k())
    }

    pub fn bits(&self) -> usize {
        self.bits
    }
    pub fn n(&self) -> usize {
        self.n
    }
    pub fn k(&self) -> usize {
        self.k
    }
    /// Groups of 64 columns.
    pub fn groups(&self) -> usize {
        self.k.div_ceil(GROUP)
    }
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the AVX-512 kernel
    pub(crate) fn indices(&self) -> &[u8] {
        &self.indices
    }
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the AVX-512 kernel
    pub(crate) fn tables(&self) -> &[u8] {
        &self.tables
    }
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the AVX-512 kernel
    pub(crate) fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.indices.len() + self.tables.len() + 4 * self.scales.len()
    }
}

/// Panels `p0 .. p1` of `w` into their parts of the three arrays.
fn fill_panels(
    w: &CbMatrix,
    codebooks: &Int8Codebooks,
    (p0, p1): (usize, usize),
    (indices, tables, scales): (&mut [u8], &mut [u8], &mut [f32]),
) {
    let (bits, n, k) = (w.bits(), w.n(), w.k());
    let groups = k.div_ceil(GROUP);
    let (chunk, levels) = (8 * bits, 1usize << bits);
    let stream = w.indices();
    // Index `f` (a flat weight position) of the stream, LSB first.
    let index = |f: usize| -> u16 {
        let bit = f * bits;
        let lo = stream[bit / 8] as u16;
        let hi = stream.get(bit / 8 + 1).copied().unwrap_or(0) as u16;
        ((lo | hi << 8) >> (bit % 8)) & (levels as u16 - 1)
    };
    for p in p0..p1 {
        for g in 0..groups {
            let pg = (p - p0) * groups + g;
            for l in 0..PANEL_ROWS {
                let row = PANEL_ROWS * p + l;
                if row >= n {
                    continue;
                }
                let flat0 = row * k + GROUP * g;
                let (table, scale) = codebooks.block(flat0 / w.block());
                let at = (pg * PANEL_ROWS + l) * levels;
                tables[at..at + levels].copy_from_slice(table);
                scales[pg * PANEL_ROWS + l] = scale;
                // A whole group starting on a byte: 4 indices are b/2
                // bytes (b = 2, 4), copied as they are.
                let whole = GROUP * (g + 1) <= k
                    && (flat0 * bits).is_multiple_of(8)
                    && bits.is_multiple_of(2);
                if whole {
                    let len = bits / 2;
                    let from = &stream[flat0 * bits / 8..][..STEPS * len];
                    let to = &mut indices[pg * STEPS * chunk..][..STEPS * chunk];
                    for (s, four) in from.chunks_exact(len).enumerate() {
                        let at = s * chunk + l * len;
                        to[at] = four[0];
                        if len == 2 {
                            to[at + 1] = four[1];
                        }
                    }
                    continue;
                }
                for s in 0..STEPS {
                    let out = &mut indices[(pg * STEPS + s) * chunk..][..chunk];
                    for t in 0..4 {
                        let col = GROUP * g + 4 * s + t;
                        if col >= k {
                            break;
                        }
                        let v = index(row * k + col);
                        let bit = (4 * l + t) * bits;
                        out[bit / 8] |= (v << (bit % 8)) as u8;
                        if bit % 8 + bits > 8 {
                            out[bit / 8 + 1] |= (v >> (8 - bit % 8)) as u8;
                        }
                    }
                }
            }
        }
    }
}
