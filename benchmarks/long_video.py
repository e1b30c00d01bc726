"""Peak memory and time of attribution and of the loss's pass on long videos: 16, 64, 256 frames.

    python benchmarks/long_video.py                 # a table
    python benchmarks/long_video.py --json          # one JSON object
    python benchmarks/long_video.py --frames 16 64  # other lengths
    python benchmarks/long_video.py --quick         # a smaller model and 8/16/32 frames

For each length, one video prompt and G completions, each (pass, way) in its own process so that
its peak memory is its own (``benchmarks/attribution.py``'s ``PeakMemory``: RSS sampled every
millisecond on CPU, ``max_memory_allocated`` on CUDA, above the level once the model and the
processed video exist). Two passes, each in up to three ways:

* ``score`` — attribution without gradient: the real log-probs, entropy, visual and temporal
  deltas. ``naive``: the official trainer's computation (``benchmarks/attribution.py``'s
  ``naive_scores``), full forwards over ``[G, prompt + completion]`` keeping every position's
  logits, so its memory grows with frames x G x vocabulary; skipped above
  ``--naive_max_frames`` (default 64), where it would not fit this machine. ``ours``:
  ``KeyTokenAttributor.score`` with the library's defaults. ``long``: the same with the
  long-video settings, the vision encoder over ``--encoder_chunk_groups`` temporal groups at a
  time and the prompt in chunks of ``--prefill_chunk_tokens`` tokens.
* ``gradient`` — the loss's pass: ``policy_logps`` with gradient and its backward (every
  parameter trains, so the encoder's activations count), ``ours`` and ``long`` as above.

Each way's real log-probs are compared with ``score:ours``'s (``*_max_logps_diff``).

Decoding (``--decode_clip``, by default the shared 22 s clip when it is there): the clip
re-encoded ``--decode_loops`` times into one long H.264 file (x264's default GOP), then
``decode_video(fps=2, max_frames=N)`` for each length N, which seeks to the keyframe before each
sampled frame, against decoding every frame in order and keeping the same N (each the median
of 3 runs).

Also printed, per length: the physical floor, i.e. the memory that must exist however the
passes run: the prompt's KV cache (layers x 2 x KV heads x head size x prompt tokens x bytes)
and the encoder's output (video tokens x hidden size x bytes, times the deepstack layers + 1
on Qwen3-VL). ``*_above_floor_mb`` is the peak minus that floor; the target is that it stays
flat as frames grow. On CPU, ``MALLOC_MMAP_THRESHOLD_`` is fixed at 1 MiB in each child, so
that freed buffers leave the resident set (see ``benchmarks/step.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution import (  # noqa: E402
    SHAPES,
    PeakMemory,
    build_model_and_video,
    cuda_available,
    naive_scores,
    process_video,
)

# A pass and a way: attribution scoring (no gradient) the official way, ours, ours with the
# long-video settings; the loss's forward and backward ours and with the long-video settings.
METHODS = ("score:naive", "score:ours", "score:long", "gradient:ours", "gradient:long")
DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_clip_640x360_22s.mp4"
# The attribution benchmark's model (~28M parameters, a 32k vocabulary) on square 224x224
# frames: 64 video tokens per temporal group of 2 frames, so 256 frames are 8,192 video tokens.
SHAPE = {**SHAPES["full"], "height": 224, "width": 224}
QUICK_SHAPE = {**SHAPES["quick"], "height": 112, "width": 112}


def floor_bytes(model, prompt_tokens: int, video_tokens: int, dtype_bytes: int) -> dict:
    """The KV cache of the prompt and the encoder's output, in bytes."""
    text = model.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv = text.num_hidden_layers * 2 * text.num_key_value_heads * head_dim * prompt_tokens * dtype_bytes
    deepstack = len(getattr(model.config.vision_config, "deepstack_visual_indexes", None) or ())
    encoder = (deepstack + 1) * video_tokens * text.hidden_size * dtype_bytes
    return {"kv_cache": kv, "encoder_output": encoder}


def write_long_clip(source: Path, loops: int, path: Path) -> Path:
    """``source`` re-encoded ``loops`` times in a row into one H.264 file (not remuxed: a real
    encoder's keyframes and B-frames, over the whole length)."""
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate, width, height = stream.average_rate, stream.codec_context.width, stream.codec_context.height
        frames = [frame.to_ndarray(format="yuv420p") for frame in container.decode(stream)]
    with av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}
        for _ in range(loops):
            for array in frames:
                output.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="yuv420p")))
        output.mux(stream.encode())
    return path


