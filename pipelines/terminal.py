"""What the command line shows on a terminal: no native log lines, durations, a summary.

TensorFlow 2.21 writes its C++ log lines (oneDNN, CUDA drivers and CPU features at start-up,
the TFLite converter's progress, runtime notes) straight to file descriptor 2, some before its
logging is set up, so TF_CPP_MIN_LOG_LEVEL does not hold them back. `quiet_native_logs` sends
fd 2 to a file while a command runs and then shows only the lines that are not such logs;
Python's own stderr (progress bars, warnings, errors) stays on the terminal.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile

# Substrings of TensorFlow's and LiteRT's unprefixed native lines that say nothing to a user.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cudart_stub.cc",
    "cuda_platform.cc",
    "cpu_feature_guard.cc",
    "To enable the following",
    "rebuild TensorFlow with the appropriate compiler flags",
    "Unable to register cu",
    "computation_placer.cc",
    "cuda_dnn.cc",
    "cuda_fft.cc",
    "cuda_blas.cc",
    "cuInit",
    "Created TensorFlow Lite XNNPACK delegate",
    "fully_quantize: ",
)
# A line of TensorFlow's native (absl C++) logging: "I0000 00:00:1795.1  123 file.cc:45] ..."
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\]")


def is_noise(line: str) -> bool:
    """Whether `line` is a native TensorFlow log line (or blank)."""
    return (
        not line.strip()
        or bool(NATIVE_LOG.match(line))
        or any(noise in line for noise in STARTUP_NOISE)
    )


@contextlib.contextmanager
def _captured_stderr():
    """Yield a list that receives, on exit, the lines written to file descriptor 2 meanwhile."""
    sys.stderr.flush()
    saved, lines = os.dup(2), []
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += capture.read().decode("utf-8", "replace").splitlines()


def _on_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def quiet_native_logs(verbose=False):
    """Keep native log lines off the terminal while the block runs (all of them if verbose)."""
    if verbose:
        yield
        return
    python_stderr = sys.stderr
    # Python's writes keep going to the terminal through a copy of fd 2 (when sys.stderr is
    # fd 2 at all: under Jupyter or pytest it is not, and stays as it is).
    terminal = os.fdopen(os.dup(2), "w", buffering=1) if _on_fd2(python_stderr) else None
    try:
        with _captured_stderr() as captured:
            if terminal is not None:
                sys.stderr = terminal
            try:
                yield
            finally:
                sys.stderr = python_stderr
    finally:
        if terminal is not None:
            _repoint_log_handlers(terminal, python_stderr)
            terminal.close()
        kept = [line for line in captured if not is_noise(line)]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def _repoint_log_handlers(old, new):
    """Loggers set up while the block ran (TensorFlow's, absl's) write to `new` from now on,
    not to the closed `old` stream (a message at exit would be a logging traceback)."""
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


def duration(seconds: float) -> str:
    """`seconds` as "42 s", "3 min 12 s" or "2 h 05 min"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def training_summary(config, metrics) -> str:
    """One line: where the run went, its size, how long it took, its best and test metrics."""
    best, test = metrics.get("best") or {}, metrics.get("test") or {}
    derived = [k for k in best if k.startswith("val_") and k != "val_loss"]
    name = (derived or ["val_loss"])[0] if best else None
    parts = [
        f"Run {metrics['run_dir']}: {getattr(config, 'cell', config.task)}, "
        f"{metrics['parameters']:,} parameters, trained in {duration(metrics['seconds'])}"
    ]
    if name in best:
        parts.append(f"best validation {name[4:]} {best[name]:.4g} (epoch {best['epoch']})")
    test_name = name[4:] if name and name[4:] in test else "loss"
    if test_name in test:
        parts.append(f"test {test_name} {test[test_name]:.4g}")
    from pipelines.tasks import get_task  # here: it imports TensorFlow, which this module sets up

    headline, _ = get_task(config.task).headline(config)
    if headline != test_name and headline in test:  # e.g. text's stream_bits_per_char
        parts.append(f"{headline} {test[headline]:.4g}")
    return "; ".join(parts)
