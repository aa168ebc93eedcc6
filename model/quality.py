"""How good is a trained VAE? Three numbers, and a table comparing the models in the store.

- The test loss split into reconstruction and KL (the negative ELBO, computed at training time and
  kept in the model's meta.json).
- An importance-weighted estimate of the test log-likelihood (Burda et al., 2016, "IWAE bound"):

      log p(x) >= E[ log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x) ],  z_k ~ q(z|x)

  K = 1 is the ELBO; the bound tightens as K grows. We report it as a negative log-likelihood in nats
  per image (lower is better), with the likelihood the model was trained with:
    * bce: Bernoulli, log p(x|z) = sum_pixels x log x_hat + (1 - x) log(1 - x_hat), on the grey-level
      pixels in [0, 1] (as the seed's loss; MNIST is not binarised, so the numbers are not comparable
      with published binarised-MNIST results of ~80-90 nats).
    * mse: Gaussian with variance 1/2 per pixel, log p(x|z) = -sum_pixels (x - x_hat)^2 - 392 ln(pi):
      the variance that makes the seed's squared-error sum a negative log-likelihood. The constant
      392 ln(pi) = 448.7 nats is left out, exactly as the loss leaves it out, so the number sits on
      the same scale as the test loss.
  So in both cases "IWAE NLL <= test loss" (up to sampling noise) is the sanity check.
- k-NN label accuracy on latent means: a k-nearest-neighbour classifier fit on the training images'
  z_mean and scored on the test images' z_mean. It measures how well the latent space separates the
  classes the VAE never saw (chance is 10% for MNIST and Fashion-MNIST).

Results are cached per model in `home()/quality/<model id>.json` (the model directory itself is never
modified), so the comparison table can show them without recomputing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from filelock import FileLock

from model.data import Dataset, load_dataset, to_float
from model.errors import DataError, StoreError
from model.paths import atomic_write_text, home
from model.store import ModelStore

LOG_2PI = math.log(2.0 * math.pi)
BCE_EPS = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in binary_crossentropy; so do we
ROWS_PER_PASS = 4096  # decoded images per forward pass (K samples x images)
MSE_CONSTANT = 392.0 * math.log(math.pi)  # nats left out of the MSE likelihood, as the loss does


def log_likelihood(x: np.ndarray, x_hat: np.ndarray, loss: str) -> np.ndarray:
    """log p(x | z) per row: x (B, 784), x_hat (..., B, 784) -> (..., B), in the loss's units."""
    if loss == "bce":
        p = np.clip(x_hat.astype(np.float64), BCE_EPS, 1.0 - BCE_EPS)
        return (x * np.log(p) + (1.0 - x) * np.log1p(-p)).sum(-1)
    if loss == "mse":
        return -np.square(x - x_hat.astype(np.float64)).sum(-1)
    raise ValueError(f"Expected loss 'bce' or 'mse'. Received: loss={loss!r}")


