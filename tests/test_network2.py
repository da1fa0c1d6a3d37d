"""fastbp.network2 against network2.py's contract, checked
with an independent per-sample model (tests/reference_network2.py)."""
import json
import random

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastbp.network2 as network2
from fastbp import datasets
from reference_network2 import ReferenceNetwork2, one_hot, s, s_prime, sample_cost

COSTS = {"cross-entropy": network2.CrossEntropyCost, "quadratic": network2.QuadraticCost}


def book_data(X, labels, n_out, one_hot_targets):
    """Rows of X as the book's column-vector pairs (x, one-hot y) or (x, label)."""
    if one_hot_targets:
        return [(x.reshape(-1, 1), one_hot(int(j), n_out)) for x, j in zip(X, labels)]
    return [(x.reshape(-1, 1), int(j)) for x, j in zip(X, labels)]


def run_both(sizes, cost, training, evaluation, epochs, batch, eta, lmbda, capsys,
             seed=1234, init="default"):
    """Train the reference and fastbp.network2 from the same seeds, all four
    monitors on.  Returns ((net, results, lines, shuffled), same for fastbp)."""
    out = []
    for make in (lambda: ReferenceNetwork2(sizes, cost, init),
                 lambda: network2.Network(sizes, cost=COSTS[cost])):
        random.seed(seed)
        np.random.seed(seed)
        net = make()
        if init == "large" and isinstance(net, network2.Network):
            np.random.seed(seed)
            net.large_weight_initializer()
        data = list(training)
        capsys.readouterr()
        results = net.SGD(data, epochs, batch, eta, lmbda=lmbda, evaluation_data=evaluation,
                          monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                          monitor_training_cost=True, monitor_training_accuracy=True)
        lines = capsys.readouterr().out.split("\n")
        out.append((net, results, lines, [id(p) for p in data]))
    return out


def assert_same_run(ref_run, fbp_run, atol_w=1e-9):
    """The same weights (bit for bit: fastbp repeats network2.py's arithmetic
    for its two cost classes), monitored values and printed lines."""
    (ref, ref_results, ref_lines, ref_order), (net, results, lines, order) = ref_run, fbp_run
    for W_ref, W in zip(ref.weights, net.weights):
        assert_allclose(W, W_ref, rtol=0, atol=atol_w)
        assert_array_equal(W, W_ref)
    for b_ref, b in zip(ref.biases, net.biases):
        assert_allclose(b, b_ref, rtol=0, atol=atol_w)
        assert_array_equal(b, b_ref)
    eval_cost, eval_acc, train_cost, train_acc = results
    r_eval_cost, r_eval_acc, r_train_cost, r_train_acc = ref_results
    assert_allclose(train_cost, r_train_cost, rtol=1e-8)
    assert_allclose(eval_cost, r_eval_cost, rtol=1e-8)
    assert list(train_acc) == list(r_train_acc)
    assert list(eval_acc) == list(r_eval_acc)
    assert all(type(a) is int for a in train_acc + eval_acc)
    # the caller's list was shuffled in place, exactly as random.shuffle does
    assert order == ref_order
    # the printed lines: costs to rounding, everything else to the character
    assert len(lines) == len(ref_lines)
    for line, ref_line in zip(lines, ref_lines):
        if line.startswith("Cost on"):
            head, value = line.rsplit(": ", 1)
            ref_head, ref_value = ref_line.rsplit(": ", 1)
            assert head == ref_head
            assert_allclose(float(value), float(ref_value), rtol=1e-8)
        else:
            assert line == ref_line


@pytest.fixture(scope="module")
def fashion_book():
    if not datasets.fashion_mnist_available():
        pytest.skip("Fashion-MNIST is not installed "
                    f"(apt-get install dataset-fashion-mnist -> {datasets.FASHION_MNIST_DIR})")
    (X_train, y_train), (X_test, y_test) = datasets.load_fashion_mnist(dtype=np.float64)
    training = book_data(X_train[:2000], y_train[:2000], 10, True)
    evaluation = book_data(X_test[:500], y_test[:500], 10, False)
    return training, evaluation


@pytest.mark.parametrize("cost, lmbda, eta", [("cross-entropy", 5.0, 0.5),
                                              ("quadratic", 1.0, 3.0)])
