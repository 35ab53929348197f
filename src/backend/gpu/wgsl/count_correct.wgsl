@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> counter: array<atomic<u32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let r = flat(wg, li);
    if (r >= p(P_COUNT)) { return; }
    let n = p(P_CLASSES);
    var best = x[r * n];
    var bi = 0u;
    for (var c = 1u; c < n; c++) {
        let v = x[r * n + c];
        if (v > best) { best = v; bi = c; }
    }
    if (bi == labels[r]) { atomicAdd(&counter[p(P_SLOT)], 1u); }
}
