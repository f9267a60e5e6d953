"""bert.py, decoding.py and tasks.py with tiny models: padding, overfitting, decoding rules, windows."""
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from bert import AudioBERT, BERTConfig
from decoding import maskgit_fill
from masking import IGNORE, Vocabulary, bert_mask, separation_layout
from tasks import inpaint_tokens, separate_tokens, single_source_inputs, window_starts

K, D = 16, 8
VOCAB = Vocabulary(K, ("bass", "drums"))


def tiny_bert(seed=0, max_positions=64, layers=2, width=32):
    torch.manual_seed(seed)
    codebook = torch.randn(K, D)
    config = BERTConfig(num_codes=K, code_dim=D, num_special=VOCAB.size - K, max_positions=max_positions,
                        num_layers=layers, num_heads=4, width=width)
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


def test_tiny_bert_overfits_one_batch():
    """The standard sanity check: a fixed masked batch is learned to ~100% masked accuracy."""
    model = tiny_bert(seed=1, layers=1)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, K, (4, 32), generator=generator)
    inputs, labels = bert_mask(tokens, VOCAB, generator)
    labels = torch.where(inputs == VOCAB.mask, tokens, torch.full_like(tokens, IGNORE))  # the MASKed ones
    batch = single_source_inputs(inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(200):
        _, loss = model(**batch, targets=labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    logits, _ = model(**batch)
    chosen = labels != IGNORE
    accuracy = (logits.argmax(-1)[chosen] == tokens[chosen]).float().mean()
    assert accuracy > 0.95, accuracy


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), steps=st.integers(1, 16), masked_share=st.floats(0.0, 1.0))
def test_maskgit_never_changes_unmasked_tokens_and_fills_everything(seed, steps, masked_share):
    model = tiny_bert(seed=seed % 3).eval()
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, K, (3, 20), generator=generator)
    masked = torch.rand(3, 20, generator=generator) < masked_share
    inputs = tokens.masked_fill(masked, VOCAB.mask)
    batch = single_source_inputs(inputs)
    filled = maskgit_fill(model, batch, VOCAB.mask, steps=steps)
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
