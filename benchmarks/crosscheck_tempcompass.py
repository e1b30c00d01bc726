"""Differential check of videoktr's TempCompass scoring against the official scripts themselves.

For every question of the official question files, a few dozen outputs are generated (each
option's letter, label, bare index, text and line, in the forms models write them, with
leading and trailing whitespace and ``</s>``, plus yes/no variants and reasoning outputs) and
scored twice: by the checkout's ``eval_<task>.py`` ``main`` with ``disable_llm`` (its rules
only), and by ``videoktr.eval.score_output`` with ``--parser``. Prints the agreement per task
type and the first disagreements.

    git clone https://github.com/llyx97/TempCompass && git -C TempCompass checkout c2ec41e
    python benchmarks/crosscheck_tempcompass.py --official TempCompass --parser official
    git -C TempCompass checkout 75361fd
    python benchmarks/crosscheck_tempcompass.py --official TempCompass --parser official_2024_03

The official scripts import ``requests`` for their ChatGPT judge, which ``disable_llm`` never
calls: an empty stand-in module is put on the path when it is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import tempfile
from pathlib import Path

from videoktr.eval import score_output

SCRIPTS = {"multi-choice": "eval_multi-choice", "yes_no": "eval_yes_no", "caption_matching": "eval_caption_matching"}
SURROUNDINGS = [("", ""), (" ", ""), ("", "\n"), ("\n", ""), ("", " "), ("", "</s>"), ("  ", "\n\n")]


def candidate_outputs(question: str, task: str) -> list[str]:
    """What a model might answer to ``question``, each with several surroundings."""
    options = question.split("\n")[1:]
    base: list[str] = []
    if task == "multi-choice":
        for line in options:
            letter = line.split(".")[0]
            base += [line, line.split(". ", 1)[-1], letter, f"{letter}.", f"{letter})", f"({letter})",
                     f"{letter}: x", f"Answer: {letter}", f"<answer>{letter}</answer>", f"{letter} is right"]
        base += ["E", "none of them"]
    elif task == "yes_no":
        base += ["yes", "no", "Yes.", "No.", "Yes, it is.", "No, it is not.", "nope", "yesterday", "I think yes",
                 "<answer>no</answer>", "Not sure"]
    else:
        for line in options:
            label, sentence = line.split(": ", 1)
            index = label.split()[-1]
            base += [line, label, sentence, index, f"{index}.", f"{label}.", f"({index}) {sentence}", f"({index})",
                     label.lower(), f"{label}:"]
        base += ["I think caption B fits", "both"]
    return [before + text + after for text in base for before, after in SURROUNDINGS]


def official_ratings(checkout: Path, task: str, predictions: dict) -> dict:
    """The checkout's ``main(predictions, {}, output, disable_llm=True)`` results."""
    spec = importlib.util.spec_from_file_location(SCRIPTS[task].replace("-", "_"), checkout / f"{SCRIPTS[task]}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "results.json"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            module.main(json.loads(json.dumps(predictions)), {}, str(output), True)
        return json.loads(output.read_text())


def crosscheck(checkout: Path, task: str, parser: str) -> tuple[int, int, list[tuple]]:
    questions = json.loads((checkout / "questions" / f"{task}.json").read_text())
    predictions = {
        video: {dimension: [{"question": qa["question"], "answer": qa["answer"], "prediction": output}
                            for qa in pairs for output in candidate_outputs(qa["question"], task)]
                for dimension, pairs in dimensions.items()}
        for video, dimensions in questions.items()
    }
    results = official_ratings(checkout, task, predictions)
    agree = total = 0
    disagreements: list[tuple] = []
    for video, dimensions in predictions.items():
        for dimension, rows in dimensions.items():
            for row, result in zip(rows, results[video][dimension], strict=True):
                annotation = {"task_type": task, "dimension": dimension, "question": row["question"],
                              "answer": row["answer"]}
                ours = score_output("tempcompass", annotation, row["prediction"], parser=parser)
                total += 1
                if ours == float(result["rating"]):
                    agree += 1
                elif len(disagreements) < 5:
                    disagreements.append((row["prediction"], row["answer"], ours, result["rating"]))
    return agree, total, disagreements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, type=Path, help="a checkout of llyx97/TempCompass")
    parser.add_argument("--parser", default="official", help="official or official_2024_03")
    args = parser.parse_args()
    checkout = args.official.resolve()
    sys.path[:0] = [str(checkout)]
    if importlib.util.find_spec("requests") is None:
        stand_in = Path(tempfile.mkdtemp()) / "requests.py"
        stand_in.write_text('"""Never called with disable_llm."""\n')
        sys.path.insert(0, str(stand_in.parent))
    os.chdir(checkout)  # the scripts read meta_info.json from the working directory
    for task in SCRIPTS:
        agree, total, disagreements = crosscheck(checkout, task, args.parser)
        print(f"{task:17s} {agree}/{total} agree ({100 * agree / total:.3f}%)")
        for disagreement in disagreements:
            print("    output %r answer %r: videoktr %s, official %s" % disagreement)


if __name__ == "__main__":
    main()
