"""An independent, deliberately slow NumPy reference for the tests.

Written from the four equations of backpropagation (BP1-BP4) for one
sample at a time, with 1-d vectors; nothing here is shared with fastbp.
For a layer l with weights W (n_l x n_{l-1}), biases b (n_l) and activation
f, and one sample x with target y:

    z^l = W^l a^{l-1} + b^l,   a^l = f_l(z^l),   a^0 = x          feedforward
    delta^L = dC/da^L * f_L'(z^L)                                   BP1
    delta^l = ((W^{l+1})^T delta^{l+1}) * f_l'(z^l)                 BP2
    dC/db^l = delta^l                                               BP3
    dC/dW^l = delta^l (a^{l-1})^T                                   BP4

Three layers of use:
(a) per-sample gradients (``sample_gradients``) for any stack of
    sigmoid / tanh / relu / linear layers and the quadratic or cross-entropy
    cost;
(b) a mini-batch SGD trainer (``sgd_epoch``) that sums per-sample gradients
    over each mini-batch, with optional L2 weight decay;
(c) ``BookStyleNetwork``, which behaves as the book's network.py is
    documented to behave (global ``np.random`` draws,
    ``random.shuffle`` of the caller's list, the printed lines), for parity
    tests of ``fastbp.network``.
"""
import random

import numpy as np


