@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let hw = p(P_H) * p(P_W);
    let ohw = p(P_OH) * p(P_OW);
    let plane = i / hw;
    let iy = (i % hw) / p(P_W);
    let ix = i % p(P_W);
    let r = window_range(iy, ix);
    var acc = 0.0;
    for (var oy = r.x; oy < r.y; oy++) {
        for (var ox = r.z; ox < r.w; ox++) {
            acc += dy[plane * ohw + oy * p(P_OW) + ox];
        }
    }
    dx[i] = acc / f32(p(P_KH) * p(P_KW));
}
