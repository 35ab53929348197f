@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> h: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(P_COUNT)) { return; }
    let u = p(P_UNITS);
    let base = (k / u) * 3u * u + k % u;
    let q = gru_gates(a[base], a[base + u], a[base + 2u * u], b[base], b[base + u], b[base + 2u * u]);
    out[k] = q.z + q.y * (h[k] - q.z);
}
