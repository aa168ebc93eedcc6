"""The analysis tools' pure cores (model/analysis.py, the issue-14 builders in explorer/views.py and the
panels' pure helpers): no Streamlit runtime, no trained model (a fake decoder records its calls)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from explorer import events, views
from model import analysis


class FakeModel:
    """decode(z) -> a 28x28 image whose pixel [0, i] holds z[i] (clipped to [0, 1]); counts calls."""

    def __init__(self, d):
        self.latent_dim, self.calls = d, []

    def decode(self, z):
        z = np.asarray(z, np.float32)
        self.calls.append(z.shape)
        out = np.zeros((len(z), 28, 28), np.float32)
        out[:, 0, : z.shape[1]] = z
        return out


# ----------------------------------------------------------------------------- neighbours


def test_nearest_is_brute_force_in_the_full_space():
    rng = np.random.default_rng(0)
    zm = rng.normal(size=(500, 6)).astype(np.float32)
    q = rng.normal(size=6)
    rows, dist = analysis.nearest(zm, q, k=10)
    brute = np.sqrt(((zm - q) ** 2).sum(1))
    assert rows.tolist() == np.argsort(brute, kind="stable")[:10].tolist()
    assert np.allclose(dist, brute[rows], atol=1e-5) and np.all(np.diff(dist) >= 0)
    # full space, not a 2-D projection: the nearest by the first two coordinates differ
    assert rows.tolist() != np.argsort(((zm[:, :2] - q[:2]) ** 2).sum(1))[:10].tolist()


def test_nearest_excludes_the_query_row_and_handles_small_sets():
    zm = np.array([[0, 0], [5, 5], [1, 1], [0.1, 0]], np.float32)
    rows, dist = analysis.nearest(zm, zm[0], k=2, exclude=0)
    assert rows.tolist() == [3, 2] and dist[0] == pytest.approx(0.1)
    rows, _ = analysis.nearest(zm, [0, 0], k=99)
    assert rows.tolist() == [0, 3, 2, 1]
    ties = np.zeros((5, 2), np.float32)
    assert analysis.nearest(ties, [0, 0], k=3)[0].tolist() == [0, 1, 2]  # ties: lower row first
    with pytest.raises(ValueError, match=r"Expected z_means \(N, d\) and z \(d,\)"):
        analysis.nearest(zm, [0, 0, 0])
    with pytest.raises(ValueError, match="Expected an integer k >= 1"):
        analysis.nearest(zm, [0, 0], k=0)


def test_the_user_digit_shares_the_nearest_function():
    from explorer.panels import user_digit

    zm = np.random.default_rng(1).normal(size=(100, 3))
    assert user_digit.neighbours(zm, zm[5], k=4).tolist() == analysis.nearest(zm, zm[5], k=4)[0].tolist()


# ----------------------------------------------------------------------------- traversals


def test_traversal_latents_move_one_dimension_per_row():
    z = np.array([0.5, -1.0, 2.0], np.float32)
    zs = analysis.traversal_latents(z, span=3, steps=9)
    assert zs.shape == (3, 9, 3)
    t = np.linspace(-3, 3, 9)
    for i in range(3):
        assert np.allclose(zs[i, :, i], z[i] + t)
        others = [j for j in range(3) if j != i]
        assert np.allclose(zs[i][:, others], z[others])
    assert np.allclose(zs[:, 4], z)  # the middle column is z itself (odd steps)
    with pytest.raises(ValueError, match="Expected an integer steps >= 2"):
        analysis.traversal_latents(z, steps=1)
    with pytest.raises(ValueError, match="Expected a finite span > 0"):
        analysis.traversal_latents(z, span=0)
    with pytest.raises(ValueError, match="finite, non-empty latent vector"):
        analysis.traversal_latents([np.nan, 0])


def test_traversal_decodes_the_whole_grid_in_one_call():
    m = FakeModel(4)
    z = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    grid = analysis.traversal(m, z, span=0.2, steps=5)
    assert m.calls == [(20, 4)], "not one batched decode"
    assert grid.shape == (4, 5, 28, 28)
    # the fake writes z into row 0 of the image: row i, column j decodes z + t_j e_i
    t = np.linspace(-0.2, 0.2, 5)
    assert np.allclose(grid[2, :, 0, 2], z[2] + t) and np.allclose(grid[2, :, 0, 1], z[1])


# ----------------------------------------------------------------------------- attribute vectors


def test_attribute_vector_is_the_difference_of_group_means():
    zm = np.array([[0, 0], [2, 0], [10, 10], [12, 14]], np.float32)
    labels = np.array([4, 4, 9, 9])
    v = analysis.attribute_vector(zm, labels == 4, labels == 9)
    assert np.allclose(v, [10, 12])
    assert np.allclose(analysis.attribute_vector(zm, [0, 1], [2, 3]), v)  # rows or masks
    path = analysis.attribute_path(zm[0], v, [0, 0.5, 1])
    assert np.allclose(path, [[0, 0], [5, 6], [10, 12]])
    with pytest.raises(ValueError, match="non-empty group b"):
        analysis.attribute_vector(zm, [0], [])
    with pytest.raises(ValueError, match="same shape"):
        analysis.attribute_path([0, 0], [1, 2, 3], [1])


# ----------------------------------------------------------------------------- selections


def test_selection_summary_counts_means_and_bad_rows():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    labels = np.arange(50) % 10
    zm = rng.normal(size=(50, 3)).astype(np.float32)
    s = analysis.selection_summary([3, 13, 4, 3, 99, -1], labels, zm, images, 10)
    assert s["rows"].tolist() == [3, 4, 13]  # unique, sorted, out-of-range rows dropped
    assert s["counts"].tolist() == [0, 0, 0, 2, 1, 0, 0, 0, 0, 0]
    assert np.allclose(s["mean_image"], images[[3, 4, 13]].mean(0) / 255, atol=1e-6)
    assert np.allclose(s["mean_z"], zm[[3, 4, 13]].mean(0), atol=1e-6)
    empty = analysis.selection_summary([], labels, zm, images, 10)
    assert empty["counts"].sum() == 0 and empty["mean_image"] is None and empty["mean_z"] is None


def test_selected_rows_reads_box_and_lasso_events_only():
    pts = [{"customdata": [5]}, {"customdata": {"0": 7}}, {"x": 1}, {"customdata": [5]}]
    assert events.selected_rows({"selection": {"points": pts, "box": [{"x": [0, 1]}], "lasso": []}}) == [
        5,
        7,
    ]
    assert events.selected_rows({"selection": {"points": pts[:1], "lasso": [{"x": [0]}]}}) == [5]
    assert events.selected_rows({"selection": {"points": pts[:1], "box": [], "lasso": []}}) is None  # a click
    assert events.selected_rows(None) is None


# ----------------------------------------------------------------------------- images and GIFs


def test_image_grid_and_mosaic_layout():
    cells = np.stack([np.full((2, 3), v, np.float32) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]).reshape(
        2, 3, 2, 3
    )
    g = views.image_grid(cells, pad=1, pad_value=1.0)
    assert g.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert g[0, 0] == pytest.approx(0.1) and g[3, 8] == pytest.approx(0.6) and g[2, 0] == 1.0
    m = views.mosaic(np.full((5, 2, 2), 255, np.uint8), cols=2, pad=0)
    assert m.shape == (6, 4) and m[:4].min() == 1.0 and m[4:, 2:].max() == 0.0  # last row padded black
    with pytest.raises(ValueError, match=r"Expected images of shape \(R, C, H, W\)"):
        views.image_grid(np.zeros((2, 28, 28)))


def test_gif_bytes_is_a_looping_animation_of_the_frames():
    frames = np.stack([np.full((28, 28), v, np.float32) for v in (0.0, 0.5, 1.0)])
    data = analysis.gif_bytes(frames, scale=2, duration_ms=80, bounce=True)
    assert data[:6] == b"GIF89a"
    im = Image.open(io.BytesIO(data))
    assert im.size == (56, 56) and im.n_frames == 4 and im.info.get("loop") == 0  # 0 1 2 1
    means = []
    for i in range(im.n_frames):
        im.seek(i)
        means.append(float(np.asarray(im.convert("L")).mean()))
    assert np.allclose(means, [0, 128, 255, 128], atol=1.5)
    assert Image.open(io.BytesIO(analysis.gif_bytes(frames, bounce=False))).n_frames == 3
    with pytest.raises(ValueError, match=r"Expected frames of shape \(T, H, W\)"):
        analysis.gif_bytes(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="Expected an integer scale"):
        analysis.gif_bytes(frames, scale=0)


# ----------------------------------------------------------------------------- t-SNE


def test_tsne_is_seeded_and_separates_clusters():
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.normal(0, 0.1, (40, 5)), rng.normal(5, 0.1, (40, 5))]).astype(np.float32)
    a, b = analysis.tsne_2d(z, seed=1), analysis.tsne_2d(z, seed=1)
    assert a.shape == (80, 2) and np.array_equal(a, b), "not reproducible with a seed"
    c0, c1 = a[:40].mean(0), a[40:].mean(0)
    spread = max(a[:40].std(0).max(), a[40:].std(0).max())
    assert np.linalg.norm(c0 - c1) > 3 * spread


def test_tsne_in_a_child_process_reports_progress_and_is_killed_when_cancelled(tmp_path):
    import os
    import threading

    z = np.random.default_rng(4).normal(size=(60, 3)).astype(np.float32)
    seen = []
    xy = analysis.tsne_in_child(z, seed=1, progress=seen.append, poll=0.05)
    assert xy.shape == (60, 2) and xy.dtype == np.float32 and np.all(np.isfinite(xy))
    assert seen and seen == sorted(seen) and 0 <= seen[0] and seen[-1] <= 1
    # a progress callback that raises stops the child at once (its CPU and memory are freed)
    children = []

    def stop(fraction):
        children.extend(p for p in os.listdir("/proc") if p.isdigit())
        raise KeyboardInterrupt("no longer wanted")

    before = {p for p in os.listdir("/proc") if p.isdigit()}
    with pytest.raises(KeyboardInterrupt):
        analysis.tsne_in_child(np.random.default_rng(5).normal(size=(3000, 8)), progress=stop, poll=0.05)
    spawned = set(children) - before - {str(os.getpid())}
    assert spawned, "no child process"
    for pid in spawned:
        try:
            state = open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
        except OSError:
            continue  # gone
        assert state in "ZX" or int(pid) in {t.native_id for t in threading.enumerate()}, state


def test_the_analysis_runner_runs_one_task_at_a_time_in_order_and_drops_unwanted_ones():
    import threading

    from explorer.background import Runner

    runner = Runner(lease=0.5)
    gate, order, running = threading.Event(), [], []

    def task(name, wait=False):
        def fn(progress):
            running.append(name)
            try:
                assert len(running) == 1, f"{running} at once"
                while wait and not gate.is_set():
                    progress(0.5)  # raises once nobody wants it
                    __import__("time").sleep(0.02)
            finally:
                running.remove(name)
            order.append(name)
            return name.upper()

        return fn

    assert runner.submit("a", task("a", wait=True), "s1")["state"] in ("queued", "running")
    runner.submit("b", task("b"), "s1")
    runner.submit("c", task("c"), "s2")
    assert runner.submit("b", task("b-again"), "s2")["state"] == "queued"  # shared, not a second task
    st_c = runner.status("c")
    assert st_c["state"] == "queued" and st_c["ahead"] == ["a", "b"]
    runner.cancel("c", "s2")  # its only session cancels: dropped from the queue
    assert runner.status("c")["state"] == "cancelled"
    for _ in range(10):  # keep a and b wanted for a while: a keeps running, b waits
        runner.want("a", "s1"), runner.want("b", "s1")
        __import__("time").sleep(0.1)
    assert runner.status("a")["state"] == "running" and runner.status("b")["state"] == "queued"
    gate.set()
    assert runner.wait("b")["state"] == "done" and runner.status("b")["result"] == "B"
    assert order == ["a", "b"]  # in order, one at a time; c never ran
    # nobody wants it any more (tabs closed): a running task is stopped, a queued one never starts
    gate.clear()
    runner.submit("d", task("d", wait=True), "s3")
    runner.submit("e", task("e"), "s3")
    assert runner.wait("d", timeout=10)["state"] == "cancelled"
    assert "no open page" in runner.status("d")["error"]
    assert runner.wait("e", timeout=10)["state"] == "cancelled" and "e" not in order
    # a failure is reported, kept until forgotten, then a new submit runs again
    runner.submit("f", lambda progress: 1 / 0, "s1")
    assert runner.wait("f")["state"] == "failed" and "ZeroDivisionError" in runner.status("f")["error"]
    assert runner.submit("f", task("f"), "s1")["state"] == "failed"
    runner.forget("f")
    runner.submit("f", task("f"), "s1")
    assert runner.wait("f")["state"] == "done"


# ----------------------------------------------------------------------------- links


def test_link_params_round_trip_and_refuse_bad_values():
    from explorer.panels.links import decode_view, encode_view

    z = np.array([0.5, -1.25, -0.0001, 2.123456], np.float32)
    p = encode_view("mnist-z4-abc", z, 42)
    assert p == {"model": "mnist-z4-abc", "z": "0.5,-1.25,0,2.123", "pick": "42"}
    v = decode_view(p, latent_dim=4, n_images=100)
    assert v.model == "mnist-z4-abc" and v.pick == 42 and not v.problems
    assert np.allclose(v.z, z, atol=5e-4)
    assert encode_view("m") == {"model": "m"}  # no z, no pick
    assert decode_view({"pick": ["3", "5"]}).pick == 5  # repeated keys: the last one wins
    bad = decode_view({"model": "../etc", "z": "1,nan", "pick": "100"}, latent_dim=2, n_images=100)
    assert bad.model is None and bad.z is None and bad.pick is None
    assert [m.split(".")[0] for m in bad.problems] == [
        "Expected a model id in the link",
        "Expected z as comma-separated numbers in the link",
        "Expected a test image index in [0, 99] in the link",
    ]
    wrong = decode_view({"z": "1,2,3"}, latent_dim=2)
    assert wrong.z is None and "Expected 2 latent values" in wrong.problems[0]


# ----------------------------------------------------------------------------- projections


def test_tsne_placement_and_local_linear_map_recover_a_linear_view():
    from explorer.panels.projection import local_jacobian, place

    rng = np.random.default_rng(5)
    zm = rng.normal(size=(400, 5))
    w = rng.normal(size=(5, 2))
    xy = zm @ w  # a view that happens to be linear: the local map must be w itself
    assert np.allclose(local_jacobian(zm, xy, 17), w, atol=1e-8)
    assert np.allclose(place(zm, xy, zm[[3, 9]]), xy[[3, 9]], atol=1e-3)  # a test mean sits on its point
    between = place(zm, xy, (zm[[3]] + zm[[9]]) / 2)
    assert between.shape == (1, 2) and np.all(np.isfinite(between))


def test_the_users_digit_in_tsne_gets_the_local_map_not_the_pca_one():
    """A picture that is not a test row (the user's digit) is carried into the t-SNE plane by the local
    linear map around it, as the pick is; in a linear view that map is the view itself."""
    from explorer.panels.projection import point_jacobian

    rng = np.random.default_rng(6)
    zm = rng.normal(size=(400, 5))
    w = rng.normal(size=(5, 2))
    xy = zm @ w
    z = zm[17] + 0.01 * rng.normal(size=5)  # near a test mean, not on one
    assert np.allclose(point_jacobian(zm, xy, z), w, atol=1e-2)


def _collapsed_latents(n=2000, seed=7):
    """8-D latent means of a VAE with 5 inactive dimensions (means ≈ 0, posterior ≈ prior there) and a
    non-linear 2-D view of the 3 active ones that also wobbles a little with the inactive ones."""
    rng = np.random.default_rng(seed)
    zm = np.concatenate([rng.normal(size=(n, 3)), 1e-4 * rng.normal(size=(n, 5))], 1)
    zlv = np.concatenate([np.full((n, 3), -3.0), np.zeros((n, 5))], 1)  # var 1 in the inactive dims
    xy = 20 * np.tanh(zm[:, :2]) + 3 * np.sin(2 * zm[:, 2:3]) + 0.05 * rng.normal(size=(n, 2))
    return zm, zlv, xy


def _inside(points, xy, margin=None):
    from explorer.panels.projection import MARGIN

    margin = MARGIN if margin is None else margin  # an ellipse may reach this share past the points
    lo, hi = xy.min(0), xy.max(0)
    pad = margin * (hi - lo).max()
    return bool(np.all(points >= lo - pad - 1e-9) and np.all(points <= hi + pad + 1e-9))


def test_the_tsne_local_map_never_sends_an_ellipse_outside_the_plane():
    """Inactive latent dimensions give a neighbourhood that is flat along them: a plain least-squares map
    weighs them by noise/1e-4, and their variance of 1 made ellipses of ±10^7 that set the axes."""
    from explorer.panels.projection import carry_cov, global_gain, local_jacobian, place, point_jacobian
    from explorer.views import sigma_ellipse

    zm, zlv, xy = _collapsed_latents()
    gain = global_gain(zm, xy)
    kept = 0
    for row in range(0, len(zm), 40):
        cov, note = carry_cov(local_jacobian(zm, xy, row), zlv[row], xy[row], xy, gain)
        assert (cov is None) != (note is None)
        if cov is not None:
            kept += 1
            assert _inside(sigma_ellipse(xy[row], cov, 2), xy), f"row {row}: ellipse past the plane"
    assert kept >= 40, f"only {kept} of 50 picks keep their ellipses"  # the fix is a fit, not a refusal
    # any latent point (the user's digit, the sliders): placed inside, and its ellipse too
    rng = np.random.default_rng(8)
    for z in zm[rng.choice(len(zm), 20)] + 0.1 * rng.normal(size=(20, 8)):
        at = place(zm, xy, z[None])[0]
        assert _inside(at[None], xy)
        cov, note = carry_cov(point_jacobian(zm, xy, z), zlv[0], at, xy, gain)
        assert cov is None or _inside(sigma_ellipse(at, cov, 2), xy)
    # a map that is absurd anyway is refused, with the reason
    cov, note = carry_cov(np.full((8, 2), 1e6), zlv[0], xy[0], xy, gain)
    assert cov is None and "stretches latent offsets" in note
    cov, note = carry_cov(np.full((8, 2), np.nan), zlv[0], xy[0], xy, gain)
    assert cov is None and "not finite" in note
    cov, note = carry_cov(np.eye(8, 2) * gain, np.full(8, 4.0), xy[0], xy)  # σ = e² ≈ 7.4 latent units
    assert cov is None and "past the whole t-SNE plane" in note


def test_a_damaged_tsne_cache_is_refused_from_its_header_and_recomputed(tmp_path, monkeypatch):
    import io
    import zipfile

    from model import paths

    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    n = 30
    path = analysis.tsne_path("m1")
    path.parent.mkdir(parents=True)

    def npy(a) -> bytes:
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        return buf.getvalue()

    def header(d) -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, d)
        return buf.getvalue() + b"\0" * 64

    good = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:
        zf.writestr("arr_0.npy", npy(good))
    damaged = {
        "empty": b"",
        "truncated": npy(good)[:-8],
        "structured": npy(np.zeros(n, dtype=[("x", "f4"), ("y", "f4")])),
        "string": npy(np.full((n, 2), "ab")),
        "bytes": npy(np.full((n, 2), b"ab")),
        "int": npy(np.zeros((n, 2), np.int64)),
        "npz": zip_buf.getvalue(),
        "header of 74.5 GiB": header({"descr": "<f8", "fortran_order": False, "shape": (5_000_000_000, 2)}),
        "other shape": npy(np.zeros((n, 3), np.float32)),
        "nan": npy(np.full((n, 2), np.nan, np.float32)),
        "text": b"\x93NUMPY garbage",
    }
    for name, content in damaged.items():
        path.write_bytes(content)
        assert analysis.tsne_cached("m1", n) is None, name
    path.write_bytes(npy(good.astype(np.float64)))
    assert np.array_equal(analysis.tsne_cached("m1", n), good)
    path.write_bytes(npy(np.asfortranarray(good)))
    assert np.array_equal(analysis.tsne_cached("m1", n), good)

    path.write_bytes(b"")
    assert analysis.tsne_cached("m1", n) is None  # so the page computes it again and replaces it


def test_cache_problem_names_the_real_cause_before_any_work(tmp_path, monkeypatch):
    import errno

    from model import paths

    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    path = analysis.tsne_path("m1")
    assert analysis.cache_problem(path) is None and list(path.parent.iterdir()) == []  # no probe left
    path.parent.rmdir()
    path.parent.write_text("x")
    msg = analysis.cache_problem(path)
    assert msg.startswith("analysis/m1 (in LATENT_EXPLORER_HOME) is a file where a directory should be")
    full = analysis.write_problem(OSError(errno.ENOSPC, "No space left on device", str(path)), path)
    assert "disk is full" in full and "Fix: free disk space" in full
    ro = analysis.write_problem(OSError(errno.EROFS, "Read-only file system", str(path)), path)
    assert "not writable (Read-only file system)" in ro and "memory" not in ro


def test_a_bad_z_in_a_link_is_named_for_what_is_wrong():
    from explorer.panels.links import MAX_DIM, decode_view

    big = decode_view({"z": "1e39,0"}, latent_dim=2)  # finite for Python, inf as a 32-bit float
    assert big.z is None and "within ±3.4e+38 (32-bit floats)" in big.problems[0]
    many = decode_view({"z": ",".join(["0"] * (MAX_DIM + 1))})
    assert many.z is None and f"at most {MAX_DIM} latent values" in many.problems[0]
    assert f"Received: {MAX_DIM + 1}" in many.problems[0]
    inf = decode_view({"z": "inf,0"}, latent_dim=2)
    assert inf.z is None and "comma-separated numbers" in inf.problems[0]
    text = decode_view({"z": "a,b"}, latent_dim=2)
    assert text.z is None and "comma-separated numbers" in text.problems[0]


def test_a_child_runs_ten_below_the_server_whatever_the_threads_niceness():
    import os
    import subprocess
    import sys
    import threading

    from model.child import child_priority

    base = os.getpriority(os.PRIO_PROCESS, os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:

        def from_a_lowered_thread():  # as the page's analysis runner does
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, base + 10))
            child_priority(proc.pid)

        t = threading.Thread(target=from_a_lowered_thread)
        t.start()
        t.join()
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, base + 10)
    finally:
        proc.kill()
        proc.wait()
