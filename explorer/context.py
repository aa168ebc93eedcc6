"""The view context every panel receives: the current model with its test set (`Explorer`), the test set
seen through the model (`Latents`), and the scatter's 2-D view of the latent space (a `view` object).

A view maps latent vectors into the scatter's plane. `LinearView` is the latent plane itself (2-D models)
or the PCA plane above; `explorer.panels.projection.TsneView` is the t-SNE plane. A new projection is a
new view class with the same members, handed to `Explorer.with_view`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from explorer import scatter, views

if TYPE_CHECKING:  # only for the types: explorer/ never imports TensorFlow at run time
    from model.latent import LatentModel
    from model.store import ModelRecord


@dataclass(frozen=True, eq=False)
class Latents:
    """The test set seen through one model: posterior, labels, the scatter's 2-D view, slider ranges."""

    z_mean: np.ndarray  # (N, d) posterior means
    z_log_var: np.ndarray  # (N, d) posterior log-variances
    labels: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float32: the scatter's positions (in the explorer's view)
    proj_mean: np.ndarray  # (d,) the linear view is xy = (z - proj_mean) @ proj_components.T
    proj_components: np.ndarray  # (2, d)
    explained: np.ndarray  # variance ratio of each view axis (ones for d <= 2)
    bounds: np.ndarray  # (d,) float32: slider i covers [-bounds[i], bounds[i]]
    center: np.ndarray  # (d,) float32: where the sliders start

    @property
    def latent_dim(self) -> int:
        return int(self.z_mean.shape[1])


def projected_cov(components, z_log_var) -> np.ndarray:
    """Diagonal posterior covariance diag(exp(z_log_var)) seen in a linear view's plane: W Σ Wᵀ (2, 2)."""
    w = np.asarray(components, np.float64)  # (2, d)
    return (w * np.exp(np.asarray(z_log_var, np.float64))) @ w.T


def axis_titles(lat: Latents) -> tuple[str, str]:
    """The scatter's axis titles: the latent axes for a 2-D model, the principal components above."""
    if lat.latent_dim == 2:
        return "z[0]", "z[1]"
    ex = lat.explained
    return tuple(f"PC{i + 1} of z ({100 * ex[i]:.0f}% var)" if i < len(ex) else "" for i in range(2))


@dataclass(frozen=True, eq=False)
class LinearView:
    """The latent plane itself (2-D models) or the PCA plane of the test set's means (above 2-D)."""

    latents: Latents

    @property
    def name(self) -> str:
        """What the scatter's plane is: the latent plane itself (2-D), else the projection's name."""
        return "latent plane" if self.latents.latent_dim == 2 else "PCA"

    def project(self, z) -> np.ndarray:
        """Latent vectors (..., d) -> their 2-D scatter position (..., 2)."""
        a = self.latents
        return (np.asarray(z, np.float32) - a.proj_mean) @ a.proj_components.T

    def projected_cov(self, index: int) -> np.ndarray:
        """The posterior covariance of test row `index`, projected to the scatter plane: (2, 2)."""
        return projected_cov(self.latents.proj_components, self.latents.z_log_var[index])

    def posterior_cov(self, z_mean, z_log_var) -> np.ndarray:
        """The posterior N(z_mean, diag(exp(z_log_var))) of any picture, seen in the scatter plane: (2, 2)."""
        return projected_cov(self.latents.proj_components, z_log_var)

    def ellipse_note(self, index: int) -> str | None:
        """Why test row `index` is shown without posterior ellipses (None: a linear view always has them)."""
        return None

    @property
    def map_extent(self) -> tuple[float, float, float, float]:
        """The live map's window: the sliders' plane for a 2-D model, the bulk of the PCA view above."""
        a = self.latents
        return views.map_extent(a.xy, a.bounds if a.latent_dim == 2 else None)

    @property
    def axis_titles(self) -> tuple[str, str]:
        return axis_titles(self.latents)


@dataclass(frozen=True, eq=False)
class Explorer:
    """Everything the page needs about the current model, all cached, and the scatter's view of it."""

    record: ModelRecord
    stamp: str
    model: LatentModel
    images: np.ndarray  # (N, 28, 28) uint8 test images
    class_names: tuple[str, ...]
    latents: Latents
    view: object = field(default=None)  # LinearView(latents) unless given (see explorer.panels.projection)
    n_test: int | None = None  # rows below it are test images, the rest training images (None: all test)

    def __post_init__(self):
        if self.view is None:
            object.__setattr__(self, "view", LinearView(self.latents))
        if self.n_test is None:
            object.__setattr__(self, "n_test", len(self.images))

    @property
    def with_train(self) -> bool:
        """Whether the training images are shown too (after the test set)."""
        return self.n_test < len(self.images)

    def point_name(self, row: int) -> str:
        """How the page names a row: "test #12", or "train #3" for a training image."""
        row = int(row)
        return f"test #{row}" if row < self.n_test else f"train #{row - self.n_test}"

    def with_view(self, xy, make_view) -> Explorer:
        """This explorer with the test set at positions `xy` (N, 2) in the view `make_view(latents)`."""
        lat = replace(self.latents, xy=np.asarray(xy, np.float32))
        return replace(self, latents=lat, view=make_view(lat))

    @property
    def latent_dim(self) -> int:
        return self.latents.latent_dim

    def class_name(self, label) -> str:
        """The class name of a label, or the label itself when the dataset names fewer classes."""
        return scatter.class_name(self.class_names, label)

    # The view's members, so a panel asks the explorer (ex.project(z)) whatever the projection.
    def project(self, z) -> np.ndarray:
        return self.view.project(z)

    def projected_cov(self, index: int) -> np.ndarray | None:
        return self.view.projected_cov(index)

    def posterior_cov(self, z_mean, z_log_var) -> np.ndarray | None:
        return self.view.posterior_cov(z_mean, z_log_var)

    def ellipse_note(self, index: int) -> str | None:
        return self.view.ellipse_note(index)

    @property
    def map_extent(self) -> tuple[float, float, float, float]:
        return self.view.map_extent

    @property
    def axis_titles(self) -> tuple[str, str]:
        return self.view.axis_titles

    @property
    def view_name(self) -> str:
        return self.view.name
