"""CLEVR (Johnson et al. 2017) for relation networks: official-layout loader, functional programs, question
generation from the official templates, and (with ``scenes`` / ``render``) a synthetic CLEVR-format data set.

Modules: :mod:`.loader` (read questions, scenes, images), :mod:`.programs` (execute CLEVR programs),
:mod:`.questions` (instantiate the 90 template families), :mod:`.cli` (``relnet data clevr``).
"""

from relnet.tasks.clevr.loader import ANSWERS, FAMILIES, ClevrSplit, Vocab, augment, load_split, tokenize
from relnet.tasks.clevr.programs import execute_program
from relnet.tasks.clevr.questions import generate_questions

__all__ = [
    "ANSWERS",
    "FAMILIES",
    "ClevrSplit",
    "Vocab",
    "augment",
    "execute_program",
    "generate_questions",
    "load_split",
    "tokenize",
]
