"""Keras 3 backend of latent explorer: data, the VAE, training and the on-disk model store.

Importing this package has no side effects and never imports streamlit. TensorFlow/Keras are imported
lazily by the submodules that need them, so `model.data` and `model.store` metadata stay cheap.
"""
