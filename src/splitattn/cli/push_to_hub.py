"""Share a trained model: a run directory of splitattn train to a Hugging Face Hub repository.

The run's best checkpoint is written as a model repository (model.safetensors, config.json with
the class names and input settings, a README.md model card with the recipe, final metrics and
curves) and uploaded in one commit. Log in first with `hf auth login` (or set HF_TOKEN):

    splitattn push-to-hub runs/train alice/resnest14d-digits
    splitattn push-to-hub runs/train alice/resnest14d-digits --no-upload --local-dir runs/upload   # look first

Anyone can then use it with create_model("hf-hub:alice/resnest14d-digits") or
`splitattn predict IMAGE --checkpoint hf-hub:alice/resnest14d-digits`.
"""

from __future__ import annotations

import argparse

from ..sharing import push_to_hub


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="output directory of splitattn train (holds best.pth)")
    parser.add_argument("repo_id", metavar="ORG/NAME", help="Hub repository, created if missing")
    parser.add_argument("--private", action="store_true", help="create the repository private (default: public)")
    parser.add_argument("--token", help="Hub token (default: huggingface_hub's login or $HF_TOKEN)")
    parser.add_argument("--license", help="licence in the model card (default: that of the published weights "
                                          "the run started from, else apache-2.0)")
    parser.add_argument("--local-dir", help="also keep the uploaded folder here")
    parser.add_argument("--no-upload", dest="upload", action="store_false",
                        help="write the folder (--local-dir) without uploading")


def run(args: argparse.Namespace) -> int:
    result = push_to_hub(args.run_dir, args.repo_id, private=args.private, token=args.token, license=args.license,
                         local_dir=args.local_dir, upload=args.upload)
    print(f"{'uploaded' if args.upload else 'wrote'} {args.repo_id}: {result}")
    return 0
