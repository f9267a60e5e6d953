"""refine.py (Eq. 10): soft masks, mixture consistency, recovery of known sources, silence, segments."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from metrics import si_sdr
from audio import resample
from inputs import refine_channels
from refine import CONTEXT_SAMPLES, refine, soft_masks

RATE = 16000


def tone(frequency, seconds=1.0, amplitude=0.3):
    t = torch.arange(int(seconds * RATE)) / RATE
    return amplitude * torch.sin(2 * np.pi * frequency * t)


@settings(max_examples=40, deadline=None)
@given(sources=st.integers(1, 6), seed=st.integers(0, 10**6), silent=st.booleans(),
       power=st.sampled_from([0.5, 1.0, 2.0]))
def test_masks_lie_in_0_1_and_sum_to_1_in_every_bin(sources, seed, silent, power):
    generator = torch.Generator().manual_seed(seed)
    magnitudes = torch.rand(sources, 9, 7, generator=generator) * 10 ** (6 * torch.rand(1, generator=generator) - 3)
    magnitudes[:, :3] = 0.0 if silent else magnitudes[:, :3]  # bins where every source is silent
    magnitudes[0, 3:5] = 0.0  # one source silent where the others are not
    masks = soft_masks(magnitudes.pow(power))
    assert torch.isfinite(masks).all() and (masks >= 0).all() and (masks <= 1).all()
    assert torch.allclose(masks.sum(dim=0), torch.ones(9, 7), atol=1e-6)
    if silent:  # nothing to go by: shared evenly
        assert torch.allclose(masks[:, :3], torch.full_like(masks[:, :3], 1 / sources))


def test_refined_sources_sum_to_the_mixture():
    generator = torch.Generator().manual_seed(0)
    mixture = 0.3 * torch.randn(12345, generator=generator)
    stems = 0.2 * torch.randn(4, 12345, generator=generator)
    refined = refine(mixture, stems)
    assert refined.shape == (5, 12345) and torch.isfinite(refined).all()
    assert torch.allclose(refined.sum(dim=0), mixture, atol=1e-6)
    assert not torch.allclose(refined[:4], stems, atol=1e-2)  # the stems did change


def test_an_exact_estimate_among_non_overlapping_tones_is_recovered():
    """Bass 110 Hz, piano 1760 Hz and an instrument that is not a target (pad 440 Hz): the bass
    estimate is the true bass, the piano estimate is a poor one. The bass comes back nearly exact."""
    bass, piano, pad = tone(110), tone(1760, amplitude=0.2), tone(440, amplitude=0.25)
    poor_piano = 0.5 * piano + 0.02 * torch.randn(RATE, generator=torch.Generator().manual_seed(1))
    refined = refine(bass + piano + pad, torch.stack([bass, poor_piano]))
    middle = slice(2048, -2048)  # away from the file's edges
    assert si_sdr(bass[middle].numpy(), refined[0, middle].numpy()) > 30
    assert si_sdr(piano[middle].numpy(), refined[1, middle].numpy()) > si_sdr(piano[middle].numpy(), poor_piano[middle].numpy())
    mixture = (bass + piano + pad)[middle].numpy()
    assert si_sdr(pad[middle].numpy(), refined[2, middle].numpy()) > si_sdr(pad[middle].numpy(), mixture) + 5  # the pad


def test_silence_gives_silence_without_nan():
    zeros = torch.zeros(5000)
    refined = refine(zeros, torch.zeros(4, 5000))
    assert torch.equal(refined, torch.zeros(5, 5000))
    refined = refine(zeros, 0.1 * torch.randn(4, 5000))  # estimates where the mixture is silent
    assert torch.isfinite(refined).all() and refined.abs().max() < 1e-6
    mixture = tone(220)
    refined = refine(mixture, torch.zeros(4, RATE))  # nothing estimated: all of it is the residual
    assert refined[:4].abs().max() < 1e-4 and torch.allclose(refined[4], mixture, atol=1e-4)


def test_a_one_stem_mixture_goes_to_that_stem():
    """The mixture is a bass alone; the bass estimate is noisy, the other stems' estimates silent."""
    bass = tone(110) + tone(220, amplitude=0.1)
    noisy = bass + 0.05 * torch.randn(RATE, generator=torch.Generator().manual_seed(2))
    refined = refine(bass, torch.stack([noisy, torch.zeros(RATE), torch.zeros(RATE), torch.zeros(RATE)]))
    middle = slice(2048, -2048)
    assert si_sdr(bass[middle].numpy(), refined[0, middle].numpy()) > si_sdr(bass[middle].numpy(), noisy[middle].numpy()) + 5
    assert refined[1:4].abs().max() < 1e-4


