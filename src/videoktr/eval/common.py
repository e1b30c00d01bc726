"""Pieces every benchmark module shares: the item and judgement records, annotation-file reading
with precise errors, answer-block extraction and the strict option-letter parser.

A benchmark module turns its official annotation files into ``EvalItem`` records (one per
question) and judges one model output against one annotation row (``Judgement``). The runner
(``videoktr.eval.runner``) only ever talks to modules through those two records, so every
benchmark-specific rule lives in its own module, next to the citation of the official file it
reproduces.

The strict parser. Several official scorers read letters out of free text with substring rules
that misjudge answers (Video-Holmes takes any ``"A "`` in the answer, Video-MME the first capital
A-D anywhere in the response). Each module offers ``parser="strict"`` next to
``parser="official"``; unless a module says otherwise, strict means :func:`strict_choice`: the
answer is the content of the *last* complete ``<answer>...</answer>`` block, or the whole output
when there is none, and it must name exactly one option in one of a few unambiguous forms.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PARSERS",
    "contained_video",
    "AnnotationError",
    "EvalItem",
    "Judgement",
    "answer_text",
    "check_parser",
    "read_json_file",
    "read_json_or_jsonl",
    "require",
    "strict_choice",
]

PARSERS = ("official", "strict")
"""The parsers every benchmark accepts (the synthetic benchmark adds ``"video_r1"``)."""


class AnnotationError(ValueError):
    """A benchmark annotation file or row is malformed; the message names file, row and field."""


@dataclass(frozen=True)
class EvalItem:
    """One question of a benchmark, ready to be asked.

    Attributes:
        id: unique within the benchmark (the module documents how it is built).
        video: the video file the question is about (it may not exist: the runner records a
            missing or unreadable video as an error row).
        prompt: the user turn's text, as the benchmark's official script builds it.
        answer: the reference answer as the annotation gives it (a letter, "yes", a caption...).
        breakdown: the benchmark's own categories for this question, e.g.
            ``{"question_type": "SR"}``; summaries report accuracy per value of each key.
        row: the annotation row the item was made from (flattened for nested files, see each
            module), which is what ``judge`` / ``score_output`` take.
    """

    id: str
    video: Path
    prompt: str
    answer: str
    breakdown: dict[str, str]
    row: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Judgement:
    """How one output was scored.

    Attributes:
        score: in ``[0, 1]`` (1.0 / 0.0 for every multiple-choice rule).
        prediction: what the parser read from the output (a letter, ``"WRONG"``, ``""``...), for
            inspection; ``None`` when the rule does not extract a single value.
        counted: whether the official aggregation counts this question in its denominator.
            Only two official scripts drop questions: Video-MME ignores responses from which no
            letter can be extracted, VideoMMMU (lmms-eval) drops empty responses. Always ``True``
            for strict parsers.
        judge_reply: the LLM judge's reply, when one was asked (see ``videoktr.eval.judge``).
        judge_verdict: what the official decision rule read from ``judge_reply``:
            ``"correct"``, ``"incorrect"`` or ``"unparseable"`` (scored 0); ``None`` when no
            judge was asked.
    """

    score: float
    prediction: str | None
    counted: bool = True
    judge_reply: str | None = None
    judge_verdict: str | None = None


def contained_video(root: str | os.PathLike, relative: str | os.PathLike, location: str, field: str) -> Path:
    """``root / relative``, the media file an annotation row points at; ``AnnotationError``
    naming the row and field when it resolves outside ``root`` (``--data``), by ``..``, an
    absolute path or a symlink. One rule for every media path the library opens: the training
    data's (``data.resolve_media_path``) is the same."""
    from ..data.dataset import resolve_media_path

    try:
        resolve_media_path(root, str(relative))
    except ValueError as error:
        raise AnnotationError(f"{location}: field {field!r}: {error}") from None
    return Path(root) / relative


def check_parser(benchmark: str, parser: str, allowed: Sequence[str] = PARSERS) -> str:
    if parser not in allowed:
        raise ValueError(
            f"{benchmark}: unknown parser {parser!r}; expected one of "
            + ", ".join(repr(p) for p in allowed)
        )
    return parser


