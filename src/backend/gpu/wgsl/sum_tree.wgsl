@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    // Workgroup w sums chunk w % chunks of output w / chunks; a grid rounded
    // up past the last one idles through the barriers.
    let w = wg.y * 65535u + wg.x;
    let live = w < p(P_OUTPUTS) * p(P_CHUNKS);
    var acc = 0.0;
    var lost = 0.0;
    if (live) {
        let base = out_offset(w / p(P_CHUNKS));
        let start = (w % p(P_CHUNKS)) * p(P_CHUNK);
        let end = min(start + p(P_CHUNK), p(P_TERMS));
        for (var r = start + li; r < end; r += 64u) {
            let y = src[base + term_offset(r)] - lost;
            let t = acc + y;
            lost = (t - acc) - y;
            acc = t;
        }
    }
    part[li] = acc;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s >> 1u) {
        if (li < s) { part[li] += part[li + s]; }
        workgroupBarrier();
    }
    if (live && li == 0u) { dst[w] = part[0]; }
}
