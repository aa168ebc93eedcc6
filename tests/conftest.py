"""Shared fixtures: a temporary LATENT_EXPLORER_HOME holding one tiny trained model.

The tiny model (512 MNIST images, 1 epoch, ~5 s) is trained once per test session and its store is
copied into each test's own home, so tests never touch the user's cache and never retrain needlessly.
"""

import os
import shutil

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# No bundled model in the suite's stores (model.bundle): an empty home stays empty and shows the first-run
# page, the e2e servers (which inherit this environment) explore their tiny model. tests/test_bundle.py
# turns it back on per test.
os.environ["LATENT_EXPLORER_BUNDLE"] = "0"

TINY = dict(epochs=1, limit=512)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    """A home with the MNIST cache and one tiny trained model; do not modify it in tests."""
    from model import paths
    from model.store import ModelStore
    from model.train import train
    from model.vae import VAEConfig

    home = tmp_path_factory.mktemp("home")
    with paths.using_home(home):
        train(VAEConfig(**TINY), store=ModelStore(), verbose=0)
    return home


def _link_data(src, dst):
    """Hard-link the cached datasets (55 MB): safe because caches are only ever replaced by rename."""
    shutil.copytree(src / "data", dst / "data", copy_function=os.link)


@pytest.fixture
def home(session_home, tmp_path, monkeypatch):
    """A fresh per-test LATENT_EXPLORER_HOME with the cached data and the tiny model; returns its path."""
    from model import paths

    dst = tmp_path / "home"
    shutil.copytree(session_home, dst, ignore=shutil.ignore_patterns("data"))
    _link_data(session_home, dst)
    monkeypatch.setenv(paths.HOME_ENV, str(dst))
    return dst


@pytest.fixture
def empty_home(session_home, tmp_path, monkeypatch):
    """A LATENT_EXPLORER_HOME with the cached data but no model."""
    from model import paths

    dst = tmp_path / "empty_home"
    _link_data(session_home, dst)
    monkeypatch.setenv(paths.HOME_ENV, str(dst))
    return dst


@pytest.fixture(autouse=True)
def _fresh_analysis_runner(monkeypatch):
    """Each test gets its own background analysis runner (explorer.background): no task or result of
    another test's model (the same tiny model id in every home) carries over."""
    from explorer import background  # the standard library only

    monkeypatch.setattr(background, "RUNNER", background.Runner())


# ----------------------------------------------------------------------------- the page under AppTest


@pytest.fixture
def media(monkeypatch):
    """file id -> bytes of every image the app under test adds to the media storage."""
    from streamlit.runtime import memory_media_file_storage as mfs

    files: dict[str, bytes] = {}
    original = mfs.MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        if isinstance(path_or_data, bytes):
            files[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(mfs.MemoryMediaFileStorage, "load_and_get_id", spy)
    return files


@pytest.fixture(scope="module")
def reference(session_home):
    """The tiny model and the MNIST test set, loaded here to compute what the page must show."""
    from model.data import load_dataset
    from model.latent import LatentModel
    from model.store import ModelStore

    store = ModelStore(session_home / "models")
    latent = LatentModel.from_record(store.record(store.current().id))
    data = load_dataset("mnist", npz=session_home / "data" / "mnist.npz")
    return latent, data


@pytest.fixture
def app(home):
    """The page run once headless (AppTest) on a home with the bundled model; no exception."""
    from streamlit.testing.v1 import AppTest

    from tests.apptest import APP

    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    return at
