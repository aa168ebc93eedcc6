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

from model.paths import atomic_write_text, home, pid_alive
from model.config import VAEConfig  # not model.vae: reading the store needs no Keras

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
        source = self.extra.get("weights_from")
        trained = f"weights from {Path(source).name}" if source else f"{c.epochs} ep"
        if self.extra.get("bundled"):  # installed from model/bundled/ (model.bundle)
            trained += " · bundled"
        return f"{c.dataset} · z{c.latent_dim} · {c.loss} · {trained}{q} · {when}"


class ModelStore:
    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            try:
                root = home() / "models"
            except OSError as e:
                raise StoreError(f"Cannot create the latent explorer home: {e}. Fix: set "
                                 "LATENT_EXPLORER_HOME to a writable directory.") from None
        self.root = Path(root)

    def _path(self, model_id: str) -> Path:
        """The directory of `model_id`, refusing ids that are not plain names inside the store."""
        if (not isinstance(model_id, str) or not model_id or model_id.startswith(".")
                or "/" in model_id or "\\" in model_id or "\0" in model_id):
            raise StoreError(f"Invalid model id {model_id!r}: expected the name of a directory in "
                             f"{self.root}. Fix: pick a model from ModelStore.list().")
        return self.root / model_id

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
        try:
            atomic_write_text(self.root / "current.json", json.dumps({"id": model_id}))
        except OSError as e:
            raise StoreError(f"Could not write {self.root / 'current.json'}: {e.strerror or e}. "
                             "Fix: set LATENT_EXPLORER_HOME to a writable directory.") from None

    def delete(self, model_id: str) -> None:
        path = self._path(model_id)
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
            if pid != os.getpid() and not pid_alive(pid):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    # ------------------------------------------------------------------ reading
    def record(self, model_id: str) -> ModelRecord:
        path = self._path(model_id)
        meta_path = path / "meta.json"
        if not path.is_dir():
            raise StoreError(f"No model {model_id!r} in {self.root}. "
                             "Fix: train one with `python -m model.train` or pick another model.")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise TypeError(f"expected a JSON object, received {type(meta).__name__}")
            fmt = meta.get("format", 0)
            if not isinstance(fmt, int):
                raise TypeError(f"expected an integer format, received {fmt!r}")
            if fmt > FORMAT:
                raise StoreError(f"Model {model_id!r} was saved by a newer latent explorer "
                                 f"(format {fmt} > {FORMAT}). Fix: upgrade, or retrain here.")
            if not isinstance(meta.get("config"), dict):
                raise KeyError("config")
            config = VAEConfig.from_dict(meta["config"])
            record = ModelRecord(
                id=model_id, path=path, config=config, history=dict(meta.get("history") or {}),
                test_metrics=dict(meta.get("test_metrics") or {}), created=float(meta.get("created", 0.0)),
                train_seconds=float(meta.get("train_seconds", 0.0)), extra=dict(meta.get("extra") or {}))
        except FileNotFoundError:
            raise StoreError(f"Model {model_id!r} has no meta.json: it is incomplete. "
                             f"Fix: delete {path} and retrain.") from None
        except KeyError as e:
            raise StoreError(f"Model {model_id!r} has a corrupt meta.json (no {e.args[0]!r} entry). "
                             f"Fix: delete {path} and retrain.") from None
        except (ValueError, TypeError, OSError) as e:  # bad JSON / UTF-8, a bad config value, unreadable
            raise StoreError(f"Model {model_id!r} has a corrupt meta.json ({e}). "
                             f"Fix: delete {path} and retrain.") from None
        return record

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
        """The newest model trained with exactly this config, if any.

        Models whose weights were loaded from a file (`python -m model.train --weights`) are left out:
        their config describes the network, not how the weights were trained."""
        fp = config.fingerprint()
        return next((r for r in self.list()
                     if r.config.fingerprint() == fp and not r.extra.get("weights_from")), None)

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
