import pathlib
import sys

# The oracles are plain modules next to the tests.
sys.path.insert(0, str(pathlib.Path(__file__).parent))
