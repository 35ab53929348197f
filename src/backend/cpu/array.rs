//! The CPU side of every backend op on whole arrays (`backend::binary`,
//! `backend::gemm`, ...): ndarray arrays in, arrays out. The kernels they
//! call on slices (GEMM, im2col, pooling, softmax) are in `cpu/mod.rs`.

use ndarray::{ArrayD, ArrayView, Axis, CowArray, Ix2, Ix3, IxDyn, Slice, Zip};

use super::super::ops::{Gemm, MapOp, Window};
use super::super::Array;

/// `x` in row-major order: borrowed when it already is, else copied one lane
/// of the last axis at a time (`as_standard_layout` walks an `IxDyn` index
/// per element, which took a fifth of a transformer's training step).
pub fn standard(x: &Array) -> CowArray<'_, f32, IxDyn> {
    if x.is_standard_layout() {
        return CowArray::from(x.view());
    }
    let Some(last) = x.ndim().checked_sub(1) else { return CowArray::from(x.view()) };
    let mut out = Vec::with_capacity(x.len());
    for lane in x.lanes(Axis(last)) {
        match lane.as_slice() {
            Some(s) => out.extend_from_slice(s),
            None => out.extend(lane.iter()),
        }
    }
    CowArray::from(ArrayD::from_shape_vec(x.raw_dim(), out).expect("same shape"))
}

/// `x` as `shape`, without a copy where it is in row-major order already.
pub fn reshape_owned(x: Array, shape: &[usize]) -> Array {
    if x.is_standard_layout() {
        return x.into_shape_with_order(IxDyn(shape)).unwrap_or_else(|e| panic!("reshape: {e}"));
    }
    reshape(&x, shape)
}

/// A binary op of two arrays with numpy broadcasting (gradient ops take equal shapes).
pub fn binary(op: MapOp, x: &Array, y: &Array) -> Array {
    match op {
        MapOp::Add => x + y,
        MapOp::Sub => x - y,
        MapOp::Mul => x * y,
        MapOp::Div => x / y,
        MapOp::ReluGrad => Zip::from(x).and(y).map_collect(|&g, &x| if x > 0.0 { g } else { 0.0 }),
        MapOp::TanhGrad => Zip::from(x).and(y).map_collect(|&g, &y| g * (1.0 - y * y)),
        MapOp::SigmoidGrad => Zip::from(x).and(y).map_collect(|&g, &s| g * s * (1.0 - s)),
        MapOp::GeluGrad => Zip::from(x).and(y).map_collect(|&g, &x| g * super::gelu_parts(x).1),
        MapOp::SqrtGrad => Zip::from(x).and(y).map_collect(|&g, &s| g / (2.0 * s)),
        other => panic!("{other:?} is not a binary op"),
    }
}

/// A unary op; `Scale` and `Offset` take `s`.
pub fn unary(op: MapOp, x: &Array, s: f32) -> Array {
    match op {
        MapOp::Exp => x.mapv(f32::exp),
        MapOp::Log => x.mapv(f32::ln),
        MapOp::Sqrt => x.mapv(f32::sqrt),
        // A select, not `f32::max`: wasm has no instruction with `max`'s NaN
        // rule, so `max` is a call to libm's `fmaxf` per element there (15 % of
        // the Seed CNN's step in the page); the select vectorises. NaN gives 0,
        // as `max` did.
        MapOp::Relu => x.mapv(|v| if v > 0.0 { v } else { 0.0 }),
        MapOp::Tanh => x.mapv(super::fast_tanh),
        MapOp::Sigmoid => x.mapv(super::sigmoid),
        MapOp::Gelu => x.mapv(|v| super::gelu_parts(v).0),
        MapOp::Scale => x.mapv(|v| v * s),
        MapOp::Offset => x.mapv(|v| v + s),
        other => panic!("{other:?} is not a unary op"),
    }
}

