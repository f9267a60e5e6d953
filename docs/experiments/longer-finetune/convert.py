"""Drop the BERT config fields that the commit adding this page removed, from a checkpoint of before it.

    python docs/experiments/longer-finetune/convert.py IN.pt OUT.pt

`dropout` (0 in every recipe) and `mixture_segment` (the long-context recipe's, which lost;
docs/experiments/which-source.md) left BERTConfig. A checkpoint that used either is refused; one
that did not keeps its weights exactly, so every output is the one it gave before. The optimizer
state goes too (pretrained/ keeps weights only). Run from the repository root.
"""
import sys

sys.path.insert(0, ".")
from checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

checkpoint = load_checkpoint(sys.argv[1], "bert")
config = checkpoint["config"]
if config.pop("dropout", 0.0) != 0.0 or config.pop("mixture_segment", False):
    sys.exit(f"{sys.argv[1]}: trained with dropout or mixture_segment, which this code no longer has")
for key in ("optimizer", "scaler"):
    checkpoint.pop(key, None)
save_checkpoint(sys.argv[2], checkpoint)
print(f"{sys.argv[1]} -> {sys.argv[2]}: config without dropout and mixture_segment")
