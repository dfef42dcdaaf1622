"""Whether a job's size fits this machine: estimates of memory and disk, checked before the work starts.

A command that would hold a trillion samples in memory either swaps the machine to a halt or dies
with an allocation traceback minutes later. The commands estimate what their sizes (n, pool, steps,
...) need, from the shapes they know, and refuse in one line with the estimate when it cannot fit.
The estimates count the large tensors a command holds, not every temporary: they are meant to catch
sizes that are off by orders of magnitude, and to say by how much.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gan_cli.errors import UserError

# A job may use at most this share of the memory available when it starts: the estimates leave out
# temporaries (torch's copies, PIL's buffers, the allocator's slack) and other processes still run.
MEMORY_SHARE = 0.5
FLOAT = 4  # bytes of a float32, what samples, latents and features are held in
BLOCK = 4096  # a file takes whole blocks of the file system: a small PNG still uses 4 kB of disk


def available_memory() -> int:
    """Bytes of memory available to a new job: Linux's MemAvailable (free memory plus the page cache
    it can reclaim), else the free physical pages; 0 when neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not every system names these
        return 0


def free_disk(path: str | Path) -> int | None:
    """Free bytes on the file system that path is (or would be created) on, or None when it cannot be read."""
    try:
        return shutil.disk_usage(existing_ancestor(path)).free
    except OSError:
        return None


def existing_ancestor(path: str | Path) -> Path:
    """path itself when it exists, else its nearest existing parent (at worst the root)."""
    p = Path(path).expanduser().absolute()
    return next((c for c in [p, *p.parents] if c.exists()), p)


def human(size: float) -> str:
    """Bytes in decimal units, to two significant digits from 1 kB: 3.1 TB, 20 GB, 512 B."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if size < 999.5 or unit == "EB":
            break
        size /= 1000
    if unit == "B" or 9.95 <= size < 1e4:
        return f"{size:.0f} {unit}"
    return f"{size:.1f} {unit}" if size < 9.95 else f"{size:.2g} {unit}"  # beyond exabytes: 1e+12 EB


def file_blocks(size: int) -> int:
    """What a file of `size` bytes takes on disk: whole blocks."""
    return -(-size // BLOCK) * BLOCK


def png_bytes(height: int, width: int) -> int:
    """An upper bound for an RGB PNG of height x width (what save_png writes, grey images included):
    the raw pixels, one filter byte a row, and room for headers and zlib's framing. Compression only
    makes it smaller, so the disk estimate errs on the safe side."""
    return 3 * height * width + height + 1024


def check_memory(need: int, what: str, fix: str, purpose: str = "") -> None:
    """Refuse, in one line with the estimate, a job whose large tensors need more than MEMORY_SHARE of
    the available memory. `what` is the subject ("n=10 samples of 1x28x28 need"), `purpose` what for
    (" for one .png grid"), `fix` the way out. Unknown available memory (0) checks nothing."""
    available = available_memory()
    if available and need > MEMORY_SHARE * available:
        raise UserError(f"{what} about {human(need)} in memory{purpose}; this machine has {human(available)} "
                        f"available (a job may use half): {fix}")


def check_disk(need: int, where: str | Path, what: str, fix: str) -> None:
    """Refuse a job whose files need more than the free space of where they go."""
    free = free_disk(where)
    if free is not None and need > free:
        raise UserError(f"{what} about {human(need)} on disk; {existing_ancestor(where)} has {human(free)} free: {fix}")
