"""fastbp.sklearn: scikit-learn's own estimator checks, a grid search, pickling.

scikit-learn is optional: everything that needs it skips cleanly without it
(CI installs it through the ``test`` extra).  Expected values come from
scikit-learn's checks, from tests/reference.py (an independent NumPy
feedforward), or from the estimator's contract (k partial_fit calls are k
epochs of fit; a pickled estimator predicts as the original).
"""
import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import reference

try:
    import sklearn
    from sklearn.utils.fixes import parse_version
    HAVE_SKLEARN = parse_version(sklearn.__version__) >= parse_version("1.6")
except ImportError:
    HAVE_SKLEARN = False

needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN,
                                   reason="scikit-learn >= 1.6 is not installed")

if HAVE_SKLEARN:
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.utils.estimator_checks import parametrize_with_checks

    from fastbp.sklearn import NetworkClassifier, NetworkRegressor

    @parametrize_with_checks([NetworkClassifier(), NetworkRegressor()])
    def test_sklearn_estimator_checks(estimator, check):
        check(estimator)
else:
    @needs_sklearn
    def test_sklearn_estimator_checks():
        pass


# ---------------------------------------------------------------------------
# The optional dependency

def test_import_without_sklearn_is_a_clear_error():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import fastbp\n"
            "try:\n"
            "    import fastbp.sklearn\n"
            "except ImportError as exc:\n"
            "    print('ImportError:', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ImportError:" in out.stdout
    assert "scikit-learn" in out.stdout and "pip install" in out.stdout


def test_fastbp_does_not_import_sklearn():
    code = ("import sys, pkgutil, importlib, fastbp\n"
            "for m in pkgutil.iter_modules(fastbp.__path__):\n"
            "    if m.name not in ('sklearn', '__main__'):\n"
            "        importlib.import_module('fastbp.' + m.name)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'sklearn'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# Helpers

def _network_outputs(network, X):
    """The output activations by the per-sample NumPy reference."""
    weights = [np.asarray(w, dtype=np.float64) for w in network.weights]
    biases = [np.asarray(b, dtype=np.float64) for b in network.biases]
    return reference.feedforward(weights, biases, network.activations, X)


@pytest.fixture(scope="module")
def digits_split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


# ---------------------------------------------------------------------------
# The classifier

@needs_sklearn
def test_classifier_learns_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = NetworkClassifier(epochs=10, random_state=0).fit(X_train, y_train)
    assert clf.network_.sizes == [64, 30, 10]
    assert clf.score(X_test, y_test) > 0.9


@needs_sklearn
def test_predict_proba_is_the_normalised_output(problem):
    X, labels, _ = problem
    names = np.array(["ant", "bee", "cat"])[labels]
    clf = NetworkClassifier(hidden_layer_sizes=(7, 4), activation="tanh", epochs=3,
                            random_state=1).fit(X, names)
    assert_array_equal(clf.classes_, ["ant", "bee", "cat"])
    A = _network_outputs(clf.network_, X)
    expected = A / A.sum(axis=1, keepdims=True)
    proba = clf.predict_proba(X)
    assert_allclose(proba, expected, rtol=1e-12)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(clf.predict(X), clf.classes_[np.argmax(expected, axis=1)])


@needs_sklearn
def test_classifier_partial_fit_is_fit_one_epoch_at_a_time(problem):
    X, labels, _ = problem
    whole = NetworkClassifier(epochs=4, batch_size=7, eta=1.0, random_state=3).fit(X, labels)
    steps = NetworkClassifier(batch_size=7, eta=1.0, random_state=3)
    steps.partial_fit(X, labels, classes=[0, 1, 2])
    for _ in range(3):
        steps.partial_fit(X, labels)
    for a, b in zip(whole.network_.weights + whole.network_.biases,
                    steps.network_.weights + steps.network_.biases):
        assert_array_equal(a, b)


@needs_sklearn
def test_classifier_partial_fit_classes(problem):
    X, labels, _ = problem
    clf = NetworkClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, labels)
    # a first batch need not hold every class
    clf.partial_fit(X[labels != 2], labels[labels != 2], classes=[0, 1, 2, 3])
    assert_array_equal(clf.classes_, [0, 1, 2, 3])
    assert clf.predict_proba(X).shape == (len(X), 4)
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X, labels + 2)
    with pytest.raises(ValueError, match="differ"):
        clf.partial_fit(X, labels, classes=[0, 1, 2])


