"""fastbp.Network: the native API, arrays in and arrays out, samples as rows."""
import time

import numpy as np

from . import _checks, _numpy_path, _training, activations as _activations, costs as _costs
from ._engine import activations as _engine_activations, argmax as _argmax_rows, cost_total as _cost_total


# Diagnostics: a unit is saturated when f'(z) < SATURATION * max f'.
SATURATION = 0.01
_PROBE_SAMPLES = 1000


def _classes(A):
    """The class each row of outputs (or targets) A stands for: the index of
    its largest value, or for a single column 1 where it is at least 0.5,
    else 0 (a binary classifier's one sigmoid neuron)."""
    if A.shape[1] == 1:
        return (A[:, 0] >= 0.5).astype(np.intp)
    return _argmax_rows(A)


def _saturated_fractions(net, X, weights, biases):
    """Per layer, the fraction of (sample, neuron) pairs that are saturated."""
    acts, _ = net._codes()
    A = _engine_activations(weights, biases, net.sizes, acts, X)
    out = []
    for name, a in zip(net.activations, A):
        if name == "sigmoid":           # s' = a (1 - a) <= 1/4
            out.append(float(np.mean(a * (1 - a) < SATURATION * 0.25)))
        elif name == "tanh":            # tanh' = 1 - a^2 <= 1
            out.append(float(np.mean(1 - a * a < SATURATION)))
        elif name == "relu":
            out.append(float(np.mean(a <= 0)))
        else:
            out.append(0.0)
    return out


