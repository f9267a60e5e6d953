"""The soft-decoding rows beside the latent rows, from the shipped models' evaluate.py JSONs of finetune3.

    python docs/experiments/soft-decoding/table.py > docs/experiments/soft-decoding/table.md
"""
import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "finetune3"
SETS = {"validation": "validation-finetune3.json", "test": "test-finetune3.json", "unseen SoundFont": "transfer-finetune3.json"}
ROWS = {"tokens": "BERT's tokens", "expected": "soft decoding", "latent": "predicted latents (Eq. 11)",
        "refined": "tokens, refined", "expected_refined": "soft, refined", "latent_refined": "latents, refined"}

for name, file in SETS.items():
    separation = json.loads((FOLDER / file).read_text())["separation"]
    stems = list(separation)
    print(f"\n{name}: SI-SDRi (dB), mean +- 95% interval\n")
    print("| | " + " | ".join(f"{stem} ({separation[stem]['chunks']})" for stem in stems) + " |")
    print("| --- " * (len(stems) + 1) + "|")
    for key, label in ROWS.items():
        cells = [separation[stem]["metrics"][key] for stem in stems]
        print(f"| {label} | " + " | ".join(f"{m['si_sdri_db']:+.2f} +- {m['si_sdri_db_ci95']:.2f}" for m in cells) + " |")
