"""Video-R1 style question/answer datasets: rows validated once at load time, media decoded later.

A Video-R1 dataset is a ``.json`` file holding a list of rows, or a ``.jsonl`` file with one row
per line. A row is a JSON object with at least::

    problem        str   the question
    problem_type   str   "multiple choice" | "numerical" | "OCR" | "free-form" | "regression"
    options        list  of str; required and non-empty for "multiple choice", optional otherwise
    solution       str   the reference, e.g. "<answer>B</answer>"
    path           str   media file, relative to the data root (Video-R1 writes "./...")
    data_type      str   "video" | "image"

Other keys (``problem_id``, ``data_source``, ...) are kept in ``Sample.row``.

Why two stages. Checking a row's fields is cheap, so every row is checked when the file is
loaded, and a training run learns about a malformed file before the first step. Decoding media is
expensive, so it happens per sample (usually in DataLoader workers) and a missing or corrupt file
is only discovered then; ``VideoR1Dataset.decode`` reports it the same way a malformed row is
reported: skipped with a warning and counted (``on_bad_sample="skip"``, the default) or raised as
``DatasetError`` (``on_bad_sample="raise"``). Every message names the dataset file, the row (the
1-based ``line`` of a JSONL file or the 0-based ``index`` of a JSON list) and the field.

Media paths may not leave the data root: a path is resolved (``..`` collapsed, symlinks followed)
and must land inside the resolved root, so a dataset file cannot make the trainer read arbitrary
files through ``../``, an absolute path or a symlink.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset

from .. import defaults
from .video import DecodedVideo, ImageDecodeError, VideoDecodeError, decode_video, load_image

__all__ = [
    "DATA_TYPES",
    "PROBLEM_TYPES",
    "BadSampleWarning",
    "DatasetError",
    "MediaSample",
    "Sample",
    "SkippedMedia",
    "SkippedRow",
    "VideoR1Dataset",
    "load_media",
    "resolve_media_path",
]

PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")
DATA_TYPES = ("video", "image")
ON_BAD_SAMPLE = ("skip", "raise")
_REQUIRED_TEXT_FIELDS = ("problem", "problem_type", "solution", "path", "data_type")
_MAX_OPTIONS = 26  # options are labelled A..Z
# A question with its options longer than this cannot fit a video prompt; tokenizing one of 1 MB
# stalls a training step for minutes, so such a row is refused when the dataset is read.
MAX_QUESTION_CHARS = 20_000
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


class DatasetError(ValueError):
    """A dataset file, row or media file is unusable; the message names file, row and field."""


class BadSampleWarning(UserWarning):
    """A malformed row or an unreadable media file was skipped (``on_bad_sample="skip"``)."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One validated row; nothing is decoded.

    Attributes:
        row: the row as read from the file, extra keys included.
        path: the media file, resolved (absolute, symlinks followed, inside the data root).
        data_type: ``"video"`` or ``"image"``.
        problem: the question text.
        problem_type: one of ``PROBLEM_TYPES``.
        options: the options of a multiple-choice row (``[]`` for other types unless given).
        solution: the reference answer as written, e.g. ``"<answer>B</answer>"``.
        row_id: the row's number in its file: 1-based line of a JSONL file, 0-based index of a
            JSON list.
        location: ``"<file> line <n>"`` or ``"<file> index <i>"``, for messages.
    """

    row: dict[str, Any]
    path: Path
    data_type: str
    problem: str
    problem_type: str
    options: list[str]
    solution: str
    row_id: int
    location: str

    @property
    def answer(self) -> str:
        """The reference answer: the text inside the last ``<answer>...</answer>`` of
        ``solution``, stripped; the whole stripped ``solution`` when it has no such tags."""
        found = _ANSWER_RE.findall(self.solution)
        return (found[-1] if found else self.solution).strip()


class SkippedRow(NamedTuple):
    """A row dropped at load time: ``field`` is ``None`` when the row as a whole is unusable."""

    row_id: int
    field: str | None
    reason: str


class SkippedMedia(NamedTuple):
    """A sample whose media could not be decoded."""

    row_id: int
    path: Path
    reason: str


@dataclass(eq=False)
class MediaSample:
    """A sample with its decoded media: a ``DecodedVideo``, or an image tensor ``[C, H, W]``."""

    sample: Sample
    media: DecodedVideo | torch.Tensor


class _RowProblem(Exception):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def resolve_media_path(data_root: str | os.PathLike, raw_path: str) -> Path:
    """Resolve a row's ``path`` against ``data_root``; reject one that ends up outside it.

    A relative path is joined to the root; an absolute one is taken as is. The result is
    resolved (``..`` collapsed, symlinks followed, whether or not the file exists) and must be the
    resolved root or lie below it. Raises ``ValueError`` saying where the path leads otherwise.
    """
    root = Path(data_root).resolve()
    candidate = Path(raw_path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loop, NUL byte, ...
        raise ValueError(f"cannot resolve {raw_path!r} ({exc})") from exc
    if not resolved.is_relative_to(root):
        raise ValueError(f"{raw_path!r} resolves to {resolved}, outside the data root {root}")
    return resolved


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _validate_row(row: object, data_root: Path, root_hint: str = "") -> dict[str, Any]:
    """The checked fields of ``row``, or ``_RowProblem`` naming the first bad field
    (``root_hint`` is added to a path that leaves the data root)."""
    if not isinstance(row, dict):
        raise _RowProblem(None, f"row is not a JSON object (got {_type_name(row)})")
    values: dict[str, Any] = {}
    for name in _REQUIRED_TEXT_FIELDS:
        if name not in row:
            raise _RowProblem(name, "missing")
        value = row[name]
        if not isinstance(value, str):
            raise _RowProblem(name, f"must be a string, got {_type_name(value)}")
        if name != "solution" and not value.strip():
            raise _RowProblem(name, "must not be empty")
        values[name] = value
    if values["problem_type"] not in PROBLEM_TYPES:
        raise _RowProblem(
            "problem_type",
            f"unknown problem type {values['problem_type']!r}; expected one of "
            + ", ".join(repr(t) for t in PROBLEM_TYPES),
        )
    if values["data_type"] not in DATA_TYPES:
        raise _RowProblem(
            "data_type",
            f"unknown data type {values['data_type']!r}; expected 'video' or 'image'",
        )

    options = row.get("options")
    multiple_choice = values["problem_type"] == "multiple choice"
    if options is None:
        if multiple_choice:
            raise _RowProblem("options", "missing; a multiple choice row needs a list of options")
        options = []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise _RowProblem(
            "options",
            f"must be a list of strings, got {_type_name(options)}"
            + (" with non-string items" if isinstance(options, list) else ""),
        )
    if multiple_choice and not options:
        raise _RowProblem("options", "empty; a multiple choice row needs at least one option")
    if len(options) > _MAX_OPTIONS:
        raise _RowProblem("options", f"{len(options)} options; at most {_MAX_OPTIONS} (A-Z)")
    values["options"] = list(options)
    length = len(values["problem"]) + sum(len(option) for option in options)
    if length > MAX_QUESTION_CHARS:
        raise _RowProblem("problem", f"the question and its options hold {length:,} characters, more than "
                                     f"{MAX_QUESTION_CHARS:,}: too long for a video prompt")

    try:
        values["resolved_path"] = resolve_media_path(data_root, values["path"])
    except ValueError as exc:
        raise _RowProblem("path", str(exc) + root_hint) from None
    return values


def load_media(
    sample: Sample,
    fps: float = defaults.FPS,
    min_frames: int = defaults.MIN_FRAMES,
    max_frames: int = defaults.MAX_FRAMES,
) -> DecodedVideo | torch.Tensor:
    """Decode a sample's media: ``decode_video(sample.path, fps, min_frames, max_frames)`` for a
    video, ``load_image(sample.path)`` (uint8 ``[C, H, W]``) for an image.

    Raises ``VideoDecodeError`` / ``ImageDecodeError`` (both ``ValueError``) naming the file.
    """
    if sample.data_type == "video":
        return decode_video(sample.path, fps=fps, min_frames=min_frames, max_frames=max_frames)
    if sample.data_type == "image":
        return load_image(sample.path)
    raise ValueError(f"{sample.location}: unknown data_type {sample.data_type!r}")


@dataclass
class _LoadReport:
    samples: list[Sample] = field(default_factory=list)
    skipped_rows: list[SkippedRow] = field(default_factory=list)


class VideoR1Dataset(Dataset):
    """A Video-R1 ``.json`` / ``.jsonl`` dataset; ``dataset[i]`` is a ``Sample`` (not decoded).

    Args:
        dataset_file: the ``.json`` (a list of rows) or ``.jsonl`` (one row per line; blank
            lines are ignored) file.
        data_root: directory that row paths are relative to and may not leave; defaults to the
            dataset file's directory.
        on_bad_sample: ``"skip"``: a malformed row (at load time) or an unreadable media file
            (in ``decode``) is dropped with a ``BadSampleWarning`` and recorded in
            ``skipped_rows`` / ``skipped``; ``"raise"``: ``DatasetError`` with the same message.
        fps, min_frames, max_frames: frame sampling for ``decode`` (see
            ``sample_frame_indices``).

    File-level problems (a data root that is not a directory, no such file, unknown suffix,
    invalid JSON in a ``.json`` file, a ``.json`` file that is not a list) always raise
    ``DatasetError``: there is no row to skip.

    With a multi-worker ``DataLoader`` each worker holds its own copy of the dataset, so media
    skips are recorded in the worker's copy; a trainer that needs the global count should count
    the ``None`` results of ``decode`` in its collate function (``MediaSample`` or ``None``).
    """

    def __init__(
        self,
        dataset_file: str | os.PathLike,
        data_root: str | os.PathLike | None = None,
        *,
        on_bad_sample: str = "skip",
        fps: float = defaults.FPS,
        min_frames: int = defaults.MIN_FRAMES,
        max_frames: int = defaults.MAX_FRAMES,
    ) -> None:
        if on_bad_sample not in ON_BAD_SAMPLE:
            raise ValueError(f"on_bad_sample must be 'skip' or 'raise', got {on_bad_sample!r}")
        self.dataset_file = Path(dataset_file)
        self.data_root = Path(
            self.dataset_file.parent if data_root is None else data_root
        ).resolve()
        if not self.data_root.is_dir():
            # Every media file would be "missing": fail once, not once per row.
            raise DatasetError(
                f"{self.dataset_file}: data root {self.data_root} is not a directory"
            )
        self.on_bad_sample = on_bad_sample
        self._root_hint = "" if data_root is not None else (
            " (relative paths resolve against data_root, which defaults to the dataset file's folder; set "
            "data_root, --data_root DIR in videoktr train, to the folder the paths are written relative to)"
        )
        self.fps = fps
        self.min_frames = min_frames
        self.max_frames = max_frames
        report = self._load()
        self.samples: list[Sample] = report.samples
        self.skipped_rows: list[SkippedRow] = report.skipped_rows
        self.skipped: list[SkippedMedia] = []
        #: locations of samples ``load_or_replace`` found unreadable (each skipped from then on).
        self.unreadable: set[str] = set()
        self._positions: dict[int, int] | None = None

    # ------------------------------------------------------------------ loading

    def _rows(self) -> Iterator[tuple[int, str, object]]:
        """Yield ``(row_id, label, row)``; ``row`` is a ``_RowProblem`` for an unparsable line."""
        file = self.dataset_file
        if not file.is_file():
            raise DatasetError(f"{file}: no such dataset file")
        suffix = file.suffix.lower()
        if suffix not in (".json", ".jsonl"):
            raise DatasetError(f"{file}: expected a .json or .jsonl file, got suffix {suffix!r}")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{file}: cannot read as UTF-8 text ({exc})") from exc

        if suffix == ".json":
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
                ) from exc
            if not isinstance(rows, list):
                raise DatasetError(
                    f"{file}: a .json dataset must hold a list of rows, got {_type_name(rows)}"
                )
            for index, row in enumerate(rows):
                yield index, f"index {index}", row
            return

        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row: object = json.loads(line)
            except json.JSONDecodeError as exc:
                row = _RowProblem(None, f"invalid JSON at column {exc.colno}: {exc.msg}")
            yield line_number, f"line {line_number}", row

    def _load(self) -> _LoadReport:
        report = _LoadReport()
        for row_id, label, row in self._rows():
            location = f"{self.dataset_file} {label}"
            try:
                if isinstance(row, _RowProblem):
                    raise row
                values = _validate_row(row, self.data_root, self._root_hint)
            except _RowProblem as problem:
                where = "row" if problem.field is None else f"field {problem.field!r}"
                self._bad_sample(f"{location}: {where}: {problem.reason}")
                report.skipped_rows.append(SkippedRow(row_id, problem.field, problem.reason))
                continue
            assert isinstance(row, dict)
            report.samples.append(
                Sample(
                    row=row,
                    path=values["resolved_path"],
                    data_type=values["data_type"],
                    problem=values["problem"],
                    problem_type=values["problem_type"],
                    options=values["options"],
                    solution=values["solution"],
                    row_id=row_id,
                    location=location,
                )
            )
        return report

    def _bad_sample(self, message: str) -> None:
        if self.on_bad_sample == "raise":
            raise DatasetError(message)
        warnings.warn(message, BadSampleWarning, stacklevel=4)

    # ------------------------------------------------------------------ access

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    @property
    def num_skipped_rows(self) -> int:
        """Malformed rows dropped at load time."""
        return len(self.skipped_rows)

    @property
    def num_skipped_media(self) -> int:
        """Samples whose media could not be decoded, so far (see ``skipped``)."""
        return len(self.skipped)

    def record_skipped_media(self, sample: Sample, reason: str) -> None:
        """Record that ``sample``'s media is unusable: warn and append to ``skipped``, or raise
        ``DatasetError`` under ``on_bad_sample="raise"``. For trainers that decode elsewhere."""
        hint = self._root_hint if "no such file" in reason else ""
        self._bad_sample(
            f"{sample.location}: field 'path': unreadable {sample.data_type}: {reason}{hint}"
        )
        self.skipped.append(SkippedMedia(sample.row_id, sample.path, reason))

    def decode(self, index: int) -> MediaSample | None:
        """Decode sample ``index``'s media; ``None`` (recorded in ``skipped``) if it is unreadable.

        Only ``VideoDecodeError`` / ``ImageDecodeError`` count as unreadable media; under
        ``on_bad_sample="raise"`` they become a ``DatasetError`` naming file, row and path.
        """
        sample = self.samples[index]
        try:
            media = load_media(sample, self.fps, self.min_frames, self.max_frames)
        except (VideoDecodeError, ImageDecodeError) as exc:
            try:
                self.record_skipped_media(sample, str(exc))
            except DatasetError as error:
                raise error from exc
            return None
        return MediaSample(sample, media)

    def reject(self, sample: Sample, reason: str) -> None:
        """Mark ``sample`` unusable for a reason found after decoding (e.g. a prompt too long):
        recorded like unreadable media, and skipped by ``load_or_replace`` from then on."""
        self._bad_sample(f"{sample.location}: {reason}")
        self.skipped.append(SkippedMedia(sample.row_id, sample.path, reason))
        self.unreadable.add(sample.location)

    def load_or_replace(
        self, sample: Sample, fps: float, min_frames: int, max_frames: int, max_tries: int = 32
    ) -> tuple[Sample, DecodedVideo | torch.Tensor]:
        """``(sample, media)``, or, when ``sample``'s media cannot be decoded, the next decodable
        sample in dataset order and its media: a trainer's batch keeps its size.

        Each unreadable sample is recorded once (``record_skipped_media``: a warning, or
        ``DatasetError`` under ``on_bad_sample="raise"``) and added to ``unreadable``; later
        visits skip it silently. ``DatasetError`` after ``max_tries`` unreadable samples in a row.
        """
        if self._positions is None:
            self._positions = {id(item): index for index, item in enumerate(self.samples)}
        start = self._positions.get(id(sample), 0)
        for attempt in range(max_tries):
            candidate = self.samples[(start + attempt) % len(self.samples)]
            if candidate.location in self.unreadable:
                continue
            try:
                return candidate, load_media(candidate, fps, min_frames, max_frames)
            except (VideoDecodeError, ImageDecodeError) as error:
                self.record_skipped_media(candidate, str(error))
                self.unreadable.add(candidate.location)
        raise DatasetError(f"{self.dataset_file}: {max_tries} samples in a row could not be used (the last: "
                           f"{candidate.location}, {candidate.path}); check the videos and data_root {self.data_root}")

    def iter_decoded(self) -> Iterator[MediaSample]:
        """Every sample whose media decodes, in order; unreadable ones are handled by ``decode``."""
        for index in range(len(self)):
            item = self.decode(index)
            if item is not None:
                yield item

    def summary(self) -> str:
        """``"loaded N rows from FILE; skipped K malformed rows; skipped M unreadable media"``."""
        return (
            f"loaded {len(self)} rows from {self.dataset_file}; "
            f"skipped {self.num_skipped_rows} malformed rows; "
            f"skipped {self.num_skipped_media} unreadable media"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary()})"
