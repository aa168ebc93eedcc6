"""The cached loader hands the page a model whose compiled encoder and decoder are traced already, so the
first scatter click (a reconstruction: encode then decode one image) does not trace them."""

from __future__ import annotations

import time

import numpy as np

from explorer import cache
from model.data import load_dataset
from model.latent import LatentModel
from model.store import ModelStore


def _traces(model) -> tuple[int, int]:
    return model._encode.experimental_get_tracing_count(), model._decode.experimental_get_tracing_count()


def test_warm_up_traces_once_and_later_calls_reuse_it(home):
    store = ModelStore()
    model = LatentModel.from_record(store.record(store.current().id))
    assert _traces(model) == (0, 0)
    model.warm_up()
    assert _traces(model) == (1, 1)
    x = load_dataset("mnist").x_test
    for batch in (x[40:41], x[:7], x[:300]):  # one click, a small batch, a big one: no new trace
        t = time.perf_counter()
        recon = model.reconstruct(batch)
        assert recon.shape == (len(batch), 28, 28) and np.isfinite(recon).all()
        assert _traces(model) == (1, 1), f"batch {len(batch)} traced again ({time.perf_counter() - t:.2f} s)"


def test_the_page_loader_returns_a_warm_model(home):
    store = ModelStore()
    record = store.current()
    model = cache._load_model(cache.model_stamp(record), str(store.root), record.id)
    assert _traces(model) == (1, 1)
