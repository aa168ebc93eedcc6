"""model.env.env_flag: every LATENT_EXPLORER_* on/off switch reads the same words the same way."""

import pytest

from model.env import env_flag

NAME = "LATENT_EXPLORER_TEST_SWITCH"


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_on_words_turn_a_switch_on_whatever_its_default(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, False) is True and env_flag(NAME, True) is True


@pytest.mark.parametrize("value", ["0", "false", "No", " OFF"])
def test_off_words_turn_a_switch_off_whatever_its_default(monkeypatch, value):
    monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, True) is False and env_flag(NAME, False) is False


@pytest.mark.parametrize("value", [None, "", "  ", "maybe"])
def test_unset_empty_or_unknown_keeps_the_default(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(NAME, raising=False)
    else:
        monkeypatch.setenv(NAME, value)
    assert env_flag(NAME, True) is True and env_flag(NAME, False) is False


def test_the_serving_tweaks_switch_reads_false_like_the_others(monkeypatch):
    from explorer import serving

    monkeypatch.setenv(serving.ENV, "false")  # was read as on: only "0" turned it off
    assert not serving.enabled()


def test_whole_number_switches(monkeypatch):
    from model.env import env_int

    cases = (("50000", 50000), ("50,000", 50000), ("50_000", 50000), (" 7 ", 1000), ("", 5), ("x", 5))
    for raw, want in cases:
        monkeypatch.setenv("LATENT_EXPLORER_TEST_INT", raw)
        assert env_int("LATENT_EXPLORER_TEST_INT", 5, lowest=1000) == want, raw
    monkeypatch.delenv("LATENT_EXPLORER_TEST_INT")
    assert env_int("LATENT_EXPLORER_TEST_INT", 5) == 5
