//! The primitives: each computes its value with a backend kernel and records the
//! rule that maps the output gradient to its inputs' gradients. Values and
//! gradients are `Storage`, so the same rules run on the CPU and the GPU.
//!
//! Shape errors here are programming errors (the spec's shape inference rejects
//! invalid models before any op runs), so they panic with a message.

use ndarray::{ArrayD, IxDyn};
use rand::Rng;

use crate::backend::{self as be, Device, Gemm, MapOp, Storage, Window};
use crate::tensor::Tensor;

pub use crate::backend::cpu::{fast_tanh, sigmoid};

/// Sums `g` down to `shape`, undoing numpy-style broadcasting.
pub fn reduce_to_shape(g: &Storage, shape: &[usize]) -> Storage {
    if g.shape() == shape {
        return g.clone();
    }
    be::sum_to(g, shape)
}

pub use crate::backend::Recurrence;

/// One step of a `recurrence`, kept for its backward pass: the gate
/// pre-activations (the GRU's input half; the RNN's output), the GRU's hidden
/// half, the states it started from and its output (the LSTM's `[h | c']`).
struct Step {
    gates: Storage,
    gh: Option<Storage>,
    h_prev: Storage,
    c_prev: Option<Storage>,
    out: Storage,
}

impl Tensor {
    // ----- elementwise binary, with broadcasting --------------------------------

    fn binary_op(&self, other: &Tensor, op: MapOp) -> Storage {
        be::binary(op, &self.storage(), &other.storage())
    }

    pub fn add(&self, other: &Tensor) -> Tensor {
        let value = self.binary_op(other, MapOp::Add);
        let (sa, sb) = (self.shape(), other.shape());
        Tensor::from_op(value, &[self, other], move |g, need| {
            vec![need[0].then(|| reduce_to_shape(g, &sa)), need[1].then(|| reduce_to_shape(g, &sb))]
        })
    }

    pub fn sub(&self, other: &Tensor) -> Tensor {
        let value = self.binary_op(other, MapOp::Sub);
        let (sa, sb) = (self.shape(), other.shape());
        Tensor::from_op(value, &[self, other], move |g, need| {
            vec![
                need[0].then(|| reduce_to_shape(g, &sa)),
                need[1].then(|| reduce_to_shape(&be::unary(MapOp::Scale, g, -1.0), &sb)),
            ]
        })
    }

    pub fn mul(&self, other: &Tensor) -> Tensor {
        let value = self.binary_op(other, MapOp::Mul);
        let (a, b) = (self.clone(), other.clone());
        Tensor::from_op(value, &[self, other], move |g, need| {
            vec![
                need[0].then(|| reduce_to_shape(&be::binary(MapOp::Mul, g, &b.storage()), &a.shape())),
                need[1].then(|| reduce_to_shape(&be::binary(MapOp::Mul, g, &a.storage()), &b.shape())),
            ]
        })
    }

    pub fn div(&self, other: &Tensor) -> Tensor {
        let value = self.binary_op(other, MapOp::Div);
        let (a, b) = (self.clone(), other.clone());
        Tensor::from_op(value, &[self, other], move |g, need| {
            let bv = b.storage();
            vec![
                need[0].then(|| reduce_to_shape(&be::binary(MapOp::Div, g, &bv), &a.shape())),
                // d(a/b)/db = -a / b^2
                need[1].then(|| {
                    let num = be::binary(MapOp::Mul, g, &a.storage());
                    let den = be::binary(MapOp::Mul, &bv, &bv);
                    reduce_to_shape(&be::unary(MapOp::Scale, &be::binary(MapOp::Div, &num, &den), -1.0), &b.shape())
                }),
            ]
        })
    }

