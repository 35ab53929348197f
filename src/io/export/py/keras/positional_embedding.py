class PositionalEmbedding(layers.Layer):
    """Adds a position code to [batch, steps, features]: a learned `weight`, or the
    fixed sinusoids of "Attention is all you need" (sin on even features, cos on
    odd ones)."""

    def __init__(self, learned=True, **kwargs):
        super().__init__(**kwargs)
        self.learned = learned

    def build(self, input_shape):
        steps, features = input_shape[1], input_shape[2]
        if self.learned:
            self.weight = self.add_weight(shape=(steps, features), initializer=keras.initializers.RandomNormal(stddev=0.02), name="weight")
        else:
            pos = np.arange(steps, dtype=np.float32)[:, None]
            k = np.arange(features)
            angle = pos / 10000 ** ((k - k % 2).astype(np.float32) / features)
            self.weight = ops.convert_to_tensor(np.where(k % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32))

    def call(self, x):
        return x + self.weight
