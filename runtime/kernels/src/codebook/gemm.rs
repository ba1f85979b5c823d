//! The GEMM driver, shared by every instruction set: C := beta·C + alpha·X·Ŵᵀ
//! with Ŵ decoded one panel at a time, never whole.
//!
//! ```text
//! for each panel of NR rows of Ŵ (NR columns of C):
//!     S[M, NR] := 0
//!     for each chunk of KC columns of K:
//!         panel[KC][NR] := Ŵ[p0 .. p0+NR, kc0 .. kc0+KC]ᵀ    (decoded once, ~16-32 KB, in L1)
//!         for each tile of MR rows of X:
//!             S[tile, :] += X[tile, chunk] · panel             (the ISA's register tile)
//!     C[:, panel] := beta·C + alpha·S
//! ```
//!
//! The decoded panel is reused by all M rows of X, so decoding costs N·K
//! lookups per call whatever M is. S carries every output's running sum
//! from one chunk to the next, so each output is one chain of fused
//! multiply-adds in k order, the same in every ISA's tile.

use super::layout::{epilogue, CbMatrix};
use super::{GemmBlock, Scale};

/// Columns of K decoded per panel.
pub(crate) const KC: usize = 256;

/// What an instruction set provides to the driver.
pub(crate) trait Gemm {
    /// Rows of X per tile.
    const MR: usize;
    /// Rows of Ŵ per panel (columns of C).
    const NR: usize;

    /// out := Ŵ[row, k0 .. k0 + out.len()]; `k0·b` a multiple of 8.
    ///
    /// # Safety
    /// The CPU has the ISA's features.
    unsafe fn decode_range(m: &CbMatrix, row: usize, k0: usize, out: &mut [f32]);

    /// `s[r·NR + j] += Σ_{k<kc} xs[r][k] · panel[k·NR + j]` for r < MR, j < NR.
    ///
    /// # Safety
    /// The CPU has the ISA's features; `xs` has MR pointers to kc readable
    /// f32 each, `panel` kc·NR, `s` MR·NR.
    unsafe fn tile(kc: usize, xs: &[*const f32], panel: *const f32, s: *mut f32);
}

/// Rows `r0..r1` and columns `c0..c1` of C := beta·C + alpha·X·Ŵᵀ
/// ([`GemmBlock`]'s `rows` and `cols`, [`Scale`]). X row r is at
/// `x + r·ldx` (K contiguous values), C row r at `c + r·ldc`.
///
/// # Safety
/// The CPU has G's features; X and C are that large; no other thread
/// writes that block of C.
pub(crate) unsafe fn gemm_block<G: Gemm>(m: &CbMatrix, block: GemmBlock, scale: Scale) {
    let GemmBlock {
        rows: (r0, r1),
        cols: (c0, c1),
        x,
        ldx,
        c,
        ldc,
    } = block;
    let Scale { alpha, beta } = scale;
    let (mr, nr, k) = (G::MR, G::NR, m.k());
    let rows = r1 - r0;
    if rows == 0 || c1 <= c0 {
        return;
    }
    let mut panel = vec![0.0f32; KC * nr]; // [KC][NR]
    let mut row = vec![0.0f32; KC];
    let mut s = vec![0.0f32; rows.next_multiple_of(mr) * nr]; // [M rounded up to MR][NR]
    let mut xs = vec![x; mr];
    for p0 in (c0..c1).step_by(nr) {
        let cols = nr.min(c1 - p0);
        s.fill(0.0);
        for kc0 in (0..k).step_by(KC) {
            let kc = KC.min(k - kc0);
            for j in 0..nr {
                if j < cols {
                    G::decode_range(m, p0 + j, kc0, &mut row[..kc]);
                } else {
                    row[..kc].fill(0.0);
                }
                for (t, &w) in row[..kc].iter().enumerate() {
                    panel[t * nr + j] = w;
                }
            }
            for t0 in (0..rows).step_by(mr) {
                for (r, p) in xs.iter_mut().enumerate() {
                    // Rows past the end repeat the last one; their sums land in S's padding.
                    *p = x.add((r0 + (t0 + r).min(rows - 1)) * ldx + kc0);
                }
                G::tile(kc, &xs, panel.as_ptr(), s.as_mut_ptr().add(t0 * nr));
            }
        }
        for t in 0..rows {
            let c_row = c.add((r0 + t) * ldc + p0);
            for j in 0..cols {
                *c_row.add(j) = epilogue(s[t * nr + j], *c_row.add(j), alpha, beta);
            }
        }
    }
}
