class RNN(nn.RNN):
    """nn.RNN (batch first) returning, like Keras, every step's output or only the last one."""

    def __init__(self, input_size, hidden_size, return_sequences=False):
        super().__init__(input_size, hidden_size, batch_first=True)
        self.return_sequences = return_sequences

    def forward(self, x):
        out, _ = super().forward(x)
        return out if self.return_sequences else out[:, -1]
