@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let chunk = i % p(P_CHUNKS);
    var rem = i / p(P_CHUNKS);
    var base = p(P_OFFSET);
    for (var k = 5u; k < 6u; k = k - 1u) {
        let idx = rem % p(P_SHAPE + k);
        rem = rem / p(P_SHAPE + k);
        base += idx * p(P_STRIDES + k);
    }
    let start = chunk * p(P_CHUNK);
    let end = min(start + p(P_CHUNK), p(P_TERMS));
    // Compensated (Kahan) summation: bias gradients add many terms that nearly
    // cancel, and their sign decides Adam's step.
    var acc = 0.0;
    var lost = 0.0;
    for (var r = start; r < end; r++) {
        // The index of term r over the reduced axes, unrolled (no inner loop).
        var rr = r;
        var o = base;
        o += (rr % p(P_REDUCED + 5u)) * p(P_STRIDES + 5u); rr = rr / p(P_REDUCED + 5u);
        o += (rr % p(P_REDUCED + 4u)) * p(P_STRIDES + 4u); rr = rr / p(P_REDUCED + 4u);
        o += (rr % p(P_REDUCED + 3u)) * p(P_STRIDES + 3u); rr = rr / p(P_REDUCED + 3u);
        o += (rr % p(P_REDUCED + 2u)) * p(P_STRIDES + 2u); rr = rr / p(P_REDUCED + 2u);
        o += (rr % p(P_REDUCED + 1u)) * p(P_STRIDES + 1u); rr = rr / p(P_REDUCED + 1u);
        o += rr * p(P_STRIDES);
        let y = src[o] - lost;
        let t = acc + y;
        lost = (t - acc) - y;
        acc = t;
    }
    dst[i] = acc;
}
