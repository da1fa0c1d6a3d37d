"""fastbp.datasets: the embedded digits, IDX files, Nielsen's pickle, load()
and download(), on small files written here from the file formats."""
import gzip
import hashlib
import io
import os
import pickle
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastbp import arrays, datasets
from datafiles import (IDX_NAMES, idx_bytes, make_nielsen_sets, py2_pickle_bytes,
                       write_idx, write_idx_directory, write_py2_pickle, write_py3_pickle)


def assert_names(excinfo, path):
    """The error message names the file."""
    assert os.fspath(path) in str(excinfo.value), str(excinfo.value)


# -- the embedded digits -------------------------------------------------------
def test_digits_shape_range_and_labels():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    # the pixels were integers 0..16 scaled by 1/16
    assert_array_equal(X * 16, np.round(X * 16))
    assert set(np.unique(y)) == set(range(10))
    # the UCI set is nearly balanced: 174 to 183 samples per digit
    counts = np.bincount(y)
    assert counts.min() >= 170 and counts.max() <= 185


def test_holdout_split_is_a_seeded_partition():
    X = np.arange(100, dtype=float).reshape(50, 2)
    y = np.arange(50)
    (Xa, ya), (Xb, yb) = datasets.holdout_split(X, y, test_fraction=0.2, seed=3)
    assert len(ya) == 40 and len(yb) == 10
    assert sorted(np.concatenate([ya, yb]).tolist()) == list(range(50))
    assert_array_equal(Xa[:, 0], 2 * ya)                     # rows stay with their labels
    (_, ya2), (_, yb2) = datasets.holdout_split(X, y, test_fraction=0.2, seed=3)
    assert_array_equal(yb, yb2)
    (_, _), (_, yb3) = datasets.holdout_split(X, y, test_fraction=0.2, seed=4)
    assert not np.array_equal(yb, yb3)
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.holdout_split(X, y, test_fraction=1.5)
    with pytest.raises(ValueError, match="samples"):
        datasets.holdout_split(X, y[:10])
    with pytest.raises(TypeError, match="test_fraction must be a real number"):
        datasets.holdout_split(X, y, test_fraction="0.2")
    with pytest.raises(ValueError, match="X must hold one sample per row"):
        datasets.holdout_split(3, 4)
    with pytest.raises(ValueError, match="seed must be None, a non-negative integer"):
        datasets.holdout_split(X, y, seed=-1)


# -- IDX -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_read_idx_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((4, 3, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, array)
    back = datasets.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (4, 3, 5)
    assert_array_equal(back, array)


