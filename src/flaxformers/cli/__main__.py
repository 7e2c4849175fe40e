import sys

from flaxformers.cli import main

sys.exit(main())
