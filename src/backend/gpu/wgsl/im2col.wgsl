@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let ohw = p(P_OH) * p(P_OW);
    let ncols = p(P_IMAGES) * ohw;
    let col = i % ncols;
    let row = i / ncols;
    let kj = row % p(P_KW);
    let t = row / p(P_KW);
    let ki = t % p(P_KH);
    let c = t / p(P_KH);
    let img = col / ohw;
    let rest = col % ohw;
    let iy = i32((rest / p(P_OW)) * p(P_SH) + ki) - i32(p(P_PAD_TOP));
    let ix = i32((rest % p(P_OW)) * p(P_SW) + kj) - i32(p(P_PAD_LEFT));
    var v = 0.0;
    if (iy >= 0 && ix >= 0 && u32(iy) < p(P_H) && u32(ix) < p(P_W)) {
        v = x[((p(P_FIRST) + img) * p(P_C) + c) * p(P_H) * p(P_W) + u32(iy) * p(P_W) + u32(ix)];
    }
    cols[i] = v;
}
