"""The typed record of one prompt's rollout, and the rollout dump's schema, defined once.

``PromptRollout`` is what one training step knows about one prompt and its ``G`` completions:
created by the trainer's rollout (sampling, rewards, advantages, attribution), completed by the
key-token selection (weights and each signal's mask), read by the loss, the logging and the
dump. ``RolloutRecord`` is one line of a rollout dump, one completion: the trainer writes it
(``PromptRollout.dump_records``, ``write_rollout_dump``) and ``videoktr analyze`` reads it back
(``load_rollouts``), both through this module. A dump line, in the order it is written::

    step, prompt_id, problem_type, completion
    tokens        the completion's tokenizer tokens (byte-level BPE: "Ġ" is a space)
    token_ids     their ids
    scores        {signal: [score per token]}; NaN where a signal is unavailable
    selected      the per-token training weight: the union mask (1.0 / 0.0) or soft
                  weights; null when every token was trained (vanilla GRPO)
    signal_masks  {signal: [selected per token]}: each signal's own top-r selection
    gradient_weights  [g_t per token]: 1 - 2 p(y_t) + sum_w p(w)^2, how much policy gradient
                  the token can carry (``core.gradient_share``); absent in older dumps
    reward, rewards, advantage

Dumps go to ``OUTPUT_DIR/rollouts/stepNNNNNN-rankR.jsonl`` (``dump_path``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .dataset import Sample

__all__ = [
    "REQUIRED_FIELDS",
    "PromptRollout",
    "RolloutDumpError",
    "RolloutRecord",
    "dump_files",
    "dump_path",
    "load_rollouts",
    "parse_rollout",
    "write_rollout_dump",
]

# Fields without which no statistic can be computed; the others are optional when reading.
REQUIRED_FIELDS = ("tokens", "scores", "signal_masks")


class RolloutDumpError(ValueError):
    """A rollout dump file is missing, or one of its lines is not a valid record."""


# ---------------------------------------------------------------------------- one prompt


@dataclass
class PromptRollout:
    """One prompt's ``G`` completions and what a step derives from them; rows ``[G, T]``.

    Set by the rollout: ``sample`` (the dataset row), ``prompt_inputs`` (the processor's output),
    ``completion_ids`` / ``completion_mask`` (true up to and including the end token),
    ``texts``, ``rewards`` (weighted sum) and ``rewards_per_function``, ``advantages``,
    ``old_logps`` (the sampling policy's log-probs, from the attribution pass; None where no
    step needs them: vanilla GRPO with one update per rollout), ``ref_logps``
    (the reference model's, or None), ``scores`` (signal -> ``[G, T]``, NaN where unavailable),
    ``gradient_weight`` (each token's ``g_t``, ``core.signals.token_log_stats``, or None) and
    ``timing`` (seconds per phase); from a sampler other than the policy (vLLM),
    ``sampler_logps`` (its log-probs of the tokens) and ``importance_weights`` (the truncated
    sampler-to-trainer ratios the loss weights each token's term by, or None when the
    correction is off). Set by the selection: ``token_weights`` (the hard mask
    or soft weights; None when every token is trained) and ``signal_masks`` (each signal's own
    selection). ``seed`` is the prompt's sampling seed (it also seeds the frame shuffles);
    ``scored_in_loss`` marks a rollout whose policy scoring (old log-probs, signals, importance
    weights, selection) the trainer completes inside its first loss forward.
    """

    sample: Sample
    prompt_inputs: Mapping[str, Any]
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    texts: list[str]
    rewards: torch.Tensor
    rewards_per_function: dict[str, torch.Tensor]
    advantages: torch.Tensor
    old_logps: torch.Tensor | None
    ref_logps: torch.Tensor | None = None
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    gradient_weight: torch.Tensor | None = None
    token_weights: torch.Tensor | None = None
    signal_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    sampler_logps: torch.Tensor | None = None
    importance_weights: torch.Tensor | None = None
    seed: int | None = None
    scored_in_loss: bool = False

    @property
    def num_completions(self) -> int:
        return int(self.completion_ids.shape[0])

    @property
    def length(self) -> int:
        """``T``, the padded completion length."""
        return int(self.completion_ids.shape[1])

    def loss_weights(self) -> torch.Tensor:
        """The loss's per-token weights: ``token_weights`` (or 1 everywhere), 0 on padding."""
        mask = self.completion_mask
        return (self.token_weights if self.token_weights is not None else mask).float() * mask

    def dump_records(self, tokenizer, step: int) -> list[RolloutRecord]:
        """One ``RolloutRecord`` per completion, padding removed."""
        records = []
        for row in range(self.num_completions):
            keep = self.completion_mask[row].cpu()
            ids = self.completion_ids[row].cpu()[keep].tolist()
            weights = self.token_weights
            records.append(RolloutRecord(
                step=step,
                prompt_id=self.sample.location,
                problem_type=self.sample.problem_type,
                completion=self.texts[row],
                tokens=tokenizer.convert_ids_to_tokens(ids),
                token_ids=ids,
                scores={name: values[row].cpu()[keep].tolist() for name, values in self.scores.items()},
                selected=None if weights is None else weights[row].cpu()[keep].float().tolist(),
                gradient_weights=(None if self.gradient_weight is None
                                  else self.gradient_weight[row].cpu()[keep].float().tolist()),
                signal_masks={name: mask[row].cpu()[keep].tolist() for name, mask in self.signal_masks.items()},
                reward=self.rewards[row].item(),
                rewards={name: values[row].item() for name, values in self.rewards_per_function.items()},
                advantage=self.advantages[row].item(),
            ))
        return records


# ---------------------------------------------------------------------------- one dump line


@dataclass(frozen=True)
class RolloutRecord:
    """One completion of a rollout dump (see the module docstring for the fields). When read
    back, ``file`` and ``line`` say where it came from; fields other than ``tokens``, ``scores``
    and ``signal_masks`` may be absent in a dump (``None`` or empty then)."""

    tokens: list[str]
    scores: dict[str, list[float]]
    signal_masks: dict[str, list[bool]]
    selected: list[float] | None = None
    gradient_weights: list[float] | None = None
    step: int | None = None
    prompt_id: str | None = None
    problem_type: str | None = None
    completion: str = ""
    token_ids: list[int] | None = None
    reward: float | None = None
    rewards: dict[str, float] = field(default_factory=dict)
    advantage: float | None = None
    file: str = "<string>"
    line: int = 1

    @property
    def source(self) -> str:
        """``"FILE line N"``, for messages."""
        return f"{self.file} line {self.line}"

    def to_json(self) -> str:
        """The dump line (NaN scores written as ``NaN``, as ``json.dumps`` does)."""
        return json.dumps({
            "step": self.step, "prompt_id": self.prompt_id, "problem_type": self.problem_type,
            "completion": self.completion, "tokens": self.tokens, "token_ids": self.token_ids,
            "scores": self.scores, "selected": self.selected, "signal_masks": self.signal_masks,
            "gradient_weights": self.gradient_weights,
            "reward": self.reward, "rewards": self.rewards, "advantage": self.advantage,
        })


def dump_path(output_dir: str | Path, step: int, rank: int) -> Path:
    """Where a training run writes its dump of ``step`` on process ``rank``."""
    return Path(output_dir) / "rollouts" / f"step{step:06d}-rank{rank}.jsonl"


def write_rollout_dump(path: str | Path, records: Iterable[RolloutRecord]) -> Path:
    """Append ``records`` to the dump file ``path``, one line each (directories created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for record in records:
            handle.write(record.to_json() + "\n")
    return path


# ---------------------------------------------------------------------------- reading


def _as_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected numbers, got {value!r}")
    return float(value)


def _as_score(value: Any) -> float:
    return math.nan if value is None else _as_number(value)


def _as_flag(value: Any) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise TypeError(f"expected true/false, got {value!r}")


def _load_object(text: str, source: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise RolloutDumpError(f"{source}: invalid JSON at column {error.colno}: {error.msg}") from error
    if not isinstance(record, dict):
        raise RolloutDumpError(f"{source}: expected a JSON object, got {type(record).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise RolloutDumpError(f"{source}: missing field{plural} {', '.join(map(repr, missing))}")
    tokens = record["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise RolloutDumpError(f"{source}: field 'tokens' must be a list of strings")
    return record


def parse_rollout(text: str, file: str | Path = "<string>", line: int = 1) -> RolloutRecord:
    """Line ``line`` of dump ``file``, whose content is ``text``, as a :class:`RolloutRecord`.
    Any error is a :class:`RolloutDumpError` starting with ``"FILE line N:"``.

    Checks what the statistics rely on: the required fields exist, ``tokens`` is a list of
    strings, and every per-token list (each signal's scores and mask, ``selected``) has one
    value per token. ``NaN`` (as ``json.dumps`` writes it) and ``null`` scores both mean
    "unavailable".
    """
    source = f"{file} line {line}"
    record = _load_object(text, source)
    length = len(record["tokens"])

    def per_token(name: str, values: Any, convert: Callable[[Any], Any]) -> list:
        if not isinstance(values, list):
            raise RolloutDumpError(f"{source}: field {name!r} must be a list, got {type(values).__name__}")
        if len(values) != length:
            raise RolloutDumpError(f"{source}: field {name!r} has {len(values)} values for {length} tokens")
        try:
            return [convert(value) for value in values]
        except (TypeError, ValueError) as error:
            raise RolloutDumpError(f"{source}: field {name!r}: {error}") from error

    def per_signal(name: str, convert: Callable[[Any], Any]) -> dict[str, list]:
        mapping = record[name]
        if not isinstance(mapping, dict):
            raise RolloutDumpError(f"{source}: field {name!r} must be an object {{signal: [one value per token]}}")
        return {signal: per_token(f"{name}.{signal}", values, convert) for signal, values in mapping.items()}

    selected = record.get("selected")
    gradient_weights = record.get("gradient_weights")
    return RolloutRecord(
        tokens=record["tokens"],
        scores=per_signal("scores", _as_score),
        signal_masks=per_signal("signal_masks", _as_flag),
        selected=None if selected is None else per_token("selected", selected, _as_number),
        gradient_weights=(None if gradient_weights is None
                          else per_token("gradient_weights", gradient_weights, _as_number)),
        step=record.get("step"),
        prompt_id=record.get("prompt_id"),
        problem_type=record.get("problem_type"),
        completion=record.get("completion") or "",
        token_ids=record.get("token_ids"),
        reward=record.get("reward"),
        rewards=record.get("rewards") or {},
        advantage=record.get("advantage"),
        file=str(file),
        line=line,
    )


def dump_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The dump files named by ``paths``: each a ``.jsonl`` file, or a directory whose
    ``*.jsonl`` files are taken in name order (``step000010-rank0`` before ``step000020-rank0``).
    A missing path, or a directory with no dump, raises :class:`RolloutDumpError`."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise RolloutDumpError(f"{path}: directory holds no *.jsonl rollout dump")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise RolloutDumpError(f"{path}: no such file or directory")
    if not files:
        raise RolloutDumpError("no rollout dump given")
    return files


def load_rollouts(paths: str | Path | Iterable[str | Path]) -> list[RolloutRecord]:
    """Every record of the dump files named by ``paths`` (see :func:`dump_files`), in file
    order then line order. Blank lines are skipped; any other line that is not a valid record
    raises :class:`RolloutDumpError` naming the file, the line and what is wrong."""
    records = []
    for path in dump_files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise RolloutDumpError(f"{path}: cannot read as UTF-8 text ({error})") from error
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                records.append(parse_rollout(line, path, number))
    return records
