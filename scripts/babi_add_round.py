"""Give a trained one-round bAbI RN a second round without changing what it computes (a grown model, for
``--train.init_from``).

    python scripts/babi_add_round.py SRC OUT [--data DIR --questions 2000]

``--model.rounds=2`` appends to each sentence's object its context: the LayerNorm'd mean relation to the other
sentences under a second g (``relnet.tasks.babi.model.BabiRN``). This writes OUT, a checkpoint of that model whose RN
is SRC's with zero weights on the new context columns of g's first layer, and whose new g is freshly initialised: the
same function as SRC, which training can then move away from (``with_context_round``). With ``--data``, both models
are run on the first questions of the validation carve and the largest difference of their logits is printed (it
must be below 1e-4, or the script fails).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from relnet.checkpoint import save_checkpoint
from relnet.errors import UserError
from relnet.tasks.babi.model import with_context_round
from relnet.tasks.babi.task import load_eval_examples, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--data", help="check the two models agree on this bAbI folder's validation carve")
    p.add_argument("--questions", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0, help="seed of the new g's initialisation")
    args = p.parse_args()
    try:
        src, config, vocab = load_model(args.src)
        new = with_context_round(src, seed=args.seed).eval()
        if args.data:
            ex = load_eval_examples(args.data, "valid", vocab, max_sentences=src.cfg.max_sentences,
                                    valid_fraction=float(config.get("data", {}).get("valid_fraction", 0.1)))
            idx = torch.randperm(len(ex), generator=torch.Generator().manual_seed(0))[: args.questions]
            story, story_len, question, question_len, _ = ex.batch(idx)
            with torch.no_grad():
                a, b = src(story, story_len, question, question_len), new(story, story_len, question, question_len)
            diff = float((a - b).abs().max())
            same = float((a.argmax(-1) == b.argmax(-1)).float().mean())
            print(f"{len(idx)} questions: largest logit difference {diff:.2e}, same answer for {same:.2%}")
            if diff > 1e-4:
                sys.exit("the grown model does not compute the same function")
    except UserError as e:
        sys.exit(f"{args.src}: {e}")
    out_config = {k: v for k, v in config.items() if k not in ("format", "version")}
    out_config["model"] = {**config["model"], "rounds": 2}
    save_checkpoint(Path(args.out), new, out_config)
    print(f"{args.out}: {args.src} with a second round (its weights into the RN 0)")


if __name__ == "__main__":
    main()
