"""The training config of a VAE, importable without TensorFlow/Keras (cheap for the store and the UI).

`model.vae` re-exports everything here, so `from model.vae import VAEConfig` keeps working.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from dataclasses import asdict, dataclass, fields

IMAGE_SHAPE = (28, 28, 1)
LOSSES = ("bce", "mse")
PRECISIONS = ("float32", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")
# VAEConfig.fast(): batches of 64 (twice the updates per epoch at the same time per epoch) at twice the
# learning rate, decayed to 0 by a cosine over 20 epochs, reach the test loss the seed reaches in 30
# (bench/train_speed.py; README "Performance" has the runs).
FAST_PRESET = {"batch_size": 64, "epochs": 20, "learning_rate": 2e-3, "lr_schedule": "cosine"}


@dataclass(frozen=True)
class VAEConfig:
    """Everything that defines a trained model. Defaults are the seed's."""

    dataset: str = "mnist"  # "mnist", "fashion_mnist" (or a user .npz, named by the caller)
    latent_dim: int = 2  # size of z; the seed uses 2 (a plane you can explore with two sliders)
    loss: str = "bce"  # reconstruction term: "bce" (seed default) or "mse" (seed's --mse)
    epochs: int = 30  # seed: 30
    batch_size: int = 128  # seed: 128
    learning_rate: float = 1e-3  # RMSprop's default, as in the seed
    limit: int | None = None  # train on the first N training images only (quick runs, tests)
    precision: str = "float32"  # "mixed_bfloat16": bf16 convolutions (CPUs with AVX512_BF16 or AMX)
    seed: int = 0  # weight init, shuffling and sampling noise
    lr_schedule: str = "constant"  # "constant" (seed) or "cosine": decay to 0 over the run's steps

    def __post_init__(self):
        def bad(name, expected):
            raise ValueError(f"Expected {name} {expected}. Received: {name}={getattr(self, name)!r}")

        def is_int(value):
            return isinstance(value, int) and not isinstance(value, bool)

        # numpy scalars (e.g. from a slider or an array) become plain Python numbers, so the config
        # stays JSON-serialisable and its fingerprint does not depend on the number's type.
        for name in ("latent_dim", "epochs", "batch_size", "limit", "seed"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        if isinstance(self.learning_rate, numbers.Real) and not isinstance(self.learning_rate, bool):
            object.__setattr__(self, "learning_rate", float(self.learning_rate))
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            bad("dataset", "to be a non-empty name")
        if self.loss not in LOSSES:
            bad("loss", f"in {LOSSES}")
        if self.precision not in PRECISIONS:
            bad("precision", f"in {PRECISIONS}")
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"in {LR_SCHEDULES}")
        for name in ("latent_dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                bad(name, "to be a positive integer")
        if self.latent_dim > 64:
            bad("latent_dim", "<= 64")
        if not (isinstance(self.learning_rate, float) and 0 < self.learning_rate < 1):
            bad("learning_rate", "in (0, 1)")
        if self.limit is not None and (not is_int(self.limit) or self.limit < 1):
            bad("limit", "to be None or a positive integer")
        if not is_int(self.seed) or not 0 <= self.seed < 2**32:
            bad("seed", "to be an integer in [0, 2**32)")

    @classmethod
    def fast(cls, **overrides) -> VAEConfig:
        """The fast preset (`python -m model.train --fast`): the seed's quality in less time.

        The seed's architecture, loss, optimizer (RMSprop) and float32; batches of 64 instead of 128,
        learning rate 2e-3 decayed to 0 by a cosine instead of a constant 1e-3, and 20 epochs instead of
        30 (FAST_PRESET). `overrides` set any field, e.g. epochs=30.
        """
        return cls(**{**FAST_PRESET, **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """A short stable hash of the config: the cache key of the trained model."""
        d = self.to_dict()
        if d["lr_schedule"] == "constant":  # fields added later hash only when set, so the ids of
            del d["lr_schedule"]  # models trained before them stay the same
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def slug(self) -> str:
        """A readable, file-name-safe prefix of the model id: dataset, latent size, loss, epochs and
        fingerprint."""
        lim = f"-n{self.limit}" if self.limit else ""
        dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.dataset).strip("._") or "data"
        return f"{dataset}-z{self.latent_dim}-{self.loss}-e{self.epochs}{lim}-{self.fingerprint()}"
