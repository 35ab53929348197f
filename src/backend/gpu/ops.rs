//! Array-level GPU operations: each records one or a few kernels and returns
//! new arrays (or views). Shapes have been checked by the caller (`autograd::ops`).

use std::rc::Rc;

use super::kernels::{self as k};
use super::params::*;
use super::{grid, standard_strides, workgroups, Buffer, Cost, Gpu, GpuArray, Tuning};
use crate::backend::ops::{Gemm, MapOp, Window};

const MAX_DIMS: usize = 6;

/// Shape and strides right-aligned into 6 axes (size 1, stride 0 in front).
fn pad6(shape: &[usize], strides: &[usize]) -> ([u32; MAX_DIMS], [u32; MAX_DIMS]) {
    assert!(shape.len() <= MAX_DIMS, "GPU kernels take arrays of up to {MAX_DIMS} axes, got {shape:?}");
    let (mut s, mut t) = ([1u32; MAX_DIMS], [0u32; MAX_DIMS]);
    let off = MAX_DIMS - shape.len();
    for i in 0..shape.len() {
        s[off + i] = shape[i] as u32;
        t[off + i] = if shape[i] == 1 { 0 } else { strides[i] as u32 };
    }
    (s, t)
}

/// `shape` and each operand's strides with size-1 axes dropped and
/// neighbouring axes merged where every operand steps over the inner one
/// exactly, so that an n-d kernel divides once per axis left (none for
/// contiguous operands). At least one axis.
fn collapse(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut axes: Vec<usize> = Vec::new();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (i, &size) in shape.iter().enumerate().filter(|(_, &size)| size != 1) {
        let merges = axes.last().is_some_and(|_| {
            let last = out[0].len() - 1;
            strides.iter().zip(&out).all(|(st, o)| o[last] == st[i] * size)
        });
        if merges {
            *axes.last_mut().unwrap() *= size;
            for (st, o) in strides.iter().zip(out.iter_mut()) {
                *o.last_mut().unwrap() = st[i];
            }
        } else {
            axes.push(size);
            for (st, o) in strides.iter().zip(out.iter_mut()) {
                o.push(st[i]);
            }
        }
    }
    if axes.is_empty() {
        axes.push(1);
        out.iter_mut().for_each(|o| o.push(0));
    }
    (axes, out)
}

/// Strides that read `a` as if broadcast to `shape` (numpy rules, aligned right).
fn broadcast_strides(a: &GpuArray, shape: &[usize]) -> Vec<usize> {
    let off = shape.len() - a.shape.len();
    (0..shape.len())
        .map(|i| {
            if i < off {
                0
            } else {
                let d = a.shape[i - off];
                assert!(d == shape[i] || d == 1, "cannot broadcast {:?} to {shape:?}", a.shape);
                if d == 1 {
                    0
                } else {
                    a.strides[i - off]
                }
            }
        })
        .collect()
}

/// Copies `src` (read through `sstr` from `soff`) over `shape` into `dst` (at
/// `dstr` from `doff`).
#[allow(clippy::too_many_arguments)]
fn copy_into(
    gpu: &Gpu,
    src: &wgpu::Buffer,
    shape: &[usize],
    sstr: &[usize],
    soff: usize,
    dst: &wgpu::Buffer,
    dstr: &[usize],
    doff: usize,
) {
    let n: usize = shape.iter().product();
    let (axes, strides) = collapse(shape, &[sstr, dstr]);
    let (padded, src_strides) = pad6(&axes, &strides[0]);
    let (_, dst_strides) = pad6(&axes, &strides[1]);
    let p = CopyParams {
        shape: padded,
        src_strides,
        dst_strides,
        src_offset: soff as u32,
        dst_offset: doff as u32,
        count: n as u32,
        ndims: axes.len() as u32,
    };
    gpu.dispatch(&k::COPY, &p, &[src, dst], grid(n), Cost::elementwise(n, 1));
}

/// `a` itself if it is contiguous from the start of its buffer, else a copy that is.
pub fn contiguous(a: &GpuArray) -> GpuArray {
    if a.is_standard() {
        return a.clone();
    }
    let out = a.gpu().alloc(&a.shape);
    copy_into(a.gpu(), a.raw(), &a.shape, &a.strides, a.offset, out.raw(), &out.strides, 0);
    out
}

pub fn fill(gpu: &Rc<Gpu>, shape: &[usize], value: f32) -> GpuArray {
    let out = gpu.alloc(shape);
    let n = out.len();
    gpu.dispatch(&k::FILL, &FillParams { count: n as u32, value }, &[out.raw()], grid(n), Cost::elementwise(n, 0));
    out
}

/// A binary op with broadcasting; the result is contiguous, shaped as numpy's broadcast.
pub fn binary(op: MapOp, a: &GpuArray, b: &GpuArray) -> GpuArray {
    let nd = a.shape.len().max(b.shape.len());
    let shape: Vec<usize> = (0..nd)
        .map(|i| {
            let da = if i + a.shape.len() >= nd { a.shape[i + a.shape.len() - nd] } else { 1 };
            let db = if i + b.shape.len() >= nd { b.shape[i + b.shape.len() - nd] } else { 1 };
            assert!(da == db || da == 1 || db == 1, "cannot broadcast {:?} with {:?}", a.shape, b.shape);
            da.max(db)
        })
        .collect();
    map(op, a, Some(b), &shape, 0.0)
}

