"""masking.py: exact BERT proportions, codebook-only replacements, specials never chosen, Eq. 7, Eq. 8;
frames of Q codes: level masking, frame-wise BERT masking, and Q = 1 unchanged."""
import torch
from hypothesis import example, given, settings, strategies as st

from masking import (CONTEXT, IGNORE, SEPARATOR, TARGET, Vocabulary, bert_mask, cosine_mask, gap_mask, hidden_frames,
                     level_mask, middle_mask, separation_layout)

VOCAB = Vocabulary(num_codes=32, stems=("bass", "drums"))


def random_tokens(seed, B, L, num_codes=32):
    return torch.randint(0, num_codes, (B, L), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 4), L=st.integers(1, 300))
@example(seed=0, B=1, L=190)  # 15% of 190 is 28.5 in float32 but 28.499... in Python: rounds to 28
def test_bert_mask_counts_are_exact(seed, B, L):
    tokens = random_tokens(seed, B, L)
    before = tokens.clone()
    inputs, labels = bert_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    assert torch.equal(tokens, before), "masking must not edit its input"
    chosen = labels != IGNORE
    for b in range(B):
        n = max(1, round(0.15 * L))
        assert chosen[b].sum() == n
        assert (inputs[b] == VOCAB.mask).sum() == round(0.8 * n)
        assert torch.equal(labels[b][chosen[b]], tokens[b][chosen[b]])
    assert torch.equal(inputs[~chosen], tokens[~chosen]), "positions not chosen stay as they were"
    assert (inputs < VOCAB.num_codes).logical_or(inputs == VOCAB.mask).all(), "random codes are codebook ids"


def test_bert_mask_split_over_many_draws():
    """Over 2000 rows of 400: 15% chosen; of those 80% MASK, ~10% changed to another code, ~10% kept."""
    tokens = random_tokens(0, 2000, 400, num_codes=512)
    vocab = Vocabulary(512)
    inputs, labels = bert_mask(tokens, vocab, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE
    assert chosen.sum().item() == 2000 * 60  # 15% of 400 in every row
    per_position = chosen.float().mean(dim=0)  # (L,) no position is favoured
    assert (per_position - 0.15).abs().max() < 5 * (0.15 * 0.85 / 2000) ** 0.5
    masked = (inputs == vocab.mask) & chosen
    changed = chosen & ~masked & (inputs != tokens)
    assert masked.sum().item() == 2000 * 48  # 80% of 60
    # a random code equals the original 1/512 of the time, so "changed" is a little under 10%
    assert abs(changed.sum().item() / chosen.sum().item() - 0.1 * 511 / 512) < 0.003


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), M=st.integers(2, 60))
def test_pad_sep_and_stem_separators_are_never_chosen(seed, M):
    mixture, stem = random_tokens(seed, 3, M), random_tokens(seed + 1, 3, M)
    tokens, _, _ = separation_layout(mixture, stem, VOCAB.stem_separator("drums"))
    tokens = torch.cat([tokens, torch.full((3, 5), VOCAB.pad)], dim=1)  # padded
    for fn in (bert_mask, cosine_mask):
        inputs, labels = fn(tokens, VOCAB, torch.Generator().manual_seed(seed))
        special = tokens >= VOCAB.num_codes
        assert (labels[special] == IGNORE).all()
        assert torch.equal(inputs[special], tokens[special])


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), data=st.data())
def test_middle_mask_masks_exactly_the_central_gap(L, data):
    gap = data.draw(st.integers(1, L))
    tokens = random_tokens(L, 2, L)
    inputs, labels = middle_mask(tokens, gap, VOCAB)
    masked = (inputs == VOCAB.mask).nonzero()[:, 1].view(2, -1)[0]
    assert len(masked) == gap  # exactly P, not P + 1
    start = masked[0].item()
    assert torch.equal(masked, torch.arange(start, start + gap))
    assert start == (L - gap) // 2  # centred: the tokens left and right of it differ by at most one
    assert (labels != IGNORE).sum() == 2 * gap


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), M=st.integers(1, 100))
def test_separation_layout(B, M):
    mixture, stem = random_tokens(0, B, M), random_tokens(1, B, M)
    tokens, segments, positions = separation_layout(mixture, stem, VOCAB.stem_separator("bass"))
    assert tokens.shape == segments.shape == positions.shape == (B, 2 * M + 1)
    assert torch.equal(tokens[:, :M], mixture) and torch.equal(tokens[:, M + 1:], stem)
    assert (tokens[:, M] == VOCAB.stem_separator("bass")).all()
    assert (segments[:, :M] == CONTEXT).all() and (segments[:, M] == SEPARATOR).all() and (segments[:, M + 1:] == TARGET).all()
    assert torch.equal(positions[0, :M], positions[0, M + 1:]), "mixture frame s and stem frame s share a position"


