"""tasks.py: every stem separated in one batched pass gives the tokens of one stem at a time."""
import pytest
import torch

from bert import AudioBERT, BERTConfig
from masking import Vocabulary
from tasks import separate_all, separate_tokens, separation_inputs

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
