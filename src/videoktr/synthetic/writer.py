"""Write the synthetic world to disk as a Video-R1 dataset: MP4 clips, JSONL splits, a manifest.

Why these choices:

* Clips are encoded near-losslessly so that what the model sees is what the scene says:
  H.264 (libx264) at ``crf 0`` in 4:4:4 chroma (no chroma subsampling, so shape edges keep their
  colour; decoded pixels are within 1 of the rendered ones), or, on a PyAV build without
  libx264, MPEG-4 part 2 at quantiser 1 in 4:2:0 (colours within a few levels inside shapes,
  edges slightly blurred). Lossless H.264 needs the "High 4:4:4 Predictive" profile: FFmpeg-based
  readers (PyAV, decord, torchvision) decode it; some browsers and hardware players do not.
  A clip is about 2-5 kB.
* Each row is generated from its own generator, ``numpy.random.default_rng([seed, index])``,
  and the kinds cycle visual, temporal, both by index, so row ``i`` is the same whatever ``n``
  is, and a dataset of ``n`` rows is a prefix of one of ``n + k`` rows (the split aside).
* The split is stratified by kind: within each kind the rows are shuffled with
  ``default_rng([seed, 1])``, the kinds are interleaved, and the first
  ``round(n * test_fraction)`` (at least 1 and at most ``n - 1`` when ``n >= 2``) go to test,
  so both splits hold the kinds in near-equal numbers. Rows keep their index order in each file.
* Clips are written at ``fps`` (default 4) frames per second, so an 8-16 frame clip lasts
  2-4 s. ``decode_video`` (and ``VideoR1Dataset``) samples at 2 fps by default, keeping every
  second frame; the scenes are built so that events survive that (see ``world``). Pass
  ``fps=<the clip fps>`` to keep every frame.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import numpy as np

from .. import defaults
from .families import FAMILIES
from .labels import ANSWER_LABELS, QUESTION_KINDS
from .questions import question_row, sample_question
from .tasks import TASKS, check_task
from .world import COLOURS, DIRECTIONS, FRAME_COUNTS, FRAME_SIZE, KINDS, render

__all__ = [
    "SynthSummary",
    "generate_dataset",
    "generate_rows",
    "row_id",
    "split_rows",
    "video_codec",
    "write_video",
]

_PROGRESS_THRESHOLD = 50  # rows; a bar is shown above this by default


@lru_cache(maxsize=1)
def video_codec() -> str:
    """``"libx264"`` when this PyAV build can encode H.264, else ``"mpeg4"``."""
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
        except ValueError:  # av.codec.codec.UnknownCodecError
            continue
        return name
    raise RuntimeError("this PyAV build can encode neither libx264 nor mpeg4")


def _check_fps(fps: object) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)):
        # ValueError, not TypeError: the package reports every bad argument as ValueError.
        raise ValueError(f"fps must be a positive number, got {fps!r}")  # noqa: TRY004
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def write_video(frames: np.ndarray, path: str | os.PathLike, fps: float = defaults.WORLD_FPS) -> Path:
    """Encode uint8 RGB ``frames`` ``[T, H, W, 3]`` (``H``, ``W`` even) as an MP4 at ``fps``.

    Near-lossless (see the module docstring): libx264 ``crf 0`` yuv444p (one encoder thread),
    else mpeg4 at quantiser 1. Deterministic: the same frames give the same bytes. Returns the
    path.
    """
    rate = _check_fps(fps)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames must be a uint8 array [T, H, W, 3], got {frames.dtype} {tuple(frames.shape)}"
        )
    count, height, width, _ = frames.shape
    if count < 1 or height < 2 or width < 2 or height % 2 or width % 2:
        raise ValueError(
            f"need at least one frame of even height and width, got {tuple(frames.shape)}"
        )
    path = Path(path)
    codec = video_codec()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        if codec == "libx264":
            stream.pix_fmt = "yuv444p"
            # One thread: a 96x96 clip gains nothing from more (start-up costs dominate), and
            # the bytes cannot depend on the machine's core count.
            stream.codec_context.options = {"crf": "0", "preset": "medium", "threads": "1"}
        else:
            stream.pix_fmt = "yuv420p"
            stream.codec_context.qmin = 1
            stream.codec_context.qmax = 1
        for array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def row_id(seed: int, index: int) -> str:
    """``"synth-<seed>-<index:06d>"``: the row's id and its video's file stem."""
    return f"synth-{seed}-{index:06d}"


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    return int(n)


def _row_kind(index: int, task: str) -> str:
    """Row ``index``'s kind: the kinds in turn, among those the task's families ask."""
    kinds = [kind for kind in QUESTION_KINDS if any(FAMILIES[name].kind == kind for name in TASKS[task])]
    return kinds[index % len(kinds)]


def generate_rows(n: int, seed: int, task: str = "standard") -> list[tuple[dict[str, Any], np.ndarray]]:
    """The first ``n`` rows of world ``seed`` of ``task`` with their rendered frames, nothing
    written.

    Row ``i`` comes from ``default_rng([seed, i])`` and is of the ``i``-th kind in turn (for
    ``standard``: ``QUESTION_KINDS[i % 3]``).
    """
    n, seed, task = _check_n(n), _check_seed(seed), check_task(task)
    return [_make_row(seed, index, task) for index in range(n)]


def _make_row(seed: int, index: int, task: str = "standard") -> tuple[dict[str, Any], np.ndarray]:
    rng = np.random.default_rng([seed, index])
    scene, question = sample_question(rng, kind=_row_kind(index, task), task=task)
    return question_row(question, scene, row_id(seed, index)), render(scene)


def split_rows(kinds: list[str], test_fraction: float, seed: int) -> list[bool]:
    """For each row (given its kind), whether it goes to the test split (see module docstring)."""
    fraction = _check_fraction(test_fraction)
    n = len(kinds)
    if n < 2:
        return [False] * n
    n_test = min(max(round(n * fraction), 1), n - 1)
    rng = np.random.default_rng([_check_seed(seed), 1])
    by_kind = {}
    for kind in sorted(set(kinds), key=lambda k: (QUESTION_KINDS + (k,)).index(k)):
        members = [i for i, k in enumerate(kinds) if k == kind]
        by_kind[kind] = [members[j] for j in rng.permutation(len(members))]
    interleaved = [
        group[j]
        for j in range(max(len(g) for g in by_kind.values()))
        for group in by_kind.values()
        if j < len(group)
    ]
    test = set(interleaved[:n_test])
    return [i in test for i in range(n)]


def _check_fraction(test_fraction: object) -> float:
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")  # noqa: TRY004
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    return float(test_fraction)


@dataclass
class SynthSummary:
    """What ``generate_dataset`` wrote, and how fast."""

    out_dir: Path
    train_file: Path
    test_file: Path
    world_file: Path
    videos_dir: Path
    counts: dict[str, dict[str, int]]  # split -> kind -> rows
    codec: str
    video_bytes: int
    seconds: float
    families: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> family -> rows

    @property
    def num_rows(self) -> int:
        return sum(sum(per_kind.values()) for per_kind in self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.num_rows / self.seconds if self.seconds > 0 else float("inf")

    def lines(self) -> list[str]:
        """A human-readable report, one line per item."""

        def kinds(split: str) -> str:
            per_kind = self.counts[split]
            return ", ".join(f"{kind} {per_kind.get(kind, 0)}" for kind in QUESTION_KINDS)

        rows = self.num_rows
        speed = f"{self.seconds:.1f} s, {self.rows_per_second:.0f} rows/s, {self.codec}"
        mean_kb = self.video_bytes / max(rows, 1) / 1024
        return [
            f"wrote {rows} rows of the synthetic world to {self.out_dir} ({speed})",
            f"  train: {self.train_file}  {sum(self.counts['train'].values())} rows ({kinds('train')})",
            f"  test:  {self.test_file}  {sum(self.counts['test'].values())} rows ({kinds('test')})",
            f"  videos: {self.videos_dir}  {rows} clips, {mean_kb:.1f} kB each on average",
            f"  world: {self.world_file}",
        ]


def _manifest(seed: int, n: int, test_fraction: float, fps: float, counts: dict, families: dict,
              task: str) -> dict:
    """``world.json``: how the world was drawn, its vocabulary, and the counts per split."""
    return {
        "generator": "videoktr.synthetic",
        "task": task,
        "seed": seed,
        "n": n,
        "test_fraction": test_fraction,
        "fps": fps,
        "codec": video_codec(),
        "frame_size": [FRAME_SIZE, FRAME_SIZE],
        "frame_counts": list(FRAME_COUNTS),
        "colours": {name: list(rgb) for name, rgb in COLOURS.items()},
        "kinds": list(KINDS),
        "directions": list(DIRECTIONS),
        "families": {name: FAMILIES[name].kind for name in TASKS[task]},
        "answer_labels": dict(ANSWER_LABELS),
        "counts": counts,
        "family_counts": families,
        "files": {"train": "train.jsonl", "test": "test.jsonl", "videos": "videos/"},
    }


def generate_dataset(
    out_dir: str | os.PathLike,
    n: int,
    seed: int,
    test_fraction: float = defaults.WORLD_TEST_FRACTION,
    fps: float = defaults.WORLD_FPS,
    *,
    task: str = "standard",
    progress: bool | None = None,
) -> SynthSummary:
    """Write ``n`` rows of world ``seed`` under ``out_dir``:

    * ``videos/<id>.mp4``: one clip per row (``write_video`` at ``fps``);
    * ``train.jsonl`` and ``test.jsonl``: the rows (``question_row``), split by ``split_rows``;
    * ``world.json``: task, seed, parameters, the world's vocabulary and the counts per split,
      kind and family.

    ``task``: which families the rows come from (``synthetic.TASKS``; ``standard`` is the demo's
    world).

    Existing files of the same names are overwritten; nothing else is removed. ``progress``:
    show a tqdm bar (default: when ``n > 50``). Raises ``ValueError`` for ``n < 1``, a negative
    seed, ``test_fraction`` outside (0, 1) or ``fps <= 0``.
    """
    n, seed, task = _check_n(n), _check_seed(seed), check_task(task)
    test_fraction = _check_fraction(test_fraction)
    _check_fps(fps)
    out = Path(out_dir)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    indices = range(n)
    if progress if progress is not None else n > _PROGRESS_THRESHOLD:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="synth", unit="row")
    rows = []
    video_bytes = 0
    for index in indices:
        row, frames = _make_row(seed, index, task)
        path = write_video(frames, out / row["path"], fps=fps)
        video_bytes += path.stat().st_size
        row["fps"] = fps
        rows.append(row)

    in_test = split_rows([row["kind"] for row in rows], test_fraction, seed)
    splits = {"train": [r for r, t in zip(rows, in_test) if not t],
              "test": [r for r, t in zip(rows, in_test) if t]}  # fmt: skip
    files = {}
    for split, split_rows_ in splits.items():
        files[split] = out / f"{split}.jsonl"
        with files[split].open("w", encoding="utf-8") as handle:
            for row in split_rows_:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    counts = {
        split: {kind: sum(r["kind"] == kind for r in split_rows_) for kind in QUESTION_KINDS}
        for split, split_rows_ in splits.items()
    }
    families = {
        split: {name: sum(r["family"] == name for r in split_rows_) for name in TASKS[task]}
        for split, split_rows_ in splits.items()
    }
    world = _manifest(seed, n, test_fraction, fps, counts, families, task)
    world_file = out / "world.json"
    world_file.write_text(json.dumps(world, indent=2) + "\n", encoding="utf-8")
    return SynthSummary(
        out_dir=out,
        train_file=files["train"],
        test_file=files["test"],
        world_file=world_file,
        videos_dir=videos,
        counts=counts,
        codec=video_codec(),
        video_bytes=video_bytes,
        seconds=time.perf_counter() - started,
        families=families,
    )
