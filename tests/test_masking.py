"""masking.py: exact BERT proportions, codebook-only replacements, specials never chosen, Eq. 7, Eq. 8;
frames of Q codes (Q = 1 the ordinary case): frame-wise BERT masking and the cosine level masking."""
import torch
from hypothesis import example, given, settings, strategies as st

from masking import (CONTEXT, FIRST_LEVEL_SHARE, IGNORE, SEPARATOR, TARGET, Vocabulary, bert_mask, cosine_mask,
                     hidden_frames, middle_mask, separation_layout)

VOCAB = Vocabulary(num_codes=32, stems=("bass", "drums"))


def random_tokens(seed, B, L, Q=1, num_codes=32):
    return torch.randint(0, num_codes, (B, L, Q), generator=torch.Generator().manual_seed(seed))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 4), L=st.integers(1, 300), Q=st.integers(1, 4))
@example(seed=0, B=1, L=190, Q=1)  # 15% of 190 is 28.5 in float32 but 28.499... in Python: rounds to 28
def test_bert_mask_counts_are_exact_and_take_all_levels_of_a_frame_together(seed, B, L, Q):
    tokens = random_tokens(seed, B, L, Q)
    before = tokens.clone()
    inputs, labels = bert_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    assert inputs.shape == labels.shape == (B, L, Q)
    assert torch.equal(tokens, before), "masking must not edit its input"
    chosen, masked = labels != IGNORE, inputs == VOCAB.mask  # (B, L, Q)
    assert torch.equal(chosen, chosen[..., :1].expand_as(chosen)), "a frame's levels are chosen together"
    assert torch.equal(masked, masked[..., :1].expand_as(masked)), "and masked together"
    n = max(1, round(0.15 * L))
    assert (chosen[..., 0].sum(dim=1) == n).all() and (masked[..., 0].sum(dim=1) == round(0.8 * n)).all()
    assert torch.equal(labels[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen]), "positions not chosen stay as they were"
    assert (inputs[~masked] < VOCAB.num_codes).all(), "random codes are codebook ids"
    assert torch.equal(hidden_frames(inputs, labels, VOCAB), chosen[..., 0])


