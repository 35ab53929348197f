//! CPU kernels: strided GEMM (the `gemm` crate natively, `wasm_gemm` in the
//! browser), convolution as im2col + GEMM,
//! pooling, and the fused softmax / softmax-cross-entropy.
//!
//! Conventions: images are NCHW and contiguous (`as_standard_layout` first);
//! matrices may have any strides, so transposes cost nothing.

use ndarray::{Array2, Array3, ArrayD, ArrayView2, ArrayView3, ArrayViewMut2, Axis, IxDyn};

use super::ops::Window;

/// Defines a function whose body is compiled three times on x86-64: for the
/// baseline (SSE2), for AVX2 with FMA and for AVX-512, and runs the widest
/// the CPU has (`is_x86_feature_detected!`, cached by std). The elementwise
/// loops of the recurrent cells then take eight or sixteen lanes a step
/// instead of four. On other targets (wasm32 with simd128) the body is
/// compiled once, as it is.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
                    // SAFETY: the CPU has the features `avx512` is compiled for
                    // (AVX-512F implies AVX2 and FMA).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub mod array;
pub mod fused;
pub mod recurrent;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm_gemm;

/// What this build's CPU kernels run on, for the page's backend line: in the
/// browser, WebAssembly's 128-bit SIMD, "with FMA" in the worker built with
/// relaxed SIMD (scripts/fma_worker.sh: the GEMM kernel's multiply-adds are
/// `f32x4.relaxed_madd`: one instruction where the CPU has FMA, x86's FMA3
/// or Arm's FMLA, a multiply and an add where it has not); natively, the
/// machine's own vector instructions, chosen at run time.
pub const KERNELS: &str = if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
    "WebAssembly SIMD with FMA"
} else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "WebAssembly SIMD"
} else if cfg!(target_arch = "wasm32") {
    "WebAssembly"
} else {
    "native"
};

/// `c = a @ b + beta * c` for 2-d views with arbitrary strides.
pub fn gemm_into(a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: &mut ArrayViewMut2<f32>) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "gemm: inner dimensions differ ({m}x{k} @ {k2}x{n})");
    assert_eq!(c.dim(), (m, n), "gemm: output has the wrong shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.mapv_inplace(|v| v * beta);
        return;
    }
    let (rsa, csa) = (a.strides()[0], a.strides()[1]);
    let (rsb, csb) = (b.strides()[0], b.strides()[1]);
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the views guarantee that every (row, col) within their dims, at
    // their strides, is in bounds; the shapes were checked above and `c` is a
    // unique mutable view, so it aliases neither input.
    unsafe {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        wasm_gemm::sgemm(m, k, n, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), rsc, csc);
        #[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
        matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), rsc, csc);
        // gemm's convention: dst = alpha dst + beta lhs rhs, dst read only when asked.
        #[cfg(not(target_arch = "wasm32"))]
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            csc,
            rsc,
            beta != 0.0,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            beta,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

pub fn gemm(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm_into(a, b, 0.0, &mut c.view_mut());
    c
}

/// Batched `a[i] @ b[i]` over the leading axis.
pub fn batched_gemm(a: ArrayView3<f32>, b: ArrayView3<f32>) -> Array3<f32> {
    let batch = a.len_of(Axis(0));
    assert_eq!(batch, b.len_of(Axis(0)), "batched matmul: batch sizes differ");
    let mut c = Array3::zeros((batch, a.len_of(Axis(1)), b.len_of(Axis(2))));
    for i in 0..batch {
        gemm_into(a.index_axis(Axis(0), i), b.index_axis(Axis(0), i), 0.0, &mut c.index_axis_mut(Axis(0), i));
    }
    c
}

