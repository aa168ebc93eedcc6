"""A stored model's record: the fields of its meta.json, read strictly (a damaged field is a StoreError
naming it, never a crash later), the model id rules and when a model may become the default. Reading
a record needs no Keras; the store itself (directories, saving, the default model) is model/store.py."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from model.config import VAEConfig
from model.errors import StoreError

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
