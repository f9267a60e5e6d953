"""Bring a BERT checkpoint of an earlier commit to the layout of the separate latent head (Eq. 11).

    python docs/experiments/separation-training/convert.py IN.pt OUT.pt

- A checkpoint whose Eq. 11 latent was level 1's cosine-head direction (before this change, e.g.
  the shipped pretrained/bert.pt) gets a latent head that is a copy of that head: z = normalize(W x + b)
  with the same W and b, so every output it gives is the one it gave before.
- A checkpoint of the probes on this page drops their config fields (latent_skip, latent_head,
  block_kernel), which were off or, for latent_head, are now always on.
Run from the repository root.
"""
import sys

sys.path.insert(0, ".")
from checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

PROBE_FIELDS = ("latent_skip", "latent_head", "block_kernel")

checkpoint = load_checkpoint(sys.argv[1], "bert")
config, state = checkpoint["config"], checkpoint["model"]
if config.get("latent_skip") or config.get("block_kernel"):
    sys.exit(f"{sys.argv[1]}: a probe this code no longer has (latent_skip or block_kernel)")
if "latent_head.weight" not in state:  # the latent was level 1's direction: copy that head
    state["latent_head.weight"] = state["levels.0.head.weight"].clone()
    state["latent_head.bias"] = state["levels.0.head.bias"].clone()
for name in PROBE_FIELDS:
    config.pop(name, None)
for key in ("optimizer", "scaler"):  # the optimizer state no longer matches the parameters
    checkpoint.pop(key, None)
save_checkpoint(sys.argv[2], checkpoint)
print(f"{sys.argv[2]}: written")
