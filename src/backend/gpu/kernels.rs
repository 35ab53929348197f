//! The WGSL compute kernels. Each is compiled once per device (see `Gpu::pipeline`)
//! and takes its sizes, strides and scalars from one 128-byte uniform block
//! (`p(k)` reads word `k`, `pf(k)` the same word as an f32), so a kernel serves
//! every shape without recompiling.
//!
//! Elementwise kernels run 256 threads per workgroup over a 2-d grid of
//! workgroups (`flat` gives the element), because one dimension of a dispatch
//! holds at most 65535 workgroups. N-d kernels read shapes padded to 6 axes.

/// A kernel: its name (the pipeline cache key) and its WGSL body.
pub struct Kernel {
    pub name: &'static str,
    pub body: &'static str,
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
/// Words: 0-5 shape, 6-11 source strides, 12-17 destination strides, 18 source
/// offset, 19 destination offset, 20 element count.
pub const COPY: Kernel = Kernel {
    name: "copy",
    body: r#"
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(20u)) { return; }
    var rem = i;
    var s = p(18u);
    var d = p(19u);
    for (var k = 5u; k < 6u; k = k - 1u) {
        let idx = rem % p(k);
        rem = rem / p(k);
        s += idx * p(6u + k);
        d += idx * p(12u + k);
    }
    dst[d] = src[s];
}
"#,
};

/// Words: 0 count, 1 value (f32 bits).
pub const FILL: Kernel = Kernel {
    name: "fill",
    body: r#"
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i < p(0u)) { dst[i] = pf(1u); }
}
"#,
};

/// Elementwise ops with broadcasting, on strided inputs; the output is contiguous.
/// Words: 0-5 output shape, 6-11 strides of `a`, 12-17 strides of `b` (0 where
/// broadcast), 18 offset of `a`, 19 offset of `b`, 20 count, 21 op, 22 scalar.
/// Ops 0-8 are binary (add, sub, mul, div, and the gradients of relu, tanh,
/// sigmoid, gelu and sqrt taking the output gradient in `a`); 16+ are unary on `a`.
pub const MAP: Kernel = Kernel {
    name: "map",
    body: r#"
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(20u)) { return; }
    var rem = i;
    var ia = p(18u);
    var ib = p(19u);
    for (var k = 5u; k < 6u; k = k - 1u) {
        let idx = rem % p(k);
        rem = rem / p(k);
        ia += idx * p(6u + k);
        ib += idx * p(12u + k);
    }
    let x = a[ia];
    let y = b[ib];
    let s = pf(22u);
    var r = 0.0;
    switch p(21u) {
        case 0u: { r = x + y; }
        case 1u: { r = x - y; }
        case 2u: { r = x * y; }
        case 3u: { r = x / y; }
        case 4u: { r = select(0.0, x, y > 0.0); }
        case 5u: { r = x * (1.0 - y * y); }
        case 6u: { r = x * y * (1.0 - y); }
        case 7u: { r = x * gelu_d(y); }
        case 8u: { r = x / (2.0 * y); }
        case 16u: { r = exp(x); }
        case 17u: { r = log(x); }
        case 18u: { r = sqrt(x); }
        case 19u: { r = max(x, 0.0); }
        case 20u: { r = fast_tanh(x); }
        case 21u: { r = sigmoid(x); }
        case 22u: { r = gelu(x); }
        case 23u: { r = x * s; }
        case 24u: { r = x + s; }
        default: { r = x; }
    }
    out[i] = r;
}
"#,
};

