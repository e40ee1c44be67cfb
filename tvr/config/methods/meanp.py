"""The meanP head's traits (it has no settings).

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.meanp`.
"""

from __future__ import annotations

from tvr.config.traits import declare_head

MEANP = declare_head("meanp", "tvr.models.heads.meanp")
