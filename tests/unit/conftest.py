"""Make the test helpers beside this file importable (fake_engine)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
