"""Exported function symbols of a shared library, read from its ELF dynamic symbol table.

Pure Python on purpose: a minimal host may lack binutils (readelf, nm), and the ABI gate must work
there. Only what the gate needs: .dynsym entries that are defined functions with global or weak
binding and default or protected visibility.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import FrozenSet, List, Tuple

SHT_DYNSYM = 11
STT_FUNC = 2
STT_GNU_IFUNC = 10
STB_GLOBAL = 1
STB_WEAK = 2
STV_HIDDEN = 2
STV_INTERNAL = 1
SHN_UNDEF = 0


class ElfError(ValueError):
    pass


def exported_functions(path: Path) -> FrozenSet[str]:
    return parse_exported_functions(path.read_bytes())


def parse_exported_functions(data: bytes) -> FrozenSet[str]:
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ElfError("not an ELF file")
    cls, order = data[4], data[5]
    if cls not in (1, 2) or order not in (1, 2):
        raise ElfError("unknown ELF class or byte order")
    is64 = cls == 2
    endian = "<" if order == 1 else ">"
    if is64:
        shoff, shentsize, shnum = (
            _unpack(endian + "Q", data, 0x28)[0],
            *_unpack(endian + "HH", data, 0x3A),
        )
    else:
        shoff, shentsize, shnum = (
            _unpack(endian + "I", data, 0x20)[0],
            *_unpack(endian + "HH", data, 0x2E),
        )
    sections = [_section(data, endian, is64, shoff + i * shentsize) for i in range(shnum)]
    names = set()
    for sh_type, offset, size, link, entsize in sections:
        if sh_type != SHT_DYNSYM:
            continue
        if link >= len(sections):
            raise ElfError("bad string table index")
        str_off, str_size = sections[link][1], sections[link][2]
        strtab = data[str_off : str_off + str_size]
        entsize = entsize or (24 if is64 else 16)
        for index in range(1, size // entsize):
            name_off, info, other, shndx = _symbol(data, endian, is64, offset + index * entsize)
            kind, bind = info & 0xF, info >> 4
            if kind not in (STT_FUNC, STT_GNU_IFUNC) or bind not in (STB_GLOBAL, STB_WEAK):
                continue
            if shndx == SHN_UNDEF or (other & 0x3) in (STV_HIDDEN, STV_INTERNAL):
                continue
            end = strtab.find(b"\0", name_off)
            if end < 0:
                raise ElfError("unterminated symbol name")
            names.add(strtab[name_off:end].decode("ascii", "replace"))
    return frozenset(names)


def _unpack(fmt: str, data: bytes, offset: int) -> Tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error as exc:
        raise ElfError("truncated ELF file") from exc


def _section(data: bytes, endian: str, is64: bool, offset: int) -> List[int]:
    if is64:
        _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = _unpack(
            endian + "IIQQQQIIQQ", data, offset
        )
    else:
        _, sh_type, _, _, sh_offset, sh_size, sh_link, _, _, sh_entsize = _unpack(
            endian + "IIIIIIIIII", data, offset
        )
    return [sh_type, sh_offset, sh_size, sh_link, sh_entsize]


def _symbol(data: bytes, endian: str, is64: bool, offset: int) -> Tuple[int, int, int, int]:
    if is64:
        name, info, other, shndx = _unpack(endian + "IBBH", data, offset)
    else:
        name, _, _, info, other, shndx = _unpack(endian + "IIIBBH", data, offset)
    return name, info, other, shndx


SHT_GNU_VERNEED = 0x6FFFFFFE


def required_versions(path: Path) -> FrozenSet[str]:
    """Symbol versions the file needs from its libraries (.gnu.version_r), e.g. GLIBC_2.34."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ElfError("not an ELF file")
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        shoff = _unpack(endian + "Q", data, 0x28)[0]
        shentsize, shnum = _unpack(endian + "HH", data, 0x3A)
    else:
        shoff = _unpack(endian + "I", data, 0x20)[0]
        shentsize, shnum = _unpack(endian + "HH", data, 0x2E)
    sections = [_section(data, endian, is64, shoff + i * shentsize) for i in range(shnum)]
    names = set()
    for sh_type, offset, _size, link, _entsize in sections:
        if sh_type != SHT_GNU_VERNEED:
            continue
        str_off, str_size = sections[link][1], sections[link][2]
        strtab = data[str_off : str_off + str_size]
        entry = offset
        for _ in range(1000):  # Elf_Verneed chain
            _ver, cnt, _file, aux, nxt = _unpack(endian + "HHIII", data, entry)
            aux_off = entry + aux
            for _ in range(cnt):  # Elf_Vernaux chain
                _hash, _flags, _other, name, aux_next = _unpack(endian + "IHHII", data, aux_off)
                end = strtab.find(b"\0", name)
                names.add(strtab[name:end].decode("ascii", "replace"))
                if not aux_next:
                    break
                aux_off += aux_next
            if not nxt:
                break
            entry += nxt
    return frozenset(names)


def glibc_needed(versions: FrozenSet[str]) -> Tuple[int, ...]:
    """The newest GLIBC_x.y among required versions, as a tuple ((0,) if none)."""
    found: List[Tuple[int, ...]] = [(0,)]
    for name in versions:
        if name.startswith("GLIBC_"):
            try:
                found.append(tuple(int(p) for p in name[len("GLIBC_") :].split(".")))
            except ValueError:
                continue
    return max(found)
