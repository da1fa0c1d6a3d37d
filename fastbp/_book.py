"""What the two book layers (fastbp.network, fastbp.network2) share.

The book's conventions: a sample x is a column vector (n_0, 1); a training
pair is (x, y) with y a column vector (n_L, 1); a test pair is (x, label)
with an integer label.  The engine reads training pairs where they lie
(training_samples); everything else -- and pairs of any other form -- is
turned into rows of float64 matrices here, checked on the way.
"""
import contextlib
import functools
import random

import numpy as np

from . import _checks, _engine, _training, costs

DTYPE = np.dtype(np.float64)


def _unzip(name, data, second):
    """The first and the second members of the pairs of ``data``."""
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    try:
        firsts, seconds = zip(*data)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of (x, {second}) tuples") from None
    return firsts, seconds


def stack_pairs(name, data, sizes):
    """The (x, y) pairs of ``data`` as row matrices X (n, n_0) and Y (n, n_L).
    (_engine.PairRows(data) follows the pairs through a shuffle.)"""
    xs, ys = _unzip(name, data, "y")
    X = stack_columns(f"{name} x", xs, sizes[0])
    Y = stack_columns(f"{name} y", ys, sizes[-1])
    return X, Y


def shuffle(data):
    """random.shuffle(data), as the book's SGD does each epoch: the same
    draws from random's generator, the same order, the same state after.

    When random.shuffle is random.Random's own, of a plain random.Random
    (_plain_random), and data is a list, the loop runs compiled
    (_engine.shuffle_like_random: 50,000 pairs in about 4 ms instead of 30);
    otherwise -- random.shuffle replaced, say -- random.shuffle itself is
    called."""
    f = random.shuffle
    rng = getattr(f, "__self__", None)
    if (type(data) is list and len(data) < 0x80000000 and _plain_random(rng)
            and getattr(f, "__func__", None) is random.Random.shuffle
            and _shuffle_matches()):
        _engine.shuffle_like_random(data, rng.getrandbits)
    else:
        f(data)


# What random.shuffle draws with, as the random module defines it.
_RANDOM_METHODS = ("shuffle", "_randbelow", "getrandbits")
_PLAIN_METHODS = tuple(getattr(random.Random, name) for name in _RANDOM_METHODS)


def _plain_random(rng):
    """Whether rng is a random.Random whose shuffle draws as the random
    module defines it: no subclass, and no method replaced on the class or
    on the instance."""
    return (type(rng) is random.Random
            and not any(name in vars(rng) for name in _RANDOM_METHODS)
            and all(getattr(random.Random, name) is method
                    for name, method in zip(_RANDOM_METHODS, _PLAIN_METHODS)))


@functools.cache
def _shuffle_matches():
    """Whether _engine.shuffle_like_random draws as random.Random.shuffle
    does on this Python: the same order and the same generator state after,
    on lists that cross powers of two and need rejected draws."""
    for n in (2, 3, 5, 17, 64, 65, 1000):
        for seed in (0, 1):
            ours, theirs = random.Random(seed), random.Random(seed)
            a, b = list(range(n)), list(range(n))
            _engine.shuffle_like_random(a, ours.getrandbits)
            theirs.shuffle(b)
            if a != b or ours.getstate() != theirs.getstate():
                return False
    return True


def training_samples(name, data, sizes):
    """The (x, y) pairs of the list ``data`` as the engine's Samples;
    ``samples.order_of(data)`` follows the pairs through a shuffle.

    The common form -- tuples of contiguous float32 or float64 column
    vectors, as the book's loader makes -- is read in place, without a copy;
    anything else is stacked (and checked) by stack_pairs."""
    samples = _engine.pair_samples(data, sizes[0], sizes[-1])
    if samples is None:
        X, Y = stack_pairs(name, data, sizes)
        samples = _engine.matrix_samples(X, Y)
        samples.row_of = _engine.PairRows(data)
    return samples


def stack_labelled(name, data, sizes):
    """The (x, label) pairs of ``data`` as X (n, n_0) and the labels (n,)."""
    xs, labels = _unzip(name, data, "label")
    X = stack_columns(f"{name} x", xs, sizes[0])
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{name}: the labels must be integers (one per sample)")
    return X, labels


def stack_columns(name, vectors, n):
    """Column vectors (n, 1) (or (n,)) stacked as the rows of an (len, n) array."""
    if len(vectors) and {getattr(v, "shape", None) for v in vectors} <= {(n, 1), (n,)}:
        # The common case, a list of column vectors: one flat concatenation,
        # several times faster than numpy.asarray on many small arrays.
        M = np.concatenate(vectors, axis=None).reshape(len(vectors), n)
        if M.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, not {M.dtype} values")
        return _checks.check_matrix(name, M, n, DTYPE)
    try:
        M = np.asarray(vectors)
    except (TypeError, ValueError) as exc:     # ragged: vectors of several shapes
        raise ValueError(f"{name}: every vector must have shape ({n}, 1): {exc}") from None
    if M.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, not {M.dtype} values")
    if M.ndim == 3 and M.shape[2] == 1:
        M = M.reshape(M.shape[0], M.shape[1])
    if M.ndim != 2 or M.shape[1] != n:
        raise ValueError(f"{name}: every vector must have shape ({n}, 1), "
                         f"got an array of shape {M.shape[1:]}")
    return _checks.check_matrix(name, M, n, DTYPE)