/// Unfolds the patches of images `images` of `x` [N,C,H,W] into `cols`
/// [C*KH*KW, len(images)*OH*OW]: row `(c*KH + i)*KW + j` holds input pixel
/// `(i, j)` of each window, columns run over images, then output rows and columns.
/// Every entry is written (padding as zeros), so `cols` may hold stale data.
pub fn im2col(x: &[f32], g: &Window, images: std::ops::Range<usize>, cols: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let per_image = oh * ow;
    let ncols = images.len() * per_image;
    debug_assert_eq!(cols.len(), g.c * g.kh * g.kw * ncols);
    let padded = g.pad.iter().any(|&p| p > 0);
    for c in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let dst_row = &mut cols[row * ncols..(row + 1) * ncols];
                if padded {
                    dst_row.fill(0.0);
                }
                for (k, n) in images.clone().enumerate() {
                    let plane = &x[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
                    let dst = &mut dst_row[k * per_image..][..per_image];
                    window_rows(g, i, j, ow, |oy, iy, ox_range, ix0| {
                        let src = &plane[iy * g.w..][..g.w];
                        let d = &mut dst[oy * ow..][..ow];
                        if g.sw == 1 {
                            copy_row(&mut d[ox_range.clone()], &src[ix0..ix0 + ox_range.len()]);
                        } else {
                            for (k, ox) in ox_range.enumerate() {
                                d[ox] = src[ix0 + k * g.sw];
                            }
                        }
                    });
                }
            }
        }
    }
}

/// Copies `src` into `dst`, a row of a few pixels (same length). In wasm a
/// `copy_from_slice` whose length is not known when compiling is a
/// `memory.copy`, which V8 runs as a call into the engine: for the rows of 3
/// to 26 pixels that `im2col` copies (300,000 of them per Seed CNN step) the
/// call cost more than the copy, 6 % of the step. There it is four lanes at a
/// time; natively, `copy_from_slice` (inlined).
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "copy_row: lengths differ");
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{v128, v128_load, v128_store};
        let n = dst.len();
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        let mut i = 0;
        // SAFETY: every access is below n, the length of both slices.
        unsafe {
            while i + 4 <= n {
                v128_store(d.add(i) as *mut v128, v128_load(s.add(i) as *const v128));
                i += 4;
            }
            // At most three left: no loop, which LLVM would make a memory.copy again.
            if i + 2 <= n {
                (d.add(i) as *mut u64).write_unaligned((s.add(i) as *const u64).read_unaligned());
                i += 2;
            }
            if i < n {
                *d.add(i) = *s.add(i);
            }
        }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    dst.copy_from_slice(src);
}

/// Adds `src` onto `dst`, a row of a few pixels (same length): in wasm four
/// lanes at a time, as `copy_row` copies (LLVM's vectorised loop checks for
/// overlap and runs a scalar prologue first, costly on rows of a dozen).
#[inline(always)]
fn add_row(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add_row: lengths differ");
    // Advanced by the wasm SIMD loop below; natively the scalar loop starts at 0.
    #[cfg_attr(not(all(target_arch = "wasm32", target_feature = "simd128")), allow(unused_mut))]
    let mut i = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::{f32x4_add, v128, v128_load, v128_store};
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        while i + 4 <= dst.len() {
            // SAFETY: i + 4 <= the length of both slices.
            unsafe {
                let q = d.add(i) as *mut v128;
                v128_store(q, f32x4_add(v128_load(q), v128_load(s.add(i) as *const v128)));
            }
            i += 4;
        }
    }
    for (d, s) in dst[i..].iter_mut().zip(&src[i..]) {
        *d += s;
    }
}

/// The adjoint of `im2col`: adds each column entry back onto the pixel of `dx`
/// [N,C,H,W] it came from.
pub fn col2im(cols: &[f32], g: &Window, images: std::ops::Range<usize>, dx: &mut [f32]) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let per_image = oh * ow;
    let ncols = images.len() * per_image;
    for c in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let src_row = &cols[row * ncols..(row + 1) * ncols];
                for (k, n) in images.clone().enumerate() {
                    let plane = &mut dx[(n * g.c + c) * g.h * g.w..][..g.h * g.w];
                    let src = &src_row[k * per_image..][..per_image];
                    window_rows(g, i, j, ow, |oy, iy, ox_range, ix0| {
                        let dst = &mut plane[iy * g.w..][..g.w];
                        let s = &src[oy * ow..][..ow];
                        if g.sw == 1 {
                            add_row(&mut dst[ix0..ix0 + ox_range.len()], &s[ox_range]);
                        } else {
                            for (k, ox) in ox_range.enumerate() {
                                dst[ix0 + k * g.sw] += s[ox];
                            }
                        }
                    });
                }
            }
        }
    }
}

