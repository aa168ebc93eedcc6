"""LatentModel: a trained encoder/decoder pair as a numpy facade (images and latent vectors in, arrays out).

Every call is one batched, compiled forward pass (a `tf.function` with a fixed input signature), never
`Model.predict` per vector, whose per-call overhead dwarfs a small decoder (bench/inference_speed.py).
Importing this module loads Keras and TensorFlow; `model.store` reads records without it: load one with
`LatentModel.from_record(store.record(model_id))` (this module never imports the store: no cycle).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.config import VAEConfig
from model.data import to_float
from model.errors import StoreError
from model.paths import shown
from model.tflog import keras, tf  # TensorFlow without its start-up noise on stderr (model/tflog.py)
from model.vae import vae_losses  # importing model.vae also registers Sampling and VAE for loading

if TYPE_CHECKING:
    from model.store import ModelRecord

CHUNK = 2048  # rows per forward pass when encoding/decoding large arrays


def load_keras(path: Path, what: str, model_id: str):
    """Load one `.keras` file of a saved model with safe_mode on; StoreError (with the fix) if it fails.

    `what` ("encoder"/"decoder") and `model_id` only word the message."""
    fix = f"Fix: delete {shown(path.parent)} (or pick another model) and retrain."
    if not path.exists():
        raise StoreError(f"Model {model_id!r} is missing {path.name}. {fix}")
    if not zipfile.is_zipfile(path):
        raise StoreError(f"{shown(path)} is not a valid .keras file (corrupt or truncated). {fix}")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # keras raises ValueError/TypeError/OSError/KeyError for bad archives
        raise StoreError(
            f"Could not load the {what} of model {model_id!r} from {shown(path)}: "
            f"{type(e).__name__}: {str(e).splitlines()[0][:300]}. {fix}"
        ) from None


def _shapes(model) -> tuple[list[tuple], list[tuple]]:
    """(input shapes, output shapes) of a Keras model, without the batch dimension."""
    return ([tuple(t.shape[1:]) for t in model.inputs], [tuple(t.shape[1:]) for t in model.outputs])


def _describe(model) -> str:
    ins, outs = _shapes(model)
    out = f"output {outs[0]}" if len(outs) == 1 else f"{len(outs)} outputs"
    return f"input {ins[0] if len(ins) == 1 else ins}, {out}"


def _looks_like_decoder(model) -> bool:
    ins, outs = _shapes(model)
    return len(ins) == 1 and len(ins[0]) == 1 and outs == [(28, 28, 1)]


def _looks_like_encoder(model) -> bool:
    ins, outs = _shapes(model)
    return ins == [(28, 28, 1)] and len(outs) == 3


def _check_swapped(encoder, decoder, record) -> None:
    """StoreError naming the mix-up when the encoder is a decoder or the decoder an encoder."""
    enc_wrong, dec_wrong = _looks_like_decoder(encoder), _looks_like_encoder(decoder)
    if not (enc_wrong or dec_wrong):
        return
    where = f" in {shown(record.path)}" if record is not None else ""
    if enc_wrong and dec_wrong:
        raise StoreError(
            f"Incompatible encoder/decoder: encoder.keras and decoder.keras are swapped: encoder.keras "
            f"looks like a decoder ({_describe(encoder)}) and decoder.keras like an encoder "
            f"({_describe(decoder)}). "
            f"Fix: swap the two files back{where} (rename each to the other's name), or retrain the model."
        )
    name, kind, model, other = (
        ("encoder.keras", "a decoder", encoder, "decoder.keras")
        if enc_wrong
        else ("decoder.keras", "an encoder", decoder, "encoder.keras")
    )
    raise StoreError(
        f"Incompatible encoder/decoder: {name} looks like {kind} ({_describe(model)}), so both files hold "
        f"the same half of a model. Fix: put the right file back as {name}{where} (a copy of {other}?), "
        "or retrain the model."
    )


class LatentModel:
    """A trained encoder/decoder pair with numpy in/out.

    Args:
        encoder: Keras model x (N, 28, 28, 1) -> [z_mean, z_log_var, z].
        decoder: Keras model z (N, latent_dim) -> x_hat (N, 28, 28, 1).
        config: the VAEConfig it was trained with.
        record: its ModelRecord when it came from the store.
    """

    def __init__(self, encoder, decoder, config: VAEConfig, record: ModelRecord | None = None):
        self.encoder, self.decoder, self.config, self.record = encoder, decoder, config, record
        _check_swapped(encoder, decoder, record)
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        enc_in, enc_out = tuple(encoder.inputs[0].shape[1:]), encoder.outputs
        if enc_in != (28, 28, 1) or len(enc_out) != 3 or int(enc_out[0].shape[-1]) != self.latent_dim:
            raise StoreError(
                f"Incompatible encoder/decoder: expected an encoder (28, 28, 1) -> 3 outputs of size "
                f"{self.latent_dim} and a decoder from {self.latent_dim}; received encoder input {enc_in} "
                f"and outputs {[tuple(o.shape) for o in enc_out]}. Fix: retrain the model."
            )
        if self.latent_dim != config.latent_dim:
            raise StoreError(
                f"Model files have latent size {self.latent_dim} but meta.json says "
                f"{config.latent_dim}. Fix: delete the model and retrain."
            )
        self._encode = tf.function(
            lambda x: tuple(encoder(x, training=False)[:2]),
            input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)],
            reduce_retracing=True,
        )
        self._decode = tf.function(
            lambda z: decoder(z, training=False),
            input_signature=[tf.TensorSpec((None, self.latent_dim), tf.float32)],
            reduce_retracing=True,
        )

    @classmethod
    def from_record(cls, record: ModelRecord) -> LatentModel:
        """Load a store record's encoder.keras and decoder.keras (safe_mode); StoreError with the fix."""
        encoder = load_keras(record.path / "encoder.keras", "encoder", record.id)
        decoder = load_keras(record.path / "decoder.keras", "decoder", record.id)
        return cls(encoder, decoder, record.config, record)

    @property
    def id(self) -> str | None:
        return self.record.id if self.record else None

    # ------------------------------------------------------------------ core
    def encode(self, images) -> tuple[np.ndarray, np.ndarray]:
        """images (N, 28, 28[, 1]) uint8 or float in [0,1] -> (z_mean, z_log_var), each (N, latent_dim)."""
        x = to_float(images)
        if len(x) == 0:
            return (np.zeros((0, self.latent_dim), np.float32),) * 2
        means, log_vars = [], []
        for i in range(0, len(x), CHUNK):
            m, lv = self._encode(x[i : i + CHUNK])
            means.append(m.numpy())
            log_vars.append(lv.numpy())
        return np.concatenate(means), np.concatenate(log_vars)

    def decode(self, z) -> np.ndarray:
        """z (N, latent_dim) or (latent_dim,) -> images (N, 28, 28) float32 in [0, 1]."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Expected z of shape (N, {self.latent_dim}). Received: z.shape={z.shape}")
        if not np.all(np.isfinite(z)):
            raise ValueError("Expected finite latent values. Received: z contains NaN or inf")
        out = [self._decode(z[i : i + CHUNK]).numpy() for i in range(0, max(len(z), 1), CHUNK)]
        return np.concatenate(out)[..., 0] if out else np.zeros((0, 28, 28), np.float32)

    def decoder_weights(self) -> list[dict]:
        """The decoder as plain data, for re-building it elsewhere (the browser's TensorFlow.js pad).

        One dict per layer after the input, in order: `kind` ("dense", "reshape" or "conv2d_transpose"),
        its config (`units` / `shape` / `filters`, `kernel_size`, `strides`, `padding`), `activation`,
        and `weights`: float32 numpy arrays in Keras' own layout (dense kernel (in, out); transposed
        convolution kernel (kh, kw, out, in)), then the bias. Raises ValueError for any other layer.
        """
        out = []
        for layer in self.decoder.layers[1:]:
            kind = type(layer).__name__
            cfg = layer.get_config()
            weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
            if kind == "Dense":
                spec = {"kind": "dense", "units": int(cfg["units"])}
            elif kind == "Reshape":
                spec = {"kind": "reshape", "shape": [int(v) for v in cfg["target_shape"]]}
            elif kind == "Conv2DTranspose":
                if cfg.get("data_format", "channels_last") != "channels_last" or tuple(
                    cfg.get("dilation_rate", (1, 1))
                ) != (1, 1):
                    raise ValueError(
                        f"Expected a channels_last, undilated Conv2DTranspose. Received: "
                        f"layer {layer.name!r} with config {cfg}"
                    )
                spec = {
                    "kind": "conv2d_transpose",
                    "filters": int(cfg["filters"]),
                    "kernel_size": [int(v) for v in cfg["kernel_size"]],
                    "strides": [int(v) for v in cfg["strides"]],
                    "padding": str(cfg["padding"]),
                }
            else:
                raise ValueError(
                    f"Expected decoder layers Dense, Reshape or Conv2DTranspose. Received: "
                    f"layer {layer.name!r} of type {kind}"
                )
            if kind != "Reshape":
                spec["activation"] = str(cfg.get("activation", "linear"))
                if not cfg.get("use_bias", True):
                    weights.append(np.zeros(weights[0].shape[-1 if kind == "Dense" else -2], np.float32))
            spec["weights"] = weights
            out.append(spec)
        return out

    def warm_up(self) -> None:
        """Trace the compiled encoder and decoder now (one blank image through both), so that the first
        user-facing call (a scatter click's reconstruction, the first decoded digit) does not pay for
        it: tracing the decoder alone takes about a second, a warm call a few milliseconds. The input
        signatures leave the batch size open, so no other batch size traces again."""
        self.reconstruct(np.zeros((1, 28, 28), np.float32))

    def reconstruct(self, images) -> np.ndarray:
        """Decode each image's posterior mean: (N, 28, 28) float32."""
        return self.decode(self.encode(images)[0])

    # ------------------------------------------------------------------ views
    def manifold(
        self, n: int = 30, span: float = 4.0, dims: tuple[int, int] = (0, 1), base=None
    ) -> np.ndarray:
        """The decoded n x n grid over [-span, span]^2 in latent dims `dims` (others from `base`,
        default 0), in one batched call. Row 0 is z[dims[1]] = +span, as in the seed's figure.
        Returns (n*28, n*28) float32."""
        if int(n) != n or n < 1 or not span > 0:
            raise ValueError(f"Expected an integer n >= 1 and span > 0. Received: n={n}, span={span}")
        n = int(n)
        d0, d1 = (int(d) for d in dims)
        if d0 == d1 or not (0 <= d0 < self.latent_dim and 0 <= d1 < self.latent_dim):
            raise ValueError(
                f"Expected two different latent dims in [0, {self.latent_dim}). Received: dims={tuple(dims)}"
            )
        if base is not None and np.shape(base) != (self.latent_dim,):
            raise ValueError(
                f"Expected base of shape ({self.latent_dim},). Received: base.shape={np.shape(base)}"
            )
        grid_x = np.linspace(-span, span, n, dtype=np.float32)
        grid_y = grid_x[::-1]
        z = np.tile(
            np.zeros(self.latent_dim, np.float32) if base is None else np.asarray(base, np.float32),
            (n * n, 1),
        )
        yy, xx = np.meshgrid(grid_y, grid_x, indexing="ij")  # (n, n): row i has y = grid_y[i]
        z[:, d0], z[:, d1] = xx.ravel(), yy.ravel()
        digits = self.decode(z).reshape(n, n, 28, 28)
        return digits.transpose(0, 2, 1, 3).reshape(n * 28, n * 28)

    def sample_prior(self, n: int = 10, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n draws z ~ N(0, I) and their decodings: (z (n, d), images (n, 28, 28))."""
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim)).astype(np.float32)
        return z, self.decode(z)

    def interpolate(self, z0, z1, steps: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Straight line from z0 to z1 in `steps` points: (z (steps, d), images (steps, 28, 28))."""
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        z = (1 - t) * np.asarray(z0, np.float32)[None] + t * np.asarray(z1, np.float32)[None]
        return z, self.decode(z)

    def loss_terms(self, images, z_mean=None, z_log_var=None, x_hat=None) -> tuple[np.ndarray, np.ndarray]:
        """The loss's own per-image terms (reconstruction, KL), each (N,) float32, at the posterior mean
        (deterministic, unlike `evaluate`'s sampled z). Pass z_mean/z_log_var to skip the encoder, and
        x_hat (the decoded means, (N, 28, 28)) to skip the decoder."""
        x = to_float(images)
        if z_mean is None or z_log_var is None:
            z_mean, z_log_var = self.encode(x)
        if x_hat is None:
            x_hat = self.decode(z_mean) if len(x) else x
        recon, kl = vae_losses(x, x_hat, z_mean, z_log_var, self.config.loss)
        return tuple(keras.ops.convert_to_numpy(t).astype(np.float32).reshape(-1) for t in (recon, kl))

    def evaluate(self, images, batch_size: int = 1000) -> dict[str, float]:
        """Mean test loss terms on `images`, as the training reports them (z sampled once each)."""
        x = to_float(images)
        totals = {"loss": 0.0, "reconstruction_loss": 0.0, "kl_loss": 0.0}
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            z_mean, z_log_var, z = self.encoder(xb, training=False)
            recon, kl = vae_losses(xb, self.decoder(z, training=False), z_mean, z_log_var, self.config.loss)
            recon, kl = keras.ops.convert_to_numpy(recon), keras.ops.convert_to_numpy(kl)
            totals["reconstruction_loss"] += float(recon.sum())
            totals["kl_loss"] += float(kl.sum())
        totals = {k: v / max(len(x), 1) for k, v in totals.items()}
        totals["loss"] = totals["reconstruction_loss"] + totals["kl_loss"]
        return totals
