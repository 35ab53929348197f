def gelu_tanh(x):
    """GELU in its tanh form, as layerlab (and PyTorch's approximate="tanh") compute it."""
    return keras.activations.gelu(x, approximate=True)
