class PositionalEmbedding(nn.Module):
    """Adds a position code to [batch, steps, features]: a learned `weight`, or the
    fixed sinusoids of "Attention is all you need" (sin on even features, cos on
    odd ones)."""

    def __init__(self, steps, features, learned=True):
        super().__init__()
        if learned:
            self.weight = nn.Parameter(torch.randn(steps, features) * 0.02)
        else:
            pos = torch.arange(steps, dtype=torch.float32)[:, None]
            k = torch.arange(features)
            angle = pos / 10000 ** ((k - k % 2).float() / features)
            table = torch.where(k % 2 == 0, torch.sin(angle), torch.cos(angle))
            self.register_buffer("weight", table, persistent=False)

    def forward(self, x):
        return x + self.weight
