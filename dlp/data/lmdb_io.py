"""Caffe ``Datum`` LMDB databases and ``mean.binaryproto`` files.

The databases are the ones BVLC Caffe and DIGITS read and write: one LMDB
environment (a folder holding ``data.mdb``/``lock.mdb``), keys ``"%09d"``, values
serialised ``caffe.Datum`` messages (``channels``, ``height``, ``width``, ``data``
bytes for uint8, ``float_data`` for anything else, ``label``, ``encoded``).

Reading is the hot path of training, so :func:`decode_datum` parses the Datum wire
format directly into numpy without building a protobuf message: the pixel payload
is a single ``np.frombuffer`` whether ``float_data`` is packed (as DLP writes it) or
one tagged float per element (as Caffe's C++ writes it; a Python loop over 65k
fields would cost more than the training step it feeds).  :func:`array_to_datum` and
:func:`datum_to_array` are the message-level equivalents for code that wants a
``caffe_pb2.Datum``; both paths produce and accept the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb
import numpy as np

from dlp.errors import InputError
from dlp.proto import caffe_pb2
from dlp.proto.wire import WireError, encode_varint, read_varint, skip_field


class DatumError(InputError):
    """A Datum, an LMDB database or a mean file is malformed or unreadable."""


def format_key(index: int) -> str:
    """The DIGITS/Caffe key of record ``index``: ``"%09d"``."""
    return f"{index:09d}"


# --------------------------------------------------------------------------- encoding

def _as_chw(array: np.ndarray) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise DatumError(f"a Datum holds a (C, H, W) or (H, W) array; got shape {arr.shape}")
    return arr


def _encode_image(arr: np.ndarray, encoding: str) -> bytes:
    from PIL import Image

    if arr.dtype != np.uint8:
        raise DatumError(f"encoding {encoding!r} stores uint8 images only; got {arr.dtype}")
    channels = arr.shape[0]
    if channels == 1:
        image = Image.fromarray(arr[0])
    elif channels == 3:
        # Datums hold BGR (OpenCV's order, which Caffe's imdecode returns); files hold RGB.
        image = Image.fromarray(np.ascontiguousarray(arr[::-1].transpose(1, 2, 0)))
    else:
        raise DatumError(f"encoding {encoding!r} needs 1 or 3 channels; got {channels}")
    buffer = io.BytesIO()
    fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}.get(encoding.lower())
    if fmt is None:
        raise DatumError(f"unknown Datum encoding {encoding!r}; expected 'png' or 'jpg'")
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def encode_datum(array: np.ndarray, label: int = 0, encoding: str | None = None) -> bytes:
    """Serialise ``array`` (C, H, W) or (H, W) as a ``caffe.Datum`` (wire bytes).

    uint8 goes to ``data``; every other dtype to ``float_data`` as float32 (16-bit
    medical images are stored exactly: float32 represents every 16-bit integer).
    ``encoding`` ``"png"``/``"jpg"`` stores compressed uint8 bytes with ``encoded``.
    """
    arr = _as_chw(array)
    channels, height, width = (int(n) for n in arr.shape)
    parts = [b"\x08", encode_varint(channels), b"\x10", encode_varint(height),
             b"\x18", encode_varint(width)]
    if encoding:
        payload = _encode_image(arr, encoding)
        parts += [b"\x22", encode_varint(len(payload)), payload]
    elif arr.dtype == np.uint8:
        # a memoryview, not tobytes(): the final join is then the only copy
        payload = memoryview(np.ascontiguousarray(arr)).cast("B")
        parts += [b"\x22", encode_varint(len(payload)), payload]
    else:
        floats = memoryview(np.ascontiguousarray(arr, dtype="<f4")).cast("B")
    parts += [b"\x28", encode_varint(int(label))]
    if not encoding and arr.dtype != np.uint8:
        # packed repeated float: Caffe's proto2 parser accepts it for float_data
        parts += [b"\x32", encode_varint(len(floats)), floats]
    if encoding:
        parts += [b"\x38\x01"]
    return b"".join(parts)


def array_to_datum(array: np.ndarray, label: int = 0, encoding: str | None = None):
    """A ``caffe_pb2.Datum`` holding ``array`` (C, H, W) or (H, W); see :func:`encode_datum`."""
    datum = caffe_pb2.Datum()
    datum.ParseFromString(encode_datum(array, label, encoding))
    return datum


# --------------------------------------------------------------------------- decoding

def _signed32(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    if value >= 1 << 63:
        value -= 1 << 64
    return value


def _unpacked_float_run(buf: bytes, pos: int) -> tuple[np.ndarray, int]:
    """Floats of consecutive ``float_data`` fields each written as tag 0x35 + 4 bytes.

    Tags sit every 5 bytes, so the run is found and decoded with strided numpy views.
    """
    count = (len(buf) - pos) // 5
    block = np.frombuffer(buf, dtype=np.uint8, count=count * 5, offset=pos).reshape(count, 5)
    not_tag = np.flatnonzero(block[:, 0] != 0x35)
    run = int(not_tag[0]) if not_tag.size else count
    values = np.ascontiguousarray(block[:run, 1:]).view("<f4").reshape(-1)
    return values, pos + run * 5


def _decode_image(payload: bytes) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(payload)) as image:
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise DatumError(f"encoded Datum is not a readable image: {exc}") from exc
    if pixels.ndim == 2:
        return pixels[np.newaxis]
    # RGB(A) file -> BGR channels, as Caffe's OpenCV decoding gives them
    return np.ascontiguousarray(pixels[..., 2::-1].transpose(2, 0, 1))


def decode_datum(buf: bytes | memoryview) -> tuple[np.ndarray, int]:
    """Parse serialised ``caffe.Datum`` bytes into ``(array (C, H, W), label)``.

    The array is uint8 for ``data``/encoded Datums and float32 for ``float_data``;
    it never aliases ``buf`` (LMDB buffers are only valid inside their transaction).
    """
    try:
        return _decode_datum(bytes(buf))
    except WireError as exc:
        raise DatumError(f"Datum is {exc}") from None


def _decode_datum(buf: bytes) -> tuple[np.ndarray, int]:
    channels = height = width = 0
    label = 0
    data: bytes | None = None
    float_chunks: list[np.ndarray] = []
    encoded = False
    pos = 0
    end = len(buf)
    while pos < end:
        tag, pos = read_varint(buf, pos)
        field, wire_type = tag >> 3, tag & 7
        if field in (1, 2, 3, 5, 7) and wire_type == 0:
            value, pos = read_varint(buf, pos)
            if field == 1:
                channels = value
            elif field == 2:
                height = value
            elif field == 3:
                width = value
            elif field == 5:
                label = _signed32(value)
            else:
                encoded = bool(value)
        elif field == 4 and wire_type == 2:
            length, pos = read_varint(buf, pos)
            data = buf[pos:pos + length]
            pos += length
        elif field == 6 and wire_type == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > end:
                raise DatumError("truncated Datum (float_data runs past the end)")
            if length % 4:
                raise DatumError("malformed Datum (packed float_data length not a multiple of 4)")
            float_chunks.append(np.frombuffer(buf, dtype="<f4", count=length // 4, offset=pos))
            pos += length
        elif field == 6 and wire_type == 5:
            values, pos = _unpacked_float_run(buf, pos - 1)
            float_chunks.append(values)
        else:
            pos = skip_field(buf, pos, wire_type)
        if pos > end:
            raise DatumError("truncated Datum (a field runs past the end)")
    if encoded:
        if data is None:
            raise DatumError("encoded Datum has no data bytes")
        return _decode_image(data), label
    shape = (channels, height, width)
    expected = channels * height * width
    if data:
        if len(data) != expected:
            raise DatumError(
                f"Datum data has {len(data)} bytes; C*H*W = {shape} needs {expected}"
            )
        return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy(), label
    floats = (
        float_chunks[0] if len(float_chunks) == 1
        else np.concatenate(float_chunks) if float_chunks
        else np.zeros(0, np.float32)
    )
    if floats.size != expected:
        raise DatumError(
            f"Datum float_data has {floats.size} values; C*H*W = {shape} "
            f"needs {expected}"
        )
    return floats.astype(np.float32, copy=True).reshape(shape), label


def datum_to_array(datum) -> np.ndarray:
    """The (C, H, W) array held by a ``caffe_pb2.Datum`` (uint8 or float32)."""
    return decode_datum(datum.SerializeToString())[0]


# --------------------------------------------------------------------------- databases

def _key_bytes(key: str | bytes | int) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, int):
        return format_key(key).encode("ascii")
    return key.encode("utf-8")


def _lmdb_location(path: Path) -> tuple[Path, bool]:
    """(path to open, subdir flag): Caffe's LMDBs are folders; a bare data.mdb works too."""
    if path.is_dir():
        if not (path / "data.mdb").is_file():
            raise DatumError(f"{path}: not an LMDB database (no data.mdb in the folder)")
        return path, True
    if path.is_file():
        return path, False
    raise DatumError(f"{path}: LMDB database not found")


