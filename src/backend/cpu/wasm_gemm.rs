//! Single-precision GEMM for wasm32 with 128-bit SIMD, for the page.
//!
//! `matrixmultiply` has no wasm SIMD kernel, and its scalar fallback is the
//! bottleneck of training in the browser (`gemm`, used natively, has one
//! behind its `wasm-simd128-enable` feature, not compared yet). This is the classic
//! packed layout (as in BLIS and matrixmultiply): blocks of B (KC x NC) and A
//! (MC x KC) are copied into panels of NR columns / MR rows, and a 4 x 8
//! micro-kernel keeps its tile of C in eight `f32x4` registers over the whole K
//! block. Strides may be anything (transposes are free), as with `sgemm`.
//!
//! Built with relaxed SIMD (the page's FMA worker, scripts/fma_worker.sh) the
//! kernel's multiply-adds are `f32x4.relaxed_madd`, which V8 compiles to one
//! FMA instruction where the CPU has one (x86's FMA3): half the instructions.
//! That pays where multiplies and adds share the FMA pipes (Intel's cores);
//! on an AMD Zen 5, which has separate add pipes, the page measured the same
//! speed either way (README, Benchmarks). Whether the product is rounded
//! before the add is then the machine's choice (the proposal's "relaxed"
//! semantics); both are within the tests' tolerance. A 6 x 8 tile, which
//! FMA's free registers seemed to allow, ran 1.3x slower (V8 spills).

use core::arch::wasm32::*;
use std::cell::RefCell;

const MR: usize = 4;
const NR: usize = 8;
const KC: usize = 256;
const MC: usize = 64;
const NC: usize = 1024;

thread_local! {
    /// Packing buffers, reused between calls.
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `c = a @ b + beta * c` for an `m x k` A and a `k x n` B, all given by a pointer
/// and row / column strides in elements; with `beta == 0` C is not read.
///
/// # Safety
/// Every element `(i, j)` of each matrix within its dims, at its strides, must be
/// in bounds, and C must not overlap A or B.
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    BUFFERS.with(|buffers| {
        let mut buffers = buffers.borrow_mut();
        let (pa, pb) = &mut *buffers;
        pa.resize(MC * KC, 0.0);
        pb.resize(KC * NC.min(n.next_multiple_of(NR)), 0.0);
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // SAFETY (all pointer offsets below): rows, columns and depths stay
                // within m, n and k, which the caller guarantees are in bounds.
                pack_b(kc, nc, b.offset(pc as isize * rsb + jc as isize * csb), rsb, csb, pb);
                let beta = if pc == 0 { beta } else { 1.0 };
                for ic in (0..m).step_by(MC) {
                    let mc = MC.min(m - ic);
                    pack_a(mc, kc, a.offset(ic as isize * rsa + pc as isize * csa), rsa, csa, pa);
                    for jr in (0..nc).step_by(NR) {
                        for ir in (0..mc).step_by(MR) {
                            let tile = kernel(kc, pa.as_ptr().add(ir * kc), pb.as_ptr().add(jr * kc));
                            let c_tile = c.offset((ic + ir) as isize * rsc + (jc + jr) as isize * csc);
                            store(tile, MR.min(mc - ir), NR.min(nc - jr), beta, c_tile, rsc, csc);
                        }
                    }
                }
            }
        }
    });
}

/// Copies a `kc x nc` block of B into panels of NR columns: panel `jp` holds, for
/// each depth p, its NR values (zero past the last column). A B stored
/// transposed (`rsb == 1`: a convolution's weight gradient, `dY x patches^T`)
/// is read four depths of each column at a time and transposed in registers.
unsafe fn pack_b(kc: usize, nc: usize, b: *const f32, rsb: isize, csb: isize, out: &mut [f32]) {
    for jp in 0..nc.div_ceil(NR) {
        let panel = &mut out[jp * NR * kc..(jp + 1) * NR * kc];
        let cols = NR.min(nc - jp * NR);
        let first = b.offset((jp * NR) as isize * csb);
        let mut p0 = 0;
        if cols == NR && rsb == 1 && csb != 1 {
            while p0 + 4 <= kc {
                for half in 0..2 {
                    let col =
                        |q: usize| v128_load(first.offset((half * 4 + q) as isize * csb + p0 as isize) as *const v128);
                    let t = transpose4([col(0), col(1), col(2), col(3)]);
                    for (d, v) in t.into_iter().enumerate() {
                        v128_store(panel.as_mut_ptr().add((p0 + d) * NR + half * 4) as *mut v128, v);
                    }
                }
                p0 += 4;
            }
        }
        for p in p0..kc {
            let row = first.offset(p as isize * rsb);
            let dst = &mut panel[p * NR..(p + 1) * NR];
            if cols == NR && csb == 1 {
                dst.copy_from_slice(std::slice::from_raw_parts(row, NR));
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if j < cols { *row.offset(j as isize * csb) } else { 0.0 };
                }
            }
        }
    }
}