/// Sums over axes, in chunks: thread `i` adds chunk `i % chunks` (at most
/// `size` terms) of output element `i / chunks` (an index over the output shape,
/// the input's with reduced axes as 1), whose `R` terms differ from it on the
/// reduced axes. With more than one chunk a second pass adds the partial sums.
/// Chunks keep every invocation short (lavapipe stops loops after 65535
/// iterations, and one thread per output would leave a GPU idle).
/// Words: 0-5 output shape, 6-11 reduced sizes (1 elsewhere), 12-17 input
/// strides, 18 input offset, 20 outputs x chunks, 21 R, 22 chunk size, 23 chunks.
pub const SUM: Kernel = Kernel {
    name: "sum",
    body: r#"
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(20u)) { return; }
    let chunk = i % p(23u);
    var rem = i / p(23u);
    var base = p(18u);
    for (var k = 5u; k < 6u; k = k - 1u) {
        let idx = rem % p(k);
        rem = rem / p(k);
        base += idx * p(12u + k);
    }
    let start = chunk * p(22u);
    let end = min(start + p(22u), p(21u));
    // Compensated (Kahan) summation: bias gradients add many terms that nearly
    // cancel, and their sign decides Adam's step.
    var acc = 0.0;
    var lost = 0.0;
    for (var r = start; r < end; r++) {
        // The index of term r over the reduced axes, unrolled (no inner loop).
        var rr = r;
        var o = base;
        o += (rr % p(11u)) * p(17u); rr = rr / p(11u);
        o += (rr % p(10u)) * p(16u); rr = rr / p(10u);
        o += (rr % p(9u)) * p(15u); rr = rr / p(9u);
        o += (rr % p(8u)) * p(14u); rr = rr / p(8u);
        o += (rr % p(7u)) * p(13u); rr = rr / p(7u);
        o += rr * p(12u);
        let y = src[o] - lost;
        let t = acc + y;
        lost = (t - acc) - y;
        acc = t;
    }
    dst[i] = acc;
}
"#,
};

/// Maximum over the middle axis of a contiguous [outer, L, inner] array, with
/// the position of the first maximum. Words: 0 outer·inner, 1 L, 2 inner.
pub const MAX_AXIS: Kernel = Kernel {
    name: "max_axis",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let L = p(1u);
    let inner = p(2u);
    let o = i / inner;
    let j = i % inner;
    var best = bitcast<f32>(0xff7fffffu);
    var bi = 0u;
    var first = true;
    for (var l = 0u; l < L; l++) {
        let v = x[(o * L + l) * inner + j];
        if (first || !(v <= best)) { best = v; bi = l; first = false; }
    }
    out[i] = best;
    arg[i] = bi;
}
"#,
};

/// The gradient of `MAX_AXIS`: `dx` (zeroed) gets each output gradient at its
/// maximum. Words as `MAX_AXIS`.
pub const MAX_AXIS_BACKWARD: Kernel = Kernel {
    name: "max_axis_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let inner = p(2u);
    dx[((i / inner) * p(1u) + arg[i]) * inner + i % inner] = g[i];
}
"#,
};

/// Batched `C = A @ B (+ beta C)` on strided operands, tiled through workgroup
/// memory: 16x16 threads each compute a 4x4 block of a 64x64 tile, over K in
/// steps of 16. Words: 0 M, 1 N, 2 K, 3-6 A offset/batch/row/column strides,
/// 7-10 the same for B, 11 beta (f32 bits); C is contiguous [batch, M, N].
pub const GEMM: Kernel = Kernel {
    name: "gemm",
    body: r#"
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let M = p(0u);
    let N = p(1u);
    let K = p(2u);
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let abase = p(3u) + wg.z * p(4u);
    let bbase = p(7u) + wg.z * p(8u);
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < K; k0 += 16u) {
        for (var l = 0u; l < 4u; l++) {
            let e = li + l * 256u;
            let kk = e / 64u;
            let ii = e % 64u;
            let gk = k0 + kk;
            var av = 0.0;
            if (row0 + ii < M && gk < K) { av = A[abase + (row0 + ii) * p(5u) + gk * p(6u)]; }
            As[e] = av;
            var bv = 0.0;
            if (gk < K && col0 + ii < N) { bv = B[bbase + gk * p(9u) + (col0 + ii) * p(10u)]; }
            Bs[e] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var r = 0u; r < 4u; r++) {
                ar[r] = As[kk * 64u + lid.y + 16u * r];
                br[r] = Bs[kk * 64u + lid.x + 16u * r];
            }
            for (var r = 0u; r < 4u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    acc[r * 4u + c] = fma(ar[r], br[c], acc[r * 4u + c]);
                }
            }
        }
        workgroupBarrier();
    }
    let beta = pf(11u);
    for (var r = 0u; r < 4u; r++) {
        let i = row0 + lid.y + 16u * r;
        for (var c = 0u; c < 4u; c++) {
            let j = col0 + lid.x + 16u * c;
            if (i < M && j < N) {
                let o = (wg.z * M + i) * N + j;
                var v = acc[r * 4u + c];
                if (beta != 0.0) { v += beta * C[o]; }
                C[o] = v;
            }
        }
    }
}
"#,
};

