"""tcmalloc for training: seq2seq-train runs itself again with it preloaded, where it is installed.

glibc's malloc, even told to keep freed memory (seq2seq.training.setup.keep_freed_memory),
fragments over a long CPU run: on the en-de recipe resident memory climbed in steps of 22-98 MiB,
+11.6% from minute 5 to minute 25. With gperftools' tcmalloc preloaded and TCMALLOC_RELEASE_RATE=0
(it keeps freed pages, as glibc is told to) the same run grew +4.9%, from 330 MiB lower, to the
same BLEU (docs/logs/2026-12-07-allocator.md). A process's allocator is fixed before it starts, so
the command executes itself again with LD_PRELOAD set, as torch.backends.xeon.run_cpu
--enable-tcmalloc does for its launcher; on Debian and Ubuntu the library is the package
libtcmalloc-minimal4.

SEQ2SEQ_ALLOCATOR chooses: `tcmalloc` (the default: preload it where found, else keep glibc's and
say so) or `system` (never preload). CUDA runs keep the system's allocator, the measurements being
of CPU runs: a recipe's device cuda, or auto on a machine with an NVIDIA driver (judged by its
device file, as torch is not imported yet). Imports no torch: it runs before anything heavy is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Literal, get_args

Allocator = Literal["tcmalloc", "system"]
ALLOCATOR_VARIABLE = "SEQ2SEQ_ALLOCATOR"
# gperftools' build without the heap profiler first: the allocator alone is what is wanted.
TCMALLOC_NAMES = ("tcmalloc_minimal", "tcmalloc")
# tcmalloc's own settings, unless the user set them: keep freed pages (release rate 0), and do not
# print a line to stderr for every allocation above 1 GiB (its default report threshold).
NVIDIA_DEVICE = "/dev/nvidiactl"  # present where NVIDIA's driver is loaded
TCMALLOC_SETTINGS = {"TCMALLOC_RELEASE_RATE": "0", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}


def chosen_allocator(environ: Mapping[str, str]) -> Allocator:
    """SEQ2SEQ_ALLOCATOR's value (default tcmalloc); a ValueError names the valid ones."""
    value = environ.get(ALLOCATOR_VARIABLE, "tcmalloc")
    if value not in get_args(Allocator):
        raise ValueError(f"{ALLOCATOR_VARIABLE} must be one of {', '.join(get_args(Allocator))}; got {value!r}")
    return value  # type: ignore[return-value]


def find_tcmalloc() -> str | None:
    """The file name of an installed tcmalloc that the dynamic loader finds, or None (and None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    from ctypes.util import find_library

    for name in TCMALLOC_NAMES:
        found = find_library(name)
        if found:
            return found
    return None


def preloaded(environ: Mapping[str, str]) -> bool:
    return any("tcmalloc" in os.path.basename(entry) for entry in environ.get("LD_PRELOAD", "").replace(":", " ").split())


def tcmalloc_environment(environ: Mapping[str, str], library: str) -> dict[str, str]:
    """environ with `library` preloaded (before whatever LD_PRELOAD held) and tcmalloc's settings."""
    preload = " ".join(filter(None, (library, environ.get("LD_PRELOAD", ""))))
    return {**TCMALLOC_SETTINGS, **environ, "LD_PRELOAD": preload}


def run_with_tcmalloc(device: str) -> str:
    """Execute this command again with tcmalloc preloaded, when that is chosen, the device is not CUDA,
    the library is installed and not preloaded yet (then this does not return); otherwise return
    a line for the log that says which allocator the run has."""
    choice = chosen_allocator(os.environ)
    if preloaded(os.environ):
        return "allocator: tcmalloc (preloaded)"
    if choice == "system":
        return f"allocator: the system's ({ALLOCATOR_VARIABLE}=system)"
    if device.startswith("cuda") or (device == "auto" and os.path.exists(NVIDIA_DEVICE)):
        return "allocator: the system's (a CUDA run)"
    library = find_tcmalloc()
    if library is None:
        return (
            "allocator: the system's; tcmalloc is not installed (apt install libtcmalloc-minimal4), which keeps "
            "long CPU runs' memory flatter (docs/guides/training.md)"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    # sys.orig_argv: the interpreter's own command line, `-m seq2seq.cli.train` or the script's path.
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], tcmalloc_environment(os.environ, library))
    raise AssertionError("os.execve returned")  # pragma: no cover
