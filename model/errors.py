"""The error types of model/, in one module every other one can import without cycles or Keras.

Each carries a message for the user that names the problem and the fix; the page shows it as is.
They are re-exported from the modules that raise them (e.g. `from model.store import StoreError`).
"""


class StoreError(RuntimeError):
    """A model is missing, corrupt or incompatible; the message says how to fix it."""


class ModelNotFoundError(StoreError):
    """The store has no model of that id (never saved, or deleted since)."""


class DataError(RuntimeError):
    """A dataset is missing or malformed; the message says how to fix it."""


class ImageError(ValueError):
    """The picture cannot be used as a digit; the message says why and what to do."""


class TrainingError(RuntimeError):
    """Training failed (NaN loss, bad weights file...); the message says what to do."""


class JobError(RuntimeError):
    """A job cannot be started or found; the message says how to fix it."""
