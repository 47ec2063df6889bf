"""`python -m arena` is the `arena` command."""

from arena.cli import app

if __name__ == "__main__":
    app(prog_name="arena")
