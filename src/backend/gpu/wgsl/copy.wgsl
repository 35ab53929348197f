@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    var rem = i;
    var s = p(P_SRC_OFFSET);
    var d = p(P_DST_OFFSET);
    // One division per axis but the outermost (ops::collapse merged the rest).
    let first = 6u - p(P_NDIMS);
    for (var k = 5u; k > first; k = k - 1u) {
        let idx = rem % p(P_SHAPE + k);
        rem = rem / p(P_SHAPE + k);
        s += idx * p(P_SRC_STRIDES + k);
        d += idx * p(P_DST_STRIDES + k);
    }
    s += rem * p(P_SRC_STRIDES + first);
    d += rem * p(P_DST_STRIDES + first);
    dst[d] = src[s];
}
