"""The Retrain panel's Sweep tab and the Sweep results section (AppTest, the local runner, tiny models)."""

from __future__ import annotations

import time

import pytest

from model import sweep
from model.config import VAEConfig

pytestmark = pytest.mark.timeout(400)


def _sweep_app():
    import streamlit as st

    from explorer.panels.sweep import sweep_results_panel, sweep_tab
    from model.store import ModelStore

    store = ModelStore()
    with st.sidebar:
        sweep_tab(store)
    sweep_results_panel(store)


def _wait_sweep(sweep_id: str, timeout: float = 300.0) -> sweep.SweepStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = sweep.sweep_status(sweep_id)
        if not s.active:
            return s
        time.sleep(0.5)
    raise AssertionError(f"sweep {sweep_id} still running: {sweep.sweep_status(sweep_id)}")


def test_configs_for_types_the_values_and_names_a_bad_one():
    from explorer.panels.sweep import configs_for

    base = VAEConfig(epochs=1, limit=256)
    configs = configs_for(base, {"kl_weight": "0.5, 2", "latent_dim": "2,3"})
    assert [(c.kl_weight, c.latent_dim) for c in configs] == [(0.5, 2), (0.5, 3), (2.0, 2), (2.0, 3)]
    assert all(c.epochs == 1 and c.limit == 256 for c in configs)
    with pytest.raises(ValueError, match="latent_dim"):
        configs_for(base, {"latent_dim": "2, x"})
    with pytest.raises(ValueError, match="at least one field"):
        configs_for(base, {})


def test_loss_terms_figure_has_one_line_per_term_in_the_swept_order():
    from explorer.panels.sweep import loss_terms_figure

    points = [
        (2.0, {"reconstruction_loss": 180.0, "kl_loss": 3.0}, ""),
        (0.5, {"reconstruction_loss": 150.0, "kl_loss": 9.0}, ""),
    ]
    fig = loss_terms_figure(points, "kl_weight")
    recon, kl = fig.data
    assert list(recon.x) == [0.5, 2.0] and list(recon.y) == [150.0, 180.0]
    assert list(kl.x) == [0.5, 2.0] and list(kl.y) == [9.0, 3.0]
    assert fig.layout.xaxis.title.text == "β (KL weight)"


def test_sweep_tab_starts_a_sweep_shows_its_rows_and_the_results_list_its_models(home, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from model import jobs

    monkeypatch.setenv(jobs.NICE_ENV, "0")
    at = AppTest.from_function(_sweep_app, default_timeout=60).run()
    assert not at.exception
    at.sidebar.multiselect(key="sweep_fields").set_value(["seed"]).run()
    at.sidebar.text_input(key="sweep_values_seed").set_value("3, 4")
    at.sidebar.number_input(key="sweep_epochs").set_value(1)
    at.sidebar.number_input(key="sweep_limit").set_value(256)
    next(b for b in at.sidebar.button if b.label == "Start sweep").click().run()
    assert not at.exception
    assert "Sweep started: 2 configs one after another" in at.sidebar.success[0].value
    sweep_id = sweep.latest_sweep_id()
    [table] = at.sidebar.dataframe
    assert list(table.value["config"]) == ["seed=3", "seed=4"]
    assert set(table.value["state"]) <= {"pending", "running"}
    final = _wait_sweep(sweep_id)
    assert final.state == "succeeded", [(r.state, r.error) for r in final.rows]
    # another session sees the finished rows, each with its model
    other = AppTest.from_function(_sweep_app, default_timeout=60).run()
    [table] = other.sidebar.dataframe
    assert list(table.value["state"]) == ["succeeded", "succeeded"]
    assert list(table.value["model"]) == [r.model_id for r in final.rows]
    # the results section lists both models, ordered by seed, each with an Explore button
    other.session_state["sweep_results_open"] = True
    other.run()
    assert not other.exception
    heads = [m.value for m in other.main.markdown if m.value.startswith("**seed=")]
    assert heads == ["**seed=3**", "**seed=4**"]
    explore = [b for b in other.main.button if b.label == "Explore"]
    assert [b.key for b in explore] == [f"sweep_explore_{r.model_id}" for r in final.rows]
    assert len(other.get("plotly_chart")) == 3  # the loss terms + one scatter per model
    # Starting the same grid again reuses both models: nothing trains
    at.run()  # the sweep ended: Start is enabled again
    next(b for b in at.sidebar.button if b.label == "Start sweep").click().run()
    assert "2 already trained: reused, not retrained" in at.sidebar.success[0].value
    again = sweep.sweep_status(sweep.latest_sweep_id())
    assert [r.state for r in again.rows] == ["reused", "reused"] and not again.active
