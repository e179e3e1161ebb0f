"""``python -m kamhttp``: see :mod:`kamhttp.cli`."""
from .cli import main

raise SystemExit(main())
