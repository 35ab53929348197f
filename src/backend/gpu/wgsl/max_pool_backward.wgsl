@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> arg: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let hw = p(P_H) * p(P_W);
    let ohw = p(P_OH) * p(P_OW);
    let plane = i / hw;
    let pos = i % hw;
    let iy = pos / p(P_W);
    let ix = pos % p(P_W);
    // Only the windows that can hold (iy, ix): oy·sh <= iy < oy·sh + kh.
    let r = window_range(iy, ix);
    var acc = 0.0;
    for (var oy = r.x; oy < r.y; oy++) {
        for (var ox = r.z; ox < r.w; ox++) {
            let o = plane * ohw + oy * p(P_OW) + ox;
            if (arg[o] == pos) { acc += dy[o]; }
        }
    }
    dx[i] = acc;
}
