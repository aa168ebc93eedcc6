"""`python -m model.train`: end to end in a subprocess, --weights (ours and the seed's Keras 2 .h5),
and one-line errors for bad flags."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.latent import LatentModel
from model.paths import HOME_ENV
from model.progress import read_events
from model.store import ModelStore
from model.train import main
from model.vae import VAEConfig, build_vae
from model.weights import load_weights

REPO = Path(__file__).resolve().parents[1]


def _home_with_data(session_home, path: Path) -> Path:
    """A new LATENT_EXPLORER_HOME sharing the session's converted datasets (hard links: instant,
    and safe, since the cache is only ever replaced by rename, never written in place)."""
    shutil.copytree(session_home / "data", path / "data", copy_function=os.link)
    return path


def _run_cli(args, home: Path, timeout=300):
    env = dict(
        os.environ,
        **{
            HOME_ENV: str(home),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        },
    )
    return subprocess.run(
        [sys.executable, "-m", "model.train", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def linked_home(session_home, tmp_path, monkeypatch):
    """Like conftest's `empty_home` (data, no model), with the data hard-linked instead of copied."""
    home = _home_with_data(session_home, tmp_path / "linked_home")
    monkeypatch.setenv(HOME_ENV, str(home))
    return home


@pytest.fixture(scope="module")
def trained(session_home, tmp_path_factory):
    """One real CLI run: `python -m model.train --limit 512 --epochs 1 --out DIR` in a temp home."""
    root = tmp_path_factory.mktemp("cli")
    home = _home_with_data(session_home, root / "home")
    out, progress = root / "out", root / "progress.jsonl"
    proc = _run_cli(["--limit", 512, "--epochs", 1, "--out", out, "--progress", progress], home)
    return proc, home, out, progress


