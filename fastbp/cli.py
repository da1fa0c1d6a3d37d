"""The command line: ``python -m fastbp`` or ``fastbp``.

    fastbp train                      # a 64-30-10 network on the embedded digits
    fastbp train --dataset fashion-mnist --sizes 100 --epochs 10
    fastbp gradcheck                  # backprop against finite differences
    fastbp bench                      # the benchmark report
    fastbp download mnist             # the only command that uses the network

Bad options and unreadable data files give a one-line message on stderr and
exit status 2; a training run that diverges exits with status 1.
"""
import argparse
import os
import sys
import time

import numpy as np

PROG = "fastbp"

# Learning rates that suit each cost with sigmoid neurons and mini-batches of
# 10 (the book's: eta = 3.0 in Chapter 1, 0.5 in Chapter 3).
DEFAULT_ETA = {"quadratic": 3.0, "cross-entropy": 0.5}

# Show the progress bar before an epoch when the previous one took this long.
_PROGRESS_AFTER_SECONDS = 0.5


class UsageError(Exception):
    """A bad option or an unusable file: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


# -- option types ----------------------------------------------------------------
def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def _float_above(minimum, strict):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not np.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(
                f"must be a finite number {'>' if strict else '>='} {minimum}, got {text}")
        return value
    return parse


def _size_list(text):
    """Comma-separated layer sizes; "" or "none" for no layer at all."""
    if text.strip().lower() in ("", "none"):
        return []
    sizes = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated layer sizes such as 100,30, got {text!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"layer sizes must be at least 1, got {n}")
        sizes.append(n)
    return sizes


def _activation_list(text):
    from .activations import CODES
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in CODES:
            raise argparse.ArgumentTypeError(
                f"{name!r} is not one of {', '.join(sorted(CODES))}")
    return names


# -- the parser ------------------------------------------------------------------
def build_parser(with_bench=False):
    """The argument parser; ``with_bench`` imports fastbp.bench to add its options."""
    from . import __version__
    from .costs import CODES as COSTS

    parser = _Parser(prog=PROG, description="fastbp: compiled backpropagation and "
                     "mini-batch SGD for fully-connected networks.")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a network and report its test accuracy",
        description="Train a fully-connected network by mini-batch SGD and report the "
        "test accuracy after every epoch. With no options: a 64-30-10 sigmoid network "
        "with the cross-entropy cost on the UCI digits shipped with fastbp (80/20 "
        "train/test split), 30 epochs.")
    train.add_argument("--dataset", default="digits", metavar="DATA",
                       help="digits (embedded, the default), fashion-mnist, mnist, the path "
                            "of a mnist.pkl.gz, or a directory of the four IDX files")
    train.add_argument("--sizes", type=_size_list, default=[30], metavar="N,N,...",
                       help="hidden layer sizes, e.g. 100,30 (default: 30; 'none' for "
                            "no hidden layer); input and output sizes come from the data")
    train.add_argument("--epochs", type=_int_at_least(0), default=30,
                       help="(default: 30)")
    train.add_argument("--batch-size", type=_int_at_least(1), default=10, metavar="M",
                       help="mini-batch size (default: 10)")
    train.add_argument("--eta", type=_float_above(0.0, strict=True), default=None,
                       help="learning rate (default: 0.5 with cross-entropy, 3.0 with "
                            "the quadratic cost)")
    train.add_argument("--lmbda", type=_float_above(0.0, strict=False), default=0.0,
                       help="L2 regularization parameter lambda (default: 0)")
    train.add_argument("--cost", choices=sorted(COSTS), default="cross-entropy",
                       help="(default: cross-entropy)")
    train.add_argument("--activation", type=_activation_list, default=["sigmoid"],
                       metavar="NAME[,NAME...]",
                       help="sigmoid (default), tanh, relu or linear: one for every layer, "
                            "or one per layer after the input; the cross-entropy cost "
                            "needs sigmoid last")
    train.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                       help="precision of weights and arithmetic (default: float64)")
    train.add_argument("--seed", type=_int_at_least(0), default=0,
                       help="seeds the initial weights, the shuffling and --samples "
                            "(default: 0)")
    train.add_argument("--samples", type=_int_at_least(1), default=None, metavar="N",
                       help="train on N training samples drawn at random (the test set "
                            "stays whole)")
    train.add_argument("--save", metavar="FILE",
                       help="save the trained network to FILE: fastbp's binary format if "
                            "the name ends in .npz, else network2's JSON (fastbp.load "
                            "reads both)")
    train.add_argument("--plot", metavar="FILE",
                       help="draw the learning curves into FILE (PNG, PDF or SVG; "
                            "needs matplotlib: pip install 'fastbp[plot]')")
    train.set_defaults(run=run_train)

    gradcheck = commands.add_parser(
        "gradcheck", help="compare backprop's gradient with finite differences",
        description="Compare the gradient that backpropagation computes with central "
        "finite differences (C(w + eps) - C(w - eps)) / 2 eps on a small float64 network "
        "and random data, and print the worst relative error of each layer.")
    gradcheck.add_argument("--layers", type=_size_list, default=[8, 6, 5, 3],
                           metavar="N,N,...",
                           help="all layer sizes, input first (default: 8,6,5,3)")
    gradcheck.add_argument("--activation", type=_activation_list, default=["sigmoid"],
                           metavar="NAME[,NAME...]",
                           help="one for every layer, or one per layer after the input; "
                                "the cross-entropy cost needs sigmoid last")
    gradcheck.add_argument("--cost", choices=sorted(COSTS), default="cross-entropy")
    gradcheck.add_argument("--samples", type=_int_at_least(1), default=5, metavar="N",
                           help="number of random samples (default: 5)")
    gradcheck.add_argument("--seed", type=_int_at_least(0), default=0)
    gradcheck.add_argument("--max-checks", type=_int_at_least(1), default=1000, metavar="N",
                           help="check at most N weights and N biases of each layer, "
                                "chosen at random (each costs two feedforward passes; "
                                "default: 1000)")
    gradcheck.add_argument("--tolerance", type=_float_above(0.0, strict=True), default=1e-5,
                           help="exit with status 1 if a relative error exceeds this "
                                "(default: 1e-5)")
    gradcheck.set_defaults(run=run_gradcheck)

    bench = commands.add_parser(
        "bench", help="time an epoch against pure-NumPy references",
        description="The benchmark report (see fastbp.bench).")
    if with_bench:
        _bench_module().add_arguments(bench)
    bench.set_defaults(run=run_bench)

    from .datasets import DOWNLOADS
    download = commands.add_parser(
        "download", help="fetch MNIST or Fashion-MNIST into the cache directory",
        description="Download a data set into the cache directory ($FASTBP_DATA, else "
        "$XDG_CACHE_HOME/fastbp, by default ~/.cache/fastbp), checking every file's "
        "checksum. Nothing else in fastbp downloads anything.")
    download.add_argument("name", choices=sorted(DOWNLOADS),
                          help="mnist (IDX files), fashion-mnist (IDX files) or mnist-pkl "
                               "(Nielsen's mnist.pkl.gz)")
    download.add_argument("--cache-dir", metavar="DIR", default=None,
                          help="where to put it (default: $FASTBP_DATA, else $XDG_CACHE_HOME/fastbp, "
                               "by default ~/.cache/fastbp)")
    download.set_defaults(run=run_download)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(with_bench=bool(argv) and argv[0] == "bench")
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return args.run(args) or 0
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _fail(command, message):
    return UsageError(f"{PROG} {command}: error: {message}")


# -- train -----------------------------------------------------------------------
def run_train(args):
    from . import datasets
    from .native import Network

    if args.plot:
        args.plot = _plot_option("train", args.plot)
    if args.save:
        _check_writable("train", "--save", args.save)

    try:
        data = datasets.load(args.dataset, dtype=args.dtype)
    except (OSError, ValueError) as exc:
        raise _fail("train", f"--dataset: {exc}") from None
    X_train, y_train = data.train
    X_test, y_test = data.test
    if args.samples is not None and args.samples < X_train.shape[0]:
        keep = np.sort(np.random.default_rng(args.seed).permutation(X_train.shape[0])
                       [:args.samples])
        X_train, y_train = X_train[keep], y_train[keep]

    n_classes = int(max(y_train.max(), y_test.max())) + 1
    sizes = [X_train.shape[1]] + args.sizes + [n_classes]
    activations = _layer_activations("train", args.activation, sizes, args.cost)
    eta = DEFAULT_ETA[args.cost] if args.eta is None else args.eta
    net = _network("train", Network, sizes, activations=activations, cost=args.cost,
                   dtype=args.dtype, seed=args.seed)

    acts = activations[0] if len(set(activations)) == 1 else ",".join(activations)
    print(f"data: {data.description}; {X_train.shape[0]} training and "
          f"{X_test.shape[0]} test samples", flush=True)
    print(f"network: {sizes}, {acts}, {args.cost} cost, {args.dtype}; "
          f"{_plural(args.epochs, 'epoch')}, mini-batch {args.batch_size}, eta {eta:g}, "
          f"lmbda {args.lmbda:g}, seed {args.seed}", flush=True)

    progress = _Progress(args.epochs) if sys.stdout.isatty() else None

    def report(epoch, history):
        if progress is not None:
            progress.clear()
        print(f"Epoch {epoch + 1}/{args.epochs}: train cost {history['train_cost'][-1]:.4f}, "
              f"train accuracy {history['train_accuracy'][-1]:.4f}, test accuracy "
              f"{history['val_accuracy'][-1]:.4f} ({history['seconds'][-1]:.3f} s)", flush=True)
        if progress is not None and epoch + 1 < args.epochs:
            progress.before(epoch + 1, history["seconds"])

    try:
        if progress is not None:
            progress.before(0, None)
        history = net.fit(X_train, y_train, args.epochs, args.batch_size, eta,
                          lmbda=args.lmbda, validation_data=(X_test, y_test),
                          monitor=True, callback=report)
    except FloatingPointError as exc:
        if progress is not None:
            progress.clear()
        print(f"{PROG} train: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if progress is not None:
            progress.clear()
        raise

    correct = int(np.sum(net.predict(X_test) == y_test))
    print(f"test accuracy: {correct / X_test.shape[0]:.4f} ({correct} / {X_test.shape[0]})")
    if data.validation is not None:
        X_val, y_val = data.validation
        print(f"validation accuracy: {net.accuracy(X_val, y_val):.4f}")
    if history.get("seconds"):
        seconds = history["seconds"]
        print(f"seconds per epoch: {np.mean(seconds):.4f} (training only, mean of "
              f"{_plural(len(seconds), 'epoch')})")
    if args.save:
        try:
            net.save(args.save)
        except (OSError, ValueError) as exc:
            raise _fail("train", f"--save: {exc}") from None
        print(f"saved the network to {args.save} (read it back with fastbp.load)")
    if args.plot:
        plot_history(history, args.plot, title=f"{sizes} on {args.dataset}")
        print(f"learning curves written to {args.plot}")
    return 0


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _layer_activations(command, names, sizes, cost):
    """--activation as one name per layer after the input (one name: every
    layer), refused where it does not fit the layers or the cost."""
    n_layers = len(sizes) - 1
    if len(names) == 1:
        names = names * n_layers
    elif len(names) != n_layers:
        raise _fail(command, f"--activation: give one name, or one for each of the "
                             f"{n_layers} layers after the input of {sizes}")
    from .costs import check_output
    try:
        check_output(cost, names[-1])
    except ValueError:
        hint = ",".join(names[:-1] + ["sigmoid"])
        raise _fail(command, f"--cost cross-entropy needs a sigmoid output layer, not "
                             f"{names[-1]}: end --activation with sigmoid (--activation "
                             f"{hint}), or use --cost quadratic") from None
    return names


def _network(command, make, sizes, **options):
    """make(sizes, **options), its refusals reported as usage errors."""
    try:
        return make(sizes, **options)
    except (ValueError, TypeError) as exc:
        raise _fail(command, str(exc)) from None


def _plot_option(command, path):
    """The file --plot writes (see _plot_file), checked before any work:
    matplotlib installed, a format it writes, a place it can write to."""
    try:
        import matplotlib  # noqa: F401  (only to know it is there)
    except ImportError:
        raise _fail(command, "--plot needs matplotlib, which is not installed: "
                             "pip install 'fastbp[plot]'") from None
    path = _plot_file(command, path)
    _check_writable(command, "--plot", path)
    return path


def _plot_file(command, path):
    """The file --plot writes: ``path``, or with no suffix ``path`` with
    matplotlib's default one added, as savefig does; refused where the
    suffix is not a format matplotlib writes."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if not suffix:
        return f"{path}.{matplotlib.rcParams['savefig.format']}"
    if suffix not in formats:
        raise _fail(command, f"--plot: {path!r} does not end in a format matplotlib "
                             f"writes; name it .png, .pdf or .svg (or one of "
                             f"{', '.join(sorted(formats))})")
    return path


