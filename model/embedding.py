"""UMAP of the latent means, and how long a 2-D projection (t-SNE or UMAP) takes on this machine now.

    umap_path / umap_cached                 a seeded 2-D UMAP of a model's test latent means, cached on disk
    umap_2d(z, n_neighbors, min_dist, seed) the UMAP itself (umap-learn on exact nearest neighbours)
    umap_in_child(z, ..., progress)         ... in a child process (cancellable, lower priority), with
                                            its epochs as progress; the page runs it through
                                            explorer.background, one at a time, like the t-SNE
    probe_rate / print_probe / probe_line   a short fixed workload timed first thing in the projection's
                                            child (at its priority): how fast this machine is for it now
    estimate_seconds(method, n, rate, ...)  the run time of a t-SNE or UMAP of n points at that rate

The estimate is a cost measured on the development machine (docs/performance.md) scaled by the
probe's speed: a busier machine (the child runs at a lower priority, so other work takes most of the
CPU) or a slower one runs the probe slower by the same factor as the projection.

Nearest neighbours are exact (scikit-learn) and handed to umap-learn: its own approximate search
(pynndescent) compiles ~35 s of numba code in every new process, where the exact search of 10,000
latent means takes half a second.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

from model.paths import home

UMAP_SEED = 0
UMAP_NEIGHBORS = 15  # umap-learn's defaults
UMAP_MIN_DIST = 0.1
UMAP_NEIGHBORS_RANGE = (2, 200)
UMAP_EPOCHS = 500  # umap-learn's default up to 10,000 points; it drops to 200 above, we keep 500: a
# larger set never gets a coarser layout, nor a shorter run than a smaller one


# ----------------------------------------------------------------------------- the UMAP


def _check_params(n_neighbors, min_dist) -> tuple[int, float]:
    lo, hi = UMAP_NEIGHBORS_RANGE
    if not isinstance(n_neighbors, (int, np.integer)) or not lo <= n_neighbors <= hi:
        raise ValueError(
            f"Expected an integer n_neighbors in [{lo}, {hi}]. Received: n_neighbors={n_neighbors!r}"
        )
    if not (isinstance(min_dist, (int, float, np.floating)) and 0.0 <= min_dist <= 1.0):
        raise ValueError(f"Expected min_dist in [0, 1]. Received: min_dist={min_dist!r}")
    return int(n_neighbors), float(min_dist)


def umap_path(
    model_id: str, n_neighbors: int = UMAP_NEIGHBORS, min_dist: float = UMAP_MIN_DIST, seed: int = UMAP_SEED
) -> Path:
    """Where a model's UMAP is cached: home()/analysis/<id>/umap-<seed>-<n_neighbors>-<min_dist>.npy."""
    n_neighbors, min_dist = _check_params(n_neighbors, min_dist)
    if not model_id or "/" in model_id or model_id.startswith("."):
        raise ValueError(f"Expected a stored model id. Received: model_id={model_id!r}")
    return home() / "analysis" / model_id / f"umap-{int(seed)}-{n_neighbors}-{min_dist:g}.npy"


def umap_cached(
    model_id: str,
    n: int,
    n_neighbors: int = UMAP_NEIGHBORS,
    min_dist: float = UMAP_MIN_DIST,
    seed: int = UMAP_SEED,
) -> np.ndarray | None:
    """The cached UMAP if it exists and is a valid (n, 2) float array, else None."""
    from model.analysis import read_xy

    return read_xy(umap_path(model_id, n_neighbors, min_dist, seed), n)


