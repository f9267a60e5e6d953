"""bert.py, decoding.py and tasks.py with tiny models: padding, overfitting, decoding rules, windows."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from bert import AudioBERT, BERTConfig
from decoding import maskgit_fill
from masking import IGNORE, Vocabulary, bert_mask, separation_layout
from tasks import inpaint_tokens, separate_all, single_source_inputs, window_owners, window_starts

K, D = 16, 8
VOCAB = Vocabulary(K, ("bass", "drums"))


def tiny_config(max_positions=64, layers=2, width=32):
    return BERTConfig(num_codes=K, code_dim=D, num_special=VOCAB.size - K, max_positions=max_positions,
                      num_layers=layers, num_heads=4, width=width)


def tiny_bert(seed=0, max_positions=64, layers=2, width=32):
    torch.manual_seed(seed)
    return AudioBERT(tiny_config(max_positions, layers, width), torch.randn(K, D))


def test_codes_are_scored_by_the_scaled_cosine_to_the_codebook():
    """logits = scale * C u with C the normalised codebook (K, D) and u a unit vector."""
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (2, 10))
    (logits, latent), loss = model(**single_source_inputs(tokens))
    assert loss is None
    assert logits.shape == (2, 10, K) and latent.shape == (2, 10, D)
    scale = model.log_logit_scale.exp().item()
    assert abs(scale - 50.0) < 1e-4  # the sharp starting scale
    u = (logits / scale) @ torch.linalg.pinv(model.codebook).t()  # (2, 10, D) least-squares direction
    assert torch.allclose(u.norm(dim=-1), torch.ones(2, 10), atol=1e-3)
    assert torch.allclose(scale * u @ model.codebook.t(), logits, atol=1e-3)


def test_padding_does_not_change_outputs_at_real_positions():
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (2, 12))
    (short, _), _ = model(**single_source_inputs(tokens))
    padded = single_source_inputs(F.pad(tokens, (0, 5), value=VOCAB.pad))
    padding = torch.arange(17).expand(2, 17) >= 12
    (long, _), _ = model(**padded, padding=padding)
    assert torch.allclose(short, long[:, :12], atol=1e-5)


def test_keeping_some_positions_gives_their_outputs_of_the_full_pass():
    """hidden_states(keep=...) (the last block computes only the kept queries) equals the kept slice
    of the full pass, with padding keys, through the fused and the written-out attention."""
    from bert import SelfAttention
    model = tiny_bert(layers=3).eval()
    tokens = torch.randint(0, K, (2, 20))
    inputs = single_source_inputs(tokens, torch.randn(2, 20, D))
    padding = torch.arange(20).expand(2, 20) >= torch.tensor([[15], [20]])
    for fused in (True, False):
        SelfAttention.fused = fused
        try:
            full = model.hidden_states(**inputs, padding=padding)  # (B, L, E)
            kept = model.hidden_states(**inputs, padding=padding, keep=slice(11, None))  # (B, 9, E)
        finally:
            SelfAttention.fused = True
        assert kept.shape == (2, 9, 32)
        assert torch.allclose(kept, full[:, 11:], atol=1e-5)
        assert not torch.allclose(model.hidden_states(**inputs, keep=slice(11, None)), kept, atol=1e-3)  # padding counts


def test_attention_written_out_equals_the_fused_kernel():
    """bert.attention, softmax(Q K^T / sqrt(d) + mask) V by hand, against F.scaled_dot_product_attention
    (the fast path), with padding keys masked; then the whole model through either path."""
    from bert import SelfAttention, attention
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 10, 8, generator=generator) for _ in range(3))
    attend = (torch.arange(10) < torch.tensor([[7], [10]]))[:, None, None, :]  # (B, 1, 1, L) row 0 has 3 padding keys
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    assert torch.allclose(attention(q, k, v, attend), expected, atol=1e-6)
    weights = torch.softmax(q[0, 0] @ k[0, 0].t() / 8 ** 0.5 + torch.where(attend[0, 0], 0.0, float("-inf")), dim=-1)
    assert torch.allclose(weights[:, 7:], torch.zeros(10, 3)) and torch.allclose(attention(q, k, v, attend)[0, 0], weights @ v[0, 0], atol=1e-6)
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (2, 12), generator=generator)
    inputs = {**single_source_inputs(tokens), "padding": torch.arange(12).expand(2, 12) >= 9}
    (fused, _), _ = model(**inputs)
    SelfAttention.fused = False
    try:
        with pytest.MonkeyPatch.context() as patch:  # the hand-written path must not call the kernel
            patch.setattr(F, "scaled_dot_product_attention", lambda *args, **kwargs: 1 / 0)
            (by_hand, _), _ = model(**inputs)
    finally:
        SelfAttention.fused = True
    assert torch.allclose(fused, by_hand, atol=1e-4)


def test_loss_is_cross_entropy_on_targeted_positions_only():
    """Two targets by hand; then `code_loss`, which scores only the targeted frames, equals the
    cross-entropy of the full logits over many targets."""
    model = tiny_bert().eval()
    tokens = torch.randint(0, K, (2, 10))
    (logits, _), _ = model(**single_source_inputs(tokens))
    targets = torch.full_like(tokens, IGNORE)
    targets[0, 3], targets[1, 7] = 5, 9
    no_logits, losses = model(**single_source_inputs(tokens), targets=targets)
    expected = (F.cross_entropy(logits[0, 3:4], torch.tensor([5])) + F.cross_entropy(logits[1, 7:8], torch.tensor([9]))) / 2
    assert no_logits is None and torch.allclose(losses["loss"], expected, atol=1e-5)
    assert losses["latent"] == 0, "no latent given, no Eq. 11 term"
    many = torch.where(torch.rand(tokens.shape, generator=torch.Generator().manual_seed(5)) < 0.3, tokens, IGNORE)
    full = F.cross_entropy(logits.reshape(-1, K), many.reshape(-1), ignore_index=IGNORE)  # all logits, then the targets
    assert torch.allclose(model(**single_source_inputs(tokens), targets=many)[1]["cross_entropy"], full, atol=1e-5)


def test_codebook_is_frozen_and_not_a_parameter():
    model = tiny_bert()
    assert "codebook" not in dict(model.named_parameters())
    assert "codebook" in model.state_dict() and model.codebook.shape == (K, D)
    with pytest.raises(ValueError, match="does not match"):
        AudioBERT(tiny_config(), torch.randn(K + 1, D))


def test_a_token_embeds_as_its_projected_code_vector_the_mask_embedding_or_a_special_one():
    """embed_tokens (one table lookup) is, token by token: the projected code vector of a code, the
    MASK embedding for MASK, the special embedding of PAD, SEP or a stem separator."""
    model = tiny_bert().eval()
    nn.init.normal_(model.code_projection.bias)  # a bias must count once per code, never for PAD
    ids = torch.randint(0, VOCAB.size, (2, 12))  # codes and every special token
    expected = torch.zeros(2, 12, model.config.width)
    for b, l in torch.cartesian_prod(torch.arange(2), torch.arange(12)).tolist():
        i = ids[b, l].item()
        if i < K:
            expected[b, l] = model.code_projection(model.codebook[i])
        elif i == VOCAB.mask:
            expected[b, l] = model.mask_embedding
        else:
            expected[b, l] = model.special_embedding.weight[i - K]
    assert torch.allclose(model.embed_tokens(ids), expected, atol=1e-6)


def overfit(model, inputs, labels, steps):
    """Train `model` on one batch; its accuracy at the labelled positions afterwards."""
    batch = single_source_inputs(inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        _, loss = model(**batch, targets=labels)
        loss = loss["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    (logits, _), _ = model(**batch)
    chosen = labels != IGNORE
    return (logits.argmax(-1)[chosen] == labels[chosen]).float().mean()


def test_tiny_bert_overfits_one_batch():
    """The standard sanity check: a fixed masked batch is learned to ~100% masked accuracy."""
    model = tiny_bert(seed=1, layers=1)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, K, (4, 32), generator=generator)
    inputs, labels = bert_mask(tokens, VOCAB, generator)
    labels = torch.where(inputs == VOCAB.mask, tokens, torch.full_like(tokens, IGNORE))  # the MASKed ones
    accuracy = overfit(model, inputs, labels, steps=400)
    assert accuracy > 0.95, accuracy


def test_latent_loss_is_one_minus_cosine_at_targeted_frames_with_a_latent():
    """Eq. 11 by hand: 1 - cos(the latent head's z, h) averaged over the frames whose code is
    targeted and whose latent is given; a latent at an untargeted frame, or a target without one,
    adds nothing; the total is cross-entropy + latent_weight * latent."""
    model = tiny_bert().eval()
    model.config.latent_weight = 3.0
    generator = torch.Generator().manual_seed(4)
    tokens = torch.randint(0, K, (2, 10), generator=generator)
    targets = torch.full_like(tokens, IGNORE)
    targets[0, 2:6] = tokens[0, 2:6]  # targeted frames 2..5 of item 0, and frame 1 of item 1
    targets[1, 1] = tokens[1, 1]
    latents = torch.zeros(2, 10, D)
    latents[0, 3:8] = torch.randn(5, D, generator=generator)  # 3..5 targeted, 6..7 not: only 3..5 count
    (_, predicted), _ = model(**single_source_inputs(tokens))
    expected = (1 - F.cosine_similarity(predicted[0, 3:6], latents[0, 3:6], dim=-1)).mean()
    _, losses = model(**single_source_inputs(tokens), targets=targets, latents=latents)
    assert torch.allclose(losses["latent"], expected, atol=1e-5)
    assert torch.allclose(losses["loss"], losses["cross_entropy"] + 3.0 * expected, atol=1e-5)
    assert torch.allclose(predicted.norm(dim=-1), torch.ones(2, 10), atol=1e-5), "a predicted latent is a unit vector"


def test_latent_head_overfits_one_batch():
    """The latent loss of Eq. 11 on a fixed batch falls to near zero, beside the codes: each latent
    lies near its frame's code vector, as an encoder output lies near its quantisation."""
    model = tiny_bert(seed=1, layers=1)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, K, (4, 32), generator=generator)
    inputs, _ = bert_mask(tokens, VOCAB, generator)
    labels = torch.where(inputs == VOCAB.mask, tokens, torch.full_like(tokens, IGNORE))  # the MASKed ones
    latents = F.normalize(model.codebook[tokens] + 0.3 * torch.randn(4, 32, D, generator=generator), dim=-1)
    batch = single_source_inputs(inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(200):
        _, losses = model(**batch, targets=labels, latents=latents)
        if step == 0:
            first = losses["latent"].item()
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    assert first > 0.5 and losses["latent"].item() < 0.05, (first, losses["latent"].item())


class Recorder(torch.nn.Module):
    """A model that remembers the tokens it was called with."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.calls = model, model.config, []

    def forward(self, tokens, **inputs):
        self.calls.append(tokens.clone())
        return self.model(tokens, **inputs)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), steps=st.integers(1, 8), masked_share=st.floats(0.0, 1.0),
       temperature=st.sampled_from([0.0, 1.0]))
def test_maskgit_keeps_given_tokens_and_fills_every_mask_in_at_most_n_steps(seed, steps, masked_share, temperature):
    model = Recorder(tiny_bert(seed=seed % 3).eval())
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, K, (3, 16), generator=generator)
    masked = torch.rand(3, 16, generator=generator) < masked_share
    inputs = tokens.masked_fill(masked, VOCAB.mask)
    batch = single_source_inputs(inputs)
    filled = maskgit_fill(model, batch, VOCAB.mask, steps=steps, temperature=temperature, generator=generator)
    assert torch.equal(filled[~masked], tokens[~masked])
    assert (filled < K).all(), "with N steps every MASK is filled"
    assert torch.equal(batch["tokens"], inputs), "the input batch is not edited"
    assert len(model.calls) <= steps and (len(model.calls) > 0) == bool(masked.any())
    still = [(call == VOCAB.mask).sum().item() for call in model.calls]
    assert still == sorted(still, reverse=True), "a revealed token is never masked again"


def test_one_step_maskgit_is_the_argmax():
    model = tiny_bert().eval()
    inputs = torch.randint(0, K, (2, 20))
    inputs[:, 5:15] = VOCAB.mask
    batch = single_source_inputs(inputs)
    (logits, _), _ = model(**batch)
    filled = maskgit_fill(model, batch, VOCAB.mask, steps=1)
    assert torch.equal(filled[:, 5:15], logits.argmax(-1)[:, 5:15])


def test_maskgit_reveals_the_most_confident_first():
    """Two steps over 10 MASKs reveal 3 in the first (cosine schedule: floor(10 cos(pi/4)) = 7 stay),
    the 3 the first pass is most confident of."""
    model = Recorder(tiny_bert().eval())
    inputs = torch.randint(0, K, (1, 20), generator=torch.Generator().manual_seed(1))
    inputs[:, 5:15] = VOCAB.mask
    batch = single_source_inputs(inputs)
    (logits, _), _ = model.model(**batch)
    confidence = torch.softmax(logits[0, 5:15], -1).amax(-1)  # (10,)
    most_confident = set((confidence.argsort(descending=True)[:3] + 5).tolist())
    maskgit_fill(model, batch, VOCAB.mask, steps=2)
    revealed = (model.calls[1][0] != VOCAB.mask) & (inputs[0] == VOCAB.mask)  # at step 1
    assert set(torch.nonzero(revealed)[:, 0].tolist()) == most_confident


def test_maskgit_records_the_latent_of_the_pass_that_revealed_each_token():
    """One-shot: a masked position's recorded latent is the pass's latent head output; a given
    token's is its code vector."""
    model = tiny_bert().eval()
    inputs = torch.randint(0, K, (2, 20), generator=torch.Generator().manual_seed(2))
    inputs[:, 5:15] = VOCAB.mask
    batch = single_source_inputs(inputs)
    filled, latents = maskgit_fill(model, batch, VOCAB.mask, steps=1, record=True)
    (logits, latent), _ = model(**batch)
    assert torch.equal(filled[:, 5:15], logits.argmax(-1)[:, 5:15])
    assert torch.allclose(latents[:, 5:15], latent[:, 5:15]) and torch.equal(latents[:, :5], model.codebook[inputs[:, :5]])


@settings(deadline=None)
@given(total=st.integers(1, 600), window=st.integers(1, 300))
def test_windows_tile_the_sequence_and_each_frame_comes_from_a_window_that_holds_it(total, window):
    starts = window_starts(total, window)
    covered = torch.zeros(total, dtype=torch.long)
    for a in starts:
        covered[a:a + window] += 1
    assert (covered >= 1).all() and starts[0] == 0 and max(starts) + min(window, total) == total
    assert (covered <= 2).all() and (covered == 2).sum() < window, "edge to edge: only the last window overlaps"
    found, owner = window_owners(total, window)
    assert list(found) == starts
    for s in range(total):
        holders = [w for w in (owner[s] - 1, owner[s], owner[s] + 1) if 0 <= w < len(starts) and starts[w] <= s < starts[w] + window]
        assert owner[s] in holders  # (only neighbours can hold the same frame)
        assert abs(s - starts[owner[s]] - window / 2) == min(abs(s - starts[w] - window / 2) for w in holders)


def test_separate_and_inpaint_keep_lengths_and_known_tokens():
    model = tiny_bert(max_positions=33).eval()
    S, M = 70, 16
    mixture, features = torch.randint(0, K, (S,)), F.normalize(torch.randn(S, D), dim=-1)
    stems = separate_all(model, VOCAB, mixture, features, ["bass", "drums"], steps=2, batch_size=3)["tokens"]
    assert stems.shape == (2, S) and (stems < K).all()
    assert torch.equal(separate_all(model, VOCAB, mixture, features, ["drums"], steps=2)["tokens"][0], stems[1])
    # by hand: every window's one-shot fill, each frame taken from the best-centred window that holds it
    starts = window_starts(S, M)  # 0, 16, 32, 48, 54
    windows = torch.stack([mixture[a:a + M] for a in starts])  # (W, M)
    windowed = torch.stack([features[a:a + M] for a in starts])  # (W, M, D)
    tokens, segments, positions = separation_layout(windows, torch.full_like(windows, VOCAB.mask),
                                                    VOCAB.stem_separator("drums"))
    feats = torch.cat([windowed, torch.zeros(len(starts), 1, D), windowed], dim=1)
    fills = maskgit_fill(model, {"tokens": tokens, "segments": segments, "positions": positions, "features": feats},
                         VOCAB.mask, steps=1)[:, M + 1:]  # (W, M)
    nearest = [min((w for w in range(len(starts)) if starts[w] <= s < starts[w] + M), key=lambda w: abs(s - starts[w] - M / 2))
               for s in range(S)]  # ties: the earlier
    by_hand = torch.stack([fills[w, s - starts[w]] for s, w in enumerate(nearest)])  # (S,)
    assert torch.equal(separate_all(model, VOCAB, mixture, features, ["drums"], steps=1)["tokens"][0], by_hand)
    filled = inpaint_tokens(model, VOCAB, mixture, features, gap_start=40, gap_length=10, steps=3)
    assert filled.shape == (S,) and (filled < K).all()
    assert torch.equal(filled[:40], mixture[:40]) and torch.equal(filled[50:], mixture[50:])
