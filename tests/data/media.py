"""Small media files for the data tests, written with PyAV and PIL so nothing is downloaded.

Every frame of a generated video is one flat grey level that encodes its index
(``frame_level(i)``), so a test can tell from the decoded pixels which source frame it got.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# Grey levels 16, 20, ..., 236: 56 distinct values, 4 apart, so lossy coding (a level or two of
# error on flat frames) cannot turn one into another.
_LEVEL_BASE, _LEVEL_STEP, _NUM_LEVELS = 16, 4, 56


def frame_level(index: int) -> int:
    """The grey level of frame ``index`` in a video from ``write_video``."""
    return _LEVEL_BASE + _LEVEL_STEP * (index % _NUM_LEVELS)


def level_to_index(mean_value: float) -> int:
    """Invert ``frame_level`` (modulo 56) from a decoded frame's mean pixel value."""
    return round((mean_value - _LEVEL_BASE) / _LEVEL_STEP) % _NUM_LEVELS


def encodable_codecs() -> list[str]:
    """Of H.264 (libx264) and MPEG-4 part 2, those this PyAV build can encode, preferred first."""
    codecs = [name for name in ("libx264", "mpeg4") if _can_encode(name)]
    if not codecs:
        raise RuntimeError("this PyAV build can encode neither libx264 nor mpeg4")
    return codecs


def video_codec() -> str:
    """H.264 (libx264) when this PyAV build can encode it, else MPEG-4 part 2."""
    return encodable_codecs()[0]


def _can_encode(codec_name: str) -> bool:
    try:
        av.codec.Codec(codec_name, "w")
    except ValueError:  # av.codec.codec.UnknownCodecError: no such encoder in this build
        return False
    return True


def write_video(
    path: Path,
    num_frames: int,
    fps: int = 24,
    width: int = 64,
    height: int = 48,
    gop_size: int = 12,
    codec: str | None = None,
) -> Path:
    """Write an MP4 of ``num_frames`` flat frames at a constant ``fps``; keyframe every
    ``gop_size`` frames (small, so that seeking is exercised); two B-frames between anchors.

    The two codecs give different stream structures: libx264 closes each GOP, while MPEG-4 part 2
    here makes every anchor an I-frame, so B-frames shown just *before* a keyframe are decoded
    *after* it (their dts follows the keyframe's), the case that defeats seeking by pts.
    """
    codec = video_codec() if codec is None else codec
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop_size
        if codec == "libx264":
            stream.codec_context.options = {"bf": "2", "preset": "veryfast"}
        else:  # MPEG-4 part 2: a high bit rate keeps flat grey levels exact enough
            stream.codec_context.max_b_frames = 2
            stream.codec_context.bit_rate = 4_000_000
        for index in range(num_frames):
            level = frame_level(index)
            array = np.full((height, width, 3), level, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_empty_video(path: Path, fps: int = 24) -> Path:
    """A valid container whose video stream holds no frames (AVI keeps the empty stream)."""
    with av.open(str(path), mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def write_random_bytes(path: Path, size: int = 4096, seed: int = 0) -> Path:
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path
