"""GPU paths check behind ``benchmarks/gpu_check.sh`` (issue 13, item 5). Never run by CI.

``run`` (on a CUDA machine) proves, on a small SynthVTT split at ViT-B/32 size (a randomly
initialised CLIP ViT-B/32, seqTransf head, DRGI on, 12 frames at 224 px):

1. **AMP training**: ``python -m tvr.train`` for ``--steps`` steps with ``train.amp=auto``
   (bf16 where the GPU has it, else fp16 with a gradient scaler); every logged loss finite.
2. **DDP over nccl** (only with more than one GPU): the same under
   ``torchrun --standalone --nproc_per_node <GPUs>``.
3. **fp16 checkpoint, GPU to CPU**: the AMP run's model is cast to fp16 on the GPU and saved
   (safetensors) as a run folder; a process that sees no GPU (``CUDA_VISIBLE_DEVICES=""``)
   loads it with :func:`tvr.checkpoint.load_pretrained` and compares its embeddings with the
   fp32 run's on CPU.
4. **Throughput**: the ViT-B/32 vision tower on random frames (frames/s, fp32 and under
   autocast), the library's split embedding (:func:`tvr.evaluate.embed_split`: decode +
   towers, videos/s) and ``python -m analysis.export`` end to end on the test split, each
   in float32 and with ``--amp auto`` (bf16, or fp16 on GPUs without bf16).

Each step records its numbers or its error and the next one runs; the report goes to
``<work>/gpu_check.md`` (and, with ``--write``, to the ``## GPU check`` section of
``benchmarks/RESULTS.md``). Without CUDA it stops before doing anything, with exit code 2.

``publish FILE`` puts a report written elsewhere (e.g. fetched from the GPU machine) into
RESULTS.md. ``cpu-compare`` is the step-3 child process.

Usage:
    benchmarks/gpu_check.sh [--work DIR] [--steps 30] [--write]
    python benchmarks/gpu_check.py publish DIR/gpu_check.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

SECTION = "## GPU check"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
NO_CUDA_EXIT = 2
TRAIN, TEST = 256, 96  # SynthVTT videos generated for the check


def cuda_guard() -> None:
    """Exit with code 2 and a message naming what is missing when torch sees no CUDA GPU."""
    import torch

    if torch.cuda.is_available():
        return
    built = torch.version.cuda or "none (a CPU-only build)"
    print(
        "gpu_check: no CUDA GPU: torch.cuda.is_available() is False "
        f"(torch {torch.__version__}, CUDA build: {built}, "
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). "
        "This check only runs on a GPU machine; CI never runs it.",
        file=sys.stderr,
    )
    sys.exit(NO_CUDA_EXIT)


# ----------------------------------------------------------------------------- the steps
def write_config(work: Path, steps: int, batch: int) -> Path:
    """The check's experiment: ViT-B/32 from scratch on the generated SynthVTT, on CUDA."""
    cfg = f"""\
name: gpu-amp
output_root: {work / "runs"}
data:
  dataset: synthvtt
  root: {work / "data"}
  train_split: train
  eval_split: test
  num_frames: 12
  image_size: 224
  max_words: 32
  num_workers: 4
model:
  pretrained: ""  # a randomly initialised CLIP ViT-B/32 (model.clip defaults)
  head: seqtransf
drgi:
  enable: true
train:
  epochs: 1
  max_steps: {steps}
  batch_size: {batch}
  device: cuda
  amp: auto
  lr: 1.0e-4
  clip_lr: 1.0e-5
  log_every: 5
  eval_after: true
"""
    path = work / "gpu_check.yaml"
    path.write_text(cfg)
    return path


def _run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run ``cmd`` from the repository root, output to ``log``; wall seconds, or raise."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})}, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail}")
    return seconds


def _losses(run_dir: Path) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines() if x]
    return [float(x["loss"]) for x in lines if "loss" in x]


