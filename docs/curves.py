"""The reference training curves of the default commands, for the README: is my run on track?

    python docs/curves.py [VQVAE_LOG BERT_LOG] [-o docs/training-curves.png]

Reads the `*-log.csv` files that `train.py` writes and draws the training losses (every 50 steps)
and the validation figures (every 250) against the step. The defaults are the logs of the default
commands, `python train.py vqvae --k 4` (docs/experiments/minimal-codebase/vqvae-log.csv) and
`python train.py bert` (docs/experiments/one-codebook/default-bert-log.csv, today's code, seed 0, 2026-12-07);
pass your own `runs/vqvae-log.csv runs/bert-log.csv` to draw yours the same way.
"""
import argparse
import csv
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parent / "experiments"


def fail(message):
    """One line on stderr, exit code 2, as the project's commands do."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def columns(path, wanted):
    """{column: [(step, value)]} of a train.py log, empty cells left out; exit 2 with one line when the
    file is missing or lacks a `wanted` column."""
    found = {}
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                for name, value in row.items():
                    if name != "step" and value:
                        found.setdefault(name, []).append((int(row["step"]), float(value)))
    except (OSError, ValueError, KeyError) as error:
        fail(f"{path}: not a readable train.py log ({error})")
    if missing := [name for name in wanted if name not in found]:
        fail(f"{path}: no {', '.join(missing)} column; expected a {'VQ-VAE' if 'val_si_sdr_db' in wanted else 'BERT'} "
                 f"log of train.py (runs/vqvae-log.csv, then runs/bert-log.csv)")
    return found


def main():
    parser = argparse.ArgumentParser(description="Plot the training curves of train.py logs.")
    parser.add_argument("logs", nargs="*", default=[EXPERIMENTS / "minimal-codebase" / "vqvae-log.csv",
                                                  EXPERIMENTS / "one-codebook" / "default-bert-log.csv"],
                        help="a VQ-VAE log, then a BERT log (default: the default commands')")
    parser.add_argument("-o", "--output", default=EXPERIMENTS.parent / "training-curves.png", help="PNG to write")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if len(args.logs) != 2:
        fail("give two logs, a VQ-VAE log then a BERT log (or none, for the default commands')")
    vqvae = columns(args.logs[0], ["loss", "val_loss", "val_si_sdr_db"])
    bert = columns(args.logs[1], ["cross_entropy", "val_cross_entropy", "latent", "val_latent"])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    panels = [(axes[0], vqvae, [("loss", "training loss (Eq. 2)"), ("val_loss", "validation loss")], "VQ-VAE loss"),
              (axes[1], vqvae, [("val_si_sdr_db", "validation SI-SDR (dB)")], "VQ-VAE validation SI-SDR (dB)"),
              (axes[2], bert, [("cross_entropy", "training cross-entropy"), ("val_cross_entropy", "validation cross-entropy"),
                               ("latent", "training latent loss (Eq. 11) x 10"), ("val_latent", "validation latent loss x 10")],
               "BERT losses")]
    for axis, log, curves, title in panels:
        for name, label in curves:
            steps, values = zip(*log[name])
            scale = 10 if name.endswith("latent") else 1  # lambda of Eq. 11: its share of the total loss
            axis.plot(steps, [v * scale for v in values], label=label, marker="o" if name.startswith("val") else None,
                      markersize=3)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"training curves -> {args.output}")


if __name__ == "__main__":
    main()
