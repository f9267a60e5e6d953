"""tasks.py: every stem separated in one batched pass gives the tokens of one stem at a time; soft
separation and the unigram fill of the inpainting baseline."""
import dataclasses

import pytest
import torch

from bert import AudioBERT, BERTConfig
from decoding import maskgit_fill
from masking import CONTEXT, TARGET, Vocabulary
from tasks import inpaint_tokens, separate_all, separate_tokens, separation_inputs, single_source_inputs, source_segment

K, D = 16, 8
VOCAB = Vocabulary(K, ("bass", "drums", "guitar", "piano"))


def tiny_bert(seed=0, max_positions=33, codebooks=1):
    torch.manual_seed(seed)
    config = BERTConfig(num_codes=K, code_dim=D, num_special=VOCAB.size - K, max_positions=max_positions,
                        num_layers=2, num_heads=4, width=32, codebooks=codebooks)
    model = AudioBERT(config, torch.randn(K, D) if codebooks == 1 else torch.randn(codebooks, K, D)).eval()
    with torch.no_grad():  # weights larger than the initial ones: the separators matter, the stems differ
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.5)
    return model


@pytest.mark.parametrize("steps, batch_size", [(1, 16), (1, 3), (3, 5)])
def test_all_stems_in_one_pass_equal_one_stem_at_a_time(steps, batch_size):
    """Windows of 16 frames over 70 frames: 8 windows x 4 stems in batches that mix stems and windows."""
    model = tiny_bert()
    generator = torch.Generator().manual_seed(1)
    mixture = torch.randint(0, K, (70,), generator=generator)
    features = torch.nn.functional.normalize(torch.randn(70, D, generator=generator), dim=-1)
    calls = []
    together = separate_all(model, VOCAB, mixture, features, VOCAB.stems, steps=steps, batch_size=batch_size,
                            progress=lambda done, total: calls.append((done, total)))
    assert together.shape == (4, 70) and (together < K).all()
    for j, stem in enumerate(VOCAB.stems):
        alone = separate_tokens(model, VOCAB, mixture, features, stem, steps=steps, batch_size=4)
        assert torch.equal(together[j], alone), stem
    assert calls[-1] == (8, 8) and all(a <= b for (a, _), (b, _) in zip(calls, calls[1:]))
    assert len({tuple(row.tolist()) for row in together}) > 1  # the separator makes the stems differ


def test_separation_inputs_put_each_rows_separator_after_its_mixture():
    mixture = torch.randint(0, K, (3, 5))
    features = torch.randn(3, 5, D)
    separators = torch.tensor([VOCAB.stem_separator(s) for s in ("piano", "bass", "drums")])
    inputs = separation_inputs(mixture, features, separators, VOCAB)
    assert torch.equal(inputs["tokens"][:, 5], separators)
    assert torch.equal(inputs["tokens"][:, :5], mixture) and (inputs["tokens"][:, 6:] == VOCAB.mask).all()
    one = separation_inputs(mixture, features, VOCAB.stem_separator("guitar"), VOCAB)
    assert (one["tokens"][:, 5] == VOCAB.stem_separator("guitar")).all()


def test_soft_separation_keeps_the_tokens_and_averages_code_vectors():
    """With code vectors given, the same tokens come back, and each frame's soft vector is a convex
    combination of code vectors: it lies between the smallest and largest coordinate of the codebook."""
    model = tiny_bert()
    generator = torch.Generator().manual_seed(2)
    mixture = torch.randint(0, K, (40,), generator=generator)
    features = torch.randn(40, D, generator=generator)
    codes = torch.randn(K, D, generator=generator)
    plain = separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=2)
    tokens, soft = separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=2, code_vectors=codes)
    assert torch.equal(tokens, plain) and soft.shape == (4, 40, D)
    assert (soft >= codes.min(0).values - 1e-5).all() and (soft <= codes.max(0).values + 1e-5).all()
    assert not torch.allclose(soft, codes[tokens]), "a hesitating BERT's expectation is not its argmax code"