/// For kernel tap (i, j), calls `f(oy, iy, ox_range, ix0)` for every output row
/// whose tap lands inside the image: outputs `ox_range` read input row `iy` from
/// column `ix0` on, every `sw` columns. Padding is what is skipped.
#[inline]
fn window_rows(
    g: &Window,
    i: usize,
    j: usize,
    ow: usize,
    mut f: impl FnMut(usize, usize, std::ops::Range<usize>, usize),
) {
    let oh = g.out_h();
    // ox is valid when 0 <= ox*sw + j - pl < w.
    let ox_start = g.pad[2].saturating_sub(j).div_ceil(g.sw);
    let ox_end = if g.w + g.pad[2] > j { ((g.w + g.pad[2] - j - 1) / g.sw + 1).min(ow) } else { 0 };
    if ox_start >= ox_end {
        return;
    }
    let ix0 = ox_start * g.sw + j - g.pad[2];
    for oy in 0..oh {
        let iy = (oy * g.sh + i) as isize - g.pad[0] as isize;
        if iy < 0 || iy as usize >= g.h {
            continue;
        }
        f(oy, iy as usize, ox_start..ox_end, ix0);
    }
}

/// Columns of one convolution GEMM (images x output pixels): enough for the
/// GEMM to run at full speed, few enough that a chunk's unfolded patches
/// (`C*KH*KW` rows of them) stay in the core's L2 cache between im2col and
/// the GEMM that reads them.
const CHUNK_COLUMNS: usize = 512;

/// Images per im2col chunk (at least one).
fn conv_chunk(g: &Window) -> usize {
    let per_image = g.out_h() * g.out_w();
    (CHUNK_COLUMNS / per_image.max(1)).clamp(1, g.n.max(1))
}

/// A convolution's input unfolded by `im2col`, kept from the forward pass for
/// the backward: chunk after chunk of `conv_chunk` images, each
/// `[C*KH*KW, images*OH*OW]`, so the chunk of images `n0..` starts at
/// `C*KH*KW * n0*OH*OW`. Training keeps it (at batch 64, 9 MB for the Seed
/// CNN's second convolution) so that backward does not unfold again.
pub struct Patches(Vec<f32>);

/// Convolution forward: `x` [N,C,H,W], `weight` [F, C*KH*KW] -> [N,F,OH,OW],
/// with the unfolded patches when `keep` (for `conv2d_backward`). im2col +
/// GEMM, a chunk of images at a time; a chunk of one image is multiplied
/// straight into its place in the output.
pub fn conv2d_forward(
    x: &[f32],
    weight: ArrayView2<f32>,
    bias: Option<&[f32]>,
    g: &Window,
    keep: bool,
) -> (Vec<f32>, Option<Patches>) {
    let f = weight.nrows();
    let ckk = weight.ncols();
    let hw = g.out_h() * g.out_w();
    let chunk = conv_chunk(g);
    let mut out = vec![0.0f32; g.n * f * hw];
    let mut cols = vec![0.0f32; ckk * if keep { g.n } else { chunk } * hw];
    let mut tmp = if chunk > 1 { vec![0.0f32; f * chunk * hw] } else { Vec::new() };
    for n0 in (0..g.n).step_by(chunk) {
        let n1 = (n0 + chunk).min(g.n);
        let ncols = (n1 - n0) * hw;
        let cols = &mut cols[if keep { ckk * n0 * hw } else { 0 }..][..ckk * ncols];
        im2col(x, g, n0..n1, cols);
        let cols_view = ArrayView2::from_shape((ckk, ncols), &*cols).unwrap();
        let dst = &mut out[n0 * f * hw..n1 * f * hw];
        if n1 - n0 == 1 {
            gemm_into(weight, cols_view, 0.0, &mut ArrayViewMut2::from_shape((f, hw), &mut *dst).unwrap());
            if let Some(b) = bias {
                for (row, &b) in dst.chunks_exact_mut(hw).zip(b) {
                    row.iter_mut().for_each(|v| *v += b);
                }
            }
            continue;
        }
        let t = &mut tmp[..f * ncols];
        gemm_into(weight, cols_view, 0.0, &mut ArrayViewMut2::from_shape((f, ncols), &mut *t).unwrap());
        // [F, images*HW] -> [images, F, HW], adding the bias.
        for (k, image) in dst.chunks_exact_mut(f * hw).enumerate() {
            for (fi, row) in image.chunks_exact_mut(hw).enumerate() {
                let b = bias.map_or(0.0, |b| b[fi]);
                for (d, s) in row.iter_mut().zip(&t[fi * ncols + k * hw..][..hw]) {
                    *d = s + b;
                }
            }
        }
    }
    (out, keep.then_some(Patches(cols)))
}

