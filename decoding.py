"""Iterative, confidence-based decoding of masked tokens (MaskGIT).

Paper: "MaskGIT: Masked Generative Image Transformer", Chang et al., 2022 (arXiv:2202.04200).
With `steps = 1` this is the one-shot argmax of the original BERT description: every masked
position takes its most likely code at once.

With N steps: predict every masked position; keep the most confident predictions and re-mask
the rest, so that after step t a share cos(pi/2 * t / N) of the originally masked positions is
still masked (cosine schedule, 0 after the last step); repeat. A position that was not masked at
the start is never changed.

`record=True` also returns, for every position, the latent head's z at the step that revealed it
(Eq. 11, the predicted latent; the given code's vector where the token was given). Soft decoding
(the code vectors expected under BERT's distribution) was measured beside it, tied it, and left
the code (docs/experiments/soft-decoding.md).

Shapes: B batch, L sequence length, K codebook size, D code dim.
"""
import math

import torch


@torch.no_grad()
def maskgit_fill(model, batch, mask_id, steps=1, temperature=0.0, generator=None, record=False):
    """Fill the MASK tokens of batch["tokens"] (B, L); returns new tokens (and with `record`, their
    predicted latents (B, L, D)).

    `batch` holds the inputs of `AudioBERT.forward` (tokens, segments, positions, and optionally
    features and padding). temperature 0 takes the argmax; > 0 samples from softmax(logits / T),
    and confidence is the probability of the sampled code.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    tokens = batch["tokens"].clone()
    inputs = {key: value for key, value in batch.items() if key != "tokens"}
    K = model.config.num_codes
    if record:  # given tokens: their code vector; the rest filled as they are revealed
        latents_out = model.codebook[tokens.clamp(max=K - 1)].masked_fill((tokens >= K)[..., None], 0.0)  # (B, L, D)
    total = (tokens == mask_id).sum(dim=1)  # (B,) masked at the start
    for step in range(1, steps + 1):
        still_masked = tokens == mask_id  # (B, L)
        if not still_masked.any():
            break
        (logits, latents), _ = model(tokens, **inputs)  # (B, L, K), (B, L, D)
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            guess = torch.multinomial(probs.view(-1, K), 1, generator=generator).view(still_masked.shape)
        else:
            probs = torch.softmax(logits, dim=-1)
            guess = probs.argmax(dim=-1)  # (B, L)
        confidence = probs.gather(-1, guess[..., None])[..., 0]  # (B, L)
        confidence = confidence.masked_fill(~still_masked, -math.inf)  # only masked positions compete
        remaining = torch.floor(total * math.cos(math.pi / 2 * step / steps)).long()  # (B,) stay masked
        if step == steps:
            remaining = torch.zeros_like(remaining)
        reveal = still_masked.sum(dim=1) - remaining  # (B,) how many to unmask now
        order = confidence.argsort(dim=1, descending=True).argsort(dim=1)  # rank by confidence
        chosen = (order < reveal[:, None]) & still_masked  # (B, L)
        if record:
            latents_out[chosen] = latents[chosen].float()
        tokens = torch.where(chosen, guess, tokens)
    return (tokens, latents_out) if record else tokens