def exact_knn(z, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows (itself first, at distance 0), exact: (indices (N, k) int64, distances
    (N, k) float32), as umap-learn's `precomputed_knn` takes them."""
    from sklearn.neighbors import NearestNeighbors

    z = np.asarray(z, np.float32)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(z).kneighbors(z)
    return idx.astype(np.int64), dist.astype(np.float32)


def _import_umap():
    """umap-learn's UMAP class without TensorFlow: the package imports its ParametricUMAP (TensorFlow,
    ~3 s and 1 GB) when it can; with TensorFlow marked missing it skips it. Only in a process of its own
    (the child of `umap_in_child`, or a test): the marker would hide TensorFlow from the whole process."""
    if "umap" not in sys.modules and "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # import tensorflow -> ImportError, which umap-learn expects
        try:
            import umap  # noqa: F401
        finally:
            del sys.modules["tensorflow"]
    from umap.umap_ import UMAP

    return UMAP


class _EpochWriter:
    """A file for umap-learn's tqdm bar: calls on_epoch(done, total) on every update it writes."""

    def __init__(self, on_epoch):
        self.on_epoch = on_epoch

    def write(self, s: str) -> None:
        m = re.search(r"(\d+)/(\d+)", s)
        if m:
            self.on_epoch(int(m.group(1)), int(m.group(2)))

    def flush(self) -> None:
        pass


def umap_2d(
    z_means,
    n_neighbors: int = UMAP_NEIGHBORS,
    min_dist: float = UMAP_MIN_DIST,
    seed: int = UMAP_SEED,
    on_epoch=None,
) -> np.ndarray:
    """A seeded 2-D UMAP of (N, d) latent means: (N, 2) float32. `on_epoch(done, total)` follows the
    layout's epochs (umap-learn's progress bar). Reproducible: a seed makes umap-learn run on one thread."""
    import warnings

    n_neighbors, min_dist = _check_params(n_neighbors, min_dist)
    z = np.asarray(z_means, np.float32)
    if z.ndim != 2 or len(z) <= n_neighbors:
        raise ValueError(
            f"Expected more latent means (N, d) than n_neighbors={n_neighbors}. Received: shape={z.shape}"
        )
    UMAP = _import_umap()
    knn = exact_knn(z, n_neighbors)
    tqdm_kwds = {"disable": on_epoch is None, "bar_format": "{n}/{total}\n", "mininterval": 0.25}
    if on_epoch is not None:
        tqdm_kwds["file"] = _EpochWriter(on_epoch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden to 1 by setting random_state": intended
        reducer = UMAP(
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            random_state=int(seed),
            n_epochs=UMAP_EPOCHS,
            precomputed_knn=knn,
            tqdm_kwds=tqdm_kwds,
        )
        return reducer.fit_transform(z).astype(np.float32)


# ----------------------------------------------------------------------------- in a child process


def _epochs(n: int) -> int:
    """The layout epochs of a UMAP of n points: UMAP_EPOCHS whatever n (`umap_2d`)."""
    return UMAP_EPOCHS


def _umap_fraction(n: int, n_neighbors: int, compiled: bool):
    """The fraction of a UMAP child's run its output lines say is done, weighting its phases (start-up
    and compiling, neighbours and initial layout, epochs) by their share of `estimate_seconds`."""
    start, prepare, epochs = umap_phases(n, n_neighbors, compiled)
    total = start + prepare + epochs

    def fraction(lines: list[str]) -> float:
        for line in reversed(lines[-20:]):
            m = re.match(r"\[umap\] epoch (\d+)/(\d+)", line)
            if m:
                return min(
                    1.0, (start + prepare + epochs * int(m.group(1)) / max(1, int(m.group(2)))) / total
                )
            if line.startswith("[umap] imported"):
                return start / total
        return 0.0

    return fraction


def umap_in_child(
    z_means,
    n_neighbors: int = UMAP_NEIGHBORS,
    min_dist: float = UMAP_MIN_DIST,
    seed: int = UMAP_SEED,
    progress=None,
    poll: float = 0.25,
) -> np.ndarray:
    """`umap_2d` in a child process at a lower CPU priority (model.child.run_child): (N, 2) float32.

    `progress(fraction)` follows its phases and epochs; if it raises, the child is killed at once and
    the exception goes on."""
    import tempfile

    from model.child import OUT, run_child

    n_neighbors, min_dist = _check_params(n_neighbors, min_dist)
    z = np.asarray(z_means, np.float32)
    compiled = umap_compiled()
    with tempfile.TemporaryDirectory(prefix="umap-in-") as tmp:
        src = Path(tmp) / "z.npy"
        np.save(src, z, allow_pickle=False)
        argv = ["model.embedding", "umap", src, OUT, int(seed), n_neighbors, repr(min_dist)]
        fraction = _umap_fraction(len(z), n_neighbors, compiled)

        def info(lines: list[str]) -> dict:
            rate = probe_line(lines)
            return {} if rate is None else timing_info("UMAP", len(z), rate, compiled, n_neighbors)

        xy = run_child(argv, len(z), progress, fraction, "UMAP", poll, info)
    return xy


def _numba_cache_dirs() -> list[Path]:
    """Where numba keeps the compiled code of pynndescent (umap-learn's cached functions are mostly
    there): NUMBA_CACHE_DIR when set, else the package's __pycache__ and numba's user-wide cache."""
    import importlib.util
    import os

    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return [Path(env)]
    spec = importlib.util.find_spec("pynndescent")
    dirs = [Path(spec.origin).parent / "__pycache__"] if spec and spec.origin else []
    return [*dirs, Path(os.path.expanduser("~")) / ".cache" / "numba"]


def umap_compiled(min_files: int = 20) -> bool:
    """Whether numba has umap-learn's code compiled and cached on disk for this Python (at least
    `min_files` index files of pynndescent's): a new run then skips ~16 s of compiling."""
    tag = f".py{sys.version_info.major}{sys.version_info.minor}.nbi"
    found = 0
    for d in _numba_cache_dirs():
        if d.is_dir():
            found += sum(1 for f in d.rglob(f"*{tag}") if "pynndescent" in str(f))
    return found >= min_files


# ----------------------------------------------------------------------------- how long it takes

PROBE_SECONDS = 0.3
# Measured on the development machine (docs/performance.md, `python -m model.embedding calibrate`):
# the probe's rate, and each projection's cost in seconds at that rate.
REF_RATE = 9000.0  # blocks per second of `probe_rate` in a low-priority child, 2 cores, load ~1
TSNE_COST = (29.4, 5.19e-4)  # seconds: a + b·n·ln(n) (start-up, 1000 Barnes-Hut iterations)
UMAP_START = 2.7  # seconds: start the child, import umap-learn (its code compiled and cached)
UMAP_COMPILE = 16.0  # seconds more on a first run: numba compiles, caches umap-learn's code (13–22 measured)
UMAP_PREPARE = (5.1, 6.0e-5)  # seconds: a + b·n: compile the rest, neighbours, the initial layout
UMAP_EPOCH = (5.0e-3, 1.33e-6)  # seconds per epoch: a + b·n·(n_neighbors / 15)


def probe_rate(seconds: float = PROBE_SECONDS) -> float:
    """Fixed blocks of pure-Python work done per wall-clock second over `seconds`: the speed this
    process gets now (the machine's speed times the share of a core it is given)."""
    blocks, t0 = 0, time.perf_counter()
    while (t := time.perf_counter()) - t0 < seconds:
        acc = 0
        for i in range(2000):
            acc += i * i % 7
        blocks += 1
    return blocks / (t - t0)


def print_probe() -> None:
    """In a projection's child, first thing: print "[probe] <rate>" (`probe_rate`) for the parent."""
    print(f"[probe] {probe_rate():.1f}", flush=True)


def probe_line(lines: list[str]) -> float | None:
    """The rate a child printed with `print_probe`, or None before it did."""
    for line in lines[:5]:
        if line.startswith("[probe] "):
            try:
                return float(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def timing_info(method: str, n: int, rate: float, compiled: bool = True, n_neighbors: int = UMAP_NEIGHBORS):
    """What goes with a projection's progress: its estimate at the probe's rate, the speed against the
    reference machine, and (UMAP) whether umap-learn's code was compiled already."""
    return {
        "estimate": estimate_seconds(method, n, rate, compiled, n_neighbors),
        "speed": rate / REF_RATE,
        "compiled": compiled,
    }


def umap_phases(n: int, n_neighbors: int = UMAP_NEIGHBORS, compiled: bool = True, rate: float = REF_RATE):
    """The seconds of a UMAP's phases at probe rate `rate`: (start-up and compiling, neighbours and
    initial layout, layout epochs)."""
    scale = REF_RATE / rate
    start = UMAP_START + (0.0 if compiled else UMAP_COMPILE)
    prepare = UMAP_PREPARE[0] + UMAP_PREPARE[1] * n
    epochs = (UMAP_EPOCH[0] + UMAP_EPOCH[1] * n * n_neighbors / UMAP_NEIGHBORS) * _epochs(n)
    return start * scale, prepare * scale, epochs * scale


def estimate_seconds(
    method: str, n: int, rate: float = REF_RATE, compiled: bool = True, n_neighbors: int = UMAP_NEIGHBORS
) -> float:
    """How long a t-SNE or UMAP of n latent means takes at probe rate `rate` (`measure_rate`)."""
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"Expected a probe rate > 0. Received: rate={rate!r}")
    n = max(int(n), 2)
    if method == "t-SNE":
        a, b = TSNE_COST
        return (a + b * n * np.log(n)) * REF_RATE / rate
    if method == "UMAP":
        return float(sum(umap_phases(n, n_neighbors, compiled, rate)))
    raise ValueError(f"Expected method 't-SNE' or 'UMAP'. Received: method={method!r}")


def main(argv=None) -> int:
    """`python -m model.embedding umap Z.npy OUT.npy SEED N_NEIGHBORS MIN_DIST`: the UMAP of Z.npy's rows
    into OUT.npy, printing "[probe] rate", "[umap] imported" and "[umap] epoch k/n" (`umap_in_child`)."""
    argv = sys.argv[1:] if argv is None else argv
    _, src, out, seed, n_neighbors, min_dist = argv
    print_probe()
    _import_umap()
    print("[umap] imported", flush=True)
    z = np.load(src, allow_pickle=False)

    def on_epoch(done, total):
        print(f"[umap] epoch {done}/{total}", flush=True)

    xy = umap_2d(z, int(n_neighbors), float(min_dist), int(seed), on_epoch=on_epoch)
    np.save(out, xy, allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