def log_weights(model, images, k: int = 64, seed: int | None = 0, progress=None) -> np.ndarray:
    """Importance log-weights log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x).

    Args:
        model: a `model.latent.LatentModel`.
        images: (N, 28, 28) uint8 or floats in [0, 1].
        k: samples per image.
        seed: seed of the sampling noise.
        progress: optional `progress(fraction)`, called after each batch (it may raise to stop).

    Returns (k, N) float64. Every batch of images is decoded in one call (k * batch rows).
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"Expected k to be a positive integer. Received: k={k!r}")
    x_all = to_float(images).reshape(-1, 784).astype(np.float64)  # (N, 784)
    z_mean, z_log_var = (a.astype(np.float64) for a in model.encode(images))  # (N, d) each
    rng = np.random.default_rng(seed)
    batch = max(1, ROWS_PER_PASS // k)
    out = np.empty((k, len(x_all)), np.float64)
    for i in range(0, len(x_all), batch):
        x, mu, lv = x_all[i : i + batch], z_mean[i : i + batch], z_log_var[i : i + batch]
        eps = rng.standard_normal((k,) + mu.shape)  # (k, B, d)
        z = mu + np.exp(0.5 * lv) * eps  # (k, B, d)
        x_hat = model.decode(z.reshape(-1, mu.shape[1]).astype(np.float32))  # (k*B, 28, 28)
        log_px = log_likelihood(x, x_hat.reshape(k, len(x), 784), model.config.loss)  # (k, B)
        log_pz = -0.5 * (np.square(z) + LOG_2PI).sum(-1)  # (k, B)
        log_qz = -0.5 * (np.square(eps) + LOG_2PI + lv).sum(-1)  # (k, B)
        out[:, i : i + batch] = log_px + log_pz - log_qz
        if progress is not None:
            progress(min(1.0, (i + batch) / len(x_all)))
    return out


def iwae(model, images, k: int = 64, seed: int | None = 0, progress=None) -> dict:
    """Importance-weighted negative log-likelihood estimate on `images`, in nats per image.

    Returns a dict: `iwae_nll` (-IWAE bound with k samples, mean over images: an upper bound on the
    true -log p(x) in expectation; lower is better), `elbo_nll` (the negative ELBO estimated from
    the same samples, >= iwae_nll), `k`, `n`, `likelihood` (what log p(x|z) is), `seconds`.
    """
    t0 = time.perf_counter()
    lw = log_weights(model, images, k=k, seed=seed, progress=progress)  # (k, N)
    top = lw.max(0)
    bound = top + np.log(np.exp(lw - top).mean(0))  # log mean_k w_k, stably: (N,)
    loss = model.config.loss
    return {
        "iwae_nll": float(-bound.mean()),
        "elbo_nll": float(-lw.mean()),
        "k": int(k),
        "n": int(lw.shape[1]),
        "likelihood": LIKELIHOODS[loss],
        "seconds": time.perf_counter() - t0,
    }


LIKELIHOODS = {
    "bce": "Bernoulli on grey-level pixels (the BCE loss)",
    "mse": f"Gaussian, variance 1/2 per pixel (the squared-error loss), constant {MSE_CONSTANT:.1f} "
    "nats left out as in the loss",
}


def knn_accuracy(
    model, data: Dataset, k: int = 5, n_train: int | None = None, n_test: int | None = None
) -> dict:
    """k-NN label accuracy on latent means: fit on training z_mean, score on test z_mean.

    Args:
        model: a `model.latent.LatentModel`.
        data: the dataset (its labels are used only here, never in training).
        k: neighbours.
        n_train, n_test: use only the first n images of each split (None = all).

    Returns a dict: `knn_accuracy` in [0, 1], `chance` (the most frequent test class' share),
    `k`, `n_train`, `n_test`, `seconds`.
    """
    from sklearn.neighbors import KNeighborsClassifier  # lazy: scikit-learn is slow to import

    t0 = time.perf_counter()
    x_tr, y_tr = data.x_train[:n_train], data.y_train[:n_train]
    x_te, y_te = data.x_test[:n_test], data.y_test[:n_test]
    if len(x_tr) < k:
        raise ValueError(f"Expected at least k={k} training images. Received: {len(x_tr)}")
    z_tr, _ = model.encode(x_tr)
    z_te, _ = model.encode(x_te)
    clf = KNeighborsClassifier(n_neighbors=k).fit(z_tr, y_tr)
    acc = float(clf.score(z_te, y_te))
    chance = float(np.bincount(y_te).max() / len(y_te))
    return {
        "knn_accuracy": acc,
        "chance": chance,
        "k": int(k),
        "n_train": int(len(x_tr)),
        "n_test": int(len(x_te)),
        "seconds": time.perf_counter() - t0,
    }


# ----------------------------------------------------------------------------- cache + report


def cache_path(model_id: str) -> Path:
    return home() / "quality" / f"{model_id}.json"


def cached(model_id: str) -> dict:
    """The quality results computed so far for a model ({} if none or unreadable)."""
    try:
        data = json.loads(cache_path(model_id).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store_result(model_id: str, result: dict) -> None:
    path = cache_path(model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        data = cached(model_id)
        data.update(result)
        atomic_write_text(path, json.dumps(data, indent=1))


def evaluate_quality(
    model,
    data: Dataset,
    *,
    n_iwae: int = 1000,
    k_iwae: int = 64,
    k_nn: int = 5,
    n_knn_train: int | None = None,
    seed: int = 0,
    save: bool = True,
    progress=None,
) -> dict:
    """Both estimates for one model: IWAE on the first `n_iwae` test images with `k_iwae` samples,
    k-NN on all test images. Cached under the model's id when it has one (and `save`).

    Returns a flat dict: iwae_nll, elbo_nll, iwae_k, iwae_n, likelihood, knn_accuracy, knn_chance,
    knn_k, knn_n_train, knn_n_test, seconds, computed (a timestamp); plus cache_error (a one-line
    note) when the result could not be cached (read-only or full home). `progress(fraction)`, if given,
    is called after each IWAE batch (up to 0.8; the k-NN follows); it may raise to stop the work.
    """
    if data.name != model.config.dataset:
        raise ValueError(
            f"Expected the {model.config.dataset!r} dataset the model was trained on. Received: {data.name!r}"
        )
    t0 = time.perf_counter()
    report = progress or (lambda fraction: None)
    est = iwae(model, data.x_test[:n_iwae], k=k_iwae, seed=seed, progress=lambda f: report(0.8 * f))
    knn = knn_accuracy(model, data, k=k_nn, n_train=n_knn_train)  # no report after it: done work stands
    result = {
        "iwae_nll": est["iwae_nll"],
        "elbo_nll": est["elbo_nll"],
        "iwae_k": est["k"],
        "iwae_n": est["n"],
        "likelihood": est["likelihood"],
        "knn_accuracy": knn["knn_accuracy"],
        "knn_chance": knn["chance"],
        "knn_k": knn["k"],
        "knn_n_train": knn["n_train"],
        "knn_n_test": knn["n_test"],
        "seconds": time.perf_counter() - t0,
        "computed": time.time(),
    }
    if save and model.id:
        try:
            _store_result(model.id, result)
        except (OSError, TimeoutError) as e:  # a read-only or full home: the estimate still stands
            where = getattr(e, "filename", None) or "the quality cache"
            result["cache_error"] = (
                f"Not cached ({where}: {getattr(e, 'strerror', None) or e}): it will be "
                "computed again next time. Fix: make LATENT_EXPLORER_HOME writable."
            )
    return result


COLUMNS = (
    "model",
    "dataset",
    "latent_dim",
    "loss",
    "kl_weight",
    "epochs",
    "train_images",
    "train_seconds",
    "test_loss",
    "reconstruction",
    "kl",
    "iwae_nll",
    "knn_accuracy",
    "id",
)


def compare(records) -> list[dict]:
    """One row per model, for a side-by-side table (e.g. `st.dataframe(compare(store.list()))`).

    Args:
        records: `ModelRecord`s (from `ModelStore.list()`).

    Returns a list of dicts with keys COLUMNS. The test loss terms come from each model's
    meta.json; iwae_nll and knn_accuracy from the quality cache (None until `evaluate_quality`
    has run for that model). train_images is None for the full training set.
    """
    rows = []
    for r in records:
        c, m, q = r.config, r.test_metrics, cached(r.id)
        rows.append(
            {
                "model": r.label,
                "dataset": c.dataset,
                "latent_dim": c.latent_dim,
                "loss": c.loss,
                "kl_weight": c.kl_weight,
                "epochs": c.epochs,
                "train_images": c.limit,
                "train_seconds": round(float(r.train_seconds), 1),
                "test_loss": m.get("loss"),
                "reconstruction": m.get("reconstruction_loss"),
                "kl": m.get("kl_loss"),
                "iwae_nll": q.get("iwae_nll"),
                "knn_accuracy": q.get("knn_accuracy"),
                "id": r.id,
            }
        )
    return rows


# ----------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    """`python -m model.quality [--all | --model ID] [--n 1000] [--k 64]`: estimate and print the table."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    p = argparse.ArgumentParser(prog="python -m model.quality", description=main.__doc__)
    p.add_argument("--model", help="model id (default: the current model)")
    p.add_argument("--all", action="store_true", help="every stored model that has no numbers yet")
    p.add_argument("--n", type=int, default=1000, help="test images for the IWAE bound (default 1000)")
    p.add_argument("--k", type=int, default=64, help="importance samples per image (default 64)")
    p.add_argument("--force", action="store_true", help="recompute even if cached")
    args = p.parse_args(argv)
    store = ModelStore()
    try:
        if args.all:
            ids = [r.id for r in store.list() if args.force or cached(r.id).get("iwae_nll") is None]
        else:
            rec = store.record(args.model) if args.model else store.current()
            if rec is None:
                raise StoreError("No model in the store. Fix: train one with `python -m model.train`.")
            ids = [rec.id] if args.force or cached(rec.id).get("iwae_nll") is None else []
        for model_id in ids:
            from model.latent import LatentModel  # lazy: loading needs Keras

            model = LatentModel.from_record(store.record(model_id))
            r = evaluate_quality(model, load_dataset(model.config.dataset), n_iwae=args.n, k_iwae=args.k)
            print(
                f"{model_id}: -log p(x) <= {r['iwae_nll']:.2f} nats (IWAE K={r['iwae_k']}, "
                f"{r['iwae_n']} test images; ELBO {r['elbo_nll']:.2f}), k-NN accuracy "
                f"{100 * r['knn_accuracy']:.1f}% (chance {100 * r['knn_chance']:.1f}%), {r['seconds']:.1f} s"
            )
    except (StoreError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cols = tuple(c for c in COLUMNS if c not in ("model", "train_seconds"))
    print("\t".join(cols))
    for row in compare(store.list()):
        print(
            "\t".join(
                "-" if row[c] is None else f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c])
                for c in cols
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