def test_cli_end_to_end_writes_figures_weights_and_a_store_model(trained):
    proc, home, out, progress = trained
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # The seed's two figures, as real PNGs of the seed's sizes (12x10 and 10x10 inches at 100 dpi).
    with Image.open(out / "vae_mean.png") as im:
        assert im.format == "PNG" and im.size == (1200, 1000)
    with Image.open(out / "digits_over_latent.png") as im:
        assert im.format == "PNG" and im.size == (1000, 1000)
    assert (out / "vae.weights.h5").stat().st_size > 100_000
    assert list((out / "logs").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    # The model is in the store, current, keyed by the CLI's config.
    store = ModelStore(home / "models")
    [record] = store.list()
    assert store.current().id == record.id
    assert record.config == VAEConfig(epochs=1, limit=512)
    assert store.find(VAEConfig(epochs=1, limit=512)).id == record.id
    assert len(record.history["loss"]) == 1 and len(record.history["val_loss"]) == 1
    assert set(record.test_metrics) == {"loss", "reconstruction_loss", "kl_loss"}
    assert 0 < record.test_metrics["loss"] < 550  # below an untrained model's ~543
    assert f"saved model {record.id}" in proc.stdout and "test loss" in proc.stdout
    assert f"wrote {out / 'digits_over_latent.png'}" in proc.stdout
    # Progress events for a UI: start, batches, one epoch, done with the model id.
    events = read_events(progress)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 1 and "batch" in kinds
    assert events[0]["epochs"] == 1 and events[0]["steps"] == 4  # 512 / 128
    assert events[-1]["model_id"] == record.id
    assert not list((home / "models").glob(".tmp-*"))


def test_weights_loads_instead_of_training(trained, session_home, tmp_path, monkeypatch, capsys):
    proc, cli_home, out, _ = trained
    assert proc.returncode == 0, proc.stderr[-3000:]
    home = _home_with_data(session_home, tmp_path / "home")
    monkeypatch.setenv(HOME_ENV, str(home))
    progress = tmp_path / "progress.jsonl"
    code = main(
        [
            "--weights",
            str(out / "vae.weights.h5"),
            "--out",
            str(tmp_path / "out"),
            "--progress",
            str(progress),
            "--no-figures",
        ]
    )  # the figures: see the end-to-end test
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Epoch" not in captured.out
    assert [e["event"] for e in read_events(progress)] == ["done"]  # no start/batch/epoch: no training
    assert not (tmp_path / "out" / "logs").exists()
    store = ModelStore(home / "models")
    [record] = store.list()
    assert record.history == {} and record.extra["weights_from"] == str(out / "vae.weights.h5")
    assert "weights from vae.weights.h5" in record.label
    assert store.find(record.config) is None  # its config does not say how the weights were trained
    # Exactly the CLI-trained network.
    cli_store = ModelStore(cli_home / "models")
    trained_model = LatentModel.from_record(cli_store.record(cli_store.current().id))
    loaded_model = LatentModel.from_record(store.record(record.id))
    z = np.random.default_rng(0).normal(0, 2, (20, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded_model.decode(z), trained_model.decode(z))
    # A model directory of the store works too.
    vae = build_vae(VAEConfig(seed=9))
    vae.build((None, 28, 28, 1))
    load_weights(vae, cli_store.current().path)
    np.testing.assert_array_equal(vae.decoder(z).numpy()[..., 0], trained_model.decode(z))


def _seed_models_tf_keras():
    """The seed's encoder/decoder/vae, verbatim in Keras 2 (tf_keras), as vae_cnn_mnist.md builds them."""
    import tf_keras
    from tf_keras import backend as K
    from tf_keras.layers import Conv2D, Conv2DTranspose, Dense, Flatten, Input, Lambda, Reshape

    def sampling(args):
        z_mean, z_log_var = args
        epsilon = K.random_normal(shape=(K.shape(z_mean)[0], K.int_shape(z_mean)[1]))
        return z_mean + K.exp(0.5 * z_log_var) * epsilon

    inputs = Input(shape=(28, 28, 1), name="encoder_input")
    x, filters = inputs, 16
    for _ in range(2):
        filters *= 2
        x = Conv2D(filters=filters, kernel_size=3, activation="relu", strides=2, padding="same")(x)
    shape = K.int_shape(x)
    x = Flatten()(x)
    x = Dense(16, activation="relu")(x)
    z_mean = Dense(2, name="z_mean")(x)
    z_log_var = Dense(2, name="z_log_var")(x)
    z = Lambda(sampling, output_shape=(2,), name="z")([z_mean, z_log_var])
    encoder = tf_keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")
    latent_inputs = Input(shape=(2,), name="z_sampling")
    x = Dense(shape[1] * shape[2] * shape[3], activation="relu")(latent_inputs)
    x = Reshape((shape[1], shape[2], shape[3]))(x)
    for _ in range(2):
        x = Conv2DTranspose(filters=filters, kernel_size=3, activation="relu", strides=2, padding="same")(x)
        filters //= 2
    outputs = Conv2DTranspose(
        filters=1, kernel_size=3, activation="sigmoid", padding="same", name="decoder_output"
    )(x)
    decoder = tf_keras.Model(latent_inputs, outputs, name="decoder")
    vae = tf_keras.Model(inputs, decoder(encoder(inputs)[2]), name="vae")
    return encoder, decoder, vae


def test_seed_keras2_h5_weights_load(tmp_path):
    """The seed's `-w vae_cnn_mnist.h5` (Keras 2 `vae.save_weights`) loads into the Keras 3 model."""
    encoder, decoder, seed_vae = _seed_models_tf_keras()
    assert (encoder.count_params(), decoder.count_params()) == (69_076, 65_089)
    path = tmp_path / "vae_cnn_mnist.h5"
    seed_vae.save_weights(str(path))
    vae = build_vae(VAEConfig(seed=5))
    vae.build((None, 28, 28, 1))
    load_weights(vae, path)
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    z = np.random.default_rng(1).normal(0, 2, (8, 2)).astype(np.float32)
    want_mean, want_log_var, _ = (t.numpy() for t in encoder(x))
    got_mean, got_log_var, _ = (t.numpy() for t in vae.encoder(x))
    np.testing.assert_allclose(got_mean, want_mean, atol=1e-6)
    np.testing.assert_allclose(got_log_var, want_log_var, atol=1e-6)
    np.testing.assert_allclose(vae.decoder(z).numpy(), decoder(z).numpy(), atol=1e-6)
    # The same file into a model with another latent size: a clear error, not a half-loaded model.
    from model.train import TrainingError

    other = build_vae(VAEConfig(latent_dim=3))
    other.build((None, 28, 28, 1))
    with pytest.raises(TrainingError, match=r"do not fit this model .*same --latent-dim"):
        load_weights(other, path)


# ----------------------------------------------------------------------------- bad input


def _garbage(tmp_path, name="corrupt.h5"):
    path = tmp_path / name
    path.write_bytes(b"this is not HDF5" * 64)
    return path


BAD_FLAGS = [
    (["--epochs", "0"], "argument --epochs: expected a positive integer, received '0'"),
    (["--epochs", "abc"], "argument --epochs: expected a positive integer, received 'abc'"),
    (["--batch-size", "-3"], "argument --batch-size: expected a positive integer, received '-3'"),
    (["--lr", "2"], "argument --lr: expected a number in (0, 1), received '2'"),
    (["--dataset", "emnist"], "argument --dataset: invalid choice: 'emnist'"),
    (["--weights", "{tmp}/missing.h5"], "Weights file not found: {tmp}/missing.h5"),
    (["--weights", "{tmp}/corrupt.h5"], "it is not a valid HDF5 weights file"),
    (["--weights", "{tmp}/notes.txt"], "is not an HDF5 weights file (expected a name ending in .weights.h5"),
    (["--weights", "{tmp}"], "is a directory without encoder.keras and decoder.keras"),
    (["--npz", "{tmp}/corrupt.h5"], "is not a readable .npz file"),
    (["--latent-dim", "1"], "Expected --latent-dim of at least 2 for the figures"),
    (["--seed", "-1"], "Expected seed to be an integer in [0, 2**32)"),
    (["--beta", "-1"], "argument --beta: expected a finite number >= 0, received '-1'"),
    (["--beta", "inf"], "argument --beta: expected a finite number >= 0, received 'inf'"),
    (["--mse", "--loss", "bce"], "Expected --mse or --loss bce, not both"),
]


@pytest.mark.parametrize("argv, expected", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flags_give_one_line_error(argv, expected, tmp_path, linked_home, capsys):
    _garbage(tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    progress = tmp_path / "progress.jsonl"
    argv = [a.format(tmp=tmp_path) for a in argv]
    code = main([*argv, "--out", str(tmp_path / "out"), "--progress", str(progress)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected.format(tmp=tmp_path) in lines[0]
    assert "Traceback" not in captured.err + captured.out
    [event] = read_events(progress)  # a UI following --progress learns why it stopped
    assert event["event"] == "error" and expected.format(tmp=tmp_path) in event["message"]
    assert not (linked_home / "models").exists() or not list((linked_home / "models").iterdir())


def test_bad_flags_in_a_real_process(tmp_path):
    """The real entry point: exit status 2, one line on stderr, no traceback, and no TensorFlow
    start-up needed to say so (the checks run before it loads)."""
    corrupt = _garbage(tmp_path)
    for argv, expected in [
        (["--epochs", "0"], "error: argument --epochs: expected a positive integer"),
        (["--weights", corrupt], f"error: Could not read {corrupt}: it is not a valid HDF5"),
    ]:
        proc = _run_cli([*argv, "--out", tmp_path / "out"], tmp_path / "home", timeout=120)
        assert proc.returncode == 2
        assert proc.stderr.strip().startswith(expected) and len(proc.stderr.strip().splitlines()) == 1, (
            proc.stderr
        )
        assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("damage", ["truncated", "other_latent_dim"])
def test_weights_that_do_not_load_give_one_line_error(damage, trained, tmp_path, linked_home, capsys):
    proc, _, out, _ = trained
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights = tmp_path / "vae.weights.h5"
    argv = ["--weights", str(weights), "--out", str(tmp_path / "out")]
    if damage == "truncated":  # still starts with the HDF5 signature, so Keras has to find out
        weights.write_bytes((out / "vae.weights.h5").read_bytes()[:20_000])
        expected = "it is not a valid HDF5 weights file (corrupt or truncated"
    else:
        shutil.copy(out / "vae.weights.h5", weights)
        argv += ["--latent-dim", "3"]
        expected = "do not fit this model"
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], captured.err
    assert "Traceback" not in captured.err
    assert not (linked_home / "models").exists() or not list((linked_home / "models").iterdir())


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--mse", "--weights", "--limit", "--out", "--progress"):
        assert flag in out


def test_config_from_args_reads_the_config_flags_presets_and_shortcuts():
    from model.train import config_from_args, parser

    def config(*argv):
        return config_from_args(parser().parse_args(list(argv)))

    assert config() == VAEConfig()
    assert config("--beta", "2", "--epochs", "1", "--limit", "512") == VAEConfig(
        kl_weight=2.0, epochs=1, limit=512
    )
    assert config("--fast", "--mse", "--kl-weight", "0.5") == VAEConfig.fast(loss="mse", kl_weight=0.5)
    assert config("--fast", "--lr", "0.0005") == VAEConfig.fast(learning_rate=5e-4)


def test_beta_trains_recon_plus_beta_kl_and_is_saved_with_the_model(linked_home, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["--beta", "4", "--limit", "256", "--epochs", "1", "--out", str(out), "--no-files"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    [record] = ModelStore(linked_home / "models").list()
    assert record.config == VAEConfig(kl_weight=4.0, limit=256, epochs=1)
    assert "β 4" in record.label
    assert record.id.startswith(VAEConfig(kl_weight=4.0, limit=256, epochs=1).slug())
    h = record.history  # the ELBO's terms as always, and the objective recon + β·KL beside them
    assert set(h) >= {"loss", "reconstruction_loss", "kl_loss", "objective", "val_objective"}
    assert h["objective"][0] == pytest.approx(h["reconstruction_loss"][0] + 4 * h["kl_loss"][0], rel=1e-4)
    assert h["loss"][0] == pytest.approx(h["reconstruction_loss"][0] + h["kl_loss"][0], rel=1e-4)
    assert set(record.test_metrics) == {"loss", "reconstruction_loss", "kl_loss"}
    assert not out.exists()


def test_npz_models_get_their_own_dataset_name(tmp_path, linked_home, capsys):
    """A model trained on a user .npz must never pass for the MNIST model of the same config."""
    rng = np.random.default_rng(0)
    npz = tmp_path / "digits.npz"
    np.savez(
        npz,
        x_train=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
        y_train=np.arange(64) % 3,
        x_test=rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
        y_test=np.arange(32) % 3,
    )
    code = main(
        [
            "--npz",
            str(npz),
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path / "out"),
            "--no-figures",
        ]
    )
    assert code == 0, capsys.readouterr().err
    [record] = ModelStore(linked_home / "models").list()
    assert record.config.dataset.startswith("npz-digits-") and record.config.dataset != "mnist"
    assert record.extra["npz"] == str(npz.resolve())
    assert ModelStore(linked_home / "models").find(VAEConfig(epochs=1, batch_size=32)) is None
    meta = json.loads((record.path / "meta.json").read_text())
    assert meta["config"]["dataset"] == record.config.dataset


def test_scatter_figure_follows_the_number_of_classes(tmp_path):
    from model.figures import latent_scatter

    z = np.random.default_rng(0).normal(size=(30, 2))
    path = latent_scatter(z, np.arange(30) % 3, tmp_path / "three.png", class_names=("a", "b", "c"))
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (1200, 1000)


def test_a_full_disk_while_writing_the_weights_file_gives_a_message_not_a_crash(session_home, tmp_path):
    """A full disk after the save crashed the trainer with SIGSEGV (rc -11) in h5py, leaving a
    partial vae.weights.h5. Simulated portably: every file is limited to 400 KB (RLIMIT_FSIZE; the
    signal ignored, so a write past it fails with EFBIG as a full disk fails with ENOSPC). The model
    files (~300 KB each) fit; the weights file (~580 KB) does not."""
    import resource
    import signal

    home = _home_with_data(session_home, tmp_path / "home")
    out = tmp_path / "out"

    def limit_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))

    env = dict(os.environ, **{HOME_ENV: str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.train",
            "--limit",
            "256",
            "--epochs",
            "1",
            "--no-figures",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_files,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert (
        f"cannot write {out / 'vae.weights.h5'}: the disk is full" in line and "Fix: free disk space" in line
    )
    [record] = ModelStore(home / "models").list()
    assert f"The model {record.id} was saved before that" in line
    assert not (out / "vae.weights.h5").exists() and not list(
        out.glob(".vae.weights.h5.*")
    )  # no partial file


def test_the_weights_file_is_built_in_memory_and_round_trips(trained, tmp_path):
    from model.vae import build_vae
    from model.weights import weights_bytes

    _, home, out, _ = trained
    vae = build_vae(VAEConfig())
    vae.build((None, 28, 28, 1))
    path = tmp_path / "copy.weights.h5"
    path.write_bytes(weights_bytes(vae))  # what save_weights writes atomically
    other = build_vae(VAEConfig(seed=5))
    other.build((None, 28, 28, 1))
    other.load_weights(path)
    for a, b in zip(vae.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (out / "vae.weights.h5").is_file()  # the command line still writes it
