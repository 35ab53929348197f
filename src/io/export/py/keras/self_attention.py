class SelfAttention(layers.Layer):
    """Multi-head self-attention over [batch, steps, features] (optionally causal:
    a step sees only itself and earlier steps)."""

    def __init__(self, num_heads, key_dim, causal=False, **kwargs):
        super().__init__(**kwargs)
        self.mha = layers.MultiHeadAttention(num_heads, key_dim)
        self.causal = causal

    def call(self, x):
        return self.mha(x, x, use_causal_mask=self.causal)
