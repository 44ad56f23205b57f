"""bAbI 20 QA tasks (paper section 5): data layer in ``relnet.tasks.babi.data``."""

from relnet.tasks.babi.data import (
    BabiData,
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

__all__ = ["BabiData", "Example", "Vocab", "encode", "find_task_files", "find_training_files", "load_babi",
           "parse_file", "parse_files", "split_train_valid", "tokenize"]
