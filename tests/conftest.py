"""Shared fixtures: small synthetic problems and the real data sets."""
import numpy as np
import pytest

from fastbp import _engine, datasets


def _blobs(n, n_in, n_out, seed):
    """n samples of n_out Gaussian clusters in n_in dimensions.

    Returns (X, labels, Y): X (n, n_in) float64 with entries of order one,
    labels (n,) int64 in [0, n_out), Y (n, n_out) the one-hot targets."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1.0, 1.0, size=(n_out, n_in))
    labels = rng.integers(0, n_out, size=n)
    X = centres[labels] + 0.3 * rng.standard_normal((n, n_in))
    Y = np.zeros((n, n_out))
    Y[np.arange(n), labels] = 1.0
    return X, labels.astype(np.int64), Y


@pytest.fixture
def make_problem():
    """A factory: make_problem(n, n_in, n_out, seed=0) -> (X, labels, Y)."""
    def make(n, n_in, n_out, seed=0):
        return _blobs(n, n_in, n_out, seed)
    return make


@pytest.fixture
def problem():
    """60 samples, 5 inputs, 3 classes: (X, labels, Y)."""
    return _blobs(60, 5, 3, seed=12345)


@pytest.fixture(scope="session")
def digits():
    """The embedded UCI digits: X (1797, 64) float64 in [0, 1], y int64."""
    return datasets.load_digits()


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST as float64 ((X_train, y_train), (X_test, y_test)); skips
    where the Debian package dataset-fashion-mnist is not installed."""
    if not datasets.fashion_mnist_available():
        pytest.skip("Fashion-MNIST is not installed "
                    f"(apt-get install dataset-fashion-mnist -> {datasets.FASHION_MNIST_DIR})")
    return datasets.load_fashion_mnist(dtype=np.float64)


@pytest.fixture(params=[2, 4], ids=lambda b: f"{b}-blocks")
def blocks(request):
    """Layers cut into 2 or 4 blocks, whatever this machine's cores, so that
    the threads' split of every layer is exercised."""
    previous = _engine._set_blocks(request.param)
    yield request.param
    _engine._set_blocks(previous)
