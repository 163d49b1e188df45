"""Colour themes read from TOML files, so users can add their own without code.

A theme file maps onto `textual.theme.Theme`:

    name = "sparktui-dark"
    primary = "#76B900"
    background = "#0B0D0B"
    dark = true
    [variables]
    footer-key-foreground = "#76B900"

Themes are looked up in the package (a wheel install), else the repository's
top-level `themes/` (an editable install), then the user's config directory;
a later file with the same name wins, so a user can restyle a shipped theme.
A broken file is reported and skipped: a typo in a theme must not stop the app.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

import sparktui

DEFAULT_THEME = "sparktui-dark"

_COLOUR_FIELDS = ("primary", "secondary", "accent", "foreground", "background", "surface",
                  "panel", "boost", "success", "warning", "error")
_BOOL_FIELDS = ("dark", "ansi")
_FLOAT_FIELDS = ("luminosity_spread", "text_alpha")


class ThemeFileError(ValueError):
    """A theme file that cannot be used, with a message that names the file."""


@dataclass
class LoadedThemes:
    themes: dict[str, Theme] = field(default_factory=dict)
    #: one line per file that was skipped or had something ignored
    problems: list[str] = field(default_factory=list)


def shipped_theme_dir() -> Path:
    """Where the themes that come with sparktui are."""
    package_dir = Path(sparktui.__file__).parent
    packaged = package_dir / "themes"  # force-included into the wheel
    if packaged.is_dir():
        return packaged
    return package_dir.parent / "themes"  # running from a checkout


def user_theme_dir() -> Path:
    from platformdirs import user_config_path

    return user_config_path("sparktui") / "themes"


def default_theme_dirs() -> list[Path]:
    return [shipped_theme_dir(), user_theme_dir()]


def _check_colour(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{path}: {key} must be a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError as exc:
        raise ThemeFileError(f"{path}: {key} = {value!r} is not a colour ({exc})") from None
    return value


def parse_theme(raw: dict[str, object], path: Path, problems: list[str]) -> Theme:
    """Build a Theme from a parsed TOML table; raise ThemeFileError if it is unusable."""
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f"{path}: needs a 'name' string")
    if "primary" not in raw:
        raise ThemeFileError(f"{path}: needs a 'primary' colour")
    kwargs: dict[str, object] = {"name": name.strip()}
    for key, value in raw.items():
        if key == "name":
            continue
        if key in _COLOUR_FIELDS:
            kwargs[key] = _check_colour(path, key, value)
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise ThemeFileError(f"{path}: {key} must be true or false, got {value!r}")
            kwargs[key] = value
        elif key in _FLOAT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ThemeFileError(f"{path}: {key} must be a number, got {value!r}")
            kwargs[key] = float(value)
        elif key == "variables":
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                raise ThemeFileError(f"{path}: [variables] must map names to strings")
            kwargs[key] = dict(value)
        else:
            problems.append(f"{path}: unknown key {key!r} ignored")
    theme = Theme(**kwargs)  # type: ignore[arg-type]
    try:
        # derives every shade: catches what only shows once the theme is applied
        theme.to_color_system().generate()
    except (ColorParseError, ValueError, TypeError) as exc:
        raise ThemeFileError(f"{path}: colours do not make a theme: {exc}") from None
    return theme


def load_theme_file(path: Path, problems: list[str] | None = None) -> Theme:
    problems = [] if problems is None else problems
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"{path}: not valid TOML: {exc}") from None
    return parse_theme(raw, path, problems)


def load_themes(directories: list[Path] | None = None) -> LoadedThemes:
    """Every usable theme in `directories` (default: shipped, then the user's)."""
    loaded = LoadedThemes()
    for directory in default_theme_dirs() if directories is None else directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = load_theme_file(path, loaded.problems)
            except ThemeFileError as exc:
                loaded.problems.append(f"theme skipped: {exc}")
                continue
            loaded.themes[theme.name] = theme
    return loaded