def test_read_idx_gzip_detected_by_content(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "labels-without-gz-suffix"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    assert_array_equal(datasets.read_idx(path), array)


def test_load_idx_directory(tmp_path):
    tri, trl, tei, tel = write_idx_directory(tmp_path, n_train=40, n_test=15, seed=1)
    (X, y), (Xt, yt) = datasets.load_idx_directory(tmp_path)
    assert X.shape == (40, 784) and X.dtype == np.float32
    assert Xt.shape == (15, 784) and yt.dtype == np.int64
    assert_allclose(X, tri.reshape(40, 784) / 255.0, rtol=1e-6)
    assert_allclose(Xt, tei.reshape(15, 784) / 255.0, rtol=1e-6)
    assert_array_equal(y, trl)
    assert_array_equal(yt, tel)
    (X64, _), _ = datasets.load_idx_directory(tmp_path, dtype=np.float64)
    assert X64.dtype == np.float64
    assert_allclose(X64, tri.reshape(40, 784) / 255.0, rtol=1e-15)
    # rows of 784 pixels, each starting on a cache line (see fastbp.arrays)
    assert all(arrays.is_aligned(A) for A in (X, Xt, X64, X[1], X64[1]))


def test_load_idx_directory_of_gunzipped_files(tmp_path):
    arrays = write_idx_directory(tmp_path / "gz", n_train=20, n_test=10)
    for name, array in zip(IDX_NAMES, arrays):
        write_idx(tmp_path / name[:-3], array)             # train-images-idx3-ubyte
    (X, y), (Xt, yt) = datasets.load_idx_directory(tmp_path)
    assert_allclose(X, arrays[0].reshape(20, -1) / 255.0, rtol=1e-6)
    assert_array_equal(yt, arrays[3])


def test_load_idx_files_given_explicitly(tmp_path):
    tri, trl, tei, tel = write_idx_directory(tmp_path / "d", n_train=12, n_test=6)
    names = ["imgs.gz", "labs.gz", "timgs.gz", "tlabs.gz"]
    for name, array in zip(names, (tri, trl, tei, tel)):
        write_idx(tmp_path / name, array)
    (X, y), (Xt, yt) = datasets.load_idx_files(*(tmp_path / n for n in names))
    assert_allclose(X, tri.reshape(12, -1) / 255.0, rtol=1e-6)
    assert_array_equal(y, trl)
    assert_allclose(Xt, tei.reshape(6, -1) / 255.0, rtol=1e-6)
    assert_array_equal(yt, tel)


# -- bad IDX files: every error names the file ------------------------------------
@pytest.mark.parametrize("case", ["no images", "negative labels", "NaN pixels",
                                  "pixels beyond float32", "test images narrower"])
def test_idx_sets_that_cannot_train_a_network(tmp_path, case):
    arrays = list(write_idx_directory(tmp_path, n_train=12, n_test=6))
    index, array, fragment = {
        "no images": (0, np.zeros((0, 28, 28), np.uint8), "holds no images"),
        "negative labels": (1, -np.ones(12, np.int8), "negative"),
        "NaN pixels": (2, np.full((6, 28, 28), np.nan, np.float32), "NaN"),
        "pixels beyond float32": (0, np.full((12, 28, 28), 1e300), "range of float32"),
        "test images narrower": (2, np.zeros((6, 20, 20), np.uint8), "400 pixels"),
    }[case]
    if case == "no images":
        write_idx(tmp_path / IDX_NAMES[1], np.zeros(0, np.uint8))
    path = write_idx(tmp_path / IDX_NAMES[index], array)
    with pytest.raises(ValueError, match=fragment) as e:
        datasets.load_idx_directory(tmp_path)
    assert_names(e, path)


@pytest.mark.parametrize("dtype", [np.int8, int, complex, object, "float16"])
def test_loaders_take_float32_or_float64_only(tmp_path, dtype):
    write_idx_directory(tmp_path, n_train=12, n_test=6)
    for load in (lambda: datasets.load_idx_directory(tmp_path, dtype=dtype),
                 lambda: datasets.load("digits", dtype=dtype)):
        with pytest.raises(TypeError, match="dtype must be float32 or float64"):
            load()



def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        datasets.read_idx(tmp_path / "nope.gz")
    assert_names(e, tmp_path / "nope.gz")


def test_idx_directory_missing_one_file(tmp_path):
    write_idx_directory(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError) as e:
        datasets.load_idx_directory(tmp_path)
    assert_names(e, tmp_path / "t10k-labels-idx1-ubyte.gz")


def test_idx_directory_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        datasets.load_idx_directory(tmp_path / "absent")
    assert_names(e, tmp_path / "absent")


def test_idx_truncated_gzip(tmp_path):
    images, _ = datafiles_images()
    path = tmp_path / "cut.gz"
    data = gzip.compress(idx_bytes(images))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated gzip") as e:
        datasets.read_idx(path)
    assert_names(e, path)


def test_idx_corrupt_gzip(tmp_path):
    images, _ = datafiles_images()
    data = bytearray(gzip.compress(idx_bytes(images)))
    data[20:40] = b"\xff" * 20
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="gzip") as e:
        datasets.read_idx(path)
    assert_names(e, path)


def test_idx_truncated_data(tmp_path):
    images, _ = datafiles_images()
    path = tmp_path / "short.idx"
    path.write_bytes(idx_bytes(images)[:-7])
    with pytest.raises(ValueError, match="truncated IDX") as e:
        datasets.read_idx(path)
    assert_names(e, path)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "header.idx"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="truncated IDX") as e:
        datasets.read_idx(path)
    assert_names(e, path)


