"""Analysis tools over a trained model's latent space: numpy in, numpy (or bytes) out, no Streamlit.

    nearest(z_means, z, k)                 the k nearest latent means to z (full latent space)
    traversal_latents(z, span, steps)      z + t·e_i for every dimension i: (d, steps, d)
    traversal(model, z, span, steps)       ... decoded in one batched call: (d, steps, 28, 28)
    attribute_vector(z_means, a, b)        mean z of group b minus mean z of group a: (d,)
    attribute_path(z, v, strengths)        z + s·v for each strength: (S, d)
    selection_summary(rows, ...)           counts per label, mean image and mean z of a set of rows
    gif_bytes(frames, ...)                 an animated GIF of grey frames (Pillow)
    tsne_path / tsne_cached / save_npy     a seeded 2-D t-SNE of the latent means, cached on disk
    tsne_in_child(z, seed, progress)       ... computed in a child process (cancellable, nice 10); the
                                           page runs it through explorer.background, one at a time

`model` is anything with `decode(z (N, d)) -> (N, 28, 28)` and `latent_dim` (a `model.latent.LatentModel`).
"""

from __future__ import annotations

import errno
import io
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from model.child import OUT, run_child
from model.images import gif_bytes as gif_bytes  # re-exported: analysis.gif_bytes
from model.paths import atomic_write_bytes, home

NEIGHBOURS = 10
TRAVERSAL_SPAN = 3.0
TRAVERSAL_STEPS = 9


# ----------------------------------------------------------------------------- nearest neighbours


