class Reshape(nn.Module):
    """Keras's Reshape: a new shape for each example (the batch axis stays)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
