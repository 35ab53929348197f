def conv_kernel(t):
    """PyTorch [out, in, h, w] -> Keras [h, w, in, out]."""
    return t.transpose(2, 3, 1, 0)
