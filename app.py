"""Cross-Encoder Explorer: `python app.py` (host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)."""

import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from explorer.ui.app import build_app, launch_options, warm_up  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    warm_up()  # both default models loaded and run once before the first visitor
    # One comparison at a time fits 2 CPU cores; others wait in the queue and see their place.
    demo.queue(default_concurrency_limit=1, max_size=64).launch(**launch_options())