def step_data(work: Path) -> dict[str, Any]:
    seconds = _run([sys.executable, "-m", "tvr.data.synthvtt", "--out", str(work / "data"),
                    "--train", str(TRAIN), "--val", "16", "--test", str(TEST), "--workers", "4",
                    "--quiet"], work / "synthvtt.log")
    return {"seconds": seconds, "train videos": TRAIN, "test videos": TEST}


def step_amp(work: Path, config: Path, steps: int) -> dict[str, Any]:
    seconds = _run([sys.executable, "-m", "tvr.train", "--config", str(config)],
                   work / "train_amp.log")
    run_dir = work / "runs" / "gpu-amp"
    losses = _losses(run_dir)
    if not losses or not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"AMP run logged no loss or a non-finite one: {losses}")
    log_text = (work / "train_amp.log").read_text(errors="replace")
    amp = next((line.split("amp ")[-1].strip() for line in log_text.splitlines()
                if "steps:" in line and "amp" in line), "?")
    metrics = json.loads((run_dir / "metrics.json").read_text())  # {"<dataset>-<split>": {...}}
    split_metrics = next(iter(metrics.values()), {}) if metrics else {}
    return {"seconds (incl. start-up and test evaluation)": seconds, "steps": steps,
            "autocast dtype": amp, "first / last logged loss": f"{losses[0]:.4f} / {losses[-1]:.4f}",
            "test t2v/R@1 (random init, a sanity read)": split_metrics.get("t2v/R@1", "?")}


