"""Cross-Encoder Explorer: `python app.py [--index DIR]` (host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)."""

import argparse
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

_parser = argparse.ArgumentParser(description="Cross-Encoder Explorer")
_parser.add_argument("--index", metavar="DIR", help="a prebuilt index (python -m explorer index) offered as a corpus; "
                                                  "or set EXPLORER_INDEX")
_options, _ = _parser.parse_known_args()
if _options.index:
    os.environ["EXPLORER_INDEX"] = _options.index

from explorer.ui.app import build_app, launch_options, warm_up  # noqa: E402

demo = build_app()

if __name__ == "__main__":
    warm_up()  # both default models loaded and run once before the first visitor
    # One comparison at a time fits 2 CPU cores; others wait in the queue and see their place.
    demo.queue(default_concurrency_limit=1, max_size=64).launch(**launch_options())