/// Convolution backward: from `dy` [N,F,OH,OW], the gradients of the input (if
/// `want_dx`), the weight [F, C*KH*KW] and the bias [F]. `patches` are the
/// forward pass's (`conv2d_forward` with `keep`); without them the input is
/// unfolded again, a chunk at a time.
pub fn conv2d_backward(
    x: &[f32],
    weight: ArrayView2<f32>,
    dy: &[f32],
    g: &Window,
    want_dx: bool,
    patches: Option<&Patches>,
) -> (Option<Vec<f32>>, Array2<f32>, Vec<f32>) {
    let f = weight.nrows();
    let ckk = weight.ncols();
    let hw = g.out_h() * g.out_w();
    let chunk = conv_chunk(g);
    if let Some(p) = patches {
        assert_eq!(p.0.len(), ckk * g.n * hw, "conv2d backward: patches of another convolution");
    }
    let mut dx = want_dx.then(|| vec![0.0f32; g.n * g.c * g.h * g.w]);
    let mut dw = Array2::<f32>::zeros((f, ckk));
    let mut db = vec![0.0f64; f];
    let mut scratch = if patches.is_none() { vec![0.0f32; ckk * chunk * hw] } else { Vec::new() };
    let mut dcols = if want_dx { vec![0.0f32; ckk * chunk * hw] } else { Vec::new() };
    let mut dy_mat = if chunk > 1 { vec![0.0f32; f * chunk * hw] } else { Vec::new() };
    for n0 in (0..g.n).step_by(chunk) {
        let n1 = (n0 + chunk).min(g.n);
        let ncols = (n1 - n0) * hw;
        let dy_chunk = &dy[n0 * f * hw..n1 * f * hw];
        for (fi, row) in dy_chunk.chunks_exact(hw).enumerate() {
            // In f64: the terms nearly cancel, and the sign decides Adam's step.
            db[fi % f] += sum_f64(row);
        }
        // [images, F, HW] -> [F, images*HW], the layout the GEMMs want (a
        // chunk of one image is that already).
        let dm = if n1 - n0 == 1 {
            dy_chunk
        } else {
            let dm = &mut dy_mat[..f * ncols];
            for (k, image) in dy_chunk.chunks_exact(f * hw).enumerate() {
                for (fi, row) in image.chunks_exact(hw).enumerate() {
                    dm[fi * ncols + k * hw..][..hw].copy_from_slice(row);
                }
            }
            &*dm
        };
        let dm = ArrayView2::from_shape((f, ncols), dm).unwrap();
        let cols = match patches {
            Some(p) => &p.0[ckk * n0 * hw..][..ckk * ncols],
            None => {
                let cols = &mut scratch[..ckk * ncols];
                im2col(x, g, n0..n1, cols);
                &*cols
            }
        };
        let cols_view = ArrayView2::from_shape((ckk, ncols), cols).unwrap();
        gemm_into(dm, cols_view.t(), 1.0, &mut dw.view_mut());
        if let Some(dx) = dx.as_mut() {
            let dc = &mut dcols[..ckk * ncols];
            gemm_into(weight.t(), dm, 0.0, &mut ArrayViewMut2::from_shape((ckk, ncols), &mut *dc).unwrap());
            col2im(dc, g, n0..n1, dx);
        }
    }
    (dx, dw, db.into_iter().map(|v| v as f32).collect())
}

