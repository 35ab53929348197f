//! Fused CPU kernels for the transformer's and the dense layers' hot paths:
//! a linear layer's bias written before its GEMM, LayerNorm forward and
//! backward in one pass over each row, and scaled dot-product attention
//! reading the heads of `[N, T, 3E]` where they lie (strided GEMMs, no
//! permuted copies), as PyTorch's CPU `scaled_dot_product_attention` and
//! `layer_norm` kernels do. Slices in, `Vec`s out; shapes are checked by the
//! autograd ops that call them.

use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

use super::{gemm_into, softmax_rows};

/// `x W^T + b` for `x` `[rows, in]` (row-major), `w` `[out, in]` (any
/// strides): the bias rows first, then one GEMM adding onto them.
pub fn linear(x: &[f32], rows: usize, w: ArrayView2<f32>, bias: Option<&[f32]>) -> Vec<f32> {
    let mut y = vec![0.0f32; rows * w.nrows()];
    linear_into(x, rows, w, bias, &mut y);
    y
}

/// `linear` into `y` `[rows, out]` (any values before).
pub fn linear_into(x: &[f32], rows: usize, w: ArrayView2<f32>, bias: Option<&[f32]>, y: &mut [f32]) {
    let (out, features) = w.dim();
    match bias {
        Some(b) => y.chunks_exact_mut(out).for_each(|row| row.copy_from_slice(b)),
        None => y.fill(0.0),
    }
    let x = ArrayView2::from_shape((rows, features), x).expect("linear: x is [rows, in]");
    gemm_into(x, w.t(), 1.0, &mut ArrayViewMut2::from_shape((rows, out), y).expect("[rows, out]"));
}

/// `Σ f(x_i, y_i)` in eight lanes (a plain f32 sum is one long chain the
/// compiler may not reorder, so it would not vectorise).
#[inline(always)]
fn lane_sum(x: &[f32], y: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(&a, &b)| f(a, b)).sum();
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += f(a[l], b[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// LayerNorm over rows of `d` (PyTorch's, biased variance): `y = (x - μ) /
/// sqrt(σ² + eps) · γ + β`. Returns `y`, the normalised `x̂` and `1 / sqrt(σ² +
/// eps)` per row, the last two for the backward pass.
pub fn layer_norm(x: &[f32], d: usize, gamma: &[f32], beta: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let rows = x.len() / d.max(1);
    let (mut y, mut xhat, mut rstd) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()], vec![0.0f32; rows]);
    for (((x, y), xh), r) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(xhat.chunks_exact_mut(d)).zip(&mut rstd) {
        let mean = lane_sum(x, x, |a, _| a) / d as f32;
        let var = lane_sum(x, x, |a, _| (a - mean) * (a - mean)) / d as f32;
        *r = 1.0 / (var + eps).sqrt();
        for ((((xv, yv), h), g), b) in x.iter().zip(y.iter_mut()).zip(xh.iter_mut()).zip(gamma).zip(beta) {
            *h = (xv - mean) * *r;
            *yv = *h * g + b;
        }
    }
    (y, xhat, rstd)
}

/// LayerNorm's gradients from `dy`: of `x` (dx = r (dx̂ - mean(dx̂) - x̂
/// mean(dx̂ x̂)) with dx̂ = dy γ), of γ (Σ dy x̂) and of β (Σ dy).
pub fn layer_norm_backward(dy: &[f32], xhat: &[f32], rstd: &[f32], gamma: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let (mut dx, mut dgamma, mut dbeta) = (vec![0.0f32; dy.len()], vec![0.0f32; d], vec![0.0f32; d]);
    for (((dy, xh), dx), r) in dy.chunks_exact(d).zip(xhat.chunks_exact(d)).zip(dx.chunks_exact_mut(d)).zip(rstd) {
        for ((g, h), (dg, db)) in dy.iter().zip(xh).zip(dgamma.iter_mut().zip(dbeta.iter_mut())) {
            *dg += g * h;
            *db += g;
        }
        // dx̂ = dy γ, and its mean and its mean times x̂ over the row.
        let mean_d = lane_sum(dy, gamma, |g, gm| g * gm) / d as f32;
        let mean_dx = xh.iter().zip(gamma).zip(dy).map(|((h, gm), g)| h * gm * g).sum::<f32>() / d as f32;
        for (((o, g), h), gm) in dx.iter_mut().zip(dy).zip(xh).zip(gamma) {
            *o = r * (g * gm - mean_d - h * mean_dx);
        }
    }
    (dx, dgamma, dbeta)
}

/// The shape of an attention: `n` examples of `t` tokens, `heads` heads of
/// `dh` features each (E = heads · dh), causal or not.
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    pub n: usize,
    pub t: usize,
    pub heads: usize,
    pub dh: usize,
    pub causal: bool,
}

