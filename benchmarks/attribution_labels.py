"""Which words do the demo's signals pick, and how much does the labelling rule decide its figures?

    python benchmarks/attribution_labels.py --checkpoint ablation_output/warmup --world ablation_output/world
    python benchmarks/attribution_labels.py          # builds and warms up the demo's policy first (~4 min)
    python benchmarks/attribution_labels.py --json   # one JSON object at the end

Why. The demo reports each signal's top-20% precision against the world's word labels
(``videoktr.synthetic.questions``), carried to tokens by ``videoktr.analysis.token_labels``. The
rule was changed once (a word is temporal when the order decides it, not when it is an order
word; tags and punctuation are nobody's), so this script scores the same teacher-forced traces
under both rules, side by side:

* ``world``: the labels the demo uses;
* ``lexical``: the earlier rule: also every word of ``TEMPORAL_WORDS`` is temporal ("appear",
  "first" in the fixed "The first shape to appear is"), and every token takes its word's label,
  the tags glued to the answer word and lone spaces included.

It also prints each signal's mean score per label and the tokens with the highest mean score,
which tell what a signal finds when its precision is low. The checkpoint is any saved policy of
the demo's kind (``videoktr ablate`` saves its warm-up in ``OUT/warmup``) with the world it was
trained on; without one the script prepares the demo's policy as ``videoktr demo`` does.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import warnings
from collections import defaultdict
from pathlib import Path

import torch

from videoktr.analysis.ground_truth import SelectionQuality
from videoktr.core.signals import SIGNALS
from videoktr.experiments.demo import score_reference_traces, top_share
from videoktr.experiments.policy import DemoConfig, prepare_policy, world_split
from videoktr.synthetic import TEMPORAL_WORDS, generate_dataset

LABELS = ("visual", "temporal")


def lexical_labels(tokenizer, sample) -> list[str]:
    """The earlier rule's token labels (see the module docstring); the end-of-turn token last."""
    words = sample.row["trace_words"]
    labels = []
    for index, (word, label) in enumerate(words):
        core = re.sub(r"<[^>]*>", "", word).strip(string.punctuation).lower()
        if index < len(words) - 1 and label == "neutral" and core in TEMPORAL_WORDS:
            label = "temporal"
        labels.append(label)  # the last word keeps its label: the answer's, in both rules
    text = " ".join(word for word, _ in words)
    owner = []
    for index, (word, _) in enumerate(words):
        owner += [index] * len(word) + ([-1] if index < len(words) - 1 else [])
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    token_labels = []
    for start, end in offsets:
        inside = [owner[p] for p in range(start, min(end, len(owner))) if owner[p] != -1]
        following = (owner[p] for p in range(end, len(owner)) if owner[p] != -1)
        token_labels.append(labels[inside[0] if inside else next(following, len(words) - 1)])
    return token_labels + ["neutral"]


def measure(model, processor, dataset, limit: int, ratio: float, seed: int) -> dict:
    quality = {rule: {s: {label: SelectionQuality(label) for label in LABELS} for s in SIGNALS}
               for rule in ("world", "lexical")}
    by_label = {s: defaultdict(list) for s in SIGNALS}
    by_token = {s: defaultdict(list) for s in SIGNALS}
    tokenizer = processor.tokenizer
    for sample, ids, labels, scores in score_reference_traces(model, processor, dataset, limit, seed):
        lexical = lexical_labels(tokenizer, sample)
        assert len(lexical) == len(labels)
        tokens = tokenizer.convert_ids_to_tokens(ids)
        for signal in SIGNALS:
            selected = top_share(scores[signal], ratio)
            for label in LABELS:
                quality["world"][signal][label].add(selected, labels)
                quality["lexical"][signal][label].add(selected, lexical)
            values = scores[signal][0].tolist()
            for value, label, token in zip(values, labels, tokens, strict=True):
                if value == value:  # NaN: the signal does not exist for this clip
                    by_label[signal][label].append(value)
                    by_token[signal][token].append(value)
    return {
        "precision": {rule: {s: {label: q.to_dict() for label, q in by.items()} for s, by in per.items()}
                      for rule, per in quality.items()},
        "mean_score_by_label": {s: {label: sum(v) / len(v) for label, v in sorted(per.items())}
                                for s, per in by_label.items()},
        "top_tokens": {s: sorted(((sum(v) / len(v), token, len(v)) for token, v in per.items() if len(v) >= 5),
                                 reverse=True)[:10] for s, per in by_token.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a saved policy (default: prepare the demo's)")
    parser.add_argument("--world", type=Path, help="the world it was trained on (default: synthesize the demo's)")
    parser.add_argument("--limit", type=int, default=DemoConfig.attribution_limit, help="test traces scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="also print every figure as one JSON object")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    config = DemoConfig(seed=args.seed, progress=False, task="standard")  # the world with order questions
    world = args.world or Path("attribution_labels_world")
    if not (world / "test.jsonl").exists():
        generate_dataset(world, config.num_rows, config.seed, test_fraction=config.test_fraction,
                         fps=config.video_fps)
    test_set = world_split(world, "test", config)
    if args.checkpoint:
        from videoktr.models import load_local_model

        model, processor = load_local_model(args.checkpoint)
    else:
        train_set = world_split(world, "train", config)
        policy = prepare_policy(config, train_set)
        model, processor = policy.model, policy.processor
    torch.set_grad_enabled(False)
    figures = measure(model, processor, test_set, args.limit, config.ktr_ratio, args.seed)
    print(f"top {config.ktr_ratio:.0%} of each of {args.limit} test traces: precision (random) / recall (random)")
    for rule, per in figures["precision"].items():
        for signal, label in (("visual", "visual"), ("temporal", "temporal"), ("entropy", "visual")):
            q = per[signal][label]
            print(f"  {rule:<8} {signal:>8} on {label:<8} {q['precision']:.2f} ({q['random_precision']:.2f})"
                  f" / {q['recall']:.2f} ({q['random_recall']:.2f})")
    for signal in SIGNALS:
        means = ", ".join(f"{label} {value:.3f}" for label, value in figures["mean_score_by_label"][signal].items())
        top = ", ".join(f"{token} {value:.2f}" for value, token, _ in figures["top_tokens"][signal])
        print(f"{signal}: mean score by label: {means}\n  highest mean score: {top}")
    if args.json:
        print(json.dumps({**figures, "limit": args.limit, "checkpoint": str(args.checkpoint)}))


if __name__ == "__main__":
    main()
