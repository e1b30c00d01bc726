"""The long-video benchmark keeps working: it runs, reports every field, the three ways agree,
and the decoding timings come back for a clip it is given.

Its memory target is checked by running the script (docs/memory.md), never here.
"""

import json
import subprocess
import sys
from pathlib import Path

from tests.data.media import write_video

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "long_video.py"


def test_quick_benchmark_reports_every_field(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 48, fps=8, gop_size=12)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", "--device", "cpu", "--frames", "8",
         "--naive_max_frames", "4", "--prefill_chunk_tokens", "32", "--encoder_chunk_groups", "2",
         "--decode_clip", str(clip), "--decode_loops", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    (entry,) = summary["lengths"]
    assert entry["frames"] == 8 and entry["prompt_tokens"] > entry["video_tokens"] > 0 and entry["kv_cache_mb"] > 0
    for method in ("score_ours", "score_long", "gradient_ours", "gradient_long"):
        assert entry[f"{method}_peak_mb"] > 0 and entry[f"{method}_s"] > 0, method
    for method in ("score_long", "gradient_ours", "gradient_long"):  # the same log-probs, however computed
        assert entry[f"{method}_max_logps_diff"] < 1e-4, method
    assert entry["score_naive_peak_mb"] is None  # above --naive_max_frames (the naive way: test_attribution_benchmark)
    decode = summary["decode"]
    assert decode["clip_frames"] == 96 and decode["keyframes"] >= 1
    (timing,) = decode["lengths"]
    assert timing["frames"] == 8 and timing["by_seeking_s"] > 0 and timing["in_order_s"] > 0
