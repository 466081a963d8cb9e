"""Cross-Encoder Explorer: `python app.py [--model PATH ...] [--index DIR]` (host and port from
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; `python app.py --help` lists the options)."""

import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from explorer.cli import parse_start_arguments, register_models  # noqa: E402
from explorer.store.cases import check_default_store  # noqa: E402
from explorer.ui.app import build_app, launch_options, warm_up  # noqa: E402
from explorer.ui.served_files import start_sweeper  # noqa: E402

start = parse_start_arguments()
register_models(start.model)  # before the page is built: the pickers offer them
if start.index:
    os.environ["EXPLORER_INDEX"] = start.index  # the Compare tab offers it as a corpus
demo = build_app()

if __name__ == "__main__":
    problem = check_default_store()  # the saved cases' database, checked before the first visitor
    if problem:
        print(f"Saved cases are unavailable: {problem}", file=sys.stderr, flush=True)
    warm_up()  # both default models loaded and run once before the first visitor
    start_sweeper()  # per-request files older than their age go, even with no new request
    # One comparison at a time fits 2 CPU cores; others wait in the queue and see their place.
    demo.queue(default_concurrency_limit=1, max_size=64).launch(**launch_options())
