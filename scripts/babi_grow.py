"""Grow a trained bAbI RN: a second round of g and/or a longer window, starting from what it computes (a grown model,
for ``--train.init_from``).

    python scripts/babi_grow.py SRC OUT [--rounds 2] [--max-sentences 30] [--data DIR --questions 2000]

``--rounds 2`` appends to each sentence's object its context: the LayerNorm'd mean relation to the other sentences
under a second g, read by the RN through weights that start at 0. ``--max-sentences S2`` keeps the last S2
statements instead of S (task 3 has 57 of its 1,925 questions with a supporting fact more than 20 statements back);
the old slots keep their tag weights and the new, older ones start with the oldest slot's
(``relnet.tasks.babi.model.grown``). With ``--data``, both models are run on a seeded sample of the validation
carve's questions whose stories fit SRC's window (encoded once for the grown window; SRC reads its last slots), and
the largest difference of their logits is printed (it must be below 1e-4, or the script fails): on those the grown
model answers exactly as SRC.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from relnet.checkpoint import save_checkpoint
from relnet.errors import UserError
from relnet.tasks.babi.model import grown
from relnet.tasks.babi.task import load_eval_examples, load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--rounds", type=int)
    p.add_argument("--max-sentences", type=int)
    p.add_argument("--data", help="check the two models agree on this bAbI folder's validation carve")
    p.add_argument("--questions", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0, help="seed of a new g's initialisation")
    args = p.parse_args()
    try:
        src, config, vocab = load_model(args.src)
        new = grown(src, rounds=args.rounds, max_sentences=args.max_sentences, seed=args.seed).eval()
        if args.data:
            fraction = float(config.get("data", {}).get("valid_fraction", 0.1))
            cut = new.cfg.max_sentences - src.cfg.max_sentences  # new, older slots; the old window is the rest
            big = load_eval_examples(args.data, "valid", vocab, max_sentences=new.cfg.max_sentences,
                                     valid_fraction=fraction)
            fits = torch.nonzero(big.story_len[:, :cut].sum(1) == 0).flatten()  # no statement beyond the old window
            idx = fits[torch.randperm(len(fits), generator=torch.Generator().manual_seed(0))[: args.questions]]
            story, story_len, question, question_len, _ = big.batch(idx)
            with torch.no_grad():  # slots are right-aligned: SRC's slots are the last ones of the grown window
                a = src(story[:, cut:], story_len[:, cut:], question, question_len)
                b = new(story, story_len, question, question_len)
            diff = float((a - b).abs().max())
            print(f"{len(idx)} questions (of {len(fits)} of {len(big)} that fit the old window): largest logit "
                  f"difference {diff:.2e}, same answer for {float((a.argmax(-1) == b.argmax(-1)).float().mean()):.2%}")
            if diff > 1e-4:
                sys.exit("the grown model does not compute the same function")
    except UserError as e:
        sys.exit(f"{args.src}: {e}")
    out_config = {k: v for k, v in config.items() if k not in ("format", "version")}
    out_config["model"] = {**config["model"], "rounds": new.cfg.rounds, "max_sentences": new.cfg.max_sentences}
    save_checkpoint(Path(args.out), new, out_config)
    print(f"{args.out}: {args.src} grown to rounds={new.cfg.rounds}, max_sentences={new.cfg.max_sentences}")


if __name__ == "__main__":
    main()
