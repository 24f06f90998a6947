"""The web chat (Gradio): ``qa serve`` or ``python ui.py``."""
