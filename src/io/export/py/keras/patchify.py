class Patchify(layers.Layer):
    """Image [batch, C, H, W] -> tokens [batch, (H/p)*(W/p), C*p*p]: the p x p
    patches, row by row."""

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.p = patch_size

    def call(self, x):
        c, h, w = x.shape[1], x.shape[2], x.shape[3]
        p = self.p
        x = ops.reshape(x, (-1, c, h // p, p, w // p, p))
        x = ops.transpose(x, (0, 2, 4, 1, 3, 5))
        return ops.reshape(x, (-1, (h // p) * (w // p), c * p * p))
