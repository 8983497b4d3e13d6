"""zarr-python 2.13 side of test/interop-matrix.test.ts (run with /usr/bin/python3).

One process handles a whole batch of arrays, so the test starts Python a few times, not once per case.

    interop_matrix.py write CASES.json    create v2 arrays with zarr-python and write a region of each
    interop_matrix.py check CASES.json    read v2 arrays with zarr-python; compare metadata and values
    interop_matrix.py v3chunks CASES.json decode the chunks of v3 arrays with numcodecs alone

Values travel as hex of the elements in C order, little-endian (bool: one byte 0/1), so the comparison is
bit-exact for every dtype (64-bit integers, NaN payloads, -0.0). Prints one JSON object: case name ->
null when the case passed, or a message saying what differed.
"""
import json
import os
import sys

import numcodecs
import numpy as np
import zarr


def little(dtype):
    dt = np.dtype(dtype)
    return dt.newbyteorder("<") if dt.itemsize > 1 else dt


def region_index(region):
    return tuple(slice(start, stop, step) for start, stop, step in region)


def region_shape(region):
    return tuple(len(range(start, stop, step)) for start, stop, step in region)


def codec(config):
    return None if config is None else numcodecs.get_codec(dict(config))


def write(case):
    filters = case.get("filters")
    a = zarr.open_array(
        case["path"],
        mode="w",
        shape=tuple(case["shape"]),
        chunks=tuple(case["chunks"]),
        dtype=case["dtype"],
        compressor=codec(case.get("compressor")),
        filters=None if not filters else [codec(f) for f in filters],
        order=case["order"],
        fill_value=case["fill"],
    )
    region = case["region"]
    values = np.frombuffer(bytes.fromhex(case["hex"]), dtype=little(case["dtype"]))
    a[region_index(region)] = values.reshape(region_shape(region)).astype(case["dtype"])


def check(case):
    a = zarr.open_array(case["path"], mode="r")
    problems = []
    if a.dtype.str != np.dtype(case["dtype"]).str:
        problems.append("dtype %s, expected %s" % (a.dtype.str, case["dtype"]))
    if a.order != case["order"]:
        problems.append("order %s, expected %s" % (a.order, case["order"]))
    compressor = None if a.compressor is None else a.compressor.get_config()
    if compressor != case.get("compressor"):
        problems.append("compressor %r, expected %r" % (compressor, case.get("compressor")))
    filters = [f.get_config() for f in a.filters or []]
    if filters != (case.get("filters") or []):
        problems.append("filters %r, expected %r" % (filters, case.get("filters")))
    if list(a.shape) != case["shape"] or list(a.chunks) != case["chunks"]:
        problems.append("shape/chunks %r %r" % (a.shape, a.chunks))
    got = np.ascontiguousarray(a[...]).astype(little(case["dtype"])).tobytes().hex()
    if got != case["hex"]:
        problems.append(first_difference(got, case["hex"], np.dtype(case["dtype"]).itemsize))
    return "; ".join(problems) or None


def first_difference(got, expected, itemsize):
    width = 2 * itemsize
    for i in range(0, max(len(got), len(expected)), width):
        if got[i : i + width] != expected[i : i + width]:
            return "values differ first at element %d: got %s, expected %s (of %d)" % (
                i // width,
                got[i : i + width],
                expected[i : i + width],
                len(expected) // width,
            )
    return "values differ"


# --- v3 chunks, decoded with numcodecs and NumPy only (no zarr-python v3 here) -----------------------

CRC_TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC_TABLE.append(c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


V3_DTYPES = {
    "bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "i2", "uint16": "u2", "int32": "i4",
    "uint32": "u4", "int64": "i8", "uint64": "u8", "float32": "f4", "float64": "f8",
}


def decode_bytes_codec(name, config, data, info):
    if name == "crc32c":
        body, stored = data[:-4], int.from_bytes(data[-4:], "little")
        if crc32c(body) != stored:
            raise ValueError("crc32c mismatch")
        return body
    if name == "blosc":
        # Byte 2 of a blosc frame holds the flags, byte 3 the typesize: report what was really done.
        info.setdefault("blosc", []).append([data[2], data[3]])
        return bytes(numcodecs.Blosc().decode(data))
    decoder = {
        "gzip": numcodecs.GZip(),
        "zlib": numcodecs.Zlib(),
        "zstd": numcodecs.Zstd(),
        "lz4": numcodecs.LZ4(),
    }[name]
    return bytes(decoder.decode(data))


def v3chunks(case):
    meta = json.load(open(os.path.join(case["path"], "zarr.json")))
    shape = meta["shape"]
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    base = V3_DTYPES[meta["data_type"]]
    codecs = meta["codecs"]
    names = [c["name"] for c in codecs]
    bytes_at = names.index("bytes")
    endian = codecs[bytes_at].get("configuration", {}).get("endian", "little")
    dtype = np.dtype(base if base.startswith("|") else ("<" if endian == "little" else ">") + base)
    out = np.full(shape, meta["fill_value"], dtype=dtype.newbyteorder("="))
    info = {}
    grid = [(-(-s // c)) for s, c in zip(shape, chunks)]
    for index in np.ndindex(*grid):
        path = os.path.join(case["path"], "c", *[str(i) for i in index])
        if not os.path.exists(path):
            continue
        data = open(path, "rb").read()
        for c in reversed(codecs[bytes_at + 1 :]):
            data = decode_bytes_codec(c["name"], c.get("configuration", {}), data, info)
        encoded_shape = list(chunks)
        transposes = [c["configuration"]["order"] for c in codecs[:bytes_at] if c["name"] == "transpose"]
        for order in transposes:
            encoded_shape = [encoded_shape[i] for i in order]
        chunk = np.frombuffer(data, dtype=dtype).reshape(encoded_shape)
        for order in reversed(transposes):
            chunk = chunk.transpose(np.argsort(order))
        where = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunks, shape))
        out[where] = chunk[tuple(slice(0, w.stop - w.start) for w in where)]
    got = np.ascontiguousarray(out).astype(little(dtype)).tobytes().hex()
    problem = None if got == case["hex"] else first_difference(got, case["hex"], dtype.itemsize)
    return problem, info


def main():
    command, path = sys.argv[1], sys.argv[2]
    cases = json.load(open(path))
    results = {}
    extra = {}
    for case in cases:
        try:
            if command == "write":
                write(case)
                results[case["name"]] = None
            elif command == "check":
                results[case["name"]] = check(case)
            elif command == "v3chunks":
                results[case["name"]], extra[case["name"]] = v3chunks(case)
            else:
                raise SystemExit("unknown command " + command)
        except Exception as e:  # one broken case must not hide the others
            results[case["name"]] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps({"results": results, "extra": extra}))


if __name__ == "__main__":
    main()
