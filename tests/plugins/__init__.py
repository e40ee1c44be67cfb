"""Plug-in methods defined outside the library (the proof of docs/adding-a-method.md)."""