def nearest(z_means, z, k: int = NEIGHBOURS, exclude=None) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `z_means` nearest to `z` (Euclidean, in the full latent space), nearest first.

    Args:
        z_means: (N, d) latent means (e.g. of the test set).
        z: (d,) the query point.
        k: how many neighbours (fewer when N is smaller).
        exclude: optional row to leave out (the query's own row, when it is a test image).

    Returns (rows (k,) int64, distances (k,) float32). Ties are broken by the lower row.
    """
    zm = np.asarray(z_means, np.float32)
    q = np.asarray(z, np.float32).reshape(-1)
    if zm.ndim != 2 or q.shape != (zm.shape[1],):
        raise ValueError(
            f"Expected z_means (N, d) and z (d,). Received: z_means.shape={zm.shape}, z.shape={np.shape(z)}"
        )
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"Expected an integer k >= 1. Received: k={k!r}")
    d2 = np.square(zm - q).sum(1)  # (N,)
    if exclude is not None and 0 <= int(exclude) < len(d2):
        d2[int(exclude)] = np.inf
    k = int(min(k, int(np.isfinite(d2).sum())))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    idx = np.argpartition(d2, k - 1)[:k]
    idx = idx[np.lexsort((idx, d2[idx]))]  # by distance, then row
    return idx.astype(np.int64), np.sqrt(d2[idx]).astype(np.float32)


# ----------------------------------------------------------------------------- traversals


def _check_span_steps(span, steps) -> tuple[float, int]:
    if not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"Expected an integer steps >= 2. Received: steps={steps!r}")
    if not (np.isfinite(span) and span > 0):
        raise ValueError(f"Expected a finite span > 0. Received: span={span!r}")
    return float(span), int(steps)


def traversal_offsets(span: float = TRAVERSAL_SPAN, steps: int = TRAVERSAL_STEPS) -> np.ndarray:
    """The t values of a traversal: `steps` points from -span to +span: (steps,) float32."""
    span, steps = _check_span_steps(span, steps)
    return np.linspace(-span, span, steps, dtype=np.float32)


def traversal_latents(z, span: float = TRAVERSAL_SPAN, steps: int = TRAVERSAL_STEPS) -> np.ndarray:
    """z + t·e_i for each dimension i (rows) and each t in `traversal_offsets` (columns): (d, steps, d)."""
    z = np.asarray(z, np.float32).reshape(-1)
    if z.size == 0 or not np.all(np.isfinite(z)):
        raise ValueError(f"Expected a finite, non-empty latent vector. Received: z={z!r}")
    t = traversal_offsets(span, steps)
    d = z.size
    out = np.broadcast_to(z, (d, len(t), d)).copy()
    out[np.arange(d), :, np.arange(d)] += t  # row i moves only dimension i
    return out


def traversal(model, z, span: float = TRAVERSAL_SPAN, steps: int = TRAVERSAL_STEPS) -> np.ndarray:
    """The decoded traversal grid, one batched decode of d·steps vectors: (d, steps, 28, 28) float32."""
    zs = traversal_latents(z, span, steps)  # (d, steps, d)
    d, s = zs.shape[:2]
    return model.decode(zs.reshape(d * s, d)).reshape(d, s, 28, 28)


# ----------------------------------------------------------------------------- attribute vectors


def attribute_vector(z_means, rows_a, rows_b) -> np.ndarray:
    """mean(z_means[rows_b]) - mean(z_means[rows_a]): the direction from group a to group b, (d,).

    `rows_a` / `rows_b` are row indices or boolean masks over z_means; both groups must be non-empty.
    """
    zm = np.asarray(z_means, np.float64)
    groups = []
    for name, rows in (("a", rows_a), ("b", rows_b)):
        sel = zm[np.asarray(rows)] if np.size(rows) else zm[:0]
        if len(sel) == 0:
            raise ValueError(
                f"Expected a non-empty group {name}. Received: no rows. "
                "Fix: pick a class or a selection with at least one test image."
            )
        groups.append(sel.mean(axis=0))
    return (groups[1] - groups[0]).astype(np.float32)


def attribute_path(z, v, strengths) -> np.ndarray:
    """z + s·v for each s in `strengths`: (S, d) float32."""
    z = np.asarray(z, np.float32).reshape(-1)
    v = np.asarray(v, np.float32).reshape(-1)
    if z.shape != v.shape:
        raise ValueError(f"Expected z and v of the same shape. Received: {z.shape} and {v.shape}")
    s = np.asarray(strengths, np.float32).reshape(-1, 1)
    return z[None] + s * v[None]


# ----------------------------------------------------------------------------- selections


def selection_summary(rows, labels, z_means, images, n_classes: int) -> dict:
    """What a set of test rows holds.

    Returns a dict: rows (n,) int64 (sorted, unique, in range), counts (n_classes,) int64 per label,
    mean_image (28, 28) float32 in [0, 1] (pixel mean of the images), mean_z (d,) float32 (mean of their
    latent means; decode it to compare with the mean image). Empty rows give zero counts and None means.
    """
    n = len(labels)
    r = np.unique(np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, np.int64).reshape(-1))
    r = r[(r >= 0) & (r < n)]
    lab = np.asarray(labels)[r].astype(np.int64)
    counts = np.bincount(lab, minlength=n_classes)[: max(n_classes, int(lab.max(initial=-1)) + 1)]
    if len(r) == 0:
        return {"rows": r, "counts": counts, "mean_image": None, "mean_z": None}
    imgs = np.asarray(images)[r]
    mean_image = imgs.astype(np.float64).mean(axis=0) / (255.0 if imgs.dtype == np.uint8 else 1.0)
    return {
        "rows": r,
        "counts": counts,
        "mean_image": mean_image.astype(np.float32),
        "mean_z": np.asarray(z_means, np.float64)[r].mean(axis=0).astype(np.float32),
    }


# ----------------------------------------------------------------------------- t-SNE

TSNE_SEED = 0
TSNE_PERPLEXITY = 30.0


def tsne_path(model_id: str, seed: int = TSNE_SEED) -> Path:
    """Where the t-SNE of a model's test latent means is cached: home()/analysis/<id>/tsne-<seed>.npy.

    Beside the model, not inside its directory: a stored model's directory is never modified."""
    if not model_id or "/" in model_id or model_id.startswith("."):
        raise ValueError(f"Expected a stored model id. Received: model_id={model_id!r}")
    return home() / "analysis" / model_id / f"tsne-{int(seed)}.npy"


def tsne_2d(
    z_means, seed: int = TSNE_SEED, perplexity: float = TSNE_PERPLEXITY, verbose: int = 0
) -> np.ndarray:
    """A seeded 2-D t-SNE of (N, d) latent means (PCA init, so it is reproducible): (N, 2) float32."""
    from sklearn.manifold import TSNE  # lazy: scikit-learn is slow to import, and only t-SNE needs it

    z = np.asarray(z_means, np.float32)
    if z.ndim != 2 or len(z) < 5:
        raise ValueError(f"Expected at least 5 latent means (N, d). Received: shape={z.shape}")
    perplexity = float(min(perplexity, (len(z) - 1) / 3))
    return (
        TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            random_state=int(seed),
            n_jobs=1,
            verbose=verbose,
            max_iter=TSNE_ITERATIONS,
        )
        .fit_transform(z)
        .astype(np.float32)
    )


TSNE_MAX_BYTES = 1 << 28  # 256 MiB: 2 float64 per point for 16 M points, far beyond any test set