@pytest.mark.parametrize("content", [b"", b"\x00\x00"])
def test_idx_too_short(tmp_path, content):
    path = tmp_path / "tiny.idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not an IDX file") as e:
        datasets.read_idx(path)
    assert_names(e, path)


@pytest.mark.parametrize("magic", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01",
                                   b"\x00\x00\x08\x00", b"PK\x03\x04"])
def test_idx_wrong_magic(tmp_path, magic):
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(gzip.compress(magic + b"\x00\x00\x00\x02ab"))
    with pytest.raises(ValueError, match="bad magic number") as e:
        datasets.read_idx(path)
    assert_names(e, path)


@pytest.mark.parametrize("header, message", [
    (bytes([0, 0, 8, 255]) + b"\x00\x00\x00\x01" * 255, "255 dimensions"),
    (bytes([0, 0, 8, 4]) + b"\x00\x01\x00\x00" * 4, "promises 18446744073709551616"),
], ids=["too many dimensions", "a count beyond 64 bits"])
def test_idx_header_that_no_array_can_follow(tmp_path, header, message):
    path = tmp_path / "odd.idx"
    path.write_bytes(header + b"abcd")
    with pytest.raises(ValueError, match=message) as e:
        datasets.read_idx(path)
    assert_names(e, path)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long.idx"
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)) + b"extra")
    with pytest.raises(ValueError, match="more data") as e:
        datasets.read_idx(path)
    assert_names(e, path)


def test_idx_count_mismatch(tmp_path):
    write_idx_directory(tmp_path, n_train=20, n_test=10)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(ValueError) as e:
        datasets.load_idx_directory(tmp_path)
    message = str(e.value)
    assert "10 images" in message and "9 labels" in message
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message


def test_idx_images_and_labels_swapped(tmp_path):
    arrays = write_idx_directory(tmp_path, n_train=20, n_test=10)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", arrays[0])   # images as labels
    with pytest.raises(ValueError, match="expected labels") as e:
        datasets.load_idx_directory(tmp_path)
    assert_names(e, tmp_path / "train-labels-idx1-ubyte.gz")


def test_idx_unreadable_directory_in_place_of_file(tmp_path):
    (tmp_path / "dir.gz").mkdir()
    with pytest.raises(OSError) as e:
        datasets.read_idx(tmp_path / "dir.gz")
    assert_names(e, tmp_path / "dir.gz")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="file permissions do not stop root")
def test_idx_unreadable_permissions(tmp_path):
    path = write_idx(tmp_path / "locked.gz", np.arange(3, dtype=np.uint8))
    os.chmod(path, 0)
    try:
        with pytest.raises(PermissionError) as e:
            datasets.read_idx(path)
        assert_names(e, path)
    finally:
        os.chmod(path, 0o644)


def datafiles_images():
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8), None


# -- Nielsen's pickle ----------------------------------------------------------
def assert_same_sets(loaded, sets):
    assert len(loaded) == 3
    for (x, y), (x0, y0) in zip(loaded, sets):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.flags.c_contiguous and arrays.is_aligned(x)
        assert_array_equal(x, x0)
        assert_array_equal(y, y0)


def test_pickle_written_by_python2(tmp_path):
    sets = make_nielsen_sets(30, 10, 10)
    path = write_py2_pickle(tmp_path / "mnist.pkl.gz", sets)
    with gzip.open(path, "rb") as f:            # the file needs latin1 to load at all
        with pytest.raises(UnicodeDecodeError):
            pickle.load(f)
    assert_same_sets(datasets.load_mnist_pkl(path), sets)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_written_by_python3(tmp_path, protocol):
    sets = make_nielsen_sets(8, 4, 4, seed=protocol)
    path = write_py3_pickle(tmp_path / "mnist.pkl.gz", sets, protocol=protocol)
    assert_same_sets(datasets.load_mnist_pkl(path), sets)


def test_pickle_of_byte_images_is_scaled(tmp_path):
    sets = make_nielsen_sets(8, 4, 4)
    raw = tuple(((x * 256).astype(np.uint8), y) for x, y in sets)
    path = write_py3_pickle(tmp_path / "mnist.pkl.gz", raw, protocol=4)
    expected = tuple((x.astype(np.float32) / np.float32(255), y) for x, y in raw)
    assert_same_sets(datasets.load_mnist_pkl(path), expected)