def test_bert_mask_split_over_many_draws():
    """Over 2000 rows of 400: 15% chosen; of those 80% MASK, ~10% changed to another code, ~10% kept."""
    tokens = random_tokens(0, 2000, 400, num_codes=512)
    vocab = Vocabulary(512)
    inputs, labels = bert_mask(tokens, vocab, torch.Generator().manual_seed(1))
    chosen = labels[..., 0] != IGNORE  # (B, L)
    assert chosen.sum().item() == 2000 * 60  # 15% of 400 in every row
    per_position = chosen.float().mean(dim=0)  # (L,) no position is favoured
    assert (per_position - 0.15).abs().max() < 5 * (0.15 * 0.85 / 2000) ** 0.5
    masked = (inputs[..., 0] == vocab.mask) & chosen
    changed = chosen & ~masked & (inputs[..., 0] != tokens[..., 0])
    assert masked.sum().item() == 2000 * 48  # 80% of 60
    # a random code equals the original 1/512 of the time, so "changed" is a little under 10%
    assert abs(changed.sum().item() / chosen.sum().item() - 0.1 * 511 / 512) < 0.003


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), M=st.integers(2, 60), Q=st.integers(1, 3))
def test_pad_sep_and_stem_separators_are_never_chosen(seed, M, Q):
    mixture, stem = random_tokens(seed, 3, M, Q), random_tokens(seed + 1, 3, M, Q)
    tokens, _, _ = separation_layout(mixture, stem, VOCAB.stem_separator("drums"))
    tokens = torch.cat([tokens, torch.full((3, 5, Q), VOCAB.pad)], dim=1)  # padded
    special = tokens >= VOCAB.num_codes
    for fn in (bert_mask, cosine_mask):
        inputs, labels = fn(tokens, VOCAB, torch.Generator().manual_seed(seed))
        assert (labels[special] == IGNORE).all()
        assert torch.equal(inputs[special], tokens[special])
        assert (labels != IGNORE).any(dim=(1, 2)).all(), "every row predicts something"


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), Q=st.integers(1, 3), data=st.data())
def test_middle_mask_masks_exactly_the_central_gap_at_every_level(L, Q, data):
    gap = data.draw(st.integers(1, L))
    tokens = random_tokens(L, 2, L, Q)
    inputs, labels = middle_mask(tokens, gap, VOCAB)
    masked = inputs == VOCAB.mask  # (2, L, Q)
    assert torch.equal(masked, masked[..., :1].expand_as(masked)), "every level of a gap frame"
    where = masked[0, :, 0].nonzero()[:, 0]
    assert len(where) == gap  # exactly P, not P + 1
    start = where[0].item()
    assert torch.equal(where, torch.arange(start, start + gap))
    assert start == (L - gap) // 2  # centred: the tokens left and right of it differ by at most one
    assert torch.equal(masked[1], masked[0])
    assert torch.equal(labels[masked], tokens[masked]) and (labels[~masked] == IGNORE).all()
    assert torch.equal(inputs[~masked], tokens[~masked])


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 200), Q=st.integers(1, 3), data=st.data())
def test_span_masks_hide_exactly_each_rows_requested_central_frames(L, Q, data):
    """Training's span masks: `middle_mask` with one gap length per row hides exactly those frames."""
    gaps = data.draw(st.lists(st.integers(1, L), min_size=1, max_size=4))
    tokens = random_tokens(L, len(gaps), L, Q)
    inputs, labels = middle_mask(tokens, torch.tensor(gaps), VOCAB)
    for b, gap in enumerate(gaps):
        masked = (inputs[b] == VOCAB.mask).all(dim=-1)  # (L,) every level of a gap frame
        assert torch.equal(masked, (inputs[b] == VOCAB.mask).any(dim=-1))
        start = (L - gap) // 2
        assert torch.equal(masked.nonzero()[:, 0], torch.arange(start, start + gap))
        assert torch.equal(labels[b][masked], tokens[b][masked]) and (labels[b][~masked] == IGNORE).all()
        assert torch.equal(inputs[b][~masked], tokens[b][~masked])


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), M=st.integers(1, 100), Q=st.integers(1, 3))
def test_separation_layout(B, M, Q):
    mixture, stem = random_tokens(0, B, M, Q), random_tokens(1, B, M, Q)
    tokens, segments, positions = separation_layout(mixture, stem, VOCAB.stem_separator("bass"))
    assert tokens.shape == (B, 2 * M + 1, Q) and segments.shape == positions.shape == (B, 2 * M + 1)
    assert torch.equal(tokens[:, :M], mixture) and torch.equal(tokens[:, M + 1:], stem)
    assert (tokens[:, M] == VOCAB.stem_separator("bass")).all(), "the separator fills every level"
    assert (segments[:, :M] == CONTEXT).all() and (segments[:, M] == SEPARATOR).all() and (segments[:, M + 1:] == TARGET).all()
    assert torch.equal(positions[0, :M], positions[0, M + 1:]), "mixture frame s and stem frame s share a position"
    assert torch.equal(positions[0, :M], torch.arange(M)) and positions[0, M] == 0


def test_cosine_mask_reaches_every_ratio_up_to_all():
    tokens = random_tokens(0, 4000, 100)
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(0))
    ratio = (inputs == VOCAB.mask).float().mean(dim=(1, 2))
    assert ratio.min() <= 0.05 and ratio.max() == 1.0
    assert abs(ratio.mean().item() - 2 / torch.pi) < 0.02  # E[cos(pi u / 2)] = 2 / pi
    assert torch.equal(labels != IGNORE, inputs == VOCAB.mask)


