"""How fast is fastbp?  The comparison report (``python -m fastbp bench``).

One table per run: the seconds of one training epoch for fastbp and for each
reference, the ratio of each reference's time to fastbp's, the achieved
GFLOP/s, and beside them the rate of a large matrix product measured in the
same run (the practical ceiling) and the BLAS threads in use.  Only ratios
measured in one run mean anything on a shared machine.

The workloads:

* ``W1``, the book's network: [784, 30, 10], mini-batch 10, eta 3.0, float64,
  50,000 samples;
* ``W2``, compute-bound: [784, 1024, 1024, 10], mini-batch 128, float32,
  50,000 samples;
* ``sweep``: [784, h, 10] for several h and mini-batch sizes, on 2,000
  samples per case but at most 500 mini-batches (see sweep_samples).

All of them train sigmoid neurons with the quadratic cost, from the same
initial weights, on Fashion-MNIST where it is installed and on generated
data of the same shape otherwise.  Every contender visits the samples in one
fixed shuffled order, reads the same arrays (whose rows start on a cache
line, as fastbp's data loaders return them: see fastbp.arrays) and does no
monitoring, so only the epoch is timed.

``--gradient-cost`` measures Chapter 2's argument for backpropagation instead: the time to
get the full gradient by backpropagation and by central finite differences
for networks of growing size, and how each grows with the number of weights.

The pure-NumPy references live in the source tree, in ``bench/references.py``;
PyTorch, JAX and scikit-learn are compared when they are installed.
"""
import argparse
import contextlib
import importlib
import importlib.util
import io
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from . import _checks, _training, activations as _activations, arrays, costs as _costs, datasets

WORKLOADS = {
    "W1": dict(sizes=(784, 30, 10), batch_size=10, eta=3.0, dtype="float64", samples=50_000),
    "W2": dict(sizes=(784, 1024, 1024, 10), batch_size=128, eta=3.0, dtype="float32",
               samples=50_000),
    "sweep": dict(sizes=None, batch_size=None, eta=3.0, dtype="float64", samples=2_000),
}
SWEEP_HIDDEN = (10, 30, 100, 300, 1024)
SWEEP_BATCH_SIZES = (1, 10, 32, 128, 256)
GRADIENT_COST_HIDDEN = (5, 10, 20, 40, 80, 160, 320)

# Contenders other than fastbp's engine, by the name --references takes.
REFERENCES = {
    "per-sample": "per-sample NumPy (network.py's algorithm)",
    "vectorized": "vectorized NumPy (one GEMM per layer)",
    "network-sgd": "fastbp.network SGD (book's tuples)",
    "fastbp-float32": "fastbp, float32",
    "fastbp-fit": "fastbp Network.fit",
    "torch": "PyTorch CPU",
    "jax": "JAX jit",
    "sklearn": "scikit-learn MLPClassifier",
}
DEFAULT_REFERENCES = {
    "W1": ("per-sample", "vectorized", "network-sgd", "fastbp-float32", "torch", "jax",
           "sklearn"),
    "W2": ("vectorized", "torch", "jax", "sklearn"),
    "sweep": ("vectorized", "torch", "jax", "sklearn"),
}
# The module each third-party contender imports.
THIRD_PARTY = {"torch": "torch", "jax": "jax", "sklearn": "sklearn"}
PER_SAMPLE_SUBSET = 2_000
# Mini-batches each contender trains on, untimed, before its first timed epoch.
WARM_BATCHES = 20


class Unavailable(Exception):
    """A contender that cannot run here (a library is not installed, or it
    does not apply to this workload); the message says why."""


# -- the pure-NumPy references (bench/references.py) --------------------------

_REFERENCES_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench", "references.py")
_references_module = None


