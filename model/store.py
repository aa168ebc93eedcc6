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
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from model.config import VAEConfig  # not model.vae: reading the store needs no Keras
from model.data import TEST_SET  # noqa: F401 - a model's own test set (user data), see model.data
from model.errors import ModelNotFoundError, StoreError
from model.paths import atomic_write_text, home, pid_alive, shown

FORMAT = 1
FILES = ("encoder.keras", "decoder.keras", "meta.json")
MAX_CREATED = 2**33  # seconds since 1970 (year 2242): a later "created" is corrupt, not a date
# A model id is a directory name: at most 255 bytes on common file systems, less the longest temp name
# made from it (".tmp-<pid>-del-<6 hex>-<id>", see `delete`). Generated ids are about 50 bytes.
MAX_ID_BYTES = 200
# A trained model whose test loss is more than this fraction above the default model's (same dataset and
# reconstruction loss) does not become the default for new tabs by itself: see `ModelStore.offer_as_default`.
DEFAULT_WORSE_BY = 0.2


def check_model_id(model_id) -> str:
    """`model_id` if it can name a model directory, else StoreError naming the problem: the one check of
    ids from the store, a link, the command line or a job file (length in UTF-8 bytes and characters)."""
    if not isinstance(model_id, str) or not model_id:
        problem = "an empty id" if model_id == "" else f"{model_id!r:.60}"
    elif len(model_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        n = len(model_id.encode("utf-8", "surrogatepass"))
        problem = f"{n} bytes (UTF-8), starting {model_id[:20]!r}"
    elif model_id.startswith(".") or any(c in model_id for c in "/\\") or not model_id.isprintable():
        problem = f"{model_id[:60]!r}, which has a leading '.', a '/' or '\\', or a control character"
    else:
        try:
            model_id.encode("utf-8")
        except UnicodeEncodeError:
            problem = f"{model_id[:60]!r}, which is not valid Unicode"
        else:
            return model_id
    raise StoreError(
        f"Invalid model id. Expected a directory name of at most {MAX_ID_BYTES} bytes (UTF-8) without a "
        f"leading '.', '/', '\\' or control characters. Received: {problem}. Fix: use the id of a stored "
        "model (the sidebar's model picker lists them)."
    )


def worse_than(record: ModelRecord, default: ModelRecord | None) -> str | None:
    """Why `record` should not replace `default` as the default model without being asked (pure), or None.

    Only comparable models are compared: the same dataset and reconstruction loss (a BCE and an MSE test
    loss are on different scales), both with a finite test loss."""
    if default is None or default.id == record.id:
        return None
    new, old = record.test_metrics.get("loss"), default.test_metrics.get("loss")
    same = (record.config.dataset, record.config.loss) == (default.config.dataset, default.config.loss)
    if not same or not all(isinstance(v, float) and math.isfinite(v) for v in (new, old)):
        return None
    if new - old > DEFAULT_WORSE_BY * abs(old):
        return (
            f"its test loss {new:.1f} is more than {100 * DEFAULT_WORSE_BY:.0f}% higher than the default "
            f"model's ({old:.1f})"
        )
    return None


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
        beta = f" · β {c.kl_weight:g}" if c.kl_weight != 1 else ""
        return f"{c.dataset} · z{c.latent_dim} · {c.loss}{beta} · {trained}{q} · {when}"


def _number(value, what: str, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected {what} to be a number, received {value!r:.60}")
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(
            f"expected {what} to be a number of sensible size, received a "
            f"{len(str(abs(value)))}-digit integer"
        ) from None
    if finite and not math.isfinite(value):
        raise ValueError(f"expected {what} to be finite, received {value!r}")
    return value


def _parse_meta(meta) -> dict:
    """The fields of a meta.json, each checked (type and range); TypeError/ValueError name the bad one."""
    if not isinstance(meta, dict):
        raise TypeError(f"expected a JSON object, received {type(meta).__name__}")
    fmt = meta.get("format", 0)
    if isinstance(fmt, bool) or not isinstance(fmt, int):
        raise TypeError(f"expected an integer format, received {fmt!r:.60}")
    if not isinstance(meta.get("config"), dict):
        raise KeyError("config")
    created = _number(meta.get("created", 0.0), "created")
    if not 0 <= created < MAX_CREATED:
        raise ValueError(f"expected created to be a time in seconds since 1970, received {created!r}")
    train_seconds = _number(meta.get("train_seconds", 0.0), "train_seconds")
    if train_seconds < 0:
        raise ValueError(f"expected train_seconds >= 0, received {train_seconds!r}")
    out = {"format": fmt, "config": meta["config"], "created": created, "train_seconds": train_seconds}
    for name in ("history", "test_metrics", "extra"):
        value = meta.get(name) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"expected {name} to be a JSON object, received {value!r:.60}")
        out[name] = value
    for k, vs in out["history"].items():
        if not isinstance(vs, list):
            raise TypeError(f"expected history[{k!r}] to be a list, received {vs!r:.60}")
    out["history"] = {
        k: [_number(v, f"history[{k!r}] values", finite=False) for v in vs]
        for k, vs in out["history"].items()
    }
    out["test_metrics"] = {
        k: _number(v, f"test_metrics[{k!r}]", finite=False) for k, v in out["test_metrics"].items()
    }
    for k in ("weights_from", "npz", "npz_sha256", "job"):  # read by the label, the page and model.jobs
        if out["extra"].get(k) is not None and not isinstance(out["extra"][k], str):
            raise TypeError(f"expected extra[{k!r}] to be a string, received {out['extra'][k]!r:.60}")
    return out


def _meta(model_id, config: VAEConfig, history, test_metrics, train_seconds, extra) -> dict:
    """The meta.json of a model being saved."""
    return {
        "format": FORMAT,
        "id": model_id,
        "config": config.to_dict(),
        "history": {k: [float(v) for v in vs] for k, vs in (history or {}).items()},
        "test_metrics": {k: float(v) for k, v in (test_metrics or {}).items()},
        "created": time.time(),
        "train_seconds": float(train_seconds),
        "extra": extra or {},
    }


def _check_extra_files(files: dict | None) -> None:
    for name in files or {}:
        if name in FILES or "/" in name or name.startswith("."):
            raise ValueError(f"Expected a plain extra file name, not one of {FILES}. Received: {name!r}")


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
        model_id = self.new_id(config)
        meta = _meta(model_id, config, history, test_metrics, train_seconds, extra)
        _check_extra_files(files)
        writers = {
            "encoder.keras": encoder.save,
            "decoder.keras": decoder.save,
            **{name: partial(Path.write_bytes, data=data) for name, data in (files or {}).items()},
        }
        self.write_model_dir(model_id, meta, writers, what="save the model")
        record = self.record(model_id)
        if make_current:
            self.offer_as_default(record)
        return record

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
        model_id = self.new_id(config)
        meta = _meta(model_id, config, history, test_metrics, train_seconds, extra)
        _check_extra_files(files)
        blobs = {
            "encoder.keras": parts["encoder.keras"],
            "decoder.keras": parts["decoder.keras"],
            **(files or {}),
        }
        writers = {name: partial(Path.write_bytes, data=data) for name, data in blobs.items()}
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
