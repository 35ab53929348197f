@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let ohw = p(P_OH) * p(P_OW);
    let plane = i / ohw;
    let oy = (i % ohw) / p(P_OW);
    let ox = i % p(P_OW);
    let base = plane * p(P_H) * p(P_W);
    var bi = oy * p(P_SH) * p(P_W) + ox * p(P_SW);
    var best = x[base + bi];
    for (var ki = 0u; ki < p(P_KH); ki++) {
        for (var kj = 0u; kj < p(P_KW); kj++) {
            let idx = (oy * p(P_SH) + ki) * p(P_W) + ox * p(P_SW) + kj;
            let v = x[base + idx];
            if (v > best) { best = v; bi = idx; }
        }
    }
    out[i] = best;
    arg[i] = bi;
}