def test_pickle_uncompressed_and_lists(tmp_path):
    sets = make_nielsen_sets(8, 4, 4)
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps([list(p) for p in sets], protocol=2))
    assert_same_sets(datasets.load_mnist_pkl(path), sets)


def test_pickle_of_byte_images_is_scaled(tmp_path):
    rng = np.random.default_rng(0)
    parts = tuple((rng.integers(0, 256, size=(n, 6), dtype=np.uint8),
                   rng.integers(0, 10, size=n)) for n in (5, 3, 2))
    path = write_py3_pickle(tmp_path / "bytes.pkl.gz", parts)
    for (x, y), (x0, y0) in zip(datasets.load_mnist_pkl(path), parts):
        assert x.dtype == np.float32
        assert_allclose(x, x0 / 255.0, rtol=1e-6)
        assert_array_equal(y, y0)


def _sets(**change):
    (a, b), (c, d), (e, f) = make_nielsen_sets(6, 3, 3, width=10)
    parts = {"train": (a, b), "valid": (c, d), "test": (e, f)}
    parts.update(change)
    return parts["train"], parts["valid"], parts["test"]


WRONG_STRUCTURES = {
    "a dict": ({"train": 1}, "expected"),
    "two sets": (_sets()[:2], "expected"),
    "a set of three": (_sets(train=_sets()[0] + (np.zeros(6),)), "pair"),
    "images 1-d": (_sets(train=(np.zeros(6, np.float32), np.zeros(6, np.int64))), "2-d"),
    "labels as floats": (_sets(valid=(np.zeros((3, 10), np.float32), np.zeros(3))),
                         "integers"),
    "labels 2-d": (_sets(test=(np.zeros((3, 10), np.float32), np.zeros((3, 1), np.int64))),
                   "1-d"),
    "count mismatch": (_sets(valid=(np.zeros((3, 10), np.float32),
                                    np.zeros(4, np.int64))), "3 validation images"),
    "width mismatch": (_sets(test=(np.zeros((3, 11), np.float32), np.zeros(3, np.int64))),
                       "11 pixels"),
    "NaN pixels": (_sets(test=(np.full((3, 10), np.nan, np.float32),
                               np.zeros(3, np.int64))), "NaN"),
    "negative labels": (_sets(train=(np.zeros((6, 10), np.float32),
                                     -np.ones(6, np.int64))), "negative"),
    "labels beyond int64": (_sets(train=(np.zeros((6, 10), np.float32),
                                         np.full(6, 2**63, np.uint64))), "labels go up to"),
    "pixels beyond float32": (_sets(test=(np.full((3, 10), 1e300),
                                          np.zeros(3, np.int64))), "range of float32"),
    "a string": ("hello", "expected"),
}


@pytest.mark.parametrize("case", sorted(WRONG_STRUCTURES))
def test_pickle_of_wrong_structure(tmp_path, case):
    obj, fragment = WRONG_STRUCTURES[case]
    path = write_py3_pickle(tmp_path / "wrong.pkl.gz", obj)
    with pytest.raises(ValueError) as e:
        datasets.load_mnist_pkl(path)
    assert_names(e, path)
    assert fragment in str(e.value)


def test_pickle_truncated(tmp_path):
    data = py2_pickle_bytes(make_nielsen_sets(5, 2, 2, width=20))
    path = tmp_path / "cut.pkl.gz"
    path.write_bytes(gzip.compress(data[: len(data) - 40]))
    with pytest.raises(ValueError, match="pickle") as e:
        datasets.load_mnist_pkl(path)
    assert_names(e, path)


def test_pickle_truncated_gzip(tmp_path):
    data = gzip.compress(py2_pickle_bytes(make_nielsen_sets(5, 2, 2, width=20)))
    path = tmp_path / "cut.pkl.gz"
    path.write_bytes(data[:-30])
    with pytest.raises(ValueError, match="truncated gzip") as e:
        datasets.load_mnist_pkl(path)
    assert_names(e, path)


