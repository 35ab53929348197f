//! The primitives: each computes its value with a backend kernel and records the
//! rule that maps the output gradient to its inputs' gradients.
//!
//! Shape errors here are programming errors (the spec's shape inference rejects
//! invalid models before any op runs), so they panic with a message.

use ndarray::{ArrayD, Axis, CowArray, Ix2, Ix3, IxDyn, Slice};
use rand::Rng;

use crate::backend::cpu::{self, Window};
use crate::tensor::{Array, Tensor};

/// Sums `g` down to `shape`, undoing numpy-style broadcasting.
pub fn reduce_to_shape(mut g: Array, shape: &[usize]) -> Array {
    while g.ndim() > shape.len() {
        g = g.sum_axis(Axis(0));
    }
    for (axis, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[axis] != 1 {
            g = g.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    g
}

fn broadcast_binary(a: &Tensor, b: &Tensor, f: impl Fn(&Array, &Array) -> Array) -> Array {
    let (av, bv) = (a.value(), b.value());
    f(&av, &bv)
}

impl Tensor {
    // ----- elementwise binary, with broadcasting --------------------------------

    pub fn add(&self, other: &Tensor) -> Tensor {
        let value = broadcast_binary(self, other, |a, b| a + b);
        let (sa, sb) = (self.shape(), other.shape());
        Tensor::from_op(value, &[self, other], move |g, need| {
            vec![need[0].then(|| reduce_to_shape(g.clone(), &sa)), need[1].then(|| reduce_to_shape(g.clone(), &sb))]
        })
    }

    pub fn sub(&self, other: &Tensor) -> Tensor {
        let value = broadcast_binary(self, other, |a, b| a - b);
        let (sa, sb) = (self.shape(), other.shape());
        Tensor::from_op(value, &[self, other], move |g, need| {
            vec![need[0].then(|| reduce_to_shape(g.clone(), &sa)), need[1].then(|| reduce_to_shape(-g, &sb))]
        })
    }

    pub fn mul(&self, other: &Tensor) -> Tensor {
        let value = broadcast_binary(self, other, |a, b| a * b);
        let (a, b) = (self.clone(), other.clone());
        Tensor::from_op(value, &[self, other], move |g, need| {
            vec![
                need[0].then(|| reduce_to_shape(g * &*b.value(), &a.shape())),
                need[1].then(|| reduce_to_shape(g * &*a.value(), &b.shape())),
            ]
        })
    }

    pub fn div(&self, other: &Tensor) -> Tensor {
        let value = broadcast_binary(self, other, |a, b| a / b);
        let (a, b) = (self.clone(), other.clone());
        Tensor::from_op(value, &[self, other], move |g, need| {
            let bv = b.value();
            vec![
                need[0].then(|| reduce_to_shape(g / &*bv, &a.shape())),
                // d(a/b)/db = -a / b^2
                need[1].then(|| reduce_to_shape(-(g * &*a.value()) / &(&*bv * &*bv), &b.shape())),
            ]
        })
    }

    pub fn mul_scalar(&self, s: f32) -> Tensor {
        let value = self.value().mapv(|v| v * s);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g.mapv(|v| v * s))])
    }

    pub fn add_scalar(&self, s: f32) -> Tensor {
        let value = self.value().mapv(|v| v + s);
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g.clone())])
    }

    pub fn neg(&self) -> Tensor {
        self.mul_scalar(-1.0)
    }

    // ----- elementwise unary ----------------------------------------------------

    pub fn exp(&self) -> Tensor {
        let value = self.value().mapv(f32::exp);
        let out = value.clone();
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g * &out)])
    }

    pub fn log(&self) -> Tensor {
        let value = self.value().mapv(f32::ln);
        let x = self.clone();
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g / &*x.value())])
    }

    pub fn sqrt(&self) -> Tensor {
        let value = self.value().mapv(f32::sqrt);
        let out = value.clone();
        // d sqrt(x) = 1 / (2 sqrt(x))
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g / &out.mapv(|s| 2.0 * s))])
    }

    pub fn relu(&self) -> Tensor {
        let value = self.value().mapv(|v| v.max(0.0));
        let x = self.clone();
        Tensor::from_op(value, &[self], move |g, _| vec![Some(ndarray::Zip::from(g).and(&*x.value()).map_collect(|&g, &x| if x > 0.0 { g } else { 0.0 }))])
    }

    pub fn tanh(&self) -> Tensor {
        let value = self.value().mapv(fast_tanh);
        let out = value.clone();
        // d tanh = 1 - tanh^2
        Tensor::from_op(value, &[self], move |g, _| vec![Some(ndarray::Zip::from(g).and(&out).map_collect(|&g, &y| g * (1.0 - y * y)))])
    }

    pub fn sigmoid(&self) -> Tensor {
        let value = self.value().mapv(sigmoid);
        let out = value.clone();
        // d sigmoid = s (1 - s)
        Tensor::from_op(value, &[self], move |g, _| vec![Some(ndarray::Zip::from(g).and(&out).map_collect(|&g, &s| g * s * (1.0 - s)))])
    }

    /// GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    pub fn gelu(&self) -> Tensor {
        let value = self.value().mapv(|x| gelu_parts(x).0);
        let x = self.clone();
        Tensor::from_op(value, &[self], move |g, _| vec![Some(ndarray::Zip::from(g).and(&*x.value()).map_collect(|&g, &x| g * gelu_parts(x).1))])
    }

    // ----- reductions -----------------------------------------------------------

    /// Sum over `axes` (all axes if empty), keeping them as size 1 if `keepdim`.
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let shape = self.shape();
        let axes = normalize_axes(axes, shape.len());
        let mut v = self.value().to_owned();
        for &a in axes.iter().rev() {
            v = v.sum_axis(Axis(a));
        }
        let kept_shape: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
        let value = if keepdim { v.into_shape_with_order(IxDyn(&kept_shape)).unwrap() } else { v };
        Tensor::from_op(value, &[self], move |g, _| {
            let g = g.to_shape(IxDyn(&kept_shape)).unwrap();
            vec![Some(g.broadcast(IxDyn(&shape)).unwrap().to_owned())]
        })
    }

    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Tensor {
        let shape = self.shape();
        let count: usize = normalize_axes(axes, shape.len()).iter().map(|&a| shape[a]).product();
        self.sum(axes, keepdim).mul_scalar(1.0 / count.max(1) as f32)
    }

    /// Maximum over one axis; the gradient goes to the first maximal element.
    pub fn max(&self, axis: usize, keepdim: bool) -> Tensor {
        let shape = self.shape();
        let x = self.value();
        let lanes = x.lanes(Axis(axis));
        let mut arg = Vec::with_capacity(lanes.into_iter().len());
        let reduced = x.map_axis(Axis(axis), |lane| {
            let (mut best, mut bi) = (f32::NEG_INFINITY, 0);
            for (i, &v) in lane.iter().enumerate() {
                if !(v <= best) {
                    best = v;
                    bi = i;
                }
            }
            arg.push(bi);
            best
        });
        drop(x);
        let mut kept_shape = shape.clone();
        kept_shape[axis] = 1;
        let value = if keepdim { reduced.into_shape_with_order(IxDyn(&kept_shape)).unwrap() } else { reduced };
        Tensor::from_op(value, &[self], move |g, _| {
            let mut dx = ArrayD::<f32>::zeros(IxDyn(&shape));
            let g = g.to_shape(IxDyn(&kept_shape)).unwrap();
            // map_axis visits lanes in the logical order of the reduced array.
            for ((mut lane, &gv), &a) in dx.lanes_mut(Axis(axis)).into_iter().zip(g.iter()).zip(&arg) {
                lane[a] = gv;
            }
            vec![Some(dx)]
        })
    }

    // ----- shape ----------------------------------------------------------------

    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        let old = self.shape();
        let value = self.value().as_standard_layout().into_owned().into_shape_with_order(IxDyn(shape)).unwrap_or_else(|_| panic!("reshape: cannot view {old:?} as {shape:?}"));
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g.as_standard_layout().into_owned().into_shape_with_order(IxDyn(&old)).unwrap())])
    }

    /// Reorders axes (a strided view, no copy).
    pub fn permute(&self, axes: &[usize]) -> Tensor {
        let value = self.value().clone().permuted_axes(IxDyn(axes));
        let mut inverse = vec![0; axes.len()];
        for (i, &a) in axes.iter().enumerate() {
            inverse[a] = i;
        }
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g.clone().permuted_axes(IxDyn(&inverse)))])
    }

    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Elements `start..end` along `axis`.
    pub fn slice(&self, axis: usize, start: usize, end: usize) -> Tensor {
        let shape = self.shape();
        let value = self.value().slice_axis(Axis(axis), Slice::from(start..end)).to_owned();
        Tensor::from_op(value, &[self], move |g, _| {
            let mut dx = ArrayD::<f32>::zeros(IxDyn(&shape));
            dx.slice_axis_mut(Axis(axis), Slice::from(start..end)).assign(g);
            vec![Some(dx)]
        })
    }

    pub fn concat(tensors: &[Tensor], axis: usize) -> Tensor {
        let values: Vec<_> = tensors.iter().map(|t| t.value()).collect();
        let views: Vec<_> = values.iter().map(|v| v.view()).collect();
        let value = ndarray::concatenate(Axis(axis), &views).expect("concat: shapes must agree except along the axis");
        let sizes: Vec<usize> = values.iter().map(|v| v.shape()[axis]).collect();
        drop(views);
        drop(values);
        let refs: Vec<&Tensor> = tensors.iter().collect();
        Tensor::from_op(value, &refs, move |g, need| {
            let mut start = 0;
            sizes
                .iter()
                .zip(need)
                .map(|(&n, &need)| {
                    let part = need.then(|| g.slice_axis(Axis(axis), Slice::from(start..start + n)).to_owned());
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
        if sb.len() == 2 {
            let rows: usize = sa[..sa.len() - 1].iter().product();
            let mut out_shape = sa.clone();
            *out_shape.last_mut().unwrap() = sb[1];
            let value = {
                let (av, bv) = (self.value(), other.value());
                let b2 = bv.view().into_dimensionality::<Ix2>().unwrap();
                cpu::gemm(as_matrix(&av, rows, k).view(), b2).into_shape_with_order(IxDyn(&out_shape)).unwrap()
            };
            Tensor::from_op(value, &[self, other], move |g, need| {
                let g2 = as_matrix(g, rows, g.shape()[g.ndim() - 1]);
                let da = need[0].then(|| {
                    let bv = b.value();
                    let bt = bv.view().into_dimensionality::<Ix2>().unwrap().reversed_axes();
                    cpu::gemm(g2.view(), bt).into_shape_with_order(IxDyn(&sa)).unwrap()
                });
                let db = need[1].then(|| {
                    let av = a.value();
                    cpu::gemm(as_matrix(&av, rows, k).t(), g2.view()).into_dyn()
                });
                vec![da, db]
            })
        } else {
            assert_eq!(sa[..sa.len() - 2], sb[..sb.len() - 2], "batched matmul: batch axes differ: {sa:?} @ {sb:?}");
            let batch: usize = sa[..sa.len() - 2].iter().product();
            let (m, n) = (sa[sa.len() - 2], sb[sb.len() - 1]);
            let mut out_shape = sa.clone();
            *out_shape.last_mut().unwrap() = n;
            let value = {
                let (av, bv) = (self.value(), other.value());
                cpu::batched_gemm(as_batch(&av, batch, m, k).view(), as_batch(&bv, batch, k, n).view()).into_shape_with_order(IxDyn(&out_shape)).unwrap()
            };
            Tensor::from_op(value, &[self, other], move |g, need| {
                let g3 = as_batch(g, batch, m, n);
                let da = need[0].then(|| {
                    let bv = b.value();
                    cpu::batched_gemm(g3.view(), as_batch(&bv, batch, k, n).view().permuted_axes([0, 2, 1])).into_shape_with_order(IxDyn(&sa)).unwrap()
                });
                let db = need[1].then(|| {
                    let av = a.value();
                    cpu::batched_gemm(as_batch(&av, batch, m, k).view().permuted_axes([0, 2, 1]), g3.view()).into_shape_with_order(IxDyn(&sb)).unwrap()
                });
                vec![da, db]
            })
        }
    }

    // ----- convolution and pooling (NCHW) --------------------------------------

    /// 2-d convolution (cross-correlation, as PyTorch): `self` [N,C,H,W],
    /// `weight` [F,C,KH,KW], `bias` [F] -> [N,F,OH,OW]. `pad` = top, bottom, left, right.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: [usize; 2], pad: [usize; 4]) -> Tensor {
        let xs = self.shape();
        let ws = weight.shape();
        assert!(xs.len() == 4 && ws.len() == 4 && xs[1] == ws[1], "conv2d: input {xs:?} and weight {ws:?} do not fit");
        let g = Window { n: xs[0], c: xs[1], h: xs[2], w: xs[3], kh: ws[2], kw: ws[3], sh: stride[0], sw: stride[1], pad };
        let (f, ckk) = (ws[0], ws[1] * ws[2] * ws[3]);
        let out = {
            let x = self.value();
            let x = x.as_standard_layout();
            let w = weight.value();
            let b = bias.map(|b| b.value().iter().copied().collect::<Vec<f32>>());
            cpu::conv2d_forward(x.as_slice().unwrap(), as_matrix(&w, f, ckk).view(), b.as_deref(), &g)
        };
        let value = ArrayD::from_shape_vec(IxDyn(&[g.n, f, g.out_h(), g.out_w()]), out).unwrap();
        let (x, w) = (self.clone(), weight.clone());
        let mut inputs = vec![self, weight];
        if let Some(b) = bias {
            inputs.push(b);
        }
        Tensor::from_op(value, &inputs, move |dy, need| {
            let dy = dy.as_standard_layout();
            let (xv, wv) = (x.value(), w.value());
            let xv = xv.as_standard_layout();
            let (dx, dw, db) = cpu::conv2d_backward(xv.as_slice().unwrap(), as_matrix(&wv, f, ckk).view(), dy.as_slice().unwrap(), &g, need[0]);
            let mut grads = vec![
                dx.map(|dx| ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).unwrap()),
                need[1].then(|| dw.into_shape_with_order(IxDyn(&[f, g.c, g.kh, g.kw])).unwrap()),
            ];
            if need.len() > 2 {
                grads.push(need[2].then(|| ArrayD::from_shape_vec(IxDyn(&[f]), db).unwrap()));
            }
            grads
        })
    }

    /// Max pooling over [N,C,H,W] with no padding (floor mode, as Keras "valid").
    pub fn max_pool2d(&self, size: [usize; 2], stride: [usize; 2]) -> Tensor {
        let g = pool_window(&self.shape(), size, stride);
        let (out, arg) = {
            let x = self.value();
            let x = x.as_standard_layout();
            cpu::max_pool_forward(x.as_slice().unwrap(), &g)
        };
        let value = ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.out_h(), g.out_w()]), out).unwrap();
        Tensor::from_op(value, &[self], move |dy, _| {
            let dy = dy.as_standard_layout();
            let dx = cpu::max_pool_backward(dy.as_slice().unwrap(), &arg, &g);
            vec![Some(ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).unwrap())]
        })
    }

    pub fn avg_pool2d(&self, size: [usize; 2], stride: [usize; 2]) -> Tensor {
        let g = pool_window(&self.shape(), size, stride);
        let out = {
            let x = self.value();
            let x = x.as_standard_layout();
            cpu::avg_pool_forward(x.as_slice().unwrap(), &g)
        };
        let value = ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.out_h(), g.out_w()]), out).unwrap();
        Tensor::from_op(value, &[self], move |dy, _| {
            let dy = dy.as_standard_layout();
            let dx = cpu::avg_pool_backward(dy.as_slice().unwrap(), &g);
            vec![Some(ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).unwrap())]
        })
    }

    /// Rows of `self` [rows, d] picked by `ids` -> [ids.len(), d] (an embedding
    /// lookup); the backward pass adds each output row's gradient to its row.
    pub fn gather_rows(&self, ids: &[usize]) -> Tensor {
        let shape = self.shape();
        assert!(shape.len() == 2, "gather_rows needs a 2-d table");
        let (rows, d) = (shape[0], shape[1]);
        assert!(ids.iter().all(|&i| i < rows), "gather_rows: an id is not below {rows}");
        let table = self.value();
        let table = table.as_standard_layout();
        let src = table.as_slice().unwrap();
        let mut out = Vec::with_capacity(ids.len() * d);
        for &i in ids {
            out.extend_from_slice(&src[i * d..(i + 1) * d]);
        }
        drop(table);
        let ids = ids.to_vec();
        Tensor::from_op(ArrayD::from_shape_vec(IxDyn(&[ids.len(), d]), out).unwrap(), &[self], move |g, _| {
            let g = g.as_standard_layout();
            let mut dt = vec![0.0f32; rows * d];
            for (row, &i) in g.as_slice().unwrap().chunks(d).zip(&ids) {
                for (a, b) in dt[i * d..(i + 1) * d].iter_mut().zip(row) {
                    *a += b;
                }
            }
            vec![Some(ArrayD::from_shape_vec(IxDyn(&[rows, d]), dt).unwrap())]
        })
    }

    // ----- regularisation -------------------------------------------------------

    /// Inverted dropout: zeroes each element with probability `rate` and scales the
    /// rest by 1/(1-rate), so evaluation needs no rescaling.
    pub fn dropout(&self, rate: f32, rng: &mut impl Rng) -> Tensor {
        if rate <= 0.0 {
            return self.clone();
        }
        let keep = 1.0 - rate;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        let mask = self.value().mapv(|_| if rng.random::<f32>() < keep { scale } else { 0.0 });
        let value = &*self.value() * &mask;
        Tensor::from_op(value, &[self], move |g, _| vec![Some(g * &mask)])
    }

    // ----- softmax and loss -----------------------------------------------------

    /// Softmax over the last axis.
    pub fn softmax(&self) -> Tensor {
        let shape = self.shape();
        let classes = *shape.last().expect("softmax of a scalar");
        let mut v = self.value().as_standard_layout().into_owned();
        cpu::softmax_rows(v.as_slice_mut().unwrap(), classes);
        let out = v.clone();
        Tensor::from_op(v, &[self], move |g, _| {
            // dx = y * (g - sum(g * y)) per row
            let g = g.as_standard_layout();
            let mut dx = out.clone();
            for ((dx_row, g_row), y_row) in dx.as_slice_mut().unwrap().chunks_mut(classes).zip(g.as_slice().unwrap().chunks(classes)).zip(out.as_slice().unwrap().chunks(classes)) {
                let dot: f32 = g_row.iter().zip(y_row).map(|(a, b)| a * b).sum();
                for ((d, &gv), &y) in dx_row.iter_mut().zip(g_row).zip(y_row) {
                    *d = y * (gv - dot);
                }
            }
            vec![Some(dx)]
        })
    }

    /// Mean softmax cross-entropy of `self` [.., classes] (logits) against integer
    /// labels, one per row. Fused and stable: log-sum-exp, never log(softmax).
    pub fn softmax_cross_entropy(&self, labels: &[usize]) -> Tensor {
        let shape = self.shape();
        let classes = *shape.last().expect("cross-entropy of a scalar");
        let rows = self.len() / classes.max(1);
        assert_eq!(rows, labels.len(), "cross-entropy: {rows} rows of logits but {} labels", labels.len());
        assert!(labels.iter().all(|&y| y < classes), "cross-entropy: a label is not below the number of classes ({classes})");
        let (loss, probs) = {
            let x = self.value();
            let x = x.as_standard_layout();
            cpu::softmax_cross_entropy(x.as_slice().unwrap(), classes, labels)
        };
        let labels = labels.to_vec();
        Tensor::from_op(ArrayD::from_elem(IxDyn(&[]), loss), &[self], move |g, _| {
            // d loss / d logits = (softmax - onehot) / rows
            let scale = g.iter().next().copied().unwrap_or(1.0) / rows as f32;
            let mut d = probs.clone();
            for (row, &y) in d.chunks_mut(classes).zip(&labels) {
                row[y] -= 1.0;
                for v in row.iter_mut() {
                    *v *= scale;
                }
            }
            vec![Some(ArrayD::from_shape_vec(IxDyn(&shape), d).unwrap())]
        })
    }
}

