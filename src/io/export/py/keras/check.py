"""Checks the export: the Keras model, with layerlab's weights converted, gives
layerlab's logits on a fixed batch (check.safetensors holds the batch `x` and
layerlab's `logits`). Prints the largest difference; exits 1 above 1e-4."""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from model import build_model, load_layerlab_weights  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
model = build_model()
load_layerlab_weights(model, os.path.join(here, "weights.safetensors"))
check = load_file(os.path.join(here, "check.safetensors"))
logits = np.asarray(model.predict(check["x"], verbose=0))
diff = float(np.abs(logits - check["logits"]).max())
print(f"largest difference from layerlab's logits: {diff:.2e}")
sys.exit(0 if diff <= 1e-4 else 1)
