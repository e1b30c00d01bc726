"""Pre-train the tiny policy's vision encoder on the world's frames: the role of a pretrained ViT.

Why. A real Qwen-VL starts RL with a vision encoder pretrained on billions of images, so its
video tokens already say "a red circle, top left". A tiny encoder built from config starts
random, and a language model learning to read its features by next-token prediction barely
moves in the minutes the demo has (what was measured: ``docs/demo.md``). Pre-training the
encoder on dense, exactly known targets fixes the features first, which is what the real
pipeline's pretrained encoder gives for free.

The targets. Every merged video token covers one temporal patch (two frames) and one cell of
the frame grid. Its target is the set of (colour, kind) pairs drawn anywhere in that cell in
either frame, from the scene's ground truth (``Scene``, stored in each row): 12 binary labels
(4 colours x 3 kinds), so the encoder learns colour, shape and where they are, bound together.
Nothing about order is taught: the encoder sees one temporal patch at a time, as in Qwen-VL,
and the temporal signal stays the language model's business.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.cycle import CachedShuffleCycle
from ..data.dataset import VideoR1Dataset
from ..data.prompts import build_prompt_inputs
from ..models import get_adapter, vision_parameters
from ..synthetic.world import COLOURS, KINDS, Scene, shape_mask
from .supervised import supervised_loop

__all__ = ["LABEL_NAMES", "EncoderPretrainResult", "label_counts", "pretrain_vision_encoder", "region_targets"]

LABEL_NAMES = tuple(f"{colour} {kind}" for colour in COLOURS for kind in KINDS)


def region_targets(scene: Scene, frame_indices: list[int], grid_thw: tuple[int, int, int], merge_size: int = 2) -> torch.Tensor:
    """Binary targets ``[T/2 * H/m * W/m, 12]`` for the merged tokens of one clip.

    ``frame_indices`` are the clip frames the model saw (in order; an odd count is padded by
    repeating the last, as the processors do); ``grid_thw`` is the processor's patch grid, whose
    ``H/m x W/m`` merged cells tile the frame evenly. Token order is the encoder's: temporal
    patch, then row, then column. Label ``c * len(KINDS) + k`` is on when some pixel of a shape
    of colour ``c`` and kind ``k`` lies in the token's cell in one of its two frames.
    """
    groups, rows, cols = grid_thw[0], grid_thw[1] // merge_size, grid_thw[2] // merge_size
    indices = list(frame_indices) + [frame_indices[-1]] * (2 * groups - len(frame_indices))
    targets = np.zeros((groups, rows, cols, len(LABEL_NAMES)), dtype=bool)
    # Cell edges in source pixels: the processor resizes the whole frame onto the grid.
    row_of = (np.arange(scene.height) * rows) // scene.height
    col_of = (np.arange(scene.width) * cols) // scene.width
    colour_index = {name: i for i, name in enumerate(COLOURS)}
    for shape in scene.shapes:
        label = colour_index[shape.colour] * len(KINDS) + KINDS.index(shape.kind)
        ys, xs = np.nonzero(shape_mask(shape.kind, shape.size))
        for slot, frame in enumerate(indices[: 2 * groups]):
            if not shape.visible(frame, scene.num_frames):
                continue
            x, y = shape.position(frame)
            targets[slot // 2, row_of[ys + y], col_of[xs + x], label] = True
    return torch.from_numpy(targets.reshape(-1, len(LABEL_NAMES))).float()


def label_counts(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, int]:
    """Counts behind ``EncoderPretrainResult``'s figures for ``[N, L]`` logits and 0/1 targets:
    ``tokens_right`` (rows with every label right), ``true_positive`` (labels on and predicted
    on, i.e. logit > 0), ``predicted`` (predicted on) and ``actual`` (on)."""
    predicted_on, on = logits > 0, targets > 0.5
    return {"tokens_right": int((predicted_on == on).all(-1).sum()), "true_positive": int((predicted_on & on).sum()),
            "predicted": int(predicted_on.sum()), "actual": int(on.sum())}


@dataclass
class EncoderPretrainResult:
    """Per-step loss, and how well the head reads the labels over the last 10% of steps.

    ``label_accuracy``: share of tokens whose every label is right (mostly empty background
    cells, so it flatters). ``label_precision`` / ``label_recall``: over the labels that are on
    (a shape drawn in the cell), the share of predicted-on labels that are right and of on labels
    that are predicted; these say whether the tokens tell the shapes apart."""

    losses: list[float] = field(default_factory=list)
    label_accuracy: float = 0.0
    label_precision: float = 0.0
    label_recall: float = 0.0


def pretrain_vision_encoder(
    model: torch.nn.Module,
    processor,
    dataset: VideoR1Dataset,
    steps: int = 200,
    learning_rate: float = 2e-3,
    clips_per_step: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> EncoderPretrainResult:
    """Train the vision encoder (and its merger) to predict ``region_targets`` through a linear
    head, with binary cross-entropy; the head is thrown away after. Rows need a ``scene``
    (the synthetic world's rows have one). Only encoder parameters change."""
    if steps < 1 or clips_per_step < 1:
        raise ValueError(f"steps and clips_per_step must be positive, got {steps} and {clips_per_step}")
    adapter = get_adapter(model)
    merge_size = processor.video_processor.merge_size
    encoder_parameters = vision_parameters(model)
    if not encoder_parameters:
        raise ValueError("the model has no parameters under a 'visual' module to pre-train")
    width = model.config.text_config.hidden_size
    head = torch.nn.Linear(width, len(LABEL_NAMES)).to(adapter.device)

    def prepare(index: int):
        decoded = dataset.decode(index)
        scene = decoded.sample.row.get("scene") if decoded is not None else None
        if decoded is None or not isinstance(scene, dict):
            return None
        prompt = adapter.prepare(build_prompt_inputs(processor, decoded.sample, decoded.media))
        grid = tuple(int(v) for v in prompt.video_grid_thw[0])
        targets = region_targets(Scene.from_dict(scene), decoded.media.frame_indices, grid, merge_size)
        return prompt, targets.to(adapter.device)

    clips = CachedShuffleCycle(
        len(dataset), prepare, seed, f"no row of {dataset.dataset_file} has a decodable video and a scene"
    )

    tallies = Counter()  # label_counts over the last 10% of steps, plus "tokens"
    tally_from = steps - max(steps // 10, 1)

    def label_loss(item, step: int) -> torch.Tensor:
        prompt, targets = item
        tokens = torch.cat(tuple(adapter.encode(prompt)["video"].pooler_output))
        logits = head(tokens)
        if step >= tally_from:
            tallies.update(label_counts(logits, targets))
            tallies["tokens"] += targets.shape[0]
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)

    result = EncoderPretrainResult()
    result.losses = supervised_loop(
        model, [*encoder_parameters, *head.parameters()], clips, label_loss, steps, clips_per_step, learning_rate,
        description="encoder pre-training", progress=progress, loss_digits=4,
    )
    result.label_accuracy = tallies["tokens_right"] / max(tallies["tokens"], 1)
    result.label_precision = tallies["true_positive"] / max(tallies["predicted"], 1)
    result.label_recall = tallies["true_positive"] / max(tallies["actual"], 1)
    return result
