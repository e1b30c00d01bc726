"""``videoktr demo``: the whole method on the built-in synthetic world, on a laptop CPU.

    synthesize -> pre-train the vision encoder on the frames -> warm up (SFT on traces, encoder
    frozen, the first shape's colour weighted) -> evaluate -> train (video_ktr preset) ->
    evaluate -> attribution quality against ground truth -> report (table, report.html, plots,
    JSON)

Everything is built locally: the videos, a tokenizer trained on the world's text, a small
Qwen2.5-VL from config. Nothing is downloaded. The encoder pre-training stands in for what a
real model's pretrained ViT gives it: tokens that say what is where
(``videoktr.synthetic.encoder``). ``videoktr.synthetic.order``'s stage, which teaches the
language model which shape appeared first on that one word, is off by default: the warm-up's
weight on that word teaches it as well since the traces were shortened (``order_pretrain_steps``
switches it on). The attribution check teacher-forces each test row's reference trace, whose
words carry visual / temporal / neutral labels, through ``KeyTokenAttributor`` and scores each
signal's top-20% selection against those labels.
"""

from __future__ import annotations

import html
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .analysis.ground_truth import SelectionQuality, token_labels
from .analysis.html import example_block, html_page, render_token_spans, signal_legend
from .attribution import KeyTokenAttributor
from .core.selection import select_key_tokens
from .data.dataset import VideoR1Dataset
from .data.prompts import build_prompt_inputs
from .eval.runner import run_evaluation
from .models.tiny import CORPUS, build_tiny_model, build_tokenizer
from .synthetic import generate_dataset, world_corpus
from .synthetic.encoder import pretrain_vision_encoder
from .synthetic.order import first_appearance_accuracy, first_colour_weights, pretrain_first_appearance
from .train.config import load_config
from .models.generation import eos_token_ids
from .train.sft import supervised_warmup
from .train.trainer import VideoGRPOTrainer

SIGNALS = ("visual", "temporal", "entropy")


@dataclass
class DemoConfig:
    """Sizes of every stage; the defaults finish in a few minutes on a 2-core CPU."""

    output_dir: Path = Path("demo_output")
    seed: int = 0
    num_rows: int = 2000
    test_fraction: float = 0.1
    video_fps: int = 4
    hidden_size: int = 128
    num_layers: int = 2
    vision_hidden_size: int = 64
    vocab_size: int = 640
    encoder_pretrain_steps: int = 1200
    encoder_pretrain_learning_rate: float = 3e-3
    order_pretrain_steps: int = 0
    order_pretrain_learning_rate: float = 5e-4
    warmup_steps: int = 1000
    warmup_prompts_per_step: int = 4
    warmup_learning_rate: float = 2e-3
    warmup_freeze_vision_encoder: bool = True
    warmup_first_colour_weight: float = 10.0
    rl_steps: int = 100
    rl_prompts_per_step: int = 4
    num_generations: int = 8
    rl_learning_rate: float = 5e-5
    max_completion_length: int = 88
    ktr_ratio: float = 0.2
    eval_limit: int | None = None
    attribution_limit: int = 60
    progress: bool = True


@dataclass
class StageTimer:
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, function, *args, **kwargs):
        print(f"\n== {name}", flush=True)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        print(f"   done in {self.seconds[name]:.1f} s", flush=True)
        return result


def encoder_label_figures(result) -> dict[str, float] | None:
    """How well the pre-trained encoder's tokens name the (colour, shape) pairs in their cells,
    over its last steps (``EncoderPretrainResult``); None when the encoder was not pre-trained."""
    if result is None:
        return None
    return {"precision": result.label_precision, "recall": result.label_recall, "token_accuracy": result.label_accuracy}


def order_figures(policy: PreparedPolicy) -> dict[str, Any] | None:
    """How often the prepared policy names the first shape's colour, on held-out queue clips
    (``first_appearance_accuracy`` after the warm-up); None when no evaluation split was given."""
    if policy.first_colour is None:
        return None
    accuracy, rows = policy.first_colour
    return {"heldout_accuracy": accuracy, "heldout_rows": rows, "chance": 1 / 4}


def evaluation_kwargs(config: DemoConfig, progress: bool | None = None) -> dict[str, Any]:
    """The demo's evaluation settings for ``run_evaluation``: greedy, 16 frames at the world's
    fps, ``eval_limit`` questions; ``videoktr ablate`` evaluates every run the same way."""
    return {"num_frames": 16, "fps": float(config.video_fps), "temperature": 0.0,
            "max_new_tokens": config.max_completion_length, "limit": config.eval_limit,
            "progress": config.progress if progress is None else progress}