/// A unary op (`Scale`/`Offset` take `s`).
pub fn unary(op: MapOp, x: &GpuArray, s: f32) -> GpuArray {
    map(op, x, None, &x.shape.clone(), s)
}

fn map(op: MapOp, a: &GpuArray, b: Option<&GpuArray>, shape: &[usize], s: f32) -> GpuArray {
    let gpu = a.gpu();
    let out = gpu.alloc(shape);
    let n = out.len();
    let a_str = broadcast_strides(a, shape);
    let b_str = b.map_or_else(|| vec![0; shape.len()], |b| broadcast_strides(b, shape));
    let (axes, strides) = collapse(shape, &[&a_str, &b_str, &out.strides]);
    let (padded, a_strides) = pad6(&axes, &strides[0]);
    let (_, b_strides) = pad6(&axes, &strides[1]);
    let p = MapParams {
        ndims: axes.len() as u32,
        shape: padded,
        a_strides,
        b_strides,
        a_offset: a.offset as u32,
        b_offset: b.map_or(0, |b| b.offset) as u32,
        count: n as u32,
        op: op as u32,
        scalar: s,
    };
    let bbuf = b.map_or(a.raw(), |b| b.raw());
    gpu.dispatch(&k::MAP, &p, &[a.raw(), bbuf, out.raw()], grid(n), Cost::elementwise(n, 1 + b.is_some() as usize));
    out
}

/// Sums `x` down to `shape` (numpy broadcasting undone: leading axes, and axes
/// where `shape` has 1).
pub fn sum_to(x: &GpuArray, shape: &[usize]) -> GpuArray {
    let nd = x.shape.len();
    assert!(shape.len() <= nd, "sum_to: {shape:?} has more axes than {:?}", x.shape);
    let full: Vec<usize> =
        (0..nd).map(|i| if i < nd - shape.len() { 1 } else { shape[i - (nd - shape.len())] }).collect();
    let reduced: Vec<usize> = (0..nd).map(|i| if full[i] == 1 { x.shape[i] } else { 1 }).collect();
    if reduced.iter().all(|&r| r == 1) {
        return reshape(x, shape);
    }
    let gpu = x.gpu();
    let outputs: usize = shape.iter().product();
    let terms: usize = reduced.iter().product();
    let (out_shape, out_strides) = pad6(&full, &x.strides);
    // The reduced axes, merged where one steps over the next exactly (the
    // term index then needs one division fewer).
    let (red, red_strides) = collapse(&reduced, &[&x.strides]);
    let (red_shape, red_strides) = pad6(&red, &red_strides[0]);
    // One thread per output where the sums are short, or where there are
    // outputs enough to keep a GPU busy and the sums are not long; on a
    // software adapter wherever the loop stays short enough.
    let serial = match gpu.tuning() {
        Tuning::Gpu => terms <= SUM_SERIAL_TERMS || (terms <= SUM_SERIAL_MANY_TERMS && outputs >= SUM_MANY_OUTPUTS),
        Tuning::Software => terms <= GEMM_MAX_K,
    };
    let chunk = if serial { terms } else { SUM_CHUNK.min(terms) };
    let chunks = terms.div_ceil(chunk);
    let p = ReduceParams {
        out_shape,
        out_strides,
        red_shape,
        red_strides,
        offset: x.offset as u32,
        outputs: outputs as u32,
        terms: terms as u32,
        chunk: chunk as u32,
        chunks: chunks as u32,
        nred: red.len() as u32,
    };
    if serial {
        let out = gpu.alloc(shape);
        gpu.dispatch(&k::SUM, &p, &[x.raw(), out.raw()], grid(outputs), Cost::new(terms, outputs * terms, outputs));
        return out;
    }
    let partial = gpu.alloc(&[outputs, chunks]);
    let cost = Cost::new(chunk.div_ceil(64) + 6, outputs * terms, outputs * chunks);
    gpu.dispatch(&k::SUM_TREE, &p, &[x.raw(), partial.raw()], workgroups(outputs * chunks), cost);
    if chunks == 1 {
        return reshape(&partial, shape);
    }
    reshape(&sum_to(&partial, &[outputs, 1]), shape)
}

/// Sums of at most this many terms run one thread per output (`SUM`), longer
/// ones a workgroup per output and chunk (`SUM_TREE`)...
const SUM_SERIAL_TERMS: usize = 32;
/// ... but for at least `SUM_MANY_OUTPUTS` outputs (threads enough to fill a
/// GPU), sums of up to this many terms run one thread per output too.
const SUM_SERIAL_MANY_TERMS: usize = 256;
const SUM_MANY_OUTPUTS: usize = 2048;

/// Terms one workgroup of `SUM_TREE` adds (16 per thread of 64).
const SUM_CHUNK: usize = 1024;

/// `x` broadcast to `shape`, materialised.
pub fn broadcast_to(x: &GpuArray, shape: &[usize]) -> GpuArray {
    let out = x.gpu().alloc(shape);
    copy_into(x.gpu(), x.raw(), shape, &broadcast_strides(x, shape), x.offset, out.raw(), &out.strides, 0);
    out
}