def step_ddp(work: Path, config: Path, gpus: int) -> dict[str, Any]:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    seconds = _run([torchrun, "--standalone", f"--nproc_per_node={gpus}", "-m", "tvr.train",
                    "--config", str(config), "name=gpu-ddp"], work / "train_ddp.log",
                   env={"NCCL_DEBUG": "INFO"})  # NCCL then logs its communicators
    losses = _losses(work / "runs" / "gpu-ddp")
    if not losses or not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"DDP run logged no loss or a non-finite one: {losses}")
    text = (work / "train_ddp.log").read_text(errors="replace")
    if "NCCL INFO" not in text:
        raise RuntimeError("NCCL_DEBUG=INFO printed nothing: the run did not use nccl")
    if f"world {gpus}" not in text:
        raise RuntimeError(f"the training log never reports a world of {gpus} processes")
    return {"GPUs": gpus, "seconds": seconds,
            "first / last logged loss": f"{losses[0]:.4f} / {losses[-1]:.4f}"}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_fp16(work: Path, device: str = "cuda") -> dict[str, Any]:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from tvr.checkpoint import _dedupe_shared, load_pretrained

    src = work / "runs" / "gpu-amp"
    dst = work / "runs" / "gpu-fp16"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in ("config.json", "encoder.json"):
        shutil.copy2(src / name, dst / name)
    shutil.copytree(src / "tokenizer", dst / "tokenizer")
    model, _, _ = load_pretrained(src, device=device)
    # fp16 tensors on the device, written as they are (safetensors copies them to the host):
    # what a GPU run saving a half-precision checkpoint leaves (tvr's own save writes fp32)
    sd = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
          for k, v in model.for_inference().state_dict().items()}
    assert all(v.device.type == torch.device(device).type for v in sd.values())
    save_file(_dedupe_shared(sd), str(dst / "model.safetensors"), metadata={"format": "pt"})
    with safe_open(str(dst / "model.safetensors"), framework="pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    out = work / "fp16_compare.json"
    _run([sys.executable, str(Path(__file__).resolve()), "cpu-compare", "--fp32", str(src),
          "--fp16", str(dst), "--out", str(out)], work / "fp16_compare.log",
         env={"CUDA_VISIBLE_DEVICES": ""})
    result = json.loads(out.read_text())
    if result["max_abs_diff"] > 2e-2:
        raise RuntimeError(f"fp16 checkpoint embeddings differ by {result['max_abs_diff']:.3g}")
    return {"dtypes in the file": ", ".join(sorted(dtypes)),
            "file MB": round((dst / "model.safetensors").stat().st_size / 1e6, 1), **result}


def cpu_compare(fp32_run: Path, fp16_run: Path, out: Path) -> None:
    """Child of step 3: load both runs on CPU (no GPU visible) and compare their embeddings."""
    import torch

    from tvr.checkpoint import load_pretrained

    assert not torch.cuda.is_available(), "cpu-compare must run without a visible GPU"
    ref, tokenizer, cfg = load_pretrained(fp32_run, device="cpu")
    half, _, _ = load_pretrained(fp16_run, device="cpu")
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(2, cfg.data.num_frames, 3, cfg.data.image_size, cfg.data.image_size,
                         generator=g)
    mask = torch.ones(2, cfg.data.num_frames, dtype=torch.long)
    from tvr.evaluate import embed_texts

    captions = ["a red circle moves left", "two squares swap places"]
    diffs = {}
    with torch.no_grad():
        t_ref = embed_texts(ref, captions, tokenizer, cfg.data.max_words, progress=False)
        t_half = embed_texts(half, captions, tokenizer, cfg.data.max_words, progress=False)
        diffs["text"] = float((t_ref.pooled - t_half.pooled).abs().max())
        v_ref = ref.encode_video(frames, mask).pooled
        v_half = half.encode_video(frames, mask).pooled
        diffs["video"] = float((v_ref - v_half).abs().max())
    param_dtypes = sorted({str(p.dtype) for p in half.parameters()})
    out.write_text(json.dumps({
        "loaded on": "cpu", "parameter dtypes after load": ", ".join(param_dtypes),
        "max |text diff|": round(diffs["text"], 5), "max |video diff|": round(diffs["video"], 5),
        "max_abs_diff": max(diffs.values()),
    }))


def step_throughput(work: Path, batch: int, device: str = "cuda") -> dict[str, Any]:
    import torch

    from tvr.checkpoint import load_pretrained
    from tvr.data.sources import load_split
    from tvr.evaluate import EmbedOptions, embed_split

    run = work / "runs" / "gpu-amp"
    model, tokenizer, cfg = load_pretrained(run, device=device)
    model = model.for_inference()
    t, s = cfg.data.num_frames, cfg.data.image_size
    frames = torch.randn(batch, t, 3, s, s, device=device)
    mask = torch.ones(batch, t, dtype=torch.long, device=device)
    kind = torch.device(device).type
    cuda = kind == "cuda"
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else kind}
    dtype = torch.bfloat16 if not cuda or torch.cuda.is_bf16_supported() else torch.float16
    for label, ctx in (("fp32", None), (f"autocast {str(dtype).split('.')[-1]}", dtype)):
        def encode(ctx=ctx) -> None:
            with torch.no_grad(), torch.autocast(kind, dtype=ctx, enabled=ctx is not None):
                model.encode_video(frames, mask)

        encode()
        _sync(device)
        reps = 10
        t0 = time.perf_counter()
        for _ in range(reps):
            encode()
        _sync(device)
        per_s = reps * batch * t / (time.perf_counter() - t0)
        result[f"vision tower frames/s, {label} (batch {batch} x {t})"] = round(per_s)
    records = load_split(cfg.data.dataset, cfg.data.root, "test", **cfg.data.source_options)
    for amp in ("off", "auto"):  # the towers in float32, then under autocast (tvr.precision)
        t0 = time.perf_counter()
        with torch.no_grad():
            opts = EmbedOptions(num_frames=t, image_size=s, max_words=cfg.data.max_words,
                                batch_size=batch, num_workers=cfg.data.num_workers,
                                device=device, progress=False, amp=amp)
            emb = embed_split(model, tokenizer, records, opts)
        _sync(device)
        seconds = time.perf_counter() - t0
        result[f"embed_split videos/s (decode + towers + scores), amp={amp}"] = round(
            len(emb.video_ids) / seconds, 1)
        result[f"export seconds (analysis.export --amp {amp}, test split, PCA)"] = round(_run(
            [sys.executable, "-m", "analysis.export", "--run", str(run), "--checkpoints",
             str(work / "runs"), "--split", "test", "--projection", "pca", "--device", device,
             "--amp", amp, "--quiet", "--force"], work / f"export_{amp}.log"), 1)
    return result


