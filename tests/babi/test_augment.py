"""bAbI word renaming (``--data.augment``): every renamed question is re-solved by independent solvers for tasks 16
(basic induction) and 19 (path finding) written here from the task definitions, the renaming is a consistent
bijection (task 3), other tasks are untouched, and bad settings are one-line errors."""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path

import pytest
import torch

from relnet.cli import main
from relnet.errors import UserError
from relnet.tasks.babi.augment import Renamer, parse_tasks
from relnet.tasks.babi.data import Vocab, encode, load_training_examples, parse_file
from relnet.tasks.babi.model import RunConfig
from relnet.tasks.babi.task import BabiTask, Examples
from relnet.train.config import TrainConfig

QA16 = """1 Lily is a swan.
2 Greg is a frog.
3 Lily is white.
4 Brian is a lion.
5 Julius is a frog.
6 Julius is yellow.
7 Brian is green.
8 Bernhard is a rhino.
9 Bernhard is gray.
10 What color is Greg?\tyellow\t2 5 6
1 Julius is a swan.
2 Julius is white.
3 Lily is a lion.
4 Lily is green.
5 Greg is a lion.
6 Brian is a frog.
7 Brian is yellow.
8 Bernhard is a rhino.
9 Bernhard is gray.
10 What color is Greg?\tgreen\t5 3 4
"""
QA19 = """1 The kitchen is north of the hallway.
2 The bathroom is west of the bedroom.
3 The den is east of the hallway.
4 The office is south of the bathroom.
5 The garden is west of the hallway.
6 How do you go from the garden to the kitchen?\te,n\t5 1
1 The office is east of the garden.
2 The bedroom is south of the kitchen.
3 The kitchen is east of the office.
4 The hallway is north of the office.
5 The bathroom is west of the garden.
6 How do you go from the hallway to the kitchen?\ts,e\t4 3
"""
QA17 = """1 The triangle is above the pink rectangle.
2 The blue square is to the left of the triangle.
3 Is the pink rectangle to the right of the blue square?\tyes\t1 2
4 Is the blue square below the pink rectangle?\tno\t2 1
1 The red sphere is to the left of the yellow square.
2 The red sphere is below the pink rectangle.
3 Is the yellow square to the right of the pink rectangle?\tyes\t1 2
4 Is the pink rectangle above the yellow square?\tyes\t2 1
"""
QA1 = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary?\tbathroom\t1
"""
LETTERS = {"north": "n", "east": "e", "south": "s", "west": "w"}
OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}


def solve16(story: list[list[str]], question: list[str]) -> str:
    """Basic induction: the colour of another animal of the queried animal's species; where several such animals
    have colours (62 of the 10,000 training questions), the files answer with the one declared that species last."""
    species, colour = {}, {}
    for s in story:  # "lily is a swan ." / "lily is white ."
        if s[2] == "a":
            species[s[0]] = s[3]
        else:
            colour[s[0]] = s[2]
    who = question[3]
    return next(colour[n] for n in reversed(list(species)) if n != who and n in colour and species[n] == species[who])


def solve19(story: list[list[str]], question: list[str]) -> str:
    """Path finding: breadth-first search over "the A is DIR of the B ." (A lies DIR of B)."""
    step: dict[str, list[tuple[str, str]]] = {}
    for s in story:
        a, d, b = s[1], s[3], s[6]
        step.setdefault(b, []).append((a, d))
        step.setdefault(a, []).append((b, OPPOSITE[d]))
    start, goal = question[6], question[9]  # "how do you go from the A to the B ?"
    queue, seen = deque([(start, [])]), {start}
    while queue:
        place, path = queue.popleft()
        if place == goal:
            return ",".join(LETTERS[d] for d in path)
        for nxt, d in step.get(place, []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, path + [d]))
    raise AssertionError("no path")


POSITION = {"left": (-1, 0), "right": (1, 0), "above": (0, 1), "below": (0, -1)}


def solve17(story: list[list[str]], question: list[str]) -> str:
    """Positional reasoning: "A is [to the] REL [of] B" puts A one cell from B; the question asks about one axis."""
    def parse(tokens):  # -> (A, REL, B), A and B as noun phrases without "the"
        t = [w for w in tokens if w not in (".", "?")]
        r = next(i for i, w in enumerate(t) if w in POSITION)
        return (tuple(w for w in t[:r] if w not in ("the", "is", "to")), t[r],
                tuple(w for w in t[r + 1:] if w not in ("the", "of")))

    pos: dict[tuple, tuple[int, int]] = {}
    facts = [parse(s) for s in story]
    for _ in range(len(facts) + 1):
        for a, r, b in facts:
            (dx, dy), anchored = POSITION[r], pos or {b: (0, 0)}
            pos.update(anchored)
            if b in pos and a not in pos:
                pos[a] = (pos[b][0] + dx, pos[b][1] + dy)
            elif a in pos and b not in pos:
                pos[b] = (pos[a][0] - dx, pos[a][1] - dy)
    a, r, b = parse(question)
    (dx, dy), (ax, ay), (bx, by) = POSITION[r], pos[a], pos[b]
    return "yes" if (ax - bx) * dx + (ay - by) * dy > 0 else "no"


def encoded(tmp_path: Path, texts: dict[str, str]):
    examples = []
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        examples += parse_file(tmp_path / name)
    vocab = Vocab.build(examples)
    arrays = encode(examples, vocab, max_sentences=20)
    return vocab, Examples(arrays)


def decode(vocab: Vocab, story, story_len, question, question_len, b: int) -> tuple[list[list[str]], list[str]]:
    sents = [[vocab.words[w] for w in story[b, s, : story_len[b, s]]] for s in range(story.shape[1])
             if story_len[b, s] > 0]
    return sents, [vocab.words[w] for w in question[b, : question_len[b]]]


def test_renamed_questions_are_re_solved_by_independent_solvers(tmp_path):
    vocab, ex = encoded(tmp_path, {"qa16_basic-induction_train.txt": QA16, "qa19_path-finding_train.txt": QA19,
                                   "qa17_positional-reasoning_train.txt": QA17,
                                   "qa1_single-supporting-fact_train.txt": QA1})
    solvers = {16: solve16, 17: solve17, 19: solve19}
    idx = torch.arange(len(ex))
    story, story_len, question, question_len, answer = ex.batch(idx)
    for b in range(len(ex)):  # the solvers agree with the files
        solve = solvers.get(int(ex.task[b]))
        if solve:
            assert solve(*decode(vocab, story, story_len, question, question_len, b)) == vocab.answers[answer[b]]
    renamer = Renamer(vocab, [16, 17, 19])
    g = torch.Generator().manual_seed(0)
    changed = {16: 0, 17: 0, 19: 0}
    moved17 = 0
    for _ in range(40):
        s2, q2, a2 = renamer(story, question, answer, ex.task, g)
        for b in range(len(ex)):
            t = int(ex.task[b])
            if t == 1:  # not augmented: unchanged
                assert torch.equal(s2[b], story[b]) and torch.equal(q2[b], question[b]) and a2[b] == answer[b]
                continue
            sents, q = decode(vocab, s2, story_len, q2, question_len, b)
            assert solvers[t](sents, q) == vocab.answers[a2[b]], (sents, q, vocab.answers[a2[b]])
            changed[t] += int(a2[b] != answer[b])
            moved17 += int(t == 17 and not torch.equal(s2[b], story[b]))
    # the renamings do move answers (a 19 answer can only become one of the classes the vocabulary holds)
    assert changed[16] > 10 and changed[19] > 5 and changed[17] == 0 and moved17 > 20, changed  # 17: yes/no stays
    assert torch.equal(ex.batch(idx)[0], story)  # the inputs are not modified in place


def test_real_data_renamings_are_consistent_bijections(shared_data):
    examples, _ = load_training_examples(shared_data / "babi", tasks=[3, 16, 17, 19])
    for e in examples:  # the solvers agree with the files
        if e.task != 3:
            assert {16: solve16, 17: solve17, 19: solve19}[e.task]([list(s) for s in e.story], list(e.question)) \
                == e.answer, e
    examples = [e for t in (3, 16, 17, 19) for e in [x for x in examples if x.task == t][:150]]
    vocab = Vocab.build(examples)
    ex = Examples(encode(examples, vocab, max_sentences=20))
    story, story_len, question, question_len, answer = ex.batch(torch.arange(len(ex)))
    renamer = Renamer(vocab, [3, 16, 17, 19])
    s2, q2, a2 = renamer(story, question, answer, ex.task, torch.Generator().manual_seed(1))
    moved = 0
    for b in range(len(ex)):
        t = int(ex.task[b])
        old = [w for w in story[b].flatten().tolist() + question[b].tolist()]
        new = [w for w in s2[b].flatten().tolist() + q2[b].tolist()]
        pairs = set(zip(old, new))  # a bijection: each word goes to one word and no two words to the same
        assert len({o for o, _ in pairs}) == len(pairs) == len({n for _, n in pairs})
        moved += sum(o != n for o, n in pairs)
        if t in (16, 17, 19):
            solve = {16: solve16, 17: solve17, 19: solve19}[t]
            assert solve(*decode(vocab, s2, story_len, q2, question_len, b)) == vocab.answers[a2[b]]
        else:  # task 3 answers are places, renamed as the story's places are
            place = vocab.answers[answer[b]]
            assert vocab.answers[a2[b]] == vocab.words[dict(pairs).get(vocab.word_index[place], vocab.word_index[place])]
    assert moved > 0


def test_bad_augment_settings(tmp_path, capsys):
    with pytest.raises(UserError, match="task\\(s\\) 20"):
        parse_tasks([3, 20])
    (tmp_path / "qa19_path-finding_train.txt").write_text(QA19 * 3)
    argv = ["train", "babi", "--data", str(tmp_path), "--model.g_dims=8", "--model.f_dims=8,8", "--quiet",
            "--train.steps=2", "--train.batch_size=2", "--train.threads=1", "--data.valid_fraction=0",
            "--out", str(tmp_path / "run")]
    assert main([*argv, "--data.augment=20"]) == 2
    assert "--data.augment" in capsys.readouterr().err
    assert main([*argv, "--data.augment=19"]) == 0


def test_training_batches_are_renamed_only_in_training(tmp_path):
    (tmp_path / "qa16_basic-induction_train.txt").write_text(QA16)
    cfg = RunConfig(preset="test")
    cfg.data = dataclasses.replace(cfg.data, root=str(tmp_path), valid_fraction=0.0, augment=(16,))
    cfg.train = TrainConfig(steps=1, batch_size=2, threads=1)
    task = BabiTask(cfg)
    idx = torch.arange(2)
    plain = task.train_set.batch(idx)
    assert all(torch.equal(a, b) for a, b in zip(task.batch(idx, train=False, generator=None), plain))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    one, two = task.batch(idx, train=True, generator=g1), task.batch(idx, train=True, generator=g2)
    assert all(torch.equal(a, b) for a, b in zip(one, two))  # the loop's seeded generator decides: resume is exact
    assert any(not torch.equal(a, b) for a, b in zip(one, plain))
