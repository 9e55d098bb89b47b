#!/usr/bin/env python3
"""tests/st_check.py — safetensors files across languages, with the standard library only.

    st_check.py TEST_IO

1. runs `TEST_IO write DIR` and checks DIR/from_c.safetensors with its own reader: layout,
   names, dtypes, shapes, values, metadata;
2. writes DIR/from_py.safetensors with its own writer (unpadded header, a misaligned F32 after
   three U8 bytes, an I64, escaped and non-ASCII metadata) and runs `TEST_IO read DIR`.

Prints TAP: its own checks and the C side's, renumbered into one sequence. Every value is
element i (row-major) = i*0.5 - 3, exact in F32 and F64.
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

SIZES = {"F64": 8, "F32": 4, "I64": 8, "U8": 1}
FORMATS = {"F64": "d", "F32": "f", "I64": "q", "U8": "B"}

count = 0
failed = 0


def ok(cond, desc):
    global count, failed
    count += 1
    failed += not cond
    print(f"{'' if cond else 'not '}ok {count} - {desc}", flush=True)
    return cond


def diag(text):
    for line in str(text).splitlines():
        print(f"# {line}")


def formula(i):
    return i * 0.5 - 3


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def run(exe, mode, tmp):
    """Runs the C side and relays its TAP lines, renumbered; returns its exit status."""
    proc = subprocess.run([exe, mode, tmp], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)
    seen, plan = 0, None
    for line in proc.stdout.splitlines():
        m = re.match(r"^(not )?ok \d+(?: - (.*))?$", line)
        if m:
            seen += 1
            ok(m.group(1) is None, f"C {mode}: {m.group(2) or ''}")
        elif re.match(r"^1\.\.\d+$", line):
            plan = int(line[3:])
        elif line.startswith("#"):
            print(line)
        elif line.strip():
            diag(f"C {mode}: {line}")
    diag(proc.stderr)
    ok(proc.returncode == 0 and seen > 0 and plan == seen,
       f"C {mode}: exit status {proc.returncode}, {seen} checks, plan {plan}")
    return proc.returncode


def read_safetensors(path):
    """Our own reader: (header dict without metadata, metadata, data bytes, header length)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"header length {n} past the end of the file")
    text = raw[8:8 + n].decode("utf-8")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate keys")
        return dict(pairs)

    header = json.loads(text, object_pairs_hook=no_duplicates)
    meta = header.pop("__metadata__", {})
    return header, meta, raw[8 + n:], n, text


def check_c_file(path):
    try:
        header, meta, data, n, text = read_safetensors(path)
    except (OSError, ValueError) as e:
        ok(False, f"reading {path}: {e}")
        return
    ok((8 + n) % 8 == 0 and text.rstrip(" ").endswith("}"),
       f"header of {n} bytes, padded with spaces to a multiple of 8")

    want = {
        "f32.matrix": ("F32", [3, 4], formula),
        "f64.vector": ("F64", [5], formula),
        "scalar": ("F32", [], formula),
        # the transpose of a (3,4) sequence: element (a, b) is base (b, a)
        "transposed": ("F64", [4, 3], lambda i: formula((i % 3) * 4 + i // 3)),
        "four.dims": ("F32", [2, 1, 2, 3], formula),
    }
    ok(list(header) == list(want), f"names in the order written: {list(header)}")

    spans = sorted(tuple(e["data_offsets"]) for e in header.values())
    pos, tiled = 0, True
    for b, e in spans:
        tiled &= b == pos
        pos = e
    ok(tiled and pos == len(data), f"offsets tile the {len(data)}-byte data section exactly")

    for name, (dtype, shape, fn) in want.items():
        e = header.get(name)
        if not ok(e is not None and e["dtype"] == dtype and e["shape"] == shape,
                  f"'{name}': {dtype} {shape}, got {e and (e['dtype'], e['shape'])}"):
            continue
        b, end = e["data_offsets"]
        k = numel(shape)
        good = end - b == k * SIZES[dtype]
        if good:
            vals = struct.unpack(f"<{k}{FORMATS[dtype]}", data[b:end])
            good = all(v == fn(i) for i, v in enumerate(vals))
        ok(good, f"'{name}': values")

    fmt, hashes = meta.pop("nabla.format", None), meta.pop("nabla.xxh3", "{}")
    ok(meta == {"writer": "nabla test_io", "quote": "say \"hi\"\n\tü \\"},
       f"metadata with escapes and UTF-8: {meta}")
    hashes = json.loads(hashes)
    ok(fmt == "2" and set(hashes) == set(header) and
       all(len(h) == 16 and all(c in "0123456789abcdef" for c in h) for h in hashes.values()),
       f"format {fmt} and a 64-bit checksum for each of the {len(header)} tensors")


def write_py_file(path):
    """Our own writer. The header is left unpadded (and kept off a multiple of 8), so the data
    section and 'w' after three U8 bytes are misaligned: the C reader must cope."""
    tensors = [
        ("odd.bytes", "U8", [3], bytes([1, 2, 3])),
        ("w", "F32", [2, 3], struct.pack("<6f", *[formula(i) for i in range(6)])),
        ("b", "F64", [4], struct.pack("<4d", *[formula(i) for i in range(4)])),
        ("s", "F64", [], struct.pack("<d", formula(0))),
        ("steps", "I64", [1], struct.pack("<q", 12345)),
        ("empty", "F32", [0, 5], b""),
    ]
    header, data = {}, b""
    for i, (name, dtype, shape, raw) in enumerate(tensors):
        if i == 2:  # metadata in the middle: it is not a tensor and takes no place in the order
            header["__metadata__"] = {"framework": "python", "note": "ünï \"q\" \\ / \n"}
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode("utf-8")  # ASCII, with \u escapes for ü and ï
    if (8 + len(text)) % 8 == 0:
        text += b" "
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main():
    if len(sys.argv) != 2:
        print("usage: st_check.py TEST_IO", file=sys.stderr)
        return 2
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="nb_st_check.") as tmp:
        if run(exe, "write", tmp) == 0:
            check_c_file(os.path.join(tmp, "from_c.safetensors"))
        write_py_file(os.path.join(tmp, "from_py.safetensors"))
        run(exe, "read", tmp)
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