# ----------------------------------------------------------------------------- report
def report(results: dict[str, dict[str, Any]], work: Path, steps: int) -> str:
    import torch

    gpus = torch.cuda.device_count()
    lines = [
        "Command: `benchmarks/gpu_check.sh` (prepared for a CUDA machine; CI never runs it).",
        "",
        f"{gpus} x {torch.cuda.get_device_name(0)}, torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}), Python {platform.python_version()}, on "
        f"{time.strftime('%Y-%m-%d')}. A randomly initialised CLIP ViT-B/32 with the seqTransf "
        f"head and DRGI, {steps} training steps on a generated SynthVTT split ({TRAIN} train / "
        f"{TEST} test videos, 12 frames at 224 px).",
        "",
        "| check | result | figures |",
        "|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            status, figures = "FAILED", r["error"].strip().splitlines()[-1][:200]
        elif "skipped" in r:
            status, figures = "skipped", r["skipped"]
        else:
            status, figures = "ok", "; ".join(f"{k}: {v}" for k, v in r.items())
        lines.append(f"| {name} | {status} | {figures.replace('|', '/')} |")
    lines += ["", f"Logs and runs: `{work}`."]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    cuda_guard()
    import torch

    work = Path(args.work or os.environ.get("GPU_CHECK_DIR") or os.environ.get("OUT")
                or tempfile.mkdtemp(prefix="tvr-gpu-check-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count()
    print(f"gpu_check: {gpus} GPU(s), working in {work}", flush=True)
    config = write_config(work, args.steps, args.batch)
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("SynthVTT generated", lambda: step_data(work)),
        ("AMP training steps", lambda: step_amp(work, config, args.steps)),
        ("DDP over nccl", (lambda: step_ddp(work, config, gpus)) if gpus > 1
         else (lambda: {"skipped": "one GPU"})),
        ("fp16 checkpoint saved on GPU, loaded on CPU", lambda: step_fp16(work)),
        ("ViT-B/32 throughput", lambda: step_throughput(work, args.batch)),
    ]
    results: dict[str, dict[str, Any]] = {}
    for name, fn in steps:
        print(f"gpu_check: {name} ...", flush=True)
        try:
            results[name] = fn()
        except Exception:  # recorded in the report; the remaining checks still run
            results[name] = {"error": traceback.format_exc()}
            print(results[name]["error"], file=sys.stderr, flush=True)
        print(f"gpu_check: {name}: {results[name]}", flush=True)
    body = report(results, work, args.steps)
    (work / "gpu_check.md").write_text(body + "\n")
    print(body)
    if args.write:
        from benchmarks.results import update_section

        update_section(RESULTS, SECTION, body)
    failed = [n for n, r in results.items() if "error" in r]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run every check (needs CUDA)")
    p_run.add_argument("--work", help="working folder (default $GPU_CHECK_DIR, $OUT or a temp)")
    p_run.add_argument("--steps", type=int, default=30, help="training steps per run")
    p_run.add_argument("--batch", type=int, default=32, help="pairs per step / videos per batch")
    p_run.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    p_pub = sub.add_parser("publish", help="put a gpu_check.md report into RESULTS.md")
    p_pub.add_argument("report", type=Path)
    p_pub.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    p_cmp = sub.add_parser("cpu-compare", help=argparse.SUPPRESS)
    p_cmp.add_argument("--fp32", type=Path, required=True)
    p_cmp.add_argument("--fp16", type=Path, required=True)
    p_cmp.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "publish":
        from benchmarks.results import update_section

        if not args.report.is_file():
            parser.error(f"publish: {args.report} is not a file")
        update_section(args.results, SECTION, args.report.read_text())
        return 0
    cpu_compare(args.fp32, args.fp16, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
