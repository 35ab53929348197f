// Where output `i` starts in the input (over the kept axes).
fn out_offset(i: u32) -> u32 {
    var rem = i;
    var o = p(P_OFFSET);
    for (var k = 5u; k < 6u; k = k - 1u) {
        o += (rem % p(P_OUT_SHAPE + k)) * p(P_OUT_STRIDES + k);
        rem = rem / p(P_OUT_SHAPE + k);
    }
    return o;
}
// Where term `r` of an output is, relative to its start: one division per
// reduced axis but the outermost (none for a single reduced axis).
fn term_offset(r: u32) -> u32 {
    let first = 6u - p(P_NRED);
    var rr = r;
    var o = 0u;
    for (var k = 5u; k > first; k = k - 1u) {
        o += (rr % p(P_RED_SHAPE + k)) * p(P_RED_STRIDES + k);
        rr = rr / p(P_RED_SHAPE + k);
    }
    return o + rr * p(P_RED_STRIDES + first);
}
