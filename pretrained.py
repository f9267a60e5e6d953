"""Shipped models: which checkpoints a command uses by default, and how the release files are made.

`infer.py` and `evaluate.py` use your models in `runs/` once training has put them there, else those
shipped in `pretrained/`, so a fresh clone separates at once; `--vqvae` and `--bert` override both.
Shipped files hold weights and config only and are checked against `pretrained/SHA256SUMS`: a
truncated or changed one gets a one-line error.

    python pretrained.py runs/vqvae.pt runs/release/bert.pt   # writes pretrained/ (model card: pretrained/README.md)
"""
import hashlib
from pathlib import Path

from checkpoint import load_checkpoint, save_checkpoint
from cli import ArgumentParser, run_main
from files import UserError, atomic_write

SHIPPED = Path(__file__).resolve().parent / "pretrained"
RUNS = Path("runs")  # where `python train.py ...` writes by default, in the current folder
KEPT = ("kind", "config", "model", "stems", "vqvae_fingerprint", "step")  # what a shipped checkpoint holds


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded_hashes(folder=SHIPPED):
    """{file name: sha256} from folder/SHA256SUMS ("<hash>  <name>" lines, as sha256sum writes them)."""
    sums = Path(folder) / "SHA256SUMS"
    if not sums.exists():
        raise UserError(f"{sums}: no such file; restore the shipped models with `git checkout pretrained/`")
    return {name.strip(): digest for digest, name in (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())}


def check_shipped(path):
    """Refuse a shipped file that is missing or differs from its recorded sha256 (one line, naming it)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; restore it with `git checkout pretrained/` or train your own "
                        f"(`python train.py vqvae --k 4`, then `python train.py bert`)")
    expected = recorded_hashes(path.parent).get(path.name)
    if expected != sha256(path):
        raise UserError(f"{path}: its sha256 differs from {path.parent / 'SHA256SUMS'} (truncated or changed); "
                        f"restore it with `git checkout pretrained/`")


def default_models(args, with_bert):
    """Fill args.vqvae (and args.bert) when not given: runs/ if it holds the models, else pretrained/.

    A BERT goes with the VQ-VAE whose tokens it learned, so the two come from the same folder:
    the BERT default is bert.pt beside the VQ-VAE.
    """
    if args.vqvae is None:
        ours = (RUNS / "vqvae.pt").exists() and (not with_bert or (RUNS / "bert.pt").exists())
        args.vqvae = str((RUNS if ours else SHIPPED) / "vqvae.pt")
        which = f"yours, in {RUNS}" if ours else f"the shipped ones, in {SHIPPED}"
        if with_bert and args.bert is not None:  # the BERT named, the VQ-VAE by default
            which = f"the VQ-VAE {f'in {RUNS}' if ours else f'shipped in {SHIPPED}'} and the BERT {args.bert}"
        print(f"models: {which} ({'--vqvae and --bert choose others' if with_bert else '--vqvae chooses another'})")
    if with_bert and args.bert is None:
        args.bert = str(Path(args.vqvae).parent / "bert.pt")
    check_shipped_paths([args.vqvae] + ([args.bert] if with_bert else []))


def check_shipped_paths(paths):
    for path in paths:
        if Path(path).resolve().parent == SHIPPED:
            check_shipped(path)


def work_folder(vqvae_path):
    """Where the token cache of a VQ-VAE goes: beside it, or in runs/ for the shipped one (pretrained/ stays as shipped)."""
    parent = Path(vqvae_path).parent
    return RUNS if parent.resolve() == SHIPPED else parent


# ---- making the release ----

def ship(source, kind, out):
    """Copy the weights and config of a training checkpoint to `out`, without the training state."""
    checkpoint = load_checkpoint(source, kind)
    save_checkpoint(out, {key: checkpoint[key] for key in KEPT if key in checkpoint})
    return sha256(out)


def main():
    parser = ArgumentParser(description="Write the shipped models: weights and config only, with their sha256.")
    parser.add_argument("vqvae", help="trained VQ-VAE checkpoint (e.g. runs/vqvae.pt)")
    parser.add_argument("bert", help="BERT trained on that VQ-VAE's tokens (e.g. runs/bert.pt)")
    parser.add_argument("--out", default=str(SHIPPED), help=f"output folder (default {SHIPPED})")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hashes = {"vqvae.pt": ship(args.vqvae, "vqvae", out / "vqvae.pt"), "bert.pt": ship(args.bert, "bert", out / "bert.pt")}
    with atomic_write(out / "SHA256SUMS") as tmp:
        tmp.write_text("".join(f"{digest}  {name}\n" for name, digest in hashes.items()))
    for name, digest in hashes.items():
        print(f"{out / name}: {(out / name).stat().st_size / 1e6:.1f} MB, sha256 {digest}")


if __name__ == "__main__":
    run_main(main)
