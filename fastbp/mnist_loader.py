"""The book's ``mnist_loader``, reading MNIST from wherever it is.

    import fastbp.mnist_loader as mnist_loader
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper()

Same functions, same return values as the mnist_loader.py of *Neural
Networks and Deep Learning*, but each takes an optional ``path``: Nielsen's
``mnist.pkl.gz``, or a directory of the four IDX files of MNIST or
Fashion-MNIST.  From an IDX directory the last 10,000 of the 60,000 training
images become the validation set, as in the book's split (for smaller files,
the last sixth).

With ``path=None`` the data is taken from the first of these that exists
(:func:`find_data` tells which, nothing is printed):

1. ``../data/mnist.pkl.gz`` (where the book's scripts, run from ``src/``, find it);
2. ``./mnist.pkl.gz``;
3. the download cache (``$FASTBP_DATA``, else ``~/.cache/fastbp``):
   ``mnist.pkl.gz``, then the IDX directory ``mnist/``
   (``python -m fastbp download mnist`` puts MNIST there);
4. Fashion-MNIST where Debian's ``dataset-fashion-mnist`` installs it
   (``/usr/share/datasets/fashion-mnist``), or in the cache's ``fashion-mnist/``.
   Fashion-MNIST has MNIST's shapes and ten classes, so every script of the
   book runs on it unchanged (its accuracies are lower: clothes are harder
   than digits).
"""
import os

import numpy as np

from . import datasets
from ._book import vectorized_result  # noqa: F401  (the book's module function)

_VALIDATION_SIZE = 10000


def find_data(path=None):
    """The file or directory :func:`load_data` reads for this ``path``.

    With a path, that path; with None, the first place of the module's list
    that holds data.  Raises FileNotFoundError, listing the places looked in,
    if there is none."""
    if path is not None:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file or directory (MNIST data: a "
                                    f"mnist.pkl.gz, or a directory of IDX files)")
        return path
    found = datasets.find_mnist() or datasets.find_fashion_mnist()
    if found is None:
        places = datasets.mnist_candidates() + [datasets.FASHION_MNIST_DIR]
        raise FileNotFoundError(
            "no MNIST data found; looked in " + ", ".join(places) + ". Pass the path of a "
            "mnist.pkl.gz or of a directory of IDX files, install Debian's "
            "dataset-fashion-mnist, or run: python -m fastbp download mnist")
    return found


def load_data(path=None):
    """Return the MNIST data as a tuple (training_data, validation_data, test_data).

    Each is a pair (images, labels): images a float32 array of shape
    (n, 784) with values in [0, 1], one image per row; labels an int64 array
    of shape (n,).  Nielsen's file has 50,000 training, 10,000 validation and
    10,000 test images.  ``path``: a mnist.pkl.gz or an IDX directory; None
    searches the places listed in the module's docstring."""
    path = find_data(path)
    if os.path.isdir(path):
        (X, y), test = datasets.load_idx_directory(path, dtype=np.float32)
        n_val = min(_VALIDATION_SIZE, X.shape[0] // 6)
        n_train = X.shape[0] - n_val
        return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:]), test
    return datasets.load_mnist_pkl(path)


def load_data_wrapper(path=None):
    """Return (training_data, validation_data, test_data) in the form the
    book's networks take.

    training_data is a list of 50,000 pairs (x, y): x a (784, 1) array of
    the image, y the (10, 1) one-hot vector of its digit.  validation_data
    and test_data are lists of pairs (x, label) with x a (784, 1) array and
    label an int.  ``path`` as for :func:`load_data`."""
    path = find_data(path)
    training, validation, test = load_data(path)
    for name, (_, labels) in zip(("training", "validation", "test"),
                                 (training, validation, test)):
        if labels.size and labels.max() > 9:
            raise ValueError(f"{path}: the {name} labels go up to {labels.max()}; "
                             f"the book's networks have ten outputs, labels 0 to 9")
    return (list(zip(_columns(training[0]), _one_hot_columns(training[1]))),
            list(zip(_columns(validation[0]), validation[1].tolist())),
            list(zip(_columns(test[0]), test[1].tolist())))


def _columns(X):
    """The rows of X as a list of (d, 1) column vectors (views, no copies)."""
    return list(X.reshape(X.shape[0], X.shape[1], 1))


def _one_hot_columns(labels):
    """The labels as a list of (10, 1) float64 one-hot column vectors."""
    Y = np.zeros((labels.shape[0], 10, 1))
    Y[np.arange(labels.shape[0]), labels, 0] = 1.0
    return list(Y)
