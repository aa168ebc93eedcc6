"""The on-disk model store: trained encoder/decoder pairs, keyed by their training config.

Layout under `home()/models/`:
    <model id>/encoder.keras, decoder.keras, meta.json   (a directory is never modified once written)
    current.json                                         {"id": ...} the default model: the one a new tab
                                                         of the page opens on (each tab then keeps its own)
A save writes everything into a hidden temp directory and renames it into place, so a crash or kill
at any moment leaves either the complete new model or nothing (stale temp directories are swept).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

from model.config import VAEConfig  # not model.vae: reading the store needs no Keras
from model.data import TEST_SET
from model.errors import ModelNotFoundError, StoreError
from model.paths import atomic_write_text, home, pid_alive, shown
from model.record import (
    FILES,
    FORMAT,
    ModelRecord,
    _check_extra_files,
    _meta,
    _parse_meta,
    check_model_id,
    worse_than,
)


def dir_size(path: Path) -> int:
    """Bytes used by the files under `path` (0 if it does not exist; unreadable entries are skipped)."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


# re-exported: callers read records and raise/catch store errors through model.store
__all__ = [
    "FILES",
    "FORMAT",
    "TEST_SET",
    "ModelNotFoundError",
    "ModelRecord",
    "ModelStore",
    "StoreError",
    "check_model_id",
    "dir_size",
]


