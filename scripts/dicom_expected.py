#!/usr/bin/python3
"""Expected pixel statistics of the DICOM test fixtures, from independent decoders.

pydicom (Debian python3-pydicom) decodes the uncompressed, deflated, big-endian and RLE files with
its own handlers. It has no JPEG Lossless handler without extra plugins, so the JPEG Lossless file is
first decompressed by dcmtk's `dcmdjpeg` (Debian dcmtk) and the result read by pydicom.
Run: /usr/bin/python3 scripts/dicom_expected.py  →  test/fixtures/dicom/expected.json
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "test", "fixtures", "dicom")
FILES = ["CT_small.dcm", "rle.dcm", "jpeg_lossless_sel1.dcm", "explicit_big.dcm", "implicit_little.dcm", "deflated.dcm"]
# (row, column) positions sampled in every image, scaled to its size
SAMPLES = [(0, 0), (0.5, 0.5), (0.25, 0.75), (0.75, 0.3), (0.999, 0.999)]


def decoded(name):
    path = os.path.join(FIXTURES, name)
    ds = pydicom.dcmread(path)
    if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70":
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "dec.dcm")
            subprocess.run(["dcmdjpeg", path, out], check=True)
            ds = pydicom.dcmread(out)
        return ds, "dcmtk dcmdjpeg, then pydicom"
    return ds, f"pydicom {pydicom.__version__}"


def main():
    result = {}
    for name in FILES:
        ds, how = decoded(name)
        px = ds.pixel_array.astype(np.int64)
        rows, cols = int(ds.Rows), int(ds.Columns)
        entry = {
            "decodedBy": how,
            "transferSyntaxUid": str(pydicom.dcmread(os.path.join(FIXTURES, name)).file_meta.TransferSyntaxUID),
            "rows": rows,
            "columns": cols,
            "frames": int(getattr(ds, "NumberOfFrames", 1) or 1),
            "storedSum": int(px.sum()),
            "storedMin": int(px.min()),
            "storedMax": int(px.max()),
            "samples": [],
        }
        frame = px if px.ndim == 2 else px[0]
        for fr, fc in SAMPLES:
            r, c = int(fr * (rows - 1)), int(fc * (cols - 1))
            entry["samples"].append({"row": r, "column": c, "stored": int(frame[r, c])})
        if "RescaleSlope" in ds or "RescaleIntercept" in ds:
            hu = px * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
            entry["huMin"] = float(hu.min())
            entry["huMax"] = float(hu.max())
            entry["huMean"] = float(hu.mean())
        result[name] = entry
    with open(os.path.join(FIXTURES, "expected.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {len(result)} entries", file=sys.stderr)


if __name__ == "__main__":
    main()
