"""Fixtures for the real-browser tests: a tiny model, a `streamlit run` server, headless Chromium.

Every test here is marked `browser` (deselect with `pytest -m "not browser"`). On a failure the page is
saved under artifacts/e2e/ (screenshot, HTML, server log); set E2E_ARTIFACTS to write elsewhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_harness import (
    ARTIFACTS,
    StreamlitServer,
    dump_debug,
    launch_browser,
    new_page,
    open_app,
    prepare_home,
)

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request) -> bool:
    return any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))


@pytest.fixture(scope="session")
def e2e_home_template(tmp_path_factory):
    """A LATENT_EXPLORER_HOME with MNIST and one tiny model (1 epoch, 1000 images); never served."""
    return prepare_home(tmp_path_factory.mktemp("e2e_home_template") / "home")


def _serve(template: Path, dst: Path, log_name: str):
    shutil.copytree(template, dst)
    return StreamlitServer(dst, log_path=dst.parent / f"{log_name}.streamlit.log").start(timeout=120)


@pytest.fixture(scope="session")
def server(e2e_home_template, tmp_path_factory):
    """The Streamlit server every test shares (one start, one first render of the caches)."""
    srv = _serve(e2e_home_template, tmp_path_factory.mktemp("e2e_shared") / "home", "shared")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


def _page_fixture(request, browser, srv):
    page = new_page(browser)
    try:
        open_app(page, srv.url)
    except Exception:
        dump_debug(page, f"{request.node.name}-open", srv)
        page.context.close()
        raise
    try:
        yield page
    finally:
        if _failed(request):
            paths = dump_debug(page, request.node.name, srv)
            print(f"\n[e2e] failure artifacts in {ARTIFACTS}: {[p.name for p in paths]}")
            print(f"[e2e] server log tail:\n{srv.log_tail(30)}")
        page.context.close()


@pytest.fixture
def app_page(request, browser, server):
    """A fresh browser session on the shared server, with the app's first run finished."""
    yield from _page_fixture(request, browser, server)


@pytest.fixture(scope="module")
def served_model(server):
    """The model the shared server explores, loaded here, and the MNIST test set."""
    from model.data import load_dataset
    from model.latent import LatentModel
    from model.store import ModelStore

    store = ModelStore(server.home / "models")
    latent = LatentModel.from_record(store.record(store.current().id))
    data = load_dataset("mnist", npz=server.home / "data" / "mnist.npz")
    return latent, data
