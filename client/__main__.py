"""`python -m client …` runs the `harken` command where its console script is not installed (a Lambda layer, a source tree)."""
import sys

from .cli import main

sys.exit(main())