@needs_sklearn
def test_classifier_needs_two_classes(problem):
    X, _, _ = problem
    with pytest.raises(ValueError, match="one class"):
        NetworkClassifier().fit(X, np.zeros(len(X), dtype=int))


@needs_sklearn
@pytest.mark.parametrize("params, name", [
    ({"hidden_layer_sizes": (30, 0)}, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": "30"}, "hidden_layer_sizes"),
    ({"epochs": -1}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"eta": 0.0}, "eta"),
    ({"eta": float("nan")}, "eta"),
    ({"lmbda": -1.0}, "lmbda"),
    ({"n_threads": 0}, "n_threads"),
    ({"activation": "softmax"}, "activations"),
    ({"cost": "hinge"}, "cost"),
    ({"dtype": "float16"}, "dtype"),
])
def test_bad_parameters_are_refused_at_fit(problem, params, name):
    X, labels, _ = problem
    clf = NetworkClassifier(**params)       # set, never checked, in __init__
    with pytest.raises((ValueError, TypeError), match=name):
        clf.fit(X, labels)
    assert not hasattr(clf, "network_")


@needs_sklearn
def test_divergence_leaves_the_estimator_unfitted(problem):
    X, labels, _ = problem
    clf = NetworkClassifier(activation="relu", hidden_layer_sizes=(20, 20), eta=1e12,
                            epochs=5, random_state=0)
    with pytest.raises(FloatingPointError):
        clf.fit(100 * X, labels)
    assert not hasattr(clf, "network_")
    # a fitted estimator whose refit diverges is left unfitted, not half old
    clf.set_params(eta=0.5).fit(X, labels)
    with pytest.raises(FloatingPointError):
        clf.set_params(eta=1e12).fit(100 * X, labels)
    assert not hasattr(clf, "network_") and not hasattr(clf, "n_features_in_")


@needs_sklearn
def test_random_state(problem):
    X, labels, _ = problem

    def weights(random_state):
        clf = NetworkClassifier(epochs=2, random_state=random_state).fit(X, labels)
        return np.concatenate([w.ravel() for w in clf.network_.weights])

    assert_array_equal(weights(7), weights(7))
    assert not np.array_equal(weights(7), weights(8))
    assert_array_equal(weights(np.random.RandomState(5)), weights(np.random.RandomState(5)))


@needs_sklearn
def test_float32_classifier(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = NetworkClassifier(dtype="float32", epochs=10, random_state=0).fit(X_train, y_train)
    assert all(w.dtype == np.float32 for w in clf.network_.weights)
    assert clf.score(X_test, y_test) > 0.9


# ---------------------------------------------------------------------------
# The regressor

@needs_sklearn
def test_regressor_learns_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 2))
    y = 50 + 30 * np.sin(X[:, 0]) * X[:, 1]          # targets far from [0, 1]
    reg = NetworkRegressor(epochs=60, eta=0.05, random_state=0).fit(X[:300], y[:300])
    assert reg.predict(X).shape == (400,)
    assert reg.score(X[300:], y[300:]) > 0.9


@needs_sklearn
def test_regressor_prediction_is_the_scaled_linear_output():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 3))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5] + 10, 100 * X[:, 0] ** 2])
    reg = NetworkRegressor(hidden_layer_sizes=(5,), epochs=3, random_state=0).fit(X, Y)
    assert reg.network_.activations == ["sigmoid", "linear"]
    A = _network_outputs(reg.network_, X)
    expected = A * Y.std(axis=0) + Y.mean(axis=0)
    assert_allclose(reg.predict(X), expected, rtol=1e-10)

    raw = NetworkRegressor(hidden_layer_sizes=(5,), epochs=3, eta=1e-5, random_state=0,
                           scale_targets=False).fit(X, Y)
    assert_allclose(raw.predict(X), _network_outputs(raw.network_, X), rtol=1e-10)


