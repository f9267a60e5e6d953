"""bert.py, decoding.py and tasks.py with tiny models: padding, overfitting, decoding rules, windows;
frames of Q codes: Q = 1 as it was, Q heads, coarse-to-fine decoding, a Q mismatch refused."""
from dataclasses import asdict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from bert import AudioBERT, BERTConfig
from checkpoint import load_bert, save_checkpoint
from decoding import maskgit_fill
from files import UserError
from masking import IGNORE, Vocabulary, bert_mask, level_mask, separation_layout
from tasks import inpaint_tokens, separate_all, separate_tokens, single_source_inputs, window_starts

K, D = 16, 8
VOCAB = Vocabulary(K, ("bass", "drums"))


def tiny_bert(seed=0, max_positions=64, layers=2, width=32, codebooks=1, code_bias=False):
    torch.manual_seed(seed)
    codebook = torch.randn(K, D) if codebooks == 1 else torch.randn(codebooks, K, D)
    config = BERTConfig(num_codes=K, code_dim=D, num_special=VOCAB.size - K, max_positions=max_positions,
                        num_layers=layers, num_heads=4, width=width, codebooks=codebooks, code_bias=code_bias)
    return AudioBERT(config, codebook)


def test_head_is_the_scaled_cosine_to_the_codebook():
    """logits = scale * C u with C the normalised codebook (K, D) and u a unit vector per position."""
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (2, 10))
    logits, loss = model(**single_source_inputs(tokens))
    assert logits.shape == (2, 10, K) and loss is None
    scale = model.log_logit_scale.exp().item()
    assert abs(scale - 50.0) < 1e-4  # the sharp starting scale
    u = (logits / scale) @ torch.linalg.pinv(model.codebook).t()  # (2, 10, D) least-squares direction
    assert torch.allclose(u.norm(dim=-1), torch.ones(2, 10), atol=1e-3)
    assert torch.allclose(scale * u @ model.codebook.t(), logits, atol=1e-3)


def test_padding_does_not_change_outputs_at_real_positions():
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (1, 12))
    inputs = single_source_inputs(tokens)
    short, _ = model(**inputs)
    padded = {key: F.pad(value, (0, 5), value=VOCAB.pad if key == "tokens" else 0) for key, value in inputs.items()}
    padding = torch.zeros(1, 17, dtype=torch.bool)
    padding[:, 12:] = True
    long, _ = model(**padded, padding=padding)
    assert torch.allclose(short, long[:, :12], atol=1e-5)


def test_loss_is_cross_entropy_on_targeted_positions_only():
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (2, 10))
    targets = torch.full_like(tokens, IGNORE)
    targets[0, 3], targets[1, 7] = 5, 9
    logits, loss = model(**single_source_inputs(tokens), targets=targets)
    expected = (F.cross_entropy(logits[0, 3:4], torch.tensor([5])) + F.cross_entropy(logits[1, 7:8], torch.tensor([9]))) / 2
    assert torch.allclose(loss, expected, atol=1e-5)


def test_codebook_is_frozen_and_not_a_parameter():
    model = tiny_bert()
    assert "codebook" not in dict(model.named_parameters())
    assert "codebook" in model.state_dict()


def overfit(model, inputs, labels, steps):
    """Train `model` on one batch; its accuracy at the labelled positions afterwards."""
    batch = single_source_inputs(inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        _, loss = model(**batch, targets=labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    logits, _ = model(**batch)
    chosen = labels != IGNORE
    return (logits.argmax(-1)[chosen] == labels[chosen]).float().mean()


def test_tiny_bert_overfits_one_batch():
    """The standard sanity check: a fixed masked batch is learned to ~100% masked accuracy."""
    model = tiny_bert(seed=1, layers=1)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, K, (4, 32), generator=generator)
    inputs, labels = bert_mask(tokens, VOCAB, generator)
    labels = torch.where(inputs == VOCAB.mask, tokens, torch.full_like(tokens, IGNORE))  # the MASKed ones
    accuracy = overfit(model, inputs, labels, steps=200)
    assert accuracy > 0.95, accuracy


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), steps=st.integers(1, 16), masked_share=st.floats(0.0, 1.0),
       temperature=st.sampled_from([0.0, 1.0]), reveal_noise=st.sampled_from([0.0, 1.0, 1e6]))
