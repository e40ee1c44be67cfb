"""Random padded text/video features and tiny head configs shared by the head and objective
tests (test_heads, test_heads_<method>, test_objectives_<method>).

Sizes are tiny: ``D``-dim features, ``L`` word slots, ``T`` frame slots. Default lengths leave
every item padded, so masking bugs show up.
"""

from __future__ import annotations

import torch

from tvr.config import ExperimentConfig, section_class, section_names_all
from tvr.models.features import TokenFeatures
from tvr.models.heads import build_head

D = 16
L, T = 7, 5

# TC-MGC's ISA softmax at λ_s = 100 is nearly one-hot on random features (its matrices then
# get ~1e-40 gradients); the contract tests use λ_s = 5 so every gradient is measurable.
SMALL_LAMBDA = {"tcmgc.softmax_lambda": 5.0, "tcmgc.lsa_scale": 5.0}


def lengths_mask(lengths: list[int], n: int) -> torch.Tensor:
    """``[len(lengths), n]`` float mask with the first ``lengths[i]`` slots of row ``i`` set."""
    return (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]).float()


def random_features(b: int, n: int, seed: int, lengths: list[int]) -> TokenFeatures:
    """``b`` items of ``n`` random token slots (the first ``lengths[i]`` valid) and a pooled row.

    Shapes:
        tokens ``[b, n, D]``, mask ``[b, n]``, pooled ``[b, D]``.
    """
    g = torch.Generator().manual_seed(seed)
    return TokenFeatures(
        tokens=torch.randn(b, n, D, generator=g),
        mask=lengths_mask(lengths, n),
        pooled=torch.randn(b, D, generator=g),
    )


def make_text(b: int, seed: int = 1, lengths: list[int] | None = None) -> TokenFeatures:
    """``b`` texts of ``L`` word slots; default lengths 2..L-1 (always padded)."""
    return random_features(b, L, seed, lengths or [2 + (i * 3) % (L - 2) for i in range(b)])


def make_video(b: int, seed: int = 2, lengths: list[int] | None = None) -> TokenFeatures:
    """``b`` videos of ``T`` frame slots; default lengths 1..T-1 (always padded)."""
    return random_features(b, T, seed, lengths or [1 + (i * 2) % (T - 1) for i in range(b)])


def garbage_padding(feats: TokenFeatures, extra: int, seed: int) -> TokenFeatures:
    """Random garbage in every padded slot, plus ``extra`` more padded slots."""
    g = torch.Generator().manual_seed(seed)
    b, n, d = feats.tokens.shape
    tokens = torch.where(
        feats.mask.bool()[..., None], feats.tokens, 50 * torch.randn(b, n, d, generator=g)
    )
    tokens = torch.cat([tokens, 50 * torch.randn(b, extra, d, generator=g)], dim=1)
    mask = torch.cat([feats.mask, torch.zeros(b, extra)], dim=1)
    return TokenFeatures(tokens=tokens, mask=mask, pooled=feats.pooled)


def assert_every_parameter_gets_gradient(module: torch.nn.Module) -> None:
    """After a backward pass: every parameter of ``module`` has a gradient, not all zero."""
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"


def scored(head, text: TokenFeatures, video: TokenFeatures) -> dict:
    """What the Retriever puts into ``outputs`` for a head (sim plus method extras)."""
    return head.score_outputs(text, video)


def step_outputs(head, text: TokenFeatures, video: TokenFeatures) -> dict:
    """The ``outputs`` a training step hands the objectives for 6 texts and 6 videos.

    Texts 0 and 1 are captions of video 0; text ``i > 1`` is a caption of video ``i - 1``.
    """
    et, ev = head.embed_text(text), head.embed_video(video)
    return {
        "text": et,
        "video": ev,
        **scored(head, et, ev),
        "logit_scale": torch.tensor(100.0),
        "video_index": torch.tensor([0, 0, 1, 2, 3, 4]),
        "local": slice(0, 6),
    }


def total_loss(objectives, outputs: dict) -> torch.Tensor:
    """The sum of every ``*_loss`` the objectives return for ``outputs``."""
    return sum(
        v for o in objectives.values() for k, v in o(outputs, {}).items() if k.endswith("_loss")
    )


def assert_drgi_alone_reaches_inputs(
    head, objectives, outputs: dict, text: TokenFeatures, video: TokenFeatures
) -> None:
    """DRGI's loss alone (the score detached) sends gradient to the input word/frame tokens."""
    text.tokens.grad = video.tokens.grad = None
    et, ev = head.embed_text(text), head.embed_video(video)
    outputs.update(text=et, video=ev, sim=head.score(et, ev).detach())
    objectives["drgi"](outputs, {})["drgi_loss"].backward()
    assert text.tokens.grad is not None and text.tokens.grad.abs().sum() > 0
    assert video.tokens.grad is not None and video.tokens.grad.abs().sum() > 0


def plugin_modules() -> list[str]:
    """The modules of every registered plug-in (sections registered outside ``tvr``), so a
    config built for a registry-parametrised test holds their sections too."""
    modules = {section_class(n).__module__ for n in section_names_all()}
    return sorted(m for m in modules if m.split(".")[0] != "tvr")


def seed_cfg(head: str, overrides: dict | None = None) -> ExperimentConfig:
    """A tiny config for a seed-method head (X-CLIP, TC-MGC, GARE, DMAE) at ``L`` words and
    ``T`` frames; ``overrides`` map ``"section.key"`` to a value (a section in use)."""
    cfg = ExperimentConfig(plugins=plugin_modules())
    cfg.set_head(head)  # with the objectives it brings (TC-MGC's SDR, GARE's regularisers)
    cfg.data.max_words = L
    cfg.data.num_frames = T
    cfg.seqtransf.layers = 1
    cfg.seqtransf.heads = 4
    cfg.seqtransf.max_frames = 8
    if head == "tcmgc":
        cfg.tcmgc.keep_rate = 0.3  # k = floor(7 * 0.3) = 2
    for key, value in (overrides or {}).items():
        section, field = key.split(".")
        setattr(getattr(cfg, section), field, value)
    return cfg


def add_drgi(cfg: ExperimentConfig, **params) -> ExperimentConfig:
    """``cfg`` with the DRGI objective at a tiny width (``hidden=8``) and ``params``."""
    cfg.add_objective("drgi", **{"hidden": 8, **params})
    return cfg


def seed_head(name: str, overrides: dict | None = None, seed: int = 0):
    """:func:`seed_cfg`'s head of width ``D``, built after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return build_head(seed_cfg(name, overrides), D)
