@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> counter: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let bits = bitcast<u32>(x[i]);
    if ((bits & 0x7f800000u) == 0x7f800000u) { atomicAdd(&counter[p(P_SLOT)], 1u); }
}
