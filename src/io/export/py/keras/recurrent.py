def recurrent(w, p):
    """SimpleRNN and LSTM: kernels transposed; PyTorch's two biases summed (Keras
    has one). LSTM gates are in the same order (i, f, g/c, o) in both."""
    return [w[p + "weight_ih_l0"].T, w[p + "weight_hh_l0"].T, w[p + "bias_ih_l0"] + w[p + "bias_hh_l0"]]
