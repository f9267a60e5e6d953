"""tasks.py: every stem separated in one batched pass gives the tokens of one stem at a time;
inpainting's window; and the unigram fill of the inpainting baseline (evaluation_bert.py)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bert import AudioBERT, BERTConfig
from decoding import maskgit_fill
from evaluation_bert import unigram_fill
from masking import TARGET, Vocabulary
from tasks import inpaint_tokens, separate_all, separation_inputs, single_source_inputs

K, D = 16, 8
VOCAB = Vocabulary(K, ("bass", "drums", "guitar", "piano"))


def tiny_bert(seed=0, max_positions=33):
    torch.manual_seed(seed)
    config = BERTConfig(num_codes=K, code_dim=D, num_special=VOCAB.size - K, max_positions=max_positions,
                        num_layers=2, num_heads=4, width=32)
    model = AudioBERT(config, torch.randn(K, D)).eval()
    with torch.no_grad():  # weights larger than the initial ones: the separators matter, the stems differ
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.5)
    return model


@pytest.mark.parametrize("steps, batch_size", [(1, 16), (1, 3), (3, 5)])
def test_all_stems_in_one_pass_equal_one_stem_at_a_time(steps, batch_size):
    """Windows of 16 frames over 70 frames: 5 windows x 4 stems in batches that mix stems and windows."""
    model = tiny_bert()
    generator = torch.Generator().manual_seed(1)
    mixture = torch.randint(0, K, (70,), generator=generator)
    features = F.normalize(torch.randn(70, D, generator=generator), dim=-1)
    calls = []
    both = separate_all(model, VOCAB, mixture, features, VOCAB.stems, steps=steps, batch_size=batch_size,
                        progress=lambda done, total: calls.append((done, total)))
    together = both["tokens"]
    assert together.shape == (4, 70) and (together < K).all() and both["latent"].shape == (4, 70, D)
    for j, stem in enumerate(VOCAB.stems):
        alone = separate_all(model, VOCAB, mixture, features, [stem], steps=steps, batch_size=4)
        assert alone["tokens"].shape == (1, 70) and torch.equal(together[j], alone["tokens"][0]), stem
        assert torch.allclose(both["latent"][j], alone["latent"][0], atol=1e-5), stem
    assert torch.allclose(both["latent"].norm(dim=-1), torch.ones(4, 70), atol=1e-5)  # z of Eq. 11 at every frame
    assert calls[-1] == (5, 5) and all(a <= b for (a, _), (b, _) in zip(calls, calls[1:]))
    assert len({tuple(row.flatten().tolist()) for row in together}) > 1  # the separator makes the stems differ


def test_latents_alone_take_one_pass_and_equal_the_decoded_runs():
    """tokens=False (what `infer.py separate` runs to decode latents) gives the latents of the full
    one-step run, one BERT pass per batch, without computing the logits."""
    model = tiny_bert()
    generator = torch.Generator().manual_seed(3)
    mixture = torch.randint(0, K, (50,), generator=generator)
    features = F.normalize(torch.randn(50, D, generator=generator), dim=-1)
    full = separate_all(model, VOCAB, mixture, features, VOCAB.stems, batch_size=8)
    passes, heads = [], []
    hooks = [model.norm.register_forward_hook(lambda *_: passes.append(1)),  # one call per BERT pass
             model.head.register_forward_hook(lambda *_: heads.append(1))]  # the cosine head: the logits
    alone = separate_all(model, VOCAB, mixture, features, VOCAB.stems, batch_size=8, tokens=False)
    for hook in hooks:
        hook.remove()
    assert set(alone) == {"latent"} and torch.allclose(alone["latent"], full["latent"], atol=1e-5)
    windows = len(range(0, 50 - 16, 16)) + 1  # windows of M = 16 frames tiling 50
    assert len(passes) == math.ceil(windows * 4 / 8) and not heads, "one pass per batch of sequences, no logits"


def test_separation_inputs_put_each_rows_separator_after_its_mixture():
    mixture = torch.randint(0, K, (3, 5))
    features = torch.randn(3, 5, D)
    separators = torch.tensor([VOCAB.stem_separator(s) for s in ("piano", "bass", "drums")])
    inputs = separation_inputs(mixture, features, separators, VOCAB)
    assert inputs["tokens"].shape == (3, 11)
    assert torch.equal(inputs["tokens"][:, 5], separators)
    assert torch.equal(inputs["tokens"][:, :5], mixture) and (inputs["tokens"][:, 6:] == VOCAB.mask).all()
    assert torch.equal(inputs["features"], torch.cat([features, torch.zeros(3, 1, D), features], dim=1))
    one = separation_inputs(mixture, features, VOCAB.stem_separator("guitar"), VOCAB)
    assert (one["tokens"][:, 5] == VOCAB.stem_separator("guitar")).all()


def test_unigram_fill_draws_masked_codes_from_the_counts_only():
    tokens = torch.randint(0, K, (3, 50), generator=torch.Generator().manual_seed(0))
    masked = torch.zeros(tokens.shape, dtype=torch.bool)
    masked[:, 10:40] = True
    counts = np.zeros(K)
    counts[3], counts[7] = 1, 3  # codes 3 and 7 only, 7 three times as often
    filled = unigram_fill(tokens, masked, counts, torch.Generator().manual_seed(1))
    assert filled.shape == tokens.shape and torch.equal(filled[~masked], tokens[~masked])
    drawn = filled[masked]
    assert set(drawn.unique().tolist()) <= {3, 7} and 0.6 < (drawn == 7).float().mean() < 0.9


def test_inpainting_shows_bert_the_window_centred_on_the_gap_with_the_gaps_latents_hidden():
    """inpaint_tokens = maskgit_fill over the context centred on the gap (clipped to the file): the gap
    MASKed, its latents zeroed, every frame in segment TARGET; only the gap changes."""
    model = tiny_bert(max_positions=24)
    tokens, features = torch.randint(0, K, (40,)), torch.randn(40, D)
    filled = inpaint_tokens(model, VOCAB, tokens, features, gap_start=16, gap_length=6, steps=2)
    window = tokens[7:31].clone()  # the 24 frames centred on the gap: 16 + 6 // 2 - 12 = 7
    window[9:15] = VOCAB.mask
    hidden = (window == VOCAB.mask)[None]  # (1, 24)
    inputs = single_source_inputs(window[None], features[None, 7:31], hidden)
    assert (inputs["segments"] == TARGET).all() and (inputs["features"][0, 9:15] == 0).all()
    assert (inputs["features"][0, :9] != 0).all()
    assert torch.equal(filled[7:31], maskgit_fill(model, inputs, VOCAB.mask, 2)[0])
    assert torch.equal(filled[:16], tokens[:16]) and torch.equal(filled[22:], tokens[22:])
    shown_more = single_source_inputs(window[None], features[None, 7:31])  # the gap's own latents given away
    assert not torch.equal(filled[7:31], maskgit_fill(model, shown_more, VOCAB.mask, 2)[0]), "the latents must matter"
