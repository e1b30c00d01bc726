"""Deterministic fake LLM judges for the judge tests (named as ``tests.eval.fixture_judges:NAME``).

They read the request the benchmark module built (so the tests also check that the request
carries the question, the ground truth and the model's output) and answer by fixed rules. A
marker in the model output steers the reply:

* ``JUDGE:malformed``: a reply the official decision rule cannot read;
* ``JUDGE:fenced`` (MMVU): the JSON wrapped in a ```json fence;
* ``JUDGE:contrary`` (MMVU): ``extracted_answer`` equal to the ground truth but ``correct: false``
  (the official rule trusts ``correct``);
* ``JUDGE:raise``: an exception on every call.

``CALLS`` counts every call of every judge here (tests reset it); ``OUTAGE`` makes
:func:`outage_judge` raise while it is true.
"""

from __future__ import annotations

import json
import re

CALLS: list[str] = []
OUTAGE = False


def _field(text: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}:[ ]?(.*)$", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"the judge request has no {label!r} field:\n{text}"
    return match.group(1)


def mmvu_judge(messages: list[dict[str, str]]) -> str:
    """MMVU: the last standalone letter A-E of the response is its answer."""
    CALLS.append("mmvu")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "extracted_answer" in messages[0]["content"] and "correct" in messages[0]["content"]
    user = messages[1]["content"]
    response = _field(user, "Model response")
    truth = _field(user, "Ground-truth answer").split("\n", 1)[0].strip()
    assert "Options:\n" in user
    if "JUDGE:raise" in response:
        raise RuntimeError("judge service unavailable")
    if "JUDGE:malformed" in response:
        return "The answer looks right to me."
    if "JUDGE:contrary" in response:
        return json.dumps({"extracted_answer": truth, "correct": False})
    letters = re.findall(r"\b([A-E])\b", response)
    extracted = letters[-1] if letters else ""
    reply = json.dumps({"extracted_answer": extracted, "correct": extracted == truth})
    if "JUDGE:fenced" in response:
        return f"```json\n{reply}\n```"
    return reply


def tempcompass_judge(messages: list[dict[str, str]]) -> str:
    """TempCompass: correct when the ground truth's text (after any "X. " or "Label: ") or its
    yes/no occurs in the prediction, case-insensitively."""
    CALLS.append("tempcompass")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "Correct" in user and "Incorrect" in user
    prediction = _field(user, "Model Prediction")
    truth = _field(user, "Ground-Truth Answer").split("\n", 1)[0]
    if "JUDGE:raise" in prediction:
        raise RuntimeError("judge service unavailable")
    if "JUDGE:malformed" in prediction:
        return "I am not sure."
    text = re.sub(r"^(?:[A-D]\. |[^:]+: )", "", truth).casefold()
    return "Correct" if text in prediction.casefold() else "Incorrect"


def outage_judge(messages: list[dict[str, str]]) -> str:
    """:func:`mmvu_judge`, except that it raises while ``OUTAGE`` is true."""
    if OUTAGE:
        CALLS.append("outage")
        raise ConnectionError("judge endpoint down")
    return mmvu_judge(messages)


def not_text_judge(messages: list[dict[str, str]]) -> dict:
    CALLS.append("not_text")
    return {"correct": True}
