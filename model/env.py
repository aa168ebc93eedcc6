"""The LATENT_EXPLORER_* on/off switches, read one way: "1", "true", "yes", "on" turn a switch on,
"0", "false", "no", "off" turn it off (any case, spaces ignored); unset, empty or anything else keeps the
switch's default. README ("Configuration") lists every switch."""

from __future__ import annotations

import os

ON = frozenset({"1", "true", "yes", "on"})
OFF = frozenset({"0", "false", "no", "off"})


def env_flag(name: str, default: bool) -> bool:
    """The switch `name` from the environment; `default` when it is unset or not one of ON / OFF."""
    value = os.environ.get(name, "").strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    return default


def env_int(name: str, default: int, lowest: int = 1) -> int:
    """The whole number `name` from the environment (at least `lowest`); `default` when it is unset or
    not a whole number, so a typo never stops the app."""
    value = os.environ.get(name, "").strip().replace("_", "").replace(",", "")
    try:
        return max(lowest, int(value))
    except ValueError:
        return default
