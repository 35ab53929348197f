def gru(w, p):
    """GRU: PyTorch's gates r, z, n become Keras's z, r, h; both biases are kept
    (Keras's reset_after=True applies the reset gate as PyTorch does)."""

    def zrn(t):
        r, z, n = np.split(t, 3, axis=0)
        return np.concatenate([z, r, n], axis=0)

    return [zrn(w[p + "weight_ih_l0"]).T, zrn(w[p + "weight_hh_l0"]).T, np.stack([zrn(w[p + "bias_ih_l0"]), zrn(w[p + "bias_hh_l0"])])]
