"""``python -m pprl.cli ...``: the same as the ``pprl`` console script."""
import sys

from .app import main

sys.exit(main())