def test_maskgit_never_changes_unmasked_tokens_and_fills_everything(seed, steps, masked_share, temperature, reveal_noise):
    model = tiny_bert(seed=seed % 3).eval()
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, K, (3, 20), generator=generator)
    masked = torch.rand(3, 20, generator=generator) < masked_share
    inputs = tokens.masked_fill(masked, VOCAB.mask)
    batch = single_source_inputs(inputs)
    filled = maskgit_fill(model, batch, VOCAB.mask, steps=steps, temperature=temperature, generator=generator,
                          reveal_noise=reveal_noise)
    assert torch.equal(filled[~masked], tokens[~masked])
    assert (filled < K).all(), "with N steps every MASK is filled"
    assert torch.equal(batch["tokens"], inputs), "the input batch is not edited"


def test_one_step_maskgit_is_the_argmax():
    model = tiny_bert().eval()
    inputs = torch.randint(0, K, (2, 20))
    inputs[:, 5:15] = VOCAB.mask
    batch = single_source_inputs(inputs)
    logits, _ = model(**batch)
    filled = maskgit_fill(model, batch, VOCAB.mask, steps=1)
    assert torch.equal(filled[:, 5:15], logits.argmax(-1)[:, 5:15])


@pytest.mark.parametrize("codebooks", [1, 3])
def test_soft_decoding_expects_the_distribution_that_chose_each_token(codebooks):
    """One-shot: a masked position's recorded distribution is that pass's softmax and its argmax
    the token chosen; a given token is one-hot; expected vectors of one-hot rows are the tokens'
    own decoder inputs (summed over levels)."""
    from vqvae import VQVAE, VQVAEConfig
    from tasks import expected_vectors
    model = tiny_bert(codebooks=codebooks).eval()
    shape = (2, 20) if codebooks == 1 else (2, 20, codebooks)
    inputs = torch.randint(0, K, shape, generator=torch.Generator().manual_seed(2))
    inputs[:, 5:15] = VOCAB.mask
    batch = single_source_inputs(inputs)
    filled, probs = maskgit_fill(model, batch, VOCAB.mask, steps=1, probabilities=True)
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[:-1]), atol=1e-5)
    assert torch.equal(probs.argmax(-1), filled)
    assert torch.equal(probs[:, :5].amax(-1), torch.ones_like(probs[:, :5].amax(-1))), "given tokens are one-hot"
    if codebooks == 1:
        logits, _ = model(**batch)
        assert torch.allclose(probs[:, 5:15], torch.softmax(logits[:, 5:15].float(), -1), atol=1e-6)
    torch.manual_seed(0)
    vqvae = VQVAE(VQVAEConfig(num_downsamples=2, num_codes=K, code_dim=D, base_channels=2, max_channels=8,
                              bottleneck_blocks=1, codebooks=codebooks))
    one_hot = F.one_hot(filled, K).float()
    expected = expected_vectors(one_hot, vqvae.quantizer.code_vectors().detach())
    assert torch.allclose(expected, vqvae.lookup(filled), atol=1e-5)
    assert torch.allclose(vqvae.decode_vectors(expected), vqvae.decode(filled), atol=1e-5)


def test_reveal_noise_turns_most_confident_first_into_a_random_order():
    """Two steps over 10 MASKs reveal 3 in the first (cosine schedule): without noise always the 3
    most confident; with overwhelming noise each of the 10 about equally often, over 300 draws."""
    model = Recorder(tiny_bert().eval())
    inputs = torch.randint(0, K, (1, 20), generator=torch.Generator().manual_seed(1))
    inputs[:, 5:15] = VOCAB.mask
    batch = single_source_inputs(inputs)
    logits, _ = model.model(**batch)
    most_confident = set((torch.softmax(logits[0, 5:15], -1).amax(-1).argsort(descending=True)[:3] + 5).tolist())
    for noise in (0.0, 1e6):
        counts = torch.zeros(20)
        for seed in range(300):
            model.calls.clear()
            maskgit_fill(model, batch, VOCAB.mask, steps=2, generator=torch.Generator().manual_seed(seed), reveal_noise=noise)
            counts += (model.calls[1][0] != VOCAB.mask).float() - (inputs[0] != VOCAB.mask).float()  # revealed at step 1
        assert counts.sum() == 300 * 3 and counts[:5].sum() == counts[15:].sum() == 0
        if noise == 0:
            assert set(torch.nonzero(counts == 300)[:, 0].tolist()) == most_confident
        else:  # 90 expected each, standard deviation 8
            assert counts[5:15].min() > 50 and counts[5:15].max() < 130