/// `GEMM` for software adapters (lavapipe, SwiftShader), which run a
/// workgroup's invocations as SIMD lanes on a CPU: no workgroup memory and no
/// barriers; each invocation keeps an 8x4 block in registers, its four columns 64
/// apart so that neighbouring lanes read neighbouring elements of B, and the
/// four elements of A it needs are the same for every lane. Same words as `GEMM`.
pub const GEMM_SIMD: Kernel = Kernel {
    name: "gemm_simd",
    body: r#"
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let M = p(0u);
    let N = p(1u);
    let K = p(2u);
    let row0 = wg.y * 8u;
    let j0 = wg.x * 256u + li;
    let abase = p(3u) + wg.z * p(4u);
    let bbase = p(7u) + wg.z * p(8u);
    let sr = p(5u);
    let sc = p(6u);
    let br = p(9u);
    let bc = p(10u);
    var ra: array<u32, 8>;
    for (var r = 0u; r < 8u; r++) { ra[r] = abase + min(row0 + r, M - 1u) * sr; }
    let c0 = bbase + min(j0, N - 1u) * bc;
    let c1 = bbase + min(j0 + 64u, N - 1u) * bc;
    let c2 = bbase + min(j0 + 128u, N - 1u) * bc;
    let c3 = bbase + min(j0 + 192u, N - 1u) * bc;
    var acc: array<vec4<f32>, 8>;
    for (var k = 0u; k < K; k++) {
        let kb = k * br;
        let b = vec4<f32>(B[c0 + kb], B[c1 + kb], B[c2 + kb], B[c3 + kb]);
        let ka = k * sc;
        acc[0] = fma(vec4<f32>(A[ra[0] + ka]), b, acc[0]);
        acc[1] = fma(vec4<f32>(A[ra[1] + ka]), b, acc[1]);
        acc[2] = fma(vec4<f32>(A[ra[2] + ka]), b, acc[2]);
        acc[3] = fma(vec4<f32>(A[ra[3] + ka]), b, acc[3]);
        acc[4] = fma(vec4<f32>(A[ra[4] + ka]), b, acc[4]);
        acc[5] = fma(vec4<f32>(A[ra[5] + ka]), b, acc[5]);
        acc[6] = fma(vec4<f32>(A[ra[6] + ka]), b, acc[6]);
        acc[7] = fma(vec4<f32>(A[ra[7] + ka]), b, acc[7]);
    }
    let beta = pf(11u);
    for (var r = 0u; r < 8u; r++) {
        let i = row0 + r;
        if (i >= M) { break; }
        for (var c = 0u; c < 4u; c++) {
            let j = j0 + 64u * c;
            if (j < N) {
                let o = (wg.z * M + i) * N + j;
                var v = acc[r][c];
                if (beta != 0.0) { v += beta * C[o]; }
                C[o] = v;
            }
        }
    }
}
"#,
};

// Convolution and pooling kernels share their window words: 0 C, 1 H, 2 W,
// 3 KH, 4 KW, 5 SH, 6 SW, 7 top padding, 8 left padding, 9 OH, 10 OW, 11 first
// image, 12 images (planes, for pooling), 13 element count.