    pub fn mul_scalar(&self, s: f32) -> Tensor {
        let value = be::unary(MapOp::Scale, &self.storage(), s);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::unary(MapOp::Scale, g, s))])
    }

    pub fn add_scalar(&self, s: f32) -> Tensor {
        let value = be::unary(MapOp::Offset, &self.storage(), s);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g.clone())])
    }

    pub fn neg(&self) -> Tensor {
        self.mul_scalar(-1.0)
    }

    // ----- elementwise unary ----------------------------------------------------

    /// A unary op whose gradient is `grad(g, saved)`, where `saved` is the input
    /// (`save_output` false) or the output.
    fn unary_op(&self, op: MapOp, grad: MapOp, save_output: bool) -> Tensor {
        let value = be::unary(op, &self.storage(), 0.0);
        let (x, out) = (self.clone(), save_output.then(|| value.clone()));
        Tensor::from_op(value, &[self], move |g, _| {
            let saved = match &out {
                Some(y) => be::binary(grad, g, y),
                None => be::binary(grad, g, &x.storage()),
            };
            vec![Some(saved)]
        })
    }

    pub fn exp(&self) -> Tensor {
        self.unary_op(MapOp::Exp, MapOp::Mul, true)
    }

    pub fn log(&self) -> Tensor {
        self.unary_op(MapOp::Log, MapOp::Div, false)
    }

    pub fn sqrt(&self) -> Tensor {
        // d sqrt(x) = 1 / (2 sqrt(x))
        self.unary_op(MapOp::Sqrt, MapOp::SqrtGrad, true)
    }

    pub fn relu(&self) -> Tensor {
        self.unary_op(MapOp::Relu, MapOp::ReluGrad, false)
    }

    pub fn tanh(&self) -> Tensor {
        // d tanh = 1 - tanh^2
        self.unary_op(MapOp::Tanh, MapOp::TanhGrad, true)
    }

    pub fn sigmoid(&self) -> Tensor {
        // d sigmoid = s (1 - s)
        self.unary_op(MapOp::Sigmoid, MapOp::SigmoidGrad, true)
    }

    /// GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    pub fn gelu(&self) -> Tensor {
        self.unary_op(MapOp::Gelu, MapOp::GeluGrad, false)
    }

    // ----- reductions -----------------------------------------------------------

    /// Sum over `axes` (all axes if empty), keeping them as size 1 if `keepdim`.
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let shape = self.shape();
        let axes = normalize_axes(axes, shape.len());
        let kept_shape: Vec<usize> =
            shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
        let out_shape: Vec<usize> = if keepdim {
            kept_shape.clone()
        } else {
            shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
        };
        let value = be::reshape_owned(be::sum_to(&self.storage(), &kept_shape), &out_shape);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::broadcast_to(&be::reshape(g, &kept_shape), &shape))])
    }

    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let shape = self.shape();
        let count: usize = normalize_axes(axes, shape.len()).iter().map(|&a| shape[a]).product();
        self.sum(axes, keepdim).mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Maximum over one axis; the gradient goes to the first maximal element.
    pub fn max(&self, axis: usize, keepdim: bool) -> Tensor {
        let shape = self.shape();
        let (reduced, arg) = be::max_axis(&self.storage(), axis);
        let mut kept_shape = shape.clone();
        kept_shape[axis] = 1;
        let value = if keepdim { be::reshape(&reduced, &kept_shape) } else { reduced };
        let mut reduced_shape = shape.clone();
        reduced_shape.remove(axis);
        Tensor::from_op(value, &[self], move |g, _| {
            vec![Some(be::max_axis_backward(&be::reshape(g, &reduced_shape), &arg, &shape, axis))]
        })
    }

    // ----- shape ----------------------------------------------------------------

    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let old = self.shape();
        assert_eq!(
            old.iter().product::<usize>(),
            shape.iter().product::<usize>(),
            "reshape: cannot view {old:?} as {shape:?}"
        );
        let value = be::reshape(&self.storage(), shape);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::reshape(g, &old))])
    }

    /// Reorders axes (a strided view where the backend allows).
    pub fn permute(&self, axes: &[usize]) -> Tensor {
        let value = be::permute(&self.storage(), axes);
        let mut inverse = vec![0; axes.len()];
        for (i, &a) in axes.iter().enumerate() {
            inverse[a] = i;
        }
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::permute(g, &inverse))])
    }

    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Elements `start..end` along `axis`.
    pub fn slice(&self, axis: usize, start: usize, end: usize) -> Tensor {
        let shape = self.shape();
        let value = be::slice(&self.storage(), axis, start, end);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::unslice(g, &shape, axis, start))])
    }

    pub fn concat(tensors: &[Tensor], axis: usize) -> Tensor {
        let value = {
            let values: Vec<_> = tensors.iter().map(|t| t.storage()).collect();
            let refs: Vec<&Storage> = values.iter().map(|v| &**v).collect();
            be::concat(&refs, axis)
        };
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[axis]).collect();
        let refs: Vec<&Tensor> = tensors.iter().collect();
        Tensor::from_op(value, &refs, move |g, need| {
            let mut start = 0;
            sizes
                .iter()
                .zip(need)
                .map(|(&n, &need)| {
                    let part = need.then(|| be::slice(g, axis, start, start + n));
                    start += n;
                    part
                })
                .collect()
        })
    }

    // ----- linear algebra -------------------------------------------------------

    /// Matrix product over the last two axes. `self` [.., m, k] with `other` [k, n]
    /// (one GEMM over all rows), or both [B.., m, k] / [B.., k, n] with equal
    /// batch axes (batched).
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let (a, b) = (self.clone(), other.clone());
        let (sa, sb) = (self.shape(), other.shape());
        assert!(sa.len() >= 2 && sb.len() >= 2, "matmul needs at least 2-d inputs, got {sa:?} @ {sb:?}");
        let k = sa[sa.len() - 1];
        assert_eq!(k, sb[sb.len() - 2], "matmul: inner dimensions differ: {sa:?} @ {sb:?}");
        let n = sb[sb.len() - 1];
        let mut out_shape = sa.clone();
        *out_shape.last_mut().unwrap() = n;
        if sb.len() == 2 {
            let rows: usize = sa[..sa.len() - 1].iter().product();
            let value =
                be::reshape_owned(be::gemm(&self.storage(), &other.storage(), Gemm::matrix(rows, k, n)), &out_shape);
            Tensor::from_op(value, &[self, other], move |g, need| {
                // da = g b^T, db = a^T g
                let da = need[0].then(|| {
                    be::reshape_owned(be::gemm(g, &b.storage(), Gemm::matrix(rows, n, k).b_transposed()), &sa)
                });
                let db = need[1].then(|| be::gemm(&a.storage(), g, Gemm::matrix(k, rows, n).a_transposed()));
                vec![da, db]
            })
        } else {
            assert_eq!(sa[..sa.len() - 2], sb[..sb.len() - 2], "batched matmul: batch axes differ: {sa:?} @ {sb:?}");
            let batch: usize = sa[..sa.len() - 2].iter().product();
            let m = sa[sa.len() - 2];
            let value = be::reshape_owned(
                be::gemm(&self.storage(), &other.storage(), Gemm::batched(batch, m, k, n)),
                &out_shape,
            );
            Tensor::from_op(value, &[self, other], move |g, need| {
                let da = need[0].then(|| {
                    be::reshape_owned(be::gemm(g, &b.storage(), Gemm::batched(batch, m, n, k).b_transposed()), &sa)
                });
                let db = need[1].then(|| {
                    be::reshape_owned(be::gemm(&a.storage(), g, Gemm::batched(batch, k, m, n).a_transposed()), &sb)
                });
                vec![da, db]
            })
        }
    }

    /// A dense layer's `self W^T + b` over the last axis: `self` `[.., in]`,
    /// `w` `[out, in]` (PyTorch's `Linear.weight`), `b` `[out]` -> `[.., out]`.
    /// On the CPU one op whose GEMM adds onto the bias rows (no separate
    /// broadcast add); on the GPU a GEMM and an add.
    pub fn linear(&self, w: &Tensor, b: Option<&Tensor>) -> Tensor {
        let mut inputs = vec![self, w];
        inputs.extend(b);
        if gpu_among(&inputs).is_some() {
            let y = self.matmul(&w.transpose(0, 1));
            return match b {
                Some(b) => y.add(b),
                None => y,
            };
        }
        let xs = self.shape();
        let (features, out) = (w.shape()[1], w.shape()[0]);
        assert_eq!(xs.last(), Some(&features), "linear: input {xs:?} with weight {:?}", w.shape());
        let rows = self.len() / features.max(1);
        let mut out_shape = xs.clone();
        *out_shape.last_mut().unwrap() = out;
        let value = {
            let (x, wv, bv) = (self.value(), w.value(), b.map(|b| b.value()));
            let bias = bv.as_deref().map(be::contiguous);
            let w2 = wv.view().into_dimensionality::<ndarray::Ix2>().expect("linear: weight is [out, in]");
            let y = be::cpu::fused::linear(&be::contiguous(&x), rows, w2, bias.as_deref());
            Storage::Cpu(ArrayD::from_shape_vec(IxDyn(&out_shape), y).expect("[.., out]"))
        };
        let (x, w_) = (self.clone(), w.clone());
        Tensor::from_op(value, &inputs, move |g, need| {
            // dx = g W, dW = gᵀ x, db = Σ g.
            let dx =
                need[0].then(|| be::reshape_owned(be::gemm(g, &w_.storage(), Gemm::matrix(rows, out, features)), &xs));
            let dw = need[1].then(|| be::gemm(g, &x.storage(), Gemm::matrix(out, rows, features).a_transposed()));
            let mut grads = vec![dx, dw];
            if need.len() > 2 {
                grads.push(need[2].then(|| be::sum_to(&be::reshape(g, &[rows, out]), &[out])));
            }
            grads
        })
    }

    /// LayerNorm over the last axis (PyTorch's, biased variance): `(self -
    /// μ) / sqrt(σ² + eps) · weight + bias`, with `weight` and `bias` of the
    /// last axis's size. On the CPU one op, forward and backward
    /// (`backend::cpu::fused`); on the GPU composed from primitives.
    pub fn layer_norm(&self, weight: &Tensor, bias: &Tensor, eps: f32) -> Tensor {
        let inputs = [self, weight, bias];
        let last = self.ndim() - 1;
        let d = self.shape()[last];
        assert!(weight.shape() == [d] && bias.shape() == [d], "layer_norm: weight and bias are [{d}]");
        if gpu_among(&inputs).is_some() {
            let centred = self.sub(&self.mean(&[last], true));
            let var = centred.mul(&centred).mean(&[last], true);
            return centred.div(&var.add_scalar(eps).sqrt()).mul(weight).add(bias);
        }
        let shape = self.shape();
        let gamma = be::contiguous(&weight.value()).into_owned();
        let (y, xhat, rstd) =
            be::cpu::fused::layer_norm(&be::contiguous(&self.value()), d, &gamma, &be::contiguous(&bias.value()), eps);
        let value = Storage::Cpu(ArrayD::from_shape_vec(IxDyn(&shape), y).expect("same shape"));
        Tensor::from_op(value, &inputs, move |g, _| {
            let Storage::Cpu(g) = g else { unreachable!("a CPU LayerNorm's gradient on the GPU") };
            let (dx, dgamma, dbeta) = be::cpu::fused::layer_norm_backward(&be::contiguous(g), &xhat, &rstd, &gamma);
            let array =
                |shape: &[usize], v: Vec<f32>| Some(Storage::Cpu(ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()));
            vec![array(&shape, dx), array(&[d], dgamma), array(&[d], dbeta)]
        })
    }

    /// Multi-head scaled dot-product attention, softmax(Q Kᵀ / sqrt(dh)) V
    /// per head, from `self` `[N, T, 3E]` (the in-projection's output: Q, K
    /// and V side by side, `heads` heads of E / heads features within each,
    /// PyTorch's `MultiheadAttention` layout) -> `[N, T, E]`, heads side by
    /// side. `causal` masks each query's later keys. On the CPU one op that
    /// reads the heads where they lie (`backend::cpu::fused::attention`); on
    /// the GPU composed from primitives.
    pub fn attention(&self, heads: usize, causal: bool) -> Tensor {
        let s = self.shape();
        assert!(heads > 0 && s.len() == 3 && s[2] % (3 * heads) == 0, "attention: qkv is [N, T, 3E], got {s:?}");
        let (n, t, e) = (s[0], s[1], s[2] / 3);
        let dh = e / heads;
        if self.device().is_gpu() {
            return self.attention_composed(heads, causal).0;
        }
        let a = be::cpu::fused::Attention { n, t, heads, dh, causal };
        let (out, probs) = be::cpu::fused::attention(&be::contiguous(&self.value()), a);
        let value = Storage::Cpu(ArrayD::from_shape_vec(IxDyn(&[n, t, e]), out).expect("[N, T, E]"));
        let x = self.clone();
        Tensor::from_op(value, &[self], move |g, _| {
            let Storage::Cpu(g) = g else { unreachable!("a CPU attention's gradient on the GPU") };
            let d = be::cpu::fused::attention_backward(&be::contiguous(&x.value()), &probs, &be::contiguous(g), a);
            vec![Some(Storage::Cpu(ArrayD::from_shape_vec(IxDyn(&[n, t, 3 * e]), d).expect("[N, T, 3E]")))]
        })
    }

    /// `attention` composed from primitives (the GPU's way), with its
    /// weights `[N, heads, T, T]` (for the views' attention maps).
    pub fn attention_composed(&self, heads: usize, causal: bool) -> (Tensor, Tensor) {
        let s = self.shape();
        let (n, t, e) = (s[0], s[1], s[2] / 3);
        let dh = e / heads;
        let head = |k: usize| self.slice(2, k * e, (k + 1) * e).reshape(&[n, t, heads, dh]).permute(&[0, 2, 1, 3]);
        let (q, k, v) = (head(0).mul_scalar(1.0 / (dh as f32).sqrt()), head(1), head(2));
        let mut scores = q.matmul(&k.transpose(2, 3)); // [N, H, T, T]
        if causal {
            let mask = ArrayD::from_shape_fn(IxDyn(&[t, t]), |i| if i[1] > i[0] { -1e9 } else { 0.0 });
            scores = scores.add(&Tensor::new(mask));
        }
        let weights = scores.softmax();
        (weights.matmul(&v).permute(&[0, 2, 1, 3]).reshape(&[n, t, e]), weights)
    }

    // ----- convolution and pooling (NCHW) --------------------------------------

    /// 2-d convolution (cross-correlation, as PyTorch): `self` [N,C,H,W],
    /// `weight` [F,C,KH,KW], `bias` [F] -> [N,F,OH,OW]. `pad` = top, bottom, left, right.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: [usize; 2], pad: [usize; 4]) -> Tensor {
        let xs = self.shape();
        let ws = weight.shape();
        assert!(xs.len() == 4 && ws.len() == 4 && xs[1] == ws[1], "conv2d: input {xs:?} and weight {ws:?} do not fit");
        let g =
            Window { n: xs[0], c: xs[1], h: xs[2], w: xs[3], kh: ws[2], kw: ws[3], sh: stride[0], sw: stride[1], pad };
        // The weight's gradient reads the unfolded input: keep it when that
        // gradient will be asked for.
        let keep = Tensor::records_backward(&[weight]);
        let (value, patches) = {
            let b = bias.map(|b| b.storage());
            be::conv2d(&self.storage(), &weight.storage(), b.as_deref(), &g, keep)
        };
        let (x, w) = (self.clone(), weight.clone());
        let mut inputs = vec![self, weight];
        if let Some(b) = bias {
            inputs.push(b);
        }
        Tensor::from_op(value, &inputs, move |dy, need| {
            let (dx, dw, db) = be::conv2d_backward(&x.storage(), &w.storage(), dy, &g, need[0], patches.as_ref());
            let mut grads = vec![dx, need[1].then_some(dw)];
            if need.len() > 2 {
                grads.push(need[2].then_some(db));
            }
            grads
        })
    }

    /// Max pooling over [N,C,H,W] with no padding (floor mode, as Keras "valid").
    pub fn max_pool2d(&self, size: [usize; 2], stride: [usize; 2]) -> Tensor {
        let g = pool_window(&self.shape(), size, stride);
        let (value, arg) = be::max_pool(&self.storage(), &g);
        Tensor::from_op(value, &[self], move |dy, _| vec![Some(be::max_pool_backward(dy, &arg, &g))])
    }

    pub fn avg_pool2d(&self, size: [usize; 2], stride: [usize; 2]) -> Tensor {
        let g = pool_window(&self.shape(), size, stride);
        let value = be::avg_pool(&self.storage(), &g);
        Tensor::from_op(value, &[self], move |dy, _| vec![Some(be::avg_pool_backward(dy, &g))])
    }

    /// Rows of `self` [rows, d] picked by `ids` -> [ids.len(), d] (an embedding
    /// lookup); the backward pass adds each output row's gradient to its row.
    pub fn gather_rows(&self, ids: &[usize]) -> Tensor {
        let shape = self.shape();
        assert!(shape.len() == 2, "gather_rows needs a 2-d table");
        let rows = shape[0];
        assert!(ids.iter().all(|&i| i < rows), "gather_rows: an id is not below {rows}");
        let (value, idx) = be::gather_rows(&self.storage(), ids);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::scatter_rows(g, &idx, rows))])
    }

    // ----- regularisation -------------------------------------------------------

    /// Inverted dropout: zeroes each element with probability `rate` and scales the
    /// rest by 1/(1-rate), so evaluation needs no rescaling. The mask is drawn on
    /// the CPU (the same on every backend) and moves to the tensor's device.
    pub fn dropout(&self, rate: f32, rng: &mut impl Rng) -> Tensor {
        if rate <= 0.0 {
            return self.clone();
        }
        let keep = 1.0 - rate;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        let shape = self.shape();
        let n: usize = shape.iter().product();
        let mask: Vec<f32> = (0..n).map(|_| if rng.random::<f32>() < keep { scale } else { 0.0 }).collect();
        let mask = Storage::Cpu(ArrayD::from_shape_vec(IxDyn(&shape), mask).unwrap()).upload_to(&self.device());
        let value = be::binary(MapOp::Mul, &self.storage(), &mask);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::binary(MapOp::Mul, g, &mask))])
    }

    // ----- fused recurrent cells -------------------------------------------------

    /// One LSTM step from the gate pre-activations `self` [N, 4H] (PyTorch's
    /// gate order i, f, g, o) and the cell state `c` [N, H]: `[h | c']` as
    /// [N, 2H], with c' = σ(f) c + σ(i) tanh(g) and h = σ(o) tanh(c'). One
    /// kernel forward and one backward instead of a dozen small ops.
    pub fn lstm_cell(&self, c: &Tensor) -> Tensor {
        let value = be::lstm_cell(&self.storage(), &c.storage());
        let (gates, c_prev, out) = (self.clone(), c.clone(), value.clone());
        Tensor::from_op(value, &[self, c], move |g, need| {
            let (dgates, dc) = be::lstm_cell_backward(&gates.storage(), &c_prev.storage(), &out, g);
            vec![need[0].then_some(dgates), need[1].then_some(dc)]
        })
    }

    /// One GRU step (PyTorch's): from the input's gate pre-activations `self`
    /// [N, 3H] (r, z, n, biases included), the hidden state's `gh` [N, 3H] and
    /// the hidden state `h` [N, H], h' = n + z (h - n) with r = σ(·_r),
    /// z = σ(·_z), n = tanh(x_n + r gh_n). Fused like `lstm_cell`.
    pub fn gru_cell(&self, gh: &Tensor, h: &Tensor) -> Tensor {
        let value = be::gru_cell(&self.storage(), &gh.storage(), &h.storage());
        let (gi, gh_, h_) = (self.clone(), gh.clone(), h.clone());
        Tensor::from_op(value, &[self, gh, h], move |g, need| {
            let (dgi, dgh, dh) = be::gru_cell_backward(&gi.storage(), &gh_.storage(), &h_.storage(), g);
            vec![need[0].then_some(dgi), need[1].then_some(dgh), need[2].then_some(dh)]
        })
    }

    /// A recurrent layer's recurrence over every time step, as one op with
    /// backpropagation through time inside (the layout of PyTorch's CPU and
    /// cuDNN recurrences). `self` holds the input's gate pre-activations of
    /// every step, time-major `[T, N, G·H]` (x W_ihᵀ + b_ih, and + b_hh except
    /// for the GRU: one GEMM over all steps, outside; time-major so that each
    /// step's rows are one contiguous block), `w_hh` is `[G·H, H]` (PyTorch's
    /// `weight_hh_l0`), `b_hh` `[G·H]` the GRU's (r multiplies it). Returns
    /// every hidden state, time-major `[T, N, H]`, from h₀ = c₀ = 0.
    ///
    /// Per step: one GEMM (h W_hhᵀ) and the fused cell (`lstm_cell`,
    /// `gru_cell`, or tanh); backward per step: the cell's backward and one
    /// GEMM for dh; the weight gradient is one GEMM over all N·T rows after.
    ///
    /// # Panics
    /// When the shapes disagree (the layer builds them).
    pub fn recurrence(&self, cell: Recurrence, w_hh: &Tensor, b_hh: Option<&Tensor>) -> Tensor {
        let s = self.shape();
        assert_eq!(s.len(), 3, "recurrence: gate pre-activations [T, N, G*H], got {s:?}");
        let (steps, n, gh) = (s[0], s[1], s[2]);
        let h_dim = w_hh.shape()[1];
        assert!(steps > 0, "recurrence: at least one step");
        assert_eq!(w_hh.shape(), vec![cell.gates() * h_dim, h_dim], "recurrence: weight_hh is [G*H, H] for {cell:?}");
        assert_eq!(gh, cell.gates() * h_dim, "recurrence: xp is [T, N, G*H] for {cell:?}");
        assert_eq!(cell == Recurrence::Gru, b_hh.is_some(), "recurrence: the GRU (only) takes b_hh");
        let mut inputs = vec![self, w_hh];
        inputs.extend(b_hh);
        let backward = Tensor::records_backward(&inputs);
        let Some(device) = gpu_among(&inputs) else {
            return self.recurrence_cpu(cell, w_hh, b_hh, &inputs, backward);
        };
        // Everything on the GPU (the cells take one device).
        let (xp, w) = (self.storage().upload_to(&device), w_hh.storage().upload_to(&device));
        let b = b_hh.map(|b| b.storage().upload_to(&device));
        let zeros = Storage::full(&[n, h_dim], 0.0, &device);
        let mut h = zeros.clone();
        let mut c = zeros.clone();
        // What each step's backward needs: its gate pre-activations (the GRU's
        // two halves), the states it started from, and its output.
        // Only a pass that will go backward keeps them (inference would hold
        // every step's states to the end for nothing).
        let mut saved: Vec<Step> = Vec::with_capacity(if backward { steps } else { 0 });
        let mut hs: Vec<Storage> = Vec::with_capacity(steps);
        for t in 0..steps {
            let x_t = be::reshape_owned(be::slice(&xp, 0, t, t + 1), &[n, gh]);
            let hw = be::gemm(&h, &w, Gemm::matrix(n, h_dim, gh).b_transposed());
            let step = match cell {
                Recurrence::Rnn => {
                    let out = be::unary(MapOp::Tanh, &be::binary(MapOp::Add, &x_t, &hw), 0.0);
                    Step { gates: out.clone(), gh: None, h_prev: h, c_prev: None, out }
                }
                Recurrence::Lstm => {
                    let gates = be::binary(MapOp::Add, &x_t, &hw);
                    let out = be::lstm_cell(&gates, &c);
                    let c_prev = std::mem::replace(&mut c, be::slice(&out, 1, h_dim, 2 * h_dim));
                    Step { gates, gh: None, h_prev: h, c_prev: Some(c_prev), out }
                }
                Recurrence::Gru => {
                    let gh_t = be::binary(MapOp::Add, &hw, b.as_ref().expect("the GRU's b_hh"));
                    let out = be::gru_cell(&x_t, &gh_t, &h);
                    Step { gates: x_t, gh: Some(gh_t), h_prev: h, c_prev: None, out }
                }
            };
            h = match cell {
                Recurrence::Lstm => be::slice(&step.out, 1, 0, h_dim),
                _ => step.out.clone(),
            };
            hs.push(be::reshape(&h, &[1, n, h_dim]));
            if backward {
                saved.push(step);
            }
        }
        let value = be::concat(&hs.iter().collect::<Vec<_>>(), 0);
        // Each step's h_{t-1} for the weight gradient: 0, then h_0 .. h_{T-2}.
        let h_prev_all = {
            let first = be::reshape(&zeros, &[1, n, h_dim]);
            let earlier = be::slice(&value, 0, 0, steps - 1);
            if steps > 1 {
                be::concat(&[&first, &earlier], 0)
            } else {
                first
            }
        };
        Tensor::from_op(value, &inputs, move |g, need| {
            let mut dh_next = zeros.clone();
            let mut dc_next = zeros.clone();
            // Per step, the gradient of its input pre-activations and (the
            // GRU's, which differs) of h W_hhᵀ + b_hh.
            let mut d_in: Vec<Storage> = Vec::with_capacity(steps);
            let mut d_hw: Vec<Storage> = Vec::with_capacity(if cell == Recurrence::Gru { steps } else { 0 });
            for (t, st) in saved.iter().enumerate().rev() {
                let g_t = be::reshape_owned(be::slice(g, 0, t, t + 1), &[n, h_dim]);
                let dh = be::binary(MapOp::Add, &g_t, &dh_next);
                let (dx, dhw, dh_direct) = match cell {
                    Recurrence::Rnn => {
                        let d = be::binary(MapOp::TanhGrad, &dh, &st.out);
                        (d, None, None)
                    }
                    Recurrence::Lstm => {
                        let d_out = be::concat(&[&dh, &dc_next], 1);
                        let c_prev = st.c_prev.as_ref().expect("an LSTM step keeps c");
                        let (dgates, dc) = be::lstm_cell_backward(&st.gates, c_prev, &st.out, &d_out);
                        dc_next = dc;
                        (dgates, None, None)
                    }
                    Recurrence::Gru => {
                        let gh_t = st.gh.as_ref().expect("a GRU step keeps gh");
                        let (dgi, dgh, dh_prev) = be::gru_cell_backward(&st.gates, gh_t, &st.h_prev, &dh);
                        (dgi, Some(dgh), Some(dh_prev))
                    }
                };
                // dh_{t-1} = d(h W_hhᵀ) W_hh (+ the GRU's direct path).
                let through_w = be::gemm(dhw.as_ref().unwrap_or(&dx), &w, Gemm::matrix(n, gh, h_dim));
                dh_next = match dh_direct {
                    Some(d) => be::binary(MapOp::Add, &through_w, &d),
                    None => through_w,
                };
                d_in.push(be::reshape(&dx, &[1, n, gh]));
                if let Some(d) = dhw {
                    d_hw.push(be::reshape(&d, &[1, n, gh]));
                }
            }
            d_in.reverse();
            d_hw.reverse();
            let stack = |parts: &[Storage]| be::concat(&parts.iter().collect::<Vec<_>>(), 0);
            let dxp = stack(&d_in);
            let all_dhw = if cell == Recurrence::Gru { stack(&d_hw) } else { dxp.clone() };
            let all_dhw = be::reshape(&all_dhw, &[steps * n, gh]);
            // dW_hh = Σ_t d(h W_hhᵀ)_tᵀ h_{t-1}: one GEMM over all T·N rows.
            let dw = need[1].then(|| {
                let h_prev = be::reshape(&h_prev_all, &[steps * n, h_dim]);
                be::gemm(&all_dhw, &h_prev, Gemm::matrix(gh, n * steps, h_dim).a_transposed())
            });
            let dxp = need[0].then_some(dxp);
            let mut grads = vec![dxp, dw];
            if need.len() > 2 {
                grads.push(need[2].then(|| be::sum_to(&all_dhw, &[gh])));
            }
            grads
        })
    }

    /// A whole recurrent layer over `self` `[N, T, I]`, from h₀ = c₀ = 0,
    /// with PyTorch's parameters (`weight_ih_l0` `[G·H, I]`, `weight_hh_l0`
    /// `[G·H, H]`, `bias_ih_l0` and `bias_hh_l0` `[G·H]`): every hidden
    /// state, time-major `[T, N, H]`.
    ///
    /// On the CPU one op whose kernel also projects the input (one GEMM over
    /// all steps in training, one per step in inference; see
    /// `backend::cpu::recurrent`); on the GPU the input projection is a
    /// GEMM and `recurrence` the rest.
    pub fn recurrent(&self, cell: Recurrence, w_ih: &Tensor, w_hh: &Tensor, b_ih: &Tensor, b_hh: &Tensor) -> Tensor {
        let s = self.shape();
        assert_eq!(s.len(), 3, "recurrent: input [N, T, I], got {s:?}");
        let (n, steps, features) = (s[0], s[1], s[2]);
        let gh = w_hh.shape()[0];
        assert!(steps > 0, "recurrent: a sequence of at least one step");
        assert_eq!(gh, cell.gates() * w_hh.shape()[1], "recurrent: weight_hh is [G*H, H] for {cell:?}");
        assert_eq!(w_ih.shape(), vec![gh, features], "recurrent: weight_ih is [G*H, I]");
        assert!(b_ih.shape() == [gh] && b_hh.shape() == [gh], "recurrent: the biases are [G*H]");
        // A batch on the CPU meeting a model on the GPU goes to the GPU, as
        // in every op.
        let inputs = [self, w_ih, w_hh, b_ih, b_hh];
        if gpu_among(&inputs).is_some() {
            // Time-major [T·N, I]: each step's rows are one block from here on.
            let x_tm = self.permute(&[1, 0, 2]).reshape(&[steps * n, features]);
            let xp = x_tm.matmul(&w_ih.transpose(0, 1));
            // PyTorch's GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), so
            // its b_hh stays with the hidden state's half.
            return if cell == Recurrence::Gru {
                xp.add(b_ih).reshape(&[steps, n, gh]).recurrence(cell, w_hh, Some(b_hh))
            } else {
                xp.add(&b_ih.add(b_hh)).reshape(&[steps, n, gh]).recurrence(cell, w_hh, None)
            };
        }
        let (hs, tape) = {
            let params = [w_ih.value(), w_hh.value(), b_ih.value(), b_hh.value()];
            let [a, b, c, d] = &params;
            be::recurrent_cpu(cell, &self.value(), [a, b, c, d], Tensor::records_backward(&inputs))
        };
        let (w_ih_, w_hh_) = (w_ih.clone(), w_hh.clone());
        Tensor::from_op(Storage::Cpu(hs), &inputs, move |g, need| {
            let Storage::Cpu(g) = g else { unreachable!("a CPU recurrence's gradient on the GPU") };
            let tape = tape.as_ref().expect("a recorded recurrence keeps its tape");
            be::recurrent_cpu_backward(tape, [&w_ih_.value(), &w_hh_.value()], g, need)
                .into_iter()
                .map(|d| d.map(Storage::Cpu))
                .collect()
        })
    }

    /// `recurrence` on the CPU: one kernel over contiguous time-major
    /// buffers for the whole pass (`backend::cpu::recurrent`), forward and
    /// backward.
    fn recurrence_cpu(
        &self,
        cell: Recurrence,
        w_hh: &Tensor,
        b_hh: Option<&Tensor>,
        inputs: &[&Tensor],
        backward: bool,
    ) -> Tensor {
        let w = w_hh.value().clone();
        let (hs, tape) = {
            let b = b_hh.map(|b| b.value());
            be::recurrence_cpu(cell, &self.value(), &w, b.as_deref(), backward)
        };
        Tensor::from_op(Storage::Cpu(hs), inputs, move |g, need| {
            let Storage::Cpu(g) = g else { unreachable!("a CPU recurrence's gradient on the GPU") };
            let tape = tape.as_ref().expect("a recorded recurrence keeps its tape");
            let want_b = need.get(2).copied().unwrap_or(false);
            let (dxp, dw, db) = be::recurrence_cpu_backward(tape, &w, g, need[1], want_b);
            let mut grads = vec![need[0].then_some(Storage::Cpu(dxp)), dw.map(Storage::Cpu)];
            if need.len() > 2 {
                grads.push(db.map(Storage::Cpu));
            }
            grads
        })
    }

    // ----- softmax and loss -----------------------------------------------------

    /// Softmax over the last axis.
    pub fn softmax(&self) -> Tensor {
        let value = be::softmax(&self.storage());
        let out = value.clone();
        Tensor::from_op(value, &[self], move |g, _| vec![Some(be::softmax_backward(g, &out))])
    }

    /// Mean softmax cross-entropy of `self` [.., classes] (logits) against integer
    /// labels, one per row. Fused and stable: log-sum-exp, never log(softmax).
    pub fn softmax_cross_entropy(&self, labels: &[usize]) -> Tensor {
        let shape = self.shape();
        let classes = *shape.last().expect("cross-entropy of a scalar");
        let rows = self.len() / classes.max(1);
        assert_eq!(rows, labels.len(), "cross-entropy: {rows} rows of logits but {} labels", labels.len());
        assert!(
            labels.iter().all(|&y| y < classes),
            "cross-entropy: a label is not below the number of classes ({classes})"
        );
        let (loss, probs, labels) = be::cross_entropy(&self.storage(), labels);
        Tensor::from_op(loss, &[self], move |g, _| {
            vec![Some(be::reshape_owned(be::cross_entropy_backward(&probs, &labels, g), &shape))]
        })
    }
}

/// The GPU of the first of `inputs` that lives on one: an op meeting a CPU
/// array and a GPU one runs on the GPU (`backend` uploads the CPU one).
fn gpu_among(inputs: &[&Tensor]) -> Option<Device> {
    inputs.iter().map(|t| t.device()).find(Device::is_gpu)
}

fn normalize_axes(axes: &[usize], ndim: usize) -> Vec<usize> {
    let mut a: Vec<usize> = if axes.is_empty() { (0..ndim).collect() } else { axes.to_vec() };
    a.sort_unstable();
    a.dedup();
    assert!(a.iter().all(|&x| x < ndim), "reduction axis out of range");
    a
}

fn pool_window(xs: &[usize], size: [usize; 2], stride: [usize; 2]) -> Window {
    assert!(
        xs.len() == 4 && size[0] <= xs[2] && size[1] <= xs[3],
        "pooling: window {size:?} does not fit input {xs:?}"
    );
    Window {
        n: xs[0],
        c: xs[1],
        h: xs[2],
        w: xs[3],
        kh: size[0],
        kw: size[1],
        sh: stride[0],
        sw: stride[1],
        pad: [0; 4],
    }
}
