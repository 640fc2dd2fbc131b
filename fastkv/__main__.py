"""``python -m fastkv``: the same command line as the ``fastkv`` script."""

from fastkv.cli import main

raise SystemExit(main())
