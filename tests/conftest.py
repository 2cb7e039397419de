import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# Tests run side by side (pytest-xdist). Each worker gets a temporary folder of its own, for it
# and the programs it starts: music21 keeps its parsed scores as pickles under fixed names in
# $TMPDIR/music21, written in place, and one worker must never read another's half-written one.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _scratch = tempfile.mkdtemp(prefix=f"lstm-zoo-tests-{os.environ['PYTEST_XDIST_WORKER']}-")
    os.environ["TMPDIR"] = tempfile.tempdir = _scratch
    atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
