"""Real-shape inputs for the recipe rehearsal: a random-weight OpenAI ViT-B/32 archive, OpenAI's
BPE file (made up, full size) and tiny datasets in each benchmark's released layout.

Nothing is downloaded. The archive has ViT-B/32's exact architecture (224 px, patch 32, 12+12
layers, 49,408 ids, 77 positions), fp16 like OpenAI's release (about 300 MB); the videos are
320x240 H.264/MPEG-4 clips that the pixel pipeline resizes and crops to 224.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import av
import numpy as np
import torch

from tests.helpers_bpe import made_up_merges, write_bpe_file
from tvr.data.clip_bpe import MAX_MERGES, OPENAI_BPE_FILE

# (video id stem, captions): four scenes, two captions each
SCENES: list[tuple[str, tuple[str, str]]] = [
    ("red", ("a red ball rolls across the floor", "a bright red ball moves to the right")),
    ("green", ("a green field under a cloudy sky", "grass waves in the wind")),
    ("blue", ("a blue car drives down the road", "a car passes by on a sunny day")),
    ("stripes", ("black and white stripes scroll upwards", "a striped pattern moves up")),
]
CAPTIONS = [c for _, caps in SCENES for c in caps]


def write_vit_b32_archive(path: Path, seed: int = 0) -> Path:
    """A random-weight CLIP ViT-B/32 state dict in OpenAI's layout and dtype (fp16), with
    OpenAI's metadata entries, saved with ``torch.save``."""
    from transformers import CLIPConfig, CLIPModel

    from tests.helpers_importers import convert_hf_to_openai

    torch.manual_seed(seed)
    config = CLIPConfig(  # transformers' CLIP defaults are ViT-B/32; spelled out here
        text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048,
                         num_hidden_layers=12, num_attention_heads=8,
                         max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=512,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, image_size=224, patch_size=32,
                           hidden_act="quick_gelu", projection_dim=512),
        projection_dim=512,
    )
    with torch.device("meta"):
        model = CLIPModel(config)
    state = {k: torch.randn(v.shape) * 0.02 for k, v in model.state_dict().items()
             if not k.endswith("position_ids")}
    for key in state:  # LayerNorms near identity, like a trained CLIP
        if "layer_norm" in key or "layernorm" in key or "layrnorm" in key:
            state[key] = (1.0 if key.endswith("weight") else 0.0) + state[key]
    state["logit_scale"] = torch.tensor(np.log(1 / 0.07), dtype=torch.float32)
    openai = {k: v.half() if v.is_floating_point() and k != "logit_scale" else v
              for k, v in convert_hf_to_openai(state).items()}
    openai.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77),
                  vocab_size=torch.tensor(49408))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(openai, path)
    return path


def write_openai_bpe(folder: Path) -> Path:
    """A made-up ``bpe_simple_vocab_16e6.txt.gz`` of OpenAI's size (48,894 merges used)."""
    return write_bpe_file(folder / OPENAI_BPE_FILE, made_up_merges(CAPTIONS, MAX_MERGES))