/// Unfolds the windows of images `n0..n0+images` of x [N,C,H,W] into cols
/// [C·KH·KW, images·OH·OW] (padding as zeros), as `cpu::im2col`.
pub const IM2COL: Kernel = Kernel {
    name: "im2col",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(13u)) { return; }
    let ohw = p(9u) * p(10u);
    let ncols = p(12u) * ohw;
    let col = i % ncols;
    let row = i / ncols;
    let kj = row % p(4u);
    let t = row / p(4u);
    let ki = t % p(3u);
    let c = t / p(3u);
    let img = col / ohw;
    let rest = col % ohw;
    let iy = i32((rest / p(10u)) * p(5u) + ki) - i32(p(7u));
    let ix = i32((rest % p(10u)) * p(6u) + kj) - i32(p(8u));
    var v = 0.0;
    if (iy >= 0 && ix >= 0 && u32(iy) < p(1u) && u32(ix) < p(2u)) {
        v = x[((p(11u) + img) * p(0u) + c) * p(1u) * p(2u) + u32(iy) * p(2u) + u32(ix)];
    }
    cols[i] = v;
}
"#,
};

/// The adjoint of `IM2COL`, gathered per input pixel (no atomics): pixel
/// (img, c, iy, ix) of dx adds every column entry that was read from it.
pub const COL2IM: Kernel = Kernel {
    name: "col2im",
    body: r#"
@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(13u)) { return; }
    let hw = p(1u) * p(2u);
    let ohw = p(9u) * p(10u);
    let ncols = p(12u) * ohw;
    let ix = i % p(2u);
    let iy = (i / p(2u)) % p(1u);
    let c = (i / hw) % p(0u);
    let img = i / (hw * p(0u));
    var acc = 0.0;
    for (var ki = 0u; ki < p(3u); ki++) {
        let ty = i32(iy + p(7u)) - i32(ki);
        if (ty < 0 || u32(ty) % p(5u) != 0u) { continue; }
        let oy = u32(ty) / p(5u);
        if (oy >= p(9u)) { continue; }
        for (var kj = 0u; kj < p(4u); kj++) {
            let tx = i32(ix + p(8u)) - i32(kj);
            if (tx < 0 || u32(tx) % p(6u) != 0u) { continue; }
            let ox = u32(tx) / p(6u);
            if (ox >= p(10u)) { continue; }
            let row = (c * p(3u) + ki) * p(4u) + kj;
            acc += cols[row * ncols + img * ohw + oy * p(10u) + ox];
        }
    }
    dx[(p(11u) + img) * p(0u) * hw + c * hw + iy * p(2u) + ix] = acc;
}
"#,
};

/// Max pooling (no padding): each output keeps the first maximum of its window
/// and where it was in the plane. Words as the window words; 12 counts planes.
pub const MAX_POOL: Kernel = Kernel {
    name: "max_pool",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(13u)) { return; }
    let ohw = p(9u) * p(10u);
    let plane = i / ohw;
    let oy = (i % ohw) / p(10u);
    let ox = i % p(10u);
    let base = plane * p(1u) * p(2u);
    var bi = oy * p(5u) * p(2u) + ox * p(6u);
    var best = x[base + bi];
    for (var ki = 0u; ki < p(3u); ki++) {
        for (var kj = 0u; kj < p(4u); kj++) {
            let idx = (oy * p(5u) + ki) * p(2u) + ox * p(6u) + kj;
            let v = x[base + idx];
            if (v > best) { best = v; bi = idx; }
        }
    }
    out[i] = best;
    arg[i] = bi;
}
"#,
};