def references():
    """The module bench/references.py of the source tree fastbp runs from."""
    global _references_module
    if _references_module is None:
        if not os.path.exists(_REFERENCES_FILE):
            raise Unavailable(f"the NumPy references need fastbp's source tree "
                              f"({_REFERENCES_FILE} not found)")
        spec = importlib.util.spec_from_file_location("fastbp_bench_references",
                                                      _REFERENCES_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _references_module = module
    return _references_module


# -- data and the case being measured -----------------------------------------

_pool_cache = {}


def load_samples(n, n_in=784, n_out=10, seed=0):
    """(X, labels, source) for n samples as float64: Fashion-MNIST's images
    (training set, then test set, repeated if n is larger) when installed and
    the shape fits, else generated uniform images and random labels."""
    if n_in == 784 and n_out == 10 and datasets.fashion_mnist_available():
        if "fashion" not in _pool_cache:
            (Xtr, ytr), (Xte, yte) = datasets.load_fashion_mnist(dtype=np.float64)
            _pool_cache["fashion"] = (arrays.aligned(np.concatenate([Xtr, Xte])),
                                      np.concatenate([ytr, yte]))
        pool_X, pool_y = _pool_cache["fashion"]
        if n <= len(pool_X):
            X, labels = pool_X[:n], pool_y[:n]
        else:
            rows = np.arange(n) % len(pool_X)
            X, labels = arrays.aligned(pool_X[rows]), pool_y[rows]
        return X, labels.copy(), "Fashion-MNIST"
    rng = np.random.default_rng(seed)
    X = arrays.aligned(rng.random((n, n_in)))
    labels = rng.integers(0, n_out, size=n)
    why = ("Fashion-MNIST is not installed" if n_in == 784 and n_out == 10
           else "not the shape of Fashion-MNIST")
    return X, labels, f"generated data ({why})"


@dataclass
class Case:
    """One measurement: a network, its initial parameters (float64, the
    book's shapes), the training data in the case's dtype, and the order."""
    sizes: tuple
    batch_size: int
    eta: float
    dtype: np.dtype
    X: np.ndarray
    Y: np.ndarray
    labels: np.ndarray
    order: np.ndarray
    weights: list
    biases: list
    source: str
    _other_dtypes: dict = field(default_factory=dict, repr=False)

    @property
    def n(self):
        return len(self.order)

    def flops_per_epoch(self):
        return self.n * _training.flops_per_sample(self.sizes)

    def initial(self, dtype=None):
        """Fresh copies of the initial (weights, biases) in dtype."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        return ([np.array(w, dtype=dtype) for w in self.weights],
                [np.array(b, dtype=dtype) for b in self.biases])

    def astype(self, dtype):
        """The same case with the data and arithmetic in another dtype."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype not in self._other_dtypes:
            self._other_dtypes[dtype] = Case(
                self.sizes, self.batch_size, self.eta, dtype, arrays.aligned(self.X, dtype),
                self.Y.astype(dtype), self.labels, self.order, self.weights, self.biases,
                self.source)
        return self._other_dtypes[dtype]


def make_case(sizes, batch_size, eta=3.0, dtype=np.float64, samples=50_000, seed=0, data=None):
    """A Case for the network ``sizes``: Fashion-MNIST or generated data
    (``data`` = (X, labels, source) to reuse loaded samples), one-hot targets,
    the "scaled" initial weights of fastbp.Network (seed ``seed``), and one
    fixed shuffled order of the samples."""
    sizes = tuple(int(s) for s in sizes)
    if data is None:
        data = load_samples(samples, sizes[0], sizes[-1], seed)
    X, labels, source = data
    X, labels = X[:samples], labels[:samples]
    dtype = np.dtype(dtype)
    Y = np.zeros((len(X), sizes[-1]), dtype=dtype)
    Y[np.arange(len(X)), labels] = 1
    rng = np.random.default_rng(seed)
    biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
    weights = [rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
               for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    order = rng.permutation(len(X)).astype(np.intp)
    return Case(sizes, int(batch_size), float(eta), dtype,
                arrays.aligned(X, dtype), Y, labels, order, weights, biases, source)


def sweep_samples(batch_size):
    """Samples per sweep case: 2,000, but at most 500 mini-batches, so that
    the per-mini-batch overhead of small batches does not make the sweep long."""
    return min(WORKLOADS["sweep"]["samples"], 500 * int(batch_size))


def workload_case(name, dtype=None, samples=None, seed=0, hidden=None, batch_size=None,
                  data=None):
    """The Case of workload W1 or W2 (sweep: give hidden and batch_size)."""
    spec = WORKLOADS[name]
    sizes = spec["sizes"] if hidden is None else (784, int(hidden), 10)
    batch_size = batch_size or spec["batch_size"]
    if samples is None:
        samples = sweep_samples(batch_size) if name == "sweep" else spec["samples"]
    return make_case(sizes, batch_size, spec["eta"], dtype or spec["dtype"], samples, seed, data)


# -- the contenders -----------------------------------------------------------

@dataclass
class Contender:
    """Something that trains one epoch of a Case.  ``reset()`` puts the
    initial parameters back (not timed); ``run()`` is the timed epoch, over
    ``samples`` samples (fewer than the case's when it is timed on a subset
    and scaled)."""
    name: str
    label: str
    run: object
    reset: object
    samples: int
    dtype: np.dtype
    note: str = ""
    warm: object = None
    params: object = None     # () -> (weights, biases) as float64 arrays in the book's shapes
    describe: object = None   # () -> a line about how it ran (threads), or None


def _as_book(weights, biases):
    return ([np.array(w, dtype=np.float64) for w in weights],
            [np.array(b, dtype=np.float64).reshape(-1, 1) for b in biases])


def warm_samples(case):
    """How many samples a contender warms up on before it is timed."""
    return min(case.n, WARM_BATCHES * case.batch_size)


def _warm_rows(case):
    """The rows a contender warms up on: the first few mini-batches."""
    return case.order[:warm_samples(case)]


def _sigmoid_codes(sizes):
    return _activations.codes(["sigmoid"] * (len(sizes) - 1))


def fastbp_contender(case, dtype=None, name="fastbp", threads=None):
    """fastbp's compiled epoch as fastbp.Network.fit runs each epoch: the
    engine's threads (``threads``, default every usable core) with BLAS kept
    to one thread, and one thread plan for all the epochs, settled during
    the warm-up (the first epoch of a fit probes the thread counts)."""
    case = case.astype(dtype or case.dtype)
    initial_w, initial_b = case.initial()
    weights, biases = case.initial()
    codes, cost = _sigmoid_codes(case.sizes), _costs.CODES["quadratic"]
    sizes = list(case.sizes)
    xmax = _checks.max_abs(case.X)
    state = {}

    def reset():
        for p, p0 in zip(weights + biases, initial_w + initial_b):
            np.copyto(p, p0)

    def epoch(order):
        with _training.engine_threads(threads) as n_max:
            if "plan" not in state:
                state["plan"] = _training.ThreadPlan(n_max)
            _training.train_epoch(weights, biases, sizes, codes, cost, case.X, case.Y, order,
                                  case.batch_size, case.eta, xmax=xmax,
                                  threads=state["plan"])

    def warm():
        epoch(_warm_rows(case))
        if state["plan"].chosen is None:        # the probe needs more mini-batches
            reset()
            epoch(case.order)

    def describe():
        plan = state.get("plan")
        if plan is None:
            return None
        probe = ", ".join(f"{n} thread(s) {t * 1e6:.2f} us/sample"
                          for n, t in sorted(plan.timings.items()))
        return (f"{label}: the engine split each mini-batch over {_threads(plan.chosen or 1)} "
                f"(of {plan.n_max} usable; BLAS kept to 1 thread inside)"
                + (f"; its probe timed {probe}" if probe else ""))

    label = "fastbp" if name == "fastbp" else f"fastbp, {case.dtype.name}"
    return Contender(name, label, lambda: epoch(case.order), reset, case.n, case.dtype,
                     warm=warm, params=lambda: _as_book(weights, biases), describe=describe)


def fastbp_fit_contender(case, threads=None):
    """fastbp.Network.fit for one epoch, monitor=False: the public API,
    with its argument checks, its own shuffle, and a fresh thread plan."""
    from .native import Network
    net = Network(list(case.sizes), dtype=case.dtype, seed=0)
    k = len(_warm_rows(case))

    def reset():
        net.weights, net.biases = case.initial()

    def fit(X, Y):
        net.fit(X, Y, 1, case.batch_size, case.eta, monitor=False, n_threads=threads)

    return Contender("fastbp-fit", REFERENCES["fastbp-fit"], lambda: fit(case.X, case.Y), reset,
                     case.n, case.dtype, warm=lambda: fit(case.X[:k], case.Y[:k]))


def network_sgd_contender(case):
    """The book's API: fastbp.network.Network.SGD on a list of (x, y) column
    tuples, one epoch, its printed line swallowed."""
    if case.dtype != np.float64:
        raise Unavailable("fastbp.network works in float64 only")
    from . import network as book
    state = np.random.get_state()
    net = book.Network(list(case.sizes))
    np.random.set_state(state)
    X, Y = case.X[case.order], case.Y[case.order]
    n_in, n_out = case.sizes[0], case.sizes[-1]
    training_data = [(x.reshape(n_in, 1), y.reshape(n_out, 1)) for x, y in zip(X, Y)]

    def reset():
        net.weights, net.biases = case.initial()

    def sgd(data):
        with contextlib.redirect_stdout(io.StringIO()):
            net.SGD(data, 1, case.batch_size, case.eta)

    k = len(_warm_rows(case))
    return Contender("network-sgd", REFERENCES["network-sgd"], lambda: sgd(training_data), reset,
                     case.n, case.dtype, warm=lambda: sgd(training_data[:k]))


def _numpy_contender(case, name, epoch, samples):
    initial_w, initial_b = case.initial()
    weights, biases = case.initial()
    order = case.order[:samples]

    def reset():
        for p, p0 in zip(weights + biases, initial_w + initial_b):
            np.copyto(p, p0)

    def run(rows=order):
        epoch(weights, biases, case.X, case.Y, rows, case.batch_size, case.eta)

    return Contender(name, REFERENCES[name], run, reset, len(order), case.dtype,
                     warm=lambda: run(_warm_rows(case)),
                     params=lambda: _as_book(weights, biases))


def vectorized_contender(case):
    return _numpy_contender(case, "vectorized", references().vectorized_epoch, case.n)


def per_sample_contender(case, subset=PER_SAMPLE_SUBSET):
    """The per-sample reference, timed on the first ``subset`` samples of the
    order (whole mini-batches) and scaled to the epoch."""
    subset = case.n if subset is None else min(case.n, int(subset))
    if subset < case.n:
        subset = max(case.batch_size, subset - subset % case.batch_size)
    c = _numpy_contender(case, "per-sample", references().per_sample_epoch, subset)
    if subset < case.n:
        c.note = f"timed on {subset:,} samples, scaled to {case.n:,}"
    return c


def _import(module):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Unavailable(f"{module} is not installed") from None


def torch_contender(case, threads=None):
    """torch.nn Linear + Sigmoid layers, 0.5 ||a - y||^2 averaged over the
    mini-batch, torch.optim.SGD(lr=eta); intra-op threads = BLAS threads."""
    torch = _import("torch")
    torch.set_num_threads(threads or blas_threads())
    tdtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[case.dtype]
    layers = []
    for n_in, n_out in zip(case.sizes[:-1], case.sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out, dtype=tdtype), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    optimizer = torch.optim.SGD(model.parameters(), lr=case.eta)
    X, Y = torch.from_numpy(case.X), torch.from_numpy(case.Y)
    order = torch.from_numpy(case.order.astype(np.int64))
    initial_w, initial_b = case.initial()

    def reset():
        with torch.no_grad():
            for lin, w, b in zip(linears, initial_w, initial_b):
                lin.weight.copy_(torch.from_numpy(w))
                lin.bias.copy_(torch.from_numpy(b.reshape(-1)))

    def run(order=order):
        m = case.batch_size
        for k in range(0, len(order), m):
            rows = order[k:k + m]
            x, y = X[rows], Y[rows]
            optimizer.zero_grad()
            loss = 0.5 * ((model(x) - y) ** 2).sum() / len(rows)
            loss.backward()
            optimizer.step()

    k = len(_warm_rows(case))
    def params():
        return _as_book([lin.weight.detach().numpy() for lin in linears],
                        [lin.bias.detach().numpy() for lin in linears])

    return Contender("torch", REFERENCES["torch"], run, reset, case.n, case.dtype,
                     warm=lambda: run(order[:k]), params=params)


def jax_contender(case):
    """A jitted step per mini-batch: gather the rows, jax.grad of the mean
    quadratic cost, w <- w - eta grad.  Compiled before timing."""
    jax = _import("jax")
    if case.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    eta = case.eta

    def cost(params, x, y):
        a = x
        for w, b in params:
            a = jax.nn.sigmoid(a @ w.T + b)
        return 0.5 * jnp.sum((a - y) ** 2) / x.shape[0]

    @jax.jit
    def step(params, X, Y, rows):
        grads = jax.grad(cost)(params, X[rows], Y[rows])
        return jax.tree_util.tree_map(lambda p, g: p - eta * g, params, grads)

    X, Y = jax.device_put(case.X), jax.device_put(case.Y)
    m = case.batch_size
    batches = [jax.device_put(case.order[k:k + m]) for k in range(0, case.n, m)]
    initial_w, initial_b = case.initial()
    state = {}

    def reset():
        state["params"] = [(jax.device_put(w), jax.device_put(b.reshape(-1)))
                           for w, b in zip(initial_w, initial_b)]

    def run(batches=batches):
        params = state["params"]
        for rows in batches:
            params = step(params, X, Y, rows)
        jax.block_until_ready(params)
        state["params"] = params

    reset()
    for shape in {len(batches[0]), len(batches[-1])}:       # compile for each batch length
        rows = batches[0] if len(batches[0]) == shape else batches[-1]
        jax.block_until_ready(step(state["params"], X, Y, rows))
    def params():
        return _as_book([np.asarray(w) for w, _ in state["params"]],
                        [np.asarray(b) for _, b in state["params"]])

    return Contender("jax", REFERENCES["jax"], run, reset, case.n, case.dtype,
                     warm=lambda: run(batches[:WARM_BATCHES]), params=params)


def sklearn_contender(case):
    """MLPClassifier(solver="sgd", activation="logistic", momentum=0,
    alpha=0, shuffle=False), one epoch by partial_fit on the case's order.
    Its output layer is softmax with log-loss, not sigmoid + quadratic: the
    same products, slightly different element-wise work."""
    _import("sklearn")
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=case.sizes[1:-1], activation="logistic",
                        solver="sgd", batch_size=case.batch_size,
                        learning_rate="constant", learning_rate_init=case.eta,
                        momentum=0.0, nesterovs_momentum=False, alpha=0.0,
                        shuffle=False, max_iter=1, random_state=0)
    X, labels = case.X[case.order], case.labels[case.order]
    classes = np.arange(case.sizes[-1])
    clf.partial_fit(X[:case.batch_size], labels[:case.batch_size], classes=classes)
    initial_w, initial_b = case.initial()

    def reset():
        # The optimizer holds these very arrays: copy into them.
        for coef, intercept, w, b in zip(clf.coefs_, clf.intercepts_, initial_w, initial_b):
            np.copyto(coef, w.T)
            np.copyto(intercept, b.reshape(-1))

    k = len(_warm_rows(case))
    return Contender("sklearn", REFERENCES["sklearn"], lambda: clf.partial_fit(X, labels), reset,
                     case.n, case.dtype, warm=lambda: clf.partial_fit(X[:k], labels[:k]))


def make_contender(name, case, per_sample_subset=PER_SAMPLE_SUBSET, threads=None):
    """The contender called ``name`` (fastbp or a key of REFERENCES) for case;
    raises Unavailable when it cannot run here."""
    if name == "fastbp":
        return fastbp_contender(case, threads=threads)
    if name == "fastbp-float32":
        if case.dtype == np.float32:
            raise Unavailable("the case is float32 already")
        return fastbp_contender(case, np.float32, name="fastbp-float32", threads=threads)
    if name == "fastbp-fit":
        return fastbp_fit_contender(case, threads)
    if name == "network-sgd":
        return network_sgd_contender(case)
    if name == "vectorized":
        return vectorized_contender(case)
    if name == "per-sample":
        return per_sample_contender(case, per_sample_subset)
    if name == "torch":
        return torch_contender(case, threads)
    if name == "jax":
        return jax_contender(case)
    if name == "sklearn":
        return sklearn_contender(case)
    raise ValueError(f"unknown contender {name!r}; choose from fastbp, {', '.join(REFERENCES)}")


# Seconds to wait before each timed run.  Thread pools spin for a while after
# their work ends before they sleep (OpenBLAS about 0.1 s; PyTorch's OpenMP
# and JAX's pools likewise); without the pause, the threads of the contender
# timed just before would keep a core busy into the next contender's run,
# which loses most when it uses every core itself.
SETTLE_PAUSE = 0.25


def time_epoch(contender, scale_to=None, pause=SETTLE_PAUSE):
    """Seconds of one run() after a reset() and a pause of ``pause`` seconds
    (see SETTLE_PAUSE), scaled to ``scale_to`` samples."""
    contender.reset()
    time.sleep(pause)
    t0 = time.perf_counter()
    contender.run()
    seconds = time.perf_counter() - t0
    if scale_to is not None and contender.samples != scale_to:
        seconds *= scale_to / contender.samples
    return seconds


def warm_up(contender, pause=SETTLE_PAUSE):
    """A few untimed mini-batches, so that first-call costs are not timed,
    after the same pause as a timed run (fastbp's warm-up decides its
    thread count, which another contender's spinning threads would sway)."""
    if contender.warm is not None:
        contender.reset()
        time.sleep(pause)
        contender.warm()


def measure(contenders, n, repeat):
    """Median seconds per epoch of each contender, after a warm-up, the runs
    interleaved (one of each, then the next round) so the machine's noise
    hits all alike."""
    for c in contenders:
        warm_up(c)
    times = {c.name: [] for c in contenders}
    for _ in range(repeat):
        for c in contenders:
            times[c.name].append(time_epoch(c, n))
    return {name: statistics.median(ts) for name, ts in times.items()}


# -- the machine: BLAS threads and the GEMM ceiling ----------------------------

def _blas_libraries():
    return [info for info in threadpool_info() if info.get("user_api") == "blas"]


def is_scipys_blas(info):
    """Whether a threadpoolctl entry is SciPy's BLAS, the one fastbp's engine
    calls (by its path: NumPy's OpenBLAS wheel has the same prefix,
    libscipy_openblas)."""
    path = info.get("filepath", "")
    return "scipy.libs" in path or "/scipy/" in path


def blas_threads():
    """The threads of the BLAS fastbp calls (SciPy's), else of any BLAS."""
    libs = _blas_libraries()
    for info in libs:
        if is_scipys_blas(info):
            return int(info["num_threads"])
    return int(libs[0]["num_threads"]) if libs else os.cpu_count() or 1


def _threads(n):
    return f"{n} thread" + ("" if n == 1 else "s")


def describe_blas():
    """One line per BLAS library loaded: whose it is, version, threads."""
    lines = []
    for info in _blas_libraries():
        path = info.get("filepath", "")
        if is_scipys_blas(info):
            owner = "SciPy's, called by fastbp's engine"
        elif "numpy.libs" in path or "/numpy/" in path:
            owner = "NumPy's, used by the NumPy references"
        elif "torch" in path:
            owner = "PyTorch's"
        else:
            owner = os.path.basename(path)
        lines.append(f"{info.get('internal_api', '?')} {info.get('version', '?')} "
                     f"[{info.get('architecture', '?')}] ({owner}): "
                     f"{_threads(info.get('num_threads'))}")
    if "torch" in sys.modules:
        lines.append("PyTorch intra-op: "
                     f"{_threads(sys.modules['torch'].get_num_threads())}")
    return lines


def _busy_seconds():
    """CPU-seconds all processes have used since boot (Linux), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)      # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How many cores other processes kept busy while this one measured:
    the machine's busy CPU time less this process's, over the wall time."""

    def __init__(self):
        self.busy0, self.own0 = _busy_seconds(), self._own()
        self.wall0 = time.perf_counter()

    @staticmethod
    def _own():
        t = os.times()
        return t.user + t.system

    def cores(self):
        busy = _busy_seconds()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.wall0
        others = (busy - self.busy0) - (self._own() - self.own0)
        return max(0.0, others / wall) if wall > 0 else None

    def lines(self):
        """A line saying how busy the machine was, and a warning if it was busy:
        with multi-threaded BLAS, one busy core can slow small products tenfold."""
        cores = self.cores()
        if cores is None:
            return []
        lines = [f"Other processes kept {cores:.2f} of {os.cpu_count()} cores busy on "
                 f"average during this run."]
        if cores >= 0.25:
            advice = "" if blas_threads() == 1 else ", or use --threads 1"
            lines.append("Warning: the machine was busy. Multi-threaded BLAS slows down "
                         "badly when a core is taken, so these ratios may be off. Rerun on "
                         f"an idle machine{advice}.")
        return lines


def gemm_rates(dtype, size=2048, repeat=3, seed=0):
    """GFLOP/s of the best of ``repeat`` size x size products: through SciPy's
    BLAS (the library fastbp's engine calls) and through numpy.matmul."""
    from scipy.linalg import blas
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    a = rng.random((size, size)).astype(dtype)
    b = rng.random((size, size)).astype(dtype)
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    flops = 2.0 * size ** 3
    rates = {}
    # a.T and b.T are Fortran-ordered views: SciPy's wrapper passes them without a copy.
    for name, product in (("scipy", lambda: gemm(1.0, a.T, b.T)), ("numpy", lambda: a @ b)):
        product()
        best = min(_seconds(product) for _ in range(repeat))
        rates[name] = flops / best / 1e9
    return rates


def _seconds(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


# -- the report ---------------------------------------------------------------

def _fmt_seconds(s):
    if s >= 100:
        return f"{s:.0f}"
    if s >= 1:
        return f"{s:.2f}"
    if s >= 0.01:
        return f"{s:.3f}"
    return f"{s:.2e}"


def _table(header, rows, align=None):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    align = align or ["<"] + [">"] * (len(header) - 1)
    out = []
    for i, row in enumerate([header] + rows):
        out.append("  ".join(f"{str(x):{a}{w}}" for x, a, w in zip(row, align, widths)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _build(names, case, args, skipped):
    built = []
    for name in names:
        try:
            built.append(make_contender(name, case, args.per_sample_samples, args.threads))
        except Unavailable as exc:
            skipped.setdefault(name, str(exc))
    return built


def _reference_names(args):
    if args.references is None:
        return list(DEFAULT_REFERENCES[args.workload])
    return list(args.references)


def _ceiling_line(dtype, size, before, after, fastbp_rate=None):
    """The GEMM ceiling, measured before and after the epochs (rates from
    gemm_rates), and fastbp's share of the better SciPy rate."""
    kind = "sgemm" if np.dtype(dtype) == np.float32 else "dgemm"
    line = (f"Ceiling: a {size}x{size} {kind} ran at {before['scipy']:.1f} GFLOP/s before the "
            f"epochs and {after['scipy']:.1f} after, through SciPy's BLAS (the one fastbp "
            f"calls); through numpy.matmul at {before['numpy']:.1f} and "
            f"{after['numpy']:.1f}")
    if fastbp_rate is not None:
        best = max(before["scipy"], after["scipy"])
        line += f". fastbp reaches {100 * fastbp_rate / best:.0f}% of the better SciPy rate"
    return line + "."


def report_workload(args, out=print):
    """Measure and print the table of workload W1 or W2."""
    load = OtherLoad()
    case = workload_case(args.workload, args.dtype, args.samples, args.seed)
    gemm_before = gemm_rates(case.dtype, args.gemm_size)
    skipped = {}
    contenders = _build(["fastbp"] + _reference_names(args), case, args, skipped)
    times = measure(contenders, case.n, args.repeat)
    flops = case.flops_per_epoch()
    base = times["fastbp"]
    out(f"fastbp bench {args.workload}: sizes {list(case.sizes)}, mini-batch {case.batch_size}, "
        f"eta {case.eta}, {case.dtype.name}, sigmoid + quadratic cost, "
        f"{case.n:,} samples of {case.source}")
    out(f"{flops / 1e9:.2f} GFLOP per epoch (6W - 2W_1 per sample); seconds per epoch are "
        f"the median of {args.repeat} run(s); every contender follows the same shuffled "
        f"order, no monitoring")
    out("")
    rows, notes = [], []
    for c in contenders:
        t = times[c.name]
        mark = ""
        if c.note:
            notes.append(c.note)
            mark = "*" * len(notes)
        rows.append([c.label + mark, c.dtype.name, _fmt_seconds(t), f"{t / base:.2f}",
                     f"{flops / t / 1e9:.2f}"])
    out(_table(["contender", "dtype", "s/epoch", "time/fastbp's", "GFLOP/s"], rows))
    for i, note in enumerate(notes):
        out(f"{'*' * (i + 1)} {note}")
    out("time/fastbp's: the contender's time over fastbp's, i.e. fastbp's speed-up over it.")
    if "fastbp-float32" in times and "vectorized" in times:
        out(f"fastbp float32 against the vectorized reference in {case.dtype.name}: "
            f"{times['vectorized'] / times['fastbp-float32']:.2f}x faster.")
    for name, why in skipped.items():
        out(f"skipped {name}: {why}")
    out("")
    for c in contenders:
        line = c.describe() if c.describe else None
        if line:
            out(line + ".")
    out(_ceiling_line(case.dtype, args.gemm_size, gemm_before,
                      gemm_rates(case.dtype, args.gemm_size), flops / base / 1e9))
    out("BLAS threads: " + "; ".join(describe_blas()))
    for line in load.lines():
        out(line)
    return {"times": times, "flops": flops, "source": case.source}


def report_sweep(args, out=print):
    """Measure and print the sweep over hidden widths and mini-batch sizes."""
    hidden = args.hidden or SWEEP_HIDDEN
    batch_sizes = args.batch_sizes or SWEEP_BATCH_SIZES
    load = OtherLoad()
    dtype = np.dtype(args.dtype or WORKLOADS["sweep"]["dtype"])
    data = load_samples(args.samples or WORKLOADS["sweep"]["samples"], 784, 10, args.seed)
    gemm_before = gemm_rates(dtype, args.gemm_size)
    names = _reference_names(args)
    skipped, rows, seen = {}, [], []
    for h in hidden:
        for m in batch_sizes:
            case = workload_case("sweep", dtype, args.samples, args.seed, hidden=h,
                                 batch_size=m, data=data)
            contenders = _build(["fastbp"] + names, case, args, skipped)
            times = measure(contenders, case.n, args.repeat)
            base = times["fastbp"]
            flops = case.flops_per_epoch()
            for c in contenders:
                if c.name != "fastbp" and c.name not in seen:
                    seen.append(c.name)
            rows.append((h, m, case.n, base, flops, times))
    out(f"fastbp bench sweep: sizes [784, h, 10], {dtype.name}, eta "
        f"{WORKLOADS['sweep']['eta']}, sigmoid + quadratic cost, samples of {data[2]}; "
        f"seconds per epoch of the case's samples, median of {args.repeat} run(s)")
    out("")
    header = (["h", "batch", "samples", "fastbp s/epoch", "fastbp GFLOP/s"]
              + [f"{n} / fastbp" for n in seen])
    table = []
    for h, m, n, base, flops, times in rows:
        table.append([h, m, f"{n:,}", _fmt_seconds(base), f"{flops / base / 1e9:.2f}"]
                     + [f"{times[n] / base:.2f}" if n in times else "-" for n in seen])
    out(_table(header, table, align=[">"] * len(header)))
    out("<name> / fastbp: that contender's time over fastbp's, i.e. fastbp's speed-up over it.")
    for name, why in skipped.items():
        out(f"skipped {name}: {why}")
    out("")
    out(_ceiling_line(dtype, args.gemm_size, gemm_before, gemm_rates(dtype, args.gemm_size)))
    out("BLAS threads: " + "; ".join(describe_blas()))
    for line in load.lines():
        out(line)
    return {"rows": rows}


# -- Chapter 2's argument: backprop against finite differences ----------------

def _best_time(f, min_seconds=0.2, max_runs=1000):
    """The best time of f() over runs lasting at least min_seconds in all."""
    best, total, runs = math.inf, 0.0, 0
    while (total < min_seconds or runs < 3) and runs < max_runs:
        t = _seconds(f)
        best, total, runs = min(best, t), total + t, runs + 1
    return best


def growth_exponent(n_weights, seconds):
    """The slope of log(seconds) against log(number of weights)."""
    return float(np.polyfit(np.log(n_weights), np.log(seconds), 1)[0])


def report_gradient_cost(args, out=print):
    """Time the full gradient by backprop and by central finite differences
    for [10, h, 10] networks of growing h; print the table and the growth
    exponents, and plot when asked."""
    from .native import Network
    ref = references()
    hidden = args.hidden or GRADIENT_COST_HIDDEN
    n_samples = args.gradient_samples
    rng = np.random.default_rng(args.seed)
    rows = []
    for h in hidden:
        sizes = [10, int(h), 10]
        net = Network(sizes, seed=args.seed)
        X = rng.random((n_samples, sizes[0]))
        Y = rng.random((n_samples, sizes[-1]))
        W, B = net.weights, net.biases
        n_weights = sum(w.size for w in W)
        n_params = n_weights + sum(b.size for b in B)
        t_fastbp = _best_time(lambda: net.backprop(X, Y))
        t_numpy = _best_time(lambda: ref.backprop_gradient(W, B, X, Y))
        t0 = time.perf_counter()
        fd_b, fd_w = ref.finite_difference_gradient(W, B, X, Y)
        t_fd = time.perf_counter() - t0
        bp_b, bp_w = net.backprop(X, Y)
        scale = max(float(np.max(np.abs(g))) for g in bp_w + bp_b)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(fd_w + fd_b, bp_w + bp_b))
        rows.append((h, n_weights, n_params, t_fastbp, t_numpy, t_fd, diff / scale))
    out(f"Full gradient of the mean quadratic cost over {n_samples} samples, sigmoid "
        f"networks [10, h, 10], float64: backpropagation (one forward and one backward "
        f"pass) against central finite differences (two forward passes per weight and "
        f"per bias, NumPy reference)")
    out("")
    table = [[h, f"{nw:,}", f"{npar:,}", _fmt_seconds(tf), _fmt_seconds(tn), _fmt_seconds(td),
              f"{td / tf:,.0f}", f"{err:.1e}"]
             for h, nw, npar, tf, tn, td, err in rows]
    out(_table(["h", "weights", "weights+biases", "backprop fastbp s", "backprop NumPy s",
                "finite diff. s", "fd / fastbp", "max rel. diff"],
               table, align=[">"] * 8))
    nw = np.array([r[1] for r in rows], dtype=float)
    columns = (("backprop fastbp", 3), ("backprop NumPy", 4), ("finite differences", 5))
    exps = {label: growth_exponent(nw, [r[i] for r in rows]) for label, i in columns}
    out("")
    out("Growth with the number of weights W, the slope of log time against log W:")
    top = len(rows) // 2
    out(f"  {'all rows:':<22}" + ", ".join(f"{k} ~ W^{v:.2f}" for k, v in exps.items()))
    if top >= 2:
        exps_top = {label: growth_exponent(nw[-top:], [r[i] for r in rows[-top:]])
                    for label, i in columns}
        out(f"  {f'largest {top} networks:':<22}"
            + ", ".join(f"{k} ~ W^{v:.2f}" for k, v in exps_top.items()))
    out("Chapter 2's argument: finite differences cost two forward passes, O(W) each, for "
        "each of W weights, so O(W^2); backprop costs about two forward passes in all, O(W). "
        "At small W the fixed cost of each call flattens the measured slopes.")
    out("max rel. diff: largest |finite differences - backprop| over the largest |gradient|. "
        f"BLAS threads: {blas_threads()}.")
    if args.plot:
        out(_plot_gradient_cost(args.plot, nw, rows))
    return {"rows": rows, "exponents": exps}


def _plot_gradient_cost(path, n_weights, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install matplotlib)"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, label, marker in ((5, "central finite differences (NumPy)", "o"),
                             (4, "backprop (NumPy)", "s"), (3, "backprop (fastbp)", "^")):
        ax.loglog(n_weights, [r[i] for r in rows], marker=marker, label=label)
    ax.set_xlabel("number of weights W, network [10, h, 10]")
    ax.set_ylabel("seconds for the full gradient")
    ax.set_title("The cost of the gradient: backprop against finite differences")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot saved to {path}"


# -- command line -------------------------------------------------------------

def _int_list(maximum):
    """An option type: comma-separated integers in [1, maximum]."""
    def parse(text):
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < 1 or max(values) > maximum:
            raise argparse.ArgumentTypeError(
                f"expected integers from 1 to {maximum:,}, got {text!r}")
        return values
    return parse


def _int_in(minimum, maximum):
    """An option type: an integer in [minimum, maximum] (the bounds keep a
    run within this kind of machine's memory, and say so at once)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {minimum:,} to {maximum:,}, got {text!r}")
        return value
    return parse


def _reference_list(text):
    """--references: comma-separated names of REFERENCES."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in REFERENCES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown reference(s) {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(REFERENCES)}")
    return names


# Upper bounds of the options: about what fits in this kind of machine's
# memory (50,000 W1 samples take 0.3 GB in float64).
_MAX_SAMPLES = 1_000_000
_MAX_WIDTH = 65_536


def add_arguments(parser):
    """Add the report's options to an argparse parser (``fastbp bench``)."""
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="W1",
                        help="W1: [784,30,10], batch 10, float64; W2: [784,1024,1024,10], "
                             "batch 128, float32; sweep: [784,h,10] over h and batch sizes "
                             "(default W1)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None,
                        help="override the workload's dtype")
    parser.add_argument("--samples", type=_int_in(1, _MAX_SAMPLES), default=None,
                        help="training samples per epoch (default 50,000; sweep: 2,000 "
                             "per case, at most 500 mini-batches)")
    parser.add_argument("--references", type=_reference_list, default=None,
                        metavar="NAMES",
                        help="comma-separated contenders to compare with fastbp, from: "
                             + ", ".join(REFERENCES)
                             + " (default: all that apply and are installed)")
    parser.add_argument("--repeat", type=_int_in(1, 1000), default=3,
                        help="timed epochs per contender; the median is reported (default 3)")
    parser.add_argument("--per-sample-samples", type=_int_in(1, _MAX_SAMPLES),
                        default=PER_SAMPLE_SUBSET,
                        metavar="N", help="time the per-sample reference on N samples and "
                                          f"scale to the epoch (default {PER_SAMPLE_SUBSET:,})")
    parser.add_argument("--threads", type=_int_in(1, _training.MAX_THREADS), default=None,
                        help="limit BLAS (and PyTorch) to this many threads (default: as "
                             "they are; --gradient-cost: 1)")
    parser.add_argument("--gemm-size", type=_int_in(1, 8192), default=2048, metavar="N",
                        help="size of the N x N product measured as the ceiling (default 2048)")
    parser.add_argument("--hidden", type=_int_list(_MAX_WIDTH), default=None,
                        metavar="H1,H2,...",
                        help="hidden widths for sweep (default 10,30,100,300,1024) and for "
                             "--gradient-cost (default 5,10,20,40,80,160,320)")
    parser.add_argument("--batch-sizes", type=_int_list(_MAX_SAMPLES), default=None,
                        metavar="M1,M2,...",
                        help="mini-batch sizes for sweep (default 1,10,32,128,256)")
    parser.add_argument("--seed", type=_int_in(0, 2**63 - 1), default=0,
                        help="seed of weights, order and data")
    parser.add_argument("--gradient-cost", action="store_true",
                        help="instead of a workload: backprop against finite differences for "
                             "networks of growing size")
    parser.add_argument("--gradient-samples", type=_int_in(1, _MAX_SAMPLES), default=100,
                        metavar="N",
                        help="samples the gradient is taken over in --gradient-cost (default 100)")
    parser.add_argument("--plot", default=None, metavar="FILE",
                        help="with --gradient-cost, save a log-log plot (needs matplotlib)")
    return parser


def run(args):
    """Run the report for parsed arguments; returns the exit status."""
    limits = (threadpool_limits(limits=args.threads, user_api="blas") if args.threads
              else contextlib.nullcontext())
    if args.gradient_cost and not args.threads:
        # Small products: count operations on one core, not threading overheads.
        limits = threadpool_limits(limits=1, user_api="blas")
    with limits:
        try:
            if args.gradient_cost:
                report_gradient_cost(args)
            elif args.workload == "sweep":
                report_sweep(args)
            else:
                report_workload(args)
        except Unavailable as exc:
            print(f"fastbp bench: {exc}", file=sys.stderr)
            return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastbp bench",
        description="Time one training epoch of fastbp against pure-NumPy references "
                    "(and PyTorch, JAX, scikit-learn where installed), or compare the cost "
                    "of the gradient by backprop and by finite differences.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
