class KerasAdam(torch.optim.Optimizer):
    """Adam as Keras (and layerlab) apply it: epsilon is added to sqrt(v), and the
    bias correction goes into the step size,
        w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
    torch.optim.Adam adds epsilon after the correction instead, which moves the
    weights differently (by far, for a large epsilon)."""

    def __init__(self, params, lr, beta_1, beta_2, epsilon):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, b1, b2, eps = group["lr"], group["beta_1"], group["beta_2"], group["epsilon"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["t"], state["m"], state["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                state["t"] += 1
                t, m, v, g = state["t"], state["m"], state["v"], p.grad
                m.add_((g - m) * (1 - b1))
                v.add_((g * g - v) * (1 - b2))
                p.sub_(lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (v.sqrt() + eps))


