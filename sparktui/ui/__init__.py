"""The full-screen Textual UI: `sparktui.ui.app.run_tui` is the entry point."""
