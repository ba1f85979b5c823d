def parse_header(data, offset):
    magic = int.from_bytes(data[offset:offset + 4], "little")
    version = int.from_bytes(data[offset + 4:offset + 8], "little")
    count = int.from_bytes(data[offset + 8:offset + 16], "little")
    if magic != 0x46554747:
        raise ValueError("bad magic")
    return magic, version, count


# The same function, with every integer read through a helper `read_u32` / `read_u64`.
def parse_header(data, offset):
