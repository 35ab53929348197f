class Patchify(nn.Module):
    """Image [batch, C, H, W] -> tokens [batch, (H/p)*(W/p), C*p*p]: the p x p
    patches, row by row."""

    def __init__(self, patch_size):
        super().__init__()
        self.p = patch_size

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.p
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)
