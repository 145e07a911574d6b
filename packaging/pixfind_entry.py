"""The bundle's entry point: the same `pixfind` command line (and window) as the pip install's console script."""

from desktop_app.cli import run

if __name__ == "__main__":
    run()