/// The gradient of `MAX_POOL`, gathered per input pixel from the windows that
/// chose it.
pub const MAX_POOL_BACKWARD: Kernel = Kernel {
    name: "max_pool_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(13u)) { return; }
    let hw = p(1u) * p(2u);
    let ohw = p(9u) * p(10u);
    let plane = i / hw;
    let pos = i % hw;
    let iy = pos / p(2u);
    let ix = pos % p(2u);
    var acc = 0.0;
    for (var oy = 0u; oy < p(9u); oy++) {
        if (oy * p(5u) > iy || oy * p(5u) + p(3u) <= iy) { continue; }
        for (var ox = 0u; ox < p(10u); ox++) {
            if (ox * p(6u) > ix || ox * p(6u) + p(4u) <= ix) { continue; }
            let o = plane * ohw + oy * p(10u) + ox;
            if (arg[o] == pos) { acc += dy[o]; }
        }
    }
    dx[i] = acc;
}
"#,
};

/// Average pooling (no padding). Words as `MAX_POOL`.
pub const AVG_POOL: Kernel = Kernel {
    name: "avg_pool",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(13u)) { return; }
    let ohw = p(9u) * p(10u);
    let plane = i / ohw;
    let oy = (i % ohw) / p(10u);
    let ox = i % p(10u);
    let base = plane * p(1u) * p(2u);
    var s = 0.0;
    for (var ki = 0u; ki < p(3u); ki++) {
        for (var kj = 0u; kj < p(4u); kj++) {
            s += x[base + (oy * p(5u) + ki) * p(2u) + ox * p(6u) + kj];
        }
    }
    out[i] = s / f32(p(3u) * p(4u));
}
"#,
};

pub const AVG_POOL_BACKWARD: Kernel = Kernel {
    name: "avg_pool_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(13u)) { return; }
    let hw = p(1u) * p(2u);
    let ohw = p(9u) * p(10u);
    let plane = i / hw;
    let iy = (i % hw) / p(2u);
    let ix = i % p(2u);
    var acc = 0.0;
    for (var oy = 0u; oy < p(9u); oy++) {
        if (oy * p(5u) > iy || oy * p(5u) + p(3u) <= iy) { continue; }
        for (var ox = 0u; ox < p(10u); ox++) {
            if (ox * p(6u) > ix || ox * p(6u) + p(4u) <= ix) { continue; }
            acc += dy[plane * ohw + oy * p(10u) + ox];
        }
    }
    dx[i] = acc / f32(p(3u) * p(4u));
}
"#,
};

/// One LSTM step, one thread per (row, unit): `out` [N, 2H] = [h | c'] from
/// the gates' pre-activations [N, 4H] (i, f, g, o) and `c` [N, H].
/// Words: 0 N·H, 1 H.
pub const LSTM_CELL: Kernel = Kernel {
    name: "lstm_cell",
    body: r#"
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(0u)) { return; }
    let h = p(1u);
    let r = k / h;
    let j = k % h;
    let b = r * 4u * h + j;
    let q = lstm_gates(a[b], a[b + h], a[b + 2u * h], a[b + 3u * h]);
    let c2 = q.y * c[k] + q.x * q.z;
    out[r * 2u * h + j] = q.w * fast_tanh(c2);
    out[r * 2u * h + h + j] = c2;
}
"#,
};

/// The LSTM step's gradients, one thread per (row, unit): `da` [N, 4H] and
/// `dc` [N, H] from `d`, the gradient of `out` = [h | c']. Words as `LSTM_CELL`.
pub const LSTM_CELL_BACKWARD: Kernel = Kernel {
    name: "lstm_cell_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read> out: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> da: array<f32>;
@group(0) @binding(6) var<storage, read_write> dc: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(0u)) { return; }
    let h = p(1u);
    let r = k / h;
    let j = k % h;
    let b = r * 4u * h + j;
    let q = lstm_gates(a[b], a[b + h], a[b + 2u * h], a[b + 3u * h]);
    let i = q.x;
    let f = q.y;
    let g = q.z;
    let o = q.w;
    let tc = fast_tanh(out[r * 2u * h + h + j]);
    let dh = d[r * 2u * h + j];
    let dc2 = d[r * 2u * h + h + j] + dh * o * (1.0 - tc * tc);
    da[b] = dc2 * g * i * (1.0 - i);
    da[b + h] = dc2 * c[k] * f * (1.0 - f);
    da[b + 2u * h] = dc2 * i * (1.0 - g * g);
    da[b + 3u * h] = dh * tc * o * (1.0 - o);
    dc[k] = dc2 * f;
}
"#,
};

