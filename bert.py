"""A small BERT (Transformer encoder) over VQ-VAE tokens, that knows the codebook's geometry.

Papers: "Attention Is All You Need", Vaswani et al., 2017 (arXiv:1706.03762); "BERT", Devlin et
al., 2019 (arXiv:1810.04805); pre-LayerNorm blocks as in GPT-2 / "On Layer Normalization in the
Transformer Architecture", Xiong et al., 2020 (arXiv:2002.04745). Frozen codebook vectors as input
embeddings follow "VampNet", Garcia et al., 2023 (arXiv:2307.04686). The file's layout follows
nanoGPT's model.py.

Departures from a text BERT, each because a plain one learned nothing here (it predicted the
silent code everywhere; README, "Why a plain BERT fails on audio codes"; docs/experiments/design-choices.md):
- **Code embeddings from the codebook**: a code's embedding is a learned projection of its
  frozen, L2-normalised VQ-VAE code vector, so codes that sound alike start alike.
- **Tied cosine head**: every code is scored by the cosine between a projection of the hidden
  state and that same code vector, times a learned scale that starts at 50 (the codebook is
  crowded: a scale of 10 cannot even express the unigram distribution).
- **Continuous latents, frame-local** (`features`, (B, L, D)): the mixture's pre-quantisation
  latents are added at the mixture positions *and* at stem position s from mixture frame s; in
  single-source sequences each visible position gets its own.
- **A local convolution before attention** (depthwise, kernel 5): at 1 ms per token a masked code
  is mostly a function of its neighbours, which attention with absolute positions learned too
  slowly for a CPU budget.
- **A latent head** (Eq. 11, `latent_weight`): beside the cosine heads, a linear head turns the
  hidden state into a unit vector z in code space, where the decoder's inputs (L2-normalised code
  vectors) live; at the masked stem frames of separation items it is pulled towards the stem's own
  L2-normalised pre-quantisation latent h by lambda * (1 - cos(z, h)). Decoding z (`infer.py
  separate --decode latent`) needs no code to be chosen. It has its own weights: pulling the cosine
  head's direction towards h instead (the first version) left both the codes and the latents worse
  (docs/experiments/latent-head.md, docs/experiments/separation-training.md).

Shapes: B batch, L sequence length, E model width, H heads, D code dim, K codebook size.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from masking import IGNORE, Vocabulary


@dataclass
class BERTConfig:
    num_codes: int = 512        # K: codebook size of the VQ-VAE the model reads
    code_dim: int = 64          # D: its code vector size
    num_special: int = 7        # PAD, MASK, SEP and one separator per stem (masking.Vocabulary)
    max_positions: int = 512    # longest sequence (the context, in tokens)
    num_layers: int = 4
    num_heads: int = 4          # H
    width: int = 256            # E
    logit_scale: float = 50.0   # initial scale of the cosine head
    local_kernel: int = 5       # width of the local convolution before attention
    latent_weight: float = 10.0  # lambda of Eq. 11: the latent loss beside the cross-entropy (0 = codes only)


def attention(q, k, v, attend=None):
    """Scaled dot-product attention, written out (Vaswani et al. 2017, Eq. 1):
    softmax(Q K^T / sqrt(d) + mask) V, the mask -inf where a key may not be attended.
    q, k, v: (B, H, L, d); attend: (B, 1, 1, L) bool, True where a key is a real token, or None."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, L, L) every query against every key
    if attend is not None:
        scores = scores.masked_fill(~attend, float("-inf"))  # padding keys get no attention
    return torch.softmax(scores, dim=-1) @ v  # (B, H, L, d)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a padding mask. `fused`: PyTorch's scaled_dot_product_attention,
    the same computation as `attention` in one kernel that never stores the (L, L) scores (faster; the
    two are tested equal, as nanoGPT keeps both)."""
    fused = True

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)

    def forward(self, x, attend, keep=slice(None)):
        """x (B, L, E) -> (B, L', E): the outputs of the queries at positions `keep` (L' of them),
        each attending to every key."""
        B, L, E = x.shape
        q, k, v = self.qkv(x).split(E, dim=2)  # 3 x (B, L, E)
        q = q[:, keep]  # (B, L', E)
        q, k, v = (t.view(B, -1, self.num_heads, E // self.num_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L or L', E/H)
        # attend: (B, 1, 1, L) True where a key is a real token
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend) if self.fused else attention(q, k, v, attend)
        return self.out(y.transpose(1, 2).reshape(B, -1, E))  # (B, L', E)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)), GELU."""

    def __init__(self, config):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width)
        self.attention = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, 4 * config.width), nn.GELU(),
                                 nn.Linear(4 * config.width, config.width))

    def forward(self, x, attend, keep=slice(None)):
        x = x[:, keep] + self.attention(self.norm1(x), attend, keep)  # (B, L', E)
        return x + self.mlp(self.norm2(x))


