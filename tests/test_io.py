"""Saving and loading: network2's JSON both ways, fastbp's .npz, bad files,
atomic writes."""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastbp
import fastbp.io
import fastbp.network2 as network2
import reference

BOOK_COST_NAMES = {"quadratic": "QuadraticCost", "cross-entropy": "CrossEntropyCost"}


def book_json(sizes, seed=0):
    """A network in network2.py's JSON layout, written out here by hand:
    nested lists, weights (n_l, n_{l-1}), biases (n_l, 1)."""
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((o, 1)) for o in sizes[1:]]
    data = {"sizes": list(sizes), "weights": [w.tolist() for w in weights],
            "biases": [b.tolist() for b in biases], "cost": "CrossEntropyCost"}
    return data, weights, biases


def book_style_load(path):
    """What network2.py's load reads from a file: the four keys, as arrays."""
    with open(path) as f:
        data = json.load(f)
    assert data["cost"] in BOOK_COST_NAMES.values()
    return data["sizes"], [np.array(w) for w in data["weights"]], \
        [np.array(b) for b in data["biases"]], data["cost"]


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_native_save_writes_network2_json(tmp_path, problem, cost):
    X, labels, Y = problem
    net = fastbp.Network([5, 4, 3], cost=cost, seed=2)
    net.fit(X, labels, 2, 10, 0.5)
    path = tmp_path / "net.json"
    net.save(path)
    data = json.loads(path.read_text())
    assert sorted(data) == ["biases", "cost", "sizes", "weights"]
    assert data["cost"] == BOOK_COST_NAMES[cost]
    sizes, weights, biases, _ = book_style_load(path)
    assert sizes == [5, 4, 3]
    for got, want in zip(weights + biases, net.weights + net.biases):
        assert got.shape == want.shape
        assert_array_equal(got, want)
    # the book's feedforward, applied to what it read, gives fastbp's outputs
    assert_allclose(reference.feedforward(weights, biases, "sigmoid", X),
                    net.feedforward(X), rtol=1e-12)


def test_network2_json_loads_and_computes_the_same(tmp_path, problem):
    X = problem[0]
    data, weights, biases = book_json([5, 7, 3])
    path = tmp_path / "book.json"
    path.write_text(json.dumps(data))
    expected = reference.feedforward(weights, biases, "sigmoid", X)
    net = fastbp.load(path)
    assert isinstance(net, fastbp.Network)
    assert net.sizes == [5, 7, 3] and net.cost == "cross-entropy"
    assert net.activations == ["sigmoid", "sigmoid"] and net.dtype == np.float64
    assert_allclose(net.feedforward(X), expected, rtol=1e-12)
    net2 = network2.load(str(path))
    assert net2.cost is network2.CrossEntropyCost
    assert_allclose(net2.feedforward(X.T).T, expected, rtol=1e-12)
    # and back: network2's save writes what the book reads
    net2.save(str(tmp_path / "again.json"))
    sizes, w2, b2, cost = book_style_load(tmp_path / "again.json")
    assert sizes == [5, 7, 3] and cost == "CrossEntropyCost"
    for got, want in zip(w2 + b2, weights + biases):
        assert_array_equal(got, want)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip_keeps_dtype_activations_and_cost(tmp_path, problem, suffix):
    X = problem[0]
    net = fastbp.Network([5, 6, 4, 3], activations=["tanh", "relu", "sigmoid"],
                         cost="cross-entropy", dtype=np.float32, seed=4)
    path = tmp_path / ("net" + suffix)
    net.save(path)
    loaded = fastbp.load(path)
    assert loaded.dtype == np.float32
    assert loaded.activations == ["tanh", "relu", "sigmoid"]
    assert loaded.cost == "cross-entropy" and loaded.sizes == [5, 6, 4, 3]
    for got, want in zip(loaded.weights + loaded.biases, net.weights + net.biases):
        assert got.dtype == np.float32 and got.shape == want.shape
        assert_array_equal(got, want)
    assert_array_equal(loaded.feedforward(X), net.feedforward(X))


def test_npz_is_read_without_pickle(tmp_path, monkeypatch):
    net = fastbp.Network([3, 2], seed=0)
    net.save(tmp_path / "n.npz")
    seen = {}
    real_load = np.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    fastbp.load(tmp_path / "n.npz")
    assert seen.get("allow_pickle") is False


