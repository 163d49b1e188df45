"""The full-screen Textual UI: `sparktui.ui.run.run_tui` is the entry point."""