def test_vocabulary_ids_are_distinct():
    ids = [VOCAB.pad, VOCAB.mask, VOCAB.sep] + [VOCAB.stem_separator(s) for s in VOCAB.stems]
    assert len(set(ids)) == len(ids) and min(ids) == VOCAB.num_codes and max(ids) == VOCAB.size - 1


# ---- level masking of frames of Q codes ----

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), B=st.integers(1, 6), L=st.integers(2, 80), Q=st.integers(1, 6))
def test_cosine_mask_masks_the_chosen_share_of_one_level_and_every_finer_frame(seed, B, L, Q):
    tokens = random_tokens(seed, B, L, Q)
    tokens[:, -1] = VOCAB.pad  # a padded frame is never masked
    before = tokens.clone()
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
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
    assert torch.equal(hidden_frames(inputs, labels, VOCAB), masked.any(dim=-1)), "a frame masked at any level is hidden"


def test_cosine_mask_draws_level_one_in_its_share_the_others_alike_and_ratios_up_to_all():
    tokens = random_tokens(0, 4000, 30, 4)
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(0))
    level = (labels != IGNORE).any(dim=1).float().argmax(dim=1)  # (B,) the predicted level of each row
    counts = torch.bincount(level, minlength=4)
    first = 4000 * FIRST_LEVEL_SHARE
    assert abs(counts[0].item() - first) < 150 and all(abs(c.item() - (4000 - first) / 3) < 100 for c in counts[1:])
    share = (labels != IGNORE).any(dim=2).float().mean(dim=1)  # (B,) frames predicted
    assert share.max() == 1.0 and share.min() <= 0.05 and abs(share.mean().item() - 2 / torch.pi) < 0.02


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.integers(2, 80), Q=st.integers(1, 4))
def test_whole_first_level_masks_every_frame_of_a_level_one_row_and_leaves_the_others_as_they_were(seed, L, Q):
    """Separation's stem mask: a row predicting level 1 is MASK at every maskable frame and level (as
    one-shot separation starts); a row of a finer level is masked exactly as without the option."""
    tokens = random_tokens(seed, 6, L, Q)
    tokens[:, -1] = VOCAB.pad
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(seed), whole_first_level=True)
    plain_inputs, plain_labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    level = (labels != IGNORE).any(dim=1).float().argmax(dim=1)  # (B,) the level predicted
    for b in range(6):
        if level[b] == 0:
            assert (inputs[b, :-1] == VOCAB.mask).all() and torch.equal(labels[b, :-1, 0], tokens[b, :-1, 0])
            assert (labels[b, :, 1:] == IGNORE).all() and inputs[b, -1, 0] == VOCAB.pad
        else:
            assert torch.equal(inputs[b], plain_inputs[b]) and torch.equal(labels[b], plain_labels[b])
    if Q == 1:
        assert (level == 0).all()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), L=st.integers(1, 120), Q=st.integers(1, 5))
def test_cosine_mask_with_known_context_masks_the_chosen_frames_only(seed, L, Q):
    """Inpainting's mask: the chosen frames lose level q and the finer ones, the others stay whole."""
    tokens = random_tokens(seed, 4, L, Q)
    inputs, labels = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(seed), context_known=True)
    same, _ = cosine_mask(tokens, VOCAB, torch.Generator().manual_seed(seed))
    chosen = (labels != IGNORE).any(dim=2)  # (B, L) frames predicted
    level = (labels != IGNORE).any(dim=1).float().argmax(dim=1)  # (B,) the level predicted
    masked = inputs == VOCAB.mask
    for b in range(4):
        q = level[b].item()
        assert torch.equal(masked[b], chosen[b, :, None] & (torch.arange(Q) >= q)), "exactly levels >= q of the chosen frames"
        assert torch.equal(labels[b, :, q][chosen[b]], tokens[b, :, q][chosen[b]])
    assert torch.equal(same[..., 0] == VOCAB.mask, masked[..., 0] & (level[:, None] == 0))  # same draws as the default
