"""Typed configuration: dataclasses, named presets, and ``--section.key=value`` overrides.

A task's run configuration is a dataclass whose fields are themselves dataclasses (``model``, ``data``, ``train``).
Overrides come from the command line as ``--train.lr=3e-4`` or ``--model.g_dims=128,128,128``; each value is parsed
against the field's declared type, and unknown keys are errors that list the valid ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Sequence

from relnet.errors import UserError


@dataclasses.dataclass
class TrainConfig:
    """Settings of the shared training loop (``relnet.train.loop``).

    ``batch_size`` is the *effective* batch of one optimiser step, whatever the number of processes: with K
    processes and micro-batches of ``micro_batch_size``, each step accumulates ``batch_size / (K * micro)``
    micro-batches per process.
    """

    steps: int = 1000  # optimiser steps in total
    batch_size: int = 64  # effective batch per optimiser step (all processes, all micro-batches)
    micro_batch_size: int = 0  # examples per forward/backward in one process; 0 = batch_size / processes
    lr: float = 1e-4
    optimizer: str = "adam"  # adam | adamw
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | cosine | step (multiply by step_gamma every step_every steps)
    warmup_steps: int = 0  # linear warm-up from 0 (constant / cosine)
    min_lr: float = 0.0  # floor of the cosine schedule
    step_every: int = 0  # step schedule: period in optimiser steps
    step_gamma: float = 2.0  # step schedule: factor per period (mesnico's CLEVR recipe doubles)
    max_lr: float = 0.0  # step schedule: cap (0 = none)
    clip_grad_norm: float = 0.0  # 0 = no clipping
    eval_every: int = 500  # optimiser steps between evaluations (and at the end)
    log_every: int = 50
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    init_from: str = ""  # start from these weights (a checkpoint folder); optimiser and schedule start fresh
    init_partial: bool = False  # init_from may lack some of the model's tensors (a grown model); they keep their init
    init_only: tuple[str, ...] = ()  # take only the tensors under these name prefixes from init_from (e.g. cnn.)


def _parse_value(text: str, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        return _parse_value(text, non_none[0], key)
    if origin in (tuple, list, Sequence) or typ in (tuple, list):
        inner = args[0] if args else str
        items = [t for t in text.split(",") if t.strip() != ""]
        return tuple(_parse_value(t.strip(), inner, key) for t in items)
    try:
        if typ is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
        if typ is str:
            return text
    except ValueError:
        pass
    else:
        raise UserError(f"--{key}: unsupported field type {typ}")
    raise UserError(f"--{key}={text}: expected a value of type {getattr(typ, '__name__', typ)}")


def apply_overrides(config: Any, overrides: Sequence[str]) -> Any:
    """Return a copy of a nested dataclass config with ``--a.b=value`` overrides applied (type-checked)."""
    config = dataclasses.replace(config)
    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise UserError(f"unrecognized argument {item!r} (overrides look like --train.lr=3e-4)")
        key, text = item[2:].split("=", 1)
        parts = key.split(".")
        target = config
        for depth, name in enumerate(parts):
            hints = typing.get_type_hints(type(target))
            names = [f.name for f in dataclasses.fields(target)]
            if name not in names:
                where = ".".join(parts[:depth]) or "the config"
                raise UserError(f"--{key}: unknown key {name!r} in {where}; valid keys: {', '.join(names)}")
            if depth < len(parts) - 1:
                child = getattr(target, name)
                if not dataclasses.is_dataclass(child):
                    raise UserError(f"--{key}: {name!r} is a value, not a section")
                child = dataclasses.replace(child)
                setattr(target, name, child)
                target = child
            else:
                if dataclasses.is_dataclass(getattr(target, name)):
                    raise UserError(f"--{key}: {name!r} is a section; set one of its keys, e.g. --{key}.<key>=...")
                setattr(target, name, _parse_value(text, hints[name], key))
    return config


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) dataclass from ``to_dict`` output; unknown keys are ignored, lists become tuples."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, typ = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(typ) and isinstance(value, dict):
            value = from_dict(typ, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
