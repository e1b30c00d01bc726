"""Pluggable LLM judges, for the benchmarks whose official scorer asks a language model.

Why: MMVU's authors score every answer with a GPT-4o judge, and TempCompass's scripts ask
ChatGPT whenever their matching rules cannot read an output. Without a judge those two benchmarks
can only be scored by rule-based stand-ins (and every summary says so). With one, videoktr runs
the official flow: it builds the benchmark's judging request, calls the judge exactly where the
official script calls it, and applies the official decision rule to the reply. Which model
answers is up to you; the summary names the judge.

The protocol. A judge is any callable::

    judge(messages: list[dict[str, str]]) -> str

``messages`` is an OpenAI-style chat, ``[{"role": "system", "content": ...}, {"role": "user",
"content": ...}]`` (both official scorers send a system and a user message, so this is what a
chat API or a chat template takes as is; :func:`prompt_text` flattens it for a plain-completion
model). It returns the reply text. Name one on the command line as ``--judge module:function``
(imported, never evaluated; the loader is the one reward functions use) or pass the callable to
``score_output``, ``run_evaluation`` or ``score_predictions`` as ``judge=``.

Failures. An exception from the judge is retried ``retries`` times (default 2, so 3 calls in
all); then :class:`JudgeError` is raised for that question, which the runner records as an error
row (the model's output is kept, and a later run or ``score`` with a judge asks the judge again).
A reply that is not a string is a ``JudgeError`` at once. A string reply that the benchmark's
decision rule cannot read is *not* an error: the question scores 0 and the row records
``judge_verdict: "unparseable"`` and the reply.

Where the judge applies: ``parser="official"`` of ``mmvu`` and ``tempcompass`` (their
``JUDGE_PARSERS``). Everywhere else (the other benchmarks, whose official scorers are rules, and
``parser="strict"``) a judge is accepted and ignored, so one command line can loop over every
benchmark; the summary's ``scorer`` says what produced each number.

:func:`local_hf_judge` builds a judge from a local transformers chat model (nothing is
downloaded); see its docstring for the two-line module that makes it a ``--judge`` spec.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoktr._specs import load_callable_spec

__all__ = [
    "DEFAULT_RETRIES",
    "Judge",
    "JudgeError",
    "JudgeFunction",
    "Message",
    "as_judge",
    "load_judge",
    "local_hf_judge",
    "prompt_text",
]

Message = dict[str, str]
JudgeFunction = Callable[[list[Message]], str]

DEFAULT_RETRIES = 2
"""Extra calls after a judge raises (so 3 calls in all) before the question becomes an error."""


class JudgeError(RuntimeError):
    """The judge raised on every attempt, or returned something that is not a string."""


@dataclass(frozen=True)
class Judge:
    """A judge function with its name (recorded in every row and summary) and retry policy.

    Attributes:
        function: ``function(messages) -> str`` (the protocol in the module docstring).
        name: how rows and summaries name it: the ``module:function`` spec it was loaded from.
        retries: extra attempts after an exception (``>= 0``).
        retry_delay: seconds to sleep between attempts (a network judge may want a few).
    """

    function: JudgeFunction
    name: str
    retries: int = DEFAULT_RETRIES
    retry_delay: float = 0.0

    def __post_init__(self) -> None:
        if not callable(self.function):
            raise TypeError(f"judge {self.name!r}: the judge function is not callable")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"judge retries must be an int >= 0, got {self.retries!r}")
        if not (isinstance(self.retry_delay, (int, float)) and self.retry_delay >= 0):
            raise ValueError(f"judge retry_delay must be a number >= 0, got {self.retry_delay!r}")

    def __call__(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The judge's reply to ``messages``; ``JudgeError`` after ``retries + 1`` failures."""
        attempts = self.retries + 1
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                reply = self.function([dict(message) for message in messages])
            except Exception as exc:  # noqa: BLE001 - any failure of user code is retried, then recorded
                last = exc
                if attempt < attempts and self.retry_delay:
                    time.sleep(self.retry_delay)
                continue
            if not isinstance(reply, str):
                raise JudgeError(
                    f"judge {self.name} returned {type(reply).__name__}, not the reply text (str)"
                )
            return reply
        assert last is not None
        raise JudgeError(
            f"judge {self.name} failed {attempts} time(s); last error: "
            f"{type(last).__name__}: {last}"
        ) from last


