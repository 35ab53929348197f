@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let L = p(P_LEN);
    let inner = p(P_INNER);
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