# py-lmdb refuses to open one environment twice in a process, yet the engine's Data
# layer, shape inference and the GUI's sample viewer may all read the same DB at once:
# readers share one read-only Environment per path, reference-counted.
_shared_envs: dict[str, tuple[lmdb.Environment, int]] = {}
_shared_lock = threading.Lock()


def _open_shared(key: str, location: str, subdir: bool, shown: Path) -> lmdb.Environment:
    with _shared_lock:
        if key in _shared_envs:
            env, count = _shared_envs[key]
            _shared_envs[key] = (env, count + 1)
            return env
        try:
            env = lmdb.open(
                location, subdir=subdir, readonly=True, lock=False,
                readahead=False, meminit=False, max_readers=512,
            )
        except lmdb.Error as exc:
            raise DatumError(f"{shown}: cannot open LMDB database: {exc}") from exc
        _shared_envs[key] = (env, 1)
        return env


def _release_shared(key: str) -> None:
    with _shared_lock:
        env, count = _shared_envs.get(key, (None, 0))
        if env is None:
            return
        if count <= 1:
            del _shared_envs[key]
            env.close()
        else:
            _shared_envs[key] = (env, count - 1)


class DatumDB:
    """Read-only access to a Datum LMDB (memory-mapped, no lock file writes).

    Safe to share between threads (a prefetch thread and the GUI): every call opens
    its own short read transaction.  Keys are ``str``; ``get`` also takes ``bytes``
    or an ``int`` index formatted as ``"%09d"``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        location, subdir = _lmdb_location(self.path)
        # keyed by the data file's identity too: a rebuilt dataset at the same path is a
        # new database, not the one a long-running reader still has open
        data_file = os.stat(location / "data.mdb" if subdir else location)
        self._env_key = f"{location.resolve()}#{data_file.st_dev}:{data_file.st_ino}"
        self._env = _open_shared(self._env_key, str(location.resolve()), subdir, self.path)
        self._closed = False
        self._keys: list[str] | None = None
        self._keys_lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def __enter__(self) -> DatumDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _release_shared(self._env_key)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):  # interpreter shutdown may have freed globals
                self.close()

    def keys(self) -> list[str]:
        """All keys in database (sorted) order; cached after the first call."""
        with self._keys_lock:
            if self._keys is None:
                with self._env.begin(buffers=False) as txn:
                    self._keys = [
                        key.decode("utf-8") for key in txn.cursor().iternext(values=False)
                    ]
            return list(self._keys)

    def get_bytes(self, key: str | bytes | int) -> bytes:
        """The serialised Datum stored under ``key``."""
        with self._env.begin(buffers=False) as txn:
            value = txn.get(_key_bytes(key))
        if value is None:
            raise DatumError(f"{self.path}: no record with key {key!r}")
        return value

    def get_with_label(self, key: str | bytes | int) -> tuple[np.ndarray, int]:
        """``(array (C, H, W), label)`` of the record ``key``."""
        try:
            return decode_datum(self.get_bytes(key))
        except DatumError as exc:
            if str(exc).startswith(str(self.path)):
                raise
            raise DatumError(f"{self.path}: record {key!r}: {exc}") from exc

    def get(self, key: str | bytes | int) -> np.ndarray:
        """The (C, H, W) array of the record ``key`` (uint8 or float32)."""
        return self.get_with_label(key)[0]

    def get_many(self, keys: Iterable[str | bytes | int]) -> np.ndarray:
        """Records stacked as (N, C, H, W) in one read transaction (all the same shape)."""
        arrays = []
        with self._env.begin(buffers=True) as txn:
            for key in keys:
                value = txn.get(_key_bytes(key))
                if value is None:
                    raise DatumError(f"{self.path}: no record with key {key!r}")
                arrays.append(decode_datum(value)[0])
        try:
            return np.stack(arrays)
        except ValueError as exc:
            raise DatumError(f"{self.path}: records differ in shape: {exc}") from exc

    def first(self) -> tuple[str, np.ndarray, int]:
        """``(key, array, label)`` of the first record (shape inference reads this)."""
        with self._env.begin(buffers=False) as txn:
            cursor = txn.cursor()
            if not cursor.first():
                raise DatumError(f"{self.path}: the LMDB database is empty")
            key, value = cursor.key(), cursor.value()
        array, label = decode_datum(value)
        return key.decode("utf-8"), array, label

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, int]]:
        """``(key, array (C, H, W), label)`` in key order."""
        with self._env.begin(buffers=True) as txn:
            for key, value in txn.cursor():
                array, label = decode_datum(value)
                yield bytes(key).decode("utf-8"), array, label


class DatumWriter:
    """Write Datums into a new or existing LMDB; the map grows as needed.

    Records are committed in batches; when the map is full the batch is retried
    after doubling the map size, so no fixed guess can overflow.  With
    ``background=True`` each full batch is committed by a helper thread while the
    caller prepares the next (LMDB releases the GIL while it copies and syncs), so
    a dataset build decodes and writes at the same time.  Use as a context manager
    (or call :meth:`close`) so the last batch is committed and synced.
    ``sync_commits=False`` skips the disk sync of each batch, leaving one sync in
    :meth:`close`: for a database nobody reads before it is closed (a dataset being
    built in a temporary folder), where a crash loses the whole build anyway.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = 64 << 20,
        batch_bytes: int = 32 << 20,
        background: bool = False,
        sync_commits: bool = True,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._env = lmdb.open(
                str(self.path), map_size=map_size, subdir=True, meminit=False, map_async=True,
                sync=sync_commits,
            )
        except lmdb.Error as exc:
            raise DatumError(f"{self.path}: cannot create LMDB database: {exc}") from exc
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_bytes = 0
        self._batch_bytes = batch_bytes
        self._background = background
        self._commit_thread: threading.Thread | None = None
        self._commit_error: BaseException | None = None
        self.count = 0

    def __enter__(self) -> DatumWriter:
        return self

    def __exit__(self, exc_type, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    @property
    def map_size(self) -> int:
        return int(self._env.info()["map_size"])

    def put_bytes(self, key: str | bytes | int, value: bytes) -> None:
        """Store serialised Datum bytes under ``key``."""
        self._pending.append((_key_bytes(key), value))
        self._pending_bytes += len(value)
        self.count += 1
        if self._pending_bytes >= self._batch_bytes:
            self._submit()

    def put(
        self, key: str | bytes | int, array: np.ndarray, label: int = 0,
        encoding: str | None = None,
    ) -> None:
        """Store ``array`` (C, H, W) or (H, W) under ``key`` (see :func:`encode_datum`)."""
        self.put_bytes(key, encode_datum(array, label, encoding))

    def append(self, array: np.ndarray, label: int = 0, encoding: str | None = None) -> str:
        """Store ``array`` under the next ``"%09d"`` key; return the key."""
        key = format_key(self.count)
        self.put(key, array, label, encoding)
        return key

    def _commit(self, batch: list[tuple[bytes, bytes]]) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for key, value in batch:
                        txn.put(key, value)
                return
            except lmdb.MapFullError:
                self._env.set_mapsize(self.map_size * 2)

    def _run_commit(self, batch: list[tuple[bytes, bytes]]) -> None:
        try:
            self._commit(batch)
        except BaseException as exc:  # re-raised in the caller's thread by _wait
            self._commit_error = exc

    def _wait(self) -> None:
        if self._commit_thread is not None:
            self._commit_thread.join()
            self._commit_thread = None
        if self._commit_error is not None:
            error, self._commit_error = self._commit_error, None
            if isinstance(error, lmdb.Error):
                raise DatumError(f"{self.path}: writing failed: {error}") from error
            raise error

    def _submit(self) -> None:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._wait()  # one commit in flight at a time keeps records in order
        if self._background:
            self._commit_thread = threading.Thread(
                target=self._run_commit, args=(batch,), name="lmdb-commit", daemon=True
            )
            self._commit_thread.start()
        else:
            try:
                self._commit(batch)
            except lmdb.Error as exc:
                raise DatumError(f"{self.path}: writing failed: {exc}") from exc

    def flush(self) -> None:
        """Commit every pending record (waiting for a background commit)."""
        if self._pending:
            background, self._background = self._background, False
            try:
                self._submit()
            finally:
                self._background = background
        self._wait()

    def close(self) -> None:
        """Commit what is pending, sync the database to disk and close it."""
        try:
            self.flush()
            self._env.sync(True)
        finally:
            self._env.close()

    def abort(self) -> None:
        """Drop uncommitted records and close (after a failed or cancelled build)."""
        self._pending.clear()
        try:
            self._wait()
        except BaseException:  # the build is being abandoned anyway
            pass
        finally:
            self._env.close()


# --------------------------------------------------------------------------- mean file

def read_mean_binaryproto(path: str | os.PathLike[str]) -> np.ndarray:
    """The (C, H, W) float32 mean image of a Caffe ``mean.binaryproto`` (BlobProto)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatumError(f"{path}: cannot read mean file: {exc.strerror}") from exc
    blob = caffe_pb2.BlobProto()
    try:
        blob.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError has no stable import path
        raise DatumError(f"{path}: not a BlobProto mean file ({exc})") from exc
    if blob.HasField("shape"):
        dims = [int(d) for d in blob.shape.dim]
    else:
        dims = [blob.num, blob.channels, blob.height, blob.width]
    values = np.asarray(blob.data, dtype=np.float32)
    if not blob.data and blob.double_data:
        values = np.asarray(blob.double_data, dtype=np.float32)
    if int(np.prod(dims)) != values.size:
        raise DatumError(
            f"{path}: mean blob shape {dims} needs {int(np.prod(dims))} values, has {values.size}"
        )
    while len(dims) > 3 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) == 2:
        dims = [1, *dims]
    if len(dims) != 3:
        raise DatumError(f"{path}: mean blob shape {dims} is not (1, C, H, W)")
    return values.reshape(dims)


def encode_mean_binaryproto(mean: np.ndarray) -> bytes:
    """Serialised ``BlobProto`` of a (C, H, W) mean, as ``caffe_pb2`` would write it.

    Legacy num/channels/height/width dims and packed ``data`` floats, assembled like
    :func:`encode_datum`: a protobuf ``repeated float`` filled from a Python list
    costs more than the rest of finishing a dataset.
    """
    arr = _as_chw(np.asarray(mean, dtype=np.float32))
    channels, height, width = (int(n) for n in arr.shape)
    floats = memoryview(np.ascontiguousarray(arr, dtype="<f4")).cast("B")
    parts = [b"\x08\x01", b"\x10", encode_varint(channels), b"\x18", encode_varint(height),
             b"\x20", encode_varint(width)]
    if len(floats):  # an empty packed field is omitted, as protobuf does
        parts += [b"\x2a", encode_varint(len(floats)), floats]
    return b"".join(parts)


def write_mean_binaryproto(mean: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a (C, H, W) mean as Caffe's ``mean.binaryproto`` (legacy num/channels/… dims)."""
    from dlp.fsutil import atomic_write_bytes

    atomic_write_bytes(path, encode_mean_binaryproto(mean))
