@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read> out: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read_write> da: array<f32>;
@group(0) @binding(6) var<storage, read_write> dc: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(P_COUNT)) { return; }
    let h = p(P_UNITS);
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