def _pattern(name: str, i: int, h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    if name == "red":
        x = 20 + 10 * i
        img[100:140, x:x + 40] = (220, 30, 30)
    elif name == "green":
        img[h // 2:] = (40, 160 + 3 * i, 40)
        img[: h // 2] = (150, 150, 170)
    elif name == "blue":
        img[:] = (90, 90, 90)
        img[150:190, 10 * i:10 * i + 80] = (30, 30, 200)
    else:
        rows = (np.arange(h)[:, None] + 6 * i) // 16 % 2
        img[:] = (rows * 255).astype(np.uint8)[..., None]
    return img


def write_video(path: Path, name: str, n: int = 16, fps: int = 8, codec: str = "libx264") -> Path:
    """``n`` frames of scene ``name`` at 320x240 (``.mp4`` H.264, or ``.avi`` MPEG-4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_pattern(name, i, 240, 320), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


class VideoBank:
    """The four scenes encoded once as ``.mp4`` and ``.avi``; copied into each dataset."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name, _ in SCENES:
            write_video(folder / f"{name}.mp4", name)
            write_video(folder / f"{name}.avi", name, codec="mpeg4")

    def put(self, scene: str, dest: Path) -> None:
        ext = ".avi" if dest.suffix == ".avi" else ".mp4"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.folder / f"{scene}{ext}", dest)


# Each writer lays a tiny dataset out as the released benchmark does (data_and_metrics.md):
# train on all four scenes, evaluate on three (val on two); ids in each benchmark's id format.

def write_msrvtt(root: Path, bank: VideoBank) -> Path:
    """MSR-VTT (CLIP4Clip's msrvtt_data): 9k list, JSFusion test CSV, all captions in the JSON."""
    ids = [f"video{i}" for i in range(len(SCENES))]
    sentences = [{"sen_id": 2 * i + j, "video_id": vid, "caption": cap}
                 for i, (vid, (_, caps)) in enumerate(zip(ids, SCENES)) for j, cap in enumerate(caps)]
    videos = [{"id": i, "video_id": vid, "split": "train" if i < 3 else "test"}
              for i, vid in enumerate(ids)]
    root.mkdir(parents=True, exist_ok=True)
    (root / "MSRVTT_data.json").write_text(json.dumps({"videos": videos, "sentences": sentences}))
    (root / "MSRVTT_train.9k.csv").write_text("video_id\n" + "".join(f"{v}\n" for v in ids))
    (root / "MSRVTT_train.7k.csv").write_text("video_id\n" + "".join(f"{v}\n" for v in ids[:3]))
    rows = "".join(f"ret{i},msr{i},{vid},{caps[0]}\n"
                   for i, (vid, (_, caps)) in enumerate(zip(ids, SCENES)) if i < 3)
    (root / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\n" + rows)
    for vid, (scene, _) in zip(ids, SCENES):
        bank.put(scene, root / "videos" / "all" / f"{vid}.mp4")
    return root


def write_msvd(root: Path, bank: VideoBank) -> Path:
    """MSVD: split lists, ``raw-captions.pkl`` (tokenised captions), ``videos/<id>.avi``."""
    ids = ["-4wsuPCjDBc_5_15", "zv2RIbUsnSw_159_166", "0lh_UWF9ZP4_27_31", "aBc_d-e_1_9"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_list.txt").write_text("\n".join(ids) + "\n")
    (root / "val_list.txt").write_text("\n".join(ids[:2]) + "\n")
    (root / "test_list.txt").write_text("\n".join(ids[1:]) + "\n")
    caps = {vid: [c.split() for c in captions] for vid, (_, captions) in zip(ids, SCENES)}
    (root / "raw-captions.pkl").write_bytes(pickle.dumps(caps))
    for vid, (scene, _) in zip(ids, SCENES):
        bank.put(scene, root / "videos" / f"{vid}.avi")
    return root


def write_lsmdc(root: Path, bank: VideoBank) -> Path:
    """LSMDC 2016: tab-separated annotation files, ``videos/<movie>/<clip>.avi``."""
    clips = [f"00{i}1_Some_Movie_00.0{i}.10.000-00.0{i}.14.000" for i in range(len(SCENES))]

    def line(clip: str, sentence: str) -> str:
        return "\t".join([clip, "00.00.10.000", "00.00.14.000", "00.00.10.000", "00.00.14.000",
                          sentence]) + "\n"

    root.mkdir(parents=True, exist_ok=True)
    (root / "LSMDC16_annos_training.csv").write_text(
        "".join(line(c, cap) for c, (_, caps) in zip(clips, SCENES) for cap in caps))
    (root / "LSMDC16_annos_val.csv").write_text(
        "".join(line(c, caps[0]) for c, (_, caps) in zip(clips[:2], SCENES)))
    (root / "LSMDC16_challenge_1000_publictect.csv").write_text(
        "".join(line(c, caps[1]) for c, (_, caps) in zip(clips[1:], SCENES[1:])))
    for clip, (scene, _) in zip(clips, SCENES):
        movie = clip.split(".")[0][:-3]
        bank.put(scene, root / "videos" / movie / f"{clip}.avi")
    return root


def write_activitynet(root: Path, bank: VideoBank) -> Path:
    """ActivityNet Captions: id lists, dense-caption JSONs (paragraphs), ``videos/<id>.mp4``."""
    ids = [f"v_{scene}ClipId{i}" for i, (scene, _) in enumerate(SCENES)]

    def entry(caps: tuple[str, str]) -> dict:
        return {"duration": 2.0, "timestamps": [[0.0, 1.0], [1.0, 2.0]], "sentences": list(caps)}

    root.mkdir(parents=True, exist_ok=True)
    (root / "train_ids.json").write_text(json.dumps(ids))
    (root / "val_ids.json").write_text(json.dumps(ids[1:]))
    (root / "train.json").write_text(json.dumps({v: entry(c) for v, (_, c) in zip(ids, SCENES)}))
    (root / "val_1.json").write_text(
        json.dumps({v: entry(c) for v, (_, c) in zip(ids[1:], SCENES[1:])}))
    for vid, (scene, _) in zip(ids, SCENES):
        bank.put(scene, root / "videos" / f"{vid[2:]}.mp4")
    return root


def write_didemo(root: Path, bank: VideoBank) -> Path:
    """DiDeMo: lists of file names, ``*_data.json`` descriptions (paragraphs), ``videos/``."""
    files = [f"{1000 + i}@N0{i}_{scene}.mp4" for i, (scene, _) in enumerate(SCENES)]

    def entries(names: list[str], scenes: list) -> list[dict]:
        return [{"video": f, "description": cap, "times": [[0, 0], [0, 1], [0, 0], [1, 1]]}
                for f, (_, caps) in zip(names, scenes) for cap in caps]

    root.mkdir(parents=True, exist_ok=True)
    for split, names, scenes in (("train", files, SCENES), ("val", files[:2], SCENES[:2]),
                                 ("test", files[1:], SCENES[1:])):
        (root / f"{split}_list.txt").write_text("\n".join(names) + "\n")
        (root / f"{split}_data.json").write_text(json.dumps(entries(names, scenes)))
    for name, (scene, _) in zip(files, SCENES):
        bank.put(scene, root / "videos" / name)
    return root


def write_vatex(root: Path, bank: VideoBank) -> Path:
    """VATEX (HGR split): id lists, ``ref_captions.json``, ``videos/<id>.mp4``."""
    ids = [f"Ptf_2VRj-V{i}_000122_000132" for i in range(len(SCENES))]
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_list.txt").write_text("\n".join(ids) + "\n")
    (root / "val_list.txt").write_text("\n".join(ids[:2]) + "\n")
    (root / "test_list.txt").write_text("\n".join(ids[1:]) + "\n")
    (root / "ref_captions.json").write_text(
        json.dumps({v: list(caps) for v, (_, caps) in zip(ids, SCENES)}))
    for vid, (scene, _) in zip(ids, SCENES):
        bank.put(scene, root / "videos" / f"{vid}.mp4")
    return root


WRITERS = {
    "msrvtt": write_msrvtt,
    "msvd": write_msvd,
    "lsmdc": write_lsmdc,
    "activitynet": write_activitynet,
    "didemo": write_didemo,
    "vatex": write_vatex,
}
