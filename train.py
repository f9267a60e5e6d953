"""Training entry point: one command, two models.

    python train.py vqvae --k 4        # the tokenizer, on the embedded dataset by default (train_vqvae.py)
    python train.py bert               # BERT on its tokens, using runs/vqvae.pt (train_bert.py)

Each model's loop lives in its own file; the pieces both share (learning-rate schedule, optimizer
step, checkpoint state, Ctrl-C) are in `training.py`.
"""
from cli import ArgumentParser, run_main
from train_bert import add_bert_arguments, train_bert
from train_vqvae import add_vqvae_arguments, train_vqvae


def main():
    parser = ArgumentParser(description="Train the audio-mlm models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{vqvae,bert}")
    add_vqvae_arguments(commands.add_parser("vqvae", help="train the VQ-VAE tokenizer"))
    add_bert_arguments(commands.add_parser("bert", help="train BERT on the tokens of a trained VQ-VAE"))
    args = parser.parse_args()
    {"vqvae": train_vqvae, "bert": train_bert}[args.command](args)


if __name__ == "__main__":
    run_main(main)
