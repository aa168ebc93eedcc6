"""model/embedding.py: the UMAP (seeded, exact neighbours, epochs as progress, in a child process) and the
run-time estimates of the t-SNE and the UMAP."""

import numpy as np
import pytest

from model import embedding


def _two_clusters(n=150, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1, (n, 6)), rng.normal(8, 1, (n, 6))]).astype(np.float32)


def test_exact_knn_is_the_brute_force_neighbourhood():
    z = np.random.default_rng(1).normal(size=(300, 5)).astype(np.float32)
    idx, dist = embedding.exact_knn(z, 7)
    d = np.sqrt(np.square(z[:, None] - z[None]).sum(-1))
    assert idx.shape == dist.shape == (300, 7)
    assert np.array_equal(idx[:, 0], np.arange(300)) and np.allclose(dist[:, 0], 0, atol=1e-3)
    assert np.allclose(dist, np.sort(d, axis=1)[:, :7], atol=1e-4)


def test_umap_in_a_child_reports_its_epochs_and_equals_the_seeded_umap(home):
    """One real UMAP in a child process (as the page runs it) and one in this process: the same layout
    (seeded), the clusters apart, the progress monotone up to 1, numba's cache then filled."""
    z = _two_clusters()
    seen, infos = [], []

    def progress(fraction, **info):  # as the page's runner: the child's estimate comes with it
        seen.append(fraction)
        infos.append(info)

    xy = embedding.umap_in_child(z, n_neighbors=10, min_dist=0.1, seed=3, progress=progress, poll=0.05)
    assert xy.shape == (300, 2) and xy.dtype == np.float32 and np.all(np.isfinite(xy))
    assert seen == sorted(seen) and 0 <= seen[0] and seen[-1] <= 1 and max(seen) > 0.5, seen[-5:]
    info = infos[-1]
    rate = info["speed"] * embedding.REF_RATE
    assert info["estimate"] == pytest.approx(
        embedding.estimate_seconds("UMAP", 300, rate, info["compiled"], 10)
    )
    assert embedding.umap_compiled()
    epochs = []
    again = embedding.umap_2d(z, 10, 0.1, seed=3, on_epoch=lambda k, n: epochs.append((k, n)))
    assert np.array_equal(xy, again), "not reproducible with a seed"
    assert epochs and epochs[-1] == (500, 500)
    c0, c1 = xy[:150].mean(0), xy[150:].mean(0)
    assert np.linalg.norm(c0 - c1) > 3 * max(xy[:150].std(0).max(), xy[150:].std(0).max())


def test_umap_parameters_are_checked_and_name_the_cache():
    with pytest.raises(ValueError, match="n_neighbors"):
        embedding.umap_path("m1", n_neighbors=1)
    with pytest.raises(ValueError, match="min_dist"):
        embedding.umap_path("m1", min_dist=1.5)
    assert embedding.umap_path("m1", 15, 0.1).name == "umap-0-15-0.1.npy"
    assert embedding.umap_path("m1", 30, 0.25) != embedding.umap_path("m1", 30, 0.2)


def test_the_umap_fraction_follows_its_phases_and_epochs():
    f = embedding._umap_fraction(10_000, 15, compiled=True)
    steps = [[], ["[umap] imported"], ["[umap] imported", "[umap] epoch 0/500"]]
    steps += [["[umap] epoch 250/500"], ["[umap] epoch 500/500"]]
    got = [f(lines) for lines in steps]
    assert got == sorted(got) and got[0] == 0 and got[-1] == pytest.approx(1.0)
    assert 0.2 < got[3] < 0.9


@pytest.mark.parametrize("method", ["t-SNE", "UMAP"])
def test_estimates_grow_with_n_and_shrink_with_speed(method):
    ns = [500, 1000, 2000, 5000, 10_000, 20_000, 70_000]
    times = [embedding.estimate_seconds(method, n) for n in ns]
    assert all(np.isfinite(times)) and times == sorted(times) and times[0] > 0
    ten = embedding.estimate_seconds(method, 10_000)
    assert 5 < ten < 600, ten  # the reference machine, 10k points: seconds to minutes, measured
    half = embedding.estimate_seconds(method, 10_000, rate=embedding.REF_RATE / 2)
    assert half == pytest.approx(2 * ten)  # half the probe's speed (a busy machine): twice the time
    with pytest.raises(ValueError, match="rate"):
        embedding.estimate_seconds(method, 10, rate=0)


def test_the_first_umap_estimate_includes_the_compile_and_more_neighbours_cost_more():
    warm = embedding.estimate_seconds("UMAP", 10_000, compiled=True)
    cold = embedding.estimate_seconds("UMAP", 10_000, compiled=False)
    assert cold - warm == pytest.approx(embedding.UMAP_COMPILE)
    assert embedding.estimate_seconds("UMAP", 10_000, n_neighbors=50) > warm


def test_the_probe_measures_a_rate_and_its_line_is_read_back():
    assert embedding.probe_rate(0.1) > 0
    assert embedding.probe_line(["[probe] 8123.5", "[umap] imported"]) == 8123.5
    assert embedding.probe_line(["[umap] imported"]) is None and embedding.probe_line(["[probe] x"]) is None
