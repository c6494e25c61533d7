import sys

from aura_tui.cli import main

sys.exit(main())
