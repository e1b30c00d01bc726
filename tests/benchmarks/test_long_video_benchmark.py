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
        [sys.executable, str(SCRIPT), "--quick", "--json", "--device", "cpu", "--frames", "4", "8",
         "--naive_max_frames", "4", "--decode_clip", str(clip), "--decode_loops", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    short, longer = summary["lengths"]
    assert (short["frames"], longer["frames"]) == (4, 8)
    assert longer["prompt_tokens"] > short["prompt_tokens"] and short["kv_cache_mb"] > 0
    for entry in (short, longer):
        for method in ("ours", "long"):
            assert entry[f"{method}_peak_mb"] > 0 and entry[f"{method}_s"] > 0
        assert entry["long_max_logps_diff"] < 1e-4  # chunked prefill is the same computation
    assert short["naive_peak_mb"] > 0 and short["naive_max_logps_diff"] < 1e-4
    assert longer["naive_peak_mb"] is None  # above --naive_max_frames
    decode = summary["decode"]
    assert decode["clip_frames"] == 96 and decode["keyframes"] >= 1
    assert [entry["frames"] for entry in decode["lengths"]] == [4, 8]
    assert all(entry["by_seeking_s"] > 0 and entry["in_order_s"] > 0 for entry in decode["lengths"])