def _npy_header(f) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from an open .npy file's header, without reading its data.

    ValueError for anything that is not a .npy file (an .npz is a zip, for instance)."""
    from numpy.lib import format as npy

    version = npy.read_magic(f)
    if version == (1, 0):
        return npy.read_array_header_1_0(f)
    if version == (2, 0):
        return npy.read_array_header_2_0(f)
    raise ValueError(f"Expected a .npy file of format 1.0 or 2.0. Received: version {version}")


def read_xy(path, n: int) -> np.ndarray | None:
    """An (n, 2) array of finite floats from the .npy file `path`, or None if it is anything else.

    The header is checked before any data is read (dtype a plain float, shape (n, 2), the file's size
    matching the header), so an empty, truncated, structured, string, object or oversized file costs a
    few bytes of reading, never a traceback or a huge allocation."""
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype = _npy_header(f)
            if dtype.kind != "f" or dtype.fields is not None or dtype.subdtype is not None:
                return None
            if tuple(shape) != (int(n), 2) or n * 2 * dtype.itemsize > TSNE_MAX_BYTES:
                return None
            if os.fstat(f.fileno()).st_size - f.tell() != n * 2 * dtype.itemsize:
                return None  # truncated, or something appended
            a = np.fromfile(f, dtype=dtype, count=n * 2)
    except (OSError, ValueError, EOFError, TypeError, SyntaxError, MemoryError):
        return None
    a = a.reshape((2, n)).T if fortran else a.reshape(n, 2)
    a = a.astype(np.float32)
    return a if np.all(np.isfinite(a)) else None


def tsne_cached(model_id: str, n: int, seed: int = TSNE_SEED) -> np.ndarray | None:
    """The cached t-SNE of model `model_id` if it exists and is a valid (n, 2) float array, else None
    (a damaged cache is then recomputed and replaced)."""
    return read_xy(tsne_path(model_id, seed), n)


def _shown(path: Path) -> str:
    """`path` relative to the home (as the page shows it to every viewer), if it is inside it."""
    try:
        return f"{Path(path).relative_to(home())} (in LATENT_EXPLORER_HOME)"
    except ValueError:
        return str(path)


def write_problem(e: OSError, path: Path) -> str:
    """What an OSError from writing a cache file at `path` means, and the fix, in one sentence."""
    where = Path(e.filename) if getattr(e, "filename", None) else Path(path)
    if e.errno == errno.ENOSPC:
        return f"the disk is full ({_shown(where)}). Fix: free disk space"
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        return (
            f"{_shown(where)} is a file where a directory should be. Fix: delete or move it "
            "(it is not latent explorer's)"
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{_shown(where)} is not writable ({e.strerror}). Fix: make LATENT_EXPLORER_HOME writable "
            "for the server's user"
        )
    return f"{_shown(where)}: {e.strerror or e}. Fix: check LATENT_EXPLORER_HOME"


def cache_problem(path: Path) -> str | None:
    """Why a cache file could not be written at `path` (its directory is created, and a probe file
    written and removed, as the real write would), or None if it can. Checked before minutes of
    computing, so the page can say it at once."""
    path = Path(path)
    probe = path.with_name(f".probe-{os.getpid()}-{threading.get_native_id()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0")
        probe.unlink()
    except OSError as e:
        return write_problem(e, path)
    return None


def save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


TSNE_ITERATIONS = 1000  # scikit-learn's default max_iter, for the progress of a run
_ITERATION = re.compile(r"\[t-SNE\] Iteration (\d+):")


def _tsne_fraction(lines: list[str]) -> float:
    done = [int(m.group(1)) for m in map(_ITERATION.search, lines[-20:]) if m]
    return min(1.0, max(done, default=0) / TSNE_ITERATIONS)


def tsne_in_child(z_means, seed: int = TSNE_SEED, progress=None, poll: float = 0.25) -> np.ndarray:
    """`tsne_2d` in a child process at a lower CPU priority (`run_child`): (N, 2) float32.

    `progress(fraction)` is called every `poll` seconds with the iterations the child reported; if it
    raises (the work is no longer wanted), the child is killed at once and the exception goes on.
    RuntimeError with the child's last words if it fails (MemoryError, a killed process...)."""
    z = np.asarray(z_means, np.float32)
    with tempfile.TemporaryDirectory(prefix="tsne-in-") as tmp:
        src = Path(tmp) / "z.npy"
        np.save(src, z, allow_pickle=False)
        argv = ["model.analysis", src, OUT, int(seed)]
        return run_child(argv, len(z), progress, _tsne_fraction, "t-SNE", poll, _tsne_info(len(z)))


def _tsne_info(n: int):
    """The estimate of a t-SNE child's run time, from the probe it ran first (model.embedding)."""
    from model import embedding

    def info(lines: list[str]) -> dict:
        rate = embedding.probe_line(lines)
        return {} if rate is None else embedding.timing_info("t-SNE", n, rate)

    return info


def main(argv=None) -> int:
    """`python -m model.analysis Z.npy OUT.npy SEED`: the t-SNE of Z.npy's rows into OUT.npy (used by
    `tsne_in_child`; prints scikit-learn's iteration reports)."""
    from model.embedding import print_probe

    src, out, seed = argv if argv is not None else sys.argv[1:]
    print_probe()
    z = np.load(src, allow_pickle=False)
    np.save(out, tsne_2d(z, int(seed), verbose=2), allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
