"""Tests for gap_fillers.py: the classic gap fillers do what their textbooks say."""
import numpy as np
import pytest

from gap_fillers import crossfade_fill, lpc_fill, repetition_fill

RATE = 16000


def snr_db(truth, estimate):
    return 10 * np.log10(np.sum(truth ** 2) / np.sum((truth - estimate) ** 2))


def test_linear_prediction_extends_a_sum_of_sinusoids_across_a_gap_almost_exactly():
    """Two sinusoids obey a 4-pole recursion exactly, so the all-pole model carries them over 2048
    samples (128 ms) from both sides; the cross-fade of the two sides does not (phase cancels)."""
    t = np.arange(3 * 2048) / RATE
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 1234 * t + 1)).astype(np.float32)
    before, truth, after = x[:2048], x[2048:4096], x[4096:]
    assert snr_db(truth, lpc_fill(before, after, 2048)) > 30
    assert snr_db(truth, crossfade_fill(before, after)) < 3


def test_linear_prediction_of_silence_is_silence():
    assert not lpc_fill(np.zeros(512, np.float32), np.zeros(512, np.float32), 256).any()


def test_repetition_fill_copies_a_repeated_pattern_exactly():
    """A file that repeats a 10-frame noise pattern: the segment whose surroundings match the gap's
    is a copy of what the gap held, sample for sample."""
    hop = 160
    pattern = np.random.default_rng(0).standard_normal(10 * hop).astype(np.float32)
    audio = np.tile(pattern, 30)  # 300 frames
    features = audio.reshape(-1, hop)  # (300, hop): each frame's samples are its feature
    for gap_start, gap_frames in [(150, 5), (43, 17), (200, 40)]:
        fill = repetition_fill(audio, features, hop, gap_start, gap_frames)
        assert np.array_equal(fill, audio[gap_start * hop:(gap_start + gap_frames) * hop])


def test_repetition_fill_never_copies_the_gap_or_its_surroundings_into_itself():
    """Only the gap's own neighbourhood matches here (the rest is silence); the fill must come from
    elsewhere, since the gap's audio is unknown."""
    hop = 4
    audio = np.zeros(100 * hop, np.float32)
    audio[40 * hop:60 * hop] = np.random.default_rng(1).standard_normal(20 * hop)
    features = audio.reshape(-1, hop) + 1e-3
    fill = repetition_fill(audio, features, hop, 45, 10, context_frames=5)
    assert not np.array_equal(fill, audio[45 * hop:55 * hop])
    with pytest.raises(ValueError, match="no audio on one side"):
        repetition_fill(audio, features, hop, 0, 10)
