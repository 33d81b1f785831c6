import sys

from lamfast.cli import main

sys.exit(main())