/// Strides that view an array of `shape`/`strides` as `new_shape` without
/// copying, if its layout allows (numpy's no-copy reshape).
fn view_strides(shape: &[usize], strides: &[usize], new_shape: &[usize]) -> Option<Vec<usize>> {
    let old: Vec<(usize, usize)> =
        shape.iter().copied().zip(strides.iter().copied()).filter(|&(d, _)| d != 1).collect();
    let mut out = vec![1usize; new_shape.len()];
    let (mut oi, mut ni) = (0, 0);
    while oi < old.len() && ni < new_shape.len() {
        let (mut oj, mut nj) = (oi + 1, ni + 1);
        let (mut op, mut np) = (old[oi].0, new_shape[ni]);
        while op != np {
            if np < op {
                np *= *new_shape.get(nj)?;
                nj += 1;
            } else {
                op *= old.get(oj)?.0;
                oj += 1;
            }
        }
        for ok in oi..oj - 1 {
            if old[ok].1 != old[ok + 1].0 * old[ok + 1].1 {
                return None;
            }
        }
        out[nj - 1] = old[oj - 1].1;
        for nk in (ni + 1..nj).rev() {
            out[nk - 1] = out[nk] * new_shape[nk];
        }
        oi = oj;
        ni = nj;
    }
    Some(out)
}

/// `x` as `shape` (same element count): a view where the layout allows, else a copy.
pub fn reshape(x: &GpuArray, shape: &[usize]) -> GpuArray {
    debug_assert_eq!(x.len(), shape.iter().product::<usize>());
    if let Some(strides) = view_strides(&x.shape, &x.strides, shape) {
        return GpuArray { buf: x.buf.clone(), shape: shape.to_vec(), strides, offset: x.offset };
    }
    let c = contiguous(x);
    GpuArray { strides: standard_strides(shape), shape: shape.to_vec(), ..c }
}

pub fn permute(x: &GpuArray, axes: &[usize]) -> GpuArray {
    GpuArray {
        buf: x.buf.clone(),
        shape: axes.iter().map(|&a| x.shape[a]).collect(),
        strides: axes.iter().map(|&a| x.strides[a]).collect(),
        offset: x.offset,
    }
}

/// Elements `start..end` along `axis` (a view).
pub fn slice(x: &GpuArray, axis: usize, start: usize, end: usize) -> GpuArray {
    let mut shape = x.shape.clone();
    shape[axis] = end - start;
    GpuArray { buf: x.buf.clone(), shape, strides: x.strides.clone(), offset: x.offset + start * x.strides[axis] }
}

/// Zeros of `shape` with `g` written at `start..` along `axis` (the gradient of `slice`).
pub fn unslice(g: &GpuArray, shape: &[usize], axis: usize, start: usize) -> GpuArray {
    let out = fill(g.gpu(), shape, 0.0);
    copy_into(g.gpu(), g.raw(), &g.shape, &g.strides, g.offset, out.raw(), &out.strides, start * out.strides[axis]);
    out
}

pub fn concat(parts: &[&GpuArray], axis: usize) -> GpuArray {
    let mut shape = parts[0].shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    let gpu = parts[0].gpu();
    let out = gpu.alloc(&shape);
    let mut at = 0;
    for p in parts {
        copy_into(gpu, p.raw(), &p.shape, &p.strides, p.offset, out.raw(), &out.strides, at * out.strides[axis]);
        at += p.shape[axis];
    }
    out
}

/// Maximum over `axis` (the axis removed) and where it was along the axis.
pub fn max_axis(x: &GpuArray, axis: usize) -> (GpuArray, Rc<Buffer>) {
    let x = contiguous(x);
    let gpu = x.gpu();
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut shape = x.shape.clone();
    shape.remove(axis);
    let out = gpu.alloc(&shape);
    let arg = gpu.buffer(outer * inner);
    let n = outer * inner;
    gpu.dispatch(
        &k::MAX_AXIS,
        &AxisParams { count: n as u32, len: x.shape[axis] as u32, inner: inner as u32 },
        &[x.raw(), out.raw(), arg.raw()],
        grid(n),
        Cost::new(x.shape[axis], x.len(), 2 * n),
    );
    (out, arg)
}

/// The gradient of `max_axis`: `g` (shaped as its output) placed at the maxima.
pub fn max_axis_backward(g: &GpuArray, arg: &Buffer, shape: &[usize], axis: usize) -> GpuArray {
    let g = contiguous(g);
    let gpu = g.gpu();
    let dx = fill(gpu, shape, 0.0);
    let inner: usize = shape[axis + 1..].iter().product();
    let n = g.len();
    gpu.dispatch(
        &k::MAX_AXIS_BACKWARD,
        &AxisParams { count: n as u32, len: shape[axis] as u32, inner: inner as u32 },
        &[g.raw(), arg.raw(), dx.raw()],
        grid(n),
        Cost::elementwise(n, 2),
    );
    dx
}

