"""The compression question: how many samples per token (2^k) can the whole pipeline afford?

    python sweep.py [--ks 4,5,6,7,8] [--vqvae-steps 400] [--bert-steps 400] [--out runs/sweep]

The original work's BERT saw 0.18 s of audio per window; coarser tokens would let it see seconds,
if the tokenizer still reconstructs well. For each k this trains a VQ-VAE and a BERT on its
tokens with the *same* step budgets, through the same commands a user runs (`train.py vqvae`,
`train.py bert`, `evaluate.py`), and collects, per k: reconstruction SI-SDR and MR-STFT distance,
codes used, token rate, seconds per 512-token window, MLM accuracy, and separation SI-SDRi (one
decoding step), on the validation split by default: choosing k and the masking is model selection,
which must not look at the test split. `--masking-variants` also trains, for the first k only, a BERT per stem-masking
scheme (cosine ratio vs BERT's 15%), the comparison that picked the default. The table goes to
stdout and OUT/sweep.md, the numbers to OUT/sweep.json, both rewritten after every run, keeping
the rows of an earlier sweep into the same folder for the k values this one does not redo (so
`--ks 5,7` adds two rows to a sweep of 4,6,8); each run's log sits in its folder.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

from cli import ArgumentParser, run_main
from files import UserError, atomic_write

HERE = Path(__file__).resolve().parent


def run(args, log):
    """Run one of the project's commands, its output to `log`; stop the sweep if it fails."""
    start = time.time()
    with open(log, "w") as handle:
        code = subprocess.call([sys.executable, *[str(a) for a in args]], stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        raise UserError(f"{log}: `{' '.join(str(a) for a in args)}` failed (exit {code}); see the log")
    return (time.time() - start) / 60


def row(k, label, minutes, results):
    recon, mlm = results["reconstruction"], results["mlm"]
    separation = results.get("separation", {})
    return {"k": k, "variant": label, "minutes": minutes, "si_sdr_db": recon["si_sdr_db"], "mrstft": recon["mrstft"],
            "codes_used": recon["codes_used_fraction"], "tokens_per_second": recon["tokens_per_second"],
            "seconds_per_512": recon["seconds_per_512_tokens"], "mlm_accuracy": mlm["accuracy"],
            "unigram_accuracy": mlm["unigram_accuracy"], "neighbour_accuracy": mlm["neighbour_accuracy"],
            "si_sdri_db": {stem: v["si_sdri_db"] for stem, v in separation.items()}}


def merge(previous, new):
    """The rows of `previous` that `new` does not redo, and `new`; by k, the cosine variant first."""
    redone = {(r["k"], r["variant"]) for r in new}
    rows = [r for r in previous if (r["k"], r["variant"]) not in redone] + new
    return sorted(rows, key=lambda r: (r["k"], r["variant"] != "cosine", r["variant"]))


def save(out, rows):
    with atomic_write(out / "sweep.md") as tmp:
        tmp.write_text(markdown(rows) + "\n")
    with atomic_write(out / "sweep.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2) + "\n")


def markdown(rows):
    stems = sorted({stem for r in rows for stem in r["si_sdri_db"]})
    lines = ["| k | BERT stem masking | tokens/s | s per 512 tokens | recon SI-SDR dB | MR-STFT | codes used | "
             "MLM acc. (unigram, neighbour) | " + " | ".join(f"SI-SDRi {s}" for s in stems) + " | wall min |",
             "|" + " --- |" * (9 + len(stems))]
    for r in rows:
        lines.append(f"| {r['k']} | {r['variant']} | {r['tokens_per_second']:g} | {r['seconds_per_512']:.2f} | "
                     f"{r['si_sdr_db']:.2f} | {r['mrstft']:.2f} | {100 * r['codes_used']:.0f}% | "
                     f"{r['mlm_accuracy']:.3f} ({r['unigram_accuracy']:.3f}, {r['neighbour_accuracy']:.3f}) | "
                     + " | ".join(f"{r['si_sdri_db'].get(s, float('nan')):+.2f}" for s in stems)
                     + f" | {r['minutes']:.1f} |")
    return "\n".join(lines)


def main():
    parser = ArgumentParser(description="Train and score the tokenizer + BERT for several k, same budget each.")
    parser.add_argument("--ks", default="4,5,6,7,8", help="comma-separated k values (samples per token = 2^k)")
    parser.add_argument("--vqvae-steps", type=int, default=400, help="tokenizer training steps per k")
    parser.add_argument("--bert-steps", type=int, default=400, help="BERT training steps per k")
    parser.add_argument("--masking-variants", action="store_true",
                        help="for the first k, also train a BERT with --masking bert and compare on validation")
    parser.add_argument("--split", default="validation", choices=["validation", "test"],
                        help="split to score (validation: the sweep chooses k and the masking, so it must not see test)")
    parser.add_argument("--out", default="runs/sweep", help="output folder")
    parser.add_argument("--data", default=None, help="dataset folder (default: the embedded synthetic dataset)")
    args = parser.parse_args()
    try:
        ks = [int(k) for k in args.ks.split(",")]
    except ValueError:
        raise UserError(f"--ks must be comma-separated integers, got '{args.ks}'") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ["--data", args.data] if args.data else []
    previous = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() else []
    rows = []
    for k in ks:
        folder = out / f"k{k}"
        folder.mkdir(exist_ok=True)
        variants = ["cosine", "bert"] if args.masking_variants and k == ks[0] else ["cosine"]
        minutes = run([HERE / "train.py", "vqvae", "--k", k, "--steps", args.vqvae_steps, "--eval-every", 100, "--overwrite",
                       "--out", folder, *data], folder / "vqvae.log")
        for masking in variants:
            bert_folder = folder if masking == "cosine" else folder / f"masking-{masking}"
            bert_minutes = run([HERE / "train.py", "bert", "--vqvae", folder / "vqvae.pt", "--steps", args.bert_steps,
                                "--eval-every", 100, "--overwrite", "--masking", masking, "--out", bert_folder, *data],
                               bert_folder.with_suffix(".log") if masking != "cosine" else folder / "bert.log")
            run([HERE / "evaluate.py", "--vqvae", folder / "vqvae.pt", "--bert", bert_folder / "bert.pt",
                 "--split", args.split, "--separation-steps", "1", "--overwrite", "--json", bert_folder / "results.json", *data],
                bert_folder / "evaluate.log")
            results = json.loads((bert_folder / "results.json").read_text())
            rows.append(row(k, masking, minutes + bert_minutes, results))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
            save(out, merge(previous, rows))  # an interrupted sweep keeps the runs it finished
    print(markdown(merge(previous, rows)))


if __name__ == "__main__":
    run_main(main)
