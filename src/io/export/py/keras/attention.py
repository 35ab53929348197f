def attention(w, p, heads):
    """PyTorch's fused in_proj [3E, E] and out_proj -> Keras's per-head query, key,
    value and output kernels."""
    e = w[p + "in_proj_weight"].shape[1]
    kd = e // heads
    q, k, v = np.split(w[p + "in_proj_weight"], 3)
    bq, bk, bv = np.split(w[p + "in_proj_bias"], 3)
    out = w[p + "out_proj.weight"].T.reshape(heads, kd, e)
    per_head = lambda m: m.T.reshape(e, heads, kd)
    return [per_head(q), bq.reshape(heads, kd), per_head(k), bk.reshape(heads, kd), per_head(v), bv.reshape(heads, kd), out, w[p + "out_proj.bias"]]
