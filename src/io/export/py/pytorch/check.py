"""Checks the export: the PyTorch model, with the exported weights, gives
layerlab's logits on a fixed batch (check.safetensors holds the batch `x` and
layerlab's `logits`). Prints the largest difference; exits 1 above 1e-4."""
import os
import sys

import torch
from safetensors.torch import load_file

from model import build_model

here = os.path.dirname(os.path.abspath(__file__))
model = build_model()
model.load_state_dict(load_file(os.path.join(here, "weights.safetensors")))
model.eval()
check = load_file(os.path.join(here, "check.safetensors"))
with torch.no_grad():
    logits = model(check["x"])
diff = (logits - check["logits"]).abs().max().item()
print(f"largest difference from layerlab's logits: {diff:.2e}")
sys.exit(0 if diff <= 1e-4 else 1)
