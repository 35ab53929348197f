def read_idx(path):
    """An MNIST IDX file (.gz) as a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def lcg_permutation(n, seed):
    """layerlab's data order: Fisher-Yates driven by a 32-bit LCG."""
    perm = list(range(n))
    state = seed
    for i in range(n - 1, 0, -1):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        j = state % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def epoch_seed(epoch):
    return (SEED * 0x9E3779B1 + epoch + 1) & 0xFFFFFFFF


def load_data(folder):
    """(x_train, y_train, x_test, y_test) as numpy arrays."""
    if DATASET == "mnist":
        def images(name):
            return (read_idx(os.path.join(folder, name)).astype(np.float32) / 255.0).reshape(-1, *INPUT_SHAPE)

        def labels(name):
            return read_idx(os.path.join(folder, name)).astype(np.int64)

        return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
                images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))
    # The sequence task, generated here with numpy from the seed (layerlab draws
    # its examples with its own generator: the same task, other examples).
    def task(n, seed):
        x = np.random.default_rng(seed).integers(0, VOCAB, size=(n, SEQ_LEN))
        y = {"reverse": x[:, ::-1], "sort": np.sort(x, axis=1), "copy": x}[DATASET]
        return x.astype(np.int64), np.ascontiguousarray(y).astype(np.int64)

    return (*task(50_000, SEED), *task(1_000, SEED + 1))
