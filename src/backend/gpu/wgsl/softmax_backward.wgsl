@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(P_ROWS)) { return; }
    let n = p(P_CLASSES);
    let o = r * n;
    var dot = 0.0;
    for (var c = 0u; c < n; c++) { dot += g[o + c] * y[o + c]; }
    for (var c = 0u; c < n; c++) { dx[o + c] = y[o + c] * (g[o + c] - dot); }
}
