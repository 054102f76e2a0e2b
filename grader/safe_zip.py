"""Reading an untrusted zip (an LMS download): what is checked before a byte is unpacked, and while.

A zip is as untrusted as a notebook: students chose its file names and contents. What one
could do, and what stops it here:

- leave the folder (`../x`, `/etc/x`, `C:\\x`, a NUL in the name): refused; and nothing is
  ever written under an entry's own name (the caller names every file it unpacks);
- a symlink, device or FIFO (the unix mode in the entry's external attributes): refused;
- a bomb: the entry count and the central directory's size are read from the end record
  before zipfile parses the directory; each entry's declared size and compression ratio, then
  the total of the entries kept, are checked before unpacking; while unpacking, no entry gives
  more than it declared (zipfile stops at the declared size and its CRC check then fails);
- bzip2 and lzma, which zipfile inflates without bound per read: refused (LMSs write deflate);
- names in another encoding: without the UTF-8 flag a name is CP437 (the zip standard), or
  UTF-8 when its bytes are (what many archivers write without the flag); a name flagged UTF-8
  whose bytes are not makes zipfile refuse the whole archive, so it is read as CP437 from a copy
  whose flag is cleared. Each such name gets a note; none stops the others.
"""

import os
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError

_END = b"PK\x05\x06"
_END64 = b"PK\x06\x06"
_END64_LOCATOR = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"
_UTF8_FLAG = 0x800
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Caps:
    """How much an archive may hold. A notebook is rarely over a few MiB; a class is a few hundred."""

    entries: int = 10_000
    directory_bytes: int = 16 << 20  # the central directory, which zipfile reads whole into memory
    entry_bytes: int = 64 << 20  # one file, unpacked
    total_bytes: int = 2 << 30  # every file kept, unpacked
    ratio: float = 100.0  # unpacked / packed, for files over ratio_floor
    ratio_floor: int = 1 << 20


CAPS = Caps()


class Refused(GraderError):
    """The whole archive cannot be read safely; the message says why."""


@dataclass(frozen=True)
class Member:
    """An entry that passed every check before unpacking."""

    name: str  # as read (see the notes for names in another encoding)
    info: zipfile.ZipInfo
    time: tuple  # (year, month, day, hour, minute, second)


@dataclass(frozen=True)
class Survey:
    path: Path  # the zip to unpack from: the archive, or a copy with its bad UTF-8 flags cleared
    members: tuple  # Member: the files that may be unpacked
    refused: tuple  # (name, why): entries refused before unpacking
    notes: tuple  # (name, how its name was read): names not in plain UTF-8


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def end_record(f):
    """(entries, central directory size, its offset) from the end record (zip64's where it has one), or None."""
    size = f.seek(0, os.SEEK_END)
    tail_size = min(size, 22 + 0xFFFF)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < 22:
        return None
    entries, cd_size, cd_offset = struct.unpack("<xxxxxxxxxxHII", tail[at:at + 20])
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF) and at >= 20:
        locator = tail[at - 20:at]
        if locator[:4] == _END64_LOCATOR:
            (offset,) = struct.unpack("<Q", locator[8:16])
            f.seek(offset)
            record = f.read(56)
            if record[:4] == _END64 and len(record) == 56:
                entries, cd_size, cd_offset = struct.unpack("<QQQ", record[32:56])
    return entries, cd_size, cd_offset


def _clear_bad_utf8_flags(path):
    """In place: clear the UTF-8 flag of each entry whose name is not UTF-8, in its central and local
    headers, so that zipfile reads the name as CP437. Returns the local header offsets changed."""
    changed = set()
    with open(path, "r+b") as f:
        end = end_record(f)
        if end is None:
            return changed
        _, cd_size, cd_offset = end
        f.seek(cd_offset)
        directory = f.read(cd_size)
        pos, fixes = 0, []
        while pos + 46 <= len(directory) and directory[pos:pos + 4] == _CENTRAL:
            (flags,) = struct.unpack("<H", directory[pos + 8:pos + 10])
            n, m, k = struct.unpack("<HHH", directory[pos + 28:pos + 34])
            (local,) = struct.unpack("<I", directory[pos + 42:pos + 46])
            if flags & _UTF8_FLAG:
                try:
                    directory[pos + 46:pos + 46 + n].decode("utf-8")
                except UnicodeDecodeError:
                    fixes.append((cd_offset + pos + 8, flags, local))
            pos += 46 + n + m + k
        for at, flags, local in fixes:
            f.seek(at)
            f.write(struct.pack("<H", flags & ~_UTF8_FLAG))
            f.seek(local)
            header = f.read(8)
            if header[:4] == b"PK\x03\x04":
                (local_flags,) = struct.unpack("<H", header[6:8])
                f.seek(local + 6)
                f.write(struct.pack("<H", local_flags & ~_UTF8_FLAG))
            changed.add(local)
    return changed


def _name(info, repaired):
    """(the entry's name, how it was read when not plain UTF-8 or ASCII: '' otherwise)."""
    name = info.orig_filename
    if info.header_offset in repaired:
        return name, "its name is marked UTF-8 but its bytes are not: read as CP437"
    if info.flag_bits & _UTF8_FLAG or name.isascii():
        return name, ""
    raw = name.encode("cp437")
    try:
        return raw.decode("utf-8"), "its name is not marked UTF-8 but its bytes are UTF-8: read as UTF-8"
    except UnicodeDecodeError:
        return name, "its name is not marked UTF-8: read as CP437, the zip standard's encoding"


