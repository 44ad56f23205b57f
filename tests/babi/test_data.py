"""bAbI data layer: parser (hand-checked fixtures + generated files with known truth), file search, validation
carve, vocabulary, encoding (checked by decoding back with an independent brute force), and the real en-10k data."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from relnet.errors import UserError
from relnet.tasks.babi.data import (
    PAD,
    UNK,
    Example,
    Vocab,
    encode,
    find_task_files,
    find_training_files,
    load_babi,
    parse_file,
    parse_files,
    split_train_valid,
    tokenize,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "babi"
QA1 = FIX / "en-10k" / "qa1_single-supporting-fact_train.txt"
QA8 = FIX / "en-10k" / "qa8_lists-sets_train.txt"


def toks(text: str) -> tuple[str, ...]:
    """Hand tokeniser for the fixtures: words and the final punctuation mark."""
    return tuple(text.lower().replace(".", " .").replace("?", " ?").split())


# --------------------------------------------------------------------------------------------------- parser


def test_tokenize():
    assert tokenize("Where is Mary? ") == ("where", "is", "mary", "?")
    assert tokenize("Mary got the apple there.") == ("mary", "got", "the", "apple", "there", ".")
    assert tokenize("Fred gave it,then left.") == ("fred", "gave", "it", ",", "then", "left", ".")


def test_parse_qa1_fixture_exact():
    exs = parse_file(QA1)
    s1 = [toks("Mary moved to the bathroom."), toks("John went to the hallway."),
          toks("Daniel went back to the hallway."), toks("Sandra moved to the garden."),
          toks("John moved to the office.")]
    expected = [
        Example(task=1, story=tuple(s1[:2]), question=toks("Where is Mary?"), answer="bathroom", supporting=(1,),
                story_ids=(1, 2), story_index=0, line=3),
        Example(task=1, story=tuple(s1[:4]), question=toks("Where is Daniel?"), answer="hallway", supporting=(4,),
                story_ids=(1, 2, 4, 5), story_index=0, line=6),
        Example(task=1, story=tuple(s1[:5]), question=toks("Where is John?"), answer="office", supporting=(7,),
                story_ids=(1, 2, 4, 5, 7), story_index=0, line=8),
        # the ids restart at 1: a new story that sees nothing of the first
        Example(task=1, story=(toks("Sandra travelled to the office."), toks("Sandra went to the bathroom.")),
                question=toks("Where is Sandra?"), answer="bathroom", supporting=(2,), story_ids=(1, 2),
                story_index=1, line=11),
    ]
    assert exs == expected
    # how far back the oldest supporting fact is (1 = the latest statement)
    assert [e.support_distance() for e in exs] == [2, 2, 1, 1]


def test_parse_qa8_fixture_multiword_answer():
    exs = parse_file(QA8)
    assert [e.answer for e in exs] == ["apple,football", "football", "milk", "nothing"]
    assert [e.task for e in exs] == [8] * 4
    assert [e.supporting for e in exs] == [(1, 2), (1, 2, 4), (1,), (1, 3)]
    assert exs[1].story == (toks("Mary got the apple there."), toks("Mary picked up the football there."),
                            toks("Mary dropped the apple."))
    assert exs[1].story_ids == (1, 2, 4)
    assert exs[3].story == (toks("John took the milk there."), toks("John discarded the milk."))
    assert [e.story_index for e in exs] == [0, 0, 1, 1]
    assert [e.line for e in exs] == [3, 5, 7, 9]
    assert [e.support_distance() for e in exs] == [2, 3, 1, 2]


def test_parse_files_continues_story_index_and_dedupes(tmp_path):
    exs = parse_files([QA1, QA1], task=1, dedupe=False)
    assert [e.story_index for e in exs] == [0, 0, 0, 1, 2, 2, 2, 3]
    assert parse_files([QA1, QA1], task=1) == parse_file(QA1)  # the second copy repeats every story
    # a later piece: its first story repeats QA1's second story, its second story is new
    lines = QA1.read_text().splitlines()
    piece = tmp_path / "qa1_valid.txt"
    piece.write_text("\n".join(lines[8:] + lines[8:10] + ["3 Where is Sandra? \toffice\t1"]) + "\n")
    exs = parse_files([QA1, piece])
    assert [(e.story_index, e.answer) for e in exs][-2:] == [(1, "bathroom"), (3, "office")]
    assert len(exs) == 5
    # stories repeated inside one piece are kept
    same = tmp_path / "qa1_twice_train.txt"
    same.write_text("\n".join(lines[8:] * 2) + "\n")
    assert len(parse_files([same])) == 2


def write_random_babi(path: Path, rng: np.random.Generator, n_stories: int, max_len: int = 30):
    """A file in the official format with known truth: (story sentences raw, question, answer, supporting)."""
    names, places = ["Mary", "John", "Sandra", "Daniel"], ["kitchen", "garden", "office", "hallway", "park"]
    lines, truth = [], []
    for s in range(n_stories):
        story: list[str] = []
        ids: list[int] = []
        lid = 0
        n = int(rng.integers(1, max_len + 1))
        for _ in range(n):
            lid += 1
            sent = f"{rng.choice(names)} went to the {rng.choice(places)}."
            lines.append(f"{lid} {sent}")
            story.append(sent)
            ids.append(lid)
            if rng.random() < 0.3:
                lid += 1
                who = str(rng.choice(names))
                ans = str(rng.choice(places)) if rng.random() < 0.8 else "kitchen,garden"
                k = int(rng.integers(1, min(3, len(ids)) + 1))
                sup = sorted(int(x) for x in rng.choice(ids, size=k, replace=False))
                lines.append(f"{lid} Where is {who}? \t{ans}\t{' '.join(map(str, sup))}")
                truth.append((s, list(story), f"Where is {who}?", ans, tuple(sup), list(ids)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truth


def test_parse_random_files_match_truth(tmp_path):
    rng = np.random.default_rng([6, 0])
    path = tmp_path / "qa5_generated_train.txt"
    truth = write_random_babi(path, rng, n_stories=40)
    exs = parse_file(path)
    assert len(exs) == len(truth) > 50
    for ex, (s, story, q, ans, sup, ids) in zip(exs, truth):
        assert ex.task == 5 and ex.story_index == s
        assert ex.story == tuple(toks(x) for x in story)
        assert ex.question == toks(q) and ex.answer == ans and ex.supporting == sup
        assert ex.story_ids == tuple(ids)
        assert ex.support_distance() == len(ids) - ids.index(sup[0])


GOOD = "1 Mary went to the kitchen.\n2 Where is Mary?\tkitchen\t1\n"
MALFORMED = {
    "non-integer id": ("1 Mary went home.\nx John left.\n", 2),
    "missing id": (" Mary went home.\n", 1),
    "first id not 1": ("2 Mary went home.\n", 1),
    "id skips": ("1 Mary went home.\n2 John left.\n4 Where is Mary?\thome\t1\n", 3),
    "id repeats": ("1 Mary went home.\n2 John left.\n2 Where is Mary?\thome\t1\n", 3),
    "missing tab field": (GOOD + "3 Where is Mary?\tkitchen\n", 3),
    "extra tab field": (GOOD + "3 Where is Mary?\tkitchen\t1\t9\n", 3),
    "empty answer": (GOOD + "3 Where is Mary?\t \t1\n", 3),
    "non-integer supporting id": (GOOD + "3 Where is Mary?\tkitchen\tone\n", 3),
    "supporting id in the future": (GOOD + "3 Where is Mary?\tkitchen\t5\n", 3),
    "supporting id is a question": (GOOD + "3 Where is Mary?\tkitchen\t2\n", 3),
    "supporting id of an old story": (GOOD + "1 John left.\n2 Where is Mary?\tkitchen\t3\n", 4),
    "empty statement": ("1 Mary went home.\n2 \n", 2),
    "empty question": ("1 Mary went home.\n2 \thome\t1\n", 2),
}


@pytest.mark.parametrize("defect", sorted(MALFORMED))
def test_malformed_raises_user_error_with_file_and_line(tmp_path, defect):
    text, line = MALFORMED[defect]
    path = tmp_path / "qa2_broken_train.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as e:
        parse_file(path)
    assert f"{path}:{line}:" in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_encoding_names_line(tmp_path):
    path = tmp_path / "qa2_broken_train.txt"
    path.write_bytes(b"1 Mary went home.\n2 John \xff\xfe left.\n")
    with pytest.raises(UserError, match=re.escape(f"{path}:2:")):
        parse_file(path)


def test_good_file_and_blank_lines_parse(tmp_path):
    path = tmp_path / "qa2_ok_train.txt"
    path.write_text(GOOD + "\n" + GOOD, encoding="utf-8")
    assert [e.story_index for e in parse_file(path)] == [0, 1]


def test_unreadable_or_unnamed_file(tmp_path):
    with pytest.raises(UserError, match="qa1_missing_train.txt"):
        parse_file(tmp_path / "qa1_missing_train.txt")
    other = tmp_path / "stories.txt"
    other.write_text(GOOD)
    with pytest.raises(UserError, match="stories.txt"):
        parse_file(other)
    assert parse_file(other, task=4)[0].task == 4


# ----------------------------------------------------------------------------------------------- file search


def touch(root: Path, rel: str, text: str = GOOD) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_find_task_files_on_fixture():
    assert find_task_files(FIX, "train") == {1: QA1, 8: QA8}
    assert find_task_files(FIX, "test") == {1: FIX / "en-10k" / "qa1_single-supporting-fact_test.txt",
                                            19: FIX / "en" / "qa19_path-finding_test.txt"}
    assert find_task_files(FIX, "valid") == {}


def test_find_task_files_search_order(tmp_path):
    a = touch(tmp_path, "en/qa1_single-supporting-fact_train.txt")
    b = touch(tmp_path, "en-10k/qa1_single-supporting-fact_train.txt")
    c = touch(tmp_path, "en/qa2_two-supporting-facts_train.txt")
    d = touch(tmp_path, "en-valid-10k/qa3_train.txt")  # short official en-valid naming
    e = touch(tmp_path, "en/qa3_three-supporting-facts_train.txt")
    touch(tmp_path, "hn/qa4_x_train.txt")  # other languages are not searched
    touch(tmp_path, "en-10k/qa21_extra_train.txt")  # not one of the 20 tasks
    touch(tmp_path, "en-10k/notes.txt")
    assert find_task_files(tmp_path, "train") == {1: b, 2: c, 3: d}
    top = touch(tmp_path, "qa2_mine_train.txt")  # the root itself comes first
    assert find_task_files(tmp_path, "train")[2] == top
    assert a.exists() and e.exists()


def test_find_task_files_archive_folder_and_partial(tmp_path):
    t = touch(tmp_path, "tasks_1-20_v1-2/en-10k/qa7_counting_test.txt")
    v = touch(tmp_path, "tasks_1-20_v1-2/en-valid-10k-partial/qa3_valid.txt")
    assert find_task_files(tmp_path, "test") == {7: t}
    assert find_task_files(tmp_path, "valid") == {3: v}


def test_find_task_files_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        find_task_files(tmp_path / "nope", "train")
    with pytest.raises(UserError, match="split"):
        find_task_files(tmp_path, "dev")
    touch(tmp_path, "en/qa1_a_train.txt")
    touch(tmp_path, "en/qa1_train.txt")
    with pytest.raises(UserError, match="two train files for task 1"):
        find_task_files(tmp_path, "train")


def test_find_training_files_rules(tmp_path):
    t3 = touch(tmp_path, "en/qa3_three-supporting-facts_train.txt")  # 1K prefix + 10K valid tail: disjoint
    v3 = touch(tmp_path, "en-valid-10k-partial/qa3_valid.txt")
    t1 = touch(tmp_path, "en-10k/qa1_single-supporting-fact_train.txt")  # full 10K file already holds the valid
    touch(tmp_path, "en-valid-10k/qa1_valid.txt")
    t2 = touch(tmp_path, "en-valid-10k/qa2_train.txt")  # same folder: 90% + 10%
    v2 = touch(tmp_path, "en-valid-10k/qa2_valid.txt")
    t4 = touch(tmp_path, "en/qa4_two-arg-relations_train.txt")  # 1K valid is part of the 1K file
    touch(tmp_path, "en-valid/qa4_valid.txt")
    v5 = touch(tmp_path, "en-valid-10k/qa5_valid.txt")  # only a valid file
    assert find_training_files(tmp_path) == {1: [t1], 2: [t2, v2], 3: [t3, v3], 4: [t4], 5: [v5]}


# ---------------------------------------------------------------------------------------- validation carve


def test_split_train_valid_by_story(tmp_path):
    rng = np.random.default_rng([6, 1])
    exs = []
    for task, n in [(2, 50), (9, 37), (14, 3)]:
        path = tmp_path / f"qa{task}_gen_train.txt"
        write_random_babi(path, rng, n_stories=n, max_len=12)
        exs += parse_file(path)
    train, valid = split_train_valid(exs, valid_fraction=0.2)
    again = split_train_valid(exs, valid_fraction=0.2)
    assert (train, valid) == again  # deterministic
    assert len(train) + len(valid) == len(exs)
    key = lambda e: (e.task, e.story_index)  # noqa: E731
    tr_stories, va_stories = {key(e) for e in train}, {key(e) for e in valid}
    assert not tr_stories & va_stories  # no story on both sides
    all_stories = defaultdict(set)
    for e in exs:
        all_stories[e.task].add(e.story_index)
    for task, ids in all_stories.items():
        va = {s for t, s in va_stories if t == task}
        tr = {s for t, s in tr_stories if t == task}
        # the last stories of each task, about 20% of them (stories without questions never appear)
        assert va == set(sorted(ids)[len(ids) - len(va):])
        assert abs(len(va) - 0.2 * len(ids)) <= 1 and len(va) >= 1
        assert max(tr) < min(va)
    assert split_train_valid(exs, valid_fraction=0.0) == (exs, [])
    with pytest.raises(ValueError):
        split_train_valid(exs, valid_fraction=1.0)


# ------------------------------------------------------------------------------------------------ vocabulary


def test_vocab_build_and_json_roundtrip():
    exs = parse_file(QA1) + parse_file(QA8)
    v = Vocab.build(exs)
    assert v.words[PAD] == "<pad>" and v.words[UNK] == "<unk>"
    expected_words = set()
    for path in (QA1, QA8):  # brute force from the raw text
        for line in path.read_text().splitlines():
            expected_words |= set(toks(line.split("\t")[0].split(" ", 1)[1]))
    assert set(v.words[2:]) == expected_words and len(v.words) == len(expected_words) + 2
    assert v.answers == sorted(["bathroom", "hallway", "office", "apple,football", "football", "milk", "nothing"])
    text = json.dumps(v.to_json())
    w = Vocab.from_json(json.loads(text))
    assert w == v and w.word_index == v.word_index and w.answer_index == v.answer_index
    assert Vocab.from_json(text) == v


@pytest.mark.parametrize("bad", [
    "{", {"kind": "other"}, {"kind": "relnet.babi.vocab", "version": 2, "words": [], "answers": []},
    {"kind": "relnet.babi.vocab", "version": 1, "words": ["<pad>", "<unk>", 3], "answers": []},
    {"kind": "relnet.babi.vocab", "version": 1, "words": ["a", "b"], "answers": []},
    {"kind": "relnet.babi.vocab", "version": 1, "words": ["<pad>", "<unk>"], "answers": ["x", "x"]},
])
def test_vocab_from_bad_json(bad):
    with pytest.raises(UserError, match="vocabulary"):
        Vocab.from_json(bad)


# -------------------------------------------------------------------------------------------------- encoding


def decode_story(arrays, vocab, q):
    """Brute force: the words in each slot, from the arrays alone (None for an empty slot)."""
    out = []
    for slot in range(arrays["story"].shape[1]):
        n = int(arrays["story_len"][q, slot])
        ids = arrays["story"][q, slot]
        assert (ids[n:] == PAD).all()
        out.append(tuple(vocab.words[i] for i in ids[:n]) if n else None)
    return out


def test_encode_right_aligned_and_truncated(tmp_path):
    rng = np.random.default_rng([6, 2])
    path = tmp_path / "qa1_gen_train.txt"
    truth = write_random_babi(path, rng, n_stories=30, max_len=45)
    exs = parse_file(path)
    vocab = Vocab.build(exs)
    arrays = encode(exs, vocab)
    Q = len(exs)
    T = max(len(toks(s)) for _, story, *_ in truth for s in story[-20:])
    assert arrays["story"].shape == (Q, 20, T) and arrays["story"].dtype == np.int16
    assert arrays["story_len"].shape == (Q, 20)
    assert arrays["question"].shape == (Q, max(len(toks(q)) for _, _, q, *_ in truth))
    assert arrays["question_len"].shape == arrays["answer"].shape == arrays["task"].shape == (Q,)
    assert (arrays["task"] == 1).all()
    long_ones = 0
    for q, (_, story, question, answer, _, _) in enumerate(truth):
        kept = [toks(s) for s in story[-20:]]
        long_ones += len(story) > 20
        expected = [None] * (20 - len(kept)) + kept  # right-aligned: slot 19 = latest statement
        assert decode_story(arrays, vocab, q) == expected
        assert decode_story(arrays, vocab, q)[19] == toks(story[-1])
        n = int(arrays["question_len"][q])
        assert tuple(vocab.words[i] for i in arrays["question"][q, :n]) == toks(question)
        assert vocab.answers[arrays["answer"][q]] == answer
    assert long_ones > 5  # the truncation path was exercised


def test_encode_slot_count_max_words_and_unknowns():
    exs = parse_file(QA1)
    vocab = Vocab.build(parse_file(QA8))  # words and answers of another task: many unknowns
    arrays = encode(exs, vocab, max_sentences=3, max_words=2, max_question_words=4)
    assert arrays["story"].shape == (4, 3, 2) and arrays["question"].shape == (4, 4)
    # example 2 has five statements: slots keep the last three, each cut to its first two tokens
    assert arrays["story_len"][2].tolist() == [2, 2, 2]
    assert arrays["story_len"][0].tolist() == [0, 2, 2]
    mary = vocab.word_index["mary"]
    assert arrays["story"][0, 1].tolist() == [mary, UNK]  # "mary moved": "moved" is not in qa8
    assert arrays["question_len"].tolist() == [4, 4, 4, 4]
    assert (arrays["answer"] == -1).all()  # qa1 answers are not qa8 classes


def test_encode_empty_story_and_empty_list():
    ex = Example(task=3, story=(), question=("why", "?"), answer="x", supporting=(), story_ids=(), story_index=0,
                 line=1)
    v = Vocab.build([ex])
    arrays = encode([ex], v)
    assert arrays["story"].shape == (1, 20, 1) and (arrays["story_len"] == 0).all()
    assert ex.support_distance() == 0
    empty = encode([], v)
    assert empty["story"].shape[:2] == (0, 20) and empty["answer"].shape == (0,)


def test_load_babi_fixture():
    tr = load_babi(FIX, "train", valid_fraction=0.5)
    va = load_babi(FIX, "valid", valid_fraction=0.5)
    te = load_babi(FIX, "test", valid_fraction=0.5)
    assert tr.vocab == va.vocab == te.vocab
    # qa1 and qa8 have two stories each: the second story of each goes to validation
    assert [(e.task, e.story_index) for e in va.examples] == [(1, 1), (8, 1), (8, 1)]
    assert len(tr) == 5 and tr.arrays["story"].shape[0] == 5
    assert te.files == {1: [FIX / "en-10k" / "qa1_single-supporting-fact_test.txt"],
                        19: [FIX / "en" / "qa19_path-finding_test.txt"]}
    assert te.arrays["task"].tolist() == [1, 19, 19]
    assert te.arrays["answer"].tolist()[1:] == [-1, -1]  # "s,e", "s,w": never seen in training
    assert load_babi(FIX, "train", tasks=[8], valid_fraction=0.0).arrays["answer"].shape == (4,)
    with pytest.raises(UserError, match="task"):
        load_babi(FIX, "train", tasks=[2])


# ----------------------------------------------------------------------------------------- real en-10k data


def raw_stories(path: Path) -> list[tuple[str, ...]]:
    """Independent of the parser: a file's stories as blocks of raw lines (a block starts at id 1)."""
    blocks: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.split(" ", 1)[0] == "1":
            blocks.append([])
        blocks[-1].append(line.split(" ", 1)[1])
    return [tuple(b) for b in blocks]


