"""Every Python example in README.md runs as written."""
import pathlib
import re

import pytest

from fastbp.datasets import fashion_mnist_available

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    code = BLOCKS[index]
    if "mnist_loader.load_data_wrapper()" in code and not fashion_mnist_available():
        pytest.skip("needs MNIST or Fashion-MNIST (apt-get install dataset-fashion-mnist)")
    if "sklearn" in code:
        pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)        # examples may write files
    namespace = {"__name__": "readme_example"}
    if "search.fit" in code or "GridSearchCV" in code:
        # The grid-search example needs the digits loaded by the native one.
        from fastbp.datasets import load_digits
        namespace["X"], namespace["y"] = load_digits()
    exec(compile(code, f"README.md example {index}", "exec"), namespace)
