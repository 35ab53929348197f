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
    if (k >= p(P_COUNT)) { return; }
    let u = p(P_UNITS);
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