def test_pickle_garbage(tmp_path):
    path = tmp_path / "garbage.pkl.gz"
    path.write_bytes(gzip.compress(b"this is not a pickle at all"))
    with pytest.raises(ValueError) as e:
        datasets.load_mnist_pkl(path)
    assert_names(e, path)


def test_pickle_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        datasets.load_mnist_pkl(tmp_path / "mnist.pkl.gz")
    assert_names(e, tmp_path / "mnist.pkl.gz")


class _Planted:
    """Unpickling this would create a file: the loader must refuse it."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "was-run"
    path = write_py3_pickle(tmp_path / "evil.pkl.gz", _Planted(str(marker)))
    with pytest.raises(ValueError, match=r"asks for io\.open") as e:
        datasets.load_mnist_pkl(path)
    assert_names(e, path)
    assert not marker.exists()


# -- load() --------------------------------------------------------------------
def test_load_digits_by_name():
    data = datasets.load("digits")
    X, y = datasets.load_digits()
    (Xa, ya), (Xb, yb) = data.train, data.test
    assert Xa.shape == (1438, 64) and Xb.shape == (359, 64) and data.validation is None
    # together they are the digits, each sample once
    both = np.concatenate([Xa, Xb])
    order = np.lexsort(both.T)
    assert_array_equal(both[order], X[np.lexsort(X.T)])
    assert "digits" in data.description
    assert datasets.load("digits", dtype=np.float32).train[0].dtype == np.float32


def test_load_pickle_path_keeps_validation(tmp_path):
    sets = make_nielsen_sets(12, 5, 7, width=16)
    path = write_py2_pickle(tmp_path / "mnist.pkl.gz", sets)
    data = datasets.load(str(path))
    assert_array_equal(data.train[0], sets[0][0])
    assert_array_equal(data.validation[1], sets[1][1])
    assert_array_equal(data.test[0], sets[2][0])
    assert str(path) in data.description
    assert datasets.load(path, dtype="float64").test[0].dtype == np.float64


def test_load_idx_directory_path(tmp_path):
    arrays = write_idx_directory(tmp_path, n_train=10, n_test=5)
    data = datasets.load(tmp_path)
    assert data.train[0].shape == (10, 784) and data.validation is None
    assert_array_equal(data.test[1], arrays[3])


def test_load_unknown_name_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="digits, fashion-mnist, mnist"):
        datasets.load("cifar-10")
    with pytest.raises(FileNotFoundError) as e:
        datasets.load(str(tmp_path / "mnist.pkl.gz"))
    assert_names(e, tmp_path / "mnist.pkl.gz")
    other = tmp_path / "data.csv"
    other.write_text("1,2,3\n")
    with pytest.raises(ValueError) as e:
        datasets.load(str(other))
    assert_names(e, other)


def test_load_mnist_by_name_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="fastbp download mnist"):
        datasets.load("mnist")
    arrays = write_idx_directory(tmp_path / "cache" / "mnist", n_train=10, n_test=4)
    data = datasets.load("mnist")
    assert_array_equal(data.train[1], arrays[1])
    assert "MNIST" in data.description


@pytest.mark.skipif(not datasets.fashion_mnist_available(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_load_fashion_mnist_by_name():
    data = datasets.load("fashion-mnist")
    (X, y), (Xt, yt) = data.train, data.test
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert_array_equal(np.bincount(y), np.full(10, 6000))    # balanced classes
    assert_array_equal(np.bincount(yt), np.full(10, 1000))


def test_fashion_mnist_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "cache"))
    assert datasets.find_fashion_mnist() is None
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.load("fashion-mnist")


# -- download() ----------------------------------------------------------------
def _table(monkeypatch, files):
    """Replace the download table by one data set "tiny" of the given files
    [(relpath, url, digest)]."""
    monkeypatch.setitem(datasets.DOWNLOADS, "tiny", ("tiny", tuple(files)))


def _sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_download_from_a_file_url(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    contents = {"a.gz": b"first file", "b.gz": os.urandom(3000)}
    for name, data in contents.items():
        (source / name).write_bytes(data)
    _table(monkeypatch, [(f"tiny/{name}", (source / name).as_uri(), _sha256(data))
                         for name, data in contents.items()])
    cache = tmp_path / "cache"
    target = datasets.download("tiny", cache_dir=cache)
    assert target == os.path.join(cache, "tiny")
    for name, data in contents.items():
        assert (cache / "tiny" / name).read_bytes() == data
    assert sorted(os.listdir(cache / "tiny")) == ["a.gz", "b.gz"]    # no temporary left

    # present with the right digest: not fetched again
    def no_network(url, timeout=None):
        raise AssertionError(f"fetched {url} again")
    monkeypatch.setattr(datasets, "_urlopen", no_network)
    assert datasets.download("tiny", cache_dir=cache) == target


def test_download_checksum_mismatch_keeps_nothing(tmp_path, monkeypatch):
    source = tmp_path / "tampered.gz"
    source.write_bytes(b"not what was published")
    expected = _sha256(b"what was published")
    _table(monkeypatch, [("tiny/file.gz", source.as_uri(), expected)])
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="checksum mismatch") as e:
        datasets.download("tiny", cache_dir=cache)
    assert source.as_uri() in str(e.value)
    assert expected.split(":")[1] in str(e.value)
    assert os.listdir(cache / "tiny") == []


def test_download_replaces_a_damaged_cached_file(tmp_path, monkeypatch):
    data = b"the real content"
    source = tmp_path / "file.gz"
    source.write_bytes(data)
    _table(monkeypatch, [("tiny/file.gz", source.as_uri(), _sha256(data))])
    (tmp_path / "cache" / "tiny").mkdir(parents=True)
    (tmp_path / "cache" / "tiny" / "file.gz").write_bytes(b"the real con")   # cut short
    datasets.download("tiny", cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / "tiny" / "file.gz").read_bytes() == data


def test_download_with_a_monkeypatched_opener(tmp_path, monkeypatch):
    data = os.urandom(5000)
    asked = []

    def opener(url, timeout=None):
        asked.append(url)
        return io.BytesIO(data)

    monkeypatch.setattr(datasets, "_urlopen", opener)
    _table(monkeypatch, [("tiny/x.bin", "https://example.invalid/x.bin", _sha256(data))])
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "env-cache"))
    target = datasets.download("tiny")                     # default: $FASTBP_DATA
    assert asked == ["https://example.invalid/x.bin"]
    assert target == os.path.join(tmp_path / "env-cache", "tiny")
    assert (tmp_path / "env-cache" / "tiny" / "x.bin").read_bytes() == data


def test_download_failure_names_the_url(tmp_path, monkeypatch):
    missing = (tmp_path / "absent.gz").as_uri()
    _table(monkeypatch, [("tiny/absent.gz", missing, _sha256(b""))])
    with pytest.raises(OSError, match="download failed") as e:
        datasets.download("tiny", cache_dir=tmp_path / "cache")
    assert missing in str(e.value)
    assert os.listdir(tmp_path / "cache" / "tiny") == []


def test_download_unknown_name():
    with pytest.raises(ValueError, match="fashion-mnist"):
        datasets.download("imagenet")


def test_download_table_is_well_formed():
    assert {"mnist", "fashion-mnist", "mnist-pkl"} <= set(datasets.DOWNLOADS)
    for name, (target, files) in datasets.DOWNLOADS.items():
        for relpath, url, digest in files:
            assert url.startswith("https://"), url
            assert not os.path.isabs(relpath) and relpath.startswith(target)
            algorithm, value = digest.split(":")
            length = {"sha256": 64, "md5": 32}[algorithm]
            assert re.fullmatch(f"[0-9a-f]{{{length}}}", value), digest
    for name in ("mnist", "fashion-mnist"):            # the IDX sets have SHA-256 sums
        target, files = datasets.DOWNLOADS[name]
        assert [os.path.basename(f[0]) for f in files] == list(IDX_NAMES)
        assert all(f[2].startswith("sha256:") for f in files)


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTBP_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert datasets.cache_dir() == os.path.join(tmp_path, ".cache", "fastbp")
    monkeypatch.setenv("FASTBP_DATA", str(tmp_path / "mine"))
    assert datasets.cache_dir() == str(tmp_path / "mine")
