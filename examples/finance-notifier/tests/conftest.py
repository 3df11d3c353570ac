import sys
from pathlib import Path

# The example is run from its folder (run.sh sets PYTHONPATH the same way).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
