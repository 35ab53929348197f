@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
var<workgroup> As: array<f32, 256>;
var<workgroup> Bs: array<f32, 256>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let M = p(P_M);
    let N = p(P_N);
    let i = wg.y * 16u + lid.y;
    let j = wg.x * 16u + lid.x;
    let b = wg.z / p(P_SPLITS);
    let kbeg = (wg.z % p(P_SPLITS)) * p(P_K_CHUNK);
    let kend = min(p(P_K), kbeg + p(P_K_CHUNK));
    let abase = p(P_A_OFFSET) + b * p(P_A_BATCH);
    let bbase = p(P_B_OFFSET) + b * p(P_B_BATCH);
    var acc = 0.0;
    for (var k0 = kbeg; k0 < kend; k0 += 16u) {
        // Thread (y, x) loads A[i, k0 + x] and B[k0 + y, j].
        let ka = k0 + lid.x;
        var av = 0.0;
        if (i < M && ka < kend) { av = A[abase + i * p(P_A_ROW) + ka * p(P_A_COL)]; }
        As[lid.y * 16u + lid.x] = av;
        let kb = k0 + lid.y;
        var bv = 0.0;
        if (kb < kend && j < N) { bv = B[bbase + kb * p(P_B_ROW) + j * p(P_B_COL)]; }
        Bs[lid.y * 16u + lid.x] = bv;
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            acc = fma(As[lid.y * 16u + kk], Bs[kk * 16u + lid.x], acc);
        }
        workgroupBarrier();
    }
    if (i < M && j < N) {
        C[(wg.z * M + i) * N + j] = acc;
    }
}