def test_parity_fashion_mnist(fashion_book, capsys, cost, lmbda, eta):
    training, evaluation = fashion_book
    ref_run, fbp_run = run_both([784, 30, 10], cost, training, evaluation, 2, 10, eta,
                                lmbda, capsys)
    assert_same_run(ref_run, fbp_run)
    lines = fbp_run[2]
    assert lines[:6] == ["Epoch 0 training complete", lines[1],
                         lines[2], lines[3], lines[4], ""]
    assert lines[2].endswith(" / 2000") and lines[4].endswith(" / 500")


@pytest.fixture
def synthetic(make_problem):
    X, labels, _ = make_problem(203, 8, 4, seed=7)
    training = book_data(X[:150], labels[:150], 4, True)
    evaluation = book_data(X[150:], labels[150:], 4, False)
    return training, evaluation


@pytest.mark.parametrize("cost, lmbda, eta, init", [("cross-entropy", 5.0, 0.5, "default"),
                                                    ("quadratic", 1.0, 3.0, "default"),
                                                    ("cross-entropy", 0.0, 1.0, "large")])
def test_parity_synthetic(synthetic, capsys, cost, lmbda, eta, init):
    training, evaluation = synthetic
    # mini-batches of 7: the last one of each epoch is shorter (150 = 21 * 7 + 3)
    ref_run, fbp_run = run_both([8, 6, 5, 4], cost, training, evaluation, 3, 7, eta, lmbda,
                                capsys, init=init)
    assert_same_run(ref_run, fbp_run, atol_w=1e-12)


def test_initializers_draw_like_the_book():
    sizes = [5, 4, 3]
    for method, scaled in (("default_weight_initializer", True),
                           ("large_weight_initializer", False)):
        np.random.seed(3)
        expected_b = [np.random.randn(n, 1) for n in sizes[1:]]
        expected_w = [np.random.randn(o, i) / (np.sqrt(i) if scaled else 1.0)
                      for i, o in zip(sizes[:-1], sizes[1:])]
        after = np.random.randn()
        net = network2.Network(sizes)
        np.random.seed(3)
        getattr(net, method)()
        for got, want in zip(net.biases + net.weights, expected_b + expected_w):
            assert got.shape == want.shape
            assert_array_equal(got, want)
        assert np.random.randn() == after
    np.random.seed(3)
    net = network2.Network(sizes)
    assert net.cost is network2.CrossEntropyCost
    assert net.num_layers == 3 and net.sizes == sizes
    assert_array_equal(net.biases[0], expected_b[0])


def test_cost_classes(make_problem):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 1))
    a = s(z)
    y = one_hot(2, 4)
    q, ce = network2.QuadraticCost, network2.CrossEntropyCost
    assert_allclose(q.fn(a, y), sample_cost("quadratic", a, y), rtol=1e-14)
    assert_allclose(ce.fn(a, y), sample_cost("cross-entropy", a, y), rtol=1e-14)
    assert_allclose(q.delta(z, a, y), (a - y) * s_prime(z), rtol=1e-14)
    assert_allclose(ce.delta(z, a, y), a - y, rtol=1e-14)
    # a and y both exactly 0 or 1: the NaN terms count as 0
    assert ce.fn(np.array([[1.0], [0.0]]), np.array([[1.0], [0.0]])) == 0.0


def test_backprop_update_accuracy_and_cost(synthetic):
    training, evaluation = synthetic
    for cost in COSTS:
        np.random.seed(11)
        ref = ReferenceNetwork2([8, 6, 4], cost)
        np.random.seed(11)
        net = network2.Network([8, 6, 4], cost=COSTS[cost])
        x, y = training[0]
        gb, gw = net.backprop(x, y)
        rb, rw = ref.gradients(x, y)
        for g, r in zip(gb + gw, rb + rw):
            assert g.shape == r.shape
            assert_allclose(g, r, rtol=1e-12, atol=1e-14)
        assert_allclose(net.feedforward(x), ref.output(x), rtol=1e-13)
        net.update_mini_batch(training[:9], 0.7, 2.0, 150)
        ref.step(training[:9], 0.7, 2.0, 150)
        for p, r in zip(net.weights + net.biases, ref.weights + ref.biases):
            assert_allclose(p, r, rtol=0, atol=1e-13)
        assert net.accuracy(evaluation) == ref.accuracy(evaluation)
        assert net.accuracy(training, convert=True) == ref.accuracy(training, convert=True)
        assert_allclose(net.total_cost(training, 1.5), ref.total_cost(training, 1.5),
                        rtol=1e-12)
        assert_allclose(net.total_cost(evaluation, 1.5, convert=True),
                        ref.total_cost(evaluation, 1.5, convert=True), rtol=1e-12)


