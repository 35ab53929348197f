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
        format!("{PRELUDE}{}{}{}", P::wgsl_names(), P::wgsl_helpers(), self.body)
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

/// Declares each kernel (its name is also its file under `wgsl/`) and `ALL`,
/// the list of every one, from a single list.
macro_rules! kernels {
    ($($(#[$doc:meta])* $name:ident: $params:ty = $file:literal;)*) => {
        $($(#[$doc])* pub const $name: Kernel<$params> = Kernel::new($file, include_str!(concat!("wgsl/", $file, ".wgsl")));)*

        /// Every kernel, for `Gpu::warm_up` and tests that compile them all.
        pub const ALL: &[&dyn AnyKernel] = &[$(&$name),*];
    };
}

kernels! {
    /// `dst[doff + i·dstr] = src[soff + i·sstr]` over an n-d index `i` of `shape`:
    /// permutes, slices, broadcasts and concatenations are all this copy.
    COPY: CopyParams = "copy";

    FILL: FillParams = "fill";

    /// Elementwise ops with broadcasting, on strided inputs (stride 0 where
    /// broadcast); the output is contiguous.
    /// Ops 0-8 are binary (add, sub, mul, div, and the gradients of relu, tanh,
    /// sigmoid, gelu and sqrt taking the output gradient in `a`); 16+ are unary on `a`.
    MAP: MapParams = "map";

    /// Sums over axes, one thread per output over all its terms (compensated):
    /// for sums of a few terms each (at most `SUM_SERIAL_TERMS`).
    SUM: ReduceParams = "sum";

    /// Sums over axes, one workgroup of 64 per output and chunk of terms:
    /// each thread adds every 64th term of the chunk (neighbouring threads
    /// read neighbouring terms where the reduced axis is contiguous), then the
    /// workgroup adds its 64 sums as a tree. With more than one chunk per
    /// output a second pass adds the partial sums.
    SUM_TREE: ReduceParams = "sum_tree";

    /// Maximum over the middle axis of a contiguous [outer, L, inner] array, with
    /// the position of the first maximum.
    MAX_AXIS: AxisParams = "max_axis";

    /// The gradient of `MAX_AXIS`: `dx` (zeroed) gets each output gradient at its
    /// maximum.
    MAX_AXIS_BACKWARD: AxisParams = "max_axis_backward";

    /// Batched `C = A @ B` on strided operands, tiled through workgroup
    /// memory: 16x16 threads each compute a 4x4 block of a 64x64 tile, over
    /// their split's share of K in steps of 16 (workgroup z = matrix × split);
    /// C is contiguous [batch, splits, M, N] (partial products, added after).
    GEMM: GemmParams = "gemm";

    /// `GEMM` for products with few rows or columns (at most 32: attention's
    /// per-head products, a convolution's filters), where 64 x 64 tiles would
    /// stand mostly empty: 16 x 16 threads each compute one element of a
    /// 16 x 16 tile.
    GEMM_SMALL: GemmParams = "gemm_small";

    /// `GEMM` for software adapters (lavapipe, SwiftShader), which run a
    /// workgroup's invocations as SIMD lanes on a CPU: no workgroup memory and no
    /// barriers; each invocation keeps an 8x4 block in registers, its four columns 64
    /// apart so that neighbouring lanes read neighbouring elements of B, and the
    /// four elements of A it needs are the same for every lane.
    GEMM_SIMD: GemmParams = "gemm_simd";

    /// Unfolds the windows of images `n0..n0+images` of x [N,C,H,W] into cols
    /// [C·KH·KW, images·OH·OW] (padding as zeros), as `cpu::im2col`.
    IM2COL: WindowParams = "im2col";

    /// The adjoint of `IM2COL`, gathered per input pixel (no atomics): pixel
    /// (img, c, iy, ix) of dx adds every column entry that was read from it.
    COL2IM: WindowParams = "col2im";

    /// Max pooling (no padding): each output keeps the first maximum of its window
    /// and where it was in the plane.
    MAX_POOL: WindowParams = "max_pool";

    /// The gradient of `MAX_POOL`, gathered per input pixel from the windows that
    /// chose it.
    MAX_POOL_BACKWARD: WindowParams = "max_pool_backward";

    /// Average pooling (no padding).
    AVG_POOL: WindowParams = "avg_pool";

    AVG_POOL_BACKWARD: WindowParams = "avg_pool_backward";

    /// One LSTM step, one thread per (row, unit): `out` [N, 2H] = [h | c'] from
    /// the gates' pre-activations [N, 4H] (i, f, g, o) and `c` [N, H].
    LSTM_CELL: CellParams = "lstm_cell";

    /// The LSTM step's gradients, one thread per (row, unit): `da` [N, 4H] and
    /// `dc` [N, H] from `d`, the gradient of `out` = [h | c'].
    LSTM_CELL_BACKWARD: CellParams = "lstm_cell_backward";

    /// One GRU step, one thread per (row, unit): h' [N, H] from the input's and
    /// the hidden state's gate pre-activations [N, 3H] (r, z, n) and `h` [N, H].
    GRU_CELL: CellParams = "gru_cell";

    /// The GRU step's gradients, one thread per (row, unit): `da`, `db` [N, 3H]
    /// and `dh` [N, H] from `d`, the gradient of h'.
    GRU_CELL_BACKWARD: CellParams = "gru_cell_backward";

    /// Softmax of contiguous rows, one thread per row.
    SOFTMAX: RowsParams = "softmax";

    /// dx = y (g - sum(g y)) per row.
    SOFTMAX_BACKWARD: RowsParams = "softmax_backward";

    /// Softmax cross-entropy per row (log-sum-exp), keeping the probabilities for
    /// the backward pass.
    CROSS_ENTROPY: RowsParams = "cross_entropy";

    /// d loss / d logits = (probs - onehot) · g / rows.
    CROSS_ENTROPY_BACKWARD: LossGradParams = "cross_entropy_backward";

    /// Rows of a [rows, d] table picked by ids.
    GATHER_ROWS: LookupParams = "gather_rows";

    /// The gradient of `GATHER_ROWS`, gathered per table entry over one chunk
    /// of the ids: partial sums `[chunks, rows, width]`, added after.
    SCATTER_ROWS: LookupParams = "scatter_rows";

    /// Keras SGD with momentum into new arrays: v' = momentum v - lr g;
    /// w' = w + v'; counts the gradient's non-finite entries.
    SGD: SgdParams = "sgd";

    /// Keras Adam into new arrays (w', m', v'); counts the gradient's
    /// non-finite entries.
    ADAM: AdamParams = "adam";

    /// Counts non-finite elements into word `slot` of a counter buffer.
    COUNT_NONFINITE: CountParams = "count_nonfinite";

    /// Counts rows whose first maximum is the label into word `slot` of a counter
    /// buffer.
    COUNT_CORRECT: CountParams = "count_correct";
}