/// The sum of `v` in f64, over eight lanes so that it vectorises (a single
/// running sum is a chain of dependent adds, each waiting for the last).
fn sum_f64(v: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&x| x as f64).sum();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x as f64;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Max pooling forward: returns the output and, per output, the flat index of the
/// winning input within its (n, c) plane (the first maximum on ties).
pub fn max_pool_forward(x: &[f32], g: &Window) -> (Vec<f32>, Vec<u32>) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let planes = g.n * g.c;
    let mut out = vec![0.0f32; planes * oh * ow];
    let mut arg = vec![0u32; planes * oh * ow];
    if ow == 0 || oh == 0 {
        return (out, arg);
    }
    let rows = out.chunks_exact_mut(ow).zip(arg.chunks_exact_mut(ow));
    for (r, (best, best_idx)) in rows.enumerate() {
        let (p, oy) = (r / oh, r % oh);
        let plane = &x[p * g.h * g.w..][..g.h * g.w];
        let base = oy * g.sh * g.w;
        if (g.kh, g.kw, g.sw) == (2, 2, 2) {
            // Keras's default pool: two input rows, pairs of columns.
            let (r0, r1) = (&plane[base..][..2 * ow], &plane[base + g.w..][..2 * ow]);
            max_pool_2x2_row(r0, r1, base as u32, g.w as u32, best, best_idx);
            continue;
        }
        for (ox, (v, i)) in best.iter_mut().zip(best_idx.iter_mut()).enumerate() {
            *v = plane[base + ox * g.sw];
            *i = (base + ox * g.sw) as u32;
        }
        for i in 0..g.kh {
            for j in 0..g.kw {
                if i == 0 && j == 0 {
                    continue;
                }
                let row = base + i * g.w + j;
                let taps = plane[row..row + (ow - 1) * g.sw + 1].iter().step_by(g.sw);
                // Selects instead of branches: which tap wins is data-dependent.
                for (ox, ((b, bi), &v)) in best.iter_mut().zip(best_idx.iter_mut()).zip(taps).enumerate() {
                    let larger = v > *b;
                    *b = if larger { v } else { *b };
                    *bi = if larger { (row + ox * g.sw) as u32 } else { *bi };
                }
            }
        }
    }
    (out, arg)
}

/// One output row of a 2x2 max pool with stride 2: output `ox` is the largest
/// of `r0[2ox]`, `r0[2ox+1]`, `r1[2ox]`, `r1[2ox+1]` (the first of them on
/// ties, as compared by `>`: a NaN wins only in the first place), and its
/// index in the plane, where `r0` starts at `at` and `r1` one row of `w`
/// below. Which tap wins is data: as branches it mispredicts half the time,
/// so it is selects, four outputs at a time in wasm SIMD.
#[inline]
fn max_pool_2x2_row(r0: &[f32], r1: &[f32], at: u32, w: u32, best: &mut [f32], best_idx: &mut [u32]) {
    let ow = best.len();
    assert!(r0.len() >= 2 * ow && r1.len() >= 2 * ow && best_idx.len() == ow, "max_pool_2x2_row: lengths");
    // Advanced by the wasm SIMD loop below; natively the scalar loop starts at 0.
    #[cfg_attr(not(all(target_arch = "wasm32", target_feature = "simd128")), allow(unused_mut))]
    let mut ox = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        let even_odd = |v: &[f32]| {
            // SAFETY: `v` has eight values (the caller's bounds).
            let (lo, hi) =
                unsafe { (v128_load(v.as_ptr() as *const v128), v128_load(v.as_ptr().add(4) as *const v128)) };
            (i32x4_shuffle::<0, 2, 4, 6>(lo, hi), i32x4_shuffle::<1, 3, 5, 7>(lo, hi))
        };
        let steps = u32x4(0, 2, 4, 6);
        while ox + 4 <= ow {
            let (a0, a1) = even_odd(&r0[2 * ox..][..8]);
            let (b0, b1) = even_odd(&r1[2 * ox..][..8]);
            let first = u32x4_add(u32x4_splat(at + 2 * ox as u32), steps);
            let (mut m, mut k) = (a0, first);
            for (v, offset) in [(a1, 1), (b0, w), (b1, w + 1)] {
                let larger = f32x4_gt(v, m);
                m = v128_bitselect(v, m, larger);
                k = v128_bitselect(u32x4_add(first, u32x4_splat(offset)), k, larger);
            }
            // SAFETY: outputs ox..ox+4 are within `best` and `best_idx`.
            unsafe {
                v128_store(best.as_mut_ptr().add(ox) as *mut v128, m);
                v128_store(best_idx.as_mut_ptr().add(ox) as *mut v128, k);
            }
            ox += 4;
        }
    }
    for ox in ox..ow {
        let (a, b) = (&r0[2 * ox..2 * ox + 2], &r1[2 * ox..2 * ox + 2]);
        let i = at + 2 * ox as u32;
        let (mut m, mut k) = (a[0], i);
        (m, k) = if a[1] > m { (a[1], i + 1) } else { (m, k) };
        (m, k) = if b[0] > m { (b[0], i + w) } else { (m, k) };
        (m, k) = if b[1] > m { (b[1], i + w + 1) } else { (m, k) };
        (best[ox], best_idx[ox]) = (m, k);
    }
}