/// A batch of matrices read from an array: element (b, i, j) at
/// `offset + b·batch + i·row + j·col`.
#[derive(Clone, Copy, Debug)]
struct MatView {
    offset: usize,
    batch: usize,
    row: usize,
    col: usize,
}

/// Reads `x` as `batch` matrices [rows, cols] in row-major element order
/// (transposed if `t`), as a view where possible.
fn mat_view(x: &GpuArray, batch: usize, rows: usize, cols: usize, t: bool) -> (GpuArray, MatView) {
    let (r, c) = if t { (cols, rows) } else { (rows, cols) };
    let v = reshape(x, &[batch, r, c]);
    let (sb, sr, sc) = (if batch == 1 { 0 } else { v.strides[0] }, v.strides[1], v.strides[2]);
    let m = if t {
        MatView { offset: v.offset, batch: sb, row: sc, col: sr }
    } else {
        MatView { offset: v.offset, batch: sb, row: sr, col: sc }
    };
    (v, m)
}

/// The product `g` describes (see `Gemm`), `[batch·m, n]` contiguous (callers reshape).
pub fn gemm(a: &GpuArray, b: &GpuArray, g: &Gemm) -> GpuArray {
    let gpu = a.gpu().clone();
    let &Gemm { batch, m, k: kk, n, transpose_a: ta, transpose_b: tb, b_batched: b_batch } = g;
    let (av, am) = mat_view(a, batch, m, kk, ta);
    let (bv, bm) = mat_view(b, if b_batch { batch } else { 1 }, kk, n, tb);
    // Output tiles per matrix: 64 x 64 (tiled), 16 x 16 (tiled, for a thin
    // product), 8 rows x 256 columns (SIMD).
    let tuning = gpu.tuning();
    let (kernel, tile) = match tuning {
        Tuning::Gpu if m.min(n) <= GEMM_SMALL_SIDE && n.div_ceil(16) <= 65535 => (&k::GEMM_SMALL, [16, 16]),
        Tuning::Gpu => (&k::GEMM, [64, 64]),
        Tuning::Software => (&k::GEMM_SIMD, [8, 256]),
    };
    let tiles = m.div_ceil(tile[0]) * n.div_ceil(tile[1]);
    let busy = if tuning == Tuning::Gpu { GEMM_BUSY } else { 1 };
    let (splits, k_chunk) = k_splits(batch * tiles, kk, busy);
    // The largest batch in the engine's models is batch x heads of attention.
    assert!(batch * splits <= 65535, "GPU matmul: more than 65535 matrices in one batch");
    let p = GemmParams {
        k_chunk: k_chunk as u32,
        splits: splits as u32,
        m: m as u32,
        n: n as u32,
        k: kk as u32,
        a_offset: am.offset as u32,
        a_batch: am.batch as u32,
        a_row: am.row as u32,
        a_col: am.col as u32,
        b_offset: bm.offset as u32,
        b_batch: bm.batch as u32,
        b_row: bm.row as u32,
        b_col: bm.col as u32,
    };
    // Split products go to partial sums [batch, splits, m, n], added after.
    let dst = gpu.alloc(&[batch * splits * m, n]);
    let workgroups = batch * splits * tiles;
    // Elements each workgroup reads: its tile's rows of A and columns of B
    // over its share of K.
    let cost = Cost::new(k_chunk, workgroups * (tile[0] + tile[1]) * k_chunk, batch * splits * m * n);
    assert!(m.div_ceil(tile[0]) <= 65535, "GPU matmul: {m} rows is more than one dispatch holds");
    assert!(n.div_ceil(tile[1]) <= 65535, "GPU matmul: {n} columns is more than one dispatch holds");
    let groups = [n.div_ceil(tile[1]) as u32, m.div_ceil(tile[0]) as u32, (batch * splits) as u32];
    gpu.dispatch(kernel, &p, &[av.raw(), bv.raw(), dst.raw()], groups, cost);
    if splits == 1 {
        return dst;
    }
    reshape(&sum_to(&reshape(&dst, &[batch, splits, m, n]), &[batch, 1, m, n]), &[batch * m, n])
}

/// How a product splits K: `(splits, k_chunk)`. A split never adds more than
/// `GEMM_MAX_K` terms; a product of few output tiles splits further (down to
/// `GEMM_MIN_K` terms each) until about `busy` workgroups run (`GEMM_BUSY` on
/// a GPU: a weight gradient has a small `m × n` and K = batch × pixels).
fn k_splits(tiles: usize, k: usize, busy: usize) -> (usize, usize) {
    let needed = k.div_ceil(GEMM_MAX_K);
    let busy = busy.div_ceil(tiles.max(1)).min(k / GEMM_MIN_K);
    let splits = needed.max(busy).max(1);
    let k_chunk = k.div_ceil(splits).div_ceil(16) * 16;
    (k.div_ceil(k_chunk.max(1)).max(1), k_chunk.max(1))
}

/// Products with at most this many rows or columns take `GEMM_SMALL`'s tiles.
const GEMM_SMALL_SIDE: usize = 32;

/// The longest run of K one GEMM invocation adds (and of terms one `SUM`
/// invocation adds on a software adapter).
const GEMM_MAX_K: usize = 4096;
/// The shortest run of K worth a split of its own.
const GEMM_MIN_K: usize = 512;
/// Workgroups that keep a GPU busy (a few per compute unit of a large GPU).
const GEMM_BUSY: usize = 512;