class ModelStore:
    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            try:
                root = home() / "models"
            except OSError as e:
                raise StoreError(
                    f"Cannot create the latent explorer home: {e}. Fix: set "
                    "LATENT_EXPLORER_HOME to a writable directory."
                ) from None
        self.root = Path(root)

    def model_dir(self, model_id: str) -> Path:
        """The directory of `model_id`, refusing ids that are not plain names inside the store."""
        return self.root / check_model_id(model_id)

    # ------------------------------------------------------------------ writing
    def check_writable(self) -> None:
        """Raise StoreError (with the fix) unless models can be saved here."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"Cannot create the model store {shown(self.root)}: {e.strerror}. "
                "Fix: set LATENT_EXPLORER_HOME to a writable directory."
            ) from None
        if not os.access(self.root, os.W_OK):
            raise StoreError(
                f"The model store {shown(self.root)} is not writable. "
                "Fix: set LATENT_EXPLORER_HOME to a writable directory."
            )

    def new_id(self, config: VAEConfig) -> str:
        return f"{config.slug()}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"

    def save(
        self,
        encoder,
        decoder,
        config: VAEConfig,
        history: dict | None = None,
        test_metrics: dict | None = None,
        train_seconds: float = 0.0,
        extra: dict | None = None,
        make_current: bool = True,
        files: dict[str, bytes] | None = None,
    ) -> ModelRecord:
        """Save a trained pair atomically and (make_current, the default) offer it as the default model
        for new tabs (`offer_as_default`: a much worse model is saved but does not become the default).

        `files` are more files to keep in the model directory ({name: bytes}, e.g. TEST_SET), written
        into the same temp directory, so they appear with the model or not at all."""
        writers = {"encoder.keras": encoder.save, "decoder.keras": decoder.save}
        facts = (history, test_metrics, train_seconds, extra)
        return self._save(writers, config, facts, make_current, files)

    def save_bytes(
        self,
        parts: dict[str, bytes],
        config: VAEConfig,
        history: dict | None = None,
        test_metrics: dict | None = None,
        train_seconds: float = 0.0,
        extra: dict | None = None,
        make_current: bool = True,
        files: dict[str, bytes] | None = None,
    ) -> ModelRecord:
        """`save` for a model trained elsewhere (a Ray worker): `parts` holds the bytes of its
        encoder.keras and decoder.keras; the rest as in `save`, written by the same atomic writer."""
        missing = [n for n in ("encoder.keras", "decoder.keras") if not isinstance(parts.get(n), bytes)]
        if missing:
            raise ValueError(f"Expected the bytes of {' and '.join(missing)}. Received: {sorted(parts)}")
        writers = {n: partial(Path.write_bytes, data=parts[n]) for n in ("encoder.keras", "decoder.keras")}
        facts = (history, test_metrics, train_seconds, extra)
        return self._save(writers, config, facts, make_current, files)

    def _save(self, writers: dict, config: VAEConfig, facts: tuple, make_current: bool, files) -> ModelRecord:
        """`save`'s and `save_bytes`' common part: the model's writers plus `files`, with meta.json of
        `facts` (history, test_metrics, train_seconds, extra), written atomically; then the default."""
        model_id = self.new_id(config)
        meta = _meta(model_id, config, *facts)
        _check_extra_files(files)
        writers = {
            **writers,
            **{name: partial(Path.write_bytes, data=data) for name, data in (files or {}).items()},
        }
        self.write_model_dir(model_id, meta, writers, what="save the model")
        record = self.record(model_id)
        if make_current:
            self.offer_as_default(record)
        return record

    def write_model_dir(
        self, model_id: str, meta: dict, writers: dict[str, Callable[[Path], object]], what: str
    ) -> bool:
        """Create the model directory `model_id` atomically: each writer writes its file (given its path)
        into a hidden `.tmp-<pid>-<id>` directory, meta.json is added, every file is fsynced, and the
        directory is renamed into place, so a crash leaves the complete model or nothing (`sweep` removes
        a dead process's temp directory). The one way a model directory comes to exist.

        Returns False when another process created the same directory first (its copy is kept), True
        when this call did. Raises StoreError naming `what` failed (e.g. "save the model") and the fix.
        """
        self.check_writable()
        self.sweep()
        tmp = self.root / f".tmp-{os.getpid()}-{check_model_id(model_id)}"
        final = self.root / model_id
        try:
            tmp.mkdir()
            for name, write in writers.items():
                write(tmp / name)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            for name in [*writers, "meta.json"]:
                with open(tmp / name, "rb") as f:
                    os.fsync(f.fileno())
            os.rename(tmp, final)
            return True
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.is_dir() and e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False  # another process (a second session) wrote the same model first
            raise StoreError(
                f"Could not {what} to {shown(self.root)}: {e.strerror or e}. "
                "Fix: free disk space or set LATENT_EXPLORER_HOME to a writable directory; "
                "the previous model is untouched."
            ) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def offer_as_default(self, record: ModelRecord) -> bool:
        """Make a newly saved model the default for new tabs unless it is much worse than the default
        (`worse_than`): the one rule every saver of a trained model calls. Returns whether it became the
        default. Raises StoreError if current.json cannot be written."""
        if worse_than(record, self.current()):
            return False
        self.set_current(record.id)
        return True

    def why_not_default(self, record: ModelRecord) -> str | None:
        """Why `offer_as_default` kept `record` from becoming the default, or None."""
        return worse_than(record, self.current())

    def set_current(self, model_id: str) -> None:
        """Make `model_id` the default model: the one new tabs open on (a user's explicit choice)."""
        self.record(model_id)  # raises if it does not exist
        try:
            atomic_write_text(self.root / "current.json", json.dumps({"id": model_id}))
        except OSError as e:
            raise StoreError(
                f"Could not write {shown(self.root / 'current.json')}: {e.strerror or e}. "
                "Fix: set LATENT_EXPLORER_HOME to a writable directory."
            ) from None

    def delete(self, model_id: str) -> None:
        """Remove a model (readable or broken) at once: renamed away first, so no one sees half of it.

        If it was the current model, `current()` falls back to the newest remaining one."""
        path = self.model_dir(model_id)
        if path.is_dir():
            trash = self.root / f".tmp-{os.getpid()}-del-{uuid.uuid4().hex[:6]}-{model_id}"
            try:
                os.rename(path, trash)
            except OSError as e:
                raise StoreError(
                    f"Could not delete {shown(path)}: {e.strerror or e}. Fix: check the permissions "
                    "of the model store (LATENT_EXPLORER_HOME)."
                ) from None
            shutil.rmtree(trash, ignore_errors=True)

    def size_bytes(self) -> int:
        """Bytes on disk of every model in the store (temp directories included)."""
        return dir_size(self.root)

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
        path = self.model_dir(model_id)
        meta_path = path / "meta.json"
        try:
            exists = path.is_dir()
        except OSError as e:  # e.g. a name the file system refuses
            raise StoreError(f"Cannot read the model {model_id!r}: {e.strerror or e}.") from None
        if not exists:
            raise ModelNotFoundError(
                f"No model {model_id!r} in {shown(self.root)}. "
                "Fix: train one with `python -m model.train` or pick another model."
            )
        try:
            meta = _parse_meta(json.loads(meta_path.read_text(encoding="utf-8")))
            if meta["format"] > FORMAT:
                raise StoreError(
                    f"Model {model_id!r} was saved by a newer latent explorer "
                    f"(format {meta['format']} > {FORMAT}). Fix: upgrade, or retrain here."
                )
            config = VAEConfig.from_dict(meta["config"], strict=False)
            record = ModelRecord(
                id=model_id,
                path=path,
                config=config,
                history=meta["history"],
                test_metrics=meta["test_metrics"],
                created=meta["created"],
                train_seconds=meta["train_seconds"],
                extra=meta["extra"],
            )
        except FileNotFoundError:
            raise StoreError(
                f"Model {model_id!r} has no meta.json: it is incomplete. "
                f"Fix: delete {shown(path)} and retrain."
            ) from None
        except KeyError as e:
            raise StoreError(
                f"Model {model_id!r} has a corrupt meta.json (no {e.args[0]!r} entry). "
                f"Fix: delete {shown(path)} and retrain."
            ) from None
        except (ValueError, TypeError, OverflowError, RecursionError, OSError) as e:
            # bad JSON / UTF-8, a bad field or config value, an absurd number, unreadable
            why = e.strerror if isinstance(e, OSError) and e.strerror else e  # no absolute file names
            raise StoreError(
                f"Model {model_id!r} has a corrupt meta.json ({why}). Fix: delete {shown(path)} and retrain."
            ) from None
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
        return next(
            (r for r in self.list() if r.config.fingerprint() == fp and not r.extra.get("weights_from")), None
        )

    def broken(self) -> dict[str, str]:
        """{model id: why it cannot be read} for every model directory `list()` leaves out."""
        if not self.root.is_dir():
            return {}
        out = {}
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and not p.name.startswith("."):
                try:
                    self.record(p.name)
                except StoreError as e:
                    out[p.name] = str(e)
        return out

    def current_id(self) -> str | None:
        """The id current.json names (it may be missing or unreadable), or None."""
        try:
            model_id = json.loads((self.root / "current.json").read_text())["id"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        return model_id if isinstance(model_id, str) else None

    def current(self) -> ModelRecord | None:
        """The model the app explores: current.json, else the newest readable model, else None.

        (When current.json names a model that cannot be read, the page says so: see `current_id`.)"""
        model_id = self.current_id()
        if model_id is not None:
            try:
                return self.record(model_id)
            except StoreError:
                pass
        models = self.list()
        return models[0] if models else None