class AudioBERT(nn.Module):
    def __init__(self, config, codebook):
        """codebook: (K, D) the VQ-VAE's code vectors as its decoder uses them
        (`quantizer.normalized_codebook()`), frozen here."""
        super().__init__()
        self.config = config
        K, D, E = config.num_codes, config.code_dim, config.width
        if codebook.shape != (K, D):
            raise ValueError(f"codebook shape {tuple(codebook.shape)} does not match {(K, D)} (K={K}, D={D})")
        self.register_buffer("codebook", F.normalize(codebook.detach().float(), dim=-1))  # (K, D), frozen
        self.code_projection = nn.Linear(D, E)  # code vector -> E (the code embeddings)
        self.mask_embedding = nn.Parameter(torch.zeros(E))
        self.head = nn.Linear(E, D)  # hidden state -> a direction in code space (the cosine head)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale)))
        self.special_embedding = nn.Embedding(config.num_special, E)  # PAD, MASK, SEP, stems
        self.feature_projection = nn.Linear(D, E)  # continuous latents -> E
        self.position_embedding = nn.Embedding(config.max_positions, E)
        self.segment_embedding = nn.Embedding(3, E)  # CONTEXT, SEPARATOR, TARGET
        k = config.local_kernel
        self.local = nn.Sequential(nn.Conv1d(E, E, k, padding=k // 2, groups=E), nn.GELU(),
                                   nn.Conv1d(E, E, 1))  # depthwise, then pointwise
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(E)
        self.latent_head = nn.Linear(E, D)  # hidden state -> the predicted latent (Eq. 11)
        self.apply(self.init_weights)
        nn.init.normal_(self.mask_embedding, std=0.02)

    @staticmethod
    def init_weights(module):
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def embed_tokens(self, tokens):
        """(B, L) ids -> (B, L, E): a code's projected code vector, the MASK embedding, or the special
        embedding of PAD, SEP and the stem separators.

        One table of K + 2 rows (the K projected codes, MASK, a zero row for the special tokens, whose
        embedding is added after)."""
        K, E, mask = self.config.num_codes, self.config.width, Vocabulary(self.config.num_codes).mask
        table = torch.cat([self.code_projection(self.codebook), self.mask_embedding[None],
                           self.mask_embedding.new_zeros(1, E)])  # (K + 2, E)
        rows = torch.where(tokens < K, tokens, torch.where(tokens == mask, K, K + 1))  # (B, L)
        special = (tokens >= K) & (tokens != mask)  # PAD, SEP, a stem separator
        return F.embedding(rows, table) + special[..., None] * self.special_embedding((tokens - K).clamp(min=0))

    def forward(self, tokens, segments, positions, features=None, padding=None, targets=None, latents=None):
        """tokens: (B, L) long; segments, positions: (B, L) long; features: (B, L, D) latents or
        None (zeros where a position has none); padding: (B, L) bool, True at PAD positions;
        targets: (B, L) code ids, -100 where nothing is predicted; latents: (B, L, D) the true
        normalised latents of Eq. 11 at the frames whose latent is predicted (the masked stem frames
        of separation items), zeros elsewhere.

        Returns (output, losses), as every model here. Without targets: ((logits (B, L, K), the
        predicted unit latents z of Eq. 11 (B, L, D)), None). With them: (None, losses), `loss` =
        `cross_entropy` (the mean over the targeted frames, `code_loss`) + latent_weight * `latent`
        (Eq. 11); the logits of every frame are not computed in training.
        """
        x = self.hidden_states(tokens, segments, positions, features, padding)  # (B, L, E)
        if targets is not None:
            cross_entropy = self.code_loss(x, targets)
            latent = self.latent_loss(x, targets, latents)
            return None, {"loss": cross_entropy + self.config.latent_weight * latent,
                          "cross_entropy": cross_entropy, "latent": latent}
        return (self.logits(x), self.latent(x)), None

    def hidden_states(self, tokens, segments, positions, features=None, padding=None, keep=slice(None)):
        """The Transformer's output, (B, L, E), before any head (the inputs are those of `forward`).

        keep: the positions whose output is wanted (separation needs only the stem half): the last
        block computes its queries and MLP there alone, 12% less work, the same values (tested)."""
        L = tokens.shape[1]
        if L > self.config.max_positions:
            raise ValueError(f"sequence of {L} tokens is longer than max_positions {self.config.max_positions}")
        x = self.embed_tokens(tokens) + self.position_embedding(positions) + self.segment_embedding(segments)  # (B, L, E)
        if features is not None:
            x = x + self.feature_projection(features.to(x.dtype))  # frame-local conditioning
        if padding is not None:
            x = x.masked_fill(padding[..., None], 0.0)  # padding neither attends nor leaks through the conv
        x = x + self.local(x.transpose(1, 2)).transpose(1, 2)  # (B, L, E) neighbours, directly
        attend = None if padding is None else ~padding[:, None, None, :]  # (B, 1, 1, L)
        for i, block in enumerate(self.blocks):
            x = block(x, attend, keep if i == len(self.blocks) - 1 else slice(None))
        return self.norm(x)  # (B, L, E), or (B, L', E) with `keep`

    def logits(self, x):
        """The tied cosine head: (..., E) hidden states -> scale * cos(d, e_i) for every code i, (..., K),
        d the head's unit direction in code space. In float32 even under autocast: bf16 cannot tell
        cosines 0.005 apart in a crowded codebook."""
        direction = F.normalize(self.head(x).float(), dim=-1)  # (..., D)
        with torch.autocast(direction.device.type, enabled=False):
            return self.log_logit_scale.exp() * direction @ self.codebook.t()  # (..., K)

    def latent(self, x):
        """The latent head: (..., E) hidden states -> (..., D) unit vectors z in code space, float32."""
        return F.normalize(self.latent_head(x).float(), dim=-1)

    def code_loss(self, x, targets):
        """Mean cross-entropy over the targeted frames of (B, L) `targets`, scoring those frames only:
        training targets few of them, so the logits of every frame, (B, L, K), would be mostly thrown
        away. Equal to the cross-entropy of the full logits (tested); NaN when nothing is targeted."""
        picked = targets != IGNORE  # (B, L)
        return F.cross_entropy(self.logits(x[picked]), targets[picked])

    def latent_loss(self, x, targets, latents):
        """Eq. 11: mean of 1 - cos(z, h) over the frames whose code is targeted and whose true latent
        h is given (non-zero in `latents`); 0 where there are none."""
        at = None if latents is None else (targets != IGNORE) & (latents != 0).any(dim=-1)  # (B, L)
        if at is None or not at.any():
            return x.new_zeros((), dtype=torch.float32)
        h = F.normalize(latents[at].float(), dim=-1)  # (n, D)
        return (1 - (self.latent(x[at]) * h).sum(dim=-1)).mean()
