"""``python -m relnet ...``: the same as the ``relnet`` command."""

from relnet.cli import main

raise SystemExit(main())
