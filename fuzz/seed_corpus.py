#!/usr/bin/env python3
"""Seeds for the fuzz targets from a recorded lake: `seed_corpus.py LAKE CORPUS_DIR`.

Blocks of at most MAX_BLOCK_BYTES go to the decoder targets twice: raw (flags 0x18: the bytes
as stored, a 1 GHz clock) and, when stored uncompressed, sealed (flags 0x19: header and body,
re-sealed by the harness; see fuzz/src/lib.rs `FuzzBlock`), each also as its stream's last block
(flag 0x04). Process, stream and version objects seed `lake_json`; block keys seed `block_key`.
The hand-written seeds (view SQL, Chrome traces) are checked in as they are.
"""
import hashlib
import os
import sys

MAX_BLOCK_BYTES = 24 * 1024
KINDS = {1: ["decode_spans", "timeline"], 2: ["decode_log"], 3: ["decode_measures"]}


def put(corpus, target, data):
    folder = os.path.join(corpus, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main(lake, corpus):
    for root, _, files in os.walk(lake):
        for file in sorted(files):
            path = os.path.join(root, file)
            key = os.path.relpath(path, lake).replace(os.sep, "/")
            data = open(path, "rb").read()
            if key.startswith("blocks/") and key.endswith(".blk"):
                put(corpus, "block_key", key.encode())
                if len(data) > MAX_BLOCK_BYTES or len(data) < 96:
                    continue
                for target in KINDS.get(data[6], []):
                    for last in (0, 4):
                        put(corpus, target, bytes([0x18 | last]) + data)
                        if data[7] == 0:
                            put(corpus, target, bytes([0x19 | last]) + data)
            elif key.endswith(".json"):
                put(corpus, "lake_json", data)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
