"""bAbI v1.2 (20 QA tasks): parse the official files, find them on disk, carve a validation split, build a
vocabulary and encode questions into compact arrays for the sentence-object RN.

File format (one line each, IDs restart at 1 for every new story)::

    ID statement text.
    ID question text?<TAB>answer<TAB>supporting fact ids (space separated)

Multi-word answers are comma-joined (task 8 ``apple,football``, task 19 ``n,w``); each answer string is one class.

Contents:

* ``Example``, ``tokenize``, ``parse_file``, ``parse_files``: the parser. Every defect (non-integer or out-of-order
  id, missing TAB field, empty answer, unknown supporting id, bad encoding) raises ``UserError`` naming file:line.
* ``find_task_files(root, split)``: which file holds each task's ``split`` (search rule below).
* ``find_training_files(root)``: every disjoint piece of each task's *training* data (rule below, covers task 3).
* ``split_train_valid(examples, valid_fraction)``: deterministic, per-story validation carve.
* ``Vocab``: words (PAD=0, UNK=1) and answer classes, JSON round trip for checkpoints.
* ``encode(examples, vocab, ...)``: the numpy arrays the model reads (schema in its docstring).
* ``load_babi(root, split, ...)``: find + parse + split + vocab + encode in one call.

**File search rule** (``find_task_files``). File names are ``qa{N}_{name}_{split}.txt`` (``en/``, ``en-10k/``) or
``qa{N}_{split}.txt`` (``en-valid/``, ``en-valid-10k/``), ``N`` in 1..20. Folders are searched in this order and,
per task, the first folder holding a matching file wins: ``root`` itself, then ``root/en-10k``,
``root/en-valid-10k``, ``root/en``, ``root/en-valid``, then any other ``root/en*`` folder in name order (e.g.
``en-valid-10k-partial``); the same list is then repeated under ``root/tasks_1-20_v1-2`` (the official archive's
top folder). 10K folders come before 1K ones. The other languages (``hn``, ``shuffled``) are never searched.

**Training data rule** (``find_training_files``). A task's training data is its train file (found as above) plus
its valid file when the valid file holds stories the train file lacks, i.e. when

1. both lie in the same folder (``en-valid-10k``: ``qa{N}_train.txt`` and ``qa{N}_valid.txt`` are a 90/10 split
   of the stories of the 10K file), or
2. the train file comes from the 1K folder ``en`` and the valid file from a folder whose name contains ``10k``: the
   1K file is the first 1,000 questions of the 10K file and the 10K valid file 1,000 questions sampled from it
   (mostly beyond the first 1,000; the overlap is removed, see below).

Rule 2 is how task 3 is assembled from the data we have (``en-10k`` lacks it): ``en/qa3_..._train.txt`` (1,000
questions) + ``en-valid-10k-partial/qa3_valid.txt`` (1,000, 925 of them new); the other 19 tasks come
from ``en-10k`` (10,000 each). A task with only a valid file uses that. Pieces are read in this order (train, valid).
Stories of the valid piece identical to a story of the train
piece are dropped (``parse_files(..., dedupe=True)``): the official valid files turn out to be a *sample* of the
10K file's stories (on our copy, the first 15 stories of ``qa3_valid.txt`` are stories 5, 20, 28, ... of
``en/qa3``), so task 3 has 2,000 - 75 = 1,925 distinct questions, not 2,000.

**Validation carve** (``split_train_valid``). Per task, stories are numbered in file order across the task's pieces;
the last ``round(valid_fraction * n_stories)`` stories (at least one when ``valid_fraction > 0`` and the task has two or
more stories) are validation. All questions of a story go to the same side, so no statement is shared between
train and validation. Taking the *end* of the file keeps the 1K files (a prefix of the 10K files) entirely on the
training side, and for task 3 takes the validation stories from ``qa3_valid.txt``. (The official ``en-valid``
split is a different one, a sample of stories; to use it, train on ``en-valid-10k/qa{N}_train.txt`` alone.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relnet.errors import UserError

NUM_TASKS = 20
SPLITS = ("train", "valid", "test")
PAD, UNK = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
MAX_SENTENCES = 20  # paper: the 20 sentences immediately before the question

# qa{N}_{name}_{split}.txt (en, en-10k) or qa{N}_{split}.txt (en-valid, en-valid-10k)
_FILE_RE = re.compile(r"^qa(\d+)(?:_[A-Za-z0-9-]+)?_(train|valid|test)\.txt$")
_TOKEN_RE = re.compile(r"[.?,]|[^\s.?,]+")
_PREFERRED_FOLDERS = ("en-10k", "en-valid-10k", "en", "en-valid")
_ARCHIVE_FOLDER = "tasks_1-20_v1-2"

Sentence = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Example:
    """One bAbI question with its story.

    Fields:
        task: 1..20.
        story: the statements of the current story before the question, oldest first, as token tuples
            (question lines excluded).
        question: question tokens.
        answer: the answer string as written (``apple,football`` is one class).
        supporting: supporting fact ids as written in the file (ids are line ids within the story).
        story_ids: the line id of each ``story`` sentence (maps ``supporting`` to positions in ``story``).
        story_index: 0-based story number within the task (continues across a task's pieces in ``parse_files``).
        line: 1-based line number of the question in its file.
    """

    task: int
    story: tuple[Sentence, ...]
    question: Sentence
    answer: str
    supporting: tuple[int, ...]
    story_ids: tuple[int, ...]
    story_index: int
    line: int

    def support_distance(self) -> int:
        """How many sentences back the oldest supporting fact is (1 = the most recent statement; 0 = none).

        A question is fully covered by a window of the last ``k`` sentences iff ``support_distance() <= k``.
        """
        if not self.supporting:
            return 0
        position = {sid: i for i, sid in enumerate(self.story_ids)}
        return len(self.story) - min(position[s] for s in self.supporting)


def tokenize(text: str) -> Sentence:
    """Lower-case and split on whitespace, with ``.``, ``?`` and ``,`` as tokens of their own.

    >>> tokenize("Where is Mary?")
    ('where', 'is', 'mary', '?')
    """
    return tuple(_TOKEN_RE.findall(text.lower()))


def task_of(path: str | Path) -> int | None:
    """Task number from an official file name (``qa19_path-finding_train.txt`` -> 19), or None."""
    m = _FILE_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def parse_file(path: str | Path, *, task: int | None = None, story_offset: int = 0) -> list[Example]:
    """Parse one bAbI file into one ``Example`` per question, in file order.

    Args:
        path: the file.
        task: task number; by default read from the file name (``qa{N}_...``).
        story_offset: added to every ``story_index`` (``parse_files`` uses it to number stories across pieces).

    Raises:
        UserError: ``{path}:{line}: ...`` for any malformed line; ``{path}: ...`` if the file cannot be read
            or the task number cannot be inferred.
    """
    path = Path(path)
    if task is None:
        task = task_of(path)
        if task is None:
            raise UserError(f"{path}: cannot tell the bAbI task from the file name (expected qa<N>_..._<split>.txt)")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read bAbI file ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate a byte-order mark
    except UnicodeDecodeError as e:
        lineno = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{lineno}: not valid UTF-8 text ({e.reason} at byte {e.start})") from None

    examples: list[Example] = []
    sentences: list[Sentence] = []  # statements of the current story
    sentence_ids: list[int] = []
    known: set[int] = set()  # statement ids of the current story
    last_id = 0
    story = story_offset - 1
    # bAbI repeats a small set of sentences: tokenise each distinct text once (equal sentences then share a tuple)
    cache: dict[str, Sentence] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # tolerate blank lines (e.g. a trailing one)
        head, sep, rest = line.partition(" ")
        if not head.isdigit() or not head.isascii():
            raise UserError(f"{path}:{lineno}: line must start with an integer id and a space, got {head[:20]!r}")
        lid = int(head)
        if lid == 1:
            story += 1
            sentences, sentence_ids, known = [], [], set()
        elif lid != last_id + 1:
            expected = "1" if last_id == 0 else f"{last_id + 1} (or 1 to start a new story)"
            raise UserError(f"{path}:{lineno}: id {lid} out of order, expected {expected}")
        last_id = lid
        if "\t" not in rest:  # a statement
            tokens = cache.get(rest)
            if tokens is None:
                tokens = cache[rest] = tokenize(rest)
            if not tokens:
                raise UserError(f"{path}:{lineno}: empty statement after id {lid}")
            sentences.append(tokens)
            sentence_ids.append(lid)
            known.add(lid)
            continue
        fields = rest.split("\t")
        if len(fields) != 3:
            raise UserError(f"{path}:{lineno}: question line needs 3 TAB-separated fields "
                            f"(question, answer, supporting ids), got {len(fields)}")
        question, answer, support = fields[0], fields[1].strip(), fields[2].split()
        q_tokens = cache.get(question)
        if q_tokens is None:
            q_tokens = cache[question] = tokenize(question)
        if not q_tokens:
            raise UserError(f"{path}:{lineno}: empty question")
        if not answer:
            raise UserError(f"{path}:{lineno}: empty answer")
        if not all(s.isdigit() and s.isascii() for s in support):
            raise UserError(f"{path}:{lineno}: supporting fact ids must be integers, got {fields[2].strip()!r}")
        supporting = tuple(int(s) for s in support)
        for s in supporting:
            if s not in known:
                raise UserError(f"{path}:{lineno}: supporting fact id {s} is not a statement before this question")
        examples.append(Example(task=task, story=tuple(sentences), question=q_tokens, answer=answer,
                                supporting=supporting, story_ids=tuple(sentence_ids), story_index=story,
                                line=lineno))
    return examples


def parse_files(paths: Sequence[str | Path], *, task: int | None = None, dedupe: bool = True) -> list[Example]:
    """Parse the pieces of one task in order; ``story_index`` continues from one piece to the next.

    With ``dedupe`` (default), a story of a later piece that is identical to a story of an earlier piece (same
    statements, questions, answers and supporting ids) is dropped whole, leaving a gap in ``story_index``. Stories
    repeated within one piece are kept. This matters for task 3: the official ``qa3_valid.txt`` is a sample of
    the 10K file's stories, and some of them are among the first stories that make up the 1K file.
    """
    examples: list[Example] = []
    seen: set = set()
    offset = 0
    for p in paths:
        part = parse_file(p, task=task, story_offset=offset)
        if part:
            offset = part[-1].story_index + 1
        if dedupe and len(paths) > 1:
            stories = _group_stories(part)
            keys = {i: _story_key(exs) for i, exs in stories.items()}
            part = [ex for ex in part if keys[ex.story_index] not in seen]
            seen.update(keys.values())
        examples.extend(part)
    return examples


def _group_stories(examples: Sequence[Example]) -> dict[int, list[Example]]:
    stories: dict[int, list[Example]] = {}
    for ex in examples:
        stories.setdefault(ex.story_index, []).append(ex)
    return stories


def _story_key(story: Sequence[Example]) -> tuple:
    """Everything a story says: its statements up to the last question, and each question with its answer."""
    return (story[-1].story, tuple((len(e.story), e.question, e.answer, e.supporting) for e in story))


def _search_dirs(root: Path) -> list[Path]:
    dirs: list[Path] = []
    for base in (root, root / _ARCHIVE_FOLDER):
        if not base.is_dir():
            continue
        dirs.append(base)
        dirs.extend(base / name for name in _PREFERRED_FOLDERS)
        dirs.extend(sorted(d for d in base.iterdir()
                           if d.is_dir() and d.name.startswith("en") and d.name not in _PREFERRED_FOLDERS))
    return [d for d in dirs if d.is_dir()]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserError(f"bAbI split must be one of {', '.join(SPLITS)}, got {split!r}")


def find_task_files(root: str | Path, split: str) -> dict[int, Path]:
    """The file of each task for ``split`` under ``root`` (search rule in the module docstring).

    Returns:
        ``{task: path}`` sorted by task; tasks without a file are absent.

    Raises:
        UserError: ``root`` is not a directory, ``split`` is unknown, or one folder has two files for a task.
    """
    _check_split(split)
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: bAbI data folder not found")
    found: dict[int, Path] = {}
    for folder in _search_dirs(root):
        here: dict[int, Path] = {}
        for p in sorted(folder.iterdir()):
            m = _FILE_RE.match(p.name)
            if m is None or m.group(2) != split or not p.is_file():
                continue
            task = int(m.group(1))
            if not 1 <= task <= NUM_TASKS:
                continue
            if task in here:
                raise UserError(f"{folder}: two {split} files for task {task}: {here[task].name} and {p.name}")
            here[task] = p
        for task, p in here.items():
            found.setdefault(task, p)
    return dict(sorted(found.items()))


def find_training_files(root: str | Path) -> dict[int, list[Path]]:
    """All disjoint pieces of each task's training data, in file order (rule in the module docstring)."""
    train, valid = find_task_files(root, "train"), find_task_files(root, "valid")
    pieces: dict[int, list[Path]] = {}
    for task in sorted(set(train) | set(valid)):
        t, v = train.get(task), valid.get(task)
        if t is None:
            pieces[task] = [v]
        elif v is not None and (t.parent == v.parent or (t.parent.name == "en" and "10k" in v.parent.name)):
            pieces[task] = [t, v]
        else:
            pieces[task] = [t]
    return pieces


def split_train_valid(examples: Sequence[Example], valid_fraction: float = 0.1
                      ) -> tuple[list[Example], list[Example]]:
    """Split by story: per task, the last ``round(valid_fraction * n_stories)`` stories are validation.

    At least one story goes to validation when ``valid_fraction > 0`` and a task has two or more stories.
    Stories are identified by ``(task, story_index)`` and ordered by ``story_index``. Order within each side is kept.

    Returns:
        ``(train, valid)``.
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    stories: dict[int, set[int]] = {}
    for ex in examples:
        stories.setdefault(ex.task, set()).add(ex.story_index)
    first_valid: dict[int, float] = {}
    for task, ids in stories.items():
        ordered = sorted(ids)
        n_valid = round(valid_fraction * len(ordered))
        if valid_fraction > 0 and n_valid == 0 and len(ordered) >= 2:
            n_valid = 1
        first_valid[task] = ordered[len(ordered) - n_valid] if n_valid else float("inf")
    train: list[Example] = []
    valid: list[Example] = []
    for ex in examples:
        (valid if ex.story_index >= first_valid[ex.task] else train).append(ex)
    return train, valid


@dataclass
class Vocab:
    """Word and answer vocabularies, built from training examples.

    ``words[0]`` is ``<pad>`` (PAD = 0) and ``words[1]`` is ``<unk>`` (UNK = 1); the rest are sorted. ``answers``
    are the sorted answer strings (classes 0..len-1). Unknown words encode as UNK; unknown answers as -1.

    Shapes/schema of ``to_json()``: ``{"kind": "relnet.babi.vocab", "version": 1, "words": [str], "answers": [str]}``.
    """

    words: list[str]
    answers: list[str]
    word_index: dict[str, int] = field(init=False, repr=False, compare=False)
    answer_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.words[:2] != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError(f"words must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}")
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.answer_index = {a: i for i, a in enumerate(self.answers)}
        if len(self.word_index) != len(self.words) or len(self.answer_index) != len(self.answers):
            raise ValueError("duplicate entries in vocabulary")

    @classmethod
    def build(cls, examples: Iterable[Example]) -> "Vocab":
        """Every word of every story sentence and question, and every answer, of ``examples``."""
        sentences: set[Sentence] = set()
        seen: set[int] = set()  # ids of sentence tuples already added (examples of one story share them)
        answers: set[str] = set()
        for ex in examples:
            answers.add(ex.answer)
            sentences.add(ex.question)
            for s in ex.story:
                if id(s) not in seen:
                    seen.add(id(s))
                    sentences.add(s)
        words = {w for s in sentences for w in s} - {PAD_TOKEN, UNK_TOKEN}
        return cls(words=[PAD_TOKEN, UNK_TOKEN, *sorted(words)], answers=sorted(answers))

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def num_answers(self) -> int:
        return len(self.answers)

    def to_json(self) -> dict:
        """A JSON-serialisable dict (``json.dumps`` it, or store it in a checkpoint)."""
        return {"kind": "relnet.babi.vocab", "version": 1, "words": list(self.words), "answers": list(self.answers)}

    @classmethod
    def from_json(cls, data: Mapping | str) -> "Vocab":
        """Inverse of ``to_json``; also accepts the JSON text. Raises ``UserError`` naming a bad field."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as e:
                raise UserError(f"bAbI vocabulary: invalid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(data, Mapping) or data.get("kind") != "relnet.babi.vocab":
            raise UserError("bAbI vocabulary: field 'kind' must be 'relnet.babi.vocab'")
        if data.get("version") != 1:
            raise UserError(f"bAbI vocabulary: unsupported field 'version' {data.get('version')!r} (expected 1)")
        for key in ("words", "answers"):
            value = data.get(key)
            if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
                raise UserError(f"bAbI vocabulary: field {key!r} must be a list of strings")
        try:
            return cls(words=list(data["words"]), answers=list(data["answers"]))
        except ValueError as e:
            raise UserError(f"bAbI vocabulary: field 'words'/'answers': {e}") from None


def encode(examples: Sequence[Example], vocab: Vocab, *, max_sentences: int = MAX_SENTENCES,
           max_words: int | None = None, max_question_words: int | None = None) -> dict[str, np.ndarray]:
    """Encode questions into the arrays the sentence-object RN reads.

    The story window is the last ``max_sentences`` statements before the question, **right-aligned**: slot
    ``S - 1`` always holds the most recent statement, slot ``S - 2`` the one before, and so on; when a story is
    shorter, the leading slots are empty (length 0, all PAD). The slot index is the sentence's position tag.
    Within a slot, tokens are left-aligned and PAD-filled. Sentences longer than ``max_words`` (questions longer
    than ``max_question_words``) keep their first tokens; by default T and Tq are the longest in ``examples``.

    Args:
        examples: the questions.
        vocab: maps words (unknown -> UNK) and answers (unknown -> -1).
        max_sentences: S, number of slots.
        max_words, max_question_words: T and Tq, or None for the longest.

    Shapes:
        ``story`` ``(Q, S, T)`` token ids (int16, int32 if the vocabulary has more than 32,767 words);
        ``story_len`` ``(Q, S)`` int16, 0 for empty slots; ``question`` ``(Q, Tq)`` token ids;
        ``question_len`` ``(Q,)`` int16; ``answer`` ``(Q,)`` int64 class, -1 if not in ``vocab.answers``;
        ``task`` ``(Q,)`` int16 (1..20). Convert token ids with ``.long()`` before an embedding.
    """
    if max_sentences < 1:
        raise ValueError(f"max_sentences must be >= 1, got {max_sentences}")
    S = max_sentences
    # Unique sentences get rows of a small table (row 0 = the empty slot); slots then index that table.
    by_id: dict[int, int] = {}
    by_value: dict[Sentence, int] = {}
    table: list[Sentence] = [()]
    slots = np.zeros((len(examples), S), dtype=np.int32)
    q_rows: dict[Sentence, int] = {}
    q_table: list[Sentence] = []
    q_index = np.empty(len(examples), dtype=np.int32)
    for q, ex in enumerate(examples):
        window = ex.story[-S:]
        rows = []
        for s in window:
            r = by_id.get(id(s))  # examples of one story share their sentence tuples: a cheap first lookup
            if r is None:
                r = by_value.get(s)
                if r is None:
                    r = by_value[s] = len(table)
                    table.append(s)
                by_id[id(s)] = r
            rows.append(r)
        if rows:
            slots[q, S - len(rows):] = rows
        r = q_rows.get(ex.question)
        if r is None:
            r = q_rows[ex.question] = len(q_table)
            q_table.append(ex.question)
        q_index[q] = r

    dtype = np.int16 if vocab.num_words <= np.iinfo(np.int16).max else np.int32
    sent_ids, sent_len = _token_table(table, vocab, max_words, dtype)
    q_ids, q_len = _token_table(q_table, vocab, max_question_words, dtype)
    unknown = -1
    return {
        "story": sent_ids[slots],  # (Q, S, T)
        "story_len": sent_len[slots],  # (Q, S)
        "question": q_ids[q_index],  # (Q, Tq)
        "question_len": q_len[q_index],  # (Q,)
        "answer": np.array([vocab.answer_index.get(ex.answer, unknown) for ex in examples], dtype=np.int64),
        "task": np.array([ex.task for ex in examples], dtype=np.int16),
    }


def _token_table(sentences: Sequence[Sentence], vocab: Vocab, max_len: int | None, dtype
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(U, T)`` left-aligned token ids and ``(U,)`` lengths of unique sentences."""
    longest = max((len(s) for s in sentences), default=0)
    T = longest if max_len is None else max_len
    if T < 1:
        T = 1
    ids = np.zeros((len(sentences), T), dtype=dtype)
    lengths = np.zeros(len(sentences), dtype=np.int16)
    index = vocab.word_index
    for i, s in enumerate(sentences):
        row = [index.get(w, UNK) for w in s[:T]]
        ids[i, :len(row)] = row
        lengths[i] = len(row)
    return ids, lengths


@dataclass
class BabiData:
    """What ``load_babi`` returns: the encoded ``arrays`` (schema: ``encode``), the ``vocab`` used, the parsed
    ``examples`` (same order as the arrays) and the ``files`` read per task."""

    arrays: dict[str, np.ndarray]
    vocab: Vocab
    examples: list[Example]
    files: dict[int, list[Path]]

    def __len__(self) -> int:
        return len(self.examples)


def load_training_examples(root: str | Path, *, tasks: Iterable[int] | None = None
                           ) -> tuple[list[Example], dict[int, list[Path]]]:
    """Parse every task's training pieces (``find_training_files``), optionally only ``tasks``."""
    files = find_training_files(root)
    files = _select(files, tasks, root, "training")
    examples: list[Example] = []
    for task, paths in files.items():
        examples.extend(parse_files(paths, task=task))
    return examples, files


def _select(files: dict, tasks: Iterable[int] | None, root, what: str) -> dict:
    if not files:
        raise UserError(f"{root}: no bAbI {what} files found (expected qa<N>_..._<split>.txt here or in en-10k/, "
                        f"en/, en-valid-10k/ ...)")
    if tasks is None:
        return files
    wanted = sorted(set(tasks))
    missing = [t for t in wanted if t not in files]
    if missing:
        raise UserError(f"{root}: no bAbI {what} file for task(s) {', '.join(map(str, missing))}")
    return {t: files[t] for t in wanted}


def load_babi(root: str | Path, split: str = "train", *, vocab: Vocab | None = None,
              tasks: Iterable[int] | None = None, valid_fraction: float = 0.1, max_sentences: int = MAX_SENTENCES,
              max_words: int | None = None, max_question_words: int | None = None) -> BabiData:
    """Find, parse and encode one split of bAbI under ``root``.

    ``train`` and ``valid`` are the two sides of ``split_train_valid`` applied to the training data of
    ``find_training_files`` (``valid_fraction=0`` makes ``train`` all of it). ``test`` reads the official test files
    (``find_task_files(root, "test")``). Without ``vocab``, one is built from the training side of the carve (for
    ``valid`` and ``test`` too, so that all three splits agree; this needs the training files).
    """
    _check_split(split)
    if split == "test":
        found = _select({t: [p] for t, p in find_task_files(root, "test").items()}, tasks, root, "test")
        examples = [ex for t, paths in found.items() for ex in parse_files(paths, task=t)]
        files = found
        if vocab is None:
            train, _ = split_train_valid(load_training_examples(root, tasks=tasks)[0], valid_fraction)
            vocab = Vocab.build(train)
    else:
        all_train, files = load_training_examples(root, tasks=tasks)
        train, valid = split_train_valid(all_train, valid_fraction)
        examples = train if split == "train" else valid
        if vocab is None:
            vocab = Vocab.build(train)
    arrays = encode(examples, vocab, max_sentences=max_sentences, max_words=max_words,
                    max_question_words=max_question_words)
    return BabiData(arrays=arrays, vocab=vocab, examples=examples, files=files)
