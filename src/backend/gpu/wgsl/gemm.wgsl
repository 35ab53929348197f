@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
var<workgroup> As: array<f32, 1024>;
var<workgroup> Bs: array<f32, 1024>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let M = p(P_M);
    let N = p(P_N);
    let K = p(P_K);
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let b = wg.z / p(P_SPLITS);
    let kbeg = (wg.z % p(P_SPLITS)) * p(P_K_CHUNK);
    let kend = min(K, kbeg + p(P_K_CHUNK));
    let abase = p(P_A_OFFSET) + b * p(P_A_BATCH);
    let bbase = p(P_B_OFFSET) + b * p(P_B_BATCH);
    var acc: array<f32, 16>;
    for (var k0 = kbeg; k0 < kend; k0 += 16u) {
        for (var l = 0u; l < 4u; l++) {
            let e = li + l * 256u;
            let kk = e / 64u;
            let ii = e % 64u;
            let gk = k0 + kk;
            var av = 0.0;
            if (row0 + ii < M && gk < kend) { av = A[abase + (row0 + ii) * p(P_A_ROW) + gk * p(P_A_COL)]; }
            As[e] = av;
            var bv = 0.0;
            if (gk < kend && col0 + ii < N) { bv = B[bbase + gk * p(P_B_ROW) + (col0 + ii) * p(P_B_COL)]; }
            Bs[e] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var r = 0u; r < 4u; r++) {
                ar[r] = As[kk * 64u + lid.y + 16u * r];
                br[r] = Bs[kk * 64u + lid.x + 16u * r];
            }
            for (var r = 0u; r < 4u; r++) {
                for (var c = 0u; c < 4u; c++) {
                    acc[r * 4u + c] = fma(ar[r], br[c], acc[r * 4u + c]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let i = row0 + lid.y + 16u * r;
        for (var c = 0u; c < 4u; c++) {
            let j = col0 + lid.x + 16u * c;
            if (i < M && j < N) {
                let o = (wg.z * M + i) * N + j;
                C[o] = acc[r * 4u + c];
            }
        }
    }
}