def bad_files(tmp_path):
    """(name, bytes) of files that are not networks fastbp can load."""
    good = tmp_path / "good.npz"
    fastbp.Network([4, 3, 2], seed=0).save(good)
    npz = good.read_bytes()
    data, _, _ = book_json([4, 3, 2])
    text = json.dumps(data)
    foreign_npz = tmp_path / "foreign.npz"
    np.savez(foreign_npz, a=np.arange(3))
    wrong_shape = dict(data, weights=data["weights"][::-1])
    nan = json.dumps(data).replace(str(data["weights"][0][0][0]), "NaN", 1)
    return {
        "truncated.json": text[: len(text) // 2].encode(),
        "truncated.npz": npz[: len(npz) // 2],
        "corrupt.npz": npz[:100] + bytes(range(256)) + npz[356:],
        "binary.json": bytes(range(256)),
        "empty.json": b"",
        "foreign.json": json.dumps({"name": "not a network", "values": [1, 2]}).encode(),
        "list.json": b"[1, 2, 3]",
        "foreign.npz": foreign_npz.read_bytes(),
        "wrongshape.json": json.dumps(wrong_shape).encode(),
        "nan.json": nan.encode(),
        "badcost.json": json.dumps(dict(data, cost="HingeCost")).encode(),
        "badsizes.json": json.dumps(dict(data, sizes=[4, "x", 2])).encode(),
        "listcost.json": json.dumps(dict(data, cost=[1])).encode(),
        "linearce.json": json.dumps(dict(data, activations=["sigmoid", "linear"])).encode(),
        "dictcost.json": json.dumps(dict(data, cost={})).encode(),
        "huge.json": text.replace(str(data["weights"][0][0][0]), "1" + "0" * 400, 1).encode(),
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
        "notarray.npz": _with_member(npz, "format.npy", b"not an array"),
    }


def _with_member(npz, name, content):
    """The bytes of the .npz archive ``npz`` with member ``name`` replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(npz)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, content if item.filename == name else src.read(item))
    return out.getvalue()


def test_bad_files_raise_clear_errors(tmp_path):
    for name, content in bad_files(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(content)
        for loader in (fastbp.load, network2.load):
            with pytest.raises(fastbp.io.NetworkFileError) as info:
                loader(str(path))
            assert str(path) in str(info.value), name
            assert isinstance(info.value, ValueError)
    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.json")


def test_network2_refuses_a_non_sigmoid_network(tmp_path):
    path = tmp_path / "tanh.json"
    fastbp.Network([3, 2], activations="tanh", seed=0).save(path)
    assert json.loads(path.read_text())["activations"] == ["tanh"]
    with pytest.raises(fastbp.io.NetworkFileError, match="sigmoid"):
        network2.load(str(path))


def test_python_activations_cannot_be_saved(tmp_path):
    net = fastbp.Network([3, 2], activations=(np.sin, np.cos), seed=0)
    for name in ("a.json", "a.npz"):
        with pytest.raises(TypeError, match="Python-defined"):
            net.save(tmp_path / name)
        assert not (tmp_path / name).exists()


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("suffix, target", [(".json", "json.dump"), (".npz", "np.savez")])
def test_save_is_atomic(tmp_path, monkeypatch, suffix, target):
    path = tmp_path / ("net" + suffix)
    old = fastbp.Network([4, 3, 2], seed=0)
    old.save(path)
    before = path.read_bytes()
    new = fastbp.Network([4, 3, 2], seed=1)

    def fail_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half" if "b" in getattr(f, "mode", "") else '{"sizes": [4, ')
        raise Boom("disk full")

    if target == "json.dump":
        monkeypatch.setattr(json, "dump", fail_midway)
    else:
        monkeypatch.setattr(np, "savez", lambda f, **arrays: fail_midway(None, f))
    with pytest.raises(Boom):
        new.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]           # no temporary file left
    monkeypatch.undo()
    loaded = fastbp.load(path)
    assert_array_equal(loaded.weights[0], old.weights[0])
    with pytest.raises(Boom):                            # network2's save too
        monkeypatch.setattr(json, "dump", fail_midway)
        np.random.seed(0)
        network2.Network([4, 3, 2]).save(str(tmp_path / "net.json"))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


def test_saved_file_gets_the_usual_permissions(tmp_path):
    probe = tmp_path / "probe"
    probe.write_text("x")
    path = tmp_path / "net.json"
    fastbp.Network([3, 2], seed=0).save(path)
    assert (path.stat().st_mode & 0o777) == (probe.stat().st_mode & 0o777)
    os.chmod(path, 0o600)
    fastbp.Network([3, 2], seed=1).save(path)           # replacing keeps the old mode
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_paths_may_be_bytes(tmp_path, suffix):
    net = fastbp.Network([4, 3, 2], seed=0)
    path = os.fsencode(tmp_path / ("n" + suffix))
    net.save(path)
    back = fastbp.load(path)
    for p, q in zip(net.weights + net.biases, back.weights + back.biases):
        assert_array_equal(p, q)


def test_a_file_name_that_is_not_one_is_refused():
    net = fastbp.Network([4, 3, 2], seed=0)
    for call in (lambda: fastbp.load(None), lambda: network2.load(3),
                 lambda: net.save(None), lambda: network2.Network([4, 2]).save(1.5)):
        with pytest.raises(TypeError, match="file name must be a str, bytes or os.PathLike"):
            call()
