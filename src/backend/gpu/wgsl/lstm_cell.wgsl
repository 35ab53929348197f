@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = flat(wg, li);
    if (k >= p(P_COUNT)) { return; }
    let h = p(P_UNITS);
    let r = k / h;
    let j = k % h;
    let b = r * 4u * h + j;
    let q = lstm_gates(a[b], a[b + h], a[b + 2u * h], a[b + 3u * h]);
    let c2 = q.y * c[k] + q.x * q.z;
    out[r * 2u * h + j] = q.w * fast_tanh(c2);
    out[r * 2u * h + h + j] = c2;
}
