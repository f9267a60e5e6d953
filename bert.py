"""A small BERT (Transformer encoder) over VQ-VAE tokens, that knows the codebook's geometry.

Papers: "Attention Is All You Need", Vaswani et al., 2017 (arXiv:1706.03762); "BERT", Devlin et
al., 2019 (arXiv:1810.04805); pre-LayerNorm blocks as in GPT-2 / "On Layer Normalization in the
Transformer Architecture", Xiong et al., 2020 (arXiv:2002.04745). Frozen codebook vectors as input
embeddings follow "VampNet", Garcia et al., 2023 (arXiv:2307.04686). Read alongside nanoGPT's
model.py, which this file's layout follows.

Deliberate departures from a text BERT, each because a plain one learned nothing here (the
prototype predicted the silent code everywhere, see README "Why BERT on audio tokens is hard"):
- **Code embeddings from the codebook.** A code token's embedding is a learned projection of its
  frozen, L2-normalised VQ-VAE code vector, so codes that sound alike start alike.
- **Tied cosine head.** The output scores every code by the cosine between a projection of the
  hidden state and that same code vector (the head is tied to the input side through the
  codebook), times a learned logit scale that starts at 50: the codebook is crowded (many code
  pairs have cosine > 0.5), and a scale of 10 cannot even express the unigram distribution.
- **A per-code output bias** (`code_bias`, `train.py bert --code-bias`), as BERT's own output
  layer has: a cosine alone has no way to say "code i is common". Off by default: inside a 1 s
  gap a cosine-only BERT scores the true codes worse than the unigram guess does, and with the
  bias it still did, within the measurement's interval (README, Results, "Decoding, soft
  separation and what BERT knows inside a gap").
- **Continuous mixture features, frame-local.** Beside tokens, the model takes `features`
  (B, L, D): pre-quantisation encoder latents (the mixture's in separation; in single-source
  sequences each visible position's own, none where a token is to be predicted). They are
  added at the mixture positions (richer than its token ids) *and* at stem position s from mixture frame s, so the
  stem prediction at frame s sees the mixture at frame s directly, not only through attention.
- **A local convolution before attention.** A depthwise-separable conv (kernel 5) over the embedded
  sequence gives every position its neighbours directly. At 1 ms per token, a masked code is
  mostly a function of the latents on either side of it (the nearest code to the sum of its two
  neighbours' latents is right 19% of the time, 2.3x the unigram guess); attention
  with absolute positions learned that relation too slowly for a CPU budget.
- **Mixtures told from stems** (`mixture_segment`, `train.py bert --mixture-segment`): a
  single-source mixture sequence is in segment CONTEXT (the segment of Eq. 8's mixture half), a
  stem's in TARGET, so inside a long gap, where the context says little, the model can fall back
  on a mixture's codes instead of a stem's silences (older models: every single-source item TARGET).
Only codes are predicted: logits are (B, L, K), special tokens are never an output.

Frames of Q codes (residual quantization, Eq. 9; as in VampNet and SoundStorm, Borsos et al.,
2023, arXiv:2305.09636): tokens (B, L, Q), a frame's input embedding is the sum over levels of
each level's projected code vector (a level's own MASK embedding where it is masked), and Q tied
cosine heads, one per level's codebook, give logits (B, L, Q, K). Level 1 uses the very modules of
the single-codebook model (same names), and levels 2..Q add `finer_levels`, so with Q = 1 the
model, its checkpoints and its outputs are what they were. Positions, segments and features stay
per frame.

Shapes: B batch, L sequence length, E model width, H heads, D code dim, K codebook size, Q levels.
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
    dropout: float = 0.0
    logit_scale: float = 50.0   # initial scale of the cosine head
    local_kernel: int = 5       # width of the local convolution before attention (0 = none)
    codebooks: int = 1          # Q: codes per frame (the VQ-VAE's residual levels)
    stem_latents: bool = True   # its stems' single-source items showed their own latents (False: tokens only)
    code_bias: bool = False     # a learned bias per code (and level) added to the cosine logits (older models: none)
    mixture_segment: bool = False  # single-source mixtures in segment CONTEXT, stems in TARGET (older models: all TARGET)


class SelfAttention(nn.Module):
    """Multi-head self-attention through F.scaled_dot_product_attention, with a padding mask."""

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.dropout = config.dropout

    def forward(self, x, attend):
        B, L, E = x.shape
        q, k, v = self.qkv(x).split(E, dim=2)  # 3 x (B, L, E)
        q, k, v = (t.view(B, L, self.num_heads, E // self.num_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, L, E/H)
        # attend: (B, 1, 1, L) True where a key is a real token; padding keys get no attention
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, L, E/H)
        return self.out(y.transpose(1, 2).reshape(B, L, E))  # (B, L, E)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attention(LN(x)), then x + MLP(LN(x)), GELU."""

    def __init__(self, config):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.width)
        self.attention = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, 4 * config.width), nn.GELU(),
                                 nn.Linear(4 * config.width, config.width), nn.Dropout(config.dropout))

    def forward(self, x, attend):
        x = x + self.attention(self.norm1(x), attend)
        return x + self.mlp(self.norm2(x))