/// One GRU step, one thread per (row, unit): h' [N, H] from the input's and
/// the hidden state's gate pre-activations [N, 3H] (r, z, n) and `h` [N, H].
/// Words: 0 N·H, 1 H.
pub const GRU_CELL: Kernel = Kernel {
    name: "gru_cell",
    body: r#"
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> h: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(0u)) { return; }
    let u = p(1u);
    let base = (k / u) * 3u * u + k % u;
    let q = gru_gates(a[base], a[base + u], a[base + 2u * u], b[base], b[base + u], b[base + 2u * u]);
    out[k] = q.z + q.y * (h[k] - q.z);
}
"#,
};

/// The GRU step's gradients, one thread per (row, unit): `da`, `db` [N, 3H]
/// and `dh` [N, H] from `d`, the gradient of h'. Words as `GRU_CELL`.
pub const GRU_CELL_BACKWARD: Kernel = Kernel {
    name: "gru_cell_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> h: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> da: array<f32>;
@group(0) @binding(6) var<storage, read_write> db: array<f32>;
@group(0) @binding(7) var<storage, read_write> dh: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(0u)) { return; }
    let u = p(1u);
    let base = (k / u) * 3u * u + k % u;
    let q = gru_gates(a[base], a[base + u], a[base + 2u * u], b[base], b[base + u], b[base + 2u * u]);
    let r = q.x;
    let z = q.y;
    let c = q.z;
    let g = d[k];
    let dn = g * (1.0 - z) * (1.0 - c * c);
    let dz = g * (h[k] - c) * z * (1.0 - z);
    let dr = dn * b[base + 2u * u] * r * (1.0 - r);
    da[base] = dr;
    da[base + u] = dz;
    da[base + 2u * u] = dn;
    db[base] = dr;
    db[base + u] = dz;
    db[base + 2u * u] = dn * r;
    dh[k] = g * z;
}
"#,
};

/// Softmax of contiguous rows, one thread per row. Words: 0 rows, 1 classes.
pub const SOFTMAX: Kernel = Kernel {
    name: "softmax",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(0u)) { return; }
    let n = p(1u);
    let o = r * n;
    var m = bitcast<f32>(0xff7fffffu);
    for (var c = 0u; c < n; c++) { m = max(m, x[o + c]); }
    var s = 0.0;
    for (var c = 0u; c < n; c++) { let e = exp(x[o + c] - m); y[o + c] = e; s += e; }
    let inv = 1.0 / s;
    for (var c = 0u; c < n; c++) { y[o + c] = y[o + c] * inv; }
}
"#,
};

/// dx = y (g - sum(g y)) per row. Words as `SOFTMAX`.
pub const SOFTMAX_BACKWARD: Kernel = Kernel {
    name: "softmax_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(0u)) { return; }
    let n = p(1u);
    let o = r * n;
    var dot = 0.0;
    for (var c = 0u; c < n; c++) { dot += g[o + c] * y[o + c]; }
    for (var c = 0u; c < n; c++) { dx[o + c] = y[o + c] * (g[o + c] - dot); }
}
"#,
};

/// Softmax cross-entropy per row (log-sum-exp), keeping the probabilities for
/// the backward pass. Words: 0 rows, 1 classes.
pub const CROSS_ENTROPY: Kernel = Kernel {
    name: "cross_entropy",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(0u)) { return; }
    let n = p(1u);
    let o = r * n;
    var m = bitcast<f32>(0xff7fffffu);
    for (var c = 0u; c < n; c++) { m = max(m, x[o + c]); }
    var s = 0.0;
    for (var c = 0u; c < n; c++) { s += exp(x[o + c] - m); }
    let inv = 1.0 / s;
    for (var c = 0u; c < n; c++) { probs[o + c] = exp(x[o + c] - m) * inv; }
    row_loss[r] = m + log(s) - x[o + labels[r]];
}
"#,
};

