"""The seed's convolutional VAE, in Keras 3.

encoder: Conv2D(32,3,s2,relu) -> Conv2D(64,3,s2,relu) -> Flatten -> Dense(16,relu) -> z_mean, z_log_var
         -> Sampling -> z                                               (69,076 parameters for latent 2)
decoder: Dense(7*7*64,relu) -> Reshape -> Conv2DTranspose(64,3,s2,relu) -> Conv2DTranspose(32,3,s2,relu)
         -> Conv2DTranspose(1,3,sigmoid)                                  (65,089 parameters for latent 2)
loss:    784 * mean pixel BCE (or MSE) + KL(q(z|x) || N(0, I)), averaged over the batch, as in the seed
         (the negative ELBO, reported as `loss`). Training minimises the objective recon + β·KL
         (β = config.kl_weight; 1 = the seed), reported as `objective` when β != 1.
"""

from __future__ import annotations

import math

from model.config import IMAGE_SHAPE, LOSSES, PRECISIONS, VAEConfig  # noqa: F401  (re-exported)

# TensorFlow (the training step, VAE.train_step, is its backend's) without its start-up noise on stderr
from model.tflog import keras, tf

layers, ops = keras.layers, keras.ops


@keras.saving.register_keras_serializable(package="latent_explorer")
class Sampling(layers.Layer):
    """Draws z = z_mean + exp(z_log_var / 2) * eps with eps ~ N(0, I) (the reparameterisation trick).

    Args:
        seed: optional int seed of the layer's `keras.random.SeedGenerator`.

    Call arguments:
        inputs: a pair `(z_mean, z_log_var)` of tensors of the same shape `(N, latent_dim)`.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps  # (N, latent_dim)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _policy(config: VAEConfig):
    return keras.DTypePolicy(config.precision)


def build_encoder(config: VAEConfig = VAEConfig()) -> keras.Model:
    """x (N, 28, 28, 1) in [0, 1] -> [z_mean, z_log_var, z], each (N, latent_dim)."""
    dt = _policy(config)
    inputs = keras.Input(shape=IMAGE_SHAPE, name="encoder_input")
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", dtype=dt)(inputs)  # (N,14,14,32)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", dtype=dt)(x)  # (N,7,7,64)
    x = layers.Flatten(dtype=dt)(x)  # (N, 3136)
    x = layers.Dense(16, activation="relu", dtype=dt)(x)  # (N, 16)
    z_mean = layers.Dense(config.latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var", dtype="float32")(x)
    z = Sampling(seed=config.seed, name="z")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(config: VAEConfig = VAEConfig()) -> keras.Model:
    """z (N, latent_dim) -> x_hat (N, 28, 28, 1) in (0, 1)."""
    dt = _policy(config)
    latent_inputs = keras.Input(shape=(config.latent_dim,), name="z_sampling")
    x = layers.Dense(7 * 7 * 64, activation="relu", dtype=dt)(latent_inputs)  # (N, 3136)
    x = layers.Reshape((7, 7, 64), dtype=dt)(x)  # (N, 7, 7, 64)
    x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu", dtype=dt)(
        x
    )  # (N,14,14,64)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu", dtype=dt)(
        x
    )  # (N,28,28,32)
    outputs = layers.Conv2DTranspose(
        1, 3, padding="same", activation="sigmoid", name="decoder_output", dtype="float32"
    )(x)  # (N, 28, 28, 1)
    return keras.Model(latent_inputs, outputs, name="decoder")


def vae_losses(x, x_hat, z_mean, z_log_var, loss: str = "bce"):
    """Per-example (reconstruction, kl), each of shape (N,), exactly the seed's terms.

    reconstruction = 784 * mean over pixels of BCE(x, x_hat) (or squared error), i.e. a per-image sum.
    kl = -0.5 * sum(1 + log_var - mean^2 - exp(log_var)).
    """
    x = ops.reshape(ops.cast(x, "float32"), (ops.shape(x)[0], -1))  # (N, 784)
    x_hat = ops.reshape(ops.cast(x_hat, "float32"), (ops.shape(x_hat)[0], -1))  # (N, 784)
    pixels = 784.0
    if loss == "bce":
        recon = pixels * ops.mean(ops.binary_crossentropy(x, x_hat), axis=-1)
    elif loss == "mse":
        recon = pixels * ops.mean(ops.square(x - x_hat), axis=-1)
    else:
        raise ValueError(f"Expected loss in {LOSSES}. Received: loss={loss!r}")
    z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
    kl = -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
    return recon, kl


@keras.saving.register_keras_serializable(package="latent_explorer")
class VAE(keras.Model):
    """Encoder + decoder trained on recon + β·KL (β = 1: the negative ELBO, as in the seed). Shares its
    weights with both sub-models.

    The metrics stay the ELBO's terms whatever β: `loss` (recon + KL), `reconstruction_loss` and
    `kl_loss`; with β != 1 the training objective recon + β·KL is reported as `objective`.

    Args:
        encoder: model x -> [z_mean, z_log_var, z].
        decoder: model z -> x_hat.
        loss: "bce" or "mse", the reconstruction term.
        kl_weight: β, the weight of the KL term in the training objective (finite, >= 0).
    """

    def __init__(self, encoder, decoder, loss="bce", kl_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"Expected loss in {LOSSES}. Received: loss={loss!r}")
        if (
            isinstance(kl_weight, bool)
            or not isinstance(kl_weight, (int, float))
            or not 0 <= kl_weight < math.inf
        ):
            raise ValueError(
                f"Expected kl_weight to be a finite number >= 0. Received: kl_weight={kl_weight!r}"
            )
        self.encoder = encoder
        self.decoder = decoder
        self.loss_kind = loss
        self.kl_weight = float(kl_weight)
        self.chains = (
            1  # batch slices run as parallel chains in train/test steps (a speed setting, not saved)
        )
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.objective_tracker = keras.metrics.Mean(name="objective") if self.kl_weight != 1.0 else None

    @property
    def metrics(self):
        trackers = [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]
        return trackers if self.objective_tracker is None else [*trackers, self.objective_tracker]

    def call(self, x, training=False):
        _, _, z = self.encoder(x, training=training)
        return self.decoder(z, training=training)

    def loss_terms(self, x, training):
        """Batch means of (total, reconstruction, KL).

        With `self.chains` = K > 1 the batch is cut into K slices that go through the network as K
        independent chains of ops, which TensorFlow runs at once on its inter-op threads (one core each
        when intra-op threads = 1, see `model.train.parallel_chains`). The loss is the same batch mean
        (sums over the slices / batch size), so the gradients are the whole batch's.
        """

        def sums(xi):
            z_mean, z_log_var, z = self.encoder(xi, training=training)
            x_hat = self.decoder(z, training=training)
            recon, kl = vae_losses(xi, x_hat, z_mean, z_log_var, self.loss_kind)
            return ops.sum(recon), ops.sum(kl)

        def sliced():
            parts = [sums(x[n * i // k : n * (i + 1) // k]) for i in range(k)]
            return sum(p[0] for p in parts), sum(p[1] for p in parts)

        k = self.chains
        n = ops.shape(x)[0]
        if k == 1:
            recon, kl = sums(x)
        elif isinstance(n, int):  # static batch size (eager calls)
            recon, kl = sliced() if n >= k else sums(x)
        else:  # a batch smaller than k (an epoch's last) would leave empty slices, which convolutions reject
            recon, kl = ops.cond(n >= k, sliced, lambda: sums(x))
        n = ops.cast(n, "float32")
        recon, kl = recon / n, kl / n
        return recon + kl, recon, kl

    def objective(self, total, recon, kl):
        """What training minimises: recon + β·KL (with β = 1, the negative ELBO `total` itself)."""
        return total if self.kl_weight == 1.0 else recon + self.kl_weight * kl

    def _update(self, x, total, recon, kl):
        # Weighted by the batch's size, so an epoch's figure is the mean over its images (a short last
        # batch counts for its images, not as much as a full one).
        n = ops.cast(ops.shape(x)[0], "float32")
        self.total_loss_tracker.update_state(total, sample_weight=n)
        self.reconstruction_loss_tracker.update_state(recon, sample_weight=n)
        self.kl_loss_tracker.update_state(kl, sample_weight=n)
        if self.objective_tracker is not None:
            self.objective_tracker.update_state(self.objective(total, recon, kl), sample_weight=n)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            total, recon, kl = self.loss_terms(x, training=True)
            scaled = self.optimizer.scale_loss(self.objective(total, recon, kl))
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._update(x, total, recon, kl)

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self._update(x, *self.loss_terms(x, training=False))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "loss": self.loss_kind,
            "kl_weight": self.kl_weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def build_vae(
    config: VAEConfig = VAEConfig(), *, steps_per_execution: int = 1, steps_per_epoch: int | None = None
) -> VAE:
    """Encoder, decoder and the VAE around them, compiled with RMSprop as in the seed.

    `steps_per_execution` > 1 runs that many training steps per call of the compiled function (the
    same steps, fewer Python round trips); Keras callbacks then see every that-many batches.
    `steps_per_epoch` is needed by `config.lr_schedule == "cosine"` (the decay spans all the run's steps).
    """
    keras.utils.set_random_seed(config.seed)
    vae = VAE(
        build_encoder(config), build_decoder(config), loss=config.loss, kl_weight=config.kl_weight, name="vae"
    )
    lr = config.learning_rate
    if config.lr_schedule == "cosine":
        if not steps_per_epoch:
            raise ValueError("Expected steps_per_epoch with lr_schedule='cosine'. Received: None")
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=config.epochs * steps_per_epoch)
    vae.compile(optimizer=keras.optimizers.RMSprop(learning_rate=lr), steps_per_execution=steps_per_execution)
    return vae
