"""``videoktr demo``: the whole method on the built-in synthetic world, on a laptop CPU.

    synthesize -> pre-train the vision encoder on the frames -> warm up (SFT on traces, encoder
    frozen, the first shape's colour weighted) -> evaluate -> train (video_ktr preset) ->
    evaluate -> attribution quality against ground truth -> report (table, report.html, plots,
    JSON)

Everything is built locally: the videos, a tokenizer trained on the world's text, a small
Qwen2.5-VL from config; nothing is downloaded. The stages before RL are
``experiments.policy.prepare_policy``'s. The attribution check teacher-forces each test row's
reference trace, whose words carry visual / temporal / neutral labels, through
``KeyTokenAttributor`` and scores each signal's top-20% selection against those labels. What
the figures mean, and how the demo came to measure them: ``docs/demo.md``.
"""

from __future__ import annotations

import html
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..analysis.ground_truth import SelectionQuality, token_labels
from ..analysis.html import example_block, html_page, render_token_spans, signal_legend
from ..analysis.plots import grouped_bar_chart, line_chart
from ..attribution import KeyTokenAttributor
from ..core.selection import select_key_tokens
from ..core.signals import SIGNALS
from ..data.dataset import VideoR1Dataset
from ..data.prompts import build_prompt_inputs
from ..eval import run_evaluation
from ..models.generation import eos_token_ids
from ..synthetic import generate_dataset
from .policy import (
    DemoConfig,
    StageTimer,
    evaluation_settings,
    prepare_policy,
    train_rl,
    world_split,
)

__all__ = ["accuracy_by_kind", "run_demo", "score_reference_traces", "top_share"]


def accuracy_by_kind(summary) -> dict[str, float]:
    """``{"overall": ..., "both": ..., "temporal": ..., "visual": ...}`` of an ``EvalSummary``."""
    kinds = summary.breakdown.get("kind", {})
    return {"overall": summary.accuracy or 0.0, **{k: v["accuracy"] or 0.0 for k, v in sorted(kinds.items())}}


@torch.no_grad()
def score_reference_traces(model, processor, dataset: VideoR1Dataset, limit: int | None = None, seed: int = 0):
    """Teacher-force the reference trace of each row of ``dataset`` (the first ``limit`` rows)
    through ``KeyTokenAttributor``. Yields ``(sample, token ids, token labels, scores)`` per row:
    the trace's tokens and the end-of-turn token (labelled ``neutral``), the labels of
    ``token_labels``, and the ``score`` output for the one completion (``[1, T]`` tensors)."""
    attributor = KeyTokenAttributor(model, processor, seed=seed)
    end_of_turn = eos_token_ids(model, processor)[0]
    for index in range(len(dataset) if limit is None else min(len(dataset), limit)):
        decoded = dataset.decode(index)
        if decoded is None:
            continue
        words = [tuple(pair) for pair in decoded.sample.row["trace_words"]]
        ids, labels = token_labels(processor.tokenizer, words)
        ids, labels = ids + [end_of_turn], labels + ["neutral"]
        completion = torch.tensor([ids])
        scores = attributor.score(build_prompt_inputs(processor, decoded.sample, decoded.media), completion,
                                  torch.ones_like(completion, dtype=torch.bool))
        yield decoded.sample, ids, labels, scores


