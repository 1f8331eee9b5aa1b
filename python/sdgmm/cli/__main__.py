"""python -m sdgmm.cli"""

from sdgmm.cli import main

raise SystemExit(main())
