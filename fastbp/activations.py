"""Activation functions: the built-in ones by name, and Python-defined ones.

The built-in activations have their forward pass and derivative in C
(csrc/fastbp_kernels_impl.h), the derivative written in terms of a = f(z)
so that z need not be kept:
sigmoid' = a (1 - a), tanh' = 1 - a^2, relu' = [a > 0], linear' = 1.

Any other activation can be given as a pair of Python callables (f, f_prime),
both taking the array z of weighted inputs and returning an array of its
shape: f(z) the activations, f_prime(z) the derivative f'(z) that takes
sigma''s place in BP1 and BP2.  A network with such a layer trains on the
slower NumPy path (fastbp/_numpy_path.py).
"""
from typing import Callable, NamedTuple

import numpy as np

# The codes of enum fbp_activation in csrc/fastbp_kernels.h.
CODES = {"sigmoid": 0, "linear": 1, "tanh": 2, "relu": 3}
NAMES = {code: name for name, code in CODES.items()}


class PythonActivation(NamedTuple):
    """An activation defined by Python callables of z: f(z) and f'(z)."""
    f: Callable
    f_prime: Callable

    @property
    def name(self):
        return getattr(self.f, "__name__", type(self.f).__name__)

    def __repr__(self):
        return f"PythonActivation({self.name})"


def _is_pair(entry):
    return (isinstance(entry, (tuple, list)) and len(entry) == 2
            and callable(entry[0]) and callable(entry[1]))


def check_activations(activations, n_layers):
    """One activation for each of the n_layers layers after the input.

    ``activations`` is a name, a pair (f, f_prime) of callables, or a list
    with one name or pair per layer.  Returns a list whose entries are names
    (str) or PythonActivation."""
    if isinstance(activations, str) or _is_pair(activations):
        activations = [activations] * n_layers
    try:
        activations = list(activations)
    except TypeError:
        raise TypeError("activations must be a name, a pair (f, f_prime) of callables, "
                        f"or a list of those, one per layer, not {activations!r}") from None
    if len(activations) != n_layers:
        raise ValueError(f"activations needs one entry for each of the {n_layers} "
                         f"layers after the input, got {len(activations)}")
    out = []
    for i, entry in enumerate(activations):
        if isinstance(entry, PythonActivation) or _is_pair(entry):
            out.append(PythonActivation(*entry))
        elif isinstance(entry, str) and entry in CODES:
            out.append(entry)
        elif callable(entry):
            raise TypeError(f"activations[{i}] is a single callable; give the pair "
                            "(f, f_prime), f_prime being the derivative of f as a "
                            "function of z")
        else:
            raise ValueError(f"activations[{i}] = {entry!r} is not one of {sorted(CODES)} "
                             "nor a pair (f, f_prime) of callables")
    return out


def is_compiled(activations):
    """True when every activation is built in, so the C engine can run the network."""
    return all(isinstance(a, str) for a in activations)


def codes(activations):
    """The per-layer codes, with a placeholder for the input layer.

    Built-in activations become their C codes; Python-defined ones are
    passed through as they are (only the NumPy path accepts those)."""
    return [CODES["linear"]] + [CODES[a] if isinstance(a, str) else a
                                for a in activations]


# NumPy versions, functions of z, for the NumPy path and the tests.
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


def tanh_prime(z):
    return 1 - np.tanh(z) ** 2


def relu(z):
    return np.where(z > 0, z, 0 * z)


def relu_prime(z):
    return (z > 0).astype(np.result_type(z, np.float32))


def linear(z):
    return z


def linear_prime(z):
    return np.ones_like(z)


# name -> (f, f_prime), both functions of z
FUNCTIONS = {
    "sigmoid": (sigmoid, sigmoid_prime),
    "linear": (linear, linear_prime),
    "tanh": (np.tanh, tanh_prime),
    "relu": (relu, relu_prime),
}


def functions(code):
    """(f, f_prime) for a layer's code: a C code or a PythonActivation."""
    if isinstance(code, PythonActivation):
        return code.f, code.f_prime
    return FUNCTIONS[NAMES[code]]
