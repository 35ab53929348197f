@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = flat(wg, li);
    if (i >= p(P_COUNT)) { return; }
    let r = i / p(P_CLASSES);
    let hot = select(0.0, 1.0, i % p(P_CLASSES) == labels[r]);
    dx[i] = (probs[i] - hot) * g[0] / f32(p(P_ROWS));
}