def vectorized_result(j, n=10):
    """The (n, 1) unit vector with 1.0 in position j: the book's one-hot
    target for the digit j (n = 10 as in the book)."""
    e = np.zeros((n, 1))
    e[j] = 1.0
    return e


def column(name, v, n):
    """One column vector (n, 1) (or (n,)) as a (1, n) row matrix."""
    v = _checks.as_float_array(name, v, DTYPE)
    if v.shape not in ((n, 1), (n,)):
        raise ValueError(f"{name} must be a column vector of shape ({n}, 1), got {v.shape}")
    return _checks.check_matrix(name, v.reshape(1, n), n, DTYPE)


def columns_as_rows(name, a, n):
    """The input of the book's feedforward(a): a column vector (n, 1), or k
    samples as the columns of (n, k); returned as the rows of a (k, n) matrix."""
    a = _checks.as_float_array(name, a, DTYPE)
    if a.ndim != 2 or a.shape[0] != n or a.shape[1] == 0:
        raise ValueError(f"{name} must be a column vector of shape ({n}, 1) "
                         f"(or {n} rows of samples as columns), got shape {a.shape}")
    return _checks.check_matrix(name, a.T, n, DTYPE)


def backprop(weights, biases, sizes, codes, cost, X, Y, path=_training):
    """The book's backprop(x, y) for the one sample in the rows X and Y:
    (nabla_b, nabla_w) in the parameters' shapes.  Rounded as the book's
    code rounds it where the book's arithmetic applies (for a cost the
    engine knows; see _training.book_arithmetic_fits), else computed by
    ``path`` in mini-batch form."""
    if path is _training and _training.book_arithmetic_fits(weights, biases, sizes):
        activations, deltas = _engine.book_backprop(weights, biases, sizes, cost, X, Y)
        inputs = [X] + activations[:-1]
        # delta and np.dot(delta, a.transpose()): one product per entry, exact
        return ([d.reshape(-1, 1) for d in deltas],
                [np.dot(d.reshape(-1, 1), a.reshape(1, -1)) for d, a in zip(deltas, inputs)])
    nabla_b, nabla_w = path.backprop(weights, biases, sizes, codes, cost, X, Y)
    return [nb.reshape(-1, 1) for nb in nabla_b], nabla_w


def feedforward(weights, biases, sizes, codes, X, path=_training):
    """The book's feedforward(a) for the samples in the rows of X, as the
    columns of an (n_L, k) array.  One sample (a column vector, as the book
    passes it) is rounded as the book's code rounds it where the book's
    arithmetic applies; several (a matrix, which np.dot multiplies as a
    whole) are computed in mini-batch form, the same to rounding."""
    if (X.shape[0] == 1 and path is _training
            and _training.book_arithmetic_fits(weights, biases, sizes)):
        # no targets, so no delta: the cost code is not used
        activations, _ = _engine.book_backprop(weights, biases, sizes,
                                               costs.CODES["quadratic"], X)
        return activations[-1].T.copy()
    return path.feedforward(weights, biases, sizes, codes, X).T.copy()


def parameters(net):
    """A book network's weights and biases as the engine needs them."""
    return _checks.bind_parameters(net, DTYPE)


@contextlib.contextmanager
def new_parameters(net):
    """Copies of a book network's weights and biases, for training to update;
    they become net.weights and net.biases when the block ends, however it
    ends (after an error, they hold the last completed mini-batch).

    network.py makes new arrays at every step instead of updating its own, so
    an array taken from the network before is never changed by training --
    not even one that is also a training input -- and layers that started as
    one array train apart; so here."""
    weights, biases = parameters(net)
    copies = [_copy(p) for p in weights], [_copy(p) for p in biases]
    try:
        yield copies
    finally:
        net.weights, net.biases = copies


def _copy(arr):
    """A copy of arr starting on a cache line (as the engine's threads want)."""
    out = _engine.aligned_empty(arr.shape, arr.dtype)
    np.copyto(out, arr)
    return out


def check_sgd(training_data, epochs, mini_batch_size, eta):
    """The arguments SGD shares in both book modules, checked; training_data
    as a list (the one that is shuffled in place, when it is one)."""
    if not isinstance(training_data, list):
        training_data = list(training_data)
    epochs = _checks.check_int("epochs", epochs, minimum=0)
    mini_batch_size = _checks.check_int("mini_batch_size", mini_batch_size, minimum=1,
                                        maximum=_checks.BLAS_INT_MAX)
    eta = _checks.check_float("eta", eta, minimum=0.0, strict=True)
    return training_data, epochs, mini_batch_size, eta


def sigmoid(z):
    """The sigmoid function 1 / (1 + e^{-z})."""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    return sigmoid(z) * (1 - sigmoid(z))