# ---------------------------------------------------------------------------
# Activations: the function and its derivative, both as functions of z.

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _sigmoid_slope(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


def _tanh_slope(z):
    return 1.0 - np.tanh(z) ** 2


def _relu(z):
    return np.where(z > 0, z, 0.0)


def _relu_slope(z):
    return (z > 0).astype(float)


ACTIVATIONS = {
    "sigmoid": (_sigmoid, _sigmoid_slope),
    "tanh": (np.tanh, _tanh_slope),
    "relu": (_relu, _relu_slope),
    "linear": (lambda z: z + 0.0, lambda z: np.ones_like(z)),
}

COSTS = ("quadratic", "cross-entropy")


def as_list(activations, n_layers):
    """One activation name for each of the n_layers layers after the input."""
    if isinstance(activations, str):
        return [activations] * n_layers
    names = list(activations)
    assert len(names) == n_layers
    return names


# ---------------------------------------------------------------------------
# (a) One sample.

def forward_sample(weights, biases, activations, x):
    """Feed x (1-d) forward.  Returns (zs, outs): zs[l] is z of layer l+1 and
    outs[l] its activation; outs[-1] is the network's output."""
    names = as_list(activations, len(weights))
    zs, outs = [], []
    a = np.asarray(x, dtype=np.float64).ravel()
    for W, b, name in zip(weights, biases, names):
        f, _ = ACTIVATIONS[name]
        z = W @ a + np.ravel(b)
        a = f(z)
        zs.append(z)
        outs.append(a)
    return zs, outs


def sample_cost(cost, a, y):
    """The cost of one sample's output a against its target y."""
    a = np.ravel(a)
    y = np.ravel(y)
    if cost == "quadratic":
        return 0.5 * float(np.sum((a - y) ** 2))
    if cost == "cross-entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = -y * np.log(a) - (1.0 - y) * np.log(1.0 - a)
        return float(np.sum(np.nan_to_num(terms)))
    raise ValueError(cost)


def output_delta(cost, name, z, a, y):
    """BP1 for one sample: dC/da times f'(z) of the output layer."""
    _, slope = ACTIVATIONS[name]
    if cost == "quadratic":
        return (a - y) * slope(z)
    if cost == "cross-entropy":
        if name == "sigmoid":
            return a - y               # sigma'(z) = a (1 - a) cancels
        return (a - y) / (a * (1.0 - a)) * slope(z)
    raise ValueError(cost)


def sample_gradients(weights, biases, activations, cost, x, y):
    """dC_x/db and dC_x/dW for one sample, as lists of 1-d and 2-d arrays."""
    names = as_list(activations, len(weights))
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    zs, outs = forward_sample(weights, biases, names, x)
    inputs = [x] + outs[:-1]             # a^{l-1} for each layer
    L = len(weights)
    grad_b = [None] * L
    grad_w = [None] * L
    delta = output_delta(cost, names[-1], zs[-1], outs[-1], y)
    for l in range(L - 1, -1, -1):
        grad_b[l] = delta                                  # BP3
        grad_w[l] = np.outer(delta, inputs[l])             # BP4
        if l > 0:
            _, slope = ACTIVATIONS[names[l - 1]]
            delta = (weights[l].T @ delta) * slope(zs[l - 1])   # BP2
    return grad_b, grad_w


# ---------------------------------------------------------------------------
# Whole data sets, one sample at a time.

def feedforward(weights, biases, activations, X):
    """The outputs for every row of X, as an (n, n_L) array."""
    return np.array([forward_sample(weights, biases, activations, x)[1][-1] for x in X])


def mean_cost(weights, biases, activations, cost, X, Y, lmbda=0.0):
    """The cost averaged over the rows, plus 0.5 (lmbda / n) sum ||W||^2."""
    out = feedforward(weights, biases, activations, X)
    n = len(X)
    total = sum(sample_cost(cost, a, y) for a, y in zip(out, Y)) / n
    if lmbda:
        total += 0.5 * (lmbda / n) * sum(float(np.sum(W ** 2)) for W in weights)
    return total


def summed_gradients(weights, biases, activations, cost, X, Y):
    """Sums over the rows of X of the per-sample gradients."""
    sum_b = [np.zeros(np.ravel(b).shape) for b in biases]
    sum_w = [np.zeros(W.shape) for W in weights]
    for x, y in zip(X, Y):
        gb, gw = sample_gradients(weights, biases, activations, cost, x, y)
        for l in range(len(weights)):
            sum_b[l] += gb[l]
            sum_w[l] += gw[l]
    return sum_b, sum_w


def mean_gradients(weights, biases, activations, cost, X, Y):
    """The gradients of the batch-mean cost: summed gradients over m."""
    sum_b, sum_w = summed_gradients(weights, biases, activations, cost, X, Y)
    m = len(X)
    return [g / m for g in sum_b], [g / m for g in sum_w]


# ---------------------------------------------------------------------------
# (b) Mini-batch SGD.

def copy_parameters(weights, biases):
    """float64 copies: weights as given, biases as 1-d vectors."""
    return ([np.array(W, dtype=np.float64) for W in weights],
            [np.array(b, dtype=np.float64).ravel() for b in biases])


def sgd_step(weights, biases, activations, cost, X_batch, Y_batch, eta,
             lmbda=0.0, n=None):
    """One mini-batch step, in place on the lists' entries (new arrays):
    W <- (1 - eta lmbda / n) W - (eta / m) sum grad_W,
    b <- b - (eta / m) sum grad_b."""
    m = len(X_batch)
    sum_b, sum_w = summed_gradients(weights, biases, activations, cost, X_batch, Y_batch)
    shrink = 1.0 - eta * lmbda / n if lmbda else 1.0
    for l in range(len(weights)):
        weights[l] = shrink * weights[l] - (eta / m) * sum_w[l]
        biases[l] = biases[l] - (eta / m) * sum_b[l]


def sgd_epoch(weights, biases, activations, cost, X, Y, order, batch_size, eta,
              lmbda=0.0, n=None):
    """One epoch: visit the rows in ``order``, batch_size at a time (the last
    mini-batch may be shorter).  n (for the decay) defaults to len(X)."""
    n = len(X) if n is None else n
    order = np.asarray(order)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        sgd_step(weights, biases, activations, cost, X[rows], Y[rows], eta, lmbda, n)


def train(weights, biases, activations, cost, X, Y, orders, batch_size, eta, lmbda=0.0):
    """Copies of the parameters trained for one epoch per entry of ``orders``.
    Returns (weights, biases) with biases as 1-d vectors."""
    W, b = copy_parameters(weights, biases)
    for order in orders:
        sgd_epoch(W, b, activations, cost, X, Y, order, batch_size, eta, lmbda)
    return W, b


# ---------------------------------------------------------------------------
# (c) The network.py contract, sample by sample.

class BookStyleNetwork:
    """Sigmoid layers, quadratic cost, column-vector samples, global random state.

    Parameters are drawn with np.random.randn: one (n_l, 1) bias vector per
    layer first, then one (n_l, n_{l-1}) weight matrix per layer."""

    def __init__(self, sizes):
        self.sizes = list(sizes)
        self.num_layers = len(self.sizes)
        self.biases = [np.random.randn(n, 1) for n in self.sizes[1:]]
        self.weights = [np.random.randn(n_out, n_in)
                        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:])]

    def feedforward(self, a):
        out = forward_sample(self.weights, self.biases, "sigmoid", a)[1][-1]
        return out.reshape(-1, 1)

    def backprop(self, x, y):
        """Gradients of one sample's quadratic cost, in the parameters' shapes."""
        gb, gw = sample_gradients(self.weights, self.biases, "sigmoid", "quadratic", x, y)
        return [g.reshape(-1, 1) for g in gb], gw

    def update_mini_batch(self, mini_batch, eta):
        m = len(mini_batch)
        sum_b = [np.zeros(b.shape) for b in self.biases]
        sum_w = [np.zeros(W.shape) for W in self.weights]
        for x, y in mini_batch:
            gb, gw = self.backprop(x, y)
            sum_b = [s + g for s, g in zip(sum_b, gb)]
            sum_w = [s + g for s, g in zip(sum_w, gw)]
        self.biases = [b - (eta / m) * s for b, s in zip(self.biases, sum_b)]
        self.weights = [W - (eta / m) * s for W, s in zip(self.weights, sum_w)]

    def evaluate(self, test_data):
        return sum(int(np.argmax(self.feedforward(x)) == label) for x, label in test_data)

    def train_one_epoch(self, training_data, mini_batch_size, eta):
        """Shuffle the caller's list in place, then one step per consecutive
        mini-batch (the last may be shorter)."""
        random.shuffle(training_data)
        for k in range(0, len(training_data), mini_batch_size):
            self.update_mini_batch(training_data[k:k + mini_batch_size], eta)

    @staticmethod
    def epoch_line(j, correct=None, n_test=None):
        """The line printed after epoch j."""
        if n_test:
            return f"Epoch {j}: {correct} / {n_test}"
        return f"Epoch {j} complete"

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """One printed line per epoch of train_one_epoch."""
        for j in range(epochs):
            self.train_one_epoch(training_data, mini_batch_size, eta)
            if test_data:
                print(self.epoch_line(j, self.evaluate(test_data), len(test_data)))
            else:
                print(self.epoch_line(j))


class BookStyleNetworkReversedSums(BookStyleNetwork):
    """The same computation with each mini-batch's gradients summed in the
    opposite order: an equally valid float64 rounding of the same maths.
    How far it ends from BookStyleNetwork measures the rounding noise of a
    training run, the scale against which "the same weights" is judged."""

    def update_mini_batch(self, mini_batch, eta):
        super().update_mini_batch(list(mini_batch)[::-1], eta)
