"""``python -m edgefleet``: the same program as the ``edgefleet`` script (``edgefleet.cli``)."""

import sys

from edgefleet.cli import main

if __name__ == "__main__":
    sys.exit(main())
