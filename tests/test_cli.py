"""The command line (python -m fastbp, fastbp) and the examples.

Most commands run in-process through fastbp.cli.main (fast); the checks of
issue 5 -- `python -m fastbp train` with no arguments, offline, in a temporary
directory, and the Fashion-MNIST run -- and the examples run as subprocesses."""
import io
import os
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import fastbp
from fastbp import cli, datasets
from datafiles import make_nielsen_sets, write_idx, write_idx_directory, write_py2_pickle, \
    write_py3_pickle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def run(args, cwd, timeout=120):
    """Run a command with the data cache pointed into cwd (so nothing from
    the user's cache is found); returns the CompletedProcess."""
    env = dict(os.environ, FASTBP_DATA=os.path.join(cwd, "cache"))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def final_accuracy(stdout):
    found = re.findall(r"^test accuracy: ([0-9.]+) \((\d+) / (\d+)\)$", stdout, re.M)
    assert len(found) == 1, stdout
    accuracy, correct, total = found[0]
    assert abs(float(accuracy) - int(correct) / int(total)) < 1e-4
    return float(accuracy)


def main(argv, capsys):
    """cli.main in-process: (status, stdout, stderr)."""
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def assert_usage_error(status, err, *fragments):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err                       # one line, no traceback
    assert lines[0].startswith("fastbp")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- train, as a newcomer runs it ----------------------------------------------------
