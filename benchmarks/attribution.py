"""Time and peak memory of key-token attribution: the official code's way vs videoktr's.

    python benchmarks/attribution.py            # realistic shape, a table
    python benchmarks/attribution.py --json     # one JSON object (naive_s, ours_s, speedup, ...)
    python benchmarks/attribution.py --quick    # a smaller shape, under a minute

Both compute, for G completions of one video prompt, the real log-probs, the entropy, the
visual delta and the temporal delta.

* naive — written the way the official Video-KTR / Video-R1 trainer works: the prompt's pixel
  values are repeated for each of the G completions (so the vision encoder runs G times per
  forward), three full forwards over [G, prompt + completion] keep full-vocabulary logits
  (real, video masked out by the attention mask, frames shuffled and re-processed by the
  processor), log-probs are taken row by row and the entropy over every position's logits.
* ours — ``KeyTokenAttributor.score`` with its defaults: one encoder run, one prompt prefix
  per variant shared by the G completions through the KV cache, chunked ``lm_head``.

Each method runs in its own subprocess, so its peak memory is its own: on CPU the peak of the
resident set size (sampled every millisecond) above the level after the model and inputs are
built; on CUDA ``torch.cuda.max_memory_allocated`` above the same baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

SHAPES = {
    # hidden 384 x 6 layers, vision 256 x 6 blocks, a 32k vocabulary: about 28M parameters.
    # 16 frames at 224x448 (256x512 for Qwen3-VL) -> 8 groups x 128 merged patches = 1,024 video tokens.
    "full": dict(hidden_size=384, num_layers=6, num_heads=6, num_kv_heads=2, intermediate_size=1024,
                 vision_hidden_size=256, vision_depth=6, vision_heads=4, vocab_size=32000,
                 frames=16, height=224, width=448, completions=8, completion_length=128, repeats=3),
    "quick": dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256,
                  vision_hidden_size=128, vision_depth=2, vision_heads=4, vocab_size=16000,
                  frames=8, height=112, width=224, completions=4, completion_length=32, repeats=2),
}


def build_model_and_video(shape: dict, family: str, device: str):
    import torch

    from videoktr.models.tiny import build_tiny_model

    model, processor = build_tiny_model(
        family,
        seed=0,
        hidden_size=shape["hidden_size"], num_layers=shape["num_layers"], num_heads=shape["num_heads"],
        num_kv_heads=shape["num_kv_heads"], intermediate_size=shape["intermediate_size"],
        vision_hidden_size=shape["vision_hidden_size"], vision_depth=shape["vision_depth"],
        vision_heads=shape["vision_heads"], vocab_size=shape["vocab_size"],
    )
    model.to(device).eval()
    # Frame sizes are given for 14-pixel patches; Qwen3-VL's 16-pixel patches need frames
    # 16/14 larger for the same number of video tokens.
    scale = model.config.vision_config.patch_size / 14
    height, width = round(shape["height"] * scale), round(shape["width"] * scale)
    pixels = height * width
    video_processor = processor.video_processor
    if family == "qwen3_vl":  # its budget bounds frames x height x width
        video_processor.size = {"shortest_edge": 1024, "longest_edge": pixels * shape["frames"]}
    else:
        video_processor.size = {"shortest_edge": 1024, "longest_edge": pixels}
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (shape["frames"], 3, height, width), generator=gen, dtype=torch.uint8)
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happened first, and why?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    completion_ids = torch.randint(0, shape["vocab_size"], (shape["completions"], shape["completion_length"]), generator=gen)
    return model, processor, text, frames, completion_ids


def process_video(processor, text, frames):
    metadata = [{"fps": 2.0, "total_num_frames": frames.shape[0], "frames_indices": list(range(frames.shape[0]))}]
    return processor(text=[text], videos=[frames], video_metadata=metadata, do_sample_frames=False, return_tensors="pt")


def naive_scores(model, processor, text, frames, completion_ids, prompt_inputs, generator):
    """The official trainer's computation, kept as it is written there (per-completion copies of
    the pixel values, full logits for every pass, entropy over every position)."""
    import torch

    device = completion_ids.device
    num, length = completion_ids.shape

    def full_logits(inputs, attention_mask=None, position_ids=None, with_pixels=True):
        prompt_ids = inputs["input_ids"].to(device)
        ids = torch.cat([prompt_ids.expand(num, -1), completion_ids], dim=1)
        kwargs = {}
        if with_pixels:
            kwargs["pixel_values_videos"] = inputs["pixel_values_videos"].to(device).repeat(num, 1)
            kwargs["video_grid_thw"] = inputs["video_grid_thw"].to(device).repeat(num, 1)
            types = inputs["mm_token_type_ids"].to(device)
            kwargs["mm_token_type_ids"] = torch.cat([types.expand(num, -1), types.new_zeros(num, length)], 1)
            if "second_per_grid_ts" in inputs:
                kwargs["second_per_grid_ts"] = inputs["second_per_grid_ts"].to(device).repeat(num)
        return model(input_ids=ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs).logits

    def per_token_logps(logits):  # the official loop: one row's log_softmax at a time
        prompt_length = logits.shape[1] - length
        rows = []
        for row_logits, row_ids in zip(logits[:, prompt_length - 1 : -1], completion_ids):
            rows.append(torch.gather(row_logits.log_softmax(-1), 1, row_ids.unsqueeze(1)).squeeze(1))
        return torch.stack(rows)

    with torch.no_grad():
        logits = full_logits(prompt_inputs)
        logps = per_token_logps(logits)
        shifted = logits[:, :-1]
        entropy = -(torch.softmax(shifted, -1) * torch.log_softmax(shifted, -1)).sum(-1)[:, -length:]
        del logits, shifted

        # Visual: the video tokens masked out of attention; the remaining tokens numbered as text.
        prompt_ids = prompt_inputs["input_ids"][0].to(device)
        attention = torch.ones(num, prompt_ids.shape[0] + length, dtype=torch.long, device=device)
        attention[:, : prompt_ids.shape[0]][:, prompt_ids == model.config.video_token_id] = 0
        positions = (attention.cumsum(-1) - 1).clamp(min=0).unsqueeze(0).expand(3, -1, -1)
        masked = per_token_logps(full_logits(prompt_inputs, attention, positions))

        # Temporal: a random frame order, re-processed, re-encoded, full forward.
        order = torch.randperm(frames.shape[0], generator=generator)
        shuffled_inputs = process_video(processor, text, frames[order])
        shuffled = per_token_logps(full_logits(shuffled_inputs))
    return {"logps": logps, "entropy": entropy, "visual": (logps - masked).abs(), "temporal": (logps - shuffled).abs()}


class PeakMemory:
    """Peak memory above the level at ``start``: CUDA allocator stats, or RSS sampled each ms."""

    def __init__(self, device: str):
        self.device = device

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            self.baseline = self.peak = self._rss()
            self.running = True
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.peak, self._rss())
        self.peak_mb = (self.peak - self.baseline) / 2**20


def run_child(method: str, shape_name: str, family: str, device: str) -> dict:
    """One method in this process: time over repeats (after a warm-up), and peak memory."""
    import torch

    from videoktr import KeyTokenAttributor

    torch.set_grad_enabled(False)
    shape = SHAPES[shape_name]
    model, processor, text, frames, completion_ids = build_model_and_video(shape, family, device)
    completion_ids = completion_ids.to(device)
    prompt_inputs = process_video(processor, text, frames)
    mask = torch.ones_like(completion_ids, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    attributor = KeyTokenAttributor(model, processor, seed=0)

    def once():
        if method == "naive":
            return naive_scores(model, processor, text, frames, completion_ids, prompt_inputs, generator)
        return attributor.score(prompt_inputs, completion_ids, mask)

    with PeakMemory(device) as memory:
        scores = once()  # the first run, also the warm-up, measures the peak
    logps = scores["logps"].float().cpu()
    times = []
    for _ in range(shape["repeats"]):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        once()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    video_tokens = int((prompt_inputs["input_ids"] == model.config.video_token_id).sum())
    return {
        "seconds": statistics.median(times),
        "peak_mb": memory.peak_mb,
        "logps": logps.tolist(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "prompt_tokens": int(prompt_inputs["input_ids"].shape[1]),
        "video_tokens": video_tokens,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller shape that runs in under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--family", default="qwen2_5_vl", choices=("qwen2_vl", "qwen2_5_vl", "qwen3_vl"))
    parser.add_argument("--device", default="cuda" if cuda_available() else "cpu")
    parser.add_argument("--child", choices=("naive", "ours"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape_name = "quick" if args.quick else "full"

    if args.child:
        print(json.dumps(run_child(args.child, shape_name, args.family, args.device)))
        return 0

    results = {}
    for method in ("naive", "ours"):
        command = [sys.executable, __file__, "--child", method, "--family", args.family, "--device", args.device]
        if args.quick:
            command.append("--quick")
        if not args.json:
            print(f"running {method} ...", file=sys.stderr, flush=True)
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            sys.stderr.write(completed.stderr)
            return completed.returncode
        results[method] = json.loads(completed.stdout.strip().splitlines()[-1])

    import torch

    naive, ours = results["naive"], results["ours"]
    logps_diff = (torch.tensor(naive["logps"]) - torch.tensor(ours["logps"])).abs().max().item()
    shape = SHAPES[shape_name]
    summary = {
        "shape": shape_name,
        "family": args.family,
        "device": args.device,
        "parameters_m": round(naive["parameters"] / 1e6, 1),
        "prompt_tokens": naive["prompt_tokens"],
        "video_tokens": naive["video_tokens"],
        "completions": shape["completions"],
        "completion_length": shape["completion_length"],
        "naive_s": round(naive["seconds"], 3),
        "ours_s": round(ours["seconds"], 3),
        "speedup": round(naive["seconds"] / ours["seconds"], 2),
        "naive_peak_mb": round(naive["peak_mb"], 1),
        "ours_peak_mb": round(ours["peak_mb"], 1),
        "memory_ratio": round(naive["peak_mb"] / max(ours["peak_mb"], 1e-6), 2),
        "max_logps_diff": logps_diff,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{summary['family']} random model, {summary['parameters_m']}M parameters, on {summary['device']}: "
        f"prompt of {summary['prompt_tokens']} tokens ({summary['video_tokens']} video), "
        f"{summary['completions']} completions of {summary['completion_length']} tokens"
    )
    print(f"{'':<8}{'time (s)':>12}{'peak (MB)':>12}")
    print(f"{'naive':<8}{summary['naive_s']:>12.3f}{summary['naive_peak_mb']:>12.1f}")
    print(f"{'ours':<8}{summary['ours_s']:>12.3f}{summary['ours_peak_mb']:>12.1f}")
    print(f"speedup {summary['speedup']}x, memory ratio {summary['memory_ratio']}x; "
          f"real-pass log-probs agree to {logps_diff:.1e}")
    return 0


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    raise SystemExit(main())
