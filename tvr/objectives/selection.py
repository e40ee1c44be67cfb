"""Which objectives a config trains with, from the declarations on each objective class.

One rule, used by :func:`tvr.objectives.build_objectives` (on the dataclass config) and by
:func:`analysis.cards.objectives_of` (on a run's raw ``config.json``), so the two cannot drift:

1. every registered objective whose ``section`` has its ``switch`` on (or that has no switch)
   and whose ``owner_head`` (if any) is ``model.head`` is selected;
2. one that ``replaces`` another drops it;
3. they are ordered by ``order`` (then name).

The weight is ``section[weight_key]`` (1.0 when the objective declares none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tvr.registry import get, names


def _section(cfg: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = cfg.get(name, {})
    return value if isinstance(value, Mapping) else {}


def selected_objectives(
    cfg: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Objective name -> loss weight for a config given as nested plain dicts.

    Args:
        cfg: the config as nested dicts (``to_dict(cfg)`` or a run's ``config.json``).
        defaults: the schema's defaults as nested dicts, used for keys ``cfg`` lacks (an old
            ``config.json`` written before a section existed); None: a missing switch is off.

    Returns:
        ``{name: weight}`` in construction order.
    """
    defaults = defaults or {}
    head = str(_section(cfg, "model").get("head", _section(defaults, "model").get("head", "")))

    def value(section: str, key: str, fallback: Any) -> Any:
        sec = _section(cfg, section)
        if key in sec:
            return sec[key]
        return _section(defaults, section).get(key, fallback)

    chosen: dict[str, Any] = {}
    for name in names("objective"):
        cls = get("objective", name)
        if cls.owner_head is not None and cls.owner_head != head:
            continue
        if cls.switch is not None and not value(cls.section, cls.switch, False):
            continue
        chosen[name] = cls
    replaced = {cls.replaces for cls in chosen.values() if cls.replaces}
    order = sorted((n for n in chosen if n not in replaced), key=lambda n: (chosen[n].order, n))
    return {
        n: float(value(chosen[n].section, chosen[n].weight_key, 1.0)) if chosen[n].weight_key
        else 1.0
        for n in order
    }