_REAL: dict = {}  # parsed once per session (``shared_data`` is function-scoped, so no module-scoped fixture)


@pytest.fixture
def real(shared_data):
    shared = shared_data / "babi"
    if shared not in _REAL:
        files = find_training_files(shared)
        _REAL[shared] = shared, files, {t: parse_files(p, task=t) for t, p in files.items()}
    return _REAL[shared]


def test_real_training_files_parse(real):
    shared, files, by_task = real
    assert sorted(files) == list(range(1, 21))
    assert files[3] == [shared / "en" / "qa3_three-supporting-facts_train.txt",
                        shared / "en-valid-10k-partial" / "qa3_valid.txt"]
    assert all(p[0].parent.name == "en-10k" and len(p) == 1 for t, p in files.items() if t != 3)
    # task 3: 1K file + qa3_valid.txt, less the stories qa3_valid.txt repeats; found here from the raw text
    blocks = [raw_stories(p) for p in files[3]]
    repeated = [b for b in blocks[1] if b in set(blocks[0])]
    n_repeated = sum(sum("\t" in line for line in b) for b in repeated)
    assert len(repeated) == 15 and n_repeated == 75  # on our copy (md5s in SOURCES.md)
    counts = {t: len(e) for t, e in by_task.items()}
    assert counts == {t: (2000 - n_repeated if t == 3 else 10000) for t in range(1, 21)}
    assert sum(counts.values()) == 191_925
    # after dedupe, no full story is on both sides of the task-3 join
    halves = [[e for e in by_task[3] if (e.story_index < 200) == first] for first in (True, False)]
    full = [{e.story_index: e.story for e in h} for h in halves]
    assert len(full[0]) == 200 and not set(full[0].values()) & set(full[1].values())


