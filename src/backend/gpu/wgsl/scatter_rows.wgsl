@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> dt: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    // Entry (row, j) of the table, from ids chunk * CHUNK.. of the batch.
    let per_chunk = p(P_COUNT) / ((p(P_IDS) + p(P_CHUNK) - 1u) / p(P_CHUNK));
    let chunk = i / per_chunk;
    let e = i % per_chunk;
    let row = e / p(P_WIDTH);
    let j = e % p(P_WIDTH);
    let start = chunk * p(P_CHUNK);
    let end = min(start + p(P_CHUNK), p(P_IDS));
    var acc = 0.0;
    for (var r = start; r < end; r++) {
        if (ids[r] == row) { acc += g[r * p(P_WIDTH) + j]; }
    }
    dt[i] = acc;
}