/// Sums `x` down to `shape` (leading axes, and axes where `shape` has 1).
pub fn sum_to(x: &Array, shape: &[usize]) -> Array {
    let mut g = x.clone();
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

/// `x` broadcast to `shape`, materialised.
pub fn broadcast_to(x: &Array, shape: &[usize]) -> Array {
    x.broadcast(IxDyn(shape)).expect("broadcast").to_owned()
}

/// The values of `x` in row-major order as `shape`.
pub fn reshape(x: &Array, shape: &[usize]) -> Array {
    standard(x)
        .into_owned()
        .into_shape_with_order(IxDyn(shape))
        .unwrap_or_else(|_| panic!("reshape: cannot view {:?} as {shape:?}", x.shape()))
}

/// `x` with its axes in the order `axes` (a view's strides, no copy).
pub fn permute(x: &Array, axes: &[usize]) -> Array {
    x.clone().permuted_axes(IxDyn(axes))
}

/// `x[.., start..end, ..]` along `axis`, copied.
pub fn slice(x: &Array, axis: usize, start: usize, end: usize) -> Array {
    x.slice_axis(Axis(axis), Slice::from(start..end)).to_owned()
}

/// Zeros of `shape` with `g` at `start..` along `axis` (the gradient of `slice`).
pub fn unslice(g: &Array, shape: &[usize], axis: usize, start: usize) -> Array {
    let mut dx = ArrayD::<f32>::zeros(IxDyn(shape));
    dx.slice_axis_mut(Axis(axis), Slice::from(start..start + g.shape()[axis])).assign(g);
    dx
}

/// `parts` joined along `axis` (their other axes agree).
pub fn concat(parts: &[ArrayView<f32, IxDyn>], axis: usize) -> Array {
    ndarray::concatenate(Axis(axis), parts).expect("concat: shapes must agree except along the axis")
}

/// Maximum over `axis` (removed), with the position of the first maximum.
pub fn max_axis(x: &Array, axis: usize) -> (Array, Vec<u32>) {
    let mut arg = Vec::new();
    let reduced = x.map_axis(Axis(axis), |lane| {
        let (mut best, mut bi) = (f32::NEG_INFINITY, 0);
        for (i, &v) in lane.iter().enumerate() {
            // Not `v > best`: a NaN wins (and propagates), as in the GPU kernel.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            if !(v <= best) {
                best = v;
                bi = i;
            }
        }
        arg.push(bi as u32);
        best
    });
    (reduced, arg)
}

/// The gradient of `max_axis`: `g` (its output's shape) at the maxima of `shape`.
pub fn max_axis_backward(g: &Array, arg: &[u32], shape: &[usize], axis: usize) -> Array {
    let mut dx = ArrayD::<f32>::zeros(IxDyn(shape));
    // map_axis visits lanes in the logical order of the reduced array.
    for ((mut lane, &gv), &a) in dx.lanes_mut(Axis(axis)).into_iter().zip(g.iter()).zip(arg) {
        lane[a as usize] = gv;
    }
    dx
}

/// The product `g` describes, `[batch·m, n]`.
pub fn gemm(x: &Array, y: &Array, g: Gemm) -> Array {
    let Gemm { batch, m, k, n, transpose_a: ta, transpose_b: tb, b_batched } = g;
    let out = if batch == 1 || !b_batched {
        let rows = batch * m;
        assert!(batch == 1 || !ta, "a shared right operand needs an untransposed left one");
        let a2 = if ta { as_matrix(x, k, m).reversed_axes() } else { as_matrix(x, rows, k) };
        let b2 = if tb { as_matrix(y, n, k).reversed_axes() } else { as_matrix(y, k, n) };
        super::gemm(a2.view(), b2.view())
    } else {
        let a3 = if ta { as_batch(x, batch, k, m).permuted_axes([0, 2, 1]) } else { as_batch(x, batch, m, k) };
        let b3 = if tb { as_batch(y, batch, n, k).permuted_axes([0, 2, 1]) } else { as_batch(y, batch, k, n) };
        super::batched_gemm(a3.view(), b3.view()).into_shape_with_order((batch * m, n)).expect("contiguous")
    };
    out.into_dyn()
}

