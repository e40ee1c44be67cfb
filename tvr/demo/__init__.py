"""Demo runs: ``python -m tvr.demo [--train | --backbone] [--data-root DIR] [--checkpoints DIR]``.

Provides what ``make app`` shows: the default SynthVTT dataset (``data/synthvtt``, generated when
missing) and two run folders trained with the same seed and schedule from the same backbone,
``checkpoints/demo-base`` (seqTransf) and ``checkpoints/demo-drgi`` (seqTransf + DRGI). Both run
folders are committed, so with everything present this command does nothing; a run folder that
is missing is trained again.

``--train`` rebuilds everything in two stages, seeded end to end, on SynthVTT's train split:

1. **Backbone** (``checkpoints/demo-backbone``, not committed). A tiny CLIP of the demo configs'
   ``model.clip`` size whose patch embedding is a small convolutional stem
   (``vision_stem="conv"``), and a BPE tokenizer trained on the train captions.

   a. The vision tower learns what each sampled frame shows, from ``synthvtt_meta.json``:
      colour and shape of the event on screen (or "none" between events), the background
      (linear probes on the projected frame feature) and the shape's position and size
      (linear regression).
   b. The similarity head's temporal module learns, on the now fixed frame features, the
      action of the event each frame belongs to: a single frame cannot show "moves left" or
      "grows", its neighbours can.

   Contrastive training of a tiny CLIP from pixels on 2 cores learns little more than colour
   within minutes, and even perfect per-frame attributes leave the action to a temporal head
   that contrastive loss teaches slowly; a pretrained backbone (and temporal module, as in
   CLIP4Clip-family checkpoints) is what real users start from too. The text tower starts fresh.
2. **Runs**: :func:`tvr.train.train` on ``configs/synthvtt/demo-base.yaml`` and
   ``demo-drgi.yaml`` (identical but for ``name`` and the ``drgi`` objective), both starting from the
   backbone folder (``model.pretrained``; its head weights initialise the head) with the vision
   tower frozen (``model.freeze_vision``), then evaluated on the test split (``metrics.json``).

The run folders are self-contained: :func:`tvr.checkpoint.load_pretrained` rebuilds them from
``encoder.json`` + ``model.safetensors`` + ``tokenizer/`` without the backbone folder.
Timings, R@1 and learning curves are in ``benchmarks/RESULTS.md`` (``## Demo runs``).

Modules: :mod:`tvr.demo.pretrain` (stage 1: frame targets, attribute probes, vision and temporal
pretraining, the backbone folder), :mod:`tvr.demo.runs` (the demo configs, providing the dataset,
the backbone and the runs) and :mod:`tvr.demo.__main__` (the command line).
"""