def test_real_answer_sets(real):
    _, _, by_task = real
    answers = {t: {e.answer for e in exs} for t, exs in by_task.items()}
    places = {"bathroom", "bedroom", "garden", "hallway", "kitchen", "office"}
    for t in (1, 2, 3, 4, 11, 12, 13):
        assert answers[t] == places
    for t in (6, 9, 17, 18):
        assert answers[t] == {"yes", "no"}
    assert answers[10] == {"yes", "no", "maybe"}
    assert answers[7] <= {"none", "one", "two", "three", "four", "five"}
    assert all(re.fullmatch(r"[nsew],[nsew]", a) for a in answers[19]) and len(answers[19]) >= 8
    objects = {"apple", "football", "milk"}
    for a in answers[8]:
        parts = a.split(",")
        assert a == "nothing" or (set(parts) <= objects and len(set(parts)) == len(parts))
    assert any("," in a for a in answers[8])
    assert answers[15] <= {"cat", "mouse", "sheep", "wolf"}
    assert answers[16] <= {"gray", "green", "white", "yellow"}
    n_classes = len(set().union(*answers.values()))
    assert 40 <= n_classes <= 159  # the paper's f ends in 159 units


def test_real_encode_small_slice(real):
    _, _, by_task = real
    exs = [e for t in (2, 3) for e in by_task[t][:300]]
    vocab = Vocab.build(exs)
    arrays = encode(exs, vocab)
    lengths = np.array([len(e.story) for e in exs])
    assert ((arrays["story_len"] > 0).sum(axis=1) == np.minimum(lengths, 20)).all()
    assert (arrays["story_len"][:, -1] > 0).all()  # every real question has a latest statement