def test_train_with_no_arguments(tmp_path):
    """Issue 5: offline, in a temporary directory, test accuracy >= 0.9."""
    result = run([sys.executable, "-m", "fastbp", "train"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert final_accuracy(out) >= 0.9
    epochs = re.findall(r"^Epoch (\d+)/30: .*test accuracy ([0-9.]+) \(([0-9.]+) s\)$",
                        out, re.M)
    assert [int(e[0]) for e in epochs] == list(range(1, 31))
    assert re.search(r"^seconds per epoch: [0-9.]+ ", out, re.M)
    assert "\r" not in out                           # piped: plain lines, no progress bar
    assert "[64, 30, 10]" in out and "1438 training and 359 test samples" in out
    assert os.listdir(tmp_path) == []                # wrote nothing


@pytest.mark.skipif(not datasets.fashion_mnist_available(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_train_on_fashion_mnist(tmp_path):
    result = run([sys.executable, "-m", "fastbp", "train", "--dataset", "fashion-mnist",
                  "--epochs", "1", "--samples", "5000"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5000 training and 10000 test samples" in result.stdout
    assert re.search(r"^Epoch 1/1: ", result.stdout, re.M)
    # ten balanced classes: one epoch on 5,000 samples is far above chance
    assert final_accuracy(result.stdout) > 0.5


@pytest.mark.skipif(shutil.which("fastbp") is None, reason="console script not installed")
def test_console_script(tmp_path):
    result = run(["fastbp", "--version"], cwd=tmp_path)
    assert result.returncode == 0 and fastbp.__version__ in result.stdout


def test_bad_option_from_the_shell(tmp_path):
    result = run([sys.executable, "-m", "fastbp", "train", "--epochs", "-3"], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == ("fastbp train: error: argument --epochs: must be at "
                                     "least 0, got -3 (see fastbp train --help)")


# -- train, in-process ---------------------------------------------------------------
def test_train_on_a_nielsen_pickle(tmp_path, capsys):
    path = write_py2_pickle(tmp_path / "mnist.pkl.gz", make_nielsen_sets(60, 20, 20))
    status, out, err = main(["train", "--dataset", str(path), "--epochs", "2",
                             "--sizes", "12", "--cost", "quadratic"], capsys)
    assert status == 0, err
    assert "[784, 12, 10]" in out and "quadratic" in out and "eta 3" in out
    assert "60 training and 20 test samples" in out
    assert re.search(r"^validation accuracy: [0-9.]+$", out, re.M)
    final_accuracy(out)


def test_train_on_an_idx_directory_with_options(tmp_path, capsys):
    write_idx_directory(tmp_path / "idx", n_train=50, n_test=10)
    status, out, err = main(["train", "--dataset", str(tmp_path / "idx"), "--epochs", "1",
                             "--sizes", "8,6", "--activation", "relu,tanh,sigmoid",
                             "--dtype", "float32", "--batch-size", "7", "--eta", "0.1",
                             "--lmbda", "0.5", "--seed", "3", "--samples", "30"], capsys)
    assert status == 0, err
    assert "[784, 8, 6, 10], relu,tanh,sigmoid" in out and "float32" in out
    assert "mini-batch 7, eta 0.1, lmbda 0.5, seed 3" in out
    assert "30 training and 10 test samples" in out


def test_train_is_reproducible_with_a_seed(capsys):
    outputs = []
    for _ in range(2):
        status, out, _ = main(["train", "--epochs", "3", "--seed", "5"], capsys)
        assert status == 0
        outputs.append(re.sub(r"\([0-9.]+ s\)|seconds per epoch: .*", "", out))
    assert outputs[0] == outputs[1]


def test_train_save_then_load(tmp_path, capsys):
    path = tmp_path / "net.npz"
    status, out, err = main(["train", "--epochs", "2", "--save", str(path),
                             "--dtype", "float32"], capsys)
    assert status == 0, err
    net = fastbp.load(str(path))
    assert net.sizes == [64, 30, 10] and net.dtype == np.float32
    # the saved network scores the accuracy the run printed
    X_test, y_test = datasets.load("digits").test
    assert abs(net.accuracy(X_test, y_test) - final_accuracy(out)) < 1e-4


def test_train_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    status, out, err = main(["train", "--epochs", "3", "--plot", str(path)], capsys)
    assert status == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_plot_refuses_a_name_matplotlib_cannot_write(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    status, out, err = main(["train", "--epochs", "1", "--plot",
                             str(tmp_path / "curves.xyz")], capsys)
    assert_usage_error(status, err, "--plot", ".png")
    assert out == ""                                          # refused before training
    assert not list(tmp_path.iterdir())


def test_train_plot_without_a_suffix_says_which_file_it_wrote(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    status, out, err = main(["train", "--epochs", "1", "--plot", str(tmp_path / "curves")],
                            capsys)
    assert status == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
    assert f"learning curves written to {tmp_path / 'curves.png'}" in out


def test_train_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import fails
    status, out, err = main(["train", "--plot", str(tmp_path / "c.png")], capsys)
    assert_usage_error(status, err, "matplotlib", "pip install")
    assert out == ""                                          # refused before training


def test_progress_bar_on_a_terminal(capsys, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(cli, "_PROGRESS_AFTER_SECONDS", 0.0)   # every epoch is "long"
    assert cli.main(["train", "--epochs", "3"]) == 0
    text = terminal.getvalue()
    assert text.count("\r[") == 3
    assert "] epoch 3/3" in text
    # each bar is wiped before the epoch's line is printed
    assert len(re.findall(r"\r +\rEpoch \d/3: ", text)) == 3


@pytest.mark.parametrize("argv, fragments", [
    (["train", "--epochs", "x"], ["--epochs", "integer"]),
    (["train", "--batch-size", "0"], ["--batch-size", "at least 1"]),
    (["train", "--eta", "0"], ["--eta", "> 0.0"]),
    (["train", "--eta", "nan"], ["--eta"]),
    (["train", "--lmbda", "-1"], ["--lmbda"]),
    (["train", "--sizes", "30,x"], ["--sizes"]),
    (["train", "--sizes", "0"], ["--sizes", "at least 1"]),
    (["train", "--activation", "softmax"], ["--activation", "softmax"]),
    (["train", "--activation", "relu,relu,relu"], ["--activation", "[64, 30, 10]"]),
    (["train", "--cost", "hinge"], ["--cost"]),
    (["train", "--activation", "tanh"], ["--cost cross-entropy", "--activation tanh,sigmoid"]),
    (["gradcheck", "--activation", "tanh"], ["--cost cross-entropy", "tanh,tanh,sigmoid"]),
    (["train", "--dtype", "float16"], ["--dtype"]),
    (["train", "--samples", "0"], ["--samples"]),
    (["train", "--seed", "-1", "--samples", "10"], ["--seed", "at least 0"]),
    (["gradcheck", "--seed", "-1"], ["--seed", "at least 0"]),
    (["train", "--dataset", "cifar"], ["--dataset", "cifar"]),
    (["train", "--save", "/no/such/dir/net.npz"], ["--save", "/no/such/dir"]),
    (["train", "--frobnicate"], ["--frobnicate"]),
    (["train", "--save", "."], ["--save", "is a directory"]),
    (["bench", "--seed", "-1"], ["--seed", "from 0"]),
    (["bench", "--threads", "1000"], ["--threads", "to 64"]),
    (["bench", "--references", "bogus"], ["--references", "'bogus'"]),
    (["bench", "--samples", "1000000000000"], ["--samples", "to 1,000,000"]),
    (["bench", "--gemm-size", "1000000"], ["--gemm-size"]),
    (["bench", "--workload", "sweep", "--hidden", "1000000000"], ["--hidden"]),
    (["bench", "--gradient-cost", "--hidden", "7"], ["at least two --hidden widths"]),
    (["bench", "--plot", "g.png"], ["--plot", "--gradient-cost"]),
    (["fly"], ["fly"]),
    (["download", "imagenet"], ["imagenet"]),
    (["download", "mnist", "--cache-dir", __file__], ["--cache-dir", "not a directory"]),
])
def test_bad_options(argv, fragments, capsys):
    status, out, err = main(argv, capsys)
    assert_usage_error(status, err, *fragments)


def test_bad_data_files(tmp_path, capsys):
    wrong = write_py3_pickle(tmp_path / "wrong.pkl.gz", {"not": "mnist"})
    status, _, err = main(["train", "--dataset", str(wrong)], capsys)
    assert_usage_error(status, err, str(wrong), "expected")

    write_idx_directory(tmp_path / "idx", n_train=20, n_test=10)
    labels = tmp_path / "idx" / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(19, dtype=np.uint8))
    status, _, err = main(["train", "--dataset", str(tmp_path / "idx")], capsys)
    assert_usage_error(status, err, str(labels), "20 images", "19 labels")

    truncated = tmp_path / "cut.pkl.gz"
    truncated.write_bytes(wrong.read_bytes()[:-10])
    status, _, err = main(["train", "--dataset", str(truncated)], capsys)
    assert_usage_error(status, err, str(truncated))


def test_no_command(capsys):
    status, out, err = main([], capsys)
    assert status == 2 and "train" in err and "gradcheck" in err


def test_divergence_exits_with_status_1(capsys):
    status, out, err = main(["train", "--epochs", "3", "--activation", "relu,linear",
                             "--cost", "quadratic", "--eta", "1e6"], capsys)
    assert status == 1
    assert "diverged" in err and "Traceback" not in err


# -- gradcheck -------------------------------------------------------------------
def test_gradcheck(capsys):
    status, out, err = main(["gradcheck"], capsys)
    assert status == 0, err
    layers = re.findall(r"^layer (\d) \(.*\): worst relative error weights ([0-9.e+-]+), "
                        r"biases ([0-9.e+-]+)$", out, re.M)
    assert [int(l[0]) for l in layers] == [1, 2, 3]
    assert all(float(w) < 1e-5 and float(b) < 1e-5 for _, w, b in layers)
    assert "agrees" in out


def test_gradcheck_checks_at_most_max_checks_entries_a_layer(capsys):
    status, out, err = main(["gradcheck", "--layers", "30,20,4", "--max-checks", "7"], capsys)
    assert status == 0, err
    assert "layer 1 (7 of 600 weights, 7 of 20 biases checked)" in out
    assert "layer 2 (7 of 80 weights, 4 of 4 biases checked)" in out


def test_gradcheck_mixed_activations(capsys):
    status, out, err = main(["gradcheck", "--layers", "4,7,3", "--activation", "tanh,sigmoid",
                             "--cost", "quadratic", "--samples", "3"], capsys)
    assert status == 0, err
    assert "[4, 7, 3], tanh,sigmoid, quadratic" in out


def test_gradcheck_says_when_there_was_nothing_to_compare(capsys):
    """ReLU layers that the random inputs leave dead give zero gradients on
    both sides: no evidence either way."""
    status, out, err = main(["gradcheck", "--activation", "relu", "--cost", "quadratic"],
                            capsys)
    assert status == 1
    assert "nothing was compared" in out and "agrees" not in out


def test_gradcheck_reports_disagreement(capsys, monkeypatch):
    """A backprop that returns twice the gradient is caught."""
    from fastbp.native import Network
    backprop = Network.backprop

    def doubled(self, X, Y):
        nabla_b, nabla_w = backprop(self, X, Y)
        return [2 * g for g in nabla_b], [2 * g for g in nabla_w]

    monkeypatch.setattr(Network, "backprop", doubled)
    status, out, err = main(["gradcheck", "--layers", "3,2,2"], capsys)
    assert status == 1
    errors = re.findall(r"weights ([0-9.e+-]+), biases ([0-9.e+-]+)$", out, re.M)
    assert len(errors) == 2 and all(float(e) > 0.3 for pair in errors for e in pair)
    assert "DISAGREES" in out


# -- bench: delegated to fastbp.bench -------------------------------------------------
def test_bench_delegates(capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("fastbp.bench")
    fake.add_arguments = lambda parser: parser.add_argument("--workload", default="W1")
    fake.run = lambda args: calls.append(args.workload) or 0
    monkeypatch.setitem(sys.modules, "fastbp.bench", fake)
    monkeypatch.setattr(fastbp, "bench", fake, raising=False)
    status, out, err = main(["bench", "--workload", "W2"], capsys)
    assert status == 0 and calls == ["W2"]


def test_bench_missing(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastbp.bench", None)      # import fails
    monkeypatch.delattr(fastbp, "bench", raising=False)
    status, out, err = main(["bench"], capsys)
    assert_usage_error(status, err, "fastbp.bench")


# -- download (through a file:// URL: nothing leaves the machine) ---------------------
def test_download_command(tmp_path, capsys, monkeypatch):
    import hashlib
    data = b"some bytes"
    (tmp_path / "f.gz").write_bytes(data)
    good = ("tiny", (("tiny/f.gz", (tmp_path / "f.gz").as_uri(),
                      "sha256:" + hashlib.sha256(data).hexdigest()),))
    monkeypatch.setitem(datasets.DOWNLOADS, "tiny", good)
    status, out, err = main(["download", "tiny", "--cache-dir", str(tmp_path / "c")], capsys)
    assert status == 0, err
    assert (tmp_path / "c" / "tiny" / "f.gz").read_bytes() == data
    assert str(tmp_path / "c" / "tiny") in out

    bad = ("tiny", (("tiny/g.gz", (tmp_path / "f.gz").as_uri(), "sha256:" + "0" * 64),))
    monkeypatch.setitem(datasets.DOWNLOADS, "tiny", bad)
    status, out, err = main(["download", "tiny", "--cache-dir", str(tmp_path / "c")], capsys)
    assert status == 1 and "checksum mismatch" in err
    assert not (tmp_path / "c" / "tiny" / "g.gz").exists()


# -- the examples ------------------------------------------------------------------
def test_example_native_api(tmp_path):
    result = run([sys.executable, os.path.join(EXAMPLES, "native_api.py")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    accuracy = re.findall(r"^test accuracy: ([0-9.]+)$", result.stdout, re.M)
    assert len(accuracy) == 1 and float(accuracy[0]) >= 0.9


@pytest.fixture
def small_mnist(tmp_path):
    """A mnist.pkl.gz in Nielsen's format: 300 training, 50 validation, 50 test."""
    return write_py2_pickle(tmp_path / "mnist.pkl.gz", make_nielsen_sets(300, 50, 50))


def test_example_book_chapter1(tmp_path, small_mnist):
    result = run([sys.executable, os.path.join(EXAMPLES, "book_chapter1.py"),
                  "--data", str(small_mnist), "--epochs", "1", "--samples", "200",
                  "--seed", "1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Epoch 0: \d+ / 50$", result.stdout, re.M), result.stdout
    assert f"data: {small_mnist}" in result.stdout


def test_example_book_chapter3(tmp_path, small_mnist):
    pytest.importorskip("fastbp.network2")
    saved = tmp_path / "net.json"
    result = run([sys.executable, os.path.join(EXAMPLES, "book_chapter3.py"),
                  "--data", str(small_mnist), "--epochs", "1", "--seed", "1",
                  "--save", str(saved)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^Epoch 0 training complete$", out, re.M), out
    assert re.search(r"^Accuracy on evaluation data: \d+ / 50$", out, re.M), out
    assert re.search(r"^test accuracy: \d+ / 50$", out, re.M), out
    import fastbp.network2 as network2
    assert network2.load(str(saved)).sizes == [784, 30, 10]


def test_bench_report_prints_its_table(capsys):
    """The real report, on a small W1 against the vectorized reference."""
    status, out, err = main(["bench", "--workload", "W1", "--samples", "500",
                             "--references", "vectorized", "--repeat", "1"], capsys)
    assert status in (0, None), err
    assert re.search(r"^fastbp\s+float64\s+[\d.e+-]+\s+1\.00", out, flags=re.M), out
    assert re.search(r"^vectorized NumPy.*float64\s+[\d.e+-]+\s+[\d.]+", out, flags=re.M), out
    assert "GFLOP/s" in out and "BLAS threads" in out


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path):
    """`fastbp train | head -1`: the pipe closes early; no traceback."""
    proc = subprocess.run(
        f"{sys.executable} -m fastbp train --epochs 3 | head -1",
        shell=True, capture_output=True, text=True, timeout=300)
    assert proc.stdout.startswith("data: ")
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