class CodeLevel(nn.Module):
    """What a level q > 1 adds: its code projection, its MASK embedding, its head and its scale."""

    def __init__(self, config):
        super().__init__()
        self.code_projection = nn.Linear(config.code_dim, config.width)
        self.mask_embedding = nn.Parameter(torch.zeros(config.width))
        self.head = nn.Linear(config.width, config.code_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale)))


class AudioBERT(nn.Module):
    def __init__(self, config, codebook):
        """codebook: (K, D) the VQ-VAE's code vectors as its decoder uses them (frozen here);
        (Q, K, D) with Q > 1 levels, each level's code vectors (`quantizer.code_vectors()`)."""
        super().__init__()
        self.config = config
        K, D, E, Q = config.num_codes, config.code_dim, config.width, config.codebooks
        expected = (K, D) if Q == 1 else (Q, K, D)
        if codebook.shape != expected:
            raise ValueError(f"codebook shape {tuple(codebook.shape)} does not match {expected} (Q={Q}, K={K}, D={D})")
        self.register_buffer("codebook", F.normalize(codebook.detach().float(), dim=-1))  # (K, D), frozen
        self.code_projection = nn.Linear(D, E)  # code id -> E through its code vector
        self.special_embedding = nn.Embedding(config.num_special, E)  # PAD, MASK, SEP, stems
        self.feature_projection = nn.Linear(D, E)  # continuous mixture latents -> E
        self.position_embedding = nn.Embedding(config.max_positions, E)
        self.segment_embedding = nn.Embedding(3, E)  # CONTEXT, SEPARATOR, TARGET
        k = config.local_kernel
        self.local = nn.Sequential(nn.Conv1d(E, E, k, padding=k // 2, groups=E), nn.GELU(),
                                   nn.Conv1d(E, E, 1)) if k else None  # depthwise, then pointwise
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.norm = nn.LayerNorm(E)
        self.head = nn.Linear(E, D)  # hidden state -> a direction in code space
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.logit_scale)))
        self.finer_levels = nn.ModuleList(CodeLevel(config) for _ in range(Q - 1))  # empty for Q = 1
        self.code_bias = nn.Parameter(torch.zeros(Q, K)) if config.code_bias else None  # (Q, K), starts at 0
        self.apply(self.init_weights)
        for level in self.finer_levels:
            nn.init.normal_(level.mask_embedding, std=0.02)

    @staticmethod
    def init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, nn.Conv1d):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def embed_tokens(self, tokens):
        """(B, L) ids -> (B, L, E): codes through their code vectors, specials from a table.
        (B, L, Q) frames: the sum over levels; level 1 carries the specials, as with one codebook."""
        K = self.config.num_codes
        if tokens.dim() == 3:
            x = self.embed_tokens(tokens[..., 0])  # (B, L, E) level 1
            return x + self.embed_finer_levels(tokens[..., 1:]).to(x.dtype)  # PAD, SEP, stems count once, at level 1
        is_code = tokens < K
        codebook = self.codebook if self.codebook.dim() == 2 else self.codebook[0]  # (K, D) level 1
        code_vectors = codebook[tokens.clamp(max=K - 1)]  # (B, L, D)
        codes = self.code_projection(code_vectors)  # (B, L, E)
        specials = self.special_embedding((tokens - K).clamp(min=0))  # (B, L, E)
        return torch.where(is_code[..., None], codes, specials)

    def embed_finer_levels(self, ids):
        """(B, L, Q - 1) ids of levels 2..Q -> (B, L, E): the sum over those levels of each one's
        projected code vector, its MASK embedding where it is masked, nothing for PAD, SEP, stems.

        Each level's rows form one table of K + 2 rows (its K projected codes, MASK, zero), and
        one `embedding_bag` sums a frame's rows without building the (B, L, Q - 1, E) tensor:
        the same sum as projecting each level's code vectors, at the memory traffic of one level.
        """
        K = self.config.num_codes
        tables = [torch.cat([level.code_projection(self.codebook[q]), level.mask_embedding[None],
                             level.mask_embedding.new_zeros(1, self.config.width)])
                  for q, level in enumerate(self.finer_levels, start=1)]  # (Q - 1) x (K + 2, E)
        rows = torch.where(ids < K, ids, torch.where(ids == Vocabulary(K).mask, K, K + 1))  # (B, L, Q - 1)
        rows = rows + (K + 2) * torch.arange(ids.shape[-1], device=ids.device)  # into the stacked tables
        frames = F.embedding_bag(rows.reshape(-1, ids.shape[-1]), torch.cat(tables), mode="sum")  # (B * L, E)
        return frames.view(*ids.shape[:2], -1)

    def forward(self, tokens, segments, positions, features=None, padding=None, targets=None):
        """tokens, segments, positions: (B, L) long (tokens (B, L, Q) with Q > 1 levels); features:
        (B, L, D) latents or None: the mixture's in separation, the source's own at visible
        positions in single-source sequences (zeros where a position has none); padding: (B, L)
        bool, True at PAD positions; targets: code ids shaped as tokens, -100 where nothing is
        predicted.

        Returns (logits (B, L, K), or (B, L, Q, K) with Q > 1, loss): loss is the mean
        cross-entropy over the targeted positions (frames and levels), None without targets.
        With Q > 1 and targets (training) only the targeted pairs are scored and logits is None.
        """
        B, L = tokens.shape[:2]
        if L > self.config.max_positions:
            raise ValueError(f"sequence of {L} tokens is longer than max_positions {self.config.max_positions}")
        x = self.embed_tokens(tokens) + self.position_embedding(positions) + self.segment_embedding(segments)  # (B, L, E)
        if features is not None:
            x = x + self.feature_projection(features.to(x.dtype))  # frame-local conditioning
        if padding is not None:
            x = x.masked_fill(padding[..., None], 0.0)  # padding neither attends nor leaks through the conv
        if self.local is not None:
            x = x + self.local(x.transpose(1, 2)).transpose(1, 2)  # (B, L, E) neighbours, directly
        attend = None if padding is None else ~padding[:, None, None, :]  # (B, 1, 1, L)
        for block in self.blocks:
            x = block(x, attend)
        x = self.norm(x)
        if tokens.dim() == 3 and targets is not None:
            return None, self.level_loss(x, targets)
        if tokens.dim() == 3:
            logits = torch.stack([self.cosine_logits(x, head, scale, self.codebook[q], bias) for q, (head, scale, bias) in
                                  enumerate(self.heads())], dim=2)  # (B, L, Q, K) one tied head per level
        else:
            head, scale, bias = self.heads()[0]
            logits = self.cosine_logits(x, head, scale, self.codebook, bias)  # (B, L, K)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(targets.numel(), -1), targets.reshape(-1), ignore_index=IGNORE)
        return logits, loss

    def level_loss(self, x, targets):
        """Mean cross-entropy over the targeted (frame, level) pairs of (B, L, Q) `targets`, scoring
        each pair with its own level's head only. Training targets one level per item (level
        masking), so the logits of all Q levels at all L frames, (B, L, Q, K), would be mostly
        thrown away: at Q = 8 they cost more than the Transformer (bench.py). Equal to the
        cross-entropy of the full logits (tested)."""
        picked = targets != IGNORE  # (B, L, Q)
        total, count = x.new_zeros((), dtype=torch.float32), picked.sum()
        for q, (head, scale, bias) in enumerate(self.heads()):
            at_level = picked[..., q]  # (B, L)
            if at_level.any():
                logits = self.cosine_logits(x[at_level], head, scale, self.codebook[q], bias)  # (n_q, K)
                total = total + F.cross_entropy(logits, targets[..., q][at_level], reduction="sum")
        return total / count  # NaN when nothing is targeted, as the mean over no positions

    def heads(self):
        """(head, log scale, code bias or None) of every level, level 1 first."""
        pairs = [(self.head, self.log_logit_scale)] + [(level.head, level.log_logit_scale) for level in self.finer_levels]
        return [(head, scale, None if self.code_bias is None else self.code_bias[q]) for q, (head, scale) in enumerate(pairs)]

    @staticmethod
    def cosine_logits(x, head, log_scale, codebook, bias=None):
        """The tied cosine head: scale * cos(head(x), e_i) (+ bias_i) for every code i of `codebook` (K, D)."""
        direction = F.normalize(head(x).float(), dim=-1)  # (B, L, D)
        logits = log_scale.exp() * direction @ codebook.t()  # (B, L, K) scaled cosine
        return logits if bias is None else logits + bias.float()
