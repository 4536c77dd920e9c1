"""``python -m daemon.cli``: the ``auditcorr`` command without its installed script."""

import sys

from daemon.cli.main import main

sys.exit(main())
