"""Two browser tabs on one server: the model a tab explores belongs to that tab.

Its own server (a copy of the tiny-model home plus an older copy of the model), so picks, deletes and
links here never change what the other e2e tests' shared server explores.
"""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import urlencode

import pytest
from browser_harness import StreamlitServer, new_page, open_app, runs_done, wait_idle, wait_runs


@pytest.fixture(scope="module")
def two_model_server(e2e_home_template, tmp_path_factory):
    from model.store import ModelStore

    home = tmp_path_factory.mktemp("e2e_tabs") / "home"
    shutil.copytree(e2e_home_template, home)
    store = ModelStore(home / "models")
    rec = store.current()
    older = store.root / (rec.id + "-older")
    shutil.copytree(rec.path, older)
    meta = json.loads((older / "meta.json").read_text())
    meta["created"] -= 3600  # another label, listed second
    (older / "meta.json").write_text(json.dumps(meta))
    srv = StreamlitServer(home, log_path=home.parent / "tabs.streamlit.log").start(timeout=120)
    yield srv, store, rec.id, older.name
    srv.stop()


def model_id(page) -> str:
    """The id of the model the page explores, as its sidebar shows it ("id <model id>")."""
    text = page.locator('[data-testid="stSidebar"]').get_by_text(re.compile(r"^id ")).first.inner_text()
    return text.split(None, 1)[1].strip()


def tab(browser, url: str):
    page = new_page(browser)
    open_app(page, url)
    return page


def rerun(page) -> None:
    """Rerun the whole page, as Streamlit's "R" key does, and wait for that run to end."""
    n = runs_done(page)
    page.locator("body").press("r")
    wait_runs(page, n)


def pick_model(page, label_part: str) -> None:
    picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(
        has_text="Model to explore"
    )
    picker.click()
    page.get_by_role("option").filter(has_text=label_part).first.click()
    wait_idle(page)


@pytest.mark.timeout(600)
def test_a_pick_in_one_tab_leaves_another_tab_alone_and_new_tabs_open_on_the_default(
    browser, two_model_server
):
    srv, store, default_id, older_id = two_model_server
    a, b = tab(browser, srv.url), tab(browser, srv.url)
    try:
        assert model_id(a) == model_id(b) == default_id
        older_label = store.record(older_id).label
        pick_model(a, older_label)
        a.wait_for_function(
            "id => document.querySelector('[data-testid=stSidebar]').innerText.includes('id ' + id)",
            arg=older_id,
        )
        assert model_id(a) == older_id
        assert f"model={older_id}" in a.url  # the tab's URL names its model
        # B interacts (a rerun), then reloads: still its own model; the store's default is unchanged
        rerun(b)
        assert model_id(b) == default_id
        b.reload(wait_until="domcontentloaded")
        b.wait_for_function("window.__e2e && window.__e2e.runsDone >= 1")
        wait_idle(b)
        assert model_id(b) == default_id and store.current_id() == default_id
        c = tab(browser, srv.url)  # a new tab opens on the default
        assert model_id(c) == default_id
        c.context.close()
        # A reloads: its URL keeps it on its model
        a.reload(wait_until="domcontentloaded")
        a.wait_for_function("window.__e2e && window.__e2e.runsDone >= 1")
        wait_idle(a)
        assert model_id(a) == older_id
        # the model A explores is deleted from another tab: A's next step (a click inside the explore
        # fragment, then a model download) says so on the page
        for step, button in (
            ("explore", a.get_by_role("button", name="Random test image")),
            (
                "download",
                a.locator('[data-testid="stSidebar"]').get_by_role("button", name=re.compile("^Model .zip")),
            ),
        ):
            shutil.copytree(store.record(default_id).path, store.root / (older_id + step))
            rerun(a)  # the picker lists the new model
            pick_model(a, older_id + step)  # its label ends with its id: it has the default's label
            a.wait_for_function(
                "id => document.querySelector('[data-testid=stSidebar]').innerText.includes('id ' + id)",
                arg=older_id + step,
            )
            store.delete(older_id + step)
            button.click()
            note = a.locator('[data-testid="stAlert"]').filter(has_text="was deleted")
            note.wait_for(state="visible")
            assert older_id + step in note.inner_text(), step
            wait_idle(a)
            assert model_id(a) == default_id
        assert a.locator('[data-testid="stException"]').count() == 0
        assert b.locator('[data-testid="stException"]').count() == 0
    finally:
        a.context.close()
        b.context.close()


@pytest.mark.timeout(300)
def test_markdown_in_a_link_is_shown_as_text(browser, two_model_server):
    srv, _, default_id, _ = two_model_server
    page = new_page(browser)
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "127.0.0.1:1/" in r.url else None)
    params = {
        "model": "**bold** [x](javascript:alert(1)) `tick",
        "z": "![x](http://127.0.0.1:1/beacon-z.png)",
        "pick": "[y](http://127.0.0.1:1/p)",
    }
    try:
        open_app(page, f"{srv.url}?{urlencode(params)}")
        alerts = page.locator('[data-testid="stAlert"]')
        text = " ".join(alerts.all_inner_texts())
        assert "**bold** [x](javascript:alert(1)) `tick" in text  # verbatim, backtick included
        assert "![x](http://127.0.0.1:1/beacon-z.png)" in text
        assert alerts.locator("a, img, strong, em").count() == 0
        assert (
            page.locator('img[src*="127.0.0.1:1"], a[href*="127.0.0.1:1"], a[href^="javascript"]').count()
            == 0
        )
        assert not asked, asked  # the browser fetched nothing from the link's addresses
        assert model_id(page) == default_id
    finally:
        page.context.close()
