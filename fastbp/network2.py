"""A drop-in for network2.py of Nielsen's *Neural Networks and Deep Learning*.

    import fastbp.network2 as network2
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    net.SGD(training_data, 30, 10, 0.5, lmbda=5.0, evaluation_data=validation_data,
            monitor_evaluation_accuracy=True)

Same classes, methods, random draws, printed lines and return values as the
book's module, so a script seeded the book's way gets the same weights and
the same monitored values.  ``SGD`` runs each epoch in fastbp's compiled
engine; with QuadraticCost or CrossEntropyCost it repeats network2.py's
floating-point operations in network2.py's order, so the weights are the
book's bit for bit (see fastbp.network).  The monitored costs are summed in
another order: the same to rounding.

The book's conventions (see fastbp._book): samples are column vectors;
training pairs are (x, one-hot y); validation and test pairs are (x, int
label).  Sigmoid neurons throughout; the cost is a class with static
``fn(a, y)`` and ``delta(z, a, y)``.  QuadraticCost and CrossEntropyCost run
in the engine; another cost class written the book's way works too, on the
slower NumPy path (fastbp._numpy_path).

Files written by ``save`` are network2.py's JSON, and ``load`` reads the
book's files (see fastbp.io).
"""

import numpy as np

from . import _book, _checks, _engine, _numpy_path, _training, io as _io
from ._book import sigmoid, sigmoid_prime, vectorized_result  # noqa: F401  (book API)
from ._engine import argmax as _argmax_rows, cost_total as _cost_total

_DTYPE = _book.DTYPE
_SIGMOID = 0             # the activation code of every layer (csrc/fastbp_kernels.h)


# -- costs ----------------------------------------------------------------------
class QuadraticCost:
    """C_x = 1/2 ||a - y||^2."""

    @staticmethod
    def fn(a, y):
        """The cost of output ``a`` against the desired output ``y``."""
        d = np.asarray(a) - y
        return 0.5 * np.sum(d * d)

    @staticmethod
    def delta(z, a, y):
        """BP1: the output error (a - y) * sigma'(z)."""
        return (a - y) * sigmoid_prime(z)


class CrossEntropyCost:
    """C_x = sum_j -y_j ln a_j - (1 - y_j) ln(1 - a_j)."""

    @staticmethod
    def fn(a, y):
        """The cost of output ``a`` against ``y``; a term that is NaN (a and y
        both 0 or both 1) counts as 0, and an infinite one as the largest float."""
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = -y * np.log(a) - (1 - y) * np.log(1 - a)
        return np.sum(np.nan_to_num(terms))

    @staticmethod
    def delta(z, a, y):
        """BP1: the output error a - y (sigma'(z) cancels; z is unused)."""
        return a - y


# The engine's cost codes (fastbp.costs.CODES) of the two classes.
# (Matched by identity: a cost class of one's own need not be hashable.)
_ENGINE_COSTS = {QuadraticCost: 0, CrossEntropyCost: 1}
_CLASS_BY_NAME = {"quadratic": QuadraticCost, "cross-entropy": CrossEntropyCost}


def _engine_code(cost):
    """The engine's code of one of the book's cost classes, else None."""
    for known, code in _ENGINE_COSTS.items():
        if cost is known:
            return code
    return None


class _BookStyleCost:
    """Another cost class, written for column vectors, for the NumPy path
    (which keeps samples as rows)."""

    def __init__(self, cls):
        for attr in ("fn", "delta"):
            if not callable(getattr(cls, attr, None)):
                raise TypeError(f"the cost {cls!r} must have static methods fn(a, y) "
                                "and delta(z, a, y), as network2's cost classes do")
        self.cls = cls

    def delta(self, Z, A, Y):
        return np.asarray(self.cls.delta(Z.T, A.T, Y.T)).T

    def total(self, A, Y):
        return sum(float(self.cls.fn(a.reshape(-1, 1), y.reshape(-1, 1)))
                   for a, y in zip(A, Y))


