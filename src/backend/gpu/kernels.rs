//! The WGSL compute kernels, one `.wgsl` file each under `wgsl/`. Each is
//! compiled once per device (see `Gpu::pipeline`) and takes its sizes, strides
//! and scalars from one 128-byte uniform block holding its family's `params`
//! struct (`p(P_F)` reads field `f`, `pf(P_F)` an f32 field), so a kernel
//! serves every shape without recompiling.
//!
//! Elementwise kernels run 256 threads per workgroup over a 2-d grid of
//! workgroups (`flat` gives the element), because one dimension of a dispatch
//! holds at most 65535 workgroups. N-d kernels read shapes padded to 6 axes.

use std::marker::PhantomData;

use super::params::*;

/// A kernel: its name (the pipeline cache key), its WGSL body and, as a type,
/// the parameters it reads (`Gpu::dispatch` takes exactly those).
pub struct Kernel<P> {
    pub name: &'static str,
    pub body: &'static str,
    params: PhantomData<fn() -> P>,
}

impl<P> Kernel<P> {
    const fn new(name: &'static str, body: &'static str) -> Self {
        Kernel { name, body, params: PhantomData }
    }
}

/// A kernel whatever its parameters: what the pipeline cache compiles.
pub trait AnyKernel {
    fn name(&self) -> &'static str;
    /// The full WGSL source: the prelude, the parameters' names, the body.
    fn source(&self) -> String;
}

impl<P: Params> AnyKernel for Kernel<P> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn source(&self) -> String {
        format!("{PRELUDE}{}{}", P::wgsl_names(), self.body)
    }
}