@given(total=st.integers(1, 2000), window=st.integers(1, 300))
def test_windows_cover_the_sequence(total, window):
    starts = window_starts(total, window)
    covered = torch.zeros(total, dtype=torch.bool)
    for a in starts:
        covered[a:a + window] = True
    assert covered.all() and starts[0] == 0 and max(starts) + min(window, total) == total


def test_separate_and_inpaint_keep_lengths_and_known_tokens():
    model = tiny_bert(max_positions=33).eval()
    S = 100
    mixture, features = torch.randint(0, K, (S,)), F.normalize(torch.randn(S, D), dim=-1)
    stem = separate_tokens(model, VOCAB, mixture, features, "drums", steps=2, batch_size=3)
    assert stem.shape == (S,) and (stem < K).all()
    # one window by hand: the middle frames of the first window come from its one-shot argmax
    M = 16
    tokens, segments, positions = separation_layout(mixture[None, :M], torch.full((1, M), VOCAB.mask),
                                                    VOCAB.stem_separator("drums"))
    feats = torch.cat([features[None, :M], torch.zeros(1, 1, D), features[None, :M]], dim=1)
    one_shot = separate_tokens(model, VOCAB, mixture, features, "drums", steps=1)
    logits, _ = model(tokens, segments, positions, feats)
    assert torch.equal(one_shot[:4], logits[0, M + 1:M + 5].argmax(-1))
    filled = inpaint_tokens(model, VOCAB, mixture, features, gap_start=40, gap_length=10, steps=3)
    assert torch.equal(filled[:40], mixture[:40]) and torch.equal(filled[50:], mixture[50:])


# ---- frames of Q codes ----

def test_one_codebook_bert_is_what_it_was():
    """Outputs of the single-codebook code before levels existed (commit 36e19e1), same seed and
    inputs: logits, loss, MaskGIT, separation and inpainting tokens; and the same weight names."""
    model = tiny_bert().eval()
    assert not any("finer_levels" in key for key in model.state_dict())
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, K, (2, 20), generator=g)
    features = F.normalize(torch.randn(2, 20, D, generator=g), dim=-1)
    inputs, labels = bert_mask(tokens, VOCAB, torch.Generator().manual_seed(4))
    batch = single_source_inputs(inputs, features, hidden=labels != IGNORE)
    logits, loss = model(**batch, targets=labels)
    assert logits.shape == (2, 20, K)
    assert abs(logits.sum().item() - 1480.9840087890625) < 1e-2 and abs(loss.item() - 27.58612823486328) < 1e-4
    assert maskgit_fill(model, batch, VOCAB.mask, steps=3).tolist() == [
        [10, 8, 9, 3, 4, 8, 0, 5, 13, 3, 10, 11, 9, 9, 10, 5, 7, 6, 0, 4],
        [12, 13, 7, 14, 8, 10, 1, 10, 6, 4, 2, 15, 12, 1, 3, 15, 5, 8, 14, 1]]
    mixture = torch.randint(0, K, (50,), generator=g)
    feats = F.normalize(torch.randn(50, D, generator=g), dim=-1)
    assert separate_tokens(model, VOCAB, mixture, feats, "bass", steps=2, batch_size=3).tolist() == [
        2, 10, 4, 6, 4, 14, 4, 1, 4, 2, 9, 4, 2, 15, 9, 15, 9, 2, 4, 14, 4, 9, 6, 4, 4, 9, 4, 4, 10, 4,
        2, 9, 2, 9, 15, 15, 2, 9, 4, 4, 4, 15, 2, 4, 4, 0, 9, 15, 4, 2]
    assert inpaint_tokens(model, VOCAB, mixture, feats, 20, 8, steps=3)[18:30].tolist() == [
        4, 10, 4, 9, 4, 4, 4, 4, 4, 9, 3, 13]