/// d loss / d logits = (probs - onehot) · g / rows. Words: 0 count, 1 classes, 2 rows.
pub const CROSS_ENTROPY_BACKWARD: Kernel = Kernel {
    name: "cross_entropy_backward",
    body: r#"
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let r = i / p(1u);
    let hot = select(0.0, 1.0, i % p(1u) == labels[r]);
    dx[i] = (probs[i] - hot) * g[0] / f32(p(2u));
}
"#,
};

/// Rows of a [rows, d] table picked by ids. Words: 0 count, 1 d.
pub const GATHER_ROWS: Kernel = Kernel {
    name: "gather_rows",
    body: r#"
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    out[i] = table[ids[i / p(1u)] * p(1u) + i % p(1u)];
}
"#,
};

/// The gradient of `GATHER_ROWS`, gathered per table entry over the ids.
/// Words: 0 table entries, 1 d, 2 number of ids.
pub const SCATTER_ROWS: Kernel = Kernel {
    name: "scatter_rows",
    body: r#"
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> dt: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let row = i / p(1u);
    let j = i % p(1u);
    var acc = 0.0;
    for (var r = 0u; r < p(2u); r++) {
        if (ids[r] == row) { acc += g[r * p(1u) + j]; }
    }
    dt[i] = acc;
}
"#,
};

/// Keras SGD with momentum, in place: v = momentum v - lr g; w += v.
/// Words: 0 count, 1 lr, 2 momentum.
pub const SGD: Kernel = Kernel {
    name: "sgd",
    body: r#"
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let nv = pf(2u) * v[i] - pf(1u) * g[i];
    v[i] = nv;
    w[i] = w[i] + nv;
}
"#,
};

/// Keras Adam, in place. Words: 0 count, 1 alpha (bias-corrected lr), 2 beta_1,
/// 3 beta_2, 4 epsilon.
pub const ADAM: Kernel = Kernel {
    name: "adam",
    body: r#"
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let gi = g[i];
    let nm = m[i] + (gi - m[i]) * (1.0 - pf(2u));
    let nv = v[i] + (gi * gi - v[i]) * (1.0 - pf(3u));
    m[i] = nm;
    v[i] = nv;
    w[i] = w[i] - pf(1u) * nm / (sqrt(nv) + pf(4u));
}
"#,
};

/// Counts non-finite elements into word `p(1)` of a counter buffer.
/// Words: 0 count, 1 counter slot.
pub const COUNT_NONFINITE: Kernel = Kernel {
    name: "count_nonfinite",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> counter: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(0u)) { return; }
    let bits = bitcast<u32>(x[i]);
    if ((bits & 0x7f800000u) == 0x7f800000u) { atomicAdd(&counter[p(1u)], 1u); }
}
"#,
};

/// Counts rows whose first maximum is the label into word `p(2)` of a counter
/// buffer. Words: 0 rows, 1 classes, 2 counter slot.
pub const COUNT_CORRECT: Kernel = Kernel {
    name: "count_correct",
    body: r#"
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> counter: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(0u)) { return; }
    let n = p(1u);
    var best = x[r * n];
    var bi = 0u;
    for (var c = 1u; c < n; c++) {
        let v = x[r * n + c];
        if (v > best) { best = v; bi = c; }
    }
    if (bi == labels[r]) { atomicAdd(&counter[p(2u)], 1u); }
}
"#,
};

/// Every kernel, for tests that compile them all.
pub const ALL: &[&Kernel] = &[
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
];

/// The full source of a kernel.
pub fn source(k: &Kernel) -> String {
    format!("{PRELUDE}{}", k.body)
}
