class SelfAttention(nn.MultiheadAttention):
    """Multi-head self-attention over [batch, steps, features] (optionally causal:
    a step sees only itself and earlier steps)."""

    def __init__(self, embed_dim, num_heads, causal=False):
        super().__init__(embed_dim, num_heads, batch_first=True)
        self.causal = causal

    def forward(self, x):
        mask = None
        if self.causal:
            t = x.shape[1]
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        out, _ = super().forward(x, x, x, attn_mask=mask, need_weights=False)
        return out
