@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(P_ROWS)) { return; }
    let n = p(P_CLASSES);
    let o = r * n;
    var m = bitcast<f32>(0xff7fffffu);
    for (var c = 0u; c < n; c++) { m = max(m, x[o + c]); }
    var s = 0.0;
    for (var c = 0u; c < n; c++) { let e = exp(x[o + c] - m); y[o + c] = e; s += e; }
    let inv = 1.0 / s;
    for (var c = 0u; c < n; c++) { y[o + c] = y[o + c] * inv; }
}
