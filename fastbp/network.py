"""A drop-in for network.py of Nielsen's *Neural Networks and Deep Learning*.

    import fastbp.network as network
    net = network.Network([784, 30, 10])
    net.SGD(training_data, 30, 10, 3.0, test_data=test_data)

Same attributes, same methods, same random draws and the same printed lines
as the book's module, so a script seeded the book's way gets the same
weights (to floating-point rounding).  ``SGD`` runs each epoch in fastbp's
compiled engine instead of a Python loop over samples.

The book's conventions: a sample x is a column vector (n_0, 1); training
pairs are (x, y) with y a column vector (n_L, 1); test pairs are (x, label)
with an integer label.  Sigmoid neurons and the quadratic cost throughout.
"""
import random

import numpy as np

from . import _checks, _training
from ._engine import argmax as _argmax_rows

_SIGMOID = [0]          # activation codes: every layer sigmoid (csrc/fastbp_kernels.h)
_QUADRATIC = 0
_DTYPE = np.dtype(np.float64)


class Network:
    """A network of sigmoid neurons with the quadratic cost, as in the book.

    ``sizes`` lists the neurons per layer, input first.  Biases and weights
    are drawn from N(0, 1) with ``np.random.randn``: all biases first, then
    all weights, layer by layer, exactly as network.py does."""

    def __init__(self, sizes):
        self.sizes = _checks.check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [np.random.randn(y, x)
                        for x, y in zip(self.sizes[:-1], self.sizes[1:])]
        self._lock = _training.new_lock()

    # -- helpers over the engine -------------------------------------------
    def _parameters(self):
        w, b = _checks.check_parameters(self.weights, self.biases, self.sizes, _DTYPE)
        if any(x is not y for x, y in zip(w, self.weights)):
            self.weights = w
        if any(x is not y for x, y in zip(b, self.biases)):
            self.biases = b
        return self.weights, self.biases

    def _codes(self):
        return _SIGMOID * self.num_layers

    def _outputs(self, X):
        """a^L for the rows of X (an (n, n_0) float64 array)."""
        weights, biases = self._parameters()
        return _training.feedforward(weights, biases, self.sizes, self._codes(), X)

    # -- the book's API -----------------------------------------------------
    def feedforward(self, a):
        """Return the output of the network for the input column vector ``a``
        of shape (n_0, 1); a matrix (n_0, k) gives the k outputs as columns."""
        a = _checks.as_float_array("a", a, _DTYPE)
        if a.ndim != 2 or a.shape[0] != self.sizes[0] or a.shape[1] == 0:
            raise ValueError(f"a must be a column vector of shape ({self.sizes[0]}, 1) "
                             f"(or {self.sizes[0]} rows of samples as columns), "
                             f"got shape {a.shape}")
        X = _checks.check_matrix("a", a.T, self.sizes[0], _DTYPE)
        return self._outputs(X).T.copy()

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """Train by mini-batch stochastic gradient descent.

        ``training_data`` is a list of tuples (x, y); it is shuffled in place
        with ``random.shuffle`` at the start of every epoch, then cut into
        mini-batches of ``mini_batch_size`` (the last may be shorter).  With
        ``test_data`` (a list of (x, label)), the network is evaluated after
        each epoch and the count of correct answers printed."""
        if not isinstance(training_data, list):
            training_data = list(training_data)
        epochs = _checks.check_int("epochs", epochs, minimum=0)
        mini_batch_size = _checks.check_int("mini_batch_size", mini_batch_size, minimum=1,
                                            maximum=_checks.BLAS_INT_MAX)
        eta = _checks.check_float("eta", eta, minimum=0.0, strict=True)
        X, Y, row_of = _stack_pairs("training_data", training_data, self.sizes)
        if test_data is not None:
            test_data = list(test_data)
            X_test, labels_test = _stack_labelled("test_data", test_data, self.sizes)
        weights, biases = self._parameters()
        codes = self._codes()
        with _training.exclusive(self._lock):
            for j in range(epochs):
                random.shuffle(training_data)
                order = [row_of[id(pair)] for pair in training_data]
                _training.train_epoch(weights, biases, self.sizes, codes, _QUADRATIC,
                                      X, Y, order, mini_batch_size, eta)
                if test_data is not None:
                    correct = int(np.sum(_argmax_rows(self._outputs(X_test)) == labels_test))
                    print("Epoch {0}: {1} / {2}".format(j, correct, len(test_data)))
                else:
                    print("Epoch {0} complete".format(j))

    def update_mini_batch(self, mini_batch, eta):
        """Apply one step of gradient descent, using backpropagation over the
        samples of ``mini_batch`` (a list of tuples (x, y)) and learning rate eta."""
        mini_batch = list(mini_batch)
        eta = _checks.check_float("eta", eta, minimum=0.0, strict=True)
        X, Y, _ = _stack_pairs("mini_batch", mini_batch, self.sizes)
        weights, biases = self._parameters()
        with _training.exclusive(self._lock):
            _training.train_epoch(weights, biases, self.sizes, self._codes(), _QUADRATIC,
                                  X, Y, np.arange(len(mini_batch)), len(mini_batch), eta)

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of the cost C_x of one
        sample, as lists of arrays shaped like ``self.biases`` and ``self.weights``."""
        X = self._column("x", x, self.sizes[0])
        Y = self._column("y", y, self.sizes[-1])
        weights, biases = self._parameters()
        nabla_b, nabla_w = _training.backprop(weights, biases, self.sizes, self._codes(),
                                              _QUADRATIC, X, Y)
        return [nb.reshape(-1, 1) for nb in nabla_b], nabla_w

    def evaluate(self, test_data):
        """The number of test inputs for which the network's most active
        output neuron is the label; ``test_data`` is a list of (x, label)."""
        test_data = list(test_data)
        X, labels = _stack_labelled("test_data", test_data, self.sizes)
        return int(np.sum(_argmax_rows(self._outputs(X)) == labels))

    def cost_derivative(self, output_activations, y):
        """The vector of partial derivatives dC_x/da for the output activations."""
        return output_activations - y

    @staticmethod
    def _column(name, v, n):
        v = _checks.as_float_array(name, v, _DTYPE)
        if v.shape not in ((n, 1), (n,)):
            raise ValueError(f"{name} must be a column vector of shape ({n}, 1), got {v.shape}")
        return _checks.check_matrix(name, v.reshape(1, n), n, _DTYPE)


def _stack_pairs(name, data, sizes):
    """The (x, y) pairs of ``data`` as row matrices X (n, n_0) and Y (n, n_L),
    and a map from id(pair) to its row, to follow the pairs through a shuffle."""
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    try:
        xs, ys = zip(*data)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of (x, y) tuples") from None
    X = _stack_columns(f"{name} x", xs, sizes[0])
    Y = _stack_columns(f"{name} y", ys, sizes[-1])
    row_of = {id(pair): i for i, pair in enumerate(data)}
    return X, Y, row_of


def _stack_labelled(name, data, sizes):
    """The (x, label) pairs of ``data`` as X (n, n_0) and the labels (n,)."""
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    try:
        xs, labels = zip(*data)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of (x, label) tuples") from None
    X = _stack_columns(f"{name} x", xs, sizes[0])
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: the labels must be integers (one per sample)")
    return X, labels


def _stack_columns(name, vectors, n):
    """Column vectors (n, 1) (or (n,)) stacked as the rows of an (len, n) array."""
    try:
        M = np.array(vectors, dtype=_DTYPE)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: every vector must have shape ({n}, 1): {exc}") from None
    if M.ndim == 3 and M.shape[2] == 1:
        M = M.reshape(M.shape[0], M.shape[1])
    if M.ndim != 2 or M.shape[1] != n:
        raise ValueError(f"{name}: every vector must have shape ({n}, 1), "
                         f"got an array of shape {M.shape[1:]}")
    return _checks.check_matrix(name, M, n, _DTYPE)


def sigmoid(z):
    """The sigmoid function 1 / (1 + e^{-z})."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    return sigmoid(z) * (1 - sigmoid(z))