def test_a_segment_with_its_context_gives_the_samples_of_the_whole():
    """infer.py refines long files in segments: with `CONTEXT_SAMPLES` on each side and the offset
    of the segment, the kept part equals the whole signal refined at once."""
    generator = torch.Generator().manual_seed(3)
    mixture = 0.3 * torch.randn(30000, generator=generator)
    stems = 0.2 * torch.randn(3, 30000, generator=generator)
    whole = refine(mixture, stems)
    margin = CONTEXT_SAMPLES
    for start, end in ((9001, 15000), (12345, 20000)):
        a, b = start - margin, end + margin
        segment = refine(mixture[a:b], stems[:, a:b], offset=a)
        assert torch.allclose(segment[:, margin:margin + end - start], whole[:, start:end], atol=1e-6)


# ---- refine_channels: the masks of the model's rate, applied to the user's file ----

def test_refine_channels_at_the_model_rate_is_refine():
    generator = torch.Generator().manual_seed(5)
    mixture, stems = 0.3 * torch.randn(9000, generator=generator), 0.2 * torch.randn(2, 9000, generator=generator)
    refined = refine_channels(mixture, stems, mixture[None], RATE, RATE)  # (J, 1, T)
    assert torch.allclose(refined[:, 0], refine(mixture, stems)[:2], atol=1e-6)


def test_refine_channels_shares_each_channel_of_a_44k_stereo_file():
    """A bass in the centre and a 3 kHz tone on the left only, at 44.1 kHz; the model-rate estimate says
    "bass": each channel's bass comes back (the tone stays out), and the stems plus what they leave out
    of each channel add up to that channel. Above 8 kHz the top model bin's mask is used."""
    t = torch.arange(2 * 44100) / 44100
    bass, tone, air = (a * torch.sin(2 * np.pi * f * t) for a, f in ((0.3, 110), (0.2, 3000), (0.05, 12000)))
    channels = torch.stack([bass + tone + air, bass])  # (2, T')
    model_rate = resample(channels.mean(0).numpy(), 44100, RATE)
    estimate = resample(bass.numpy(), 44100, RATE)
    refined = refine_channels(torch.from_numpy(model_rate), torch.from_numpy(estimate)[None], channels, RATE, 44100)
    assert refined.shape == (1, 2, 2 * 44100)
    assert si_sdr(bass.numpy(), refined[0, 0].numpy()) > 15 and si_sdr(bass.numpy(), refined[0, 1].numpy()) > 30
    assert (channels - refined[0]).abs().max() <= channels.abs().max()  # masks in [0, 1]: nothing is amplified


def test_refine_channels_in_segments_gives_the_whole():
    """As infer.py calls it: frames on the whole file's hops at both rates, so segments join without seams."""
    generator = torch.Generator().manual_seed(7)
    channels = 0.3 * torch.randn(2, 3 * 44100, generator=generator)
    mixture = torch.from_numpy(resample(channels.mean(0).numpy(), 44100, RATE))
    stems = 0.2 * torch.randn(2, len(mixture), generator=generator)
    whole = refine_channels(mixture, stems, channels, RATE, 44100)
    start, end, margin = 16000, 32000, 2 * CONTEXT_SAMPLES  # model samples; 44100 / 16000 = 441 / 160
    a, b = start - margin, end + margin
    first, last, context = start * 441 // 160, end * 441 // 160, 2 * 5644
    segment = refine_channels(mixture[a:b], stems[:, a:b], channels[:, first - context:last + context], RATE, 44100,
                              offset=a, channel_offset=first - context)
    assert torch.allclose(segment[..., context:context + last - first], whole[..., first:last], atol=1e-5)