def _accuracy_by_kind(summary) -> dict[str, float]:
    kinds = summary.breakdown.get("kind", {})
    return {"overall": summary.accuracy or 0.0, **{k: v["accuracy"] or 0.0 for k, v in sorted(kinds.items())}}


def _build_policy(config: DemoConfig):
    corpus = world_corpus() + list(CORPUS)
    tokenizer = build_tokenizer(corpus, vocab_size=config.vocab_size)
    model, processor = build_tiny_model(
        "qwen2_5_vl", seed=config.seed, tokenizer=tokenizer, hidden_size=config.hidden_size,
        num_layers=config.num_layers, vision_hidden_size=config.vision_hidden_size,
    )
    return model, processor


@dataclass
class PreparedPolicy:
    """The demo's policy before RL and what each stage that made it reported (``encoder`` and
    ``order`` are None when their stage is switched off). ``first_colour``: ``(accuracy, rows)``
    of ``first_appearance_accuracy`` on the evaluation split after the warm-up, when given."""

    model: Any
    processor: Any
    warmup: Any
    encoder: Any = None
    order: Any = None
    first_colour: tuple[float | None, int] | None = None


def prepare_policy(config: DemoConfig, train_set: VideoR1Dataset, timer: StageTimer | None = None,
                   eval_set: VideoR1Dataset | None = None) -> PreparedPolicy:
    """The demo's policy, ready for RL: built from config; its vision encoder pre-trained on the
    world's frames (``encoder_pretrain_steps``); optionally its language model taught which shape
    appeared first (``order_pretrain_steps``, off by default: the warm-up's weighted first colour
    teaches it now); then warmed up on the traces, and measured on ``eval_set`` when given.
    ``videoktr ablate`` starts every run from this."""
    timer = timer or StageTimer()
    torch.manual_seed(config.seed)
    model, processor = timer.run("build a tiny Qwen2.5-VL and a tokenizer trained on the world's text", _build_policy, config)
    encoder = order = None
    if config.encoder_pretrain_steps:
        encoder = timer.run("pre-train the vision encoder on the world's frames", pretrain_vision_encoder, model,
                            processor, train_set, steps=config.encoder_pretrain_steps,
                            learning_rate=config.encoder_pretrain_learning_rate, seed=config.seed,
                            progress=config.progress)
    if config.order_pretrain_steps:
        order = timer.run("teach the language model which shape appeared first", pretrain_first_appearance, model,
                          processor, train_set, steps=config.order_pretrain_steps,
                          learning_rate=config.order_pretrain_learning_rate, seed=config.seed, eval_dataset=eval_set,
                          progress=config.progress)
    warmup = timer.run("supervised warm-up on reasoning traces", supervised_warmup, model, processor, train_set,
                       steps=config.warmup_steps, learning_rate=config.warmup_learning_rate,
                       prompts_per_step=config.warmup_prompts_per_step, seed=config.seed, progress=config.progress,
                       freeze_vision_encoder=config.warmup_freeze_vision_encoder,
                       token_weights=(first_colour_weights(processor.tokenizer, config.warmup_first_colour_weight)
                                      if config.warmup_first_colour_weight != 1 else None))
    first_colour = first_appearance_accuracy(model, processor, eval_set) if eval_set is not None else None
    return PreparedPolicy(model, processor, warmup, encoder, order, first_colour)