def load_judge(spec: str, *, retries: int = DEFAULT_RETRIES, retry_delay: float = 0.0) -> Judge:
    """The judge ``"package.module:function"`` names (``ValueError`` naming the spec otherwise)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a judge spec must be a non-empty 'module:function' string, got {spec!r}")
    function = load_callable_spec(spec.strip(), "judge")
    return Judge(function, spec.strip(), retries=retries, retry_delay=retry_delay)


def as_judge(
    judge: Judge | str | JudgeFunction | None, *, retries: int = DEFAULT_RETRIES
) -> Judge | None:
    """``None``, a :class:`Judge` (as is), a ``module:function`` spec, or a bare callable (named
    ``module:qualname``) as a :class:`Judge`."""
    if judge is None or isinstance(judge, Judge):
        return judge
    if isinstance(judge, str):
        return load_judge(judge, retries=retries)
    if callable(judge):
        module = getattr(judge, "__module__", None)
        qualname = getattr(judge, "__qualname__", None) or type(judge).__qualname__
        name = f"{module}:{qualname}" if module else qualname
        return Judge(judge, name, retries=retries)
    raise TypeError(
        f"judge must be None, a 'module:function' spec or a callable, got {type(judge).__name__}"
    )


def prompt_text(messages: Sequence[Mapping[str, str]]) -> str:
    """The messages' contents joined by blank lines: one prompt for a plain-completion judge."""
    return "\n\n".join(str(message["content"]) for message in messages)


def local_hf_judge(
    model_path: str | os.PathLike,
    *,
    max_new_tokens: int = 256,
    device: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> JudgeFunction:
    """A judge backed by a local transformers causal LM (an instruct model such as a
    Qwen2.5-Instruct checkpoint you have already downloaded). Nothing is downloaded.

    The model loads on the first call (``local_files_only``, safetensors weights), so a module
    can create the judge at import time without paying for it::

        # my_judges.py
        from videoktr.eval.judge import local_hf_judge
        qwen = local_hf_judge("/models/Qwen2.5-7B-Instruct")

        # videoktr eval score --benchmark mmvu --predictions preds/mmvu.jsonl --judge my_judges:qwen

    Each call renders the messages with the tokenizer's chat template (or :func:`prompt_text`
    when it has none), decodes greedily (deterministic; the official scripts sample from GPT
    models at temperature 1) up to ``max_new_tokens`` and returns the new text, stripped.
    ``device`` defaults to CUDA when available; ``dtype`` is passed to ``from_pretrained``.
    """
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise ValueError(
            f"local_hf_judge: {str(path)!r} is not a local model directory (no config.json)"
        )
    state: dict[str, Any] = {}

    def load() -> tuple[Any, Any, str]:
        if not state:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            target = device or ("cuda" if torch.cuda.is_available() else "cpu")
            tokenizer = AutoTokenizer.from_pretrained(
                path, local_files_only=True, trust_remote_code=trust_remote_code
            )
            model = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=dtype,
                local_files_only=True,
                use_safetensors=True,
                trust_remote_code=trust_remote_code,
            ).to(target)
            model.eval()
            state.update(tokenizer=tokenizer, model=model, device=target)
        return state["tokenizer"], state["model"], state["device"]

    def judge(messages: list[Message]) -> str:
        import torch

        tokenizer, model, target = load()
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt_text(messages)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(target)
        pad_token_id = tokenizer.pad_token_id
        if pad_token_id is None:
            pad_token_id = tokenizer.eos_token_id
        with torch.no_grad():
            sequences = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_token_id
            )
        new_tokens = sequences[0, inputs["input_ids"].shape[1] :]
        return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()

    judge.__qualname__ = f"local_hf_judge({str(path)!r})"
    return judge