@pytest.mark.parametrize("codebooks", [1, 3])
def test_mixture_prior_moves_stem_frames_towards_the_mixtures_codes(codebooks):
    """A weight of 0 decodes as without the prior; a large one copies the mixture into every stem (every
    level); one in between keeps the mixture's code on more frames than none does, never on fewer."""
    model = tiny_bert(codebooks=codebooks)
    generator = torch.Generator().manual_seed(3)
    shape = (50,) if codebooks == 1 else (50, codebooks)
    mixture = torch.randint(0, K, shape, generator=generator)
    features = torch.randn(50, D, generator=generator)
    plain = separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=2)
    assert torch.equal(separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=2, mixture_prior=0.0), plain)
    copied = separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=2, mixture_prior=1e4)
    assert torch.equal(copied, mixture.expand_as(copied))
    some = separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=1, mixture_prior=1.0)
    one_shot = separate_all(model, VOCAB, mixture, features, list(VOCAB.stems), steps=1)
    kept = (some == mixture).float().mean()
    assert (one_shot == mixture).float().mean() <= kept < 1.0


@pytest.mark.parametrize("codebooks", [1, 2])
def test_unigram_fill_draws_masked_codes_from_the_counts_only(codebooks):
    import numpy as np
    from evaluation_inpainting import unigram_fill
    shape = (3, 50) if codebooks == 1 else (3, 50, codebooks)
    tokens = torch.randint(0, K, shape, generator=torch.Generator().manual_seed(0))
    masked = torch.zeros(shape, dtype=torch.bool)
    masked[:, 10:40] = True
    counts = np.zeros((codebooks, K))
    counts[:, 3], counts[:, 7] = 1, 3  # codes 3 and 7 only, 7 three times as often
    filled = unigram_fill(tokens, masked, counts if codebooks > 1 else counts[0], torch.Generator().manual_seed(1))
    assert torch.equal(filled[~masked], tokens[~masked])
    drawn = filled[masked]
    assert set(drawn.unique().tolist()) <= {3, 7} and 0.6 < (drawn == 7).float().mean() < 0.9


@pytest.mark.parametrize("mixture_segment", [False, True])
def test_inpainting_reads_the_audio_as_a_mixture_where_the_bert_tells_sources_apart(mixture_segment):
    """With `mixture_segment` the window is in the mixture's segment (CONTEXT), else in TARGET as before."""
    model = tiny_bert(max_positions=24)
    model.config = dataclasses.replace(model.config, mixture_segment=mixture_segment)
    tokens, features = torch.randint(0, K, (40,)), torch.randn(40, D)
    filled = inpaint_tokens(model, VOCAB, tokens, features, gap_start=16, gap_length=6, steps=2)
    window = tokens[7:31].clone()  # the 24 frames centred on the gap: 16 + 6 // 2 - 12 = 7
    window[9:15] = VOCAB.mask
    by_segment = {}
    for segment in (CONTEXT, TARGET):
        inputs = single_source_inputs(window[None], features[None, 7:31], window[None] == VOCAB.mask, segment)
        by_segment[segment] = maskgit_fill(model, inputs, VOCAB.mask, 2)[0]
    assert not torch.equal(by_segment[CONTEXT], by_segment[TARGET]), "the segment must matter to this model"
    assert torch.equal(filled[7:31], by_segment[source_segment(model.config, "mix")])
    assert source_segment(model.config, "mix") == (CONTEXT if mixture_segment else TARGET)
    assert source_segment(model.config, "bass") == TARGET


def test_gap_nll_is_binned_by_distance_from_the_nearest_known_frame():
    """A gap of 12 frames in 30: distances 1..6 from either edge; BERT certain (NLL 0) of the true
    code at distance 1 only, uniform elsewhere (NLL ln K); the unigram's NLL is ln 2 for two codes."""
    import math
    from evaluation_inpainting import code_nll
    from masking import middle_mask
    tokens = torch.randint(0, 2, (2, 30), generator=torch.Generator().manual_seed(0))
    _, labels = middle_mask(tokens, 12, VOCAB)  # frames 9..20
    logits = torch.zeros(2, 30, K)
    for frame in (9, 20):  # next to the context
        logits[torch.arange(2), frame, tokens[:, frame]] = 1e4
    counts = torch.zeros(K)
    counts[:2] = 1e6  # two equally common codes (add-one smoothing is negligible)
    per_window, by_distance = code_nll(logits, tokens, labels, VOCAB, counts.numpy())
    assert torch.allclose(per_window[:, 0], torch.full((2,), 10 / 12 * math.log(K)), atol=1e-4)
    assert torch.allclose(per_window[:, 1], torch.full((2,), math.log(2)), atol=1e-4)
    sums, counts_by_bin = zip(*by_distance)
    assert counts_by_bin == (4, 12, 8, 0, 0)  # distance 1: 2 per row; 2-4: 6 per row; 5-6: 4 per row
    assert sums[0] == pytest.approx(0, abs=1e-4) and sums[1] == pytest.approx(12 * math.log(K), rel=1e-5)
