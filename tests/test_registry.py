"""The registry: lookups name the unknown value and the choices."""

from __future__ import annotations

import pytest

from tvr import registry


def test_register_and_get():
    @registry.register("objective", "_test_only_objective")
    class Dummy:
        pass

    assert registry.get("objective", "_test_only_objective") is Dummy


def test_unknown_name_lists_choices():
    with pytest.raises(registry.RegistryError) as exc:
        registry.get("head", "no-such-head")
    msg = str(exc.value)
    assert "no-such-head" in msg
    assert "meanp" in msg and "seqtransf" in msg


def test_unknown_kind():
    with pytest.raises(registry.RegistryError, match="unknown registry kind"):
        registry.get("optimizer", "adam")


def test_double_registration_refused():
    @registry.register("source", "_test_only_source")
    def a():
        return 1

    with pytest.raises(registry.RegistryError, match="already registered"):

        @registry.register("source", "_test_only_source")
        def b():
            return 2
