"""scikit-learn estimators over fastbp.Network.

    from fastbp.sklearn import NetworkClassifier
    clf = NetworkClassifier(hidden_layer_sizes=(30,), epochs=30, eta=0.5).fit(X, y)
    clf.predict(X), clf.predict_proba(X), clf.score(X, y)

Both estimators follow scikit-learn's API (get_params / set_params, clone,
pickling, pipelines, GridSearchCV) and pass its ``check_estimator``.  The
network is the book's: fully connected layers trained by mini-batch SGD with
backpropagation, in fastbp's compiled engine.

- ``NetworkClassifier``: one sigmoid output neuron per class, the
  cross-entropy cost; ``predict_proba`` is the output activations of a
  sample scaled to sum to one.
- ``NetworkRegressor``: one linear output neuron per target, the quadratic
  cost; the targets are standardised for training (``scale_targets``), so a
  learning rate does not depend on their units.

``fit`` starts from fresh weights drawn from ``random_state`` and runs
``epochs`` epochs; ``partial_fit`` runs one epoch on the data it is given,
from the weights it has.  The trained fastbp.Network is ``network_``.

scikit-learn (>= 1.6) is an optional dependency: ``pip install fastbp[sklearn]``.
"""
import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:       # absent, or older than 1.6 (no validate_data)
    raise ImportError(
        "fastbp.sklearn needs scikit-learn >= 1.6, which is an optional dependency "
        "of fastbp: pip install 'fastbp[sklearn]' (or pip install scikit-learn)"
    ) from exc

from . import _checks
from .native import Network

__all__ = ["NetworkClassifier", "NetworkRegressor"]

_FLOAT_DTYPES = (np.float64, np.float32)


def _hidden_sizes(hidden_layer_sizes):
    """hidden_layer_sizes as a tuple of positive ints (an int means one layer)."""
    h = hidden_layer_sizes
    if isinstance(h, numbers.Integral) and not isinstance(h, bool):
        h = (h,)
    if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
        raise TypeError("hidden_layer_sizes must be a tuple of layer sizes, "
                        f"not {hidden_layer_sizes!r}")
    h = tuple(h)
    for size in h:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError("hidden_layer_sizes must hold positive integers, "
                             f"got {hidden_layer_sizes!r}")
    return tuple(int(size) for size in h)


