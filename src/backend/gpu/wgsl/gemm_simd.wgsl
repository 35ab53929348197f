@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let M = p(P_M);
    let N = p(P_N);
    let K = p(P_K);
    let row0 = wg.y * 8u;
    let j0 = wg.x * 256u + li;
    let b = wg.z / p(P_SPLITS);
    let kbeg = (wg.z % p(P_SPLITS)) * p(P_K_CHUNK);
    let kend = min(K, kbeg + p(P_K_CHUNK));
    let abase = p(P_A_OFFSET) + b * p(P_A_BATCH);
    let bbase = p(P_B_OFFSET) + b * p(P_B_BATCH);
    let sr = p(P_A_ROW);
    let sc = p(P_A_COL);
    let br = p(P_B_ROW);
    let bc = p(P_B_COL);
    var ra: array<u32, 8>;
    for (var r = 0u; r < 8u; r++) { ra[r] = abase + min(row0 + r, M - 1u) * sr; }
    let c0 = bbase + min(j0, N - 1u) * bc;
    let c1 = bbase + min(j0 + 64u, N - 1u) * bc;
    let c2 = bbase + min(j0 + 128u, N - 1u) * bc;
    let c3 = bbase + min(j0 + 192u, N - 1u) * bc;
    var acc: array<vec4<f32>, 8>;
    for (var k = kbeg; k < kend; k++) {
        let kb = k * br;
        let bv = vec4<f32>(B[c0 + kb], B[c1 + kb], B[c2 + kb], B[c3 + kb]);
        let ka = k * sc;
        acc[0] = fma(vec4<f32>(A[ra[0] + ka]), bv, acc[0]);
        acc[1] = fma(vec4<f32>(A[ra[1] + ka]), bv, acc[1]);
        acc[2] = fma(vec4<f32>(A[ra[2] + ka]), bv, acc[2]);
        acc[3] = fma(vec4<f32>(A[ra[3] + ka]), bv, acc[3]);
        acc[4] = fma(vec4<f32>(A[ra[4] + ka]), bv, acc[4]);
        acc[5] = fma(vec4<f32>(A[ra[5] + ka]), bv, acc[5]);
        acc[6] = fma(vec4<f32>(A[ra[6] + ka]), bv, acc[6]);
        acc[7] = fma(vec4<f32>(A[ra[7] + ka]), bv, acc[7]);
    }
    for (var r = 0u; r < 8u; r++) {
        let i = row0 + r;
        if (i >= M) { break; }
        for (var c = 0u; c < 4u; c++) {
            let j = j0 + 64u * c;
            if (j < N) {
                let o = (wg.z * M + i) * N + j;
                C[o] = acc[r][c];
            }
        }
    }
}
