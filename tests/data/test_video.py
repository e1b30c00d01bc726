"""Frame sampling rule, PyAV decoding (seek path and sequential fallback), decode errors, images."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from PIL import Image
from transformers.video_utils import VideoMetadata

from videoktr.data import (
    DecodedVideo,
    ImageDecodeError,
    VideoDecodeError,
    decode_video,
    load_image,
    sample_frame_indices,
)
from videoktr.data import video as video_module

from .media import (
    encodable_codecs,
    level_to_index,
    write_empty_video,
    write_random_bytes,
    write_video,
)

# ----------------------------------------------------------------------------- sampling rule


@pytest.mark.parametrize(
    ("total", "source_fps", "kwargs", "expected"),
    [
        # exact 2 fps: 4 s at 24 fps -> 8 frames, 12 source frames apart, segment middles
        (96, 24.0, {}, [6, 18, 30, 42, 54, 66, 78, 90]),
        # 5 s at 24 fps -> 10 frames
        (120, 24.0, {}, [6, 18, 30, 42, 54, 66, 78, 90, 102, 114]),
        # 8 s at 30 fps -> 16 frames = max_frames, still exactly 2 fps
        (240, 30.0, {}, [7 + 15 * i for i in range(16)]),
        # 4.5 s -> 9 frames, made even by rounding down
        (108, 24.0, {}, [6, 20, 33, 47, 60, 74, 87, 101]),
        # 1 s clip: 2 frames at 2 fps, raised to min_frames
        (30, 30.0, {}, [3, 11, 18, 26]),
        # fewer frames than min_frames: keep them all
        (3, 30.0, {}, [0, 1, 2]),
        (1, 30.0, {}, [0]),
        (5, 30.0, {}, [0, 1, 3, 4]),
        # long clip: 44 frames at 2 fps, capped at max_frames
        (491, 22.29, {}, [(2 * i + 1) * 491 // 32 for i in range(16)]),
        # odd max_frames: rounded down to even
        (491, 22.29, {"max_frames": 15}, [(2 * i + 1) * 491 // 28 for i in range(14)]),
        # odd min_frames binding: rounded up to even
        (30, 30.0, {"min_frames": 5}, [2, 7, 12, 17, 22, 27]),
        # min_frames == max_frames odd: nothing even fits, the odd count stays
        (100, 25.0, {"min_frames": 5, "max_frames": 5}, [10, 30, 50, 70, 90]),
        # the wanted count reaches total_frames: every frame
        (4, 1.0, {"fps": 10.0}, [0, 1, 2, 3]),
        # other rates
        (300, 30.0, {"fps": 1.0}, [15 + 30 * i for i in range(10)]),
    ],
)
def test_sample_frame_indices_hand_cases(total, source_fps, kwargs, expected):
    assert sample_frame_indices(total, source_fps, **kwargs) == expected


def test_sample_frame_indices_counts_exact_multiples_despite_float_rates():
    # 2229/100 fps as a float: 2229 frames are exactly 100 s, i.e. 200 frames at 2 fps
    assert len(sample_frame_indices(2229, 22.29, fps=2.0, max_frames=1000)) == 200
    # NTSC 30000/1001 fps: 1001 frames are exactly 33.3667 s, 66 frames at 2 fps
    assert len(sample_frame_indices(1001, 30000 / 1001, fps=2.0, max_frames=1000)) == 66


def test_sample_frame_indices_invariants_over_many_clips():
    for total in range(1, 400, 7):
        for source_fps in (10.0, 22.29, 24.0, 29.97, 60.0):
            for fps, min_frames, max_frames in ((2.0, 4, 16), (1.0, 2, 8), (4.0, 3, 7)):
                indices = sample_frame_indices(total, source_fps, fps, min_frames, max_frames)
                n = len(indices)
                assert indices == sorted(set(indices)), "strictly increasing"
                assert 0 <= indices[0] and indices[-1] < total
                assert n <= min(max_frames, total)
                assert n >= min(min_frames, total)
                if n % 2:  # odd only when no even count fits the bounds
                    assert n - 1 < min_frames and n + 1 > min(max_frames, total)
                wanted = math.floor(total * fps / source_fps + 1e-6)
                if min_frames <= wanted <= min(max_frames, total):
                    # the wanted count, or its even neighbour (below unless that is < min_frames)
                    expected = wanted if wanted % 2 == 0 else wanted - 1
                    if expected < min_frames:
                        expected = wanted + 1 if wanted + 1 <= min(max_frames, total) else wanted
                    assert n == expected
                assert (
                    sample_frame_indices(total, source_fps, fps, min_frames, max_frames) == indices
                )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 24.0), "total_frames"),
        ((10, 0.0), "source_fps"),
        ((10, float("nan")), "source_fps"),
        ((10, 24.0, -1.0), "fps"),
        ((10, 24.0, 2.0, 0), "min_frames"),
        ((10, 24.0, 2.0, 8, 4), "max_frames"),
        ((True, 24.0), "total_frames"),
    ],
)
def test_sample_frame_indices_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        sample_frame_indices(*args)


# ----------------------------------------------------------------------------- real clip


def _no_fallback(*args, **kwargs):
    raise AssertionError("fell back to sequential decoding")


def test_decode_real_clip(real_clip):
    video = decode_video(real_clip.path, fps=2.0, min_frames=4, max_frames=4)
    assert isinstance(video, DecodedVideo)
    assert video.frames.dtype == torch.uint8
    assert tuple(video.frames.shape) == (4, 3, real_clip.height, real_clip.width)
    assert video.total_frames == real_clip.total_frames
    assert video.source_fps == pytest.approx(real_clip.source_fps, rel=1e-3)
    assert video.duration == pytest.approx(22.0, abs=0.1)
    assert video.frame_indices == sample_frame_indices(
        real_clip.total_frames, video.source_fps, 2.0, 4, 4
    )
    assert all(a < b for a, b in zip(video.frame_indices, video.frame_indices[1:]))
    assert video.fps == pytest.approx(4 / video.duration)
    assert video.timestamps == pytest.approx([i / video.source_fps for i in video.frame_indices])
    if real_clip.is_real:
        assert video.frames.float().std() > 5, "real content, not a blank frame"


def test_real_clip_seek_path_matches_sequential_decoding(real_clip, monkeypatch):
    # The pts-indexed seeking path must succeed on a real H.264 file with B-frames (no fallback)
    # and return exactly the frames a plain sequential decode numbers the same way.
    monkeypatch.setattr(video_module, "_decode_sequentially", _no_fallback)
    video = decode_video(real_clip.path, fps=2.0, min_frames=4, max_frames=6)
    frames, count = video_module._decode_in_order(real_clip.path, 0, video.frame_indices)
    assert count == real_clip.total_frames
    assert len(frames) == video.num_frames
    for decoded, expected in zip(video.frames, frames):
        assert torch.equal(decoded, expected)


# ----------------------------------------------------------------------------- generated clips


@pytest.fixture(scope="module", params=encodable_codecs())
def numbered_clip(request, tmp_path_factory):
    """150 frames at 24 fps, keyframe every 7 frames, B-frames: frame i has grey level i.

    Once per codec this PyAV build can encode (see ``write_video`` for their GOP structures).
    """
    path = tmp_path_factory.mktemp("numbered") / f"numbered_{request.param}.mp4"
    return write_video(path, 150, fps=24, gop_size=7, codec=request.param)


def _decoded_source_indices(video: DecodedVideo) -> list[int]:
    return [level_to_index(frame.float().mean().item()) for frame in video.frames]


@pytest.mark.parametrize(("fps", "max_frames"), [(1.0, 4), (2.0, 16), (5.0, 32), (24.0, 150)])
def test_seek_path_returns_the_indexed_frames(numbered_clip, monkeypatch, fps, max_frames):
    monkeypatch.setattr(video_module, "_decode_sequentially", _no_fallback)
    video = decode_video(numbered_clip, fps=fps, max_frames=max_frames)
    assert video.total_frames == 150 and video.source_fps == 24.0
    assert video.frame_indices == sample_frame_indices(150, 24.0, fps, 4, max_frames)
    assert _decoded_source_indices(video) == [i % 56 for i in video.frame_indices]


def test_every_seek_starts_decoding_at_the_wanted_keyframe(numbered_clip, monkeypatch):
    # Not a GOP early: seeking a B-frame stream by a keyframe's dts lands on the keyframe
    # before it in this FFmpeg's MP4 demuxer, which doubled the frames decoded.
    monkeypatch.setattr(video_module, "_decode_sequentially", _no_fallback)
    seeks = []
    real_seek = video_module._seek_to_keyframe

    def recording(container, stream, keyframe, keyframe_dts):
        decoder = real_seek(container, stream, keyframe, keyframe_dts)
        first = next(decoder)
        seeks.append((keyframe, first.pts))
        return itertools.chain([first], decoder)

    monkeypatch.setattr(video_module, "_seek_to_keyframe", recording)
    video = decode_video(numbered_clip, fps=1.0, max_frames=6)  # 6 frames 25 apart, GOPs of 7
    assert len(seeks) >= 4 and all(first == keyframe for keyframe, first in seeks)
    assert _decoded_source_indices(video) == [i % 56 for i in video.frame_indices]


def test_sequential_fallback_returns_the_same_frames(numbered_clip, monkeypatch):
    def seeking_fails(*args, **kwargs):
        raise video_module._FastPathFailed

    expected = decode_video(numbered_clip, fps=3.0, max_frames=16)
    monkeypatch.setattr(video_module, "_decode_by_seeking", seeking_fails)
    fallback = decode_video(numbered_clip, fps=3.0, max_frames=16)
    assert fallback.frame_indices == expected.frame_indices
    assert fallback.total_frames == expected.total_frames
    assert torch.equal(fallback.frames, expected.frames)


def test_exact_two_fps_clip_metadata(tmp_path):
    video = decode_video(write_video(tmp_path / "four_seconds.mp4", 96, fps=24), fps=2.0)
    assert video.frame_indices == [6, 18, 30, 42, 54, 66, 78, 90]
    assert video.fps == 2.0 and video.duration == 4.0
    assert video.timestamps == [0.25 + 0.5 * i for i in range(8)]
    metadata = video.metadata()
    assert metadata == {
        "fps": 24.0,
        "total_num_frames": 96,
        "frames_indices": [6, 18, 30, 42, 54, 66, 78, 90],
        "duration": 4.0,
    }
    # transformers' own reading of it: the effective rate the Qwen2.5-VL processor uses
    assert VideoMetadata(**metadata).sampled_fps == 2.0
    # a fresh list each call: the Qwen3-VL processor extends odd-length index lists in place
    metadata["frames_indices"].append(99)
    assert video.metadata()["frames_indices"] == video.frame_indices


# ----------------------------------------------------------------------------- errors


def _assert_decode_error_names(path, match=None):
    with pytest.raises(VideoDecodeError) as caught:
        decode_video(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)
    if match:
        assert match in str(caught.value)


def test_missing_file_raises(tmp_path):
    _assert_decode_error_names(tmp_path / "nowhere.mp4", "no such file")


def test_empty_file_raises(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _assert_decode_error_names(path, "empty")


def test_random_bytes_raise(tmp_path):
    _assert_decode_error_names(write_random_bytes(tmp_path / "noise.mp4"))


def test_truncated_container_raises(tmp_path, real_clip):
    path = tmp_path / "truncated.mp4"
    path.write_bytes(real_clip.path.read_bytes()[:2000])
    _assert_decode_error_names(path)


def test_video_stream_without_frames_raises(tmp_path):
    _assert_decode_error_names(write_empty_video(tmp_path / "no_frames.avi"), "no frames")


def test_directory_raises(tmp_path):
    _assert_decode_error_names(tmp_path, "not a regular file")


def test_bad_sampling_arguments_are_not_media_errors(real_clip):
    with pytest.raises(ValueError, match="max_frames") as caught:
        decode_video(real_clip.path, min_frames=8, max_frames=4)
    assert not isinstance(caught.value, VideoDecodeError)


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P"])
def test_load_image_returns_rgb_chw_uint8(tmp_path, mode):
    path = tmp_path / f"picture_{mode}.png"
    Image.new(mode, (40, 30)).save(path)
    image = load_image(path)
    assert image.dtype == torch.uint8 and tuple(image.shape) == (3, 30, 40)


def test_load_image_keeps_pixel_values(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (5, 4), (200, 10, 30)).save(path)
    image = load_image(path)
    assert image[:, 0, 0].tolist() == [200, 10, 30]


@pytest.mark.parametrize("kind", ["missing", "empty", "noise", "truncated"])
def test_bad_images_raise_naming_the_path(tmp_path, kind):
    path = tmp_path / "picture.jpg"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "noise":
        write_random_bytes(path)
    elif kind == "truncated":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(path, quality=95)
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageDecodeError) as caught:
        load_image(path)
    assert str(path) in str(caught.value)
