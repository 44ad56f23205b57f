"""Label-preserving word permutations for bAbI training (``--data.augment=3,16,17,19``; the ``fast`` preset renames
tasks 3, 16 and 19, which took path finding from 90.5% to 100%: reports/babi_renamed.md).

In several tasks the names, places, things, colours and species are arbitrary symbols: renaming them consistently
in the story, the question and the answer gives another valid question of the same task. Training on renamed
copies takes away the shortcut of memorising which symbol tends to be the answer (task 16, basic induction, is
learnt as "the most common colour" by every public reproduction) and multiplies the examples of a task that has
few (task 3 has 1,735 training questions in ../shared/data).

Each task that can be augmented has a list of word classes (:data:`CLASSES`). Every training question of such a
task is renamed in each class independently: a uniformly random permutation of the class's words, or, for the
compass class of task 19 (path finding), one of the 8 symmetries of the square (rotations and reflections), since
"north" and "south" must stay opposite; its answers ``n``, ``e``, ``s``, ``w`` move with the words. In task 17
(positional reasoning) "left"/"right" and "above"/"below" are two-word classes: the scene mirrored, flipped, both
or neither (a rotation would put "above" where "to the left of" stands). Only classes whose renaming provably
keeps the answer are listed: no class of a task whose text ties a word to another by meaning (task 20's "hungry"
-> "kitchen"), and no names in tasks with "he" / "she" (their gender must match). A renamed answer that is not one
of the model's answer classes leaves that question as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from relnet.errors import UserError
from relnet.tasks.babi.data import Vocab

PEOPLE = ("daniel", "john", "mary", "sandra")
PLACES = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
THINGS = ("apple", "football", "milk")
COMPASS = (("north", "n"), ("east", "e"), ("south", "s"), ("west", "w"))  # in order round the square

# task -> word classes: a tuple of words (any permutation) or COMPASS (the square's 8 symmetries)
CLASSES: dict[int, tuple[tuple, ...]] = {
    3: (PEOPLE, PLACES, THINGS),  # three supporting facts: no pronouns; answers are places
    16: (("bernhard", "brian", "greg", "julius", "lily"), ("frog", "lion", "rhino", "swan"),
         ("gray", "green", "white", "yellow")),  # basic induction
    17: (("blue", "pink", "red", "yellow"), ("rectangle", "sphere", "square", "triangle"), ("left", "right"),
         ("above", "below")),  # positional reasoning: colours, shapes, and the scene mirrored and/or flipped
    19: (PLACES, COMPASS),  # path finding: answers like "n,w"
}

# the 8 symmetries of the square as maps of the compass index (0 north, 1 east, 2 south, 3 west)
_SQUARE = [[(k + i) % 4 for i in range(4)] for k in range(4)] + [[(k - i) % 4 for i in range(4)] for k in range(4)]


def parse_tasks(tasks: Iterable[int]) -> tuple[int, ...]:
    """Check ``--data.augment``: every task must have word classes here."""
    tasks = tuple(sorted(set(int(t) for t in tasks)))
    bad = [t for t in tasks if t not in CLASSES]
    if bad:
        raise UserError(f"--data.augment: no renaming is defined for task(s) {', '.join(map(str, bad))}; "
                        f"tasks that can be augmented: {', '.join(map(str, sorted(CLASSES)))}")
    return tasks


class Renamer:
    """Renames the words of :data:`CLASSES` in a batch of encoded questions (``relnet.tasks.babi.data.encode``).

    Args:
        vocab: the model's vocabulary (token ids and answer classes).
        tasks: the tasks to augment (each a key of :data:`CLASSES`).
    """

    def __init__(self, vocab: Vocab, tasks: Iterable[int]) -> None:
        self.tasks = parse_tasks(tasks)
        self.vocab = vocab
        self.word_index = vocab.word_index

    def _permutation(self, task: int, generator: torch.Generator | None) -> dict[str, str]:
        """One random renaming for a question of ``task``: word -> word (words absent from it stay)."""
        mapping: dict[str, str] = {}
        for cls in CLASSES[task]:
            if cls is COMPASS:
                image = _SQUARE[int(torch.randint(len(_SQUARE), (1,), generator=generator))]
                for i, forms in enumerate(COMPASS):
                    mapping.update(zip(forms, COMPASS[image[i]]))
            else:
                present = [w for w in cls if w in self.word_index]  # a vocabulary of some tasks only may lack some
                perm = torch.randperm(len(present), generator=generator).tolist()
                mapping.update({w: present[p] for w, p in zip(present, perm)})
        return mapping

    def __call__(self, story: Tensor, question: Tensor, answer: Tensor, task: Tensor,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Renamed copies: ``story (B, S, T)``, ``question (B, Tq)`` long token ids, ``answer (B,)`` classes,
        ``task (B,)`` -> the same shapes; questions of other tasks are unchanged."""
        story, question, answer = story.clone(), question.clone(), answer.clone()
        for b in torch.nonzero(torch.isin(task, torch.tensor(self.tasks)), as_tuple=False).flatten().tolist():
            mapping = self._permutation(int(task[b]), generator)
            if answer[b] < 0:
                continue  # an answer the model does not know: nothing to rename it to
            renamed = ",".join(mapping.get(w, w) for w in self.vocab.answers[int(answer[b])].split(","))
            new_answer = self.vocab.answer_index.get(renamed)
            if new_answer is None:
                continue  # the renamed answer is not a class of this model: keep the question as it is
            table = torch.arange(self.vocab.num_words)
            for src, dst in mapping.items():
                if src in self.word_index:  # the answer letters n, e, s, w are not story words
                    table[self.word_index[src]] = self.word_index[dst]
            story[b], question[b], answer[b] = table[story[b]], table[question[b]], new_answer
        return story, question, answer


__all__ = ["CLASSES", "COMPASS", "Renamer", "parse_tasks"]
