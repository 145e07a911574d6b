"""The bundle's entry point: the same `pixfind` command line (and window) as the pip install's console script."""

import sys

from desktop_app.cli import main

if __name__ == "__main__":
    sys.exit(main())