/// Copies an `mc x kc` block of A into panels of MR rows: panel `ip` holds, for
/// each depth p, its MR values (zero past the last row). A row-major A is
/// read four depths of each row at a time and transposed in registers; a
/// transposed one (`rsa == 1`, the input gradient's `W^T`) has each depth's
/// MR values side by side already.
unsafe fn pack_a(mc: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, out: &mut [f32]) {
    for ip in 0..mc.div_ceil(MR) {
        let panel = &mut out[ip * MR * kc..(ip + 1) * MR * kc];
        let rows = MR.min(mc - ip * MR);
        let first = a.offset((ip * MR) as isize * rsa);
        if rows == MR && csa == 1 && rsa != 1 {
            let mut p0 = 0;
            while p0 + 4 <= kc {
                let row = |i: usize| v128_load(first.offset(i as isize * rsa + p0 as isize) as *const v128);
                for (d, v) in transpose4([row(0), row(1), row(2), row(3)]).into_iter().enumerate() {
                    v128_store(panel.as_mut_ptr().add((p0 + d) * MR) as *mut v128, v);
                }
                p0 += 4;
            }
            for p in p0..kc {
                for i in 0..MR {
                    panel[p * MR + i] = *first.offset(i as isize * rsa + p as isize);
                }
            }
            continue;
        }
        if rows == MR && rsa == 1 {
            for p in 0..kc {
                v128_store(
                    panel.as_mut_ptr().add(p * MR) as *mut v128,
                    v128_load(first.offset(p as isize * csa) as *const v128),
                );
            }
            continue;
        }
        for i in 0..MR {
            if i < rows {
                let src = first.offset(i as isize * rsa);
                for p in 0..kc {
                    panel[p * MR + i] = *src.offset(p as isize * csa);
                }
            } else {
                for p in 0..kc {
                    panel[p * MR + i] = 0.0;
                }
            }
        }
    }
}

/// The transpose of a 4 x 4 block held as four rows: four columns.
#[inline(always)]
fn transpose4([r0, r1, r2, r3]: [v128; 4]) -> [v128; 4] {
    let (t0, t1) = (i32x4_shuffle::<0, 4, 1, 5>(r0, r1), i32x4_shuffle::<2, 6, 3, 7>(r0, r1));
    let (t2, t3) = (i32x4_shuffle::<0, 4, 1, 5>(r2, r3), i32x4_shuffle::<2, 6, 3, 7>(r2, r3));
    [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
        i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
    ]
}

/// `a * b + c`: one fused multiply-add where the build has relaxed SIMD
/// (`+relaxed-simd`; x86's FMA3, Arm's FMLA), else a multiply and an add.
#[inline(always)]
fn madd(a: v128, b: v128, c: v128) -> v128 {
    #[cfg(target_feature = "relaxed-simd")]
    return f32x4_relaxed_madd(a, b, c);
    #[cfg(not(target_feature = "relaxed-simd"))]
    f32x4_add(c, f32x4_mul(a, b))
}

/// The MR x NR product of an A panel and a B panel over depth `kc`, as rows of two
/// `f32x4`s.
#[inline(always)]
unsafe fn kernel(kc: usize, a: *const f32, b: *const f32) -> [[v128; 2]; MR] {
    let z = f32x4_splat(0.0);
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21, mut c30, mut c31) = (z, z, z, z, z, z, z, z);
    for p in 0..kc {
        let b0 = v128_load(b.add(p * NR) as *const v128);
        let b1 = v128_load(b.add(p * NR + 4) as *const v128);
        let ap = a.add(p * MR);
        let a0 = f32x4_splat(*ap);
        c00 = madd(a0, b0, c00);
        c01 = madd(a0, b1, c01);
        let a1 = f32x4_splat(*ap.add(1));
        c10 = madd(a1, b0, c10);
        c11 = madd(a1, b1, c11);
        let a2 = f32x4_splat(*ap.add(2));
        c20 = madd(a2, b0, c20);
        c21 = madd(a2, b1, c21);
        let a3 = f32x4_splat(*ap.add(3));
        c30 = madd(a3, b0, c30);
        c31 = madd(a3, b1, c31);
    }
    [[c00, c01], [c10, c11], [c20, c21], [c30, c31]]
}

/// Writes the valid `rows x cols` part of a tile into C: `c = tile + beta * c`.
#[inline(always)]
unsafe fn store(tile: [[v128; 2]; MR], rows: usize, cols: usize, beta: f32, c: *mut f32, rsc: isize, csc: isize) {
    if rows == MR && cols == NR && csc == 1 {
        let vb = f32x4_splat(beta);
        for (i, row) in tile.iter().enumerate() {
            let p = c.offset(i as isize * rsc);
            for (half, v) in row.iter().enumerate() {
                let q = p.add(half * 4) as *mut v128;
                let out = if beta == 0.0 { *v } else { f32x4_add(*v, f32x4_mul(vb, v128_load(q))) };
                v128_store(q, out);
            }
        }
        return;
    }
    let mut vals = [[0.0f32; NR]; MR];
    for (i, row) in tile.iter().enumerate() {
        v128_store(vals[i].as_mut_ptr() as *mut v128, row[0]);
        v128_store(vals[i].as_mut_ptr().add(4) as *mut v128, row[1]);
    }
    for (i, row) in vals.iter().enumerate().take(rows) {
        for (j, v) in row.iter().enumerate().take(cols) {
            let q = c.offset(i as isize * rsc + j as isize * csc);
            *q = if beta == 0.0 { *v } else { *v + beta * *q };
        }
    }
}
