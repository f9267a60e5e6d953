"""Tests for quantizer.py: Eq. 1 lookup, Eq. 4/5 losses, straight-through, restart, EMA."""
import torch
import torch.nn.functional as F

from quantizer import VectorQuantizer


def make(num_codes=8, code_dim=4, data_init=True, **kwargs):
    """A quantizer; `data_init=False` marks it initialised, so that training keeps a codebook the test sets by hand."""
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes, code_dim, **kwargs)
    vq.initialized.fill_(not data_init)
    return vq


def test_nearest_code_matches_cdist():
    for cosine in (False, True):
        vq = make(num_codes=32, code_dim=6, cosine=cosine).eval()
        h = torch.randn(3, 20, 6)
        _, _, indices, _ = vq(h)
        target = F.normalize(h, dim=-1) if cosine else h
        expected = torch.cdist(target.reshape(-1, 6), vq.normalized_codebook()).argmin(1)
        assert torch.equal(indices.flatten(), expected)


def test_losses_match_hand_computation():
    vq = make(num_codes=5, code_dim=3, cosine=False).eval()
    h = torch.randn(2, 7, 3)
    quantized, loss, indices, stats = vq(h)
    codebook = vq.codebook.detach()
    total = 0.0
    for b in range(2):
        for s in range(7):
            distances = [float(((h[b, s] - codebook[i]) ** 2).sum()) for i in range(5)]
            j = min(range(5), key=distances.__getitem__)
            assert indices[b, s] == j  # Eq. 1
            total += distances[j]
    mean_squared_distance = total / 14
    # Eq. 4 and Eq. 5 have the same value (they differ only in where the gradient goes).
    assert torch.isclose(stats["codebook_loss"], torch.tensor(mean_squared_distance), rtol=1e-5)
    assert torch.isclose(stats["commitment_loss"], torch.tensor(mean_squared_distance), rtol=1e-5)
    assert torch.isclose(loss, torch.tensor(1.25 * mean_squared_distance), rtol=1e-5)  # beta = 0.25
    assert torch.allclose(quantized, codebook[indices])


def test_straight_through_gradient_reaches_encoder_unchanged():
    vq = make(cosine=False).eval()
    h = torch.randn(2, 5, 4, requires_grad=True)
    quantized, _, _, _ = vq(h)
    upstream = torch.randn_like(quantized)
    (quantized * upstream).sum().backward()
    assert torch.equal(h.grad, upstream)  # identity Jacobian: the straight-through estimator


def test_straight_through_with_cosine_lookup_is_the_normalisation_jacobian():
    vq = make(cosine=True).eval()
    h = torch.randn(2, 5, 4, requires_grad=True)
    quantized, _, _, _ = vq(h)
    upstream = torch.randn_like(quantized)
    (quantized * upstream).sum().backward()
    h2 = h.detach().clone().requires_grad_(True)
    (F.normalize(h2, dim=-1) * upstream).sum().backward()
    assert torch.allclose(h.grad, h2.grad, atol=1e-6)


def test_codebook_loss_moves_codes_and_commitment_moves_encoder():
    vq = make(cosine=False).eval()
    h = torch.randn(1, 6, 4, requires_grad=True)
    _, loss, _, _ = vq(h)
    loss.backward()
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0
    assert h.grad.abs().sum() > 0


def test_first_training_batch_initialises_codebook_from_data():
    vq = make(num_codes=8, code_dim=4, cosine=False).train()
    h = torch.randn(1, 50, 4)
    vq(h)
    for code in vq.codebook.detach():
        assert (h[0] - code).abs().sum(1).min() < 1e-6


def test_dead_code_is_reseeded_from_encoder_outputs():
    vq = make(num_codes=4, code_dim=2, cosine=False, data_init=False, dead_after=3).train()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]]))
    h = torch.rand(1, 30, 2) * 0.5  # near codes 0..2, never near the far code 3
    for _ in range(2):
        vq(h)
    assert torch.equal(vq.codebook[3].detach(), torch.tensor([100.0, 100.0]))  # not dead yet
    vq(h)  # third unused step: code 3 is re-seeded
    reseeded = vq.codebook[3].detach()
    assert (h[0] - reseeded).abs().sum(1).min() < 1e-6
    assert vq.steps_unused[3] == 0


def test_eval_mode_never_changes_the_codebook():
    vq = make(num_codes=4, code_dim=2, cosine=False, dead_after=1).eval()
    before = vq.codebook.detach().clone()
    vq(torch.randn(1, 10, 2))
    vq(torch.randn(1, 10, 2))
    assert torch.equal(before, vq.codebook.detach())


def test_ema_update_matches_hand_computation():
    decay = 0.9
    vq = make(num_codes=3, code_dim=2, cosine=False, use_ema=True, ema_decay=decay,
              data_init=False, dead_after=1000).train()
    with torch.no_grad():
        start = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
        vq.codebook.copy_(start)
        vq.ema_code_sum.copy_(start)
        vq.ema_cluster_size.fill_(1.0)
    h = torch.tensor([[[0.1, 0.0], [0.0, 0.2], [0.9, 1.1], [1.2, 0.8], [1.0, 1.0]]])
    _, loss, indices, _ = vq(h)
    assert indices.tolist() == [[0, 0, 1, 1, 1]]
    size = decay * 1.0 + (1 - decay) * torch.tensor([2.0, 3.0, 0.0])
    code_sum = decay * start + (1 - decay) * torch.stack(
        [h[0, :2].sum(0), h[0, 2:].sum(0), torch.zeros(2)])
    n, eps = size.sum(), 1e-5
    smoothed = (size + eps) / (n + 3 * eps) * n
    assert torch.allclose(vq.codebook, code_sum / smoothed[:, None], atol=1e-6)
    assert not any(p is vq.codebook for p in vq.parameters())  # a buffer, not a Parameter


def test_perplexity_and_usage_stats():
    vq = make(num_codes=4, code_dim=2, cosine=False).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]))
    h = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.1, 0.0], [9.9, 0.1]]])  # codes 0 and 1, twice each
    _, _, _, stats = vq(h)
    assert torch.isclose(stats["perplexity"], torch.tensor(2.0))
    assert torch.isclose(stats["codes_used"], torch.tensor(0.5))


def test_eval_output_is_the_lookup_of_its_tokens():
    """What the decoder sees in eval is the (normalised) code vector of each chosen token."""
    vq = make(num_codes=16, code_dim=8).train()
    h = torch.randn(2, 40, 8)
    vq(h)  # the data initialisation
    quantized, _, indices, _ = vq.eval()(h)
    assert torch.allclose(quantized, vq.lookup(indices), atol=1e-6)
    assert torch.allclose(vq.lookup(indices), F.normalize(vq.codebook.detach(), dim=-1)[indices])
