"""verify-app's `notices-missing`: an app that ships llama-server must reproduce its notices.

llama.cpp and the code it vendors are MIT-style licensed: their notices must ship with the app.
macOS shows Contents/Resources/Credits.html (or Credits.rtf / Credits.rtfd) in the standard
About window, so that, or any notices/licenses file (or folder) in Resources, must mention
llama.cpp.
Files are opened only when regular (mapped, never a FIFO) and read up to MAX_NOTICE bytes.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, warning
from llamabuild.core.mapped import open_mapped

MAX_NOTICE = 16 * 1024 * 1024  # a notices file this big is not one
MAX_ENTRIES = 10_000  # files looked at in Resources and its *.lproj folders
NOTICE_NAME = re.compile(r"credits|notice|licen[cs]e|acknowledg|third.?party", re.I)
MENTION = re.compile(rb"llama[.\-_ ]?cpp", re.I)


def candidates(resources: Path) -> list[Path]:
    """Notices-named files in Resources, and every file of a notices-named folder, a .rtfd or a
    .lproj's notices (two levels at most; entries bounded)."""
    found: list[Path] = []
    queue: list[tuple[Path, bool, int]] = [(resources, False, 0)]
    seen = 0
    while queue and seen < MAX_ENTRIES:
        folder, every_file, depth = queue.pop(0)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)[:MAX_ENTRIES]
        except OSError:
            continue
        for entry in entries:
            seen += 1
            named = bool(NOTICE_NAME.search(entry.name)) or entry.name.endswith(".rtfd")
            if entry.is_dir(follow_symlinks=False):
                if depth < 2 and (named or entry.name.endswith(".lproj")):
                    queue.append((Path(entry.path), named or every_file, depth + 1))
            elif named or every_file:
                found.append(Path(entry.path))
    return found


def mentions_llama(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            return False
        with open_mapped(path) as mm:
            return MENTION.search(mm[: min(len(mm), MAX_NOTICE)]) is not None
    except (InputError, OSError):
        return False


def check_notices(app: Path, helper: Path) -> list[Finding]:
    """`notices-missing` when the app ships the helper and no notices file names llama.cpp."""
    try:
        if not stat.S_ISREG(helper.lstat().st_mode):
            return []
    except OSError:
        return []  # no helper: helper-missing says so
    resources = app / "Contents" / "Resources"
    if any(mentions_llama(p) for p in candidates(resources)):
        return []
    return [
        warning(
            "notices-missing",
            "the app ships llama-server but no Credits.html, Credits.rtf or notices file in "
            "Contents/Resources mentions llama.cpp (its MIT license asks for the notice)",
            path=str(resources),
            hint="add dist/<recipe>/Credits.html from `llamabuild build` to the app's "
            "Resources (Copy Bundle Resources), or merge THIRD_PARTY_NOTICES.txt into yours",
        )
    ]