/// A [rows, cols] view of the array's elements in logical (row-major) order,
/// copying only when the layout forces it; 2-d arrays keep their strides (so a
/// transposed view stays a view).
fn as_matrix(x: &Array, rows: usize, cols: usize) -> CowArray<'_, f32, Ix2> {
    if x.ndim() == 2 && x.shape() == [rows, cols] {
        return CowArray::from(x.view().into_dimensionality::<Ix2>().unwrap());
    }
    match x.view().into_shape_with_order((rows, cols)) {
        Ok(v) => CowArray::from(v),
        Err(_) => CowArray::from(standard(x).into_owned().into_shape_with_order((rows, cols)).unwrap()),
    }
}

fn as_batch(x: &Array, batch: usize, rows: usize, cols: usize) -> CowArray<'_, f32, Ix3> {
    if x.ndim() == 3 && x.shape() == [batch, rows, cols] {
        return CowArray::from(x.view().into_dimensionality::<Ix3>().unwrap());
    }
    match x.view().into_shape_with_order((batch, rows, cols)) {
        Ok(v) => CowArray::from(v),
        Err(_) => CowArray::from(standard(x).into_owned().into_shape_with_order((batch, rows, cols)).unwrap()),
    }
}

/// `x` [N,C,H,W], `w` [F,C,KH,KW], `bias` [F] -> [N,F,OH,OW], and the
/// unfolded patches when `keep` (see `conv2d_forward`).
pub fn conv2d(x: &Array, w: &Array, bias: Option<&Array>, g: &Window, keep: bool) -> (Array, Option<super::Patches>) {
    let (f, ckk) = (w.shape()[0], g.c * g.kh * g.kw);
    let x = standard(x);
    let b = bias.map(|b| b.iter().copied().collect::<Vec<f32>>());
    let (out, patches) =
        super::conv2d_forward(x.as_slice().unwrap(), as_matrix(w, f, ckk).view(), b.as_deref(), g, keep);
    (ArrayD::from_shape_vec(IxDyn(&[g.n, f, g.out_h(), g.out_w()]), out).unwrap(), patches)
}

/// Gradients of a convolution: input (if `want_dx`), weight [F,C,KH,KW], bias
/// [F]; `patches` are the forward pass's, if it kept them.
pub fn conv2d_backward(
    x: &Array,
    w: &Array,
    dy: &Array,
    g: &Window,
    want_dx: bool,
    patches: Option<&super::Patches>,
) -> (Option<Array>, Array, Array) {
    let (f, ckk) = (w.shape()[0], g.c * g.kh * g.kw);
    let (x, dy) = (standard(x), standard(dy));
    let (dx, dw, db) = super::conv2d_backward(
        x.as_slice().unwrap(),
        as_matrix(w, f, ckk).view(),
        dy.as_slice().unwrap(),
        g,
        want_dx,
        patches,
    );
    (
        dx.map(|dx| ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).unwrap()),
        dw.into_shape_with_order(IxDyn(&[f, g.c, g.kh, g.kw])).unwrap(),
        ArrayD::from_shape_vec(IxDyn(&[f]), db).unwrap(),
    )
}

/// Max pooling of `x` `[N, C, H, W]` -> `[N, C, OH, OW]`, with where each maximum was in its plane.
pub fn max_pool(x: &Array, g: &Window) -> (Array, Vec<u32>) {
    let (out, arg) = super::max_pool_forward(standard(x).as_slice().unwrap(), g);
    (ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.out_h(), g.out_w()]), out).unwrap(), arg)
}

/// The gradient of `max_pool`: `dy` `[N, C, OH, OW]` at the maxima -> `[N, C, H, W]`.
pub fn max_pool_backward(dy: &Array, arg: &[u32], g: &Window) -> Array {
    let dx = super::max_pool_backward(standard(dy).as_slice().unwrap(), arg, g);
    ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).unwrap()
}

/// Average pooling of `x` `[N, C, H, W]` -> `[N, C, OH, OW]`.
pub fn avg_pool(x: &Array, g: &Window) -> Array {
    let out = super::avg_pool_forward(standard(x).as_slice().unwrap(), g);
    ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.out_h(), g.out_w()]), out).unwrap()
}

