"""Widgets of the panes: gauges, charts, GPU cards, the GPU process table."""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


class ComponentStyles(Widget):
    """Component-class styles looked up once per theme, not once per frame."""

    _sparktui_styles: dict[str, Style] | None = None

    def component_style(self, name: str) -> Style:
        cache = self._sparktui_styles
        if cache is None:
            cache = self._sparktui_styles = {}
        style = cache.get(name)
        if style is None:
            style = cache[name] = self.get_component_rich_style(name, partial=True)
        return style

    def notify_style_update(self) -> None:
        self._sparktui_styles = None  # the theme or the CSS changed
        super().notify_style_update()
