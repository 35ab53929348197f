class Embedding(nn.Embedding):
    """nn.Embedding that accepts token ids of any number type."""

    def forward(self, x):
        return super().forward(x.long())