@pytest.mark.parametrize("code_bias", [False, True])
def test_frames_of_q_codes_get_q_heads_and_a_loss_over_levels(code_bias):
    model = tiny_bert(codebooks=3, code_bias=code_bias).eval()
    frames = torch.randint(0, K, (2, 10, 3))
    if code_bias:  # a bias per (level, code), added to that level's cosine logits only
        with torch.no_grad():
            model.code_bias.zero_()
            plain, _ = model(**single_source_inputs(frames))
            model.code_bias.normal_(0.0, 3.0)
    logits, _ = model(**single_source_inputs(frames))
    assert logits.shape == (2, 10, 3, K)
    if code_bias:
        assert torch.allclose(logits, plain + model.code_bias[None, None], atol=1e-4)
    for q, (head, scale, bias) in enumerate(model.heads()):  # each level scored against its own codebook
        assert torch.allclose(logits[:, :, q].softmax(-1).sum(-1), torch.ones(2, 10))
        assert abs(scale.exp().item() - 50.0) < 1e-4 and (bias is None) != code_bias
    targets = torch.full_like(frames, IGNORE)
    targets[0, 3, 0], targets[1, 7, 2] = 5, 9
    no_logits, loss = model(**single_source_inputs(frames), targets=targets)  # training scores the targets only
    expected = (F.cross_entropy(logits[0, 3, 0:1], torch.tensor([5])) + F.cross_entropy(logits[1, 7, 2:3], torch.tensor([9]))) / 2
    assert no_logits is None and torch.allclose(loss, expected, atol=1e-5)
    many = torch.where(torch.rand(frames.shape, generator=torch.Generator().manual_seed(5)) < 0.3, frames, IGNORE)
    full = F.cross_entropy(logits.reshape(-1, K), many.reshape(-1), ignore_index=IGNORE)  # all logits, then the targets
    assert torch.allclose(model(**single_source_inputs(frames), targets=many)[1], full, atol=1e-5)
    changed = frames.clone()
    changed[0, 4, 2] = (changed[0, 4, 2] + 1) % K  # a finer level is part of the frame's embedding
    assert not torch.allclose(model(**single_source_inputs(changed))[0][0], logits[0])
    masked = frames.clone()
    masked[0, 4, 2] = VOCAB.mask  # and a level's MASK has its own embedding
    assert not torch.allclose(model(**single_source_inputs(masked))[0][0], logits[0])
    padded = F.pad(frames, (0, 0, 0, 4), value=VOCAB.pad)
    padding = torch.arange(14).expand(2, 14) >= 10
    long, _ = model(**single_source_inputs(padded), padding=padding)
    assert torch.allclose(long[:, :10], logits, atol=1e-5)


def test_a_frames_finer_levels_embed_as_the_sum_of_their_projected_codes():
    """embed_finer_levels (one embedding_bag over per-level tables) is, level by level: the
    projected code vector of a code, the level's MASK embedding for MASK, nothing for PAD or SEP."""
    model = tiny_bert(codebooks=3)
    for level in model.finer_levels:
        nn.init.normal_(level.code_projection.bias)  # a bias must count once per code, never for PAD
    ids = torch.randint(0, VOCAB.size, (2, 12, 2))  # codes and every special token, at levels 2 and 3
    expected = torch.zeros(2, 12, model.config.width)
    for b, l, q in torch.cartesian_prod(torch.arange(2), torch.arange(12), torch.arange(2)).tolist():
        level, i = model.finer_levels[q], ids[b, l, q].item()
        if i < K:
            expected[b, l] += level.code_projection(model.codebook[q + 1][i])
        elif i == VOCAB.mask:
            expected[b, l] += level.mask_embedding
    assert torch.allclose(model.embed_finer_levels(ids), expected, atol=1e-6)


