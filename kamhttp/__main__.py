"""``python -m kamhttp`` and the ``kamhttp`` console script: the subcommands of :mod:`.cli`."""
import sys

from .cli import main


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
