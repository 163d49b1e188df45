"""Models on a device's disk: the listing script, and what its output means.

Caches read (one exec, on the user's action only; never periodically):
- the Hugging Face hub cache, `${HF_HOME:-~/.cache/huggingface}/hub/models--ORG--NAME`
  with `blobs/`, `refs/main` and `snapshots/REV/` (the separator is a double
  hyphen: `models--Qwen--Qwen2.5-0.5B-Instruct` is `Qwen/Qwen2.5-0.5B-Instruct`);
  a download in progress is a `blobs/*.incomplete` file that grows;
- NVIDIA NIM's cache (`${NIM_CACHE_PATH:-~/.cache/nim}`), whose models use the
  same `models--*` layout a few levels down;
- llama.cpp GGUF files (`~/.cache/llama.cpp`, `~/models`, `~/.cache/huggingface/gguf`).
Ollama's models come from its API (/api/tags), not from here.

Sizes count each blob once (snapshots are symlinks into blobs/). "Last used"
is the newest access time of a model's files: with `relatime` (the default
mount option) it moves at most once a day, which is enough to find the
models nobody has touched in weeks.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MODELS_MARKER = "sparktui-models"

#: `sh -c MODELS_SCRIPT sparktui-models`: tagged lines, one fact each
MODELS_SCRIPT = r"""
hub="${HF_HOME:-$HOME/.cache/huggingface}/hub"
nim="${NIM_CACHE_PATH:-$HOME/.cache/nim}"
echo "H $HOME"
repo() {
  echo "M $1 $2"
  cat "$2/refs/main" 2>/dev/null | head -c 64 | sed 's/^/R /'; echo
  find "$2/blobs" -maxdepth 1 -type f -printf 'B %s %A@ %T@ %f\n' 2>/dev/null
  for c in "$2"/snapshots/*/config.json; do [ -f "$c" ] && echo "C $c" && break; done
}
if [ -d "$hub" ]; then
  echo "D hf $hub"
  for d in "$hub"/models--*; do [ -d "$d" ] && repo hf "$d"; done
fi
if [ -d "$nim" ]; then
  echo "D nim $nim"
  find "$nim" -maxdepth 4 -type d -name 'models--*' 2>/dev/null | while read -r d; do
    repo nim "$d"; done
fi
for g in "$HOME/.cache/llama.cpp" "$HOME/models" "${HF_HOME:-$HOME/.cache/huggingface}/gguf"; do
  [ -d "$g" ] && find "$g" -maxdepth 3 -type f -name '*.gguf' -printf 'G %s %A@ %T@ %p\n' \
    2>/dev/null
done
exit 0
"""


def models_command() -> str:
    return f"sh -c {shlex.quote(MODELS_SCRIPT)} {MODELS_MARKER}"


@dataclass
class CachedModel:
    """One model on disk."""

    source: str  # "hf", "nim", "gguf", "ollama"
    name: str  # ORG/NAME, a GGUF file name, or an Ollama tag
    path: str  # what a delete removes (a models--* folder or a .gguf file); "" for Ollama
    size_bytes: int = 0  # complete files
    last_used: float | None = None  # unix time (atime; relatime: about a day's precision)
    modified: float | None = None
    revision: str | None = None
    config_path: str | None = None  # a snapshot's config.json, for the fit arithmetic
    downloading: dict[str, int] = field(default_factory=dict)  # .incomplete blob -> bytes
    in_use_by: tuple[str, ...] = ()  # running containers that use it

    @property
    def id(self) -> str:
        return f"{self.source}:{self.path or self.name}"

    @property
    def downloading_bytes(self) -> int:
        return sum(self.downloading.values())


@dataclass
class ModelListing:
    home: str | None = None
    roots: dict[str, str] = field(default_factory=dict)  # source -> cache folder
    models: list[CachedModel] = field(default_factory=list)


def repo_name(folder: str) -> str | None:
    """`.../models--ORG--NAME` -> 'ORG/NAME' (double hyphens; a name may hold single ones)."""
    base = folder.rstrip("/").rsplit("/", 1)[-1]
    if not base.startswith("models--"):
        return None
    parts = base[len("models--"):].split("--")
    if not parts or not all(parts):
        return None
    return "/".join(parts)


_FLOAT = re.compile(r"^\d+(?:\.\d+)?$")


def _time(text: str) -> float | None:
    return float(text) if _FLOAT.match(text) else None


def parse_listing(output: str) -> ModelListing:
    """The script's output -> models (lines it does not know are skipped)."""
    listing = ModelListing()
    current: CachedModel | None = None
    for line in output.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "H":
            listing.home = rest
        elif tag == "D":
            source, _, root = rest.partition(" ")
            listing.roots[source] = root
        elif tag == "M":
            source, _, path = rest.partition(" ")
            name = repo_name(path)
            current = None
            if name is not None:
                current = CachedModel(source, name, path)
                listing.models.append(current)
        elif tag == "R" and current is not None:
            current.revision = rest.strip() or None
        elif tag == "B" and current is not None:
            fields = rest.split(" ", 3)
            if len(fields) != 4 or not fields[0].isdigit():
                continue
            size, atime, mtime, name = int(fields[0]), _time(fields[1]), _time(fields[2]), fields[3]
            if name.endswith(".incomplete"):
                current.downloading[name] = size
            else:
                current.size_bytes += size
            current.last_used = _newest(current.last_used, atime)
            current.modified = _newest(current.modified, mtime)
        elif tag == "C" and current is not None:
            current.config_path = rest
        elif tag == "G":
            fields = rest.split(" ", 3)
            if len(fields) != 4 or not fields[0].isdigit():
                continue
            path = fields[3]
            listing.models.append(CachedModel(
                "gguf", path.rsplit("/", 1)[-1], path, int(fields[0]), _time(fields[1]),
                _time(fields[2])))
    return listing


def _newest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def uses_model(model: CachedModel, mounts: list[tuple[str, str]], words: str) -> bool:
    """Does a container with these bind mounts (source, destination) and this command
    line / environment use `model`? Its folder (or file) mounted, or a cache folder
    above it mounted while the command names the model."""
    path = model.path.rstrip("/")
    for source, _destination in mounts:
        source = source.rstrip("/")
        if not source:
            continue
        if source == path or source.startswith(path + "/"):
            return True  # the model's own folder (or something inside it) is mounted
        if path.startswith(source + "/") and _names(model, words):
            return True  # the whole cache is mounted, and the model is named
    return False


def _names(model: CachedModel, words: str) -> bool:
    if model.source == "gguf":
        return model.name in words
    return model.name in words or model.path.rsplit("/", 1)[-1] in words


def safe_to_delete(model: CachedModel, listing: ModelListing) -> str | None:
    """Why `model.path` must not be removed, or None when it is a model folder/file."""
    path = model.path
    if model.source == "ollama":
        return None
    if not path.startswith("/") or "/../" in path or path.endswith("/.."):
        return f"{path!r} is not an absolute, plain path"
    if model.source in ("hf", "nim"):
        root = listing.roots.get(model.source)
        if repo_name(path) is None:
            return f"{path} is not a models--ORG--NAME folder"
        if root is None or not path.startswith(root.rstrip("/") + "/"):
            return f"{path} is not inside the {model.source} cache"
        return None
    if model.source == "gguf":
        return None if path.endswith(".gguf") else f"{path} is not a .gguf file"
    return f"unknown cache {model.source!r}"