/// tanh as a rational function (the minimax fit Eigen uses for floats): within
/// 1e-6 of the exact value and several times faster than libm's, which dominated
/// the profile of GELU-heavy models.
#[inline]
pub fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A: [f32; 7] = [4.893_524_6e-3, 6.372_619_3e-4, 1.485_722_4e-5, 5.122_297e-8, -8.604_671_5e-11, 2.000_187_9e-13, -2.760_768_5e-16];
    const B: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    if x.abs() < 4e-4 {
        return x;
    }
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let mut p = A[6];
    for &a in A[..6].iter().rev() {
        p = p * x2 + a;
    }
    let q = ((B[3] * x2 + B[2]) * x2 + B[1]) * x2 + B[0];
    x * p / q
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// GELU (tanh form) and its derivative at `x`.
fn gelu_parts(x: f32) -> (f32, f32) {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    let inner = C * (x + 0.044715 * x * x * x);
    let t = fast_tanh(inner);
    let y = 0.5 * x * (1.0 + t);
    let dy = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * 0.044715 * x * x);
    (y, dy)
}

fn normalize_axes(axes: &[usize], ndim: usize) -> Vec<usize> {
    let mut a: Vec<usize> = if axes.is_empty() { (0..ndim).collect() } else { axes.to_vec() };
    a.sort_unstable();
    a.dedup();
    assert!(a.iter().all(|&x| x < ndim), "reduction axis out of range");
    a
}

