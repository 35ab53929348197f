// The windows of a pooling (no padding) that hold input pixel (iy, ix):
// output rows x..y and columns z..w, from oy·sh <= iy < oy·sh + kh.
fn window_range(iy: u32, ix: u32) -> vec4<u32> {
    var y0 = 0u;
    if (iy >= p(P_KH)) { y0 = (iy - p(P_KH)) / p(P_SH) + 1u; }
    var x0 = 0u;
    if (ix >= p(P_KW)) { x0 = (ix - p(P_KW)) / p(P_SW) + 1u; }
    let y1 = min(iy / p(P_SH) + 1u, p(P_OH));
    let x1 = min(ix / p(P_SW) + 1u, p(P_OW));
    return vec4<u32>(y0, max(y0, y1), x0, max(x0, x1));
}
