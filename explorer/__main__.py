"""`python -m explorer ...`: see explorer/cli.py."""

import os
import sys

# Quiet the libraries' progress bars and advisory warnings on stdout/stderr of a CLI.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from explorer.cli import main  # noqa: E402

sys.exit(main())
