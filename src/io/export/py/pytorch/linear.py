class Linear(nn.Linear):
    """nn.Linear (on the last axis, as Keras's Dense) followed by an activation."""

    def __init__(self, in_features, out_features, bias=True, activation=None):
        super().__init__(in_features, out_features, bias=bias)
        self.activation = activation or nn.Identity()

    def forward(self, x):
        return self.activation(super().forward(x))