# ------------------------------------------------------------------------------ files and rows


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def read_json_file(path: str | os.PathLike) -> Any:
    """Parse a ``.json`` file; ``AnnotationError`` naming the file (and line/column) otherwise."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such annotation file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def read_json_or_jsonl(path: str | os.PathLike) -> list[tuple[str, Any]]:
    """``[(location, row), ...]`` from a ``.json`` list or a ``.jsonl`` file.

    ``location`` is ``"<file> index <i>"`` (JSON) or ``"<file> line <n>"`` (JSONL, 1-based,
    blank lines skipped). A ``.json`` file that does not hold a list is an error; callers that
    accept other shapes use :func:`read_json_file` instead.
    """
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        if not path.is_file():
            raise AnnotationError(f"{path}: no such annotation file")
        rows: list[tuple[str, Any]] = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AnnotationError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path} line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise AnnotationError(
                    f"{path} line {number}: invalid JSON at column {exc.colno}: {exc.msg}"
                ) from exc
        return rows
    data = read_json_file(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of rows, got {_type_name(data)}")
    return [(f"{path} index {index}", row) for index, row in enumerate(data)]


def require(row: object, name: str, kind: type | tuple[type, ...], location: str) -> Any:
    """``row[name]``, checked to be of ``kind`` (a non-empty string for ``str``)."""
    if not isinstance(row, Mapping):
        raise AnnotationError(f"{location}: row is not a JSON object (got {_type_name(row)})")
    if name not in row:
        raise AnnotationError(f"{location}: field {name!r} is missing")
    value = row[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise AnnotationError(f"{location}: field {name!r} must be {_kind_names(kinds)}, got bool")
    if not isinstance(value, kinds):
        raise AnnotationError(
            f"{location}: field {name!r} must be {_kind_names(kinds)}, got {_type_name(value)}"
        )
    if isinstance(value, str) and not value.strip():
        raise AnnotationError(f"{location}: field {name!r} must not be empty")
    return value


def _kind_names(kinds: Iterable[type]) -> str:
    names = {"str": "a string", "int": "an integer", "dict": "an object", "list": "a list"}
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def annotation_files(data_dir: str | os.PathLike, suffixes: Sequence[str]) -> list[Path]:
    """The annotation files: ``data_dir`` itself if it is a file, else its top-level files with
    one of ``suffixes`` (sorted by name). ``AnnotationError`` if there are none."""
    path = Path(data_dir)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise AnnotationError(f"{path}: no such data directory or annotation file")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise AnnotationError(
            f"{path}: no annotation files ({', '.join('*' + s for s in suffixes)}) found"
        )
    return files


def data_root(data_dir: str | os.PathLike) -> Path:
    """The directory videos are looked up under: ``data_dir``, or its parent for a file."""
    path = Path(data_dir)
    return path.parent if path.is_file() else path


def check_unique_ids(items: Sequence[EvalItem], benchmark: str) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.id in seen:
            raise AnnotationError(
                f"{benchmark}: question id {item.id!r} occurs twice (items {seen[item.id]} and "
                f"{index}); ids must be unique for resuming and re-scoring"
            )
        seen[item.id] = index


# ------------------------------------------------------------------------------ answers


# A complete answer block whose content contains no further answer tag (as
# videoktr.rewards.extract_answer reads it).
_ANSWER_BLOCK = re.compile(r"<answer>((?:(?!</?answer>).)*)</answer>", re.DOTALL)


def answer_text(output: str) -> str:
    """The content of the last complete ``<answer>...</answer>`` block, else the whole output;
    stripped either way. This is what every strict parser reads."""
    blocks = _ANSWER_BLOCK.findall(output) if isinstance(output, str) else []
    text = blocks[-1] if blocks else (output if isinstance(output, str) else "")
    return text.strip()


# "B", "B.", "B)", "B:", "(B)", "[B]", optionally in markdown bold: the label alone.
_LABEL_ALONE = re.compile(r"\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Za-z])[.):]?")
# "B. text", "B) text", "B: text", "(B) text": a punctuated label and then text.
_LABEL_AND_TEXT = re.compile(r"(?:\(\s*([A-Za-z])\s*\)|([A-Za-z])[.):])\s*(.*\S)", re.DOTALL)


def _comparable(text: str) -> str:
    return " ".join(text.split()).casefold().removesuffix(".").rstrip()


def strict_choice(output: str, options: Mapping[str, str]) -> str | None:
    """The option letter the output names unambiguously, else ``None``.

    ::

        a = answer_text(output), with one pair of surrounding ``**`` removed
        strict_choice = L   if a is the label alone: L, L., L), L:, (L), [L]
                        L   if a is "L. t", "L) t", "L: t" or "(L) t" and t is option L's text
                            (compared up to case, runs of whitespace and a final period)
                        None otherwise

    ``L`` is one letter, in either case, that is a key of ``options``. An answer naming two
    letters (``"A, B"``), option text without its label (``"red"``) or a label with another
    option's text scores as no answer.
    """
    answer = answer_text(output)
    if answer.startswith("**") and answer.endswith("**") and len(answer) > 4:
        answer = answer[2:-2].strip()
    letters = {key.upper(): value for key, value in options.items()}
    match = _LABEL_ALONE.fullmatch(answer)
    if match:
        letter = next(g for g in match.groups() if g).upper()
        return letter if letter in letters else None
    match = _LABEL_AND_TEXT.fullmatch(answer)
    if match:
        letter = (match.group(1) or match.group(2)).upper()
        if letter in letters and _comparable(str(letters[letter])) == _comparable(match.group(3)):
            return letter
    return None


def letter_options(options: Sequence[str]) -> dict[str, str]:
    """``{"A": text, "B": text, ...}`` for a list of options, stripping an ``"A. "`` label that
    an option already carries."""
    out: dict[str, str] = {}
    for index, option in enumerate(options):
        letter = chr(ord("A") + index)
        text = str(option)
        match = re.match(rf"^\s*{letter}\s*[.):]\s*", text)
        out[letter] = text[match.end() :] if match else text
    return out