impl Attention {
    fn e(&self) -> usize {
        self.heads * self.dh
    }

    /// Head `h` of block `k` (0 = Q, 1 = K, 2 = V) of example `i` of `qkv`
    /// `[N, T, 3E]`: a `[T, dh]` view with rows 3E apart.
    fn part<'a>(&self, qkv: &'a [f32], i: usize, k: usize, h: usize) -> ArrayView2<'a, f32> {
        let e3 = 3 * self.e();
        let start = i * self.t * e3 + k * self.e() + h * self.dh;
        ArrayView2::from_shape((self.t, self.dh).strides((e3, 1)), &qkv[start..]).expect("attention: qkv is [N, T, 3E]")
    }

    fn part_mut<'a>(&self, buf: &'a mut [f32], row: usize, i: usize, offset: usize) -> ArrayViewMut2<'a, f32> {
        let start = i * self.t * row + offset;
        ArrayViewMut2::from_shape((self.t, self.dh).strides((row, 1)), &mut buf[start..]).expect("attention buffer")
    }
}

/// softmax(Q Kᵀ / sqrt(dh)) V per head (a causal one masks keys after the
/// query), from `qkv` `[N, T, 3E]` (Q, K, V side by side, heads within
/// each). Returns the output `[N, T, E]` (heads side by side) and the
/// attention weights `[N, heads, T, T]` for the backward pass.
pub fn attention(qkv: &[f32], a: Attention) -> (Vec<f32>, Vec<f32>) {
    let (t, e) = (a.t, a.e());
    let scale = 1.0 / (a.dh as f32).sqrt();
    let mut out = vec![0.0f32; a.n * t * e];
    let mut probs = vec![0.0f32; a.n * a.heads * t * t];
    for i in 0..a.n {
        for h in 0..a.heads {
            let p = &mut probs[(i * a.heads + h) * t * t..][..t * t];
            let mut s = ArrayViewMut2::from_shape((t, t), &mut *p).expect("[T, T]");
            gemm_into(a.part(qkv, i, 0, h), a.part(qkv, i, 1, h).t(), 0.0, &mut s);
            for (q, row) in p.chunks_exact_mut(t).enumerate() {
                for (k, v) in row.iter_mut().enumerate() {
                    *v = if a.causal && k > q { f32::NEG_INFINITY } else { *v * scale };
                }
            }
            softmax_rows(p, t);
            let p = ArrayView2::from_shape((t, t), &*p).expect("[T, T]");
            gemm_into(p, a.part(qkv, i, 2, h), 0.0, &mut a.part_mut(&mut out, e, i, h * a.dh));
        }
    }
    (out, probs)
}

/// The gradient of `attention` with respect to `qkv` `[N, T, 3E]`, from that
/// of its output `dy` `[N, T, E]` and its weights `probs`.
pub fn attention_backward(qkv: &[f32], probs: &[f32], dy: &[f32], a: Attention) -> Vec<f32> {
    let (t, e) = (a.t, a.e());
    let scale = 1.0 / (a.dh as f32).sqrt();
    let mut dqkv = vec![0.0f32; qkv.len()];
    let mut ds = vec![0.0f32; t * t];
    for i in 0..a.n {
        for h in 0..a.heads {
            let p = &probs[(i * a.heads + h) * t * t..][..t * t];
            let pv = ArrayView2::from_shape((t, t), p).expect("[T, T]");
            let dy_h = ArrayView2::from_shape((t, a.dh).strides((e, 1)), &dy[i * t * e + h * a.dh..]).expect("dy");
            // dV = Pᵀ dY; dP = dY Vᵀ.
            gemm_into(pv.t(), dy_h, 0.0, &mut a.part_mut(&mut dqkv, 3 * e, i, 2 * e + h * a.dh));
            gemm_into(dy_h, a.part(qkv, i, 2, h).t(), 0.0, &mut ArrayViewMut2::from_shape((t, t), &mut ds).unwrap());
            // dS = P (dP - Σ dP P) / sqrt(dh), row by row.
            for (d_row, p_row) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
                let dot: f32 = d_row.iter().zip(p_row).map(|(d, p)| d * p).sum();
                for (d, p) in d_row.iter_mut().zip(p_row) {
                    *d = p * (*d - dot) * scale;
                }
            }
            let dsv = ArrayView2::from_shape((t, t), &ds[..]).expect("[T, T]");
            // dQ = dS K; dK = dSᵀ Q.
            gemm_into(dsv, a.part(qkv, i, 1, h), 0.0, &mut a.part_mut(&mut dqkv, 3 * e, i, h * a.dh));
            gemm_into(dsv.t(), a.part(qkv, i, 0, h), 0.0, &mut a.part_mut(&mut dqkv, 3 * e, i, e + h * a.dh));
        }
    }
    dqkv
}