def test_cosine_mask_reaches_every_ratio_up_to_all():
    tokens = random_tokens(0, 4000, 100)
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(0))
    ratio = (inputs == VOCAB.mask).float().mean(dim=1)
    assert ratio.min() <= 0.05 and ratio.max() == 1.0
    assert abs(ratio.mean().item() - 2 / torch.pi) < 0.02  # E[cos(pi u / 2)] = 2 / pi
    assert torch.equal(labels != IGNORE, inputs == VOCAB.mask)


def test_vocabulary_ids_are_distinct():
    ids = [VOCAB.pad, VOCAB.mask, VOCAB.sep] + [VOCAB.stem_separator(s) for s in VOCAB.stems]
    assert len(set(ids)) == len(ids) and min(ids) == VOCAB.num_codes and max(ids) == VOCAB.size - 1


# ---- frames of Q codes (residual quantization) ----

def random_frames(seed, B, L, Q, num_codes=32):
    return torch.randint(0, num_codes, (B, L, Q), generator=torch.Generator().manual_seed(seed))


def test_one_codebook_masks_are_what_they_were():
    """BERT and cosine masks of (B, L) tokens, as the code before levels existed drew them (commit 36e19e1)."""
    vocab = Vocabulary(16, ("bass", "drums"))
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 16, (2, 20), generator=g)
    inputs, labels = bert_mask(tokens, vocab, torch.Generator().manual_seed(4))
    assert inputs.tolist() == [[10, 8, 9, 3, 17, 8, 0, 5, 13, 3, 10, 11, 9, 9, 10, 5, 7, 6, 0, 17],
                               [12, 13, 7, 14, 8, 10, 1, 10, 6, 17, 2, 15, 12, 1, 3, 17, 5, 8, 14, 1]]
    assert (labels != IGNORE).nonzero().tolist() == [[0, 4], [0, 5], [0, 19], [1, 9], [1, 12], [1, 15]]
    inputs, _ = cosine_mask(tokens, vocab, torch.Generator().manual_seed(5))
    assert (inputs[0] == vocab.mask).nonzero()[:, 0].tolist() == [3, 4, 6, 10, 16, 19] and (inputs[1] == vocab.mask).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 6), L=st.integers(2, 80), Q=st.integers(2, 6))
def test_level_mask_masks_the_chosen_share_of_one_level_and_every_finer_frame(seed, B, L, Q):
    tokens = random_frames(seed, B, L, Q)
    tokens[:, -1] = VOCAB.pad  # a padded frame is never masked
    before = tokens.clone()
    inputs, labels = level_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    assert torch.equal(tokens, before), "masking must not edit its input"
    masked = inputs == VOCAB.mask  # (B, L, Q)
    maskable = tokens[..., 0] < VOCAB.num_codes  # (B, L)
    for b in range(B):
        predicted = (labels[b] != IGNORE).any(dim=0).nonzero()[:, 0]
        assert len(predicted) == 1, "one level is predicted per row"
        q = predicted.item()
        assert 1 <= masked[b, :, q].sum() <= maskable[b].sum()
        assert torch.equal(labels[b, :, q] != IGNORE, masked[b, :, q])
        assert torch.equal(labels[b, :, q][masked[b, :, q]], tokens[b, :, q][masked[b, :, q]])
        assert not masked[b, :, :q].any(), "coarser levels stay"
        assert torch.equal(masked[b, :, q + 1:], maskable[b, :, None].expand(-1, Q - q - 1)), "finer levels: every frame"
    assert not masked[:, -1].any() and torch.equal(inputs[:, -1], tokens[:, -1])


def test_level_mask_draws_every_level_and_ratios_up_to_all():
    tokens = random_frames(0, 4000, 50, 4)
    inputs, labels = level_mask(tokens, VOCAB, torch.Generator().manual_seed(0))
    level = (labels != IGNORE).any(dim=1).float().argmax(dim=1)  # (B,) the predicted level of each row
    assert torch.bincount(level, minlength=4).min() > 900  # about 1000 rows each
    share = (labels != IGNORE).any(dim=2).float().mean(dim=1)
    assert share.max() == 1.0 and share.min() <= 0.05 and abs(share.mean().item() - 2 / torch.pi) < 0.02
    assert torch.equal(*(cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(1))[0],
                         level_mask(tokens, VOCAB, torch.Generator().manual_seed(1))[0]))


def test_a_first_level_share_draws_level_one_that_often_and_the_others_alike():
    tokens = random_frames(0, 4000, 30, 4)
    inputs, labels = level_mask(tokens, VOCAB, torch.Generator().manual_seed(0), first_level_share=0.5)
    level = (labels != IGNORE).any(dim=1).float().argmax(dim=1)  # (B,) the predicted level of each row
    counts = torch.bincount(level, minlength=4)
    assert abs(counts[0].item() - 2000) < 150 and all(abs(c.item() - 667) < 100 for c in counts[1:])
    assert torch.equal(cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(0), first_level_share=0.5)[0], inputs)
    masked = inputs == VOCAB.mask
    for b in range(0, 4000, 97):  # still one level per row, its finer levels masked everywhere
        q = level[b].item()
        assert not masked[b, :, :q].any() and masked[b, :, q + 1:].all()
    always = level_mask(tokens, VOCAB, torch.Generator().manual_seed(0), first_level_share=1.0)[1]
    assert (always[..., 1:] == IGNORE).all() and (always[..., 0] != IGNORE).any(dim=1).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.integers(1, 120), Q=st.integers(2, 5))
