"""A drop-in for network.py of Nielsen's *Neural Networks and Deep Learning*.

    import fastbp.network as network
    net = network.Network([784, 30, 10])
    net.SGD(training_data, 30, 10, 3.0, test_data=test_data)

Same attributes, same methods, same random draws and the same printed lines
as the book's module, so a script seeded the book's way gets the same
weights.  ``SGD`` runs each epoch in fastbp's compiled engine instead of a
Python loop over samples, with every floating-point operation of
network.py's in network.py's order (the sums of the same BLAS calls, NumPy's
own exp, the gradients summed sample by sample): the weights are network.py's
bit for bit.  That rests on SciPy's BLAS computing np.dot's bits, which
fastbp checks when it loads (fastbp._engine.BOOK_ARITHMETIC).  Where it does
not hold, and for a network with a single-neuron layer (np.dot multiplies a
single row or column by other routes), SGD trains in the engine's mini-batch
form instead: the same to rounding.  ``backprop(x, y)`` and ``feedforward(a)`` of one
sample follow the book's arithmetic too; ``evaluate`` and ``feedforward`` of
several columns at once compute in mini-batch form.

The book's conventions: a sample x is a column vector (n_0, 1); training
pairs are (x, y) with y a column vector (n_L, 1); test pairs are (x, label)
with an integer label.  Sigmoid neurons and the quadratic cost throughout.
"""

import numpy as np

from . import _book, _checks, _training
from ._book import sigmoid, sigmoid_prime  # noqa: F401  (the book's module functions)
from ._engine import argmax as _argmax_rows

_SIGMOID = 0            # activation code (csrc/fastbp_kernels.h)
_QUADRATIC = 0          # cost code


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
    def _codes(self):
        return [_SIGMOID] * self.num_layers

    def _outputs(self, X):
        """a^L for the rows of X (an (n, n_0) float64 array)."""
        weights, biases = _book.parameters(self)
        return _training.feedforward(weights, biases, self.sizes, self._codes(), X)

    # -- the book's API -----------------------------------------------------
    def feedforward(self, a):
        """Return the output of the network for the input column vector ``a``
        of shape (n_0, 1); a matrix (n_0, k) gives the k outputs as columns."""
        X = _book.columns_as_rows("a", a, self.sizes[0])
        weights, biases = _book.parameters(self)
        return _book.feedforward(weights, biases, self.sizes, self._codes(), X)

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """Train by mini-batch stochastic gradient descent.

        ``training_data`` is a list of tuples (x, y); it is shuffled in place
        with ``random.shuffle`` at the start of every epoch, then cut into
        mini-batches of ``mini_batch_size`` (the last may be shorter).  With
        ``test_data`` (a list of (x, label)), the network is evaluated after
        each epoch and the count of correct answers printed.

        Tuples of contiguous float32 or float64 arrays are read in place while
        training runs (other forms are copied first): do not write to them
        from another thread until SGD returns."""
        training_data, epochs, mini_batch_size, eta = _book.check_sgd(
            training_data, epochs, mini_batch_size, eta)
        samples = _book.training_samples("training_data", training_data, self.sizes)
        if test_data:
            test_data = list(test_data)
            X_test, labels_test = _book.stack_labelled("test_data", test_data, self.sizes)
        codes = self._codes()
        with _training.exclusive(self._lock), _training.engine_threads() as n_max:
            threads = _training.ThreadPlan(n_max)
            for j in range(epochs):
                _book.shuffle(training_data)      # random.shuffle's draws
                with _book.new_parameters(self) as (weights, biases):
                    # (max |x|, which the mini-batch form needs, is kept by samples)
                    _training.train_epoch(
                        weights, biases, self.sizes, codes, _QUADRATIC, samples, None,
                        samples.order_of(training_data), mini_batch_size, eta,
                        threads=threads,
                        book=_training.book_arithmetic_fits(weights, biases, self.sizes))
                if test_data:
                    correct = int(np.sum(_argmax_rows(self._outputs(X_test)) == labels_test))
                    print("Epoch {0}: {1} / {2}".format(j, correct, len(test_data)))
                else:
                    print("Epoch {0} complete".format(j))

    def update_mini_batch(self, mini_batch, eta):
        """Apply one step of gradient descent, using backpropagation over the
        samples of ``mini_batch`` (a list of tuples (x, y)) and learning rate eta."""
        mini_batch = list(mini_batch)
        eta = _checks.check_float("eta", eta, minimum=0.0, strict=True)
        samples = _book.training_samples("mini_batch", mini_batch, self.sizes)
        with _training.exclusive(self._lock), _book.new_parameters(self) as (weights, biases):
            _training.train_epoch(weights, biases, self.sizes, self._codes(), _QUADRATIC,
                                  samples, None, np.arange(len(mini_batch)),
                                  len(mini_batch), eta,
                                  book=_training.book_arithmetic_fits(weights, biases,
                                                                      self.sizes))

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of the cost C_x of one
        sample, as lists of arrays shaped like ``self.biases`` and ``self.weights``."""
        X = _book.column("x", x, self.sizes[0])
        Y = _book.column("y", y, self.sizes[-1])
        weights, biases = _book.parameters(self)
        return _book.backprop(weights, biases, self.sizes, self._codes(), _QUADRATIC, X, Y)

    def evaluate(self, test_data):
        """The number of test inputs for which the network's most active
        output neuron is the label; ``test_data`` is a list of (x, label)."""
        X, labels = _book.stack_labelled("test_data", list(test_data), self.sizes)
        return int(np.sum(_argmax_rows(self._outputs(X)) == labels))

    def cost_derivative(self, output_activations, y):
        """The vector of partial derivatives dC_x/da for the output activations."""
        return output_activations - y

    # -- pickling and copying (not in the book: the lock cannot be pickled) --
    def __getstate__(self):
        return _training.network_state(self)

    def __setstate__(self, state):
        _training.restore_network_state(self, state)