def _train(model, processor, dataset, config: DemoConfig, overrides: dict | None = None, seed: int | None = None,
           output_dir: Path | None = None, label: str = "video_ktr", leave: bool = True):
    """RL with the video_ktr preset; ``overrides`` (trainer config keys) change the method, e.g.
    ``{"token_selection": "none"}`` for vanilla GRPO (``videoktr ablate`` uses this)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from .train.callbacks import CompactProgressCallback

    values = dict(
        preset="video_ktr", output_dir=str(output_dir if output_dir is not None else config.output_dir / "rl"),
        max_steps=config.rl_steps, gradient_accumulation_steps=config.rl_prompts_per_step,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length, learning_rate=config.rl_learning_rate,
        ktr_ratio=str(config.ktr_ratio), fps=float(config.video_fps), min_frames=4, max_frames=16,
        seed=config.seed if seed is None else seed, save_strategy="no", report_to="none", logging_steps=1,
        rollout_dump_steps=max(config.rl_steps // 3, 1), disable_tqdm=not config.progress,
        use_cpu=not torch.cuda.is_available(), lr_scheduler_type="constant",
    )
    args = load_config(**{**values, **(overrides or {})})
    trainer = VideoGRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
    # One compact bar instead of the Trainer's metrics dict printed at every step.
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(CompactProgressCallback(f"RL {label}", disable=not config.progress, leave=leave))
    trainer.train()
    model.eval()
    return [entry for entry in trainer.state.log_history if "reward" in entry]


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
    dataset = VideoR1Dataset(world_dir / "test.jsonl", fps=config.video_fps, min_frames=4, max_frames=16)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(figure, name: str) -> Path:
        figure.tight_layout()
        figure.savefig(output_dir / name, dpi=120)
        plt.close(figure)
        return output_dir / name

    paths = []
    figure, axis = plt.subplots(figsize=(6, 3.2))
    steps = [entry["step"] for entry in rl_logs]
    axis.plot(steps, [entry["reward"] for entry in rl_logs], label="reward")
    if rl_logs and "rewards/accuracy" in rl_logs[0]:
        axis.plot(steps, [entry["rewards/accuracy"] for entry in rl_logs], label="accuracy reward")
    axis.set_xlabel("RL step")
    axis.set_title("Reward during training")
    axis.legend()
    paths.append(save(figure, "reward_curve.png"))

    figure, axis = plt.subplots(figsize=(6, 3.2))
    kinds = list(summary["accuracy_before"])
    width = 0.38
    positions = range(len(kinds))
    axis.bar([p - width / 2 for p in positions], [summary["accuracy_before"][k] for k in kinds], width, label="before RL")
    axis.bar([p + width / 2 for p in positions], [summary["accuracy_after"][k] for k in kinds], width, label="after RL")
    axis.set_xticks(list(positions), kinds)
    axis.set_ylabel("accuracy")
    axis.set_title("Test accuracy by question kind")
    axis.legend()
    paths.append(save(figure, "accuracy.png"))

    figure, axis = plt.subplots(figsize=(6, 3.2))
    labels = [f"{signal}\non {label}" for signal in ("visual", "temporal") for label in ("visual", "temporal")]
    precision = [summary["attribution"][s][l]["precision"] for s in ("visual", "temporal") for l in ("visual", "temporal")]
    chance = [summary["attribution"][s][l]["random_precision"] for s in ("visual", "temporal") for l in ("visual", "temporal")]
    axis.bar(range(4), precision, 0.38, label="signal's top 20%")
    axis.bar([p + 0.38 for p in range(4)], chance, 0.38, label="random selection")
    axis.set_xticks([p + 0.19 for p in range(4)], labels)
    axis.set_ylabel("precision")
    axis.set_title("Selections vs ground-truth labels")
    axis.legend()
    paths.append(save(figure, "attribution_precision.png"))
    return paths


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
        lines.append(f"  {signal + ' top ' + str(int(summary['config']['ktr_ratio'] * 100)) + '% on ' + label:<32}"
                     f"{q['precision']:>10.2f}{q['random_precision']:>8.2f}{q['recall']:>8.2f}{q['random_recall']:>8.2f}")
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
              test_fraction=config.test_fraction, fps=config.video_fps)
    train_set = VideoR1Dataset(world_dir / "train.jsonl", fps=config.video_fps, min_frames=4, max_frames=16)
    test_set = VideoR1Dataset(world_dir / "test.jsonl", fps=config.video_fps, min_frames=4, max_frames=16)
    policy = prepare_policy(config, train_set, timer, eval_set=test_set)
    model, processor = policy.model, policy.processor
    eval_kwargs = evaluation_kwargs(config)
    before = timer.run("evaluate before RL", run_evaluation, model, processor, "synthetic", world_dir,
                       out / "eval_before.jsonl", **eval_kwargs)
    print(before.format_table())
    rl_logs = timer.run("train with the video_ktr preset", _train, model, processor, train_set, config)
    after = timer.run("evaluate after RL", run_evaluation, model, processor, "synthetic", world_dir,
                      out / "eval_after.jsonl", **eval_kwargs)
    print(after.format_table())
    quality, examples = timer.run("attribution against ground truth", _attribution_quality, model, processor,
                                  world_dir, config)

    window = max(min(10, len(rl_logs) // 2), 1)
    summary = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "accuracy_before": _accuracy_by_kind(before),
        "accuracy_after": _accuracy_by_kind(after),
        "encoder_labels": encoder_label_figures(policy.encoder),
        "first_appearance": order_figures(policy),
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
