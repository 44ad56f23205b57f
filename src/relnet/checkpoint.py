"""One checkpoint format for every task: a folder with ``model.safetensors`` and ``config.json``.

``config.json`` holds everything needed to rebuild the model without pickle: ``{"format": "relnet-checkpoint",
"version": 1, "task": ..., "model": {...constructor config...}, ...task extras (vocabularies, answer names)}``.
A training checkpoint adds ``trainer.safetensors`` (optimiser tensors, RNG states) and ``trainer.json`` (step, epoch,
scheduler and the non-tensor optimiser state), so that ``--resume`` continues exactly.

Folders are written atomically: everything goes into a hidden sibling folder first (files fsynced), which then
replaces the target by rename. POSIX cannot rename a folder over a non-empty one, so the old folder is first moved
aside to ``.<name>.old-*``; a crash in the instant between the two renames leaves only that folder, and
``recover_dir`` (called by every writer and by ``--resume``) puts it back. A crash therefore leaves either the old
checkpoint or the new one, never a mix, and never nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from relnet.errors import UserError

FORMAT = "relnet-checkpoint"
FORMAT_VERSION = 1


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk (best effort: some file systems refuse fsync on folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def recover_dir(path: str | os.PathLike) -> bool:
    """Undo the traces of an interrupted ``atomic_dir`` next to ``path``; True if an old folder was put back.

    If ``path`` is missing but ``.<name>.old-*`` exists (a crash between the two renames), the newest such folder
    becomes ``path`` again. Leftover ``.<name>.tmp-*`` folders (a crash while writing) are deleted.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return False
    restored = False
    olds = sorted(parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not path.exists() and olds:
        os.replace(olds.pop(), path)
        restored = True
    for junk in [*olds, *parent.glob(f".{path.name}.tmp-*")]:
        shutil.rmtree(junk, ignore_errors=True)
    return restored


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` (rename), on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Call ``write(binary file)`` on a temporary file next to ``path`` and rename it over ``path``: readers see the
    old file or the whole new one. The file is readable by all (``mkstemp`` makes 0600; caches are shared)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` (its folder made if needed) through :func:`write_atomic`, synced to disk before the
    rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(f: BinaryIO) -> None:
        f.write(text.encode())
        f.flush()
        os.fsync(f.fileno())

    write_atomic(path, write)


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone views so every tensor owns its memory.
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def save_model(dir_: Path, model: torch.nn.Module, config: dict[str, Any]) -> None:
    """Write ``model.safetensors`` + ``config.json`` into an existing (temporary) folder."""
    save_file(_contiguous(model.state_dict()), str(dir_ / "model.safetensors"))
    (dir_ / "config.json").write_text(json.dumps({"format": FORMAT, "version": FORMAT_VERSION, **config}, indent=2) + "\n")


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, config: dict[str, Any],
                    trainer_state: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None) -> Path:
    """Atomically write a checkpoint folder (and, for a training checkpoint, the trainer state)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        save_model(tmp, model, config)
        if trainer_state is not None:
            tensors, meta = trainer_state
            save_file(_contiguous(tensors), str(tmp / "trainer.safetensors"))
            (tmp / "trainer.json").write_text(json.dumps(meta) + "\n")
    return path


def read_config(path: str | os.PathLike, *, task: str | None = None) -> dict[str, Any]:
    """Read and check ``config.json`` of a checkpoint folder; ``task`` must match when given."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"checkpoint {path} does not exist or is not a folder (expected model.safetensors + config.json)")
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise UserError(f"checkpoint {path}: config.json is missing")
    try:
        config = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"checkpoint {cfg_file}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise UserError(f"checkpoint {cfg_file}: not a relnet checkpoint (field 'format' must be {FORMAT!r})")
    if config.get("version") != FORMAT_VERSION:
        raise UserError(f"checkpoint {cfg_file}: format version {config.get('version')!r} is not supported")
    if task is not None and config.get("task") != task:
        raise UserError(f"checkpoint {path} is for task {config.get('task')!r}, not {task!r}")
    if not isinstance(config.get("model"), dict):
        raise UserError(f"checkpoint {cfg_file}: field 'model' is missing or not an object")
    return config


def load_weights(path: str | os.PathLike, model: torch.nn.Module, name: str = "model.safetensors", *,
                 allow_missing: bool = False, only: tuple[str, ...] = ()) -> list[str]:
    """Load ``model.safetensors`` strictly; any missing, unexpected or mis-shaped tensor is a one-line UserError.

    ``allow_missing``: tensors of the model that the file lacks keep their current values (a model grown from a
    smaller one, e.g. with a round added); they are returned. Unexpected or mis-shaped tensors are still errors.
    ``only``: name prefixes (e.g. ``("cnn.",)``): just the tensors under them are loaded, and strictly (each prefix
    must match some tensor, in the file and in the model alike); the model's other tensors keep their values and are
    returned. A part of one model starts another (a trained CNN under a new head).
    """
    file = Path(path) / name
    if not file.is_file():
        raise UserError(f"checkpoint {path}: {name} is missing")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"checkpoint {file}: cannot read weights ({str(e).splitlines()[0]})") from None
    own = model.state_dict()
    if only:
        for prefix in only:
            lacking = [where for where, keys in (("the file", state), ("the model", own))
                       if not any(k.startswith(prefix) for k in keys)]
            if lacking:
                raise UserError(f"checkpoint {file}: no tensor named {prefix}* in {lacking[0]}")
        state = {k: v for k, v in state.items() if k.startswith(only)}
        kept = sorted(k for k in own if not k.startswith(only))
        own = {k: v for k, v in own.items() if k.startswith(only)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if (missing and not allow_missing) or unexpected:
        raise UserError(f"checkpoint {file} does not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise UserError(f"checkpoint {file} does not fit the model: {k} has shape {tuple(v.shape)}, "
                            f"the model expects {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=not (allow_missing or only))
    return sorted(missing + kept) if only else missing


def load_trainer_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``trainer.safetensors`` + ``trainer.json``; anything missing or unreadable is a one-line UserError."""
    path = Path(path)
    try:
        tensors = load_file(str(path / "trainer.safetensors"))
        meta = json.loads((path / "trainer.json").read_text())
    except FileNotFoundError as e:
        raise UserError(f"checkpoint {path}: {Path(e.filename or '?').name} is missing, cannot resume") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:  # JSON and UTF-8 errors are ValueErrors
        raise UserError(f"checkpoint {path}: trainer state is unreadable, cannot resume ({str(e).splitlines()[0]})"
                        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int) or meta["step"] < 0:
        raise UserError(f"checkpoint {path / 'trainer.json'}: field 'step' is missing or not a non-negative integer")
    return tensors, meta
