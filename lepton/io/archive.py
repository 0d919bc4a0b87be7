"""The `.lepton` container: a zip holding `manifest.json` and the members it names. Reading
checks the container itself (a zip, Lepton's manifest, a format version this Lepton reads, every
named member present and intact); what the members mean is checked by `model.py`.

    write_archive(dest, manifest, {"graphs/main.ir": b"...", "weights/0.npy": b"..."})
    manifest, members = read_archive(data, "model.lepton")     # members: name -> bytes

Format version 1 (manifest.json):

    {"format": "lepton-model", "format_version": 1, "lepton_version": "0.1.0",
     "name": "mlp", "signature": {...signature.py...}, "max_batch": 64 or null,
     "graphs": [{"batch": 1 or null, "file": "graphs/b1.ir"}, ...],
     "weights": [{"name": "fc1.weight", "file": "weights/0.npy",
                  "shape": [256, 784], "dtype": "float32"}, ...]}

Graphs are IR text (lepton/ir printer); weights are `.npy` members (read with
allow_pickle=False). Nothing in the file is code that runs.
"""
from __future__ import annotations

import io
import json
import zipfile
import zlib

FORMAT = "lepton-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def write_archive(dest, manifest: dict, members: dict[str, bytes]) -> None:
    """Writes the zip to `dest`, a binary file object (text compressed, arrays stored)."""
    with zipfile.ZipFile(dest, "w") as z:
        z.writestr(MANIFEST, json.dumps(manifest, indent=1), zipfile.ZIP_DEFLATED)
        for name, data in members.items():
            z.writestr(name, data, zipfile.ZIP_STORED if name.endswith(".npy")
                       else zipfile.ZIP_DEFLATED)


def read_archive(data: bytes, label: str) -> tuple[dict, dict[str, bytes]]:
    """(manifest, the members it names), or ValueError saying what is wrong with the file."""
    if not data.startswith(b"PK"):
        raise ValueError(f"{label}: not a .lepton model file (no zip signature at its start"
                         f"{'; it is empty' if not data else ''})")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if MANIFEST not in names:
                raise ValueError(f"{label}: a zip file but not a .lepton model (it has no "
                                 f"{MANIFEST})")
            manifest = _manifest(z.read(MANIFEST), label)
            wanted = [g["file"] for g in manifest["graphs"]] + \
                     [w["file"] for w in manifest["weights"]]
            missing = [n for n in wanted if n not in names]
            if missing:
                raise ValueError(f"{label}: the manifest names members the file lacks: "
                                 f"{', '.join(missing)}")
            return manifest, {n: z.read(n) for n in wanted}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise ValueError(f"{label}: corrupt or truncated .lepton file ({e})") from None


def _manifest(raw: bytes, label: str) -> dict:
    try:
        m = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{label}: {MANIFEST} is not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"{label}: {MANIFEST} is not a Lepton model manifest (its \"format\" "
                         f"is {m.get('format') if isinstance(m, dict) else None!r}, "
                         f"not {FORMAT!r})")
    v = m.get("format_version")
    if type(v) is not int or v < 1:
        raise ValueError(f"{label}: bad format_version {v!r} in {MANIFEST}")
    if v > FORMAT_VERSION:
        raise ValueError(f"{label}: written in .lepton format version {v} (by Lepton "
                         f"{m.get('lepton_version', '?')}); this Lepton reads versions up to "
                         f"{FORMAT_VERSION}: upgrade Lepton to load it")
    for key, kind in (("name", str), ("signature", dict), ("graphs", list), ("weights", list)):
        if not isinstance(m.get(key), kind):
            raise ValueError(f"{label}: {MANIFEST} lacks {key!r} (or it is not a "
                             f"{kind.__name__})")
    for entry in m["graphs"] + m["weights"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ValueError(f"{label}: malformed entry {entry!r} in {MANIFEST}")
    return m
