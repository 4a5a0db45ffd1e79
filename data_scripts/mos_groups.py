"""The MOS paper's grouping of the 1,000 ImageNet classes into 8 WordNet groups (Huang and Li 2021), used by the
`mos` method on the ImageNet benchmark.

Source: the authors' repository (deeplearning-wisc/large_scale_ood), file data_lists/imagenet2012_group_softmax_val_list.txt,
whose lines are `val/<wnid>/<image> <group> <index in group>`. No checksum is published: the file is checked for
structure instead (every class in exactly one group, indices 0..n-1 within each group, one class per (group, index)).
Output: ROOT/mos_groups.json = {"source": url, "groups": [[wnid, ...] per group, ordered by index in the group]}."""
from __future__ import annotations

import json
from pathlib import Path

from ssod.files import atomic_path

from .archives import downloads_dir, official_only
from .common import DataScriptError, download, is_prepared, record

URL = ("https://raw.githubusercontent.com/deeplearning-wisc/large_scale_ood/master/data_lists/"
       "imagenet2012_group_softmax_val_list.txt")
FILENAME = "imagenet2012_group_softmax_val_list.txt"
N_CLASSES, N_GROUPS = 1000, 8


def dest(root) -> Path:
    return Path(root) / "mos_groups.json"


def parse_groups(text: str, n_classes: int = N_CLASSES, n_groups: int = N_GROUPS) -> list:
    "wnid groups (ordered by index in group) from the list file; DataScriptError naming the first inconsistency."
    where = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 3:
            raise DataScriptError(f"{FILENAME} line {i}: expected '<path> <group> <index>', got {line!r}")
        path, g, j = " ".join(parts[:-2]), parts[-2], parts[-1]
        wnid = Path(path).parent.name
        try:
            key = (int(g), int(j))
        except ValueError:
            raise DataScriptError(f"{FILENAME} line {i}: group and index must be integers, got {g!r} {j!r}") from None
        if where.setdefault(wnid, key) != key:
            raise DataScriptError(f"{FILENAME} line {i}: class {wnid} is in group/index {key} and {where[wnid]}")
    if len(where) != n_classes:
        raise DataScriptError(f"{FILENAME}: expected {n_classes} classes, found {len(where)}")
    groups = {}
    for wnid, (g, j) in where.items():
        groups.setdefault(g, {})
        if j in groups[g]:
            raise DataScriptError(f"{FILENAME}: group {g} index {j} holds both {groups[g][j]} and {wnid}")
        groups[g][j] = wnid
    if sorted(groups) != list(range(n_groups)):
        raise DataScriptError(f"{FILENAME}: expected groups 0..{n_groups - 1}, found {sorted(groups)}")
    for g, members in groups.items():
        if sorted(members) != list(range(len(members))):
            raise DataScriptError(f"{FILENAME}: the indices of group {g} are not 0..{len(members) - 1}")
    return [[groups[g][j] for j in range(len(groups[g]))] for g in range(n_groups)]


def prepare(root, cache=None, source="auto", log=print, n_classes: int = N_CLASSES, n_groups: int = N_GROUPS):
    official_only("mos_groups", source)
    out = dest(root)
    if is_prepared(root, "mos_groups", out, log):
        return
    path = download(URL, downloads_dir(root) / FILENAME, None)
    write_groups(root, path.read_text(), n_classes, n_groups, log, URL)


def write_groups(root, text: str, n_classes: int = N_CLASSES, n_groups: int = N_GROUPS, log=print, source=URL,
                 fixture=False):
    "ROOT/mos_groups.json from the text of the MOS list file, atomically, recorded in the manifest."
    out = dest(root)
    groups = parse_groups(text, n_classes, n_groups)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps({"source": source, "groups": groups}, indent=1))
    record(root, [out], "mos_groups", fixture=fixture)
    log(f"mos_groups: {n_groups} groups of {[len(g) for g in groups]} classes -> {out}")
    return out
