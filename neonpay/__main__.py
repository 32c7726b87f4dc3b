"""``python -m neonpay`` runs the command line."""

import sys

from neonpay.cli import main

sys.exit(main())