def decode_timings(clip: Path, frame_counts: list[int]) -> dict:
    """Seconds to sample each count of frames by seeking (``decode_video``) and by decoding
    every frame in order, on ``clip``."""
    import statistics

    import av

    from videoktr.data.video import decode_video

    def median_seconds(run) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return round(statistics.median(times), 3)

    def in_order(indices: set[int]) -> None:
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for number, frame in enumerate(container.decode(stream)):
                if number in indices:
                    frame.to_ndarray(format="rgb24")

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        seconds = float(stream.duration * stream.time_base) if stream.duration else None
    out = {"clip_seconds": seconds, "clip_frames": len(packets),
           "keyframes": sum(packet.is_keyframe for packet in packets), "lengths": []}
    for count in frame_counts:
        indices = decode_video(clip, fps=2.0, max_frames=count).frame_indices
        out["lengths"].append({
            "frames": len(indices),
            "by_seeking_s": median_seconds(lambda: decode_video(clip, fps=2.0, max_frames=count)),
            "in_order_s": median_seconds(lambda: in_order(set(indices))),
        })
    return out


def run_child(method: str, shape: dict, frames: int, family: str, device: str, settings: dict) -> dict:
    """One way at one length in this process: its peak memory above the loaded model and the
    processed video, its seconds, and what it computed (the real log-probs) for comparison."""
    import torch

    from videoktr import KeyTokenAttributor
    from videoktr.models import get_adapter

    pass_name, way = method.split(":")
    shape = {**shape, "frames": frames}
    model, processor, text, video, completion_ids = build_model_and_video(shape, family, device)
    completion_ids = completion_ids.to(device)
    prompt_inputs = process_video(processor, text, video)
    mask = torch.ones_like(completion_ids, dtype=torch.bool)
    if way == "long":
        from videoktr.models import set_encoder_chunking, set_prefill_chunking

        set_encoder_chunking(model, settings["encoder_chunk_groups"])
        set_prefill_chunking(model, settings["prefill_chunk_tokens"])
    attributor = KeyTokenAttributor(model, processor, seed=0)
    adapter = get_adapter(model)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with PeakMemory(device) as memory:
        if pass_name == "gradient":  # the loss's forward and backward: parameter gradients count
            logps = adapter.policy_logps(model, adapter.prepare(prompt_inputs), completion_ids, chunk_size=1024)
            logps.sum().backward()
            logps = logps.detach()
        else:
            with torch.no_grad():
                if way == "naive":
                    scores = naive_scores(model, processor, text, video, completion_ids, prompt_inputs, generator)
                else:
                    scores = attributor.score(prompt_inputs, completion_ids, mask)
            logps = scores["logps"]
    seconds = time.perf_counter() - start
    prompt_tokens = int(prompt_inputs["input_ids"].shape[1])
    video_tokens = int((prompt_inputs["input_ids"] == model.config.video_token_id).sum())
    floor = floor_bytes(model, prompt_tokens, video_tokens, next(model.parameters()).element_size())
    return {
        "seconds": seconds,
        "peak_mb": memory.peak_mb,
        "kv_cache_mb": floor["kv_cache"] / 2**20,
        "encoder_output_mb": floor["encoder_output"] / 2**20,
        "prompt_tokens": prompt_tokens,
        "video_tokens": video_tokens,
        "logps": logps.float().cpu().tolist(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--quick", action="store_true", help="a smaller model and 8/16/32 frames")
    parser.add_argument("--frames", type=int, nargs="+", help="video lengths (default 16 64 256; quick 8 16 32)")
    parser.add_argument("--naive_max_frames", type=int, default=64,
                        help="run the naive way up to this many frames (its logits grow with frames x vocabulary)")
    parser.add_argument("--no_gradient", action="store_true", help="skip the gradient pass")
    parser.add_argument("--encoder_chunk_groups", type=int, default=8)
    parser.add_argument("--prefill_chunk_tokens", type=int, default=1024)
    parser.add_argument("--decode_clip", type=Path, default=DEFAULT_CLIP,
                        help="a video to loop into a long clip for the decoding timings (skipped if missing)")
    parser.add_argument("--decode_loops", type=int, help="how many times to loop it (default 12; quick 2)")
    parser.add_argument("--family", default="qwen2_5_vl", choices=("qwen2_vl", "qwen2_5_vl", "qwen3_vl"))
    parser.add_argument("--device", default="cuda" if cuda_available() else "cpu")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = QUICK_SHAPE if args.quick else SHAPE
    frame_counts = args.frames or ([8, 16, 32] if args.quick else [16, 64, 256])
    settings = {"encoder_chunk_groups": args.encoder_chunk_groups, "prefill_chunk_tokens": args.prefill_chunk_tokens}

    if args.child:
        print(json.dumps(run_child(args.child, shape, frame_counts[0], args.family, args.device, settings)))
        return 0

    environment = dict(os.environ)
    if args.device == "cpu":
        environment["MALLOC_MMAP_THRESHOLD_"] = str(2**20)
    methods = [method for method in METHODS if not (args.no_gradient and method.startswith("gradient"))]
    rows = []
    for frames in frame_counts:
        row = {}
        for method in methods:
            if method == "score:naive" and frames > args.naive_max_frames:
                continue
            command = [sys.executable, __file__, "--child", method, "--frames", str(frames), "--family", args.family,
                       "--device", args.device, "--encoder_chunk_groups", str(args.encoder_chunk_groups),
                       "--prefill_chunk_tokens", str(args.prefill_chunk_tokens)]
            if args.quick:
                command.append("--quick")
            if not args.json:
                print(f"running {method} at {frames} frames ...", file=sys.stderr, flush=True)
            completed = subprocess.run(command, capture_output=True, text=True, env=environment)
            if completed.returncode != 0:
                sys.stderr.write(completed.stderr)
                return completed.returncode
            row[method] = json.loads(completed.stdout.strip().splitlines()[-1])
        rows.append((frames, row))

    import torch

    summary = {"family": args.family, "device": args.device, "completions": shape["completions"],
               "completion_length": shape["completion_length"], **settings, "lengths": []}
    for frames, row in rows:
        ours = row["score:ours"]
        floor_mb = ours["kv_cache_mb"] + ours["encoder_output_mb"]
        entry = {"frames": frames, "prompt_tokens": ours["prompt_tokens"], "video_tokens": ours["video_tokens"],
                 "kv_cache_mb": round(ours["kv_cache_mb"], 1), "floor_mb": round(floor_mb, 1)}
        for method in methods:
            key = method.replace(":", "_")
            result = row.get(method)
            entry[f"{key}_peak_mb"] = None if result is None else round(result["peak_mb"], 1)
            entry[f"{key}_above_floor_mb"] = None if result is None else round(result["peak_mb"] - floor_mb, 1)
            entry[f"{key}_s"] = None if result is None else round(result["seconds"], 2)
            if result is not None and method != "score:ours":  # the same log-probs, however computed
                difference = torch.tensor(result["logps"]) - torch.tensor(ours["logps"])
                entry[f"{key}_max_logps_diff"] = difference.abs().max().item()
        summary["lengths"].append(entry)
    summary["decode"] = None
    if args.decode_clip.is_file():
        if not args.json:
            print(f"decoding {args.decode_clip} looped ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as directory:
            loops = args.decode_loops or (2 if args.quick else 12)
            clip = write_long_clip(args.decode_clip, loops, Path(directory) / "long.mp4")
            summary["decode"] = decode_timings(clip, frame_counts)
    elif not args.json:
        print(f"no clip at {args.decode_clip}: decoding not timed", file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
        return 0
    print_table(summary, methods, args)
    return 0


def print_table(summary: dict, methods: list[str], args) -> None:
    print(f"{args.family} random model on {args.device}: {summary['completions']} completions of "
          f"{summary['completion_length']} tokens; long = encoder in chunks of {args.encoder_chunk_groups} groups, "
          f"prompt in chunks of {args.prefill_chunk_tokens} tokens; MB above the loaded model and video, "
          f"'above' = above the floor (the prompt's KV cache and the encoder's output)")
    header = f"{'frames':>7}{'prompt':>8}{'floor MB':>10}"
    for method in methods:
        header += f"{method + ' MB':>18}{'above':>9}{'s':>8}"
    print(header)
    for entry in summary["lengths"]:
        line = f"{entry['frames']:>7}{entry['prompt_tokens']:>8}{entry['floor_mb']:>10.1f}"
        for method in methods:
            key = method.replace(":", "_")
            if entry[f"{key}_peak_mb"] is None:
                line += f"{'skipped':>18}{'':>9}{'':>8}"
            else:
                line += f"{entry[f'{key}_peak_mb']:>18.1f}{entry[f'{key}_above_floor_mb']:>9.1f}{entry[f'{key}_s']:>8.2f}"
        print(line)
    decode = summary["decode"]
    if decode is not None:
        print(f"decoding a {decode['clip_seconds']:.0f} s clip of {decode['clip_frames']} frames, "
              f"{decode['keyframes']} keyframes: sampling at 2 fps up to N frames")
        print(f"{'frames':>7}{'seeking s':>11}{'in order s':>12}")
        for entry in decode["lengths"]:
            print(f"{entry['frames']:>7}{entry['by_seeking_s']:>11.3f}{entry['in_order_s']:>12.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