fn window_params(g: &Window, first: usize, images: usize, count: usize) -> WindowParams {
    let u = |v: usize| v as u32;
    WindowParams {
        c: u(g.c),
        h: u(g.h),
        w: u(g.w),
        kh: u(g.kh),
        kw: u(g.kw),
        sh: u(g.sh),
        sw: u(g.sw),
        pad_top: u(g.pad[0]),
        pad_left: u(g.pad[2]),
        oh: u(g.out_h()),
        ow: u(g.out_w()),
        first: u(first),
        images: u(images),
        count: u(count),
    }
}

/// Windows that can hold one input pixel (the loop of a pooling gradient).
fn windows_per_pixel(g: &Window) -> usize {
    g.kh.div_ceil(g.sh) * g.kw.div_ceil(g.sw)
}

/// Images per convolution chunk, so that the unfolded patches fit one binding
/// and stay under 64 MB, and their columns within one dispatch of the GEMM's
/// 64-wide tiles (the weight gradient's long sum over columns is split by the
/// GEMM, `k_splits`).
fn conv_chunk(gpu: &Gpu, g: &Window) -> usize {
    let hw = g.out_h() * g.out_w();
    let per_image = g.c * g.kh * g.kw * hw;
    let cap = (gpu.max_elements() / 2).min(1 << 24);
    (cap / per_image.max(1)).min(MAX_CONV_COLUMNS / hw.max(1)).clamp(1, g.n.max(1))
}

/// Columns of one convolution chunk at most (65,535 workgroups of 64).
const MAX_CONV_COLUMNS: usize = 65535 * 64;

/// The windows of images `first..first + images` of contiguous `x` unfolded
/// into columns `[C·KH·KW, images·OH·OW]`.
fn im2col(x: &GpuArray, g: &Window, first: usize, images: usize) -> GpuArray {
    let (ckk, ncols) = (g.c * g.kh * g.kw, images * g.out_h() * g.out_w());
    let cols = x.gpu().alloc(&[ckk, ncols]);
    let n = ckk * ncols;
    let p = window_params(g, first, images, n);
    x.gpu().dispatch(&k::IM2COL, &p, &[x.raw(), cols.raw()], grid(n), Cost::elementwise(n, 1));
    cols
}

/// Convolution: `x` [N,C,H,W], `w` [F, C·KH·KW], `bias` [F] -> [N,F,OH,OW];
/// im2col + GEMM in chunks of images.
pub fn conv2d_forward(x: &GpuArray, w: &GpuArray, bias: Option<&GpuArray>, g: &Window) -> GpuArray {
    let x = contiguous(x);
    let gpu = x.gpu().clone();
    let f = w.shape[0];
    let ckk = g.c * g.kh * g.kw;
    let hw = g.out_h() * g.out_w();
    let out = gpu.alloc(&[g.n, f, g.out_h(), g.out_w()]);
    let chunk = conv_chunk(&gpu, g);
    for n0 in (0..g.n).step_by(chunk) {
        let imgs = chunk.min(g.n - n0);
        let ncols = imgs * hw;
        let cols = im2col(&x, g, n0, imgs);
        let t = gemm(w, &cols, &Gemm::matrix(f, ckk, ncols)); // [F, imgs·HW]
                                                              // [F, imgs, HW] -> out[n0.., F, HW]
        copy_into(&gpu, t.raw(), &[imgs, f, hw], &[hw, ncols, 1], 0, out.raw(), &[f * hw, hw, 1], n0 * f * hw);
    }
    match bias {
        Some(b) => binary(MapOp::Add, &out, &reshape(b, &[f, 1, 1])),
        None => out,
    }
}

/// Convolution backward: the gradients of the input (if `want_dx`), the weight
/// [F, C·KH·KW] and the bias [F].
pub fn conv2d_backward(
    x: &GpuArray,
    w: &GpuArray,
    dy: &GpuArray,
    g: &Window,
    want_dx: bool,
) -> (Option<GpuArray>, GpuArray, GpuArray) {
    let (x, dy) = (contiguous(x), contiguous(dy));
    let gpu = x.gpu().clone();
    let f = w.shape[0];
    let ckk = g.c * g.kh * g.kw;
    let hw = g.out_h() * g.out_w();
    let dx = want_dx.then(|| gpu.alloc(&[g.n, g.c, g.h, g.w]));
    let mut dw: Option<GpuArray> = None;
    let chunk = conv_chunk(&gpu, g);
    for n0 in (0..g.n).step_by(chunk) {
        let imgs = chunk.min(g.n - n0);
        let ncols = imgs * hw;
        // dy[n0.., F, HW] -> dm [F, imgs·HW]
        let dm = gpu.alloc(&[f, ncols]);
        copy_into(&gpu, dy.raw(), &[imgs, f, hw], &[f * hw, hw, 1], n0 * f * hw, dm.raw(), &[hw, ncols, 1], 0);
        let cols = im2col(&x, g, n0, imgs);
        let part = gemm(&dm, &cols, &Gemm::matrix(f, ncols, ckk).b_transposed());
        dw = Some(match dw {
            None => part,
            Some(sum) => binary(MapOp::Add, &sum, &part),
        });
        if let Some(dx) = &dx {
            let dcols = gemm(w, &dm, &Gemm::matrix(ckk, f, ncols).a_transposed()); // [CKK, imgs·HW]
            let count = imgs * g.c * g.h * g.w;
            let cost = Cost::new(g.kh * g.kw, count * g.kh * g.kw, count);
            gpu.dispatch(&k::COL2IM, &window_params(g, n0, imgs, count), &[dcols.raw(), dx.raw()], grid(count), cost);
        }
    }
    let db = sum_to(&dy, &[f, 1, 1]);
    (dx, dw.expect("a batch of at least one image"), reshape(&db, &[f]))
}