pub fn max_pool_backward(dy: &[f32], arg: &[u32], g: &Window) -> Vec<f32> {
    let per_plane_out = g.out_h() * g.out_w();
    let mut dx = vec![0.0f32; g.n * g.c * g.h * g.w];
    for (p, (dys, args)) in dy.chunks(per_plane_out).zip(arg.chunks(per_plane_out)).enumerate() {
        let plane = &mut dx[p * g.h * g.w..][..g.h * g.w];
        for (d, &a) in dys.iter().zip(args) {
            plane[a as usize] += d;
        }
    }
    dx
}

pub fn avg_pool_forward(x: &[f32], g: &Window) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let scale = 1.0 / (g.kh * g.kw) as f32;
    let mut out = vec![0.0f32; g.n * g.c * oh * ow];
    for (p, o) in out.chunks_mut(oh * ow).enumerate() {
        let plane = &x[p * g.h * g.w..][..g.h * g.w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut s = 0.0;
                for i in 0..g.kh {
                    let row = &plane[(oy * g.sh + i) * g.w + ox * g.sw..][..g.kw];
                    s += row.iter().sum::<f32>();
                }
                o[oy * ow + ox] = s * scale;
            }
        }
    }
    out
}

pub fn avg_pool_backward(dy: &[f32], g: &Window) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let scale = 1.0 / (g.kh * g.kw) as f32;
    let mut dx = vec![0.0f32; g.n * g.c * g.h * g.w];
    for (p, d) in dy.chunks(oh * ow).enumerate() {
        let plane = &mut dx[p * g.h * g.w..][..g.h * g.w];
        for oy in 0..oh {
            for ox in 0..ow {
                let v = d[oy * ow + ox] * scale;
                for i in 0..g.kh {
                    for x in &mut plane[(oy * g.sh + i) * g.w + ox * g.sw..][..g.kw] {
                        *x += v;
                    }
                }
            }
        }
    }
    dx
}

