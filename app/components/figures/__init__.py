"""Figure builders of the app's pages: pure functions, data in, ``go.Figure`` out (one module
per view); the pages only lay them out."""
