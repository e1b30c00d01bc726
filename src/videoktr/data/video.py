"""Video and image decoding for training: sampled frames with their exact indices and timing.

Why PyAV directly rather than ``transformers.video_utils.load_video``: the trainer needs, for every
returned frame, its exact index in the source clip (the Qwen processors turn indices into temporal
positions: Qwen2.5-VL's ``second_per_grid_ts`` and Qwen3-VL's ``<t seconds>`` prompt text), and it
needs every failure (missing file, empty file, unreadable container, no video stream, no frames)
to surface as one exception type naming the file, so that a data loader can skip and count broken
media. ``load_video`` picks among several backends with different frame-count conventions, does
its own sampling, and lets backend-specific exceptions through.

How frames are located. A first pass demuxes the video stream without decoding anything (cheap:
packets are read, not decoded; about 10 ms for the 22 s test clip) and lists every packet's
presentation timestamp (pts). Frame ``i`` of the clip is the packet with the ``i``-th smallest
pts, so ``total_frames`` and the indices are exact for any container, including those whose
header frame count is missing or wrong. The decode pass then visits the sampled frames in order;
whenever the last keyframe shown at or before the next wanted frame lies beyond the last decoded
frame, it seeks to that keyframe (by its pts, else its dts: ``_seek_to_keyframe``) instead
of decoding through the gap, so a sparse sample of a long video decodes a small part of it.
Every returned frame is checked to carry exactly the wanted pts; if a stream defeats that
(missing or duplicate pts, a seek that lands past the frame, a decoder that drops it),
decoding falls back to a plain sequential pass that numbers frames as the decoder emits them,
so the indices stay exact either way.

Timing convention, shared with the Qwen processors (``transformers.video_utils.VideoMetadata``):
frame ``i`` is shown at ``i / source_fps`` seconds, and a clip lasts
``duration = total_frames / source_fps`` seconds, where ``source_fps`` is the stream's average
frame rate. For variable-frame-rate files these times are the constant-rate approximation the
processors themselves use.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import defaults

__all__ = [
    "DecodedVideo",
    "ImageDecodeError",
    "VideoDecodeError",
    "decode_video",
    "load_image",
    "sample_frame_indices",
]

# Frame counts are computed from float rates (22.29 fps is 2229/100 stored as a float): a count
# that is mathematically an integer must not be floored to one less.
_COUNT_SLACK = 1e-6


class VideoDecodeError(ValueError):
    """A video could not be decoded: the message starts with the file's path and says why."""


class ImageDecodeError(ValueError):
    """An image could not be decoded: the message starts with the file's path and says why."""


