"""The Chat tab: its pane, its screens, its own widgets and stylesheets."""
