"""Rewards for GRPO on the Video-R1 data format.

A reward scores one model completion against one dataset row. Rows follow Video-R1: ``problem``,
``problem_type`` (one of :data:`PROBLEM_TYPES`), ``options`` (``["A. red", "B. blue"]`` for
multiple choice), ``solution`` (``"<answer>B</answer>"``, the tags optional here), ``path``,
``data_type``. Completions are asked to write ``<think>reasoning</think><answer>answer</answer>``.

Two built-in rewards, as in Video-R1 (``src/r1-v/src/open_r1/grpo.py``):

- ``accuracy``: the answer in the completion's last ``<answer>`` block, scored against the
  solution by a rule chosen by ``problem_type`` (exact letter, exact number, 1 - WER, ROUGE F1,
  1 - relative error). Always in ``[0, 1]``.
- ``format``: 1.0 when the completion is exactly ``<think>...</think>`` then
  ``<answer>...</answer>``, else 0.0.

Design rules:

- **Same scores as Video-R1 on well-formed inputs.** The numerical rule keeps Video-R1's
  decimal-mark check and 2-decimal rounding, OCR is its whitespace-token WER, free-form its
  mean of ROUGE-1/2/L F1 with the Porter stemmer. The metrics come from libraries (``jiwer``,
  ``rouge-score``), not hand-written loops. Where we deliberately differ, the function's
  docstring says so under "Differs from Video-R1".
- **The model's output never raises.** A completion with no answer block, an empty answer or
  an unparsable number scores 0.0. Nothing is ever passed to ``eval``.
- **The dataset's errors do raise.** An unknown ``problem_type`` or a missing ``solution`` is
  a bug upstream of the reward (the loader validates rows); it raises :class:`InvalidRowError`
  (a ``ValueError``), which :func:`compute_rewards` lets through.
- **A failing user reward does not stop training.** :func:`compute_rewards` scores the items it
  raised on as 0.0 and emits one warning per reward function per call.

A reward function is any callable ``f(completion: str, row: Mapping) -> float``. Register one by
name in :data:`REWARD_FUNCTIONS` or name it as ``"package.module:function"`` (see
:func:`load_reward_function`).

* :mod:`~videoktr.rewards.answers` — the answer block and each problem type's rule;
* :mod:`~videoktr.rewards.functions` — the reward functions, loading them, combining them.
"""

from ..data.dataset import PROBLEM_TYPES
from .answers import extract_answer
from .functions import (
    REWARD_FUNCTIONS,
    InvalidRowError,
    RewardFunction,
    accuracy_reward,
    compute_rewards,
    format_reward,
    load_reward_function,
)

__all__ = [
    "PROBLEM_TYPES",
    "REWARD_FUNCTIONS",
    "InvalidRowError",
    "RewardFunction",
    "accuracy_reward",
    "compute_rewards",
    "extract_answer",
    "format_reward",
    "load_reward_function",
]

