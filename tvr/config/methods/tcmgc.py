"""The ``tcmgc`` config section (head ``tcmgc``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.tcmgc`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_head
from tvr.registry import register


@register("section", "tcmgc")
@dataclass
class TCMGCConfig:
    keep_rate: float = 0.1  # rho of similarity reorganisation: k = floor(data.max_words * rho)
    softmax_lambda: float = 100.0  # lambda_s of interactive similarity aggregation (ISA)
    lsa_scale: float = 100.0  # scale of the grains inside the LSA softmax (code: logit scale)
    dropout: float = 0.3  # dropout on the residual Linear of the language-video attention
    mask_padding: bool = True  # False = code: padded words/frames enter LVA, SR and ISA


TCMGC = declare_head("tcmgc", "tvr.models.heads.tcmgc", section="tcmgc", with_objectives=("sdr",))