pub const PRELUDE: &str = r#"
struct Params { v: array<vec4<u32>, 8>, }
@group(0) @binding(0) var<uniform> P: Params;
fn p(k: u32) -> u32 { return P.v[k >> 2u][k & 3u]; }
fn pf(k: u32) -> f32 { return bitcast<f32>(p(k)); }
fn flat(wg: vec3<u32>, li: u32) -> u32 { return (wg.y * 65535u + wg.x) * 256u + li; }
fn fast_tanh(x0: f32) -> f32 {
    if (abs(x0) < 4e-4) { return x0; }
    let x = clamp(x0, -7.905311, 7.905311);
    let x2 = x * x;
    var q = -2.7607685e-16;
    q = q * x2 + 2.0001879e-13;
    q = q * x2 - 8.6046715e-11;
    q = q * x2 + 5.122297e-8;
    q = q * x2 + 1.4857224e-5;
    q = q * x2 + 6.3726193e-4;
    q = q * x2 + 4.8935246e-3;
    let d = ((1.1982584e-6 * x2 + 1.1853471e-4) * x2 + 2.2684346e-3) * x2 + 4.893525e-3;
    return x * q / d;
}
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// The LSTM gates (i, f, g, o) from their pre-activations.
fn lstm_gates(ai: f32, af: f32, ag: f32, ao: f32) -> vec4<f32> {
    return vec4<f32>(sigmoid(ai), sigmoid(af), fast_tanh(ag), sigmoid(ao));
}
// The GRU gates (r, z, n) from the input's (a) and hidden state's (b) pre-activations.
fn gru_gates(ar: f32, az: f32, an: f32, br: f32, bz: f32, bn: f32) -> vec3<f32> {
    let r = sigmoid(ar + br);
    return vec3<f32>(r, sigmoid(az + bz), fast_tanh(an + r * bn));
}
const GELU_C: f32 = 0.7978846;
fn gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + fast_tanh(GELU_C * (x + 0.044715 * x * x * x))); }
fn gelu_d(x: f32) -> f32 {
    let t = fast_tanh(GELU_C * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
}
"#;

/// `dst[doff + i·dstr] = src[soff + i·sstr]` over an n-d index `i` of `shape`:
/// permutes, slices, broadcasts and concatenations are all this copy.
/// offset, 19 destination offset, 20 element count.
pub const COPY: Kernel<CopyParams> = Kernel::new("copy", include_str!("wgsl/copy.wgsl"));

pub const FILL: Kernel<FillParams> = Kernel::new("fill", include_str!("wgsl/fill.wgsl"));

/// Elementwise ops with broadcasting, on strided inputs; the output is contiguous.
/// broadcast), 18 offset of `a`, 19 offset of `b`, 20 count, 21 op, 22 scalar.
/// Ops 0-8 are binary (add, sub, mul, div, and the gradients of relu, tanh,
/// sigmoid, gelu and sqrt taking the output gradient in `a`); 16+ are unary on `a`.
pub const MAP: Kernel<MapParams> = Kernel::new("map", include_str!("wgsl/map.wgsl"));

/// Sums over axes, in chunks: thread `i` adds chunk `i % chunks` (at most
/// `size` terms) of output element `i / chunks` (an index over the output shape,
/// the input's with reduced axes as 1), whose `R` terms differ from it on the
/// reduced axes. With more than one chunk a second pass adds the partial sums.
/// Chunks keep every invocation short (lavapipe stops loops after 65535
/// iterations, and one thread per output would leave a GPU idle).
/// strides, 18 input offset, 20 outputs x chunks, 21 R, 22 chunk size, 23 chunks.
pub const SUM: Kernel<SumParams> = Kernel::new("sum", include_str!("wgsl/sum.wgsl"));

/// Maximum over the middle axis of a contiguous [outer, L, inner] array, with
/// the position of the first maximum. Words: 0 outer·inner, 1 L, 2 inner.
pub const MAX_AXIS: Kernel<AxisParams> = Kernel::new("max_axis", include_str!("wgsl/max_axis.wgsl"));

/// The gradient of `MAX_AXIS`: `dx` (zeroed) gets each output gradient at its
/// maximum.
pub const MAX_AXIS_BACKWARD: Kernel<AxisParams> =
    Kernel::new("max_axis_backward", include_str!("wgsl/max_axis_backward.wgsl"));

/// Batched `C = A @ B (+ beta C)` on strided operands, tiled through workgroup
/// memory: 16x16 threads each compute a 4x4 block of a 64x64 tile, over K in
/// steps of 16. Words: 0 M, 1 N, 2 K, 3-6 A offset/batch/row/column strides,
/// 7-10 the same for B, 11 beta (f32 bits); C is contiguous [batch, M, N].
pub const GEMM: Kernel<GemmParams> = Kernel::new("gemm", include_str!("wgsl/gemm.wgsl"));

/// `GEMM` for software adapters (lavapipe, SwiftShader), which run a
/// workgroup's invocations as SIMD lanes on a CPU: no workgroup memory and no
/// barriers; each invocation keeps an 8x4 block in registers, its four columns 64
/// apart so that neighbouring lanes read neighbouring elements of B, and the
/// four elements of A it needs are the same for every lane.
pub const GEMM_SIMD: Kernel<GemmParams> = Kernel::new("gemm_simd", include_str!("wgsl/gemm_simd.wgsl"));

/// Unfolds the windows of images `n0..n0+images` of x [N,C,H,W] into cols
/// [C·KH·KW, images·OH·OW] (padding as zeros), as `cpu::im2col`.
pub const IM2COL: Kernel<WindowParams> = Kernel::new("im2col", include_str!("wgsl/im2col.wgsl"));

/// The adjoint of `IM2COL`, gathered per input pixel (no atomics): pixel
/// (img, c, iy, ix) of dx adds every column entry that was read from it.
pub const COL2IM: Kernel<WindowParams> = Kernel::new("col2im", include_str!("wgsl/col2im.wgsl"));

/// Max pooling (no padding): each output keeps the first maximum of its window
/// and where it was in the plane. Words as the window words; 12 counts planes.
pub const MAX_POOL: Kernel<WindowParams> = Kernel::new("max_pool", include_str!("wgsl/max_pool.wgsl"));

/// The gradient of `MAX_POOL`, gathered per input pixel from the windows that
/// chose it.
pub const MAX_POOL_BACKWARD: Kernel<WindowParams> =
    Kernel::new("max_pool_backward", include_str!("wgsl/max_pool_backward.wgsl"));

/// Average pooling (no padding).
pub const AVG_POOL: Kernel<WindowParams> = Kernel::new("avg_pool", include_str!("wgsl/avg_pool.wgsl"));

pub const AVG_POOL_BACKWARD: Kernel<WindowParams> =
    Kernel::new("avg_pool_backward", include_str!("wgsl/avg_pool_backward.wgsl"));

/// One LSTM step, one thread per (row, unit): `out` [N, 2H] = [h | c'] from
/// the gates' pre-activations [N, 4H] (i, f, g, o) and `c` [N, H].
pub const LSTM_CELL: Kernel<CellParams> = Kernel::new("lstm_cell", include_str!("wgsl/lstm_cell.wgsl"));

/// The LSTM step's gradients, one thread per (row, unit): `da` [N, 4H] and
/// `dc` [N, H] from `d`, the gradient of `out` = [h | c'].
pub const LSTM_CELL_BACKWARD: Kernel<CellParams> =
    Kernel::new("lstm_cell_backward", include_str!("wgsl/lstm_cell_backward.wgsl"));

/// One GRU step, one thread per (row, unit): h' [N, H] from the input's and
/// the hidden state's gate pre-activations [N, 3H] (r, z, n) and `h` [N, H].
pub const GRU_CELL: Kernel<CellParams> = Kernel::new("gru_cell", include_str!("wgsl/gru_cell.wgsl"));

/// The GRU step's gradients, one thread per (row, unit): `da`, `db` [N, 3H]
/// and `dh` [N, H] from `d`, the gradient of h'.
pub const GRU_CELL_BACKWARD: Kernel<CellParams> =
    Kernel::new("gru_cell_backward", include_str!("wgsl/gru_cell_backward.wgsl"));

/// Softmax of contiguous rows, one thread per row. Words: 0 rows, 1 classes.
pub const SOFTMAX: Kernel<RowsParams> = Kernel::new("softmax", include_str!("wgsl/softmax.wgsl"));

/// dx = y (g - sum(g y)) per row.
pub const SOFTMAX_BACKWARD: Kernel<RowsParams> =
    Kernel::new("softmax_backward", include_str!("wgsl/softmax_backward.wgsl"));

/// Softmax cross-entropy per row (log-sum-exp), keeping the probabilities for
/// the backward pass. Words: 0 rows, 1 classes.
pub const CROSS_ENTROPY: Kernel<RowsParams> = Kernel::new("cross_entropy", include_str!("wgsl/cross_entropy.wgsl"));

/// d loss / d logits = (probs - onehot) · g / rows. Words: 0 count, 1 classes, 2 rows.
pub const CROSS_ENTROPY_BACKWARD: Kernel<LossGradParams> =
    Kernel::new("cross_entropy_backward", include_str!("wgsl/cross_entropy_backward.wgsl"));

/// Rows of a [rows, d] table picked by ids. Words: 0 count, 1 d.
pub const GATHER_ROWS: Kernel<LookupParams> = Kernel::new("gather_rows", include_str!("wgsl/gather_rows.wgsl"));

/// The gradient of `GATHER_ROWS`, gathered per table entry over the ids.
pub const SCATTER_ROWS: Kernel<LookupParams> = Kernel::new("scatter_rows", include_str!("wgsl/scatter_rows.wgsl"));

/// Keras SGD with momentum, in place: v = momentum v - lr g; w += v.
pub const SGD: Kernel<SgdParams> = Kernel::new("sgd", include_str!("wgsl/sgd.wgsl"));

/// Keras Adam, in place. Words: 0 count, 1 alpha (bias-corrected lr), 2 beta_1,
/// 3 beta_2, 4 epsilon.
pub const ADAM: Kernel<AdamParams> = Kernel::new("adam", include_str!("wgsl/adam.wgsl"));

/// Counts non-finite elements into word `slot` of a counter buffer.
pub const COUNT_NONFINITE: Kernel<CountParams> =
    Kernel::new("count_nonfinite", include_str!("wgsl/count_nonfinite.wgsl"));

/// Counts rows whose first maximum is the label into word `slot` of a counter
/// buffer. Words: 0 rows, 1 classes, 2 counter slot.
pub const COUNT_CORRECT: Kernel<CountParams> = Kernel::new("count_correct", include_str!("wgsl/count_correct.wgsl"));

/// Every kernel, for tests that compile them all.
pub const ALL: &[&dyn AnyKernel] = &[
    &COPY,
    &FILL,
    &MAP,
    &SUM,
    &MAX_AXIS,
    &MAX_AXIS_BACKWARD,
    &GEMM,
    &GEMM_SIMD,
    &IM2COL,
    &COL2IM,
    &MAX_POOL,
    &MAX_POOL_BACKWARD,
    &AVG_POOL,
    &AVG_POOL_BACKWARD,
    &SOFTMAX,
    &SOFTMAX_BACKWARD,
    &CROSS_ENTROPY,
    &CROSS_ENTROPY_BACKWARD,
    &GATHER_ROWS,
    &SCATTER_ROWS,
    &SGD,
    &ADAM,
    &COUNT_NONFINITE,
    &COUNT_CORRECT,
    &LSTM_CELL,
    &LSTM_CELL_BACKWARD,
    &GRU_CELL,
    &GRU_CELL_BACKWARD,
];
