"""The on-disk model store: trained encoder/decoder pairs, keyed by their training config.

Layout under `home()/models/`:
    <model id>/encoder.keras, decoder.keras, meta.json   (a directory is never modified once written)
    current.json                                         {"id": ...} the model the app explores
A save writes everything into a hidden temp directory and renames it into place, so a crash or kill
at any moment leaves either the complete new model or nothing (stale temp directories are swept).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from model.paths import atomic_write_text, home
from model.vae import VAEConfig

FORMAT = 1
FILES = ("encoder.keras", "decoder.keras", "meta.json")


class StoreError(RuntimeError):
    """A model is missing, corrupt or incompatible; the message says how to fix it."""


@dataclass(frozen=True)
class ModelRecord:
    """What the store knows about one saved model (its meta.json), without loading Keras."""
    id: str
    path: Path
    config: VAEConfig
    history: dict = field(default_factory=dict)  # per-epoch metric lists from keras fit
    test_metrics: dict = field(default_factory=dict)  # loss, reconstruction_loss, kl_loss on the test set
    created: float = 0.0
    train_seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        c = self.config
        loss = self.test_metrics.get("loss")
        q = f", test loss {loss:.1f}" if isinstance(loss, (int, float)) else ""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        return f"{c.dataset} · z{c.latent_dim} · {c.loss} · {c.epochs} ep{q} · {when}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelStore:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else home() / "models"

    # ------------------------------------------------------------------ writing
    def _writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"Cannot create the model store {self.root}: {e.strerror}. "
                             "Fix: set LATENT_EXPLORER_HOME to a writable directory.") from None
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"The model store {self.root} is not writable. "
                             "Fix: set LATENT_EXPLORER_HOME to a writable directory.")

    def new_id(self, config: VAEConfig) -> str:
        return f"{config.slug()}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"

    def save(self, encoder, decoder, config: VAEConfig, history: dict | None = None,
             test_metrics: dict | None = None, train_seconds: float = 0.0, extra: dict | None = None,
             make_current: bool = True) -> ModelRecord:
        """Save a trained pair atomically and (by default) make it the current model."""
        self._writable()
        self.sweep()
        model_id = self.new_id(config)
        tmp = self.root / f".tmp-{os.getpid()}-{model_id}"
        meta = {
            "format": FORMAT, "id": model_id, "config": config.to_dict(),
            "history": {k: [float(v) for v in vs] for k, vs in (history or {}).items()},
            "test_metrics": {k: float(v) for k, v in (test_metrics or {}).items()},
            "created": time.time(), "train_seconds": float(train_seconds), "extra": extra or {},
        }
        try:
            tmp.mkdir()
            encoder.save(tmp / "encoder.keras")
            decoder.save(tmp / "decoder.keras")
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            for name in FILES:
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
            os.rename(tmp, self.root / model_id)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"Could not save the model to {self.root}: {e.strerror or e}. "
                             "Fix: free disk space or set LATENT_EXPLORER_HOME to a writable directory; "
                             "the previous model is untouched.") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if make_current:
            self.set_current(model_id)
        return self.record(model_id)

    def set_current(self, model_id: str) -> None:
        self.record(model_id)  # raises if it does not exist
        atomic_write_text(self.root / "current.json", json.dumps({"id": model_id}))

    def delete(self, model_id: str) -> None:
        path = self.root / model_id
        if path.is_dir():
            trash = self.root / f".tmp-{os.getpid()}-del-{model_id}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def sweep(self) -> list[Path]:
        """Remove temp directories left by saves whose process died (e.g. kill -9)."""
        removed = []
        if not self.root.is_dir():
            return removed
        for p in self.root.glob(".tmp-*"):
            try:
                pid = int(p.name.split("-")[1])
            except (IndexError, ValueError):
                pid = -1
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    # ------------------------------------------------------------------ reading
    def record(self, model_id: str) -> ModelRecord:
        path = self.root / model_id
        meta_path = path / "meta.json"
        if not path.is_dir():
            raise StoreError(f"No model {model_id!r} in {self.root}. "
                             "Fix: train one with `python -m model.train` or pick another model.")
        try:
            meta = json.loads(meta_path.read_text())
            config = VAEConfig.from_dict(meta["config"])
        except FileNotFoundError:
            raise StoreError(f"Model {model_id!r} has no meta.json: it is incomplete. "
                             f"Fix: delete {path} and retrain.") from None
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError(f"Model {model_id!r} has a corrupt meta.json ({e}). "
                             f"Fix: delete {path} and retrain.") from None
        if meta.get("format", 0) > FORMAT:
            raise StoreError(f"Model {model_id!r} was saved by a newer latent explorer "
                             f"(format {meta['format']} > {FORMAT}). Fix: upgrade, or retrain here.")
        return ModelRecord(id=model_id, path=path, config=config, history=meta.get("history", {}),
                           test_metrics=meta.get("test_metrics", {}), created=meta.get("created", 0.0),
                           train_seconds=meta.get("train_seconds", 0.0), extra=meta.get("extra", {}))

    def list(self, dataset: str | None = None) -> list[ModelRecord]:
        """Readable models, newest first (broken ones are left out; `load` explains them)."""
        if not self.root.is_dir():
            return []
        out = []
        for p in self.root.iterdir():
            if p.is_dir() and not p.name.startswith("."):
                try:
                    rec = self.record(p.name)
                except StoreError:
                    continue
                if dataset is None or rec.config.dataset == dataset:
                    out.append(rec)
        return sorted(out, key=lambda r: r.created, reverse=True)

    def find(self, config: VAEConfig) -> ModelRecord | None:
        """The newest model trained with exactly this config, if any."""
        fp = config.fingerprint()
        return next((r for r in self.list() if r.config.fingerprint() == fp), None)

    def current(self) -> ModelRecord | None:
        """The model the app explores: current.json, else the newest readable model, else None."""
        try:
            model_id = json.loads((self.root / "current.json").read_text())["id"]
            return self.record(model_id)
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            models = self.list()
            return models[0] if models else None

    def load(self, model_id: str):
        """Load a model for inference: a `model.api.LatentModel`. Raises StoreError with the fix."""
        from model.api import LatentModel

        return LatentModel.from_record(self.record(model_id))
