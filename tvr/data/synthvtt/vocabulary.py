"""SynthVTT's vocabulary (colours, shapes, actions, backgrounds, edits, caption phrases) and the
numeric ranges of its timeline, geometry and families (``spec/synthvtt.md``)."""

from __future__ import annotations

__all__ = [
    "ACTION_PHRASES",
    "ACTIONS",
    "ADJECTIVES",
    "BACKGROUNDS",
    "COLOURS",
    "CONNECTIVES",
    "EDGE_FRAMES",
    "EDIT_TYPES",
    "EVENT_FRAMES",
    "EVENT_TYPES",
    "EVENTS_PER_VIDEO",
    "FAMILY_SIZE",
    "FAMILY_SIZE_MAX",
    "GAP_FRAMES",
    "HELDOUT_EDITS",
    "MSRVTT_SPLIT",
    "SHAPES",
    "SPLITS",
    "TRAIN_CAPTIONS_PER_VIDEO",
    "TRAIN_EDITS",
    "VIDEO_FRAMES",
    "EventType",
]

# --- vocabulary -------------------------------------------------------------------------------

# Saturated, far-apart colours (also in chroma, which yuv420p halves in resolution).
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (30, 190, 40),
    "blue": (30, 90, 245),
    "yellow": (245, 225, 20),
    "purple": (150, 40, 200),
    "orange": (255, 140, 0),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
ACTIONS: tuple[str, ...] = (
    "moves left",
    "moves right",
    "moves up",
    "moves down",
    "grows",
    "shrinks",
)
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "white": (255, 255, 255),
    "dark blue": (15, 20, 75),
}
SPLITS: tuple[str, ...] = ("train", "val", "test")
MSRVTT_SPLIT: dict[str, str] = {"train": "train", "val": "validate", "test": "test"}
EDIT_TYPES: tuple[str, ...] = ("none", "colour", "shape", "action", "swap", "drop", "add")
# Drop and add siblings are contained in (or contain) their base, so no caption could single out
# both within a split; held-out splits use the other edits only (the spec's "regenerate" rule).
HELDOUT_EDITS: tuple[str, ...] = ("colour", "shape", "action", "swap")
TRAIN_EDITS: tuple[str, ...] = ("colour", "shape", "action", "swap", "drop", "add")

EventType = tuple[str, str, str]  # (colour, shape, action)
EVENT_TYPES: tuple[EventType, ...] = tuple(
    (c, s, a) for c in COLOURS for s in SHAPES for a in ACTIONS
)

# --- captions ---------------------------------------------------------------------------------

ACTION_PHRASES: dict[str, tuple[str, ...]] = {
    "moves left": (
        "moves left",
        "moves to the left",
        "slides to the left",
        "travels left",
        "goes left",
    ),
    "moves right": (
        "moves right",
        "moves to the right",
        "slides to the right",
        "travels right",
        "goes right",
    ),
    "moves up": ("moves up", "rises", "slides up", "travels upward", "goes up"),
    "moves down": ("moves down", "falls", "slides down", "travels downward", "goes down"),
    "grows": ("grows", "gets bigger", "expands", "grows larger"),
    "shrinks": ("shrinks", "gets smaller", "contracts", "shrinks away"),
}
CONNECTIVES: tuple[str, ...] = ("then", "after that", "and then", "followed by")
ADJECTIVES: tuple[str, ...] = ("small", "bright", "solid")
TRAIN_CAPTIONS_PER_VIDEO = 5

# --- timeline and geometry --------------------------------------------------------------------

EVENTS_PER_VIDEO = (2, 4)  # inclusive bounds
EVENT_FRAMES = (6, 12)
VIDEO_FRAMES = (24, 40)
GAP_FRAMES = (0, 3)  # between two events
EDGE_FRAMES = (0, 2)  # before the first and after the last event
FAMILY_SIZE = (3, 5)  # default; `family_size` (--family-size) makes families larger (harder)
FAMILY_SIZE_MAX = 12