def _problem(info, name, caps):
    """Why this entry must not be unpacked, or ''."""
    if "\x00" in name:
        return "its name holds a NUL byte"
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":" and path[0].isalpha()):
        return "an absolute path: it would land outside the folder"
    if ".." in path.split("/"):
        return "its path climbs out of the folder (..)"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "a symbolic link: it could point anywhere"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "a special file (device, FIFO or socket)"
    if info.is_dir():
        return ""
    if info.flag_bits & 0x1:
        return "encrypted: it cannot be read without its password"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return (f"compressed with method {info.compress_type}: only stored and deflated entries are unpacked "
                "(what Canvas and Moodle write)")
    if info.file_size > caps.entry_bytes:
        return f"it declares {_size(info.file_size)} unpacked, over the cap of {_size(caps.entry_bytes)} for one file"
    if info.file_size > caps.ratio_floor and info.file_size > caps.ratio * max(info.compress_size, 1):
        return (f"it would inflate {info.file_size / max(info.compress_size, 1):.0f} times its packed size "
                f"(the cap is {caps.ratio:g}): a zip bomb?")
    return ""


def survey(path, caps=CAPS, scratch=None):
    """Check an archive before unpacking anything: the members that may be unpacked, and why any other is not.

    Raises Refused when the archive as a whole cannot be read safely (not a zip, too many
    entries, too large in all). `scratch` is a folder where a copy may be written when some
    names are flagged UTF-8 but are not (without one, such an archive is refused).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            end = end_record(f)
    except OSError as exc:
        raise Refused(f"it cannot be read ({exc.strerror or exc})") from None
    if end is None:
        raise Refused("not a zip file (it has no end of central directory record)")
    entries, cd_size, _ = end
    if entries > caps.entries:
        raise Refused(f"it declares {entries} entries, over the cap of {caps.entries}: refused before unpacking "
                      "(a zip bomb?)")
    if cd_size > caps.directory_bytes:
        raise Refused(f"its directory takes {_size(cd_size)}, over the cap of {_size(caps.directory_bytes)}: refused "
                      "before unpacking")
    repaired = set()
    try:
        infos = _infos(path)
    except UnicodeDecodeError:
        if scratch is None:
            raise Refused("some entry names are marked UTF-8 but are not") from None
        Path(scratch).mkdir(parents=True, exist_ok=True)
        copy = Path(scratch) / "names-read-as-cp437.zip"
        shutil.copyfile(path, copy)
        repaired = _clear_bad_utf8_flags(copy)
        path = copy
        try:
            infos = _infos(path)
        except UnicodeDecodeError:
            raise Refused("some entry names are marked UTF-8 but are not, and could not be read otherwise") from None
    if len(infos) > caps.entries:  # the end record may understate them
        raise Refused(f"it holds {len(infos)} entries, over the cap of {caps.entries}: refused before unpacking")
    members, refused, notes, total = [], [], [], 0
    for info in infos:
        name, how = _name(info, repaired)
        why = _problem(info, name, caps)
        if why:
            refused.append((name, why))
            continue
        if info.is_dir():
            continue  # a folder holds nothing to grade itself
        if how:
            notes.append((name, how))
        members.append(Member(name, info, tuple(info.date_time)))
        total += info.file_size
    if total > caps.total_bytes:
        raise Refused(f"its files declare {_size(total)} unpacked in all, over the cap of {_size(caps.total_bytes)}: "
                      "refused before unpacking (a zip bomb?)")
    return Survey(path, tuple(members), tuple(refused), tuple(notes))


def _infos(path):
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.infolist()
    except UnicodeDecodeError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
            struct.error) as exc:
        raise Refused(f"not a readable zip file ({exc})") from None


class _EntryRefused(Exception):
    pass


def _unpack_one(zf, info, dest, caps):
    """Copy one entry's bytes to `dest` (via a temporary file beside it), never more than it declared."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    written = 0
    try:
        with zf.open(info) as src, open(tmp, "wb") as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > info.file_size or written > caps.entry_bytes:
                    raise _EntryRefused(f"it inflates past its declared {_size(info.file_size)}: refused while "
                                        "unpacking (a zip bomb?)")
                out.write(chunk)
        os.replace(tmp, dest)
    except zipfile.BadZipFile as exc:
        raise _EntryRefused(f"its data does not match its header: it inflates past its declared size, or is "
                            f"damaged ({exc})") from None
    except (RuntimeError, NotImplementedError, EOFError, zlib.error, ValueError, struct.error) as exc:
        raise _EntryRefused(f"it cannot be unpacked ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise _EntryRefused(f"it cannot be unpacked ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def unpack(survey_, wanted, caps=CAPS):
    """Unpack each (member, destination file) of `wanted`; return [(member, why)] for those refused while
    unpacking, which leave no file behind."""
    failed = []
    try:
        zf = zipfile.ZipFile(survey_.path)
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as exc:
        return [(member, f"the archive cannot be read again ({exc})") for member, _ in wanted]
    with zf:
        for member, dest in wanted:
            try:
                _unpack_one(zf, member.info, Path(dest), caps)
            except _EntryRefused as exc:
                failed.append((member, str(exc)))
    return failed