def test_tiny_bert_of_frames_learns_a_level_masked_batch():
    """Both levels predicted (rows 0 and 2 at level 1, rows 1 and 3 at level 2); a row masked
    everywhere would be told apart from another only by chance, so this seed has none."""
    model = tiny_bert(seed=1, layers=1, codebooks=2)
    generator = torch.Generator().manual_seed(2)
    frames = torch.randint(0, K, (4, 24, 2), generator=generator)
    inputs, labels = level_mask(frames, VOCAB, generator)
    assert (labels != IGNORE).sum(dim=1).tolist() == [[13, 0], [0, 23], [11, 0], [0, 5]]
    accuracy = overfit(model, inputs, labels, steps=150)
    assert accuracy > 0.9, accuracy


class Recorder(torch.nn.Module):
    """A model that remembers the tokens it was called with."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, tokens, **inputs):
        self.calls.append(tokens.clone())
        return self.model(tokens, **inputs)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), steps=st.integers(1, 6), fine_steps=st.integers(1, 3), masked_share=st.floats(0.0, 1.0))
def test_coarse_to_fine_decoding_keeps_given_tokens_and_fills_level_by_level(seed, steps, fine_steps, masked_share):
    model = Recorder(tiny_bert(seed=seed % 3, codebooks=3).eval())
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, K, (2, 16, 3), generator=generator)
    masked = torch.rand(2, 16, 3, generator=generator) < masked_share
    inputs = frames.masked_fill(masked, VOCAB.mask)
    batch = single_source_inputs(inputs)
    filled = maskgit_fill(model, batch, VOCAB.mask, steps=steps, fine_steps=fine_steps)
    assert torch.equal(filled[~masked], frames[~masked]) and (filled < K).all()
    assert torch.equal(batch["tokens"], inputs), "the input batch is not edited"
    coarsest = [min([q for q in range(3) if (call[..., q] == VOCAB.mask).any()], default=3) for call in model.calls]
    assert coarsest == sorted(coarsest), "a level is decoded only once every coarser one is complete"
    for q in range(3):
        assert coarsest.count(q) <= (steps if q == 0 else fine_steps)


def test_load_bert_refuses_a_tokenizer_of_another_q(tmp_path):
    from vqvae import VQVAE, VQVAEConfig
    torch.manual_seed(0)
    vqvae = VQVAE(VQVAEConfig(num_downsamples=2, num_codes=K, code_dim=D, base_channels=2, max_channels=8,
                              bottleneck_blocks=1, codebooks=2))
    bert = tiny_bert(codebooks=3)
    path = tmp_path / "bert.pt"
    save_checkpoint(path, {"kind": "bert", "config": asdict(bert.config), "model": bert.state_dict(),
                           "stems": list(VOCAB.stems), "vqvae_fingerprint": "x", "vqvae_path": "runs/q3/vqvae.pt"})
    with pytest.raises(UserError, match="reads frames of 3 codes, the VQ-VAE gives 2") as error:
        load_bert(path, vqvae)
    assert "\n" not in str(error.value) and "runs/q3/vqvae.pt" in str(error.value)


def test_separate_and_inpaint_frames_keep_lengths_and_known_tokens():
    model = tiny_bert(max_positions=33, codebooks=3).eval()
    S = 60
    mixture, features = torch.randint(0, K, (S, 3)), F.normalize(torch.randn(S, D), dim=-1)
    stems = separate_all(model, VOCAB, mixture, features, ["bass", "drums"], steps=2, batch_size=3)
    assert stems.shape == (2, S, 3) and (stems < K).all()
    assert torch.equal(separate_tokens(model, VOCAB, mixture, features, "drums", steps=2), stems[1])
    filled = inpaint_tokens(model, VOCAB, mixture, features, gap_start=20, gap_length=10, steps=3)
    assert filled.shape == (S, 3) and (filled < K).all()
    assert torch.equal(filled[:20], mixture[:20]) and torch.equal(filled[30:], mixture[30:])