pub fn max_pool_forward(x: &GpuArray, g: &Window) -> (GpuArray, Rc<Buffer>) {
    let x = contiguous(x);
    let gpu = x.gpu();
    let out = gpu.alloc(&[g.n, g.c, g.out_h(), g.out_w()]);
    let n = out.len();
    let arg = gpu.buffer(n);
    let cost = Cost::new(g.kh * g.kw, n * g.kh * g.kw, 2 * n);
    gpu.dispatch(&k::MAX_POOL, &window_params(g, 0, g.n * g.c, n), &[x.raw(), out.raw(), arg.raw()], grid(n), cost);
    (out, arg)
}

pub fn max_pool_backward(dy: &GpuArray, arg: &Buffer, g: &Window) -> GpuArray {
    let dy = contiguous(dy);
    let gpu = dy.gpu();
    let dx = gpu.alloc(&[g.n, g.c, g.h, g.w]);
    let n = dx.len();
    let cost = Cost::new(windows_per_pixel(g), 2 * n * windows_per_pixel(g), n);
    gpu.dispatch(
        &k::MAX_POOL_BACKWARD,
        &window_params(g, 0, g.n * g.c, n),
        &[dy.raw(), arg.raw(), dx.raw()],
        grid(n),
        cost,
    );
    dx
}

pub fn avg_pool_forward(x: &GpuArray, g: &Window) -> GpuArray {
    let x = contiguous(x);
    let gpu = x.gpu();
    let out = gpu.alloc(&[g.n, g.c, g.out_h(), g.out_w()]);
    let n = out.len();
    let cost = Cost::new(g.kh * g.kw, n * g.kh * g.kw, n);
    gpu.dispatch(&k::AVG_POOL, &window_params(g, 0, g.n * g.c, n), &[x.raw(), out.raw()], grid(n), cost);
    out
}

pub fn avg_pool_backward(dy: &GpuArray, g: &Window) -> GpuArray {
    let dy = contiguous(dy);
    let gpu = dy.gpu();
    let dx = gpu.alloc(&[g.n, g.c, g.h, g.w]);
    let n = dx.len();
    let cost = Cost::new(windows_per_pixel(g), n * windows_per_pixel(g), n);
    gpu.dispatch(&k::AVG_POOL_BACKWARD, &window_params(g, 0, g.n * g.c, n), &[dy.raw(), dx.raw()], grid(n), cost);
    dx
}

/// One LSTM step: `[h | c']` from the gates' pre-activations and the cell state.
pub fn lstm_cell(gates: &GpuArray, c: &GpuArray) -> GpuArray {
    let (gates, c) = (contiguous(gates), contiguous(c));
    let gpu = gates.gpu();
    let (n, h) = (c.shape[0], c.shape[1]);
    let out = gpu.alloc(&[n, 2 * h]);
    gpu.dispatch(
        &k::LSTM_CELL,
        &CellParams { count: (n * h) as u32, units: h as u32 },
        &[gates.raw(), c.raw(), out.raw()],
        grid(n * h),
        Cost::elementwise(n * h, 6),
    );
    out
}

/// The LSTM step's gradients of the gates and of the cell state, from `d`.
pub fn lstm_cell_backward(gates: &GpuArray, c: &GpuArray, out: &GpuArray, d: &GpuArray) -> (GpuArray, GpuArray) {
    let (gates, c, out, d) = (contiguous(gates), contiguous(c), contiguous(out), contiguous(d));
    let gpu = gates.gpu();
    let (n, h) = (c.shape[0], c.shape[1]);
    let (da, dc) = (gpu.alloc(&[n, 4 * h]), gpu.alloc(&[n, h]));
    gpu.dispatch(
        &k::LSTM_CELL_BACKWARD,
        &CellParams { count: (n * h) as u32, units: h as u32 },
        &[gates.raw(), c.raw(), out.raw(), d.raw(), da.raw(), dc.raw()],
        grid(n * h),
        Cost::elementwise(n * h, 11),
    );
    (da, dc)
}

/// One GRU step: h' from both gate pre-activations and the hidden state.
pub fn gru_cell(gi: &GpuArray, gh: &GpuArray, h: &GpuArray) -> GpuArray {
    let (gi, gh, h) = (contiguous(gi), contiguous(gh), contiguous(h));
    let gpu = gi.gpu();
    let (n, u) = (h.shape[0], h.shape[1]);
    let out = gpu.alloc(&[n, u]);
    gpu.dispatch(
        &k::GRU_CELL,
        &CellParams { count: (n * u) as u32, units: u as u32 },
        &[gi.raw(), gh.raw(), h.raw(), out.raw()],
        grid(n * u),
        Cost::elementwise(n * u, 7),
    );
    out
}