class _NetworkEstimator(BaseEstimator):
    """What the classifier and the regressor share: building and training the network.

    Subclasses define ``__init__`` (their own defaults), ``_output_activation``
    and how targets become the network's output rows."""

    _output_activation = None

    def _new_network(self, n_features, n_outputs):
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        seed = None
        if self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return Network([n_features, *hidden, n_outputs],
                       activations=[self.activation] * len(hidden) + [self._output_activation],
                       cost=self.cost, dtype=self.dtype, seed=seed, init=self.init)

    def _train(self, network, X, Y, epochs):
        """epochs epochs of SGD on network (FloatingPointError on divergence,
        the network then holding the weights of the last good mini-batch)."""
        network.fit(X, Y, epochs=epochs, batch_size=self.batch_size, eta=self.eta,
                    lmbda=self.lmbda, monitor=False, n_threads=self.n_threads,
                    verbose=bool(self.verbose))

    def _fit_network(self, network, X, Y):
        """Train a new network for fit; on failure (divergence: FloatingPointError)
        the estimator is left unfitted rather than half old, half new."""
        try:
            self._train(network, X, Y, self.epochs)
        except BaseException:
            for name in ("network_", "classes_", "n_outputs_", "n_features_in_",
                         "feature_names_in_"):
                self.__dict__.pop(name, None)
            raise

    def _check_params(self):
        """Parameters fastbp.Network.fit checks only once there is data: refused
        here before anything is built, naming the parameter."""
        _hidden_sizes(self.hidden_layer_sizes)
        _checks.check_int("epochs", self.epochs, minimum=0)
        _checks.check_int("batch_size", self.batch_size, minimum=1,
                          maximum=_checks.BLAS_INT_MAX)
        _checks.check_float("eta", self.eta, minimum=0.0, strict=True)
        _checks.check_float("lmbda", self.lmbda, minimum=0.0)
        if self.n_threads is not None:
            _checks.check_int("n_threads", self.n_threads, minimum=1)

    def _outputs(self, X):
        """The output activations a^L of the fitted network for the rows of X."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=_FLOAT_DTYPES)
        return self.network_.feedforward(X)


class NetworkClassifier(ClassifierMixin, _NetworkEstimator):
    """A fully-connected network classifier trained by backpropagation and SGD.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (30,)
        Neurons in each hidden layer; () gives no hidden layer.
    activation : {"sigmoid", "tanh", "relu", "linear"}, default "sigmoid"
        The activation of the hidden layers.  The output layer is sigmoid,
        one neuron per class.
    cost : {"cross-entropy", "quadratic"}, default "cross-entropy"
    epochs : int, default 30
        Epochs of SGD run by ``fit``.
    batch_size : int, default 10
        Mini-batch size (the last mini-batch of an epoch may be shorter; a
        size larger than the data set makes each epoch one batch).
    eta : float, default 0.5
        The learning rate.
    lmbda : float, default 0.0
        L2 regularisation, as in the book: w <- (1 - eta lmbda / n) w - ...,
        n the number of samples of the call (of the batch, for partial_fit).
    dtype : {"float64", "float32"}, default "float64"
        The precision of the weights and of the arithmetic.
    init : {"scaled", "large"}, default "scaled"
        Initial weights N(0, 1/n_in) or N(0, 1); biases N(0, 1).
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights and the shuffling of every epoch.
    n_threads : int or None, default None
        The threads fastbp splits each mini-batch over (None: every usable
        core, or one while another fastbp training runs in this process; see
        fastbp.Network.fit).  Use 1 when many estimators train at once, as in
        GridSearchCV with the threading backend.
    verbose : bool, default False
        Print one line per epoch.

    Attributes
    ----------
    network_ : fastbp.Network, the trained network
    classes_ : array of shape (n_classes,), the class labels
    n_features_in_ : int
    feature_names_in_ : array of str, when X had column names
    """

    _output_activation = "sigmoid"

    def __init__(self, hidden_layer_sizes=(30,), activation="sigmoid", cost="cross-entropy",
                 epochs=30, batch_size=10, eta=0.5, lmbda=0.0, dtype="float64",
                 init="scaled", random_state=None, n_threads=None, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.cost = cost
        self.epochs = epochs
        self.batch_size = batch_size
        self.eta = eta
        self.lmbda = lmbda
        self.dtype = dtype
        self.init = init
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    def fit(self, X, y):
        """Train a new network on X (n_samples, n_features) and the labels y."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES)
        check_classification_targets(y)
        classes, labels = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least two "
                             f"classes to train; y has only one class, {classes[0]!r}")
        network = self._new_network(X.shape[1], len(classes))
        self._fit_network(network, X, labels)
        self.classes_ = classes
        self.network_ = network
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch of SGD on (X, y), from the current weights.

        The first call builds the network and needs ``classes``, every label
        that will ever be seen."""
        self._check_params()
        first = not hasattr(self, "network_")
        if first and classes is None:
            raise ValueError("classes must be given to the first call of partial_fit")
        X, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES, reset=first)
        check_classification_targets(y)
        if first:
            classes = np.unique(np.asarray(classes))
            if len(classes) < 2:
                raise ValueError("classes must hold at least two classes, "
                                 f"got {list(classes)!r}")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes)!r} differ from those of the "
                             f"first call of partial_fit, {self.classes_!r}")
        known = classes if first else self.classes_
        unseen = np.setdiff1d(y, known)
        if unseen.size:
            raise ValueError(f"y holds labels {unseen!r} that are not in classes {known!r}")
        labels = np.searchsorted(known, y)
        network = self._new_network(X.shape[1], len(known)) if first else self.network_
        if first:
            self.classes_ = known
            self.network_ = network
        self._train(network, X, labels, 1)
        return self

    def predict_proba(self, X):
        """The output activations of each sample scaled to sum to one:
        an (n_samples, n_classes) array, columns in the order of classes_."""
        A = np.asarray(self._outputs(X), dtype=np.float64)
        total = A.sum(axis=1, keepdims=True)
        uniform = np.full_like(A, 1.0 / A.shape[1])
        return np.divide(A, total, out=uniform, where=total > 0)

    def predict(self, X):
        """The class of the most active output neuron for each sample."""
        A = self._outputs(X)
        return self.classes_[np.argmax(A, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        return tags


class NetworkRegressor(RegressorMixin, _NetworkEstimator):
    """A fully-connected network regressor trained by backpropagation and SGD.

    One linear output neuron per target and the quadratic cost by default.
    Takes y of shape (n_samples,) or (n_samples, n_targets).

    Parameters
    ----------
    hidden_layer_sizes, activation, epochs, batch_size, lmbda, dtype, init,
    random_state, n_threads, verbose :
        As for NetworkClassifier.
    cost : "quadratic"
        (The cross-entropy needs outputs in (0, 1), which linear output
        neurons do not keep to.)
    eta : float, default 0.05
    scale_targets : bool, default True
        Train on the targets standardised by their mean and standard
        deviation (those of ``fit``'s y, or of the first ``partial_fit``
        call's), and undo it in ``predict``.

    Attributes
    ----------
    network_ : fastbp.Network, the trained network
    n_outputs_ : int, the number of targets
    n_features_in_ : int
    feature_names_in_ : array of str, when X had column names
    """

    _output_activation = "linear"

    def __init__(self, hidden_layer_sizes=(30,), activation="sigmoid", cost="quadratic",
                 epochs=30, batch_size=10, eta=0.05, lmbda=0.0, dtype="float64",
                 init="scaled", random_state=None, n_threads=None, verbose=False,
                 scale_targets=True):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.cost = cost
        self.epochs = epochs
        self.batch_size = batch_size
        self.eta = eta
        self.lmbda = lmbda
        self.dtype = dtype
        self.init = init
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.scale_targets = scale_targets

    def _check_params(self):
        super()._check_params()
        if self.cost != "quadratic":
            raise ValueError(f"cost must be 'quadratic' for a regressor (its output "
                             f"neurons are linear), got {self.cost!r}")

    def _scaling(self, Y):
        """(mean, scale) that standardise the target rows Y (0 and 1 when
        scale_targets is off)."""
        if not self.scale_targets:
            return np.zeros(Y.shape[1]), np.ones(Y.shape[1])
        # mean and standard deviation of Y / max|Y|, then scaled back: the
        # squares of targets beyond 1e154 would overflow
        big = np.max(np.abs(Y), axis=0)
        big = np.where(big > 0, big, 1.0)
        scaled = Y / big
        scale = scaled.std(axis=0) * big
        return scaled.mean(axis=0) * big, np.where(scale > 0, scale, 1.0)

    @staticmethod
    def _rows(y):
        """y as the network's (n, n_outputs) output rows, in float64."""
        return y.reshape(len(y), -1).astype(np.float64)

    @staticmethod
    def _standardised(Y, mean, scale):
        """The output rows Y standardised."""
        with np.errstate(over="ignore"):
            Y = (Y - mean) / scale
        if not np.isfinite(Y).all():
            raise ValueError("y is too large to standardise in float64 "
                             "(values near 1e308): scale it down")
        return Y

    def _targets(self, y):
        return self._standardised(self._rows(y), self._y_mean, self._y_scale)

    def _start(self, X, y):
        """A new network for (X, y) and y standardised for it; the scaling is
        kept only once both are made (a refused y changes nothing)."""
        Y = self._rows(y)
        mean, scale = self._scaling(Y)
        Y = self._standardised(Y, mean, scale)
        network = self._new_network(X.shape[1], Y.shape[1])
        self._y_mean, self._y_scale, self._y_1d = mean, scale, y.ndim == 1
        return network, Y

    def fit(self, X, y):
        """Train a new network on X (n_samples, n_features) and the targets y."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES, multi_output=True,
                             y_numeric=True)
        network, Y = self._start(X, y)
        self._fit_network(network, X, Y)
        self.n_outputs_ = network.sizes[-1]
        self.network_ = network
        return self

    def partial_fit(self, X, y):
        """One epoch of SGD on (X, y), from the current weights (the first
        call builds the network)."""
        self._check_params()
        first = not hasattr(self, "network_")
        X, y = validate_data(self, X, y, dtype=_FLOAT_DTYPES, multi_output=True,
                             y_numeric=True, reset=first)
        if first:
            network, Y = self._start(X, y)
            self.n_outputs_ = network.sizes[-1]
            self.network_ = network
        else:
            n_targets = 1 if y.ndim == 1 else y.shape[1]
            if n_targets != self.n_outputs_:
                raise ValueError(f"y has {n_targets} targets, the network was built "
                                 f"for {self.n_outputs_}")
            Y = self._targets(y)
        self._train(self.network_, X, Y, 1)
        return self

    def predict(self, X):
        """The predicted targets: shape (n_samples,) if the network was
        trained on 1-d y, else (n_samples, n_targets)."""
        Y = self._outputs(X) * self._y_scale + self._y_mean
        return Y.ravel() if self._y_1d else Y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
