"""Differential check of videoktr's VideoMMMU scoring against the authors' own lmms-eval task.

The VideoMMMU repository (videommmu/VideoMMMU) ships the lmms-eval copy its numbers were made
with, and its data files as released (the Perception and Comprehension rows carry no
``question_type``). For every row, a few dozen outputs are generated (each option's letter in
the forms models write it, the option texts, the answer, numbers, an empty output) and scored
by the task's ``videoperception_process_results`` + ``evaluate_mmmu`` and by
``videoktr.eval.judge_output``; an output the task drops (``"API Error"``) must be one videoktr
does not count. Prints the agreement per track and the first disagreements.

    git clone https://github.com/videommmu/VideoMMMU
    python benchmarks/crosscheck_videommmu.py --official VideoMMMU

The task module imports video and logging libraries it never uses for scoring (decord, loguru,
the lmms_eval package): empty stand-ins are put on the path for those that are not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

from videoktr.eval import judge_output

STAND_INS = {
    "decord": "class VideoReader:\n    pass\n\n\ndef cpu(*args):\n    pass\n",
    "loguru": "class _Logger:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\n\n\nlogger = _Logger()\n",
}
TRACK_FILES = {"Perception": "perception_video.json", "Comprehension": "comprehension_video.json",
               "Adaptation": "adaptation_video.json"}


def load_official_task(checkout: Path):
    """The checkout's ``lmms_eval/tasks/videommmu/utils.py`` as a module."""
    stubs = Path(tempfile.mkdtemp())
    for name, source in STAND_INS.items():
        if importlib.util.find_spec(name) is None:
            (stubs / f"{name}.py").write_text(source)
    package = stubs / "lmms_eval" / "tasks" / "_task_utils"
    package.mkdir(parents=True)
    for folder in (stubs / "lmms_eval", stubs / "lmms_eval" / "tasks", package):
        (folder / "__init__.py").write_text("")
    (package / "file_utils.py").write_text("")
    sys.path.insert(0, str(stubs))
    os.environ.setdefault("HF_HOME", str(stubs / "hf"))
    path = checkout / "lmms_eval" / "tasks" / "videommmu" / "utils.py"
    spec = importlib.util.spec_from_file_location("videommmu_official_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def candidate_outputs(row: dict) -> list[str]:
    letters = [chr(ord("A") + i) for i in range(len(row.get("options") or []))] or ["A", "B", "C"]
    outputs = []
    for letter in letters[:6]:
        outputs += [letter, f"{letter}.", f"({letter})", f"{letter})", f"Answer: {letter}", f"The answer is {letter}.",
                    f"<answer>{letter}</answer>", f"{letter} is correct because", f"I choose {letter}"]
    for option in (row.get("options") or [])[:4]:
        outputs += [option, f"The answer is {option}."]
    return outputs + [str(row["answer"]), f"The answer is {row['answer']}", "42", "The result is 3.5", "", "no idea",
                      "x = 7"]


def official_score(task, row: dict, output: str) -> float | None:
    """The task's score of one output, or None where its aggregation drops it."""
    result = task.videoperception_process_results(row, [output])["mmmu_acc"]
    if result["parsed_pred"] == "API Error":
        return None
    return task.evaluate_mmmu([result])[1]["acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of videommmu/VideoMMMU")
    args = parser.parse_args()
    checkout = args.official.resolve()
    task = load_official_task(checkout)
    for track, file_name in TRACK_FILES.items():
        rows = json.loads((checkout / "data" / file_name).read_text())[track]
        rows = list(rows.values()) if isinstance(rows, dict) else rows
        agree = total = 0
        disagreements = []
        for row in rows:
            for output in candidate_outputs(row):
                official = official_score(task, row, output)
                judgement = judge_output("videommmu", {**row, "track": track}, output)
                ours = judgement.score if judgement.counted else None
                total += 1
                if ours == official:
                    agree += 1
                elif len(disagreements) < 5:
                    disagreements.append((output, row.get("question_type"), row["answer"], ours, official))
        untyped = sum("question_type" not in row or row["question_type"] is None for row in rows)
        print(f"{track:14s} {agree}/{total} agree ({100 * agree / total:.3f}%); rows without question_type: {untyped}")
        for disagreement in disagreements:
            print("    output %r (question_type %r, answer %r): videoktr %s, official %s" % disagreement)


if __name__ == "__main__":
    main()
