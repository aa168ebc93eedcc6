"""The training config of a VAE, importable without TensorFlow/Keras (cheap for the store and the UI).

One home for every training option: its default, the values it may take, its help text and its
command-line flag live on the `VAEConfig` field (`dataclasses.field(metadata=...)`, read with `option`).
The CLI (`add_config_arguments` / `config_from_args`), the Retrain panel and `__post_init__`'s checks
derive from `fields(VAEConfig)`, so a new training option is one field here plus its use.

`model.vae` re-exports everything here, so `from model.vae import VAEConfig` keeps working.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType

from model.data import dataset_names

IMAGE_SHAPE = (28, 28, 1)
LOSSES = ("bce", "mse")
PRECISIONS = ("float32", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")
MAX_LATENT_DIM = 64
# VAEConfig.fast(): batches of 64 (twice the updates per epoch at the same time per epoch) at twice the
# learning rate, decayed to 0 by a cosine over 20 epochs, reach the test loss the seed reaches in 30
# (bench/train_speed.py; README "Performance" has the runs).
FAST_PRESET = {"batch_size": 64, "epochs": 20, "learning_rate": 2e-3, "lr_schedule": "cosine"}
# VAEConfig.quick(): a model to look around with in about a minute, while the real one trains later.
QUICK_PRESET = {"epochs": 3, "limit": 10_000}
PRESETS = {"seed": {}, "fast": FAST_PRESET, "quick": QUICK_PRESET}  # name -> fields that differ


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Option:
    """What a field may hold and how it is read from text, shown and named on the command line.

    Args:
        help: one line for `--help` and the panel's tooltip.
        label: the panel's label.
        kind: the Python type of a value (int, float or str).
        expects: what a valid value is, for messages ("a positive integer").
        valid: a check of a value of `kind` (beyond `choices`).
        choices: the values the CLI and the panel offer (also the only valid ones unless `open`), or a
            function returning them (a registry's names, read when asked: `offered`).
        open: other values are valid too (a user .npz's dataset name), only not offered (`parse`
            takes the choices only).
        optional: None is valid (and the default).
        flag: the command-line flag, without "--" (default: the field name with dashes).
        aliases: more names of the field, each also a flag (e.g. "beta" for kl_weight).
        added_later: the field hashes into the fingerprint only when it is not its default, so the
            ids of models saved before it existed stay the same.
    """

    help: str
    label: str
    kind: type = int
    expects: str = ""
    valid: Callable[[object], bool] | None = None
    choices: tuple | Callable[[], tuple] | None = None
    open: bool = False
    optional: bool = False
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    added_later: bool = False

    def offered(self) -> tuple | None:
        """The values offered: `choices`, or what it returns when it is a function."""
        return self.choices() if callable(self.choices) else self.choices

    def accepts(self, value) -> bool:
        """Whether `value` (already of `kind`) is valid."""
        if self.choices is not None and not self.open and value not in self.offered():
            return False
        return self.valid is None or bool(self.valid(value))

    def describe_expected(self) -> str:
        if self.expects:
            return self.expects
        choices = self.offered()
        return f"one of {', '.join(map(repr, choices))}" if choices else f"a {self.kind.__name__}"

    def parse(self, text: str):
        """`text` (from a command line or a grid) as a valid value; ValueError names what was expected."""
        text = str(text).strip()
        if self.optional and text.lower() in ("none", "all"):
            return None
        choices = self.offered()
        if choices is not None and text not in map(str, choices):  # the offered ones only
            choose = ", ".join(map(repr, choices))
            raise ValueError(f"invalid choice: {text!r} (choose from {choose})")
        try:
            value = self.kind(text)
        except ValueError:
            raise ValueError(f"expected {self.describe_expected()}, received {text!r}") from None
        if not self.accepts(value):
            raise ValueError(f"expected {self.describe_expected()}, received {text!r}")
        return value


def _field(default, **option):
    return dataclasses.field(default=default, metadata=MappingProxyType({"option": Option(**option)}))


POSITIVE_INT = dict(kind=int, expects="a positive integer", valid=lambda v: v >= 1)


@dataclass(frozen=True)
class VAEConfig:
    """Everything that defines a trained model. Defaults are the seed's.

    Each field's `Option` (`option(name)`) holds its help, allowed values and flag; `__post_init__`
    checks every field against it (ValueError "Expected <field> ... Received: <field>=...").
    """

    dataset: str = _field(
        "mnist",
        help="the dataset to train on (a user .npz is named by the caller: --npz)",
        label="Dataset",
        kind=str,
        expects="a non-empty name",
        valid=lambda v: bool(v.strip()),
        choices=dataset_names,  # the built-in ones (model.data.DATASETS)
        open=True,
    )
    latent_dim: int = _field(  # the seed uses 2: a plane you can explore with two sliders
        2,
        help="size of z (2 gives a plane you can explore with two sliders)",
        label="Latent size",
        kind=int,
        expects=f"an integer in [1, {MAX_LATENT_DIM}]",
        valid=lambda v: 1 <= v <= MAX_LATENT_DIM,
    )
    loss: str = _field(
        "bce",
        help="reconstruction term: bce (binary cross-entropy, the seed's) or mse (the seed's --mse)",
        label="Reconstruction loss",
        kind=str,
        choices=LOSSES,
    )
    epochs: int = _field(30, help="passes over the training images", label="Epochs", **POSITIVE_INT)
    batch_size: int = _field(128, help="images per training step", label="Batch size", **POSITIVE_INT)
    learning_rate: float = _field(
        1e-3,
        help="RMSprop's step size; too large a value makes the loss NaN, which stops the training",
        label="Learning rate",
        kind=float,
        expects="a number in (0, 1)",
        valid=lambda v: 0 < v < 1,
        flag="lr",
    )
    limit: int | None = _field(
        None,
        help="train on the first N training images only (quick runs, tests)",
        label="Training images",
        optional=True,
        **POSITIVE_INT,
    )
    precision: str = _field(
        "float32",
        help="mixed_bfloat16: bf16 convolutions (CPUs with AVX512_BF16 or AMX)",
        label="Precision",
        kind=str,
        choices=PRECISIONS,
    )
    seed: int = _field(  # the range is checked in __post_init__ (its message names the field)
        0, help="weight init, shuffling and sampling noise", label="Seed", kind=int, expects="an integer"
    )
    lr_schedule: str = _field(
        "constant",
        help="learning rate over the run: constant (the seed) or cosine decay to 0 over the run's steps",
        label="Learning-rate schedule",
        kind=str,
        choices=LR_SCHEDULES,
        added_later=True,
    )
    kl_weight: float = _field(
        1.0,
        help="β, the weight of the KL term in the training objective recon + β·KL (1 = the plain VAE; "
        "larger: a smoother latent space, blurrier digits)",
        label="β (KL weight)",
        kind=float,
        expects="a finite number >= 0",
        valid=lambda v: math.isfinite(v) and v >= 0,
        flag="beta",
        added_later=True,
    )

    def __post_init__(self):
        def bad(name, expected):
            raise ValueError(f"Expected {name} {expected}. Received: {name}={getattr(self, name)!r}")

        for f in fields(self):
            opt: Option = f.metadata["option"]
            value = getattr(self, f.name)
            # numpy scalars (e.g. from a slider or an array) become plain Python numbers, so the config
            # stays JSON-serialisable and its fingerprint does not depend on the number's type.
            if opt.kind is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)
            elif opt.kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
                value = float(value)
            object.__setattr__(self, f.name, value)
            if value is None and opt.optional:
                continue
            right_type = _is_int(value) if opt.kind is int else isinstance(value, opt.kind)
            if not right_type or not opt.accepts(value):
                none = "None or " if opt.optional else ""
                bad(
                    f.name,
                    f"in {opt.offered()}"
                    if opt.choices and not opt.open
                    else f"to be {none}{opt.describe_expected()}",
                )
        if not 0 <= self.seed < 2**32:
            bad("seed", "to be an integer in [0, 2**32)")

    # ------------------------------------------------------------------ presets

    @classmethod
    def preset(cls, name: str, **overrides) -> VAEConfig:
        """A named preset (PRESETS: "seed", "fast", "quick") with `overrides` of any field."""
        if name not in PRESETS:
            raise ValueError(f"Expected a preset in {tuple(PRESETS)}. Received: {name!r}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def fast(cls, **overrides) -> VAEConfig:
        """The fast preset (`python -m model.train --fast`): the seed's quality in less time.

        The seed's architecture, loss, optimizer (RMSprop) and float32; batches of 64 instead of 128,
        learning rate 2e-3 decayed to 0 by a cosine instead of a constant 1e-3, and 20 epochs instead of
        30 (FAST_PRESET). `overrides` set any field, e.g. epochs=30.
        """
        return cls.preset("fast", **overrides)

    @classmethod
    def quick(cls, **overrides) -> VAEConfig:
        """The quick preview (QUICK_PRESET): the seed's setup for 3 epochs on the first 10,000 images."""
        return cls.preset("quick", **overrides)

    # ------------------------------------------------------------------ (de)serialisation

    @classmethod
    def from_dict(cls, d: Mapping, *, strict: bool = True) -> VAEConfig:
        """The config of a dict of its fields (`to_dict()`); missing fields take their defaults.

        An unknown key is an error (a misspelt option must not train with the default), unless
        `strict=False`: for reading what an older or newer version saved (a model's meta.json), whose
        extra keys are ignored.
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"Expected a dict of config fields. Received: {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown and strict:
            hints = [
                f"{k!r} to {m[0]!r}" for k in unknown if (m := difflib.get_close_matches(str(k), names, n=1))
            ]
            raise ValueError(
                f"Expected config fields among {', '.join(names)}. Received unknown "
                f"field{'s' if len(unknown) > 1 else ''}: {', '.join(map(repr, unknown))}. Fix: "
                + (f"rename {', '.join(hints)}." if hints else "remove it, or check its spelling.")
            )
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> VAEConfig:
        return dataclasses.replace(self, **changes)

    def fingerprint(self) -> str:
        """A short stable hash of the config: the cache key of the trained model."""
        d = self.to_dict()
        for f in fields(self):  # fields added later hash only when set, so the ids of models
            if option(f.name).added_later and d[f.name] == f.default:  # trained before them stay the same
                del d[f.name]
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def slug(self) -> str:
        """A readable, file-name-safe prefix of the model id: dataset, latent size, loss, epochs and
        fingerprint."""
        lim = f"-n{self.limit}" if self.limit else ""
        dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.dataset).strip("._") or "data"
        return f"{dataset}-z{self.latent_dim}-{self.loss}-e{self.epochs}{lim}-{self.fingerprint()}"


# ----------------------------------------------------------------------------- field metadata


def option(name: str) -> Option:
    """The `Option` of a field, by its name or an alias ("beta" -> kl_weight's)."""
    return _FIELDS[field_name(name)].metadata["option"]


def field_name(name: str) -> str:
    """The field a name stands for: a field name, its flag or an alias, with dashes or underscores
    ("lr", "beta", "latent-dim", "--kl-weight"). ValueError names the known ones."""
    key = str(name).strip().lstrip("-").replace("-", "_")
    for f in fields(VAEConfig):
        opt: Option = f.metadata["option"]
        if key in (
            f.name,
            (opt.flag or f.name).replace("-", "_"),
            *(a.replace("-", "_") for a in opt.aliases),
        ):
            return f.name
    known = [f"{f.name} ({' '.join(flags(f.name))})" for f in fields(VAEConfig)]
    raise ValueError(f"Expected a config field among {', '.join(known)}. Received: {name!r}")


def parse_value(name: str, text: str):
    """The value of field `name` (or its alias) written as `text`; ValueError says what was expected."""
    return option(name).parse(text)


def flags(name: str) -> list[str]:
    """The command-line flags of a field: its flag first, then its own name and aliases if different."""
    opt = option(name)
    names = [opt.flag or name, name, *opt.aliases]
    return list(dict.fromkeys(f"--{n.replace('_', '-')}" for n in names))


def add_config_arguments(parser: argparse.ArgumentParser, *, skip=()) -> None:
    """One option per `VAEConfig` field (except `skip`), from its metadata; all default to None ("not
    given") and hold text: `config_from_args` checks them, so a bad value is a ValueError naming the
    flag, raised where the caller can report it (not argparse's exit)."""
    group = parser.add_argument_group("training config (VAEConfig fields; the defaults are the seed's)")
    for f in fields(VAEConfig):
        if f.name in skip:
            continue
        opt: Option = f.metadata["option"]
        default = "all" if f.default is None else f.default
        choices = opt.offered()
        metavar = "{" + ",".join(map(str, choices)) + "}" if choices else f.name.upper()
        group.add_argument(
            *flags(f.name), dest=f.name, default=None, metavar=metavar, help=f"{opt.help} (default {default})"
        )


def config_from_args(args: argparse.Namespace, base: VAEConfig | None = None) -> VAEConfig:
    """`base` (default VAEConfig()) with the config flags given in `args` (see `add_config_arguments`).

    ValueError "argument --flag: expected ..., received ..." for a bad value, or VAEConfig's own
    message for a value outside its range."""
    changes = {}
    for f in fields(VAEConfig):
        text = getattr(args, f.name, None)
        if text is None:
            continue
        try:
            changes[f.name] = parse_value(f.name, text)
        except ValueError as e:
            raise ValueError(f"argument {flags(f.name)[0]}: {e}") from None
    return (base or VAEConfig()).replace(**changes)


_FIELDS = {f.name: f for f in fields(VAEConfig)}