def test_level_mask_with_known_context_masks_the_chosen_frames_only(seed, L, Q):
    """Inpainting's mask: the chosen frames lose level q and the finer ones, the others stay whole."""
    tokens = random_frames(seed, 4, L, Q)
    inputs, labels = level_mask(tokens, VOCAB, torch.Generator().manual_seed(seed), context_known=True)
    same, _ = level_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    chosen = (labels != IGNORE).any(dim=2)  # (B, L) frames predicted
    level = (labels != IGNORE).any(dim=1).float().argmax(dim=1)  # (B,) the level predicted
    masked = inputs == VOCAB.mask
    for b in range(4):
        q = level[b].item()
        assert torch.equal(masked[b], chosen[b, :, None] & (torch.arange(Q) >= q)), "exactly levels >= q of the chosen frames"
        assert torch.equal(labels[b, :, q][chosen[b]], tokens[b, :, q][chosen[b]])
    assert torch.equal(same[..., 0] == VOCAB.mask, masked[..., 0] & (level[:, None] == 0))  # same draws as the default


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.integers(1, 200), Q=st.integers(2, 5))
def test_bert_mask_of_frames_takes_all_levels_of_a_frame_together(seed, L, Q):
    tokens = random_frames(seed, 3, L, Q)
    inputs, labels = bert_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    chosen = labels != IGNORE  # (B, L, Q)
    assert torch.equal(chosen, chosen[..., :1].expand_as(chosen)), "a frame's levels are chosen together"
    masked = inputs == VOCAB.mask
    assert torch.equal(masked, masked[..., :1].expand_as(masked))
    n = max(1, round(0.15 * L))
    assert (chosen[..., 0].sum(dim=1) == n).all() and (masked[..., 0].sum(dim=1) == round(0.8 * n)).all()
    assert torch.equal(inputs[~chosen], tokens[~chosen]) and (inputs[~masked] < VOCAB.num_codes).all()
    assert torch.equal(hidden_frames(inputs, labels, VOCAB), chosen[..., 0])


def test_middle_mask_and_layout_of_frames():
    tokens = random_frames(0, 2, 10, 3)
    inputs, labels = middle_mask(tokens, 4, VOCAB)
    assert (inputs[:, 3:7] == VOCAB.mask).all() and torch.equal(inputs[:, :3], tokens[:, :3])
    assert torch.equal(labels[:, 3:7], tokens[:, 3:7]) and (labels[:, 7:] == IGNORE).all()
    mixture, stem = random_frames(1, 2, 6, 3), random_frames(2, 2, 6, 3)
    layout, segments, positions = separation_layout(mixture, stem, VOCAB.stem_separator("drums"))
    assert layout.shape == (2, 13, 3) and segments.shape == positions.shape == (2, 13)
    assert (layout[:, 6] == VOCAB.stem_separator("drums")).all()
    assert torch.equal(layout[:, :6], mixture) and torch.equal(layout[:, 7:], stem)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.integers(2, 120), Q=st.integers(1, 4))
def test_gap_mask_masks_inside_one_gap_of_at_most_half_the_context(seed, L, Q):
    """Inpainting's training mask: one contiguous gap per row; outside it nothing changes, inside it
    a cosine share of level q and, with Q > 1, every gap frame at the finer levels."""
    tokens = random_tokens(seed, 4, L) if Q == 1 else random_frames(seed, 4, L, Q)
    inputs, labels, gap = gap_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    for b in range(4):
        where = gap[b].nonzero()[:, 0]
        assert 1 <= len(where) <= L // 2 and where[-1] - where[0] + 1 == len(where), "one gap, at most half"
    outside = ~gap if Q == 1 else ~gap[..., None].expand_as(tokens)
    assert torch.equal(inputs[outside], tokens[outside]) and (labels[outside] == IGNORE).all()
    chosen = labels != IGNORE
    assert torch.equal(labels[chosen], tokens[chosen]) and torch.equal(inputs[chosen], torch.full_like(tokens, VOCAB.mask)[chosen])
    if Q == 1:
        assert (chosen.sum(dim=1) >= 1).all()
        return
    level = chosen.any(dim=1).float().argmax(dim=1)  # (B,) the level predicted
    for b in range(4):
        q = level[b].item()
        assert chosen[b].any(dim=0).sum() == 1, "one level predicted per row"
        assert (inputs[b][gap[b]][:, q + 1:] == VOCAB.mask).all(), "every gap frame masked at the finer levels"
        assert torch.equal(inputs[b, :, :q], tokens[b, :, :q]), "the coarser levels stay"
