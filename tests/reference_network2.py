"""An independent, sample-by-sample model of network2.py's behaviour.

Written from the equations, for the parity tests of fastbp.network2; it
shares nothing with fastbp.  Samples are column vectors.  For one sample
(x, y), sigmoid layers l = 1..L with z^l = W^l a^{l-1} + b^l, a^l = s(z^l):

    delta^L = a^L - y                        cross-entropy  (s' cancels)
    delta^L = (a^L - y) * s'(z^L)            quadratic                     BP1
    delta^l = (W^{l+1})^T delta^{l+1} * s'(z^l)                            BP2
    dC_x/db^l = delta^l,   dC_x/dW^l = delta^l (a^{l-1})^T                BP3, BP4

A mini-batch of m samples out of a training set of n moves
W <- (1 - eta lmbda / n) W - (eta / m) sum_x dC_x/dW and
b <- b - (eta / m) sum_x dC_x/db.
"""
import random

import numpy as np


def s(z):
    return 1.0 / (1.0 + np.exp(-z))


def s_prime(z):
    return s(z) * (1.0 - s(z))


def sample_cost(cost, a, y):
    if cost == "quadratic":
        return 0.5 * float(np.sum((a - y) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = -y * np.log(a) - (1.0 - y) * np.log(1.0 - a)
    return float(np.sum(np.nan_to_num(terms)))


def one_hot(j, n):
    e = np.zeros((n, 1))
    e[j, 0] = 1.0
    return e


class ReferenceNetwork2:
    """network2.py's contract, one sample at a time.

    ``cost`` is "quadratic" or "cross-entropy"; ``init`` "default" (weights
    N(0, 1/n_in)) or "large" (N(0, 1)); biases N(0, 1).  All draws come from
    np.random.randn: every bias vector first, then every weight matrix."""

    def __init__(self, sizes, cost="cross-entropy", init="default"):
        self.sizes = list(sizes)
        self.cost = cost
        self.biases = [np.random.randn(n, 1) for n in self.sizes[1:]]
        self.weights = []
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = np.random.randn(n_out, n_in)
            self.weights.append(w / np.sqrt(n_in) if init == "default" else w)

    def output(self, x):
        a = x
        for W, b in zip(self.weights, self.biases):
            a = s(W @ a + b)
        return a

    def gradients(self, x, y):
        """dC_x/db and dC_x/dW for one sample, shaped like the parameters."""
        a, acts, zs = x, [x], []
        for W, b in zip(self.weights, self.biases):
            zs.append(W @ a + b)
            a = s(zs[-1])
            acts.append(a)
        L = len(self.weights)
        grad_b, grad_w = [None] * L, [None] * L
        if self.cost == "cross-entropy":
            delta = acts[-1] - y
        else:
            delta = (acts[-1] - y) * s_prime(zs[-1])
        for l in range(L - 1, -1, -1):
            grad_b[l] = delta
            grad_w[l] = delta @ acts[l].T
            if l:
                delta = (self.weights[l].T @ delta) * s_prime(zs[l - 1])
        return grad_b, grad_w

    def step(self, batch, eta, lmbda, n):
        m = len(batch)
        sum_b = [np.zeros_like(b) for b in self.biases]
        sum_w = [np.zeros_like(W) for W in self.weights]
        for x, y in batch:
            gb, gw = self.gradients(x, y)
            for l in range(len(sum_b)):
                sum_b[l] += gb[l]
                sum_w[l] += gw[l]
        shrink = 1.0 - eta * (lmbda / n)        # network2.py's grouping
        self.weights = [shrink * W - (eta / m) * g for W, g in zip(self.weights, sum_w)]
        self.biases = [b - (eta / m) * g for b, g in zip(self.biases, sum_b)]

    def total_cost(self, data, lmbda, convert=False):
        """Mean cost over data (y one-hot; int labels when convert) plus the L2 term."""
        n_out = self.sizes[-1]
        total = 0.0
        for x, y in data:
            target = one_hot(y, n_out) if convert else y
            total += sample_cost(self.cost, self.output(x), target)
        total /= len(data)
        return total + 0.5 * (lmbda / len(data)) * sum(float(np.sum(W ** 2))
                                                       for W in self.weights)

    def accuracy(self, data, convert=False):
        """How many samples are classified right (y one-hot when convert, else a label)."""
        right = 0
        for x, y in data:
            label = int(np.argmax(y)) if convert else int(y)
            right += int(np.argmax(self.output(x)) == label)
        return right

    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0,
            evaluation_data=None, monitor_evaluation_cost=False,
            monitor_evaluation_accuracy=False, monitor_training_cost=False,
            monitor_training_accuracy=False):
        """Shuffles the caller's list with random.shuffle every epoch; prints
        the epoch line, one line per monitored value, then an empty line."""
        n = len(training_data)
        eval_cost, eval_acc, train_cost, train_acc = [], [], [], []
        for j in range(epochs):
            random.shuffle(training_data)
            for k in range(0, n, mini_batch_size):
                self.step(training_data[k:k + mini_batch_size], eta, lmbda, n)
            print(f"Epoch {j} training complete")
            if monitor_training_cost:
                train_cost.append(self.total_cost(training_data, lmbda))
                print(f"Cost on training data: {train_cost[-1]}")
            if monitor_training_accuracy:
                train_acc.append(self.accuracy(training_data, convert=True))
                print(f"Accuracy on training data: {train_acc[-1]} / {n}")
            if monitor_evaluation_cost:
                eval_cost.append(self.total_cost(evaluation_data, lmbda, convert=True))
                print(f"Cost on evaluation data: {eval_cost[-1]}")
            if monitor_evaluation_accuracy:
                eval_acc.append(self.accuracy(evaluation_data))
                print(f"Accuracy on evaluation data: {eval_acc[-1]} / {len(evaluation_data)}")
            print()
        return eval_cost, eval_acc, train_cost, train_acc
