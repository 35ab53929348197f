"""Trains the exported Keras model with layerlab's recipe and data order.

    python train.py [--epochs N] [--steps N] [--data DIR]

It starts from weights.safetensors (the weights layerlab exported) when that file
is beside it, and saves the trained weights to trained.weights.h5
(model.load_weights("trained.weights.h5") on a build_model()).
"""
import argparse
import gzip
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from model import build_model, load_layerlab_weights  # noqa: E402

DATASET = "__DATASET__"
__TASK_LINE__
SEED = __SEED__
BATCH_SIZE = __BATCH__
EPOCHS = __EPOCHS__

__DATA_PY__

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--data", default=os.path.join(here, "mnist"), help="folder with the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--steps", type=int, default=None, help="batches per epoch (a quick check)")
    parser.add_argument("--out", default=os.path.join(here, "trained.weights.h5"))
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)
    model = build_model()
    start = os.path.join(here, "weights.safetensors")
    if os.path.exists(start):
        load_layerlab_weights(model, start)
    model.compile(optimizer=__OPTIMIZER__,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x_train, y_train, x_test, y_test = load_data(args.data)
    for epoch in range(args.epochs):
        order = np.array(lcg_permutation(len(x_train), epoch_seed(epoch)))
        if args.steps is not None:
            order = order[:args.steps * BATCH_SIZE]
        model.fit(x_train[order], y_train[order], batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    print(f"test accuracy {accuracy * 100:.2f} %")
    model.save_weights(args.out)
    print(f"trained weights: {args.out}")


if __name__ == "__main__":
    main()