/// The largest value of `row` (-inf for none; NaNs skipped, as `f32::max`
/// does), by selects: in wasm `f32::max` is a call to libm's `fmaxf`.
fn row_max(row: &[f32]) -> f32 {
    row.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// Row-wise softmax over contiguous rows of length `classes`, in place.
pub fn softmax_rows(x: &mut [f32], classes: usize) {
    for row in x.chunks_mut(classes) {
        let m = row_max(row);
        let mut s = 0.0;
        for v in row.iter_mut() {
            *v = (*v - m).exp();
            s += *v;
        }
        let inv = 1.0 / s;
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Mean softmax cross-entropy over rows of `logits` (log-sum-exp form, stable for
/// any logits). Returns the loss and the softmax probabilities for the backward pass.
pub fn softmax_cross_entropy(logits: &[f32], classes: usize, labels: &[usize]) -> (f32, Vec<f32>) {
    let mut probs = logits.to_vec();
    let mut total = 0.0f64;
    for ((row, probs_row), &y) in logits.chunks(classes).zip(probs.chunks_mut(classes)).zip(labels) {
        let m = row_max(row);
        let sum: f32 = row.iter().map(|v| (v - m).exp()).sum();
        let log_sum_exp = m + sum.ln();
        total += (log_sum_exp - row[y]) as f64;
        let inv = 1.0 / sum;
        for (p, v) in probs_row.iter_mut().zip(row) {
            *p = (v - m).exp() * inv;
        }
    }
    let rows = labels.len().max(1);
    ((total / rows as f64) as f32, probs)
}

/// tanh as a rational function (the minimax fit Eigen uses for floats): within
/// 1e-6 of the exact value and several times faster than libm's, which dominated
/// the profile of GELU-heavy models.
#[inline(always)]
pub fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A: [f32; 7] =
        [4.893_524_6e-3, 6.372_619_3e-4, 1.485_722_4e-5, 5.122_297e-8, -8.604_672e-11, 2.000_188e-13, -2.760_768_5e-16];
    const B: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    // Branch-free (a select, not a return), so loops over it vectorise.
    let small = x.abs() < 4e-4;
    let c = x.clamp(-CLAMP, CLAMP);
    let x2 = c * c;
    let mut p = A[6];
    for &a in A[..6].iter().rev() {
        p = p * x2 + a;
    }
    let q = ((B[3] * x2 + B[2]) * x2 + B[1]) * x2 + B[0];
    let y = c * p / q;
    if small {
        x
    } else {
        y
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// GELU (tanh form) and its derivative at `x`.
#[inline(always)]
pub fn gelu_parts(x: f32) -> (f32, f32) {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    let inner = C * (x + 0.044715 * x * x * x);
    let t = fast_tanh(inner);
    let y = 0.5 * x * (1.0 + t);
    let dy = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044715 * x * x);
    (y, dy)
}

/// Rows of a 2-d array as one contiguous slice (copied if it is a view).
fn rows_of(a: &ArrayD<f32>) -> std::borrow::Cow<'_, [f32]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
    }
}

/// The LSTM cell's gate activations at hidden unit `j` of a row of
/// pre-activations `a` [4H]: (i, f, g, o).
fn lstm_gates(a: &[f32], h: usize, j: usize) -> (f32, f32, f32, f32) {
    (sigmoid(a[j]), sigmoid(a[h + j]), fast_tanh(a[2 * h + j]), sigmoid(a[3 * h + j]))
}

/// One LSTM step: `[h | c']` [N, 2H] from the gates' pre-activations [N, 4H]
/// and the cell state [N, H] (the same arithmetic as the composed ops).
pub fn lstm_cell(gates: &ArrayD<f32>, c: &ArrayD<f32>) -> ArrayD<f32> {
    let (n, h) = (c.shape()[0], c.shape()[1]);
    let (a, c) = (rows_of(gates), rows_of(c));
    let mut out = vec![0.0f32; n * 2 * h];
    for ((o, a), c) in out.chunks_mut(2 * h).zip(a.chunks(4 * h)).zip(c.chunks(h)) {
        for j in 0..h {
            let (i, f, g, og) = lstm_gates(a, h, j);
            let c2 = f * c[j] + i * g;
            o[j] = og * fast_tanh(c2);
            o[h + j] = c2;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[n, 2 * h]), out).unwrap()
}

/// The LSTM step's gradients: of the gates' pre-activations [N, 4H] and of the
/// cell state [N, H], from `dout`, the gradient of `[h | c']`.
pub fn lstm_cell_backward(
    gates: &ArrayD<f32>,
    c: &ArrayD<f32>,
    out: &ArrayD<f32>,
    dout: &ArrayD<f32>,
) -> (ArrayD<f32>, ArrayD<f32>) {
    let (n, h) = (c.shape()[0], c.shape()[1]);
    let (a, c, out, dout) = (rows_of(gates), rows_of(c), rows_of(out), rows_of(dout));
    let (mut da, mut dc) = (vec![0.0f32; n * 4 * h], vec![0.0f32; n * h]);
    for r in 0..n {
        let (a, c, o, d) = (
            &a[r * 4 * h..(r + 1) * 4 * h],
            &c[r * h..(r + 1) * h],
            &out[r * 2 * h..(r + 1) * 2 * h],
            &dout[r * 2 * h..(r + 1) * 2 * h],
        );
        let (dar, dcr) = (&mut da[r * 4 * h..(r + 1) * 4 * h], &mut dc[r * h..(r + 1) * h]);
        for j in 0..h {
            let (i, f, g, og) = lstm_gates(a, h, j);
            let tc = fast_tanh(o[h + j]);
            let dh = d[j];
            let dc2 = d[h + j] + dh * og * (1.0 - tc * tc);
            dar[j] = dc2 * g * i * (1.0 - i);
            dar[h + j] = dc2 * c[j] * f * (1.0 - f);
            dar[2 * h + j] = dc2 * i * (1.0 - g * g);
            dar[3 * h + j] = dh * tc * og * (1.0 - og);
            dcr[j] = dc2 * f;
        }
    }
    (ArrayD::from_shape_vec(IxDyn(&[n, 4 * h]), da).unwrap(), ArrayD::from_shape_vec(IxDyn(&[n, h]), dc).unwrap())
}

/// The GRU cell's gates at unit `j` from rows `a` (input) and `b` (hidden
/// state) of pre-activations [3H]: (r, z, n).
fn gru_gates(a: &[f32], b: &[f32], h: usize, j: usize) -> (f32, f32, f32) {
    let r = sigmoid(a[j] + b[j]);
    let z = sigmoid(a[h + j] + b[h + j]);
    (r, z, fast_tanh(a[2 * h + j] + r * b[2 * h + j]))
}

/// One GRU step: h' = n + z (h - n) [N, H] (the same arithmetic as the composed ops).
pub fn gru_cell(gi: &ArrayD<f32>, gh: &ArrayD<f32>, h: &ArrayD<f32>) -> ArrayD<f32> {
    let (n, u) = (h.shape()[0], h.shape()[1]);
    let (a, b, h) = (rows_of(gi), rows_of(gh), rows_of(h));
    let mut out = vec![0.0f32; n * u];
    for (((o, a), b), h) in out.chunks_mut(u).zip(a.chunks(3 * u)).zip(b.chunks(3 * u)).zip(h.chunks(u)) {
        for j in 0..u {
            let (_, z, c) = gru_gates(a, b, u, j);
            o[j] = c + z * (h[j] - c);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[n, u]), out).unwrap()
}

/// The GRU step's gradients: of the input's and the hidden state's gate
/// pre-activations [N, 3H] and of the hidden state [N, H], from `d`, that of h'.
pub fn gru_cell_backward(
    gi: &ArrayD<f32>,
    gh: &ArrayD<f32>,
    h: &ArrayD<f32>,
    d: &ArrayD<f32>,
) -> (ArrayD<f32>, ArrayD<f32>, ArrayD<f32>) {
    let (n, u) = (h.shape()[0], h.shape()[1]);
    let (a, b, h, d) = (rows_of(gi), rows_of(gh), rows_of(h), rows_of(d));
    let (mut da, mut db, mut dh) = (vec![0.0f32; n * 3 * u], vec![0.0f32; n * 3 * u], vec![0.0f32; n * u]);
    for r in 0..n {
        let (ar, br) = (&a[r * 3 * u..(r + 1) * 3 * u], &b[r * 3 * u..(r + 1) * 3 * u]);
        for j in 0..u {
            let (rg, z, c) = gru_gates(ar, br, u, j);
            let (k, g) = (r * u + j, d[r * u + j]);
            let dn = g * (1.0 - z) * (1.0 - c * c);
            let dz = g * (h[k] - c) * z * (1.0 - z);
            let dr = dn * br[2 * u + j] * rg * (1.0 - rg);
            let base = r * 3 * u + j;
            (da[base], da[base + u], da[base + 2 * u]) = (dr, dz, dn);
            (db[base], db[base + u], db[base + 2 * u]) = (dr, dz, dn * rg);
            dh[k] = g * z;
        }
    }
    let s3 = IxDyn(&[n, 3 * u]);
    (
        ArrayD::from_shape_vec(s3.clone(), da).unwrap(),
        ArrayD::from_shape_vec(s3, db).unwrap(),
        ArrayD::from_shape_vec(IxDyn(&[n, u]), dh).unwrap(),
    )
}

/// Keras's SGD: `v = momentum * v - lr * g; w += v`.
pub fn sgd_update(w: &mut ArrayD<f32>, v: &mut ArrayD<f32>, g: &ArrayD<f32>, lr: f32, momentum: f32) {
    ndarray::Zip::from(w).and(v).and(g).for_each(|w, v, &g| {
        *v = momentum * *v - lr * g;
        *w += *v;
    });
}

/// Keras's Adam step with `alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
#[allow(clippy::too_many_arguments)] // the update's inputs, as Keras names them
pub fn adam_update(
    w: &mut ArrayD<f32>,
    m: &mut ArrayD<f32>,
    v: &mut ArrayD<f32>,
    g: &ArrayD<f32>,
    alpha: f32,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
) {
    ndarray::Zip::from(w).and(m).and(v).and(g).for_each(|w, m, v, &g| {
        *m += (g - *m) * (1.0 - beta_1);
        *v += (g * g - *v) * (1.0 - beta_2);
        *w -= alpha * *m / (v.sqrt() + epsilon);
    });
}

/// Rows of `logits` (`[.., classes]`) whose first maximum is their label.
pub fn count_correct(logits: &ArrayD<f32>, labels: &[usize]) -> u32 {
    let classes = logits.shape()[logits.ndim() - 1];
    let logits = logits.as_standard_layout();
    let rows = logits.as_slice().expect("standard layout").chunks(classes.max(1));
    rows.zip(labels).filter(|(row, &y)| argmax(row) == y).count() as u32
}

/// The index of the first maximum (NaN and -inf never win; 0 when none does).
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) }).0
}