/// The gradient of `avg_pool`: each window's share of `dy` -> `[N, C, H, W]`.
pub fn avg_pool_backward(dy: &Array, g: &Window) -> Array {
    let dx = super::avg_pool_backward(standard(dy).as_slice().unwrap(), g);
    ArrayD::from_shape_vec(IxDyn(&[g.n, g.c, g.h, g.w]), dx).unwrap()
}

/// Rows of `table` [rows, d] picked by `ids` -> [ids.len(), d].
pub fn gather_rows(table: &Array, ids: &[usize]) -> Array {
    let d = table.shape()[1];
    let t = standard(table);
    let src = t.as_slice().unwrap();
    let mut out = Vec::with_capacity(ids.len() * d);
    for &i in ids {
        out.extend_from_slice(&src[i * d..(i + 1) * d]);
    }
    ArrayD::from_shape_vec(IxDyn(&[ids.len(), d]), out).unwrap()
}

/// The gradient of `gather_rows` for a table of `rows` rows.
pub fn scatter_rows(g: &Array, ids: &[u32], rows: usize) -> Array {
    let d = g.shape()[1];
    let g = standard(g);
    let mut dt = vec![0.0f32; rows * d];
    for (row, &i) in g.as_slice().unwrap().chunks(d).zip(ids) {
        let i = i as usize;
        for (a, b) in dt[i * d..(i + 1) * d].iter_mut().zip(row) {
            *a += b;
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[rows, d]), dt).unwrap()
}

/// Softmax over the last axis.
pub fn softmax(x: &Array) -> Array {
    let classes = *x.shape().last().expect("softmax of a scalar");
    let mut v = standard(x).into_owned();
    super::softmax_rows(v.as_slice_mut().unwrap(), classes);
    v
}

/// dx = y (g - sum(g y)) per row, from the softmax output `y`.
pub fn softmax_backward(g: &Array, y: &Array) -> Array {
    let classes = *y.shape().last().unwrap();
    let (g, y) = (standard(g), standard(y));
    let mut dx = y.to_owned();
    for ((dx_row, g_row), y_row) in dx
        .as_slice_mut()
        .unwrap()
        .chunks_mut(classes)
        .zip(g.as_slice().unwrap().chunks(classes))
        .zip(y.as_slice().unwrap().chunks(classes))
    {
        let dot: f32 = g_row.iter().zip(y_row).map(|(a, b)| a * b).sum();
        for ((d, &gv), &y) in dx_row.iter_mut().zip(g_row).zip(y_row) {
            *d = y * (gv - dot);
        }
    }
    dx
}

/// Mean softmax cross-entropy of rows of `x` against `labels`: the loss (a
/// scalar array) and the probabilities.
pub fn cross_entropy(x: &Array, labels: &[usize]) -> (Array, Array) {
    let classes = *x.shape().last().expect("cross-entropy of a scalar");
    let x = standard(x);
    let (loss, probs) = super::softmax_cross_entropy(x.as_slice().unwrap(), classes, labels);
    (ArrayD::from_elem(IxDyn(&[]), loss), ArrayD::from_shape_vec(IxDyn(x.shape()), probs).unwrap())
}

/// d loss / d logits = (probs - onehot) · g / rows, for the scalar `g`.
pub fn cross_entropy_backward(probs: &Array, labels: &[u32], g: f32) -> Array {
    let classes = *probs.shape().last().unwrap();
    let rows = probs.len() / classes.max(1);
    let scale = g / rows as f32;
    let mut d = standard(probs).into_owned();
    for (row, &y) in d.as_slice_mut().unwrap().chunks_mut(classes).zip(labels) {
        row[y as usize] -= 1.0;
        for v in row.iter_mut() {
            *v *= scale;
        }
    }
    d
}

/// NaN and infinite values in `x`.
pub fn count_nonfinite(x: &Array) -> u32 {
    x.iter().filter(|v| !v.is_finite()).count() as u32
}
