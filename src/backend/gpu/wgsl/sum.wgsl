@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_OUTPUTS)) { return; }
    let base = out_offset(i);
    // Compensated (Kahan) summation: bias gradients add terms that nearly
    // cancel, and their sign decides Adam's step.
    var acc = 0.0;
    var lost = 0.0;
    for (var r = 0u; r < p(P_TERMS); r++) {
        let y = src[base + term_offset(r)] - lost;
        let t = acc + y;
        lost = (t - acc) - y;
        acc = t;
    }
    dst[i] = acc;
}
