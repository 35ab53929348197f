class GlobalAveragePooling1D(nn.Module):
    """The mean over the steps of [batch, steps, features]."""

    def forward(self, x):
        return x.mean(dim=1)