def top_share(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """The ``ratio`` share of one trace's tokens with the highest scores (``[1, T]`` -> ``[T]``)."""
    mask = torch.ones_like(scores, dtype=torch.bool)
    return select_key_tokens({"score": scores}, mask, ratio=ratio, scope="sequence")[0]


def _attribution_quality(model, processor, world_dir: Path, config: DemoConfig):
    """Teacher-force the test traces; score each signal's top-r selection against the labels."""
    dataset = world_split(world_dir, "test", config)
    tokenizer = processor.tokenizer
    quality = {signal: {label: SelectionQuality(label) for label in ("visual", "temporal")} for signal in SIGNALS}
    examples = []
    for sample, ids, labels, scores in score_reference_traces(model, processor, dataset, config.attribution_limit,
                                                              config.seed):
        selected = {signal: top_share(scores[signal], config.ktr_ratio) for signal in SIGNALS}
        for signal in SIGNALS:
            for label in ("visual", "temporal"):
                quality[signal][label].add(selected[signal], labels)
        if len(examples) < 12:
            examples.append({
                "id": sample.row.get("id"), "kind": sample.row.get("kind"), "problem": sample.problem,
                "tokens": tokenizer.convert_ids_to_tokens(ids), "labels": labels,
                "selected": {s: selected[s].tolist() for s in SIGNALS},
                "scores": {s: scores[s][0].tolist() for s in SIGNALS},
            })
    return quality, examples


def write_report_html(path: Path, summary: dict, examples: list[dict]) -> None:
    """Reference traces with each token coloured by the signals that selected it; the ground
    truth label is the underline colour (solid: visual, dashed: temporal)."""
    rows = [
        example_block(
            f"{html.escape(str(example['id']))} &middot; {example['kind']} &middot; {html.escape(example['problem'])}",
            render_token_spans(example["tokens"], example["selected"], example["scores"], labels=example["labels"]),
        )
        for example in examples
    ]
    table = "".join(
        f"<tr><td>{s}</td><td>{label}</td><td>{q['precision']:.2f}</td><td>{q['random_precision']:.2f}</td>"
        f"<td>{q['recall']:.2f}</td><td>{q['random_recall']:.2f}</td></tr>"
        for s, by_label in summary["attribution"].items() for label, q in by_label.items()
    )
    path.write_text(html_page("videoktr demo report", f"""<h1>videoktr demo</h1>
<p>Accuracy before training {summary['accuracy_before']['overall']:.1%}, after {summary['accuracy_after']['overall']:.1%}.</p>
<h2>Attribution against ground truth (top {summary['config']['ktr_ratio']:.0%} per signal, reference traces)</h2>
<table><tr><th>signal</th><th>label</th><th>precision</th><th>random</th><th>recall</th><th>random</th></tr>{table}</table>
<h2>Reference traces</h2><p>Colour: the signals that selected a token {signal_legend(SIGNALS)}. Underline: ground truth
(solid visual, dashed temporal). Hover a token for its scores.</p>{''.join(rows)}"""))


def write_plots(output_dir: Path, summary: dict, rl_logs: list[dict]) -> list[Path]:
    """The reward curve, accuracy before and after RL by question kind, and each signal's
    precision against the labels next to a random selection's."""
    series = {"reward": [entry["reward"] for entry in rl_logs]}
    if rl_logs and "rewards/accuracy" in rl_logs[0]:
        series["accuracy reward"] = [entry["rewards/accuracy"] for entry in rl_logs]
    kinds = list(summary["accuracy_before"])
    pairs = [(signal, label) for signal in ("visual", "temporal") for label in ("visual", "temporal")]
    attribution = summary["attribution"]
    return [
        line_chart(output_dir / "reward_curve.png", [entry["step"] for entry in rl_logs], series, "RL step",
                   "Reward during training"),
        grouped_bar_chart(output_dir / "accuracy.png", kinds,
                          {"before RL": [summary["accuracy_before"][k] for k in kinds],
                           "after RL": [summary["accuracy_after"][k] for k in kinds]},
                          "accuracy", "Test accuracy by question kind", room_for_legend=True),
        grouped_bar_chart(output_dir / "attribution_precision.png", [f"{s}\non {label}" for s, label in pairs],
                          {"signal's top 20%": [attribution[s][label]["precision"] for s, label in pairs],
                           "random selection": [attribution[s][label]["random_precision"] for s, label in pairs]},
                          "precision", "Selections vs ground-truth labels", room_for_legend=True),
    ]


def format_summary(summary: dict) -> str:
    lines = ["", "videoktr demo: results", ""]
    kinds = list(summary["accuracy_before"])
    lines.append(f"{'accuracy':<22}" + "".join(f"{k:>10}" for k in kinds))
    for name in ("before", "after"):
        values = summary[f"accuracy_{name}"]
        lines.append(f"{'  ' + name + ' RL':<22}" + "".join(f"{values[k]:>10.1%}" for k in kinds))
    rl = summary["rl"]
    encoder = summary.get("encoder_labels")
    if encoder:
        lines += ["", (f"encoder pre-training, shape labels of its last steps: precision {encoder['precision']:.2f}, "
                       f"recall {encoder['recall']:.2f}")]
    order = summary.get("first_appearance")
    if order and order["heldout_accuracy"] is not None:
        lines += [f"before RL the policy names the first shape's colour in {order['heldout_accuracy']:.0%} of "
                  f"{order['heldout_rows']} held-out queue clips (chance {order['chance']:.0%})"]
    lines += ["", f"reward over RL: first {rl['reward_first']:.3f}, last {rl['reward_last']:.3f} "
              f"(mean of first/last 10 steps over {rl['steps']} steps)",
              "selected fraction: " + ", ".join(f"{k} {v:.1%}" for k, v in rl["selected_fraction"].items()), "",
              f"{'attribution (reference traces)':<34}{'precision':>10}{'random':>8}{'recall':>8}{'random':>8}"]
    for signal, label in (("visual", "visual"), ("temporal", "temporal"), ("entropy", "visual"), ("entropy", "temporal")):
        q = summary["attribution"][signal][label]
        name = f"  {signal + ' top ' + str(int(summary['config']['ktr_ratio'] * 100)) + '% on ' + label:<32}"
        if not q.get("labelled_tokens", 1):  # e.g. the filler tasks' still clips: nothing the order decides
            lines.append(f"{name}  no {label}-labelled tokens in these traces")
            continue
        lines.append(f"{name}{q['precision']:>10.2f}{q['random_precision']:>8.2f}{q['recall']:>8.2f}{q['random_recall']:>8.2f}")
    lines += ["", "time: " + ", ".join(f"{k} {v:.0f} s" for k, v in summary["seconds"].items())]
    return "\n".join(lines)


def run_demo(config: DemoConfig, json_path: str | Path | None = None) -> dict[str, Any]:
    """Run every stage; returns (and optionally writes) the summary figures."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    world_dir = out / "world"
    timer = StageTimer()
    warnings.filterwarnings("ignore", category=UserWarning)

    timer.run("synthesize the video world", generate_dataset, world_dir, config.num_rows, config.seed,
              test_fraction=config.test_fraction, fps=config.video_fps, task=config.task)
    train_set, test_set = world_split(world_dir, "train", config), world_split(world_dir, "test", config)
    policy = prepare_policy(config, train_set, timer, eval_set=test_set)
    model, processor = policy.model, policy.processor
    eval_kwargs = evaluation_settings(config)
    before = timer.run("evaluate before RL", run_evaluation, model, processor, "synthetic", world_dir,
                       out / "eval_before.jsonl", **eval_kwargs)
    print(before.format_table())
    rl_logs = timer.run("train with the video_ktr preset", train_rl, model, processor, train_set, config)
    after = timer.run("evaluate after RL", run_evaluation, model, processor, "synthetic", world_dir,
                      out / "eval_after.jsonl", **eval_kwargs)
    print(after.format_table())
    quality, examples = timer.run("attribution against ground truth", _attribution_quality, model, processor,
                                  world_dir, config)

    window = max(min(10, len(rl_logs) // 2), 1)
    summary = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "accuracy_before": accuracy_by_kind(before),
        "accuracy_after": accuracy_by_kind(after),
        "encoder_labels": policy.encoder_figures(),
        "first_appearance": policy.first_colour_figures(),
        "warmup_loss": {"first": policy.warmup.losses[0], "last": policy.warmup.losses[-1]},
        "rl": {
            "steps": len(rl_logs),
            "reward_first": sum(e["reward"] for e in rl_logs[:window]) / window,
            "reward_last": sum(e["reward"] for e in rl_logs[-window:]) / window,
            "selected_fraction": {
                name: sum(e.get(f"selected_fraction/{name}", 0.0) for e in rl_logs) / max(len(rl_logs), 1)
                for name in (*SIGNALS, "union")
            },
        },
        "attribution": {s: {l: q.to_dict() for l, q in by_label.items()} for s, by_label in quality.items()},
        "seconds": timer.seconds,
    }
    report = out / "report.html"
    write_report_html(report, summary, examples)
    plots = write_plots(out, summary, rl_logs)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(summary, indent=2))
    print(format_summary(summary))
    print(f"\nreport: {report}\nplots: {', '.join(str(p) for p in plots)}\nsummary: {out / 'summary.json'}")
    return summary
