class TransformerEncoder(layers.Layer):
    """PyTorch's TransformerEncoderLayer in Keras: self-attention and a two-layer
    MLP, each with a residual connection and LayerNorm (before each block with
    norm_first, after it otherwise)."""

    def __init__(self, num_heads, ff_dim, activation="relu", dropout=0.0, norm_first=False, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.ff_dim, self.activation = num_heads, ff_dim, activation
        self.norm_first = norm_first
        self.drop = layers.Dropout(dropout)
        self.norm1 = layers.LayerNormalization(epsilon=1e-5)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5)

    def build(self, input_shape):
        d = input_shape[-1]
        self.attn = layers.MultiHeadAttention(self.num_heads, d // self.num_heads)
        self.linear1 = layers.Dense(self.ff_dim, activation=self.activation)
        self.linear2 = layers.Dense(d)

    def feed_forward(self, x, training):
        return self.drop(self.linear2(self.drop(self.linear1(x), training=training)), training=training)

    def call(self, x, training=False):
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.drop(self.attn(h, h), training=training)
            return x + self.feed_forward(self.norm2(x), training)
        x = self.norm1(x + self.drop(self.attn(x, x), training=training))
        return self.norm2(x + self.feed_forward(x, training))
