"""Data sets: the embedded UCI digits, and MNIST-format IDX files.

Images come back as float arrays in [0, 1], one sample per row; labels as
int64 arrays.
"""
import gzip
import os
from importlib import resources

import numpy as np

# Where Debian's dataset-fashion-mnist package puts the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def load_digits():
    """The UCI optical handwritten digits shipped with fastbp.

    Returns (X, y): X of shape (1797, 64), the 8x8 images scaled from 0..16
    to [0, 1] as float64; y of shape (1797,), int64 labels 0..9."""
    with resources.files("fastbp").joinpath("data/digits.csv.gz").open("rb") as f:
        table = np.loadtxt(gzip.open(f, "rt"), delimiter=",", dtype=np.int64)
    return table[:, :64].astype(np.float64) / 16.0, table[:, 64].copy()


def read_idx(path):
    """The array stored in one IDX file (gzip-compressed or not)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise OSError(f"{path}: cannot read IDX file: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count:
        raise ValueError(f"{path}: IDX header promises {count} values, "
                         f"the file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_directory(directory, dtype=np.float32):
    """MNIST or Fashion-MNIST from a directory holding the four IDX .gz files.

    Returns ((X_train, y_train), (X_test, y_test)) with X of shape
    (n, 784) in [0, 1] and y int64."""
    parts = {}
    for key, name in IDX_FILES.items():
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such IDX file")
        parts[key] = read_idx(path)
    out = []
    for split in ("train", "test"):
        images, labels = parts[split + "_images"], parts[split + "_labels"]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{directory}: {images.shape[0]} {split} images but "
                             f"{labels.shape[0]} labels")
        X = images.reshape(images.shape[0], -1).astype(dtype) / dtype(255)
        out.append((X, labels.astype(np.int64)))
    return tuple(out)


def fashion_mnist_available(directory=FASHION_MNIST_DIR):
    return all(os.path.exists(os.path.join(directory, n)) for n in IDX_FILES.values())


def load_fashion_mnist(directory=FASHION_MNIST_DIR, dtype=np.float32):
    """Fashion-MNIST, by default from where Debian's dataset-fashion-mnist puts it."""
    if not fashion_mnist_available(directory):
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {directory}; on Debian or Ubuntu: "
            f"apt-get install dataset-fashion-mnist")
    return load_idx_directory(directory, dtype=dtype)
