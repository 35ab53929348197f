@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let gi = g[i];
    let nm = m[i] + (gi - m[i]) * (1.0 - pf(P_BETA_1));
    let nv = v[i] + (gi * gi - v[i]) * (1.0 - pf(P_BETA_2));
    m[i] = nm;
    v[i] = nv;
    w[i] = w[i] - pf(P_ALPHA) * nm / (sqrt(nv) + pf(P_EPSILON));
}