@dataclass(eq=False)
class DecodedVideo:
    """Frames sampled from a video, with the timing the Qwen processors need.

    Attributes:
        frames: uint8 tensor ``[T, C, H, W]`` (RGB), in presentation order.
        fps: effective frame rate of the returned frames,
            ``T * source_fps / total_frames`` (= ``T / duration``). It equals the sampling ``fps``
            whenever the clip is long enough for neither ``min_frames`` nor ``max_frames`` to
            bind (up to rounding to a whole, even frame count).
        source_fps: the stream's average frame rate.
        total_frames: number of frames in the video stream.
        frame_indices: index in the source clip of each returned frame (strictly increasing).
        duration: ``total_frames / source_fps`` seconds.
    """

    frames: torch.Tensor
    fps: float
    source_fps: float
    total_frames: int
    frame_indices: list[int]
    duration: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def timestamps(self) -> list[float]:
        """Seconds from the start of the clip of each returned frame: ``index / source_fps``."""
        return [index / self.source_fps for index in self.frame_indices]

    def metadata(self) -> dict:
        """The ``video_metadata`` entry the Qwen processors expect for these frames.

        ``{"fps": source_fps, "total_num_frames": total_frames, "frames_indices": frame_indices,
        "duration": duration}``: the *source* rate and count with the *source* indices, as
        ``transformers`` (5.24) describes a sampled clip. From it, ``VideoMetadata.sampled_fps``
        is ``len(frames_indices) / total_num_frames * fps``, exactly ``self.fps``, so Qwen2.5-VL
        gets ``second_per_grid_ts = temporal_patch_size / self.fps`` (1.0 s for frames sampled at
        2 fps); and Qwen3-VL's timestamps ``frames_indices[i] / fps`` are the frames' true times
        in the clip. Passing the effective rate as ``fps`` together with the source frame count
        would make Qwen2.5-VL's temporal positions wrong by a factor ``total_frames / T``.

        A fresh dict with a fresh index list is returned on every call: Qwen3-VL's processor
        extends an odd-length ``frames_indices`` list in place.
        """
        return {
            "fps": self.source_fps,
            "total_num_frames": self.total_frames,
            "frames_indices": list(self.frame_indices),
            "duration": self.duration,
        }


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # ValueError, not TypeError: the package reports every bad argument as ValueError.
        raise ValueError(f"{name} must be a positive number, got {value!r}")  # noqa: TRY004
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def sample_frame_indices(
    total_frames: int,
    source_fps: float,
    fps: float = defaults.FPS,
    min_frames: int = defaults.MIN_FRAMES,
    max_frames: int = defaults.MAX_FRAMES,
) -> list[int]:
    """Indices of the frames to keep from a clip of ``total_frames`` frames at ``source_fps``.

    The rule (deterministic, integer arithmetic after step 1):

    1. ``at_fps = floor(total_frames * fps / source_fps + 1e-6)``: the number of frames that
       sampling at ``fps`` gives over the clip's ``total_frames / source_fps`` seconds.
    2. ``n = min(max(at_fps, min_frames), max_frames, total_frames)``.
    3. Even count when possible (Qwen encodes frames in pairs, and pads an odd count by repeating
       the last frame): if ``n`` is odd, use ``n - 1`` if that is still ``>= min_frames``, else
       ``n + 1`` if that is still ``<= min(max_frames, total_frames)``, else keep ``n`` (a clip of
       fewer than ``min_frames`` frames keeps all of them, e.g. 3 of 3).
    4. ``index[i] = floor((2 * i + 1) * total_frames / (2 * n))`` for ``i = 0 .. n - 1``: the
       middle frame of each of ``n`` equal segments. Consecutive frames are ``total_frames / n``
       source frames apart, which is the spacing the processors assume (``sampled_fps``), and
       ``n == total_frames`` keeps every frame.

    Examples at ``fps=2, min_frames=4, max_frames=16``: 96 frames at 24 fps (4 s) give 8 frames,
    ``[6, 18, ..., 90]``, exactly 2 fps; 108 frames at 24 fps (4.5 s) give 9, made even: 8;
    30 frames at 30 fps (1 s) give 2, raised to ``min_frames``: 4; 3 frames give all 3;
    491 frames at 22.29 fps (22 s) give 44, capped at 16.
    """
    total_frames = _check_positive_int("total_frames", total_frames)
    source_fps = _check_positive_float("source_fps", source_fps)
    fps = _check_positive_float("fps", fps)
    min_frames = _check_positive_int("min_frames", min_frames)
    max_frames = _check_positive_int("max_frames", max_frames)
    if max_frames < min_frames:
        raise ValueError(f"max_frames ({max_frames}) must be >= min_frames ({min_frames})")

    at_fps = math.floor(total_frames * fps / source_fps + _COUNT_SLACK)
    count = min(max(at_fps, min_frames), max_frames, total_frames)
    if count % 2:
        if count - 1 >= min_frames:
            count -= 1
        elif count + 1 <= min(max_frames, total_frames):
            count += 1
    return [(2 * i + 1) * total_frames // (2 * count) for i in range(count)]


# ----------------------------------------------------------------------------- decoding


class _FastPathFailed(Exception):
    """The pts-indexed, seeking decode could not guarantee exact indices for this stream."""


@dataclass
class _StreamIndex:
    """What the demux pass learned about the video stream, without decoding anything."""

    stream_index: int
    source_fps: float
    packet_count: int
    presentation_pts: list[int] | None  # sorted; None when pts are missing or repeated
    keyframe_pts: list[int]  # sorted
    # Each keyframe's min(pts, dts): where to seek if seeking to its pts lands past it
    # (``_seek_to_keyframe``).
    keyframe_seek_ts: dict[int, int]


def _fail(path: Path, reason: str) -> VideoDecodeError:
    return VideoDecodeError(f"{path}: {reason}")


def _check_media_file(path: Path, error: type[ValueError]) -> None:
    if not path.exists():
        raise error(f"{path}: no such file")
    if not path.is_file():
        raise error(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise error(f"{path}: file is empty (0 bytes)")


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot open as a media container ({exc})") from exc


def _video_stream(
    container: av.container.InputContainer, path: Path
) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise _fail(path, "container has no video stream")
    return container.streams.video[0]


def _frame_rate(stream: av.video.stream.VideoStream, packet_count: int) -> float | None:
    """Average frame rate; else the guessed or base rate; else frames / stream duration."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    if stream.duration and stream.time_base and packet_count:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return packet_count / seconds
    return None


def _index_stream(path: Path) -> _StreamIndex:
    with _open(path) as container:
        stream = _video_stream(container, path)
        pts: list[int | None] = []
        keyframe_seek_ts: dict[int, int] = {}
        try:
            for packet in container.demux(stream):
                # The demuxer ends with an empty flush packet; discard-flagged packets (e.g. the
                # pre-roll of an MP4 edit list) are dropped by the decoder and are not frames.
                if packet.size == 0 or packet.is_discard:
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe and packet.pts is not None:
                    dts = packet.pts if packet.dts is None else packet.dts
                    keyframe_seek_ts[packet.pts] = min(packet.pts, dts)
        except av.error.FFmpegError as exc:
            raise _fail(path, f"cannot read the video stream ({exc})") from exc
        if not pts:
            raise _fail(path, "video stream has no frames")
        source_fps = _frame_rate(stream, len(pts))
        if source_fps is None:
            raise _fail(path, "cannot determine the video's frame rate")
        presentation: list[int] | None = None
        if all(p is not None for p in pts) and len(set(pts)) == len(pts):
            presentation = sorted(pts)  # type: ignore[arg-type]
        return _StreamIndex(
            stream_index=stream.index,
            source_fps=source_fps,
            packet_count=len(pts),
            presentation_pts=presentation,
            keyframe_pts=sorted(keyframe_seek_ts),
            keyframe_seek_ts=keyframe_seek_ts,
        )


def _to_tensor(frame: av.VideoFrame, size: tuple[int, int] | None) -> torch.Tensor:
    """RGB uint8 ``[C, H, W]``; frames are resized to ``size`` (width, height) if it is given."""
    if size is None:
        array = frame.to_ndarray(format="rgb24")
    else:
        array = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def _seek_to_keyframe(container, stream, keyframe: int, keyframe_dts: int) -> Iterator[av.VideoFrame]:
    """A decoder whose first frame is the keyframe shown at pts ``keyframe``.

    Demuxers differ in what a seek timestamp means: MP4 in this FFmpeg indexes samples by
    presentation time, so seeking to a B-frame stream's keyframe by its (earlier) dts lands on
    the keyframe *before*, and every seek would decode a whole GOP for nothing (measured: 7,095
    frames decoded to sample 64 of a 5,892-frame clip); a demuxer indexing by decode time could
    land on the *next* keyframe when seeking by pts. So: seek by pts; if that lands past the
    keyframe, seek by its dts; if the decoder still does not start at the keyframe itself, the
    frames it gives are still correct (they are checked by pts) but waste work.
    """
    for timestamp in dict.fromkeys((keyframe, keyframe_dts)):
        try:
            container.seek(timestamp, stream=stream, backward=True, any_frame=False)
        except av.error.FFmpegError as exc:  # a format that cannot seek
            raise _FastPathFailed from exc
        decoder = container.decode(stream)
        first = next(decoder, None)
        if first is None:
            raise _FastPathFailed  # the stream ended
        if first.pts is not None and first.pts <= keyframe:
            return itertools.chain([first], decoder)
    raise _FastPathFailed  # both seeks landed past the keyframe


def _decode_by_seeking(
    path: Path, index: _StreamIndex, frame_indices: list[int]
) -> list[torch.Tensor]:
    """Decode the frames whose presentation pts are ``presentation_pts[frame_indices]``."""
    assert index.presentation_pts is not None
    targets = [index.presentation_pts[i] for i in frame_indices]
    first_pts = index.presentation_pts[0]
    keyframes = index.keyframe_pts
    out: list[torch.Tensor] = []
    size: tuple[int, int] | None = None
    with _open(path) as container:
        stream = container.streams[index.stream_index]
        stream.thread_type = "AUTO"
        decoder = None
        position: int | None = None  # pts of the last decoded frame
        for target in targets:
            # The last keyframe shown at or before the target: decoding from it reaches the
            # target (frames shown after a keyframe never reference frames before it).
            slot = bisect.bisect_right(keyframes, target) - 1
            keyframe = keyframes[slot] if slot >= 0 else None
            just_sought = False
            seek_ahead = keyframe is not None and position is not None and keyframe > position
            if decoder is None or seek_ahead:
                if keyframe is not None and keyframe > first_pts:
                    decoder = _seek_to_keyframe(container, stream, keyframe, index.keyframe_seek_ts[keyframe])
                    just_sought = True
                else:
                    decoder = container.decode(stream)
            found = None
            for frame in decoder:
                if frame.pts is None or (just_sought and frame.pts > target):
                    raise _FastPathFailed  # cannot tell which frame this is
                just_sought = False
                position = frame.pts
                if frame.pts == target:
                    found = frame
                    break
                if frame.pts > target:
                    raise _FastPathFailed  # the decoder skipped the wanted frame
            if found is None:
                raise _FastPathFailed  # the stream ended before the wanted frame
            if size is None:
                size = (found.width, found.height)
            out.append(_to_tensor(found, size))
    return out


def _decode_in_order(
    path: Path, stream_index: int, wanted: list[int]
) -> tuple[list[torch.Tensor], int]:
    """Decode the whole stream; keep the frames whose decode ordinal is in ``wanted``.

    Returns the kept frames and the number of frames the decoder produced.
    """
    wanted_set = set(wanted)
    out: list[torch.Tensor] = []
    size: tuple[int, int] | None = None
    count = 0
    with _open(path) as container:
        stream = container.streams[stream_index]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if count in wanted_set:
                if size is None:
                    size = (frame.width, frame.height)
                out.append(_to_tensor(frame, size))
            count += 1
    return out, count


def decode_video(
    path: str | os.PathLike,
    fps: float = defaults.FPS,
    min_frames: int = defaults.MIN_FRAMES,
    max_frames: int = defaults.MAX_FRAMES,
) -> DecodedVideo:
    """Decode the frames ``sample_frame_indices`` picks from the first video stream of ``path``.

    Frames come back as RGB uint8 ``[T, C, H, W]`` at the stream's resolution (a stream that
    changes resolution mid-way is resized to its first sampled frame's size); the processors
    resize later. Display-rotation metadata (phone videos) is not applied: frames come out as
    stored. Only the sampled frames are converted to RGB, and keyframe seeking skips the
    GOPs that hold no sampled frame (see the module docstring).

    Raises:
        VideoDecodeError: the file is missing, not a regular file, empty, not a readable media
            container, has no video stream, has a video stream with no frames, has no usable
            frame rate, or fails while decoding. The message starts with ``path``.
        ValueError: ``fps``, ``min_frames`` or ``max_frames`` is invalid (a caller's bug, not
            bad media, so it is deliberately not a ``VideoDecodeError``).
    """
    # Validate the sampling arguments before touching the file.
    sample_frame_indices(1, 1.0, fps, min_frames, max_frames)
    path = Path(path)
    _check_media_file(path, VideoDecodeError)

    def pick(total: int, source_fps: float) -> list[int]:
        return sample_frame_indices(total, source_fps, fps, min_frames, max_frames)

    try:
        index = _index_stream(path)
        total = index.packet_count
        frame_indices = pick(total, index.source_fps)
        frames: list[torch.Tensor] | None = None
        if index.presentation_pts is not None:
            try:
                frames = _decode_by_seeking(path, index, frame_indices)
            except _FastPathFailed:
                frames = None
        if frames is None:
            frames, total, frame_indices = _decode_sequentially(path, index, pick)
    except VideoDecodeError:
        raise
    except (av.error.FFmpegError, OSError) as exc:
        raise _fail(path, f"decoding failed ({exc})") from exc

    source_fps = index.source_fps
    return DecodedVideo(
        frames=torch.stack(frames),
        fps=len(frame_indices) * source_fps / total,
        source_fps=source_fps,
        total_frames=total,
        frame_indices=frame_indices,
        duration=total / source_fps,
    )


def decode_uniform(path: str | os.PathLike, num_frames: int) -> DecodedVideo:
    """``num_frames`` frames spread uniformly over the whole video (all frames of a shorter one),
    as benchmarks sample them::

        n = min(num_frames, total_frames)
        index[i] = floor((2 * i + 1) * total_frames / (2 * n)),  i = 0 .. n - 1

    the middle frame of each of ``n`` equal segments. This is exactly
    ``decode_video(path, fps=1.0, min_frames=num_frames, max_frames=num_frames)``: with
    ``min_frames == max_frames`` the sampling rate never binds and ``sample_frame_indices``'s
    even-count adjustment cannot move the count (``n - 1 < min_frames``, ``n + 1 > max_frames``
    or ``> total_frames``), so its step 4 gives the indices above.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    return decode_video(path, fps=1.0, min_frames=num_frames, max_frames=num_frames)


def _decode_sequentially(
    path: Path, index: _StreamIndex, pick: Callable[[int, float], list[int]]
) -> tuple[list[torch.Tensor], int, list[int]]:
    """The fallback: frames numbered in decoder output order; a second pass if the count moved."""
    frame_indices = pick(index.packet_count, index.source_fps)
    frames, decoded = _decode_in_order(path, index.stream_index, frame_indices)
    if decoded == 0:
        raise _fail(path, "the decoder produced no frames")
    if decoded != index.packet_count:
        frame_indices = pick(decoded, index.source_fps)
        frames, decoded_again = _decode_in_order(path, index.stream_index, frame_indices)
        if decoded_again != decoded or len(frames) != len(frame_indices):
            raise _fail(path, "decoding is not repeatable (frame count changed between passes)")
    return frames, decoded, frame_indices


# ----------------------------------------------------------------------------- images


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as an RGB uint8 tensor ``[C, H, W]`` with PIL.

    EXIF orientation is applied (so phone photos come out upright) and every mode (palette,
    greyscale, RGBA, CMYK, 16-bit) is converted to 8-bit RGB; alpha is dropped.

    Raises:
        ImageDecodeError: the file is missing, not a regular file, empty, or not a readable
            (or a truncated) image. The message starts with ``path``.
    """
    path = Path(path)
    _check_media_file(path, ImageDecodeError)
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"{path}: cannot decode as an image ({exc})") from exc
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
