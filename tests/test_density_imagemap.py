"""model/density.py (aggregate posterior against the prior, holes) and model/imagemap.py (nearest test
image per cell), against brute-force computations; then both sections on the page (AppTest)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from model import density, imagemap
from tests.apptest import assert_clean, plotly_array, run_app


def _gauss(x, m, cov):
    d = np.asarray(x, float) - m
    return np.exp(-0.5 * d @ np.linalg.solve(cov, d)) / (2 * np.pi * np.sqrt(np.linalg.det(cov)))


def test_the_mixture_density_is_the_brute_force_mean_of_gaussians_and_integrates_to_one():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(50, 2))
    a = rng.normal(size=(50, 2, 2)) * 0.3
    covs = a @ a.transpose(0, 2, 1) + 0.05 * np.eye(2)
    gx, gy = density.plane_grid([0.2, -0.1], 5.0, 60)
    q = density.mixture_density(m, covs, gx, gy, block=500)  # several blocks
    for i, j in [(0, 0), (30, 17), (59, 40), (12, 55)]:
        ref = np.mean([_gauss([gx[j], gy[i]], m[k], covs[k]) for k in range(50)])
        assert q[i, j] == pytest.approx(ref, rel=1e-6)  # the 1e-9 ridge
    step = gx[1] - gx[0]
    assert q.sum() * step * step == pytest.approx(1.0, abs=0.01)
    p = density.prior_density([0.2, -0.1], gx, gy)
    assert p.sum() * step * step == pytest.approx(1.0, abs=0.01)


def test_hole_samples_come_from_cells_where_the_prior_has_mass_and_the_data_little():
    rng = np.random.default_rng(1)
    means = np.abs(rng.normal(size=(2000, 2))) * [1, 1] + [0.3, -1.5]  # the data avoids x < 0
    covs = np.broadcast_to(np.eye(2) * 0.01, (2000, 2, 2))
    center = np.zeros(2)
    gx, gy = density.plane_grid(center, 4.0, 40)
    q, p = density.mixture_density(means, covs, gx, gy), density.prior_density(center, gx, gy)
    mask = density.holes(q, p, gx, gy, center)
    assert mask.any() and 0.3 < density.hole_share(mask, p) < 0.95
    pts, cells = density.sample_holes(mask, p, gx, gy, 50, seed=3)
    assert pts.shape == (50, 2) and cells.shape == (50, 2)
    for (x, y), (r, c) in zip(pts, cells):
        assert mask[r, c] and q[r, c] < density.HOLE_RATIO * p[r, c]  # a hole cell ...
        assert abs(x - gx[c]) <= (gx[1] - gx[0]) / 2 + 1e-12 and abs(y - gy[r]) <= (gy[1] - gy[0]) / 2 + 1e-12
        assert x * x + y * y <= (density.HOLE_SIGMA + 0.2) ** 2  # ... within the prior's 2σ
    # at the sampled points themselves the data's density is low too (compared with the prior's)
    qs = np.array([np.mean([_gauss(s, mm, np.eye(2) * 0.01) for mm in means[:400]]) for s in pts[:5]])
    ps = np.exp(-0.5 * (pts[:5] ** 2).sum(1)) / (2 * np.pi)
    assert np.all(qs < 2 * density.HOLE_RATIO * ps)
    assert np.array_equal(density.sample_holes(mask, p, gx, gy, 50, seed=3)[0], pts)  # seeded
    none, _ = density.sample_holes(np.zeros_like(mask), p, gx, gy, 5)
    assert none.shape == (0, 2)


def _brute_nearest(xy, extent, n):
    x0, x1, y0, y1 = extent
    w, h = (x1 - x0) / n, (y1 - y0) / n
    out = np.full((n, n), -1)
    for i in range(n):
        for j in range(n):
            cx, cy = x0 + (j + 0.5) * w, y1 - (i + 0.5) * h
            inside = (xy[:, 0] >= x0 + j * w) & (xy[:, 0] < x0 + (j + 1) * w)
            inside &= (xy[:, 1] <= y1 - i * h) & (xy[:, 1] > y1 - (i + 1) * h)
            if inside.any():
                out[i, j] = int(np.argmin((xy[:, 0] - cx) ** 2 + (xy[:, 1] - cy) ** 2))
    return out


def test_the_image_map_cells_hold_the_test_image_nearest_their_centre():
    rng = np.random.default_rng(2)
    xy = np.concatenate([rng.normal(size=(400, 2)), rng.normal(3, 0.3, size=(100, 2))])
    extent = (-2.5, 4.0, -2.0, 3.5)
    for n in (1, 7, 20):
        assert np.array_equal(
            imagemap.nearest_per_cell(xy, extent, n, chunk=13), _brute_nearest(xy, extent, n)
        )
    rows = imagemap.nearest_per_cell(xy, extent, 7)
    images = rng.integers(0, 256, size=(500, 28, 28), dtype=np.uint8)
    pic = imagemap.compose(images, rows)
    assert pic.shape == (196, 196) and pic.dtype == np.uint8
    for i in range(7):
        for j in range(7):
            tile = pic[28 * i : 28 * i + 28, 28 * j : 28 * j + 28]
            expected = images[rows[i, j]] if rows[i, j] >= 0 else np.full((28, 28), imagemap.EMPTY)
            assert np.array_equal(tile, expected)


def test_lift_is_the_inverse_of_a_linear_view_in_its_plane():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    comps, mean = q[:2], rng.normal(size=6)
    xy = rng.normal(size=(10, 2))
    z = imagemap.lift(xy, mean, comps)
    assert np.allclose((z - mean) @ comps.T, xy, atol=1e-5)


# ----------------------------------------------------------------------------- on the page


def _png(media, el, i=0):
    file_id = el.value[i].rsplit("/", 1)[1].split(".")[0]
    return np.asarray(Image.open(io.BytesIO(media[file_id])).convert("L"))


def test_the_image_map_and_density_sections_show_what_the_model_computes(home, media, reference):
    import json

    from explorer.panels.density import GRID_N
    from explorer.panels.image_map import grid_extent

    latent, data = reference
    z_mean, z_log_var = latent.encode(data.x_test)
    at = run_app(imap_open=True, imap_n=12)
    assert_clean(at)
    (pic_el,) = [e for e in at.image if "nearest each cell" in e.captions[0]]
    (dec_el,) = [e for e in at.image if "decoder's view" in e.captions[0]]
    rows = _brute_nearest(z_mean, grid_extent(z_mean), 12)  # a 2-D model: the plane is z itself
    assert np.array_equal(_png(media, pic_el), imagemap.compose(data.x_test, rows))
    centres = imagemap.cell_centres(grid_extent(z_mean), 12).reshape(-1, 2)
    decoded = imagemap.compose(latent.decode(centres.astype(np.float32)), np.arange(144).reshape(12, 12))
    assert np.abs(_png(media, dec_el).astype(int) - decoded).max() <= 2
    assert {b.proto.label for b in at.get("download_button")} >= {
        "PNG of the image map",
        "PNG of the decoder's view",
    }

    at = run_app(density_open=True)
    assert_clean(at)
    (spec,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "density" in c.proto.spec]
    traces = {t["name"]: t for t in spec["data"]}
    assert {"prior 1σ", "prior 2σ", "prior 3σ", "data density", "holes", "hole samples"} <= set(traces)
    covs = np.stack([np.diag(np.exp(v)) for v in z_log_var])
    gx, gy = (plotly_array(traces["data density"][a]).astype(float) for a in "xy")
    assert len(gx) == GRID_N
    samples = np.stack([plotly_array(traces["hole samples"][a]) for a in "xy"], 1).astype(float)
    assert len(samples) > 0, "the tiny model's aggregate posterior leaves holes in the prior's 2σ disc"
    # the samples sit in cells where the data's density (computed here from the model's posteriors)
    # is below HOLE_RATIO times the prior's
    j = np.clip(np.round((samples[:, 0] - gx[0]) / (gx[1] - gx[0])).astype(int), 0, len(gx) - 1)
    i = np.clip(np.round((samples[:, 1] - gy[0]) / (gy[1] - gy[0])).astype(int), 0, len(gy) - 1)
    q = density.mixture_density(z_mean, covs, gx[j], gy[i])[np.arange(len(j)), np.arange(len(j))]
    p = np.exp(-0.5 * (gx[j] ** 2 + gy[i] ** 2)) / (2 * np.pi)
    assert np.all(q < density.HOLE_RATIO * p), (q, p)
    thumbs = [e for e in at.image if e.captions and e.captions[0] == "hole 1"]
    (el,) = thumbs
    first = _png(media, el, 0)[::3, ::3]
    assert (
        np.abs(first.astype(int) - np.rint(latent.decode(samples[:1].astype(np.float32))[0] * 255)).max() <= 2
    )


def test_in_a_tsne_view_the_image_map_uses_its_plane_and_the_density_the_pca_plane(home, media, reference):
    from explorer.panels.image_map import grid_extent
    from model import analysis
    from tests.apptest import untrained_model

    _, data = reference
    record, latent = untrained_model()
    z = latent.encode(data.x_test)[0]
    xy = (z[:, :2] * 10 + z[:, 2:4]).astype(np.float32)  # a known "t-SNE", cached as the page would
    analysis.save_npy(analysis.tsne_path(record.id), xy)
    at = run_app(proj_method="t-SNE", imap_open=True, imap_n=10, density_open=True)
    assert_clean(at)
    (pic_el,) = [e for e in at.image if "nearest each cell" in e.captions[0]]
    (dec_el,) = [e for e in at.image if "decoder's view" in e.captions[0]]
    rows = _brute_nearest(xy, grid_extent(xy), 10)
    assert np.array_equal(_png(media, pic_el), imagemap.compose(data.x_test, rows))
    # no latent vector for a t-SNE point: the decoder's view shows those images' reconstructions
    assert "reconstructions" in dec_el.captions[0]
    recon = np.zeros((len(z), 28, 28), np.float32)
    used = np.unique(rows[rows >= 0])
    recon[used] = latent.decode(z[used])
    assert np.abs(_png(media, dec_el).astype(int) - imagemap.compose(recon, rows)).max() <= 2
    text = "\n".join(c.value for c in at.caption)
    assert "Shown in the PCA plane, not the t-SNE view" in text
    # untrained weights: every posterior is the prior, so the aggregate posterior is the prior: no holes
    assert any("No holes" in i.value for i in at.info)
