class Conv2d(nn.Conv2d):
    """nn.Conv2d followed by an activation. `pad` (left, right, top, bottom) is
    Keras's "same" padding, which puts an odd extra row or column at the end."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=True, pad=None, activation=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        self.pad = pad
        self.activation = activation or nn.Identity()

    def forward(self, x):
        if self.pad:
            x = F.pad(x, self.pad)
        return self.activation(super().forward(x))
