"""Dataset tools shared by `python -m data_pipelines`: staged output folders, square images, dHash dedup."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from core.errors import DataError
from core.images import open_image
from data_pipelines.images import fit_square, list_images, to_mode


@contextlib.contextmanager
def staged_dir(out: str):
    """Yields a temporary folder beside `out`, renamed to `out` only if the block succeeds.

    `out` must not exist or be empty, so a failed or interrupted tool (an error, Ctrl+C, SIGTERM
    through python -m data_pipelines) leaves nothing behind, not even the parent folders it made,
    and never mixes its output with an older run's.
    """
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise DataError(f"--out is a file, not a folder: {out}")
    try:
        if os.path.isdir(out) and os.listdir(out):
            raise DataError(f"output folder is not empty: {out}")
    except OSError as e:
        raise DataError(f"cannot read output folder {out}: {e.strerror or e}") from None
    parent = os.path.dirname(out)
    made = []  # the parent folders this call creates, deepest last
    probe = parent
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        made.insert(0, probe)
        probe = os.path.dirname(probe)
    tmp = None
    try:
        try:
            os.makedirs(parent, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        except OSError as e:
            raise DataError(f"cannot create output folder {out}: {e.strerror or e}") from None
        yield tmp
        try:
            if os.path.isdir(out):
                os.rmdir(out)
            os.replace(tmp, out)
        except OSError as e:
            raise DataError(f"cannot create output folder {out}: {e.strerror or e}") from None
        made = []
    finally:
        if tmp is not None and os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only if still empty


def save_into(img: Image.Image, tmp: str, rel: str, out: str) -> None:
    """Saves `img` as tmp/rel (a staged_dir), folders made; a failed write (disk full, ...) is one line naming out/rel."""
    dest = os.path.join(tmp, rel)
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        img.save(dest)
    except OSError as e:
        raise DataError(f"cannot write {os.path.join(out, rel)}: {e.strerror or e}") from None


def readable_images(paths, on_error: str, skipped: list, log=print, exif: bool = True):
    """Yields (path, RGB image) for each path that opens. An unreadable one stops everything
    (on_error "fail") or is skipped: its reason is appended to `skipped` and logged."""
    for path in paths:
        try:
            img = open_rgb(path, exif=exif)
        except DataError as e:
            if on_error == "fail":
                raise
            skipped.append(str(e))
            log(f"skipped: {e}")
            continue
        yield path, img


def open_rgb(path: str, exif: bool = True) -> Image.Image:
    """First frame of any image as RGB (transparency on white), upright (`exif`: its EXIF orientation
    applied) and 16-bit grey scaled to 8 bits (core.images.open_image); DataError naming the file."""
    return to_mode(open_image(path, exif=exif), 3)


def output_stems(src_root: str, paths: list[str]) -> list[str]:
    """Relative output paths without extension mirroring `paths` under `src_root`, one for each path
    and distinct ignoring case (outputs are all .png, and a folder may be copied to a case-insensitive
    disk): face.png -> face, face.jpg beside it -> face-jpg, and -2, -3, ... should that be taken too.
    The stem of a .png keeps its plain name; the order of `paths` decides the rest, so the same
    folder always gives the same names."""
    root = os.path.abspath(src_root)
    rels = [os.path.basename(p) if os.path.abspath(p) == root else os.path.relpath(p, src_root) for p in paths]
    split = [os.path.splitext(r) for r in rels]
    counts = collections.Counter(stem.lower() for stem, _ in split)
    stems: list[str | None] = [None] * len(split)
    taken = set()
    for i, (stem, ext) in enumerate(split):
        if counts[stem.lower()] == 1 or (ext.lower() == ".png" and stem.lower() not in taken):
            stems[i] = stem
            taken.add(stem.lower())
    for i, (stem, ext) in enumerate(split):
        if stems[i] is None:
            base = f"{stem}-{ext.lstrip('.').lower() or 'file'}"
            name, k = base, 2
            while name.lower() in taken:
                name, k = f"{base}-{k}", k + 1
            stems[i] = name
            taken.add(name.lower())
    return stems


def square_images(src: str, out: str, size: int, mode: str = "pad", on_error: str = "skip", log=print) -> dict:
    """Every image under `src` (recursive) to a size x size RGB PNG under `out`, same relative paths
    (output_stems: face.jpg beside face.png becomes face-jpg.png), upright.

    mode "pad" letterboxes on white (nothing cut off); "crop" centre-crops. Names that are not
    regular files (a FIFO, a broken link) are skipped, in one line to `log`.
    """
    if size < 1:
        raise DataError(f"--size must be positive, got {size}")
    special: list = []
    paths = list_images(src, log=log, special=special)
    stems = dict(zip(paths, output_stems(src, paths)))
    written, skipped = 0, []
    with staged_dir(out) as tmp:
        for path, img in readable_images(paths, on_error, skipped, log):
            save_into(fit_square(img, size, mode), tmp, stems[path] + ".png", out)
            written += 1
        if not written:
            raise DataError(f"none of the {len(paths)} images in {src} could be read")
    return {"images": len(paths), "written": written, "skipped": len(skipped), "not_regular": len(special)}


def dhash(img: Image.Image, hash_size: int = 8) -> int:
    """Difference hash: grey, (hash_size+1) x hash_size, one bit per left<right neighbour pair."""
    grey = img.convert("L").resize((hash_size + 1, hash_size), Image.BILINEAR)
    a = np.asarray(grey, dtype=np.int16)
    bits = (a[:, 1:] > a[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def same_files(paths: list[str]) -> list[list[str]]:
    """`paths` grouped by the file they name (a symbolic or hard link and its target are one file);
    within a file, names that are not symbolic links first (the real file before the links to it),
    then in the order given; the files in the order of those first names in `paths`."""
    by_file: dict[tuple, list[str]] = {}
    for path in paths:
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
        except OSError:
            key = ("path", path)  # gone since it was listed: on its own (and unreadable later)
        by_file.setdefault(key, []).append(path)
    order = {path: i for i, path in enumerate(paths)}
    return sorted((sorted(names, key=os.path.islink) for names in by_file.values()), key=lambda names: order[names[0]])


def _alias_note(name: str, real: str) -> str:
    return f"a link to {real}" if os.path.islink(name) else f"a hard link of {real}"


def find_duplicates(paths: list[str], threshold: int = 4, on_error: str = "skip", log=print):
    """Groups of near-identical images: dHash Hamming distance <= threshold.

    Returns (groups, skipped). A group is a list of (path, note): the first the one to keep (note
    None), the others its duplicates, note "" or what makes one the same file as another ("a link to
    X"). Names of one file (links) are one picture, hashed once. The file kept is the first (in path
    order) that has a name that is not a symbolic link, so a folder is never left holding only a link
    to a file outside it (or a link to a deleted file); its own links are listed as duplicates of it
    (deleting one removes the link, not the picture). Images are compared in chunks, so tens of
    thousands fit in memory.
    """
    files = same_files(paths)
    first_names = [names[0] for names in files]
    hashes, kept, skipped = [], [], []
    for path, img in readable_images(first_names, on_error, skipped, log):
        hashes.append(dhash(img))
        kept.append(path)
    names_of = {names[0]: names for names in files}
    h = np.array(hashes, dtype=np.uint64)
    parent = list(range(len(h)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    chunk = 1024
    for start in range(0, len(h), chunk):
        block = h[start : start + chunk]
        dist = np.bitwise_count(block[:, None] ^ h[None, :])
        rows, cols = np.nonzero(dist <= threshold)
        for r, c in zip(rows + start, cols):
            if c > r:
                a, b = root(int(r)), root(int(c))
                if a != b:
                    parent[max(a, b)] = min(a, b)
    similar: dict[int, list[str]] = {}
    for i, path in enumerate(kept):
        similar.setdefault(root(i), []).append(path)
    groups = []
    for firsts in similar.values():
        # the file to keep: the first with a real (not a symbolic link) name, else the first
        firsts = sorted(firsts, key=lambda p: os.path.islink(p))
        keep, *others = firsts
        group = [(keep, None)] + [(alias, _alias_note(alias, keep)) for alias in names_of[keep][1:]]
        for other in others:
            # a duplicate file's links go before it: deleting them first never leaves a dangling link
            group += [(alias, _alias_note(alias, other)) for alias in names_of[other][1:]] + [(other, "")]
        if len(group) > 1:
            groups.append(group)
    return groups, skipped


def report_duplicates(groups, delete: bool = False, log=print) -> None:
    """Lists `groups` (find_duplicates) to `log`, "keep PATH" and a line for each duplicate; with `delete`,
    deletes each duplicate before saying so, after checking that the file kept is still there. A file
    that cannot be deleted stops it in one line saying how many went before it."""
    deleted = 0
    for group in groups:
        keep = group[0][0]
        if delete and not os.path.isfile(keep):
            raise DataError(f"{keep} is gone, so its duplicates were not deleted ({deleted} file(s) deleted before)")
        log(f"keep {keep}")
        for path, note in group[1:]:
            if delete:
                try:
                    os.remove(path)  # a link: the link only, never the file it names
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise DataError(f"cannot delete {path}: {e.strerror or e} ({deleted} file(s) deleted before it)") from None
                deleted += 1
            log(f"  {'deleted' if delete else 'duplicate'} {path}" + (f" ({note})" if note else ""))