@needs_sklearn
@pytest.mark.parametrize("size", [1e160, 1e300])
def test_regressor_standardises_targets_whose_squares_overflow(size):
    """Targets of 1e160 and beyond are standardised as their scaled copies
    are (np.std of them would overflow), and predicted finite."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 2))
    y = np.arange(20.0)
    small = NetworkRegressor(epochs=2, random_state=0).fit(X, y)
    huge = NetworkRegressor(epochs=2, random_state=0).fit(X, y * size)
    for p, q in zip(small.network_.weights, huge.network_.weights):
        assert_allclose(p, q, rtol=1e-12, atol=1e-12)
    assert_allclose(huge.predict(X), small.predict(X) * size, rtol=1e-9)
    huge_y = np.where(y > 10, 1.7e308, -1.7e308)
    with pytest.raises(ValueError, match="too large"):
        NetworkRegressor(epochs=1).fit(X, huge_y)
    # refused, a refit leaves the fitted estimator as it was
    before = small.predict(X)
    with pytest.raises(ValueError, match="too large"):
        small.fit(X, huge_y)
    assert_array_equal(small.predict(X), before)
    first = NetworkRegressor()
    with pytest.raises(ValueError, match="too large"):
        first.partial_fit(X, huge_y)
    assert not hasattr(first, "network_")


@needs_sklearn
def test_regressor_refuses_the_cross_entropy():
    X = np.random.default_rng(0).standard_normal((10, 2))
    with pytest.raises(ValueError, match="cost must be 'quadratic' for a regressor"):
        NetworkRegressor(cost="cross-entropy").fit(X, np.arange(10.0))

@needs_sklearn
def test_regressor_partial_fit_is_fit_one_epoch_at_a_time():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 4))
    y = X.sum(axis=1)
    whole = NetworkRegressor(epochs=3, batch_size=6, random_state=4).fit(X, y)
    steps = NetworkRegressor(batch_size=6, random_state=4)
    for _ in range(3):
        steps.partial_fit(X, y)
    assert_array_equal(whole.predict(X), steps.predict(X))
    with pytest.raises(ValueError, match="targets"):
        steps.partial_fit(X, np.column_stack([y, y]))


# ---------------------------------------------------------------------------
# Pickling and copies

@needs_sklearn
@pytest.mark.parametrize("make", [
    lambda: NetworkClassifier(hidden_layer_sizes=(9, 5), epochs=3, random_state=0),
    lambda: NetworkRegressor(epochs=3, random_state=0, dtype="float32"),
], ids=["classifier", "regressor"])
def test_pickle_round_trip(problem, make):
    X, labels, _ = problem
    est = make().fit(X, labels)
    clone = pickle.loads(pickle.dumps(est))
    assert clone.network_ is not est.network_
    assert_array_equal(clone.predict(X), est.predict(X))
    if hasattr(est, "predict_proba"):
        assert_array_equal(clone.predict_proba(X), est.predict_proba(X))
    # the shuffling generator travels too: training on goes on identically
    twin = copy.deepcopy(est)
    for e in (est, clone, twin):
        e.partial_fit(X, labels)
    assert_array_equal(clone.predict(X), est.predict(X))
    assert_array_equal(twin.predict(X), est.predict(X))


# ---------------------------------------------------------------------------
# Grid search

@needs_sklearn
def test_grid_search_on_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    grid = {"eta": [0.5, 2.0], "hidden_layer_sizes": [(16,), (32,)]}
    base = NetworkClassifier(epochs=5, random_state=0)
    parallel = GridSearchCV(base, grid, cv=3, n_jobs=2).fit(X_train, y_train)
    serial = GridSearchCV(base, grid, cv=3, n_jobs=1).fit(X_train, y_train)
    # the same fits in worker processes as in this one
    assert_array_equal(parallel.cv_results_["mean_test_score"],
                       serial.cv_results_["mean_test_score"])
    assert parallel.best_params_ == serial.best_params_
    assert parallel.best_score_ > 0.9
    assert parallel.score(X_test, y_test) > 0.9
