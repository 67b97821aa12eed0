"""Exported function symbols of a shared library, read from its ELF dynamic symbol table.

Pure Python on purpose: a minimal host may lack binutils (readelf, nm), and the ABI gate must work
there. Only what the gate needs: .dynsym entries that are defined functions with global or weak
binding and default or protected visibility.
"""

import struct
from pathlib import Path
from typing import FrozenSet, Iterator, List, Tuple

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


Section = List[int]  # sh_type, sh_offset, sh_size, sh_link, sh_entsize


def _sections(data: bytes) -> Tuple[bool, str, List[Section]]:
    """The ELF header's class and byte order, and the section headers: (is64, endian, sections)."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ElfError("not an ELF file")
    cls, order = data[4], data[5]
    if cls not in (1, 2) or order not in (1, 2):
        raise ElfError("unknown ELF class or byte order")
    is64 = cls == 2
    endian = "<" if order == 1 else ">"
    if is64:
        shoff = _unpack(endian + "Q", data, 0x28)[0]
        shentsize, shnum = _unpack(endian + "HH", data, 0x3A)
    else:
        shoff = _unpack(endian + "I", data, 0x20)[0]
        shentsize, shnum = _unpack(endian + "HH", data, 0x2E)
    sections = [_section(data, endian, is64, shoff + i * shentsize) for i in range(shnum)]
    return is64, endian, sections


def _tables(data: bytes, kind: int) -> Iterator[Tuple[bool, str, Section, bytes]]:
    """Each section of type `kind`, with the string table it links to."""
    is64, endian, sections = _sections(data)
    for section in sections:
        if section[0] == kind:
            yield is64, endian, section, _strings(data, sections, section[3])


def parse_exported_functions(data: bytes) -> FrozenSet[str]:
    names = set()
    for is64, endian, (_, offset, size, _, entsize), strtab in _tables(data, SHT_DYNSYM):
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


def _strings(data: bytes, sections: List[Section], index: int) -> bytes:
    """The string table a symbol or version section links to."""
    if index >= len(sections):
        raise ElfError("bad string table index")
    offset, size = sections[index][1], sections[index][2]
    return data[offset : offset + size]


def _unpack(fmt: str, data: bytes, offset: int) -> Tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error as exc:
        raise ElfError("truncated ELF file") from exc


def _section(data: bytes, endian: str, is64: bool, offset: int) -> Section:
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
    names = set()
    for _, endian, section, strtab in _tables(data, SHT_GNU_VERNEED):
        entry = section[1]
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
