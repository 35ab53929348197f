@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> dt: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let row = i / p(P_WIDTH);
    let j = i % p(P_WIDTH);
    var acc = 0.0;
    for (var r = 0u; r < p(P_IDS); r++) {
        if (ids[r] == row) { acc += g[r * p(P_WIDTH) + j]; }
    }
    dt[i] = acc;
}
