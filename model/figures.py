"""The seed's two figures, as pure functions: arrays in, a PNG file out (matplotlib, no pyplot state)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model.paths import atomic_write_bytes


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def latent_scatter(z_mean: np.ndarray, labels: np.ndarray, path, class_names=None) -> Path:
    """vae_mean.png: the test set's latent means (first two dims) coloured by label."""
    labels = np.asarray(labels)
    k = max(len(class_names) if class_names is not None else 0, int(labels.max()) + 1 if labels.size else 1)
    fig = Figure(figsize=(12, 10))
    ax = fig.add_subplot()
    sc = ax.scatter(
        z_mean[:, 0],
        z_mean[:, 1],
        c=labels,
        cmap="tab10" if k <= 10 else "turbo",
        s=4,
        vmin=-0.5,
        vmax=k - 0.5,
    )
    cbar = fig.colorbar(sc, ax=ax, ticks=range(k))
    if class_names is not None and len(class_names) == k:
        cbar.ax.set_yticklabels(list(class_names))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    return _save(fig, path)


def manifold_figure(image: np.ndarray, span: float, path, digit_size: int = 28) -> Path:
    """digits_over_latent.png: an (n*28, n*28) manifold with one tick per digit centre.

    The seed computed n+1 tick positions for n labels (which current matplotlib rejects); here
    positions and labels both have n entries and sit on each digit's centre."""
    n = image.shape[0] // digit_size
    grid = np.linspace(-span, span, n)
    centres = np.arange(n) * digit_size + digit_size // 2
    fig = Figure(figsize=(10, 10))
    ax = fig.add_subplot()
    ax.imshow(image, cmap="Greys_r")
    ax.set_xticks(centres, np.round(grid, 1), rotation=90)
    ax.set_yticks(centres, np.round(grid[::-1], 1))
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    return _save(fig, path)


def write_figures(latent, data, out: Path, span: float = 4.0, n: int = 30) -> list[Path]:
    """The seed's vae_mean.png and digits_over_latent.png, in `out` (both plot latent dims 0 and 1)."""
    if latent.latent_dim < 2:
        raise ValueError(
            f"Expected a latent space of at least 2 dimensions for the figures. Received: "
            f"latent_dim={latent.latent_dim}. Fix: use --latent-dim 2 or more, or --no-figures."
        )
    out.mkdir(parents=True, exist_ok=True)
    z_mean, _ = latent.encode(data.x_test)
    return [
        latent_scatter(z_mean, data.y_test, out / "vae_mean.png", data.class_names),
        manifold_figure(latent.manifold(n, span), span, out / "digits_over_latent.png"),
    ]