# -- the network -------------------------------------------------------------------
class Network:
    """A network of sigmoid neurons with the cost ``cost``, as in the book.

    ``sizes`` lists the neurons per layer, input first.  The initial weights
    come from ``default_weight_initializer``."""

    def __init__(self, sizes, cost=CrossEntropyCost):
        self.sizes = _checks.check_sizes(sizes)
        if _engine_code(cost) is None:
            _BookStyleCost(cost)            # refuses what has no fn and delta
        self.num_layers = len(self.sizes)
        self._lock = _training.new_lock()
        self.default_weight_initializer()
        self.cost = cost

    def default_weight_initializer(self):
        """Biases from N(0, 1); weights from N(0, 1/n_in), n_in the number of
        inputs of the neuron.  Drawn with np.random.randn: every bias vector
        first, then every weight matrix, layer by layer, as network2.py does."""
        self.biases = [np.random.randn(n, 1) for n in self.sizes[1:]]
        self.weights = [np.random.randn(n_out, n_in) / np.sqrt(n_in)
                        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    def large_weight_initializer(self):
        """Biases and weights from N(0, 1) (the Chapter 1 network), drawn in the
        same order as ``default_weight_initializer``."""
        self.biases = [np.random.randn(n, 1) for n in self.sizes[1:]]
        self.weights = [np.random.randn(n_out, n_in)
                        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    # -- helpers over the engine -------------------------------------------------
    def _route(self):
        """(path, cost): the engine and its cost code for the book's cost
        classes, else the NumPy path and an adapter of the class."""
        code = _engine_code(self.cost)
        if code is not None:
            return _training, code
        return _numpy_path, _BookStyleCost(self.cost)

    def _codes(self):
        return [_SIGMOID] * self.num_layers

    def _outputs(self, X):
        """a^L for the rows of X (an (n, n_0) float64 array)."""
        weights, biases = _book.parameters(self)
        path, _ = self._route()
        return path.feedforward(weights, biases, self.sizes, self._codes(), X)

    def _cost_of_rows(self, X, Y, lmbda, A=None):
        """The mean cost over the rows plus 0.5 (lmbda/n) sum ||w||^2."""
        if A is None:
            A = self._outputs(X)
        n = X.shape[0]
        path, cost = self._route()
        if path is _training:
            total = _cost_total(cost, A, Y)
        else:
            total = cost.total(A, Y)
        return total / n + 0.5 * (lmbda / n) * sum(float(np.sum(w * w))
                                                   for w in self.weights)

    @staticmethod
    def _correct(A, labels):
        return int(np.sum(_argmax_rows(A) == labels))

    # -- the book's API ----------------------------------------------------------------
    def feedforward(self, a):
        """Return the output of the network for the input column vector ``a``
        of shape (n_0, 1); a matrix (n_0, k) gives the k outputs as columns."""
        X = _book.columns_as_rows("a", a, self.sizes[0])
        weights, biases = _book.parameters(self)
        path, _ = self._route()
        return _book.feedforward(weights, biases, self.sizes, self._codes(), X, path)

    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0,
            evaluation_data=None, monitor_evaluation_cost=False,
            monitor_evaluation_accuracy=False, monitor_training_cost=False,
            monitor_training_accuracy=False):
        """Train by mini-batch stochastic gradient descent with L2 regularization.

        ``training_data`` is a list of tuples (x, y), shuffled in place with
        ``random.shuffle`` at the start of every epoch and cut into
        mini-batches of ``mini_batch_size`` (the last may be shorter).  Each
        step is  w <- (1 - eta lmbda / n) w - (eta/m) grad_w,
        b <- b - (eta/m) grad_b,  n = len(training_data).
        ``evaluation_data`` is a list of (x, int label).  After each epoch the
        monitored values are printed and recorded.

        Returns (evaluation_cost, evaluation_accuracy, training_cost,
        training_accuracy): per-epoch lists, each empty if its flag is off.
        Accuracies are counts of correct answers.  As in network.SGD, the
        training arrays may be read in place: do not write to them from
        another thread until SGD returns."""
        training_data, epochs, mini_batch_size, eta = _book.check_sgd(
            training_data, epochs, mini_batch_size, eta)
        lmbda = _checks.check_float("lmbda", lmbda, minimum=0.0)
        path, cost = self._route()
        if path is _training and not (monitor_training_cost or monitor_training_accuracy):
            # the engine reads the pairs where they lie
            X, Y = _book.training_samples("training_data", training_data, self.sizes), None
            order_of, xmax = X.order_of, X.max_abs()
        else:
            X, Y = _book.stack_pairs("training_data", training_data, self.sizes)
            order_of = _engine.PairRows(training_data).order
            xmax = None                 # max |x|, for the mini-batch engine only (below)
        n = len(training_data)
        if monitor_evaluation_cost or monitor_evaluation_accuracy:
            if evaluation_data is None:
                raise ValueError("monitor_evaluation_cost and monitor_evaluation_accuracy "
                                 "need evaluation_data (a list of (x, label) tuples)")
            evaluation_data = list(evaluation_data)
            X_eval, labels_eval = _book.stack_labelled("evaluation_data", evaluation_data,
                                                       self.sizes)
            Y_eval = _checks.one_hot("evaluation_data", labels_eval, self.sizes[-1], _DTYPE)
            n_data = len(evaluation_data)
        decay = 1.0 - eta * (lmbda / n)
        evaluation_cost, evaluation_accuracy = [], []
        training_cost, training_accuracy = [], []
        with _training.exclusive(self._lock), _training.engine_threads() as n_max:
            threads = _training.ThreadPlan(n_max)
            for j in range(epochs):
                _book.shuffle(training_data)      # random.shuffle's draws
                with _book.new_parameters(self) as (weights, biases):
                    book = path is _training and _training.book_arithmetic_fits(
                        weights, biases, self.sizes)
                    if xmax is None and path is _training and not book:
                        xmax = _checks.max_abs(X)
                    path.train_epoch(weights, biases, self.sizes, self._codes(), cost,
                                     X, Y, order_of(training_data), mini_batch_size, eta,
                                     decay, xmax=xmax, threads=threads, book=book)
                print("Epoch {} training complete".format(j))
                if monitor_training_cost or monitor_training_accuracy:
                    A = self._outputs(X)
                if monitor_training_cost:
                    value = self._cost_of_rows(X, Y, lmbda, A)
                    training_cost.append(value)
                    print("Cost on training data: {}".format(value))
                if monitor_training_accuracy:
                    value = self._correct(A, _argmax_rows(Y))
                    training_accuracy.append(value)
                    print("Accuracy on training data: {} / {}".format(value, n))
                if monitor_evaluation_cost or monitor_evaluation_accuracy:
                    A_eval = self._outputs(X_eval)
                if monitor_evaluation_cost:
                    value = self._cost_of_rows(X_eval, Y_eval, lmbda, A_eval)
                    evaluation_cost.append(value)
                    print("Cost on evaluation data: {}".format(value))
                if monitor_evaluation_accuracy:
                    value = self._correct(A_eval, labels_eval)
                    evaluation_accuracy.append(value)
                    print("Accuracy on evaluation data: {} / {}".format(value, n_data))
                print()
        return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One step of gradient descent on ``mini_batch`` (a list of (x, y)),
        with learning rate eta and L2 regularization lmbda over a training
        set of n samples."""
        mini_batch = list(mini_batch)
        eta = _checks.check_float("eta", eta, minimum=0.0, strict=True)
        lmbda = _checks.check_float("lmbda", lmbda, minimum=0.0)
        n = _checks.check_int("n", n, minimum=1)
        path, cost = self._route()
        if path is _training:
            X, Y = _book.training_samples("mini_batch", mini_batch, self.sizes), None
        else:
            X, Y = _book.stack_pairs("mini_batch", mini_batch, self.sizes)
        with _training.exclusive(self._lock), _book.new_parameters(self) as (weights, biases):
            book = path is _training and _training.book_arithmetic_fits(weights, biases,
                                                                        self.sizes)
            path.train_epoch(weights, biases, self.sizes, self._codes(), cost, X, Y,
                             np.arange(len(mini_batch)), len(mini_batch), eta,
                             1.0 - eta * (lmbda / n), book=book)

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of the cost C_x of one
        sample, as lists of arrays shaped like ``self.biases`` and ``self.weights``."""
        X = _book.column("x", x, self.sizes[0])
        Y = _book.column("y", y, self.sizes[-1])
        weights, biases = _book.parameters(self)
        path, cost = self._route()
        return _book.backprop(weights, biases, self.sizes, self._codes(), cost, X, Y, path)

    def accuracy(self, data, convert=False):
        """The number of samples in ``data`` whose most active output neuron
        is the right answer.  convert=False: data holds (x, int label), as
        validation and test data do; convert=True: (x, one-hot y), as
        training data does."""
        data = list(data)
        if convert:
            X, Y = _book.stack_pairs("data", data, self.sizes)
            labels = _argmax_rows(Y)
        else:
            X, labels = _book.stack_labelled("data", data, self.sizes)
        return self._correct(self._outputs(X), labels)

    def total_cost(self, data, lmbda, convert=False):
        """The mean cost over ``data`` plus 0.5 (lmbda/len(data)) sum ||w||^2.
        convert=False: data holds (x, one-hot y), as training data does;
        convert=True: (x, int label), as validation and test data do."""
        data = list(data)
        lmbda = _checks.check_float("lmbda", lmbda, minimum=0.0)
        if convert:
            X, labels = _book.stack_labelled("data", data, self.sizes)
            Y = _checks.one_hot("data", labels, self.sizes[-1], _DTYPE)
        else:
            X, Y = _book.stack_pairs("data", data, self.sizes)
        return self._cost_of_rows(X, Y, lmbda)

    def save(self, filename):
        """Save the network to ``filename`` as network2.py does: JSON with
        keys sizes, weights, biases and cost (the cost class's name).  The
        file is written atomically."""
        weights, biases = _training.copied_parameters(self, _DTYPE)
        _io.write_json(filename, self.sizes, weights, biases, str(self.cost.__name__))

    def __getstate__(self):
        return _training.network_state(self)

    def __setstate__(self, state):
        _training.restore_network_state(self, state)


# -- module functions --------------------------------------------------------------
def load(filename):
    """Load a network saved by ``save`` (or by the book's network2.py) from
    ``filename``; returns a Network.  Like network2.py, it first builds a
    Network of the saved sizes, which draws its initial weights from
    np.random, then puts the saved weights in."""
    parts = _io.read(filename)
    if any(a != "sigmoid" for a in parts["activations"]):
        raise _io.NetworkFileError(
            f"{filename}: holds a network with activations {parts['activations']}; "
            "fastbp.network2 has sigmoid layers only; load it with fastbp.load")
    net = Network(parts["sizes"], cost=_CLASS_BY_NAME[parts["cost"]])
    net.weights = [np.array(w, dtype=_DTYPE) for w in parts["weights"]]
    net.biases = [np.array(b, dtype=_DTYPE).reshape(-1, 1) for b in parts["biases"]]
    return net


__all__ = ["Network", "QuadraticCost", "CrossEntropyCost", "load", "vectorized_result",
           "sigmoid", "sigmoid_prime"]
