@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let hw = p(P_H) * p(P_W);
    let ohw = p(P_OH) * p(P_OW);
    let ncols = p(P_IMAGES) * ohw;
    let ix = i % p(P_W);
    let iy = (i / p(P_W)) % p(P_H);
    let c = (i / hw) % p(P_C);
    let img = i / (hw * p(P_C));
    var acc = 0.0;
    for (var ki = 0u; ki < p(P_KH); ki++) {
        let ty = i32(iy + p(P_PAD_TOP)) - i32(ki);
        if (ty < 0 || u32(ty) % p(P_SH) != 0u) { continue; }
        let oy = u32(ty) / p(P_SH);
        if (oy >= p(P_OH)) { continue; }
        for (var kj = 0u; kj < p(P_KW); kj++) {
            let tx = i32(ix + p(P_PAD_LEFT)) - i32(kj);
            if (tx < 0 || u32(tx) % p(P_SW) != 0u) { continue; }
            let ox = u32(tx) / p(P_SW);
            if (ox >= p(P_OW)) { continue; }
            let row = (c * p(P_KH) + ki) * p(P_KW) + kj;
            acc += cols[row * ncols + img * ohw + oy * p(P_OW) + ox];
        }
    }
    dx[(p(P_FIRST) + img) * p(P_C) * hw + c * hw + iy * p(P_W) + ix] = acc;
}
