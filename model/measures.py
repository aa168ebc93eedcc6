"""Per-image measures of a test set seen through a model, to colour the scatter by: numpy in, numpy out.

    MEASURES                                   key -> Measure(label, help, higher-is-worse flag)
    per_image_measures(model, images, labels)  every measure, (N,) float32 each
    knn_agreement(z_means, labels, k)          share of each point's k nearest means with its label
    worst(values, n)                           the n rows with the highest values, worst first

The reconstruction and KL terms are the training loss's own per-image terms (`model.vae.vae_losses`),
taken at the posterior mean (no sampling noise: the colour of a point does not change between runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KNN = 5  # neighbours asked for "do the nearest neighbours agree with the label"


@dataclass(frozen=True)
class Measure:
    label: str  # shown in the "Colour by" menu and on the colour bar
    help: str  # one line: what it is and where it comes from
    worse_high: bool = True  # a high value is a problem (the "worst" end)


MEASURES: dict[str, Measure] = {
    "recon": Measure(
        "reconstruction error",
        "the loss's reconstruction term of each image (784·BCE, or 784·MSE for an MSE model), decoded "
        "from its posterior mean",
    ),
    "kl": Measure("KL to the prior", "the loss's KL term of each image: KL(q(z|x) ‖ N(0, I)) in nats"),
    "sigma": Measure("mean posterior σ", "the mean over latent dimensions of the posterior's std dev"),
    "knn": Measure(
        f"{KNN}-NN label agreement",
        f"the share of the {KNN} nearest test images (by posterior mean) that have the same label",
        worse_high=False,
    ),
    "radius": Measure("distance to the prior's centre", "‖posterior mean‖: how far from z = 0"),
}


def knn_agreement(z_means, labels, k: int = KNN) -> np.ndarray:
    """For each row, the share (0..1) of its k nearest other rows (Euclidean, full latent space) that
    have the same label. Returns (N,) float32; all ones when N <= 1 (nothing to disagree with)."""
    from sklearn.neighbors import NearestNeighbors

    z = np.asarray(z_means, np.float32)
    labels = np.asarray(labels)
    if z.ndim != 2 or labels.shape != (len(z),):
        raise ValueError(f"Expected z_means (N, d) and labels (N,). Received: {z.shape} and {labels.shape}")
    n = len(z)
    if n <= 1:
        return np.ones(n, np.float32)
    k = int(min(k, n - 1))
    # k + 1: each point finds itself (or a duplicate of itself) among its neighbours; drop one self
    idx = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z, return_distance=False)
    rows = np.arange(n)[:, None]
    is_self = idx == rows
    has_self = is_self.any(axis=1)
    # drop the point itself, or the farthest neighbour when a duplicate pushed it out of the list
    keep = ~is_self
    keep[~has_self, -1] = False
    others = idx[keep].reshape(n, k)
    return (labels[others] == labels[:, None]).mean(axis=1).astype(np.float32)


def per_image_measures(
    model, images, labels, z_mean=None, z_log_var=None, x_hat=None
) -> dict[str, np.ndarray]:
    """Every measure of `MEASURES` for each image: {key: (N,) float32}.

    `model` is a `model.latent.LatentModel` (its `loss_terms` gives the loss's own terms); z_mean and
    z_log_var, when the caller has them already, save one encoder pass, x_hat (the decoded means) one
    decoder pass."""
    if z_mean is None or z_log_var is None:
        z_mean, z_log_var = model.encode(images)
    recon, kl = model.loss_terms(images, z_mean, z_log_var, x_hat)
    z_mean = np.asarray(z_mean, np.float32)
    return {
        "recon": recon,
        "kl": kl,
        "sigma": np.exp(0.5 * np.asarray(z_log_var, np.float32)).mean(axis=1).astype(np.float32),
        "knn": knn_agreement(z_mean, labels),
        "radius": np.linalg.norm(z_mean, axis=1).astype(np.float32),
    }


def worst(values, n: int = 100, worse_high: bool = True) -> list[int]:
    """The n rows with the worst values (highest, or lowest if not worse_high), worst first; ties by row."""
    v = np.asarray(values, np.float64).reshape(-1)
    if v.size == 0:
        return []
    key = np.where(np.isfinite(v), -v if worse_high else v, np.inf)  # NaN never counts as worst
    order = np.lexsort((np.arange(v.size), key))
    return [int(r) for r in order[: max(0, int(n))]]