def test_monitors_off_and_reading_weights_between_calls(synthetic, capsys):
    training, evaluation = synthetic
    np.random.seed(5)
    net = network2.Network([8, 6, 4])
    results = net.SGD(training, 2, 10, 0.5, evaluation_data=evaluation)
    assert results == ([], [], [], [])
    assert capsys.readouterr().out == ("Epoch 0 training complete\n\n"
                                       "Epoch 1 training complete\n\n")
    # replacing the parameters between calls is honoured
    np.random.seed(5)
    ref = ReferenceNetwork2([8, 6, 4])
    net.weights = [W.copy() for W in ref.weights]
    net.biases = [b.copy() for b in ref.biases]
    random.seed(9)
    data = list(training)
    net.SGD(data, 1, 10, 0.5, lmbda=1.0)
    random.seed(9)
    ref.SGD(list(training), 1, 10, 0.5, lmbda=1.0)
    for p, r in zip(net.weights, ref.weights):
        assert_allclose(p, r, rtol=0, atol=1e-12)



@pytest.mark.parametrize("monitor", [False, True])
def test_training_makes_new_arrays_as_network2_does(synthetic, capsys, monitor):
    """Arrays taken from the network before SGD or update_mini_batch keep
    their values, a training input that is one of them included (network2.py
    makes new arrays at every step); the steps are the reference's."""
    training, _ = synthetic
    np.random.seed(13)
    ref = ReferenceNetwork2([8, 8, 4])
    np.random.seed(13)
    net = network2.Network([8, 8, 4])
    for obj in (net, ref):
        taken = obj.weights + obj.biases
        before = [p.copy() for p in taken]
        data = [(obj.biases[0], training[0][1])] + training[1:]
        random.seed(3)
        obj.SGD(data, 2, 10, 0.5, lmbda=1.0, monitor_training_cost=monitor)
        step = obj.update_mini_batch if obj is net else obj.step
        step(data[:6], 0.5, 1.0, len(data))
        for p, q in zip(taken, before):
            assert_array_equal(p, q)
    for p, r in zip(net.weights + net.biases, ref.weights + ref.biases):
        assert_allclose(p, r, rtol=0, atol=1e-12)

@pytest.mark.parametrize("given", ["class", "unhashable instance"])
def test_a_cost_class_of_ones_own_runs_on_the_numpy_path(synthetic, capsys, given):
    """A cost class written the book's way, not one of the two built in (or
    an instance of it, which need not be hashable)."""
    class HalfSquares:
        @staticmethod
        def fn(a, y):
            return 0.5 * float(np.sum((a - y) ** 2))

        @staticmethod
        def delta(z, a, y):
            return (a - y) * s_prime(z)

        def __eq__(self, other):          # and so no __hash__
            return type(other) is type(self)

    training, evaluation = synthetic
    random.seed(2)
    np.random.seed(2)
    ref = ReferenceNetwork2([8, 6, 4], "quadratic")
    ref_out = ref.SGD(list(training), 2, 10, 3.0, lmbda=1.0, evaluation_data=evaluation,
                      monitor_evaluation_cost=True, monitor_training_accuracy=True)
    random.seed(2)
    np.random.seed(2)
    net = network2.Network([8, 6, 4],
                           cost=HalfSquares if given == "class" else HalfSquares())
    out = net.SGD(list(training), 2, 10, 3.0, lmbda=1.0, evaluation_data=evaluation,
                  monitor_evaluation_cost=True, monitor_training_accuracy=True)
    for p, r in zip(net.weights + net.biases, ref.weights + ref.biases):
        assert_allclose(p, r, rtol=0, atol=1e-12)
    assert_allclose(out[0], ref_out[0], rtol=1e-10)
    assert out[3] == ref_out[3]


