"""A held-out metric with no sampling noise: teacher-forced log-probabilities of the correct
answer on the synthetic world's test split.

Greedy accuracy moves in whole questions and depends on which tokens win an argmax; the
log-probability the policy gives the correct text moves smoothly, so two RL arms can be told
apart with fewer seeds. For a row with reasoning ``process`` and answer block ``solution``
(``<answer>C</answer>``), one forward over the prompt and ``process + solution + end of turn``
gives::

    trace   = mean over rows of  (1 / n) sum_t log p(y_t)     over all n target tokens
    answer  = mean over rows of  sum_{t in solution} log p(y_t | prompt, process)
    key     = mean over rows of  sum_{t in last word of process, solution} log p(y_t | prompt, rest of process)

``answer`` is the log-probability of the correct answer block given the correct reasoning;
``trace`` that of the whole correct completion, per token; ``key`` that of the reasoning's last
word and the answer block together, given the reasoning before it. Every synthetic trace ends on
the word that names the answer ("The circle is yellow."), so where the letter follows from that
word (``answer`` near 0) ``key`` is the one that measures whether the policy reads the video.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback

from ..core.signals import DEFAULT_CHUNK_SIZE
from ..data.dataset import VideoR1Dataset
from ..data.prompts import build_prompt_inputs
from ..models import get_adapter
from ..models.generation import eos_token_ids

__all__ = ["HeldoutCurve", "heldout_logprobs"]


@torch.no_grad()
def heldout_logprobs(model, processor, dataset: VideoR1Dataset, limit: int | None = None,
                     chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> dict[str, float]:
    """``{"trace": ..., "answer": ..., "key": ..., "rows": n}`` over the first ``limit`` readable rows of
    ``dataset`` that carry a ``process`` (see the module docstring); rows without one, or with
    unreadable media, are left out."""
    adapter = get_adapter(model)
    tokenizer = processor.tokenizer
    end_of_turn = eos_token_ids(model, processor)[0]
    was_training = model.training
    model.eval()
    traces, answers, keys = [], [], []
    try:
        for index in range(len(dataset)):
            if limit is not None and len(traces) >= limit:
                break
            decoded = dataset.decode(index)
            process = decoded.sample.row.get("process") if decoded is not None else None
            if not isinstance(process, str) or not process.strip():
                continue
            reasoning, key_start = _tokens_and_last_word(tokenizer, process.strip())
            answer = tokenizer.encode(decoded.sample.solution.strip(), add_special_tokens=False)
            target = torch.tensor([reasoning + answer + [end_of_turn]], device=adapter.device)
            prompt = adapter.prepare(build_prompt_inputs(processor, decoded.sample, decoded.media))
            logps = adapter.policy_logps(model, prompt, target, chunk_size=chunk_size)[0].float()
            traces.append(logps.mean().item())
            answers.append(logps[len(reasoning) : len(reasoning) + len(answer)].sum().item())
            keys.append(logps[key_start : len(reasoning) + len(answer)].sum().item())
    finally:
        if was_training:
            model.train()
    if not traces:
        raise ValueError(f"{dataset.dataset_file}: no readable row with a 'process' to score")
    count = len(traces)
    return {"trace": sum(traces) / count, "answer": sum(answers) / count, "key": sum(keys) / count, "rows": count}


def _tokens_and_last_word(tokenizer, text: str) -> tuple[list[int], int]:
    """``text``'s token ids, and the index of the first token that holds a character of its last
    space-separated word (0 for a text without spaces)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    start = text.rfind(" ") + 1
    first = next(i for i, (_, end) in enumerate(encoded["offset_mapping"]) if end > start)
    return list(encoded["input_ids"]), first


class HeldoutCurve(TrainerCallback):
    """Scores the policy with :func:`heldout_logprobs` every ``every`` optimizer steps of a
    run (and at its last step); ``curve`` holds ``{"step", "answer", "key", "trace"}`` entries."""

    def __init__(self, model, processor, dataset: VideoR1Dataset, every: int, limit: int | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.model, self.processor, self.dataset = model, processor, dataset
        self.every, self.limit = every, limit
        self.curve: list[dict[str, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            values = heldout_logprobs(self.model, self.processor, self.dataset, limit=self.limit)
            self.curve.append({"step": state.global_step, **{name: values[name] for name in ("answer", "key", "trace")}})
