"""Entry point of ``python3 tools/gpu_check``: put the repository, ``backends/`` and ``tools/`` on the
path (nothing is installed), then run the orchestrator."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "tools", ROOT / "backends", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from gpu_check.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
