"""The ``dmae`` config section (head ``dmae``) and its traits.

Torch-free (:mod:`tvr.config.traits`): loading a config imports no torch. The code:
:mod:`tvr.models.heads.dmae`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvr.config.traits import declare_head
from tvr.registry import register


@register("section", "dmae")
@dataclass
class DMAEConfig:
    interaction: str = "att_wti"  # wti | ti (sentence-frame) | att_wti | att_ti (+ word-frame)
    wti_arch: int = 1  # depth of the token-weight MLPs (1 linear, 2 or 3 layers)
    nfc: bool = True  # visual attention enhancement (nearest-frame correction of the max)
    nfc_weight: float = 0.5  # weight of the nearest-frame term
    masked_max: bool = False  # True: padding left out of the maxima (code: padded sims are 0)
    # True: L2-normalise the seqTransf output frames, so scores are cosines (new work; the code
    # keeps them unnormalised, which saturates NegNCE's fixed scale 100 when the temporal module
    # does not keep unit norms, e.g. the demo backbone's pretrained one)
    normalize_frames: bool = False


DMAE = declare_head("dmae", "tvr.models.heads.dmae", section="dmae")