/// The GRU step's gradients of both gate pre-activations and of the hidden state.
pub fn gru_cell_backward(gi: &GpuArray, gh: &GpuArray, h: &GpuArray, d: &GpuArray) -> (GpuArray, GpuArray, GpuArray) {
    let (gi, gh, h, d) = (contiguous(gi), contiguous(gh), contiguous(h), contiguous(d));
    let gpu = gi.gpu();
    let (n, u) = (h.shape[0], h.shape[1]);
    let (da, db, dh) = (gpu.alloc(&[n, 3 * u]), gpu.alloc(&[n, 3 * u]), gpu.alloc(&[n, u]));
    gpu.dispatch(
        &k::GRU_CELL_BACKWARD,
        &CellParams { count: (n * u) as u32, units: u as u32 },
        &[gi.raw(), gh.raw(), h.raw(), d.raw(), da.raw(), db.raw(), dh.raw()],
        grid(n * u),
        Cost::elementwise(n * u, 13),
    );
    (da, db, dh)
}

/// Softmax over the last axis.
pub fn softmax(x: &GpuArray) -> GpuArray {
    let x = contiguous(x);
    let gpu = x.gpu();
    let classes = *x.shape.last().unwrap();
    let rows = x.len() / classes.max(1);
    let y = gpu.alloc(&x.shape);
    gpu.dispatch(
        &k::SOFTMAX,
        &RowsParams { rows: rows as u32, classes: classes as u32 },
        &[x.raw(), y.raw()],
        grid(rows),
        Cost::new(3 * classes, 2 * rows * classes, rows * classes),
    );
    y
}

pub fn softmax_backward(g: &GpuArray, y: &GpuArray) -> GpuArray {
    let g = contiguous(g);
    let gpu = g.gpu();
    let classes = *y.shape.last().unwrap();
    let rows = y.len() / classes.max(1);
    let dx = gpu.alloc(&y.shape);
    gpu.dispatch(
        &k::SOFTMAX_BACKWARD,
        &RowsParams { rows: rows as u32, classes: classes as u32 },
        &[g.raw(), y.raw(), dx.raw()],
        grid(rows),
        Cost::new(2 * classes, 4 * rows * classes, rows * classes),
    );
    dx
}

/// Mean softmax cross-entropy of rows of `x` against `labels` (uploaded u32s):
/// the loss (a scalar array) and the probabilities.
pub fn cross_entropy(x: &GpuArray, labels: &Buffer) -> (GpuArray, GpuArray) {
    let x = contiguous(x);
    let gpu = x.gpu();
    let classes = *x.shape.last().unwrap();
    let rows = x.len() / classes.max(1);
    let probs = gpu.alloc(&x.shape);
    let row_loss = gpu.alloc(&[rows]);
    gpu.dispatch(
        &k::CROSS_ENTROPY,
        &RowsParams { rows: rows as u32, classes: classes as u32 },
        &[x.raw(), labels.raw(), probs.raw(), row_loss.raw()],
        grid(rows),
        Cost::new(3 * classes, 3 * rows * classes + 2 * rows, rows * (classes + 1)),
    );
    // Each row's share first, then the sum: a sum of losses near 1e37 would
    // overflow f32 before the division (the CPU sums in f64).
    let shares = unary(MapOp::Scale, &row_loss, 1.0 / rows.max(1) as f32);
    (sum_to(&shares, &[]), probs)
}

/// `(probs - onehot) · g / rows`, `g` a scalar array.
pub fn cross_entropy_backward(probs: &GpuArray, labels: &Buffer, g: &GpuArray) -> GpuArray {
    let gpu = probs.gpu();
    let g = contiguous(g);
    let classes = *probs.shape.last().unwrap();
    let rows = probs.len() / classes.max(1);
    let dx = gpu.alloc(&probs.shape);
    let n = dx.len();
    gpu.dispatch(
        &k::CROSS_ENTROPY_BACKWARD,
        &LossGradParams { count: n as u32, classes: classes as u32, rows: rows as u32 },
        &[probs.raw(), labels.raw(), g.raw(), dx.raw()],
        grid(n),
        Cost::elementwise(n, 3),
    );
    dx
}

/// Rows of `table` [rows, d] picked by `ids` (uploaded u32s) -> [count, d].
pub fn gather_rows(table: &GpuArray, ids: &Buffer, count: usize) -> GpuArray {
    let table = contiguous(table);
    let gpu = table.gpu();
    let d = table.shape[1];
    let out = gpu.alloc(&[count, d]);
    let n = out.len();
    gpu.dispatch(
        &k::GATHER_ROWS,
        &LookupParams { count: n as u32, width: d as u32, ids: count as u32, chunk: 0 },
        &[table.raw(), ids.raw(), out.raw()],
        grid(n),
        Cost::elementwise(n, 2),
    );
    out
}

