@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> w_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> v_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> counter: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    if ((bitcast<u32>(g[i]) & 0x7f800000u) == 0x7f800000u) { atomicAdd(&counter[p(P_SLOT)], 1u); }
    let nv = pf(P_MOMENTUM) * v[i] - pf(P_LR) * g[i];
    v_out[i] = nv;
    w_out[i] = w[i] + nv;
}
