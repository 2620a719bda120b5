"""The files a server serves: models under its root folder, and nothing else.

Every path a GUI names (the model field, Recent, the browser, a direction file, a run directory, model
B, a projection's VGG16 and LPIPS weights files) is the server's, relative to the root (an absolute
path is accepted only if it lies inside the root). A path that leads outside the root, through ".."
or through a symbolic link, a file that is not a model, and a folder that is not a training run are
refused with a ServedPathError that says which.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Any

from renderer.conventions import SNAPSHOT_NAME
from renderer.directions import FILE, DirectionSource
from renderer.protocol import CompareRequest, JobRequest, ProjectionRequest, RenderArgs, RunTimelineRequest
from renderer.remote.messages import DirectoryEntry, DirectoryListing
from renderer.remote.walk import replace_args, replace_instances

MODEL_SUFFIXES = (".pkl", ".safetensors", ".pt")
WEIGHTS_SUFFIXES = (".pth", ".pt")
MAX_ENTRIES = 10_000


class ServedPathError(ValueError):
    """A path the server will not open for a GUI."""


class ServedFiles:
    def __init__(self, root: str | os.PathLike) -> None:
        root_path = Path(root).resolve()
        if not root_path.is_dir():
            raise ServedPathError(f"The served folder {root} is not a folder.")
        self.root = root_path

    def model_path(self, user_path: str) -> Path:
        """The model file or training run directory that `user_path` names, as an absolute path."""
        path = self._inside(user_path, "model")
        try:
            mode = path.stat().st_mode
        except OSError:
            raise ServedPathError(f"{user_path}: no such file in the served folder {self.root}") from None
        if stat.S_ISREG(mode):
            if path.suffix.lower() not in MODEL_SUFFIXES:
                raise ServedPathError(f"{user_path}: not a model file (the server opens {', '.join(MODEL_SUFFIXES)} "
                                      "files and training run folders)")
            return path
        if stat.S_ISDIR(mode):
            if not self._is_run(path):
                raise ServedPathError(f"{user_path}: a folder without network-snapshot-NNNNNN.pkl or .safetensors "
                                      "files, so not a training run")
            return path
        raise ServedPathError(f"{user_path}: not a regular file or folder")

    def run_path(self, user_path: str) -> Path:
        """The training run directory that `user_path` names, as an absolute path."""
        path = self._inside(user_path, "run directory")
        if not path.is_dir():
            raise ServedPathError(f"{user_path}: no such folder in the served folder {self.root}")
        if not self._is_run(path):
            raise ServedPathError(f"{user_path}: a folder without network-snapshot-NNNNNN.pkl or .safetensors "
                                  "files, so not a training run")
        return path

    def direction_file(self, user_path: str) -> Path:
        """The direction file (.npy) that `user_path` names, as an absolute path."""
        return self._data_file(user_path, "direction file", (".npy",), "not a direction file (a .npy array)")

    def weights_file(self, user_path: str) -> Path:
        """A projection's VGG16 or LPIPS weights file (.pth or .pt) that `user_path` names, absolute."""
        return self._data_file(user_path, "weights file", WEIGHTS_SUFFIXES,
                               f"not a weights file (the server reads {', '.join(WEIGHTS_SUFFIXES)} torch.save files)")

    def _data_file(self, user_path: str, what: str, suffixes: tuple[str, ...], not_it: str) -> Path:
        """A regular file under the root with one of `suffixes`; ServedPathError saying `not_it` otherwise."""
        path = self._inside(user_path, what)
        if path.suffix.lower() not in suffixes:
            raise ServedPathError(f"{user_path}: {not_it}")
        try:
            mode = path.stat().st_mode
        except OSError:
            raise ServedPathError(f"{user_path}: no such file in the served folder {self.root}") from None
        if not stat.S_ISREG(mode):
            raise ServedPathError(f"{user_path}: not a regular file")
        return path

    def resolve_in(self, message: Any) -> Any:
        """`message` with every path the server will open resolved (to an absolute path under the root):
        the model of every RenderArgs, every direction file, a run over time's directory, model B of
        an A/B comparison and a projection's weights files. ServedPathError if one is refused, or if
        one names a W file (a path on the GUI's machine)."""
        message = replace_args(message, self._resolved)
        message = replace_instances(message, DirectionSource, self._resolved_source)
        if isinstance(message, JobRequest):
            spec = message.spec
            if isinstance(spec, RunTimelineRequest):
                spec = dataclasses.replace(spec, run_dir=str(self.run_path(spec.run_dir)))
            elif isinstance(spec, CompareRequest):
                spec = dataclasses.replace(spec, model_b=str(self.model_path(spec.model_b)))
            elif isinstance(spec, ProjectionRequest) and (spec.vgg_path or spec.lpips_path):
                spec = dataclasses.replace(
                    spec, vgg_path=str(self.weights_file(spec.vgg_path)) if spec.vgg_path else "",
                    lpips_path=str(self.weights_file(spec.lpips_path)) if spec.lpips_path else "")
            message = message if spec is message.spec else dataclasses.replace(message, spec=spec)
        return message

    def _resolved_source(self, source: DirectionSource) -> DirectionSource:
        if source.method != FILE:
            return source
        return dataclasses.replace(source, path=str(self.direction_file(source.path)))

    def _resolved(self, args: RenderArgs) -> RenderArgs:
        if args.w_file is not None:
            raise ServedPathError("A W file path names a file on the GUI's machine; its contents travel with "
                                  "the request instead.")
        return args.replace(model=str(self.model_path(args.model))) if args.model else args

    def listing(self, user_path: str = "") -> DirectoryListing:
        """The folders and models in a folder under the root, folders first, by name. Entries whose
        symbolic links leave the root are left out."""
        try:
            folder = self._inside(user_path or ".", "folder")
            if not folder.is_dir():
                raise ServedPathError(f"{user_path}: not a folder")
            names = sorted(os.listdir(folder))[:MAX_ENTRIES]
        except ServedPathError as e:
            return DirectoryListing(path=user_path, error=str(e), asked=user_path)
        except OSError as e:
            return DirectoryListing(path=user_path, asked=user_path,
                                    error=f"{user_path or 'The served folder'}: cannot be listed ({e.strerror})")
        entries = []
        for name in names:
            entry = self._entry(folder / name)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: (e.kind == "model", e.name.lower()))
        relative = folder.relative_to(self.root).as_posix()
        return DirectoryListing(path="" if relative == "." else relative, entries=tuple(entries), asked=user_path)

    def _inside(self, user_path: str, what: str) -> Path:
        if not user_path or "\x00" in user_path:
            raise ServedPathError(f"No {what} path given." if not user_path else f"A {what} path with a NUL character.")
        if user_path.startswith("~"):
            raise ServedPathError(f"{user_path}: a home folder means nothing here; paths are relative to the served "
                                  f"folder {self.root}")
        candidate = Path(user_path) if os.path.isabs(user_path) else self.root / user_path
        lexical = Path(os.path.normpath(candidate))
        if not _within(lexical, self.root):
            raise ServedPathError(f"{user_path}: outside the served folder {self.root}")
        resolved = lexical.resolve()
        if not _within(resolved, self.root):
            raise ServedPathError(f"{user_path}: a symbolic link that leads outside the served folder {self.root}")
        return resolved

    def _is_run(self, folder: Path) -> bool:
        """A training run: snapshots there, none of them a link out of the root."""
        try:
            snapshots = [folder / n for n in os.listdir(folder) if SNAPSHOT_NAME.fullmatch(n)]
        except OSError:
            return False
        if any(not _within(s.resolve(), self.root) for s in snapshots):
            raise ServedPathError(f"{folder.relative_to(self.root)}: a snapshot in it is a symbolic link that leads "
                                  "outside the served folder")
        return bool(snapshots)

    def _entry(self, path: Path) -> DirectoryEntry | None:
        if path.name.startswith(".") or not _within(path.resolve(), self.root):
            return None
        try:
            info = path.stat()
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode):
            try:
                kind = "run" if self._is_run(path) else "folder"
            except ServedPathError:
                return None
            return DirectoryEntry(name=path.name, kind=kind, modified=info.st_mtime)
        if stat.S_ISREG(info.st_mode) and path.suffix.lower() in MODEL_SUFFIXES:
            return DirectoryEntry(name=path.name, kind="model", size=info.st_size, modified=info.st_mtime)
        return None


def local_listing(path: str) -> DirectoryListing:
    """A folder on this machine listed by the same rules (a local worker's model browser and follow
    run); its path is `path` as given."""
    folder = Path(path or ".").expanduser().resolve()
    listing = ServedFiles(folder.anchor).listing(str(folder))
    return dataclasses.replace(listing, path=path, asked=path)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

