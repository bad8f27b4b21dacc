"""`python -m dto_humans_hub ...`: see dto_humans_hub.cli."""

import sys

from dto_humans_hub.cli import main

sys.exit(main())