/// A [rows, cols] view of the array's elements in logical (row-major) order,
/// copying only when the layout forces it; 2-d arrays keep their strides (so a
/// transposed view stays a view).
fn as_matrix(x: &Array, rows: usize, cols: usize) -> CowArray<'_, f32, Ix2> {
    if x.ndim() == 2 {
        return CowArray::from(x.view().into_dimensionality::<Ix2>().unwrap());
    }
    match x.view().into_shape_with_order((rows, cols)) {
        Ok(v) => CowArray::from(v),
        Err(_) => CowArray::from(x.as_standard_layout().into_owned().into_shape_with_order((rows, cols)).unwrap()),
    }
}

fn as_batch(x: &Array, batch: usize, rows: usize, cols: usize) -> CowArray<'_, f32, Ix3> {
    if x.ndim() == 3 {
        return CowArray::from(x.view().into_dimensionality::<Ix3>().unwrap());
    }
    match x.view().into_shape_with_order((batch, rows, cols)) {
        Ok(v) => CowArray::from(v),
        Err(_) => CowArray::from(x.as_standard_layout().into_owned().into_shape_with_order((batch, rows, cols)).unwrap()),
    }
}

fn pool_window(xs: &[usize], size: [usize; 2], stride: [usize; 2]) -> Window {
    assert!(xs.len() == 4 && size[0] <= xs[2] && size[1] <= xs[3], "pooling: window {size:?} does not fit input {xs:?}");
    Window { n: xs[0], c: xs[1], h: xs[2], w: xs[3], kh: size[0], kw: size[1], sh: stride[0], sw: stride[1], pad: [0; 4] }
}