def _check_writable(command, option, path):
    """Refuse, before any work, a file name that cannot be written."""
    if os.path.isdir(path) or path.endswith(os.sep):
        raise _fail(command, f"{option}: {path} is a directory; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise _fail(command, f"{option}: {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise _fail(command, f"{option}: {path}: cannot write in {directory}")


class _Progress:
    """A one-line progress bar over the epochs, redrawn in place with \\r
    (only on a terminal, and only once epochs take a while)."""

    def __init__(self, epochs, width=30):
        self.epochs, self.width, self.shown = epochs, width, False
        self.start = time.perf_counter()

    def before(self, epoch, seconds):
        if epoch > 0 and (not seconds or seconds[-1] < _PROGRESS_AFTER_SECONDS):
            return
        done = int(self.width * epoch / max(self.epochs, 1))
        line = f"[{'#' * done}{'.' * (self.width - done)}] epoch {epoch + 1}/{self.epochs}"
        if seconds:
            remaining = np.mean(seconds[-3:]) * (self.epochs - epoch)
            line += f", about {remaining:.0f} s to go"
        sys.stdout.write("\r" + line)
        sys.stdout.flush()
        self.shown = len(line)

    def clear(self):
        if self.shown:
            sys.stdout.write("\r" + " " * self.shown + "\r")
            sys.stdout.flush()
            self.shown = False


def plot_history(history, path, title=""):
    """Accuracy and cost per epoch, training and test, in two panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history.get("seconds", [])) + 1)
    fig, (ax_acc, ax_cost) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train", "training"), ("val", "test")):
        if history.get(f"{key}_accuracy"):
            ax_acc.plot(epochs, history[f"{key}_accuracy"], label=label)
            ax_cost.plot(epochs, history[f"{key}_cost"], label=label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    ax_cost.set(xlabel="epoch", ylabel="cost")
    for ax in (ax_acc, ax_cost):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- gradcheck -------------------------------------------------------------------
def run_gradcheck(args):
    from .gradcheck import gradcheck
    from .native import Network

    sizes = args.layers
    if len(sizes) < 2:
        raise _fail("gradcheck", f"--layers needs at least two layers, got {sizes}")
    activations = _layer_activations("gradcheck", args.activation, sizes, args.cost)
    rng = np.random.default_rng(args.seed)
    X = rng.random((args.samples, sizes[0]))
    Y = rng.random((args.samples, sizes[-1]))
    net = _network("gradcheck", Network, sizes, activations=activations, cost=args.cost,
                   dtype=np.float64, seed=args.seed)
    acts = activations[0] if len(set(activations)) == 1 else ",".join(activations)
    print(f"network: {sizes}, {acts}, {args.cost} cost, float64; "
          f"{args.samples} random samples, seed {args.seed}")
    result = gradcheck(net, X, Y, max_checks_per_layer=args.max_checks, seed=args.seed)
    for c in result.layers:
        n_w, n_b = net.weights[c.layer].size, net.biases[c.layer].size
        checked = (f"{c.n_weights} of {n_w} weights, {c.n_biases} of {n_b} biases checked"
                   if (c.n_weights, c.n_biases) != (n_w, n_b)
                   else f"{n_w} weights, {n_b} biases")
        print(f"layer {c.layer + 1} ({checked}): "
              f"worst relative error weights {c.weights:.3e}, biases {c.biases:.3e}")
    worst = result.max_error
    if not result.compared:
        print("every gradient checked is exactly zero (dead units?), so nothing was "
              "compared; try another --seed or --activation")
        return 1
    verdict = "agrees" if worst <= args.tolerance else "DISAGREES"
    print(f"backprop {verdict} with finite differences: worst relative error {worst:.3e} "
          f"(tolerance {args.tolerance:g})")
    return 0 if worst <= args.tolerance else 1


# -- bench -----------------------------------------------------------------------
def _bench_module():
    try:
        from . import bench
    except ImportError as exc:
        raise _fail("bench", f"the benchmark report is not available in this "
                             f"installation (fastbp.bench: {exc})") from None
    return bench


def run_bench(args):
    bench = _bench_module()
    # the options fastbp.bench adds, checked before any measurement
    gradient_cost, hidden = getattr(args, "gradient_cost", False), getattr(args, "hidden", None)
    if gradient_cost and hidden is not None and len(hidden) < 2:
        raise _fail("bench", "--gradient-cost needs at least two --hidden widths, to "
                             "measure how the times grow with the network")
    if getattr(args, "plot", None):
        if not gradient_cost:
            raise _fail("bench", "--plot draws the --gradient-cost comparison: give "
                                 "--gradient-cost too")
        args.plot = _plot_option("bench", args.plot)
    return bench.run(args)


# -- download --------------------------------------------------------------------
def run_download(args):
    from . import datasets
    if args.cache_dir is not None and os.path.exists(args.cache_dir) \
            and not os.path.isdir(args.cache_dir):
        raise _fail("download", f"--cache-dir: {args.cache_dir} is not a directory")
    try:
        path = datasets.download(args.name, cache_dir=args.cache_dir, verbose=True)
    except (OSError, ValueError) as exc:
        print(f"{PROG} download: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} is in {path}; train on it with: {PROG} train --dataset {path}")
    return 0
