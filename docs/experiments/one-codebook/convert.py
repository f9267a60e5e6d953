"""Convert checkpoints of format 2 (frames of Q codes, commits 5496f98 to fe96be8) with Q = 1 to format 3
(one code per frame): the same weights under the names of the single-codebook modules.

    PYTHONPATH=. python docs/experiments/one-codebook/convert.py OLD_VQVAE NEW_VQVAE [OLD_BERT NEW_BERT]

VQ-VAE: the config loses `codebooks` and `quantizer_dropout`; `quantizer.levels.0.*` becomes `quantizer.*`.
BERT: the config loses `codebooks`; `levels.0.*` becomes `*` (the code projection, MASK embedding, cosine head
and its scale); the frozen codebook (1, K, D) becomes (K, D); the fingerprint of its VQ-VAE is recomputed
on the converted VQ-VAE (it names the weights, `tokens.vqvae_fingerprint`), after checking that the old one
matched. Every other field (optimizer state, step, random states) is kept: the parameters keep their order.
Run from the repository root.
"""
import hashlib
import sys

import torch

from checkpoint import FORMAT, save_checkpoint
from tokens import vqvae_fingerprint
from vqvae import VQVAE, VQVAEConfig


def fingerprint_of(state):
    """tokens.vqvae_fingerprint of a state_dict as it was saved."""
    digest = hashlib.sha1()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def renamed(state, old, new):
    return {(new + key[len(old):] if key.startswith(old) else key): value for key, value in state.items()}


def load(path, kind):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["kind"] == kind and checkpoint.get("format") == 2, f"{path}: not a format 2 {kind} checkpoint"
    assert checkpoint["config"].pop("codebooks") == 1, f"{path}: frames of several codes cannot be converted"
    return checkpoint


def main(old_vqvae, new_vqvae, old_bert=None, new_bert=None):
    vqvae = load(old_vqvae, "vqvae")
    old_fingerprint = fingerprint_of(vqvae["model"])
    assert vqvae["config"].pop("quantizer_dropout") == 0.0
    vqvae["model"] = renamed(vqvae["model"], "quantizer.levels.0.", "quantizer.")
    model = VQVAE(VQVAEConfig(**vqvae["config"]))
    model.load_state_dict(vqvae["model"])  # strict: every name matches
    save_checkpoint(new_vqvae, {**vqvae, "format": FORMAT})
    print(f"{old_vqvae} -> {new_vqvae}: fingerprint {old_fingerprint} -> {vqvae_fingerprint(model)}")
    if old_bert:
        bert = load(old_bert, "bert")
        assert bert["vqvae_fingerprint"] == old_fingerprint, f"{old_bert}: trained on another VQ-VAE"
        state = renamed(bert["model"], "levels.0.", "")
        state["codebook"] = state["codebook"][0]  # (1, K, D) -> (K, D)
        save_checkpoint(new_bert, {**bert, "model": state, "vqvae_fingerprint": vqvae_fingerprint(model), "format": FORMAT})
        print(f"{old_bert} -> {new_bert}")


if __name__ == "__main__":
    main(*sys.argv[1:])
