"""The Tunnels tab: its pane, its screens, its own widgets and stylesheets."""