/// The gradient of `gather_rows`: each id's gradient row added to its table
/// row. Each invocation looks through one chunk of `SCATTER_CHUNK` ids for its
/// table entry; the chunks' partial sums are added after.
pub fn scatter_rows(g: &GpuArray, ids: &Buffer, count: usize, rows: usize) -> GpuArray {
    let g = contiguous(g);
    let gpu = g.gpu();
    let d = g.shape[1];
    // At most 16M partial sums: a large vocabulary takes longer chunks.
    let chunks = count.div_ceil(SCATTER_CHUNK).min((1 << 24) / (rows * d).max(1)).max(1);
    let chunk = count.div_ceil(chunks).max(1);
    let chunks = count.div_ceil(chunk).max(1);
    let partial = gpu.alloc(&[chunks, rows, d]);
    let n = partial.len();
    gpu.dispatch(
        &k::SCATTER_ROWS,
        &LookupParams { count: n as u32, width: d as u32, ids: count as u32, chunk: chunk as u32 },
        &[g.raw(), ids.raw(), partial.raw()],
        grid(n),
        Cost::new(chunk, n * chunk, n),
    );
    sum_to(&partial, &[rows, d])
}

/// Ids one invocation of `SCATTER_ROWS` looks through.
const SCATTER_CHUNK: usize = 256;

/// Keras SGD with momentum: the new `(w, v)`, in new arrays (the old ones
/// stay as they were: a diverging step is undone by keeping them, with no
/// copy); the gradient's non-finite entries are added to counter `count.1`.
pub fn sgd_update(
    w: &GpuArray,
    v: &GpuArray,
    g: &GpuArray,
    lr: f32,
    momentum: f32,
    (counter, slot): (&Buffer, usize),
) -> (GpuArray, GpuArray) {
    let (w, v, g) = (contiguous(w), contiguous(v), contiguous(g));
    let gpu = w.gpu();
    let (w_out, v_out) = (gpu.alloc(&w.shape), gpu.alloc(&w.shape));
    let n = w.len();
    let p = SgdParams { count: n as u32, lr, momentum, slot: slot as u32 };
    let buffers = [w.raw(), v.raw(), g.raw(), w_out.raw(), v_out.raw(), counter.raw()];
    gpu.dispatch(&k::SGD, &p, &buffers, grid(n), Cost::new(1, 3 * n, 2 * n));
    (w_out, v_out)
}

/// Keras Adam (`update` is `Update::Adam`): the new `(w, m, v)`, in new arrays
/// (as `sgd_update`, which also says what `count` is).
pub fn adam_update(
    w: &GpuArray,
    m: &GpuArray,
    v: &GpuArray,
    g: &GpuArray,
    update: crate::backend::Update,
    (counter, slot): (&Buffer, usize),
) -> (GpuArray, GpuArray, GpuArray) {
    let crate::backend::Update::Adam { alpha, beta_1, beta_2, epsilon } = update else {
        panic!("adam_update takes an Adam update")
    };
    let (w, m, v, g) = (contiguous(w), contiguous(m), contiguous(v), contiguous(g));
    let gpu = w.gpu();
    let (w_out, m_out, v_out) = (gpu.alloc(&w.shape), gpu.alloc(&w.shape), gpu.alloc(&w.shape));
    let n = w.len();
    let buffers = [w.raw(), m.raw(), v.raw(), g.raw(), w_out.raw(), m_out.raw(), v_out.raw(), counter.raw()];
    let p = AdamParams { count: n as u32, alpha, beta_1, beta_2, epsilon, slot: slot as u32 };
    gpu.dispatch(&k::ADAM, &p, &buffers, grid(n), Cost::new(1, 4 * n, 3 * n));
    (w_out, m_out, v_out)
}

/// A zeroed buffer of `n` u32 counters.
pub fn counters(gpu: &Rc<Gpu>, n: usize) -> Rc<Buffer> {
    let b = gpu.buffer(n);
    gpu.dispatch(&k::FILL, &FillParams { count: n as u32, value: 0.0 }, &[b.raw()], grid(n), Cost::elementwise(n, 0));
    b
}

/// Adds the number of NaN/infinite elements of `x` to counter `slot`.
pub fn count_nonfinite(x: &GpuArray, counter: &Buffer, slot: usize) {
    let x = contiguous(x);
    let n = x.len();
    x.gpu().dispatch(
        &k::COUNT_NONFINITE,
        &CountParams { count: n as u32, classes: 0, slot: slot as u32 },
        &[x.raw(), counter.raw()],
        grid(n),
        Cost::new(1, n, 0),
    );
}

/// Adds the number of rows of `x` whose first maximum is the label to counter `slot`.
pub fn count_correct(x: &GpuArray, labels: &Buffer, counter: &Buffer, slot: usize) {
    let x = contiguous(x);
    let classes = *x.shape.last().unwrap();
    let rows = x.len() / classes.max(1);
    x.gpu().dispatch(
        &k::COUNT_CORRECT,
        &CountParams { count: rows as u32, classes: classes as u32, slot: slot as u32 },
        &[x.raw(), labels.raw(), counter.raw()],
        grid(rows),
        Cost::new(classes, rows * (classes + 1), 0),
    );
}