class Network:
    """A fully-connected feedforward network trained by backpropagation and SGD.

    Parameters
    ----------
    sizes : sequence of int
        Neurons per layer, input first: ``[784, 30, 10]``.
    activations : str, pair of callables, or list of those, default "sigmoid"
        One of "sigmoid", "tanh", "relu", "linear" for every layer after the
        input, or a list with one name per such layer.  A layer may instead
        be given a pair (f, f_prime) of Python functions of z (f' takes
        sigma''s place in BP1 and BP2); such a network trains on a slower
        NumPy path (fastbp/_numpy_path.py) and cannot be saved.
    cost : {"quadratic", "cross-entropy"}, default "quadratic"
        The cross-entropy needs outputs in (0, 1): a sigmoid output layer
        (or one defined in Python, whose range is yours to keep).
    dtype : float32 or float64, default float64
        The precision of the weights and of all arithmetic.
    seed : int, numpy.random.Generator or None
        Seeds the initial weights and the shuffling of every epoch.
    init : {"scaled", "large"}, default "scaled"
        "scaled" draws weights from N(0, 1/n_in) and biases from N(0, 1);
        "large" draws both from N(0, 1) (the book's Chapter 1 network).

    Attributes
    ----------
    weights : list of arrays, weights[l] of shape (n_{l+1}, n_l)
    biases : list of arrays, biases[l] of shape (n_{l+1}, 1)
        The book's shapes.  Training updates these arrays in place; they may
        be read or replaced between calls (or between epochs, by fit's
        callback), each with memory of its own.
    """

    def __init__(self, sizes, activations="sigmoid", cost="quadratic",
                 dtype=np.float64, seed=None, init="scaled"):
        self.sizes = _checks.check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.activations = _activations.check_activations(activations, self.num_layers - 1)
        self.cost = _costs.check_cost(cost)
        _costs.check_output(self.cost, self.activations[-1])
        self.dtype = _checks.check_dtype(dtype)
        if init not in ("scaled", "large"):
            raise ValueError(f"init must be 'scaled' or 'large', got {init!r}")
        self.rng = _checks.random_generator("seed", seed)
        self.biases = [self.rng.standard_normal((n, 1)).astype(self.dtype)
                       for n in self.sizes[1:]]
        self.weights = []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = self.rng.standard_normal((n_out, n_in))
            if init == "scaled":
                w /= np.sqrt(n_in)
            self.weights.append(w.astype(self.dtype))
        self._lock = _training.new_lock()

    # -- parameters -------------------------------------------------------
    def _parameters(self):
        return _checks.bind_parameters(self, self.dtype)

    def _codes(self):
        return _activations.codes(self.activations), _costs.CODES[self.cost]

    def _path(self):
        """The compiled engine (fastbp._training), or the NumPy path
        (fastbp._numpy_path) when a layer's activation is defined in Python."""
        return _training if _activations.is_compiled(self.activations) else _numpy_path

    def _inputs(self, X, name="X"):
        return _checks.check_matrix(name, X, self.sizes[0], self.dtype)

    def _targets(self, name, Y, n):
        """check_targets, and for the cross-entropy targets in [0, 1], where
        its -y ln a - (1 - y) ln(1 - a) is a cost."""
        Y, labels = _checks.check_targets(name, Y, n, self.sizes[-1], self.dtype)
        if self.cost == "cross-entropy" and Y.size and not 0 <= Y.min() <= Y.max() <= 1:
            raise ValueError(f"{name}: the cross-entropy cost needs targets in [0, 1], "
                             f"got values from {Y.min()} to {Y.max()}")
        return Y, labels

    # -- evaluation -------------------------------------------------------
    def feedforward(self, X):
        """The output activations a^L for each row of X: an (n, n_L) array.

        Many rows (more than a few milliseconds of work) are shared out over
        every usable core, as in fit; the result is the same on any number."""
        X = self._inputs(X)
        weights, biases = self._parameters()
        acts, _ = self._codes()
        return self._path().feedforward(weights, biases, self.sizes, acts, X)

    def predict(self, X):
        """The class of each row of X: the index of the most active output
        neuron, or with a single output neuron 1 where its activation is at
        least 0.5, else 0."""
        return _classes(self.feedforward(X))

    def cost_value(self, X, Y, lmbda=0.0):
        """The mean cost over the samples, plus the L2 term 0.5 (lmbda/n) sum ||w||^2."""
        X = self._inputs(X)
        Y, _ = self._targets("Y", Y, X.shape[0])
        lmbda = _checks.check_float("lmbda", lmbda, minimum=0.0)
        return self._cost(X, Y, lmbda, self.feedforward(X), self._parameters()[0])

    def _cost(self, X, Y, lmbda, A, weights):
        n = X.shape[0]
        value = _cost_total(_costs.CODES[self.cost], A, Y) / n
        if lmbda:
            value += 0.5 * (lmbda / n) * sum(float(np.sum(w.astype(np.float64) ** 2))
                                             for w in weights)
        return value

    def accuracy(self, X, y):
        """The fraction of rows of X whose predicted class (see predict) is
        y's: labels, or target rows read as predict reads outputs."""
        X = self._inputs(X)
        Y, labels = _checks.check_targets("y", y, X.shape[0], self.sizes[-1], self.dtype)
        if labels is None:
            labels = _classes(Y)
        return float(np.mean(self.predict(X) == labels))

    # -- gradients --------------------------------------------------------
    def backprop(self, X, Y):
        """The gradients of the batch-mean cost over the rows of X.

        Returns ``(nabla_b, nabla_w)`` shaped like ``biases`` and ``weights``."""
        X = self._inputs(X)
        Y, _ = self._targets("Y", Y, X.shape[0])
        weights, biases = self._parameters()
        acts, cost = self._codes()
        nabla_b, nabla_w = self._path().backprop(weights, biases, self.sizes, acts, cost, X, Y)
        return [nb.reshape(-1, 1) for nb in nabla_b], nabla_w

    # -- training ---------------------------------------------------------
    def fit(self, X, Y, epochs, batch_size, eta, lmbda=0.0, validation_data=None,
            monitor=True, n_threads=None, diagnostics=False, verbose=False,
            callback=None):
        """Train by mini-batch SGD, shuffling the samples every epoch.

        Parameters
        ----------
        X : array (n, n_0)
        Y : array (n, n_L) of targets, or (n,) integer class labels (0 and 1
            for a single output neuron: a binary classifier)
        epochs : int >= 0
        batch_size : int >= 1  (the last mini-batch of an epoch may be shorter)
        eta : float > 0, the learning rate
        lmbda : float >= 0, L2 weight decay: w <- (1 - eta lmbda / n) w - (eta/m) grad
        validation_data : (X_val, Y_val), optional
        monitor : bool, record the training cost and accuracy after each epoch
            (one extra feedforward pass over X); validation values are
            recorded whenever validation_data is given.
        n_threads : int or None, the threads each mini-batch is split over
            (None: every usable core, or one while another fastbp training
            runs in this process), also used by the monitoring feedforward.
            BLAS runs single-threaded meanwhile.
        diagnostics : bool, record after each epoch how fast each layer
            learns, measured on the first (up to) 1,000 training samples:
            "grad_norm_b" and "grad_norm_w", per layer the norms ||dC/db^l||
            and ||dC/dW^l|| of the mean cost (by the engine's backprop), and
            "saturated", per layer the fraction of (sample, neuron) pairs
            whose f'(z) is below SATURATION (1%) of its largest value:
            sigmoid units with |z| beyond about 6.9, tanh beyond about 3.0,
            ReLU units at zero; linear units never saturate.
        verbose : bool, print one line per epoch.
        callback : callable(epoch, history) or None, called after each epoch
            with the history so far (for progress reports; one fit call then
            checks and converts X and Y once for all its epochs).  Weights and
            biases it assigns to the network are checked and trained from
            the next epoch on; it may save or pickle the network (a
            checkpoint), but not train it.

        Returns
        -------
        history : dict of per-epoch lists: "seconds" (training time of the
            epoch), and "train_cost", "train_accuracy", "val_cost",
            "val_accuracy" where recorded.  Accuracies compare the classes
            of predict with class labels, or with target rows read the same
            way (argmax; a single output at 0.5).
        """
        X, xmax = _checks.check_matrix_bound("X", X, self.sizes[0], self.dtype)
        Y, labels = self._targets("Y", Y, X.shape[0])
        epochs = _checks.check_int("epochs", epochs, minimum=0)
        batch_size = _checks.check_int("batch_size", batch_size, minimum=1,
                                       maximum=_checks.BLAS_INT_MAX)
        eta = _checks.check_float("eta", eta, minimum=0.0, strict=True)
        lmbda = _checks.check_float("lmbda", lmbda, minimum=0.0)
        if validation_data is not None:
            try:
                X_val, Y_val = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data must be a pair (X_val, Y_val)") from None
            X_val = self._inputs(X_val, "validation_data X")
            Y_val, labels_val = self._targets("validation_data Y", Y_val, X_val.shape[0])
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        weights, biases = self._parameters()
        X, Y = (_checks.apart_from(A, weights, biases) for A in (X, Y))
        acts, cost = self._codes()
        n = X.shape[0]
        decay = 1.0 - eta * lmbda / n
        history = {"seconds": []}
        with _training.exclusive(self._lock), _training.engine_threads(n_threads) as n_max:
            threads = _training.ThreadPlan(n_max)
            for epoch in range(epochs):
                # Checked again each epoch: a callback may have replaced them.
                weights, biases = self._training_parameters(X, Y)
                order = self.rng.permutation(n)
                t0 = time.perf_counter()
                self._path().train_epoch(weights, biases, self.sizes, acts, cost, X, Y,
                                         order, batch_size, eta, decay, xmax=xmax,
                                         threads=threads)
                history["seconds"].append(time.perf_counter() - t0)
                line = [f"Epoch {epoch}: {history['seconds'][-1]:.3f} s"]
                if monitor:
                    self._record(history, "train", X, Y, labels, lmbda, line, weights, biases)
                if validation_data is not None:
                    self._record(history, "val", X_val, Y_val, labels_val, lmbda, line,
                                 weights, biases)
                if diagnostics:
                    self._diagnose(history, X[:_PROBE_SAMPLES], Y[:_PROBE_SAMPLES],
                                   weights, biases)
                if verbose:
                    print(", ".join(line), flush=True)
                if callback is not None:
                    with _training.between_epochs(self):
                        callback(epoch, history)
        return history

    def _training_parameters(self, X, Y):
        """The parameters fit trains this epoch, checked: in their own memory,
        apart from each other and from the training data."""
        weights, biases = self._parameters()
        _checks.check_separate(weights, biases)
        if any(_checks.shares_with_parameters(A, weights, biases) for A in (X, Y)):
            raise ValueError("the network's weights or biases share memory with X or Y, "
                             "which fit reads while it updates them")
        return weights, biases

    # _record and _diagnose take the arrays fit checked and trains, never
    # self.weights: another thread may rebind that meanwhile.
    def _diagnose(self, history, X, Y, weights, biases):
        """The learning-speed diagnostics of one epoch (see fit)."""
        acts, cost = self._codes()
        nabla_b, nabla_w = self._path().backprop(weights, biases, self.sizes, acts, cost, X, Y)
        history.setdefault("grad_norm_b", []).append(
            [float(np.linalg.norm(g)) for g in nabla_b])
        history.setdefault("grad_norm_w", []).append(
            [float(np.linalg.norm(g)) for g in nabla_w])
        history.setdefault("saturated", []).append(
            _saturated_fractions(self, X, weights, biases)
            if self._path() is _training else None)

    def _record(self, history, prefix, X, Y, labels, lmbda, line, weights, biases):
        acts, _ = self._codes()
        A = self._path().feedforward(weights, biases, self.sizes, acts, X)
        cost = self._cost(X, Y, lmbda, A, weights)
        if labels is None:
            labels = _classes(Y)
        accuracy = float(np.mean(_classes(A) == labels))
        history.setdefault(prefix + "_cost", []).append(cost)
        history.setdefault(prefix + "_accuracy", []).append(accuracy)
        line.append(f"{prefix} cost {cost:.4f}, {prefix} accuracy {accuracy:.4f}")

    # -- files --------------------------------------------------------------
    def save(self, path):
        """Save the network to ``path``: fastbp's binary .npz (keeps dtype,
        activations and cost) if the name ends in ".npz", else network2's
        JSON.  Written atomically; read back with ``fastbp.load``."""
        from . import io
        io.save(self, path)

    # -- pickling and copying ---------------------------------------------
    def __getstate__(self):
        return _training.network_state(self)

    def __setstate__(self, state):
        _training.restore_network_state(self, state)

    def __repr__(self):
        return (f"Network(sizes={self.sizes}, activations={self.activations!r}, "
                f"cost={self.cost!r}, dtype={self.dtype.name})")
