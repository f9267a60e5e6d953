"""inputs.py: segments cover a file exactly once, their margins hold what a whole pass reads."""
import numpy as np
import soundfile as sf
from hypothesis import given, settings, strategies as st

from audio import read_audio
from inputs import audio_segments, model_length, segment_count, spans


@given(total=st.integers(1, 5000), size=st.integers(1, 800), margin=st.integers(0, 300))
def test_spans_keep_every_sample_once_and_read_the_margins(total, size, margin):
    kept = []
    for a, b, start, length in spans(total, size, margin):
        assert 0 <= a <= start and start + length <= b <= total
        assert start - a == min(start, margin) and b - (start + length) == min(total - start - length, margin)
        kept.extend(range(start, start + length))
    assert kept == list(range(total))
    assert segment_count(total, size) == len(list(spans(total, size, margin)))


@settings(max_examples=10, deadline=None)
@given(file_rate=st.sampled_from([8000, 16000, 22050, 44100, 48000]), seconds=st.floats(0.01, 0.3))
def test_audio_segments_are_slices_of_the_whole_file_resampled(tmp_path_factory, file_rate, seconds):
    path = tmp_path_factory.mktemp("streaming") / "tone.wav"
    t = np.arange(int(0.7 * file_rate)) / file_rate
    sf.write(path, np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 330 * t)], axis=1) * 0.5, file_rate,
             subtype="FLOAT")
    whole = read_audio(path, 16000)
    assert model_length(path, 16000) == len(whole)
    glued = []
    for segment in audio_segments(path, 16000, seconds, margin=100, unit=16):
        assert segment.start % 16 == 0 and segment.offset % 16 == 0  # token-aligned
        np.testing.assert_allclose(segment.audio, whole[segment.start - segment.offset:][:len(segment.audio)],
                                   atol=1e-5)
        glued.append(segment.kept)
    np.testing.assert_allclose(np.concatenate(glued), whole, atol=1e-5)
