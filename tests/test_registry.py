"""The registry: lookups name the unknown value and the choices."""

from __future__ import annotations

import pytest

from tvr import registry


@pytest.fixture
def scratch_names():
    """Remove the entries a test registers, so other tests see the built-ins only."""
    added: list[tuple[str, str]] = []
    yield added
    for kind, name in added:
        registry._ENTRIES[kind].pop(name, None)


def test_register_and_get(scratch_names):
    scratch_names.append(("objective", "_test_only_objective"))

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


def test_double_registration_refused(scratch_names):
    scratch_names.append(("source", "_test_only_source"))

    @registry.register("source", "_test_only_source")
    def a():
        return 1

    with pytest.raises(registry.RegistryError, match="already registered"):

        @registry.register("source", "_test_only_source")
        def b():
            return 2