def test_save_and_load_round_trip(tmp_path):
    np.random.seed(1)
    net = network2.Network([5, 4, 3], cost=network2.QuadraticCost)
    path = tmp_path / "net.json"
    net.save(str(path))
    data = json.loads(path.read_text())
    assert sorted(data) == ["biases", "cost", "sizes", "weights"]
    assert data["cost"] == "QuadraticCost"
    assert data["sizes"] == [5, 4, 3]
    assert_array_equal(np.array(data["biases"][0]), net.biases[0])   # (n, 1) nested lists
    # like the book, load builds a Network first, which draws from np.random
    np.random.seed(7)
    network2.Network([5, 4, 3])
    after_init = np.random.randn()
    np.random.seed(7)
    loaded = network2.load(str(path))
    assert np.random.randn() == after_init
    assert loaded.cost is network2.QuadraticCost and loaded.sizes == [5, 4, 3]
    for p, q in zip(loaded.weights + loaded.biases, net.weights + net.biases):
        assert p.shape == q.shape
        assert_array_equal(p, q)


def test_vectorized_result_and_argument_errors(synthetic):
    e = network2.vectorized_result(3)
    assert e.shape == (10, 1) and e[3, 0] == 1.0 and e.sum() == 1.0
    training, evaluation = synthetic
    net = network2.Network([8, 6, 4])
    with pytest.raises(ValueError, match="evaluation_data"):
        net.SGD(training, 1, 10, 0.5, monitor_evaluation_accuracy=True)
    with pytest.raises(ValueError, match="eta"):
        net.SGD(training, 1, 10, -0.5)
    with pytest.raises(ValueError, match="lmbda"):
        net.SGD(training, 1, 10, 0.5, lmbda=-1.0)
    with pytest.raises(ValueError, match="training_data"):
        net.SGD([(np.zeros((7, 1)), np.zeros((4, 1)))], 1, 10, 0.5)


@pytest.mark.parametrize("cost", ["quadratic", None, [network2.QuadraticCost]], ids=repr)
def test_a_cost_without_fn_and_delta_is_refused_before_any_draw(cost):
    np.random.seed(3)
    with pytest.raises(TypeError, match="must have static methods fn"):
        network2.Network([4, 3, 2], cost=cost)
    after = np.random.randn()
    np.random.seed(3)
    assert np.random.randn() == after


def test_copies_and_pickles(synthetic):
    import copy
    import pickle
    training, evaluation = synthetic
    np.random.seed(4)
    net = network2.Network([8, 6, 4], cost=network2.QuadraticCost)
    snapshot = [p.copy() for p in net.weights + net.biases]
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.cost is network2.QuadraticCost
        for p, q in zip(clone.weights + clone.biases, net.weights + net.biases):
            assert p is not q
            assert_array_equal(p, q)
        random.seed(0)
        clone.SGD(list(training), 1, 10, 1.0)                  # trains the copy only
        assert not np.array_equal(clone.weights[0], snapshot[0])
        for p, q in zip(net.weights + net.biases, snapshot):
            assert_array_equal(p, q)


@pytest.mark.parametrize("cost", ["cross-entropy", "quadratic"])
def test_sgd_reads_the_pairs_in_place_without_training_monitors(synthetic, capsys, cost):
    """Without the training-set monitors SGD reads the pairs where they lie
    (float32 ones included); the weights are those of the stacking path,
    bit for bit, and the reference's to rounding."""
    training, evaluation = synthetic
    training = [(x.astype(np.float32), y) for x, y in training]     # as the book's loader
    nets = []
    for monitor in (True, False):
        random.seed(3)
        np.random.seed(3)
        net = network2.Network([8, 6, 4], cost=COSTS[cost])
        net.SGD(list(training), 2, 7, 0.5, lmbda=2.0, evaluation_data=evaluation,
                monitor_evaluation_accuracy=True, monitor_training_accuracy=monitor)
        nets.append(net)
    stacked, in_place = nets
    for a, b in zip(stacked.weights + stacked.biases, in_place.weights + in_place.biases):
        assert_array_equal(a, b)
    random.seed(3)
    np.random.seed(3)
    ref = ReferenceNetwork2([8, 6, 4], cost, "default")
    ref.SGD([(x.astype(np.float64), y) for x, y in training], 2, 7, 0.5, lmbda=2.0,
            evaluation_data=evaluation)
    for W_ref, W in zip(ref.weights + ref.biases, in_place.weights + in_place.biases):
        assert_allclose(W, W_ref, rtol=0, atol=1e-12)
    capsys.readouterr()
