"""Columnar fleets: Apache Parquet and Arrow IPC (a file, a stream, or Feather), through pyarrow.

A columnar fleet is a table with the keys of a device record (docs/model.md section 2)
as its columns: ``id`` and ``self`` are required, ``host``, ``vm``,
``compatible``, ``capacity``, ``migration_version`` and ``migratable`` may be
left out; any other column is an error, as an unknown key is. A null cell is a
key the record does not hold (its default applies). ``self`` is a struct (one
field per attribute; a null field is an absent attribute), a map from
attribute to value, or a string holding the JSON object. ``compatible`` is a
list of structs or maps (one per COMPATIBLE record; a null field is one the
record does not hold: write ``""`` for "the source must lack it"), or a string
holding the JSON list. Values have the types JSON would give them: strings,
integers, lists of strings for sets and for a pattern's alternatives.

Each row is validated exactly as a JSON Lines record is, and an error names
the file, the row (counted from 1, where a line number would be:
``fleet.parquet:5``), the record and the field.

Reading has two paths, as fleet JSON Lines do. The fast one works column-wise:
it codes each descriptor column (dictionary-encoding strings and a struct's
fields) to find the distinct descriptors, parses each of those once, and
never builds a record per row. Anything it does not take as it is (a column
of another type, a duplicate id, an invalid descriptor, a ``compatible`` of
structs) makes it step aside, and the row-wise reader turns every row into a
record and validates it, naming where the problem is.

``fastmatch convert`` writes Parquet fleets (:func:`fleet_table`) with
``self`` as a struct when its values have one type per attribute (JSON text
otherwise) and ``compatible`` as JSON text (a record's fields mix strings and
lists of alternatives); ``match --format parquet`` writes the candidates
(:func:`candidates_table`).
"""

from __future__ import annotations

import importlib
import json
from types import ModuleType
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from .._lines import arrow_strings, check_texts, group_rows
from .._output import gathered_texts, repeated_texts, spread_rankings
from ..devices import RECORD_KEYS, DeviceSet, DeviceSetBuilder
from ..errors import FastmatchError, InputError
from ..packed import Packed, Texts, packed_texts, utf8
from ..gcpause import gc_paused
from ..magic import ARROW_STREAM_START
from .guards import TOO_DEEP, OnError, check_decoded

if TYPE_CHECKING:
    import pyarrow as pa

    from ..policy import Policy
    from ..scores import ScoreParts

# A set or a list of alternatives is coded, for grouping, as its items joined by this byte;
# a column whose items hold it is left to the row-wise reader.
_ITEM_SEPARATOR = "\x00"


def pyarrow_module(what: str) -> ModuleType:
    """pyarrow, imported when a columnar file is met; without it, an error that says which extra."""
    try:
        pyarrow = importlib.import_module("pyarrow")  # a ModuleType to mypy: pyarrow has no stubs
        importlib.import_module("pyarrow.compute")  # the submodules the readers use as its attributes
        importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise FastmatchError(f"{what} needs pyarrow: pip install 'fastmatch[parquet]'") from None
    return pyarrow


def read_table(data: bytes, name: str, input_format: str, *, coded: bool = False) -> "pa.Table":
    """The table of a Parquet or Arrow file's bytes; a file pyarrow cannot read is one error naming it.
    ``coded``: the descriptor columns' strings, which repeat (``compatible``,
    ``migration_version``, ``self`` or a struct ``self``'s string fields), are read as the
    dictionaries Parquet stores them as, never as a million strings."""
    pa = pyarrow_module("reading a columnar fleet")
    buffer = pa.py_buffer(data)
    try:
        if input_format == "parquet":
            # The file itself, not a dataset: one chunk per row group (a dataset's scanner cuts
            # them into batches that must then be joined again), and no dataset module to import.
            # A row group at a time: read at once, a struct column of several row groups is
            # refused ("nested data conversions not implemented for chunked array outputs").
            schema = pa.parquet.ParquetFile(buffer).schema_arrow
            parquet = pa.parquet.ParquetFile(buffer, read_dictionary=_repeated_strings(schema, pa) if coded else None)
            groups = [parquet.read_row_group(group) for group in range(parquet.num_row_groups)]
            return pa.concat_tables(groups) if groups else schema.empty_table()
        if data.startswith(ARROW_STREAM_START):
            return pa.ipc.open_stream(buffer).read_all()
        import pyarrow.feather

        return pyarrow.feather.read_table(buffer)  # an IPC file, or Feather version 1
    except (pa.ArrowException, OSError, ValueError) as exc:
        kind = "a Parquet" if input_format == "parquet" else "an Arrow IPC"
        raise InputError(f"not {kind} file that pyarrow can read ({' '.join(str(exc).split())})", file=name) from None


def _repeated_strings(schema: "pa.Schema", pa: ModuleType) -> list[str]:
    paths: list[str] = []
    for field in schema:
        # Per device, or nearly: ids never repeat, a VM has a device or two and a host a few.
        # Read as dictionaries (up to a million entries, unified over the chunks), vms took 4
        # times as long as read plainly, and hosts 1.4 times.
        if field.name not in ("self", "compatible", "migration_version"):
            continue
        if pa.types.is_string(field.type):
            paths.append(field.name)
        elif field.name == "self" and pa.types.is_struct(field.type):
            paths += [f"self.{child.name}" for child in field.type if pa.types.is_string(child.type)]
    return paths


# -- the row-wise reader ----------------------------------------------------------------------
def read_columnar(
    data: bytes, name: str, input_format: str, *, on_error: OnError | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every row as a device record, and its row number (from 1) as its place."""
    table = read_table(data, name, input_format)
    columns = {column: _python_values(table, column, name) for column in table.column_names}
    records: list[dict[str, Any]] = []
    places: list[int] = []
    for row in range(table.num_rows):
        raw = {column: values[row] for column, values in columns.items() if values[row] is not None}
        try:
            records.append(_record(raw, name, row + 1))
        except InputError as exc:
            if on_error is None:
                raise
            on_error(raw, exc)
            continue
        places.append(row + 1)
    return records, places


def _python_values(table: "pa.Table", column: str, name: str) -> list[Any]:
    try:
        values: list[Any] = table.column(column).to_pylist()
    except (UnicodeDecodeError, ValueError) as exc:  # a string column that is not UTF-8, a value Python cannot hold
        raise InputError(f"column {column!r} cannot be read: {exc}", file=name) from None
    return values


def _record(raw: dict[str, Any], name: str, row: int) -> dict[str, Any]:
    """A row's values in the shape of a JSON record: JSON text decoded, a map as an object,
    null fields of a struct left out."""
    record = dict(raw)
    label = f"'{raw['id']}'" if isinstance(raw.get("id"), str) and raw["id"] else None
    for key in ("self", "compatible"):
        if key not in record:
            continue
        value = record[key]
        if isinstance(value, str):
            value = _decode_json(value, name, row, label, key)
        record[key] = _object(value) if key == "self" else [_object(item) for item in value] if isinstance(value, list) else value
    return record


def _decode_json(text: str, name: str, row: int, label: str | None, key: str) -> Any:
    """JSON text in a cell, refused as the JSON readers refuse it (fastmatch.formats.guards)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=name, line=row, record=label, field=key) from None
    except RecursionError:
        raise InputError(TOO_DEEP, file=name, line=row, record=label, field=key) from None
    except ValueError:
        raise InputError("invalid JSON: a number of thousands of digits", file=name, line=row, record=label, field=key) from None
    check_decoded(value, name, row, text)
    return value


def _object(value: Any) -> Any:
    """A struct's dict without its null fields; a map's list of pairs as a dict (a map with one
    key twice keeps both as two pairs, which validation then refuses as an unknown shape)."""
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    if isinstance(value, list) and value and all(isinstance(pair, tuple) and len(pair) == 2 for pair in value):
        keys = [key for key, _ in value]
        if len(set(keys)) == len(keys):
            return {key: item for key, item in value if item is not None}
    return value


# -- the column-wise reader -----------------------------------------------------------------
def read_columnar_devices(data: bytes, name: str, input_format: str, policy: "Policy") -> DeviceSet | None:
    """The devices of a valid columnar fleet, or ``None`` to leave it to the row-wise reader."""
    with gc_paused():
        return _columnar_devices(data, name, input_format, policy)


def _columnar_devices(data: bytes, name: str, input_format: str, policy: "Policy") -> DeviceSet | None:
    table = read_table(data, name, input_format, coded=True)
    pa = pyarrow_module("reading a columnar fleet")
    names = table.column_names
    if not set(names) <= set(RECORD_KEYS) or "id" not in names or "self" not in names or table.num_rows == 0:
        return None
    try:
        columns = {c: _one_chunk(table.column(c), pa) for c in names}
        ids = _ids(columns["id"], pa)
        if ids is None:
            return None
        hosts = _packed_strings(columns["host"], pa) if "host" in columns else [""] * len(ids)
        vms = _packed_strings(columns["vm"], pa) if "vm" in columns else [""] * len(ids)
        capacities = _capacities(columns.get("capacity"), len(ids), pa)
        if hosts is None or vms is None or capacities is None:
            return None
        codes = [_codes(columns[c], pa, c) for c in ("self", "compatible", "migration_version", "migratable") if c in columns]
    except (pa.ArrowException, UnicodeDecodeError, OverflowError):
        return None
    coded = [code for code in codes if code is not None]
    if len(coded) < len(codes):
        return None
    descriptor_of, first_rows = group_rows(coded, len(ids))
    distinct = pa.table({c: columns[c] for c in ("self", "compatible", "migration_version", "migratable") if c in names})
    builder = DeviceSetBuilder(policy)
    try:
        for raw in distinct.take(_numbers(first_rows.astype(np.int64), pa.int64(), pa)).to_pylist():  # an error: the row-wise reader locates it
            builder.add_descriptor(_record({k: v for k, v in raw.items() if v is not None}, name, 0))
    except (FastmatchError, ValueError, RecursionError, UnicodeDecodeError):
        return None
    return builder.build_columns(ids, hosts, vms, capacities, descriptor_of)


def _one_chunk(column: "pa.ChunkedArray", pa: ModuleType) -> "pa.Array":
    """One array of a column, dictionaries (a struct's fields' too) unified over its chunks."""
    kind = column.type
    if pa.types.is_struct(kind) and not column.null_count:
        fields = [
            _one_chunk(pa.chunked_array([chunk.flatten()[k] for chunk in column.chunks], type=kind.field(k).type), pa)
            for k in range(kind.num_fields)
        ]
        return pa.StructArray.from_arrays(fields, fields=list(kind)) if fields else column.combine_chunks()
    if pa.types.is_dictionary(kind):
        column = column.unify_dictionaries()
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _ids(array: "pa.Array", pa: ModuleType) -> Sequence[str] | None:
    """The ids, or ``None`` when one is null, empty or repeated, or the column is not strings.
    A string column's stay packed (``Texts``): a million str cost a tenth of a second and
    150 MB, for ids that a match reads only to find the targets named like its sources, and
    a writer only to copy their bytes."""
    if _is_plain_text(array.type, pa) and not array.null_count:
        return _texts(*_string_buffers(array, pa), unique=True)
    ids = _strings(array, pa, nullable=False)  # a dictionary column, or no strings (None)
    if ids is None or "" in ids or len(set(ids)) != len(ids):
        return None
    return ids


def _packed_strings(array: "pa.Array", pa: ModuleType) -> Sequence[str] | None:
    """:func:`_strings`, kept packed (``Texts``) when it is a string column without nulls: a
    host holds a few devices and a VM one or two, so such a column is nearly as many str as
    devices, where a match reads only the distinct hosts (``DeviceSet.host_codes``) and only
    ``plan`` reads VMs."""
    if _is_plain_text(array.type, pa) and not array.null_count:
        return _texts(*_string_buffers(array, pa), unique=False)
    return _strings(array, pa)


def _texts(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8], unique: bool) -> Texts | None:
    """An Arrow string column's buffers (:func:`_string_buffers`) as ``Texts``, checked as
    ``arrow_strings`` checks them; None when ``unique`` and a string is empty or repeats."""
    if not check_texts(offsets, data, unique):  # in C, without a str
        return None
    first = int(offsets[0])
    return Texts(offsets - first if first else offsets, data[first : int(offsets[-1])])  # (a copy only when sliced)


def _is_plain_text(kind: "pa.DataType", pa: ModuleType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _string_buffers(array: "pa.Array", pa: ModuleType) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """An Arrow string array's offsets (as int64, from its first string) and its UTF-8 bytes."""
    _, offsets, data = array.buffers()
    width = 8 if pa.types.is_large_string(array.type) else 4
    starts = np.frombuffer(offsets, dtype=np.int64 if width == 8 else np.int32, count=len(array) + 1, offset=array.offset * width)
    return starts.astype(np.int64), np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)


def _strings(array: "pa.Array", pa: ModuleType, nullable: bool = True) -> list[str] | None:
    """A column of strings (nulls as ``""``) as a list; ``None`` when it holds anything else."""
    if pa.types.is_null(array.type):
        return [""] * len(array) if nullable else None
    if pa.types.is_dictionary(array.type) and _is_text(array.type, pa):
        # Each distinct string made once, then each row's picked by its code (numpy's take).
        values = np.array(array.dictionary.to_pylist() + [""], dtype=object)
        codes = array.indices
        if codes.null_count and not nullable:
            return None
        strings: list[str] = values[_integers(codes, pa, len(values) - 1)].tolist()
        return strings
    if not _is_plain_text(array.type, pa):
        return None
    if array.null_count:
        if not nullable:
            return None
        array = pa.compute.fill_null(array, "")
    return arrow_strings(*_string_buffers(array, pa), False)  # no Arrow scalar per string


def _capacities(array: "pa.Array | None", n: int, pa: ModuleType) -> npt.NDArray[np.int64] | None:
    if array is None or pa.types.is_null(array.type):
        return np.ones(n, dtype=np.int64)
    if not pa.types.is_integer(array.type):
        return None
    read = _integers(array, pa, 1)
    if read.dtype == np.uint64 and len(read) and read.max() > np.iinfo(np.int64).max:
        return None
    values = read.astype(np.int64)
    return values if len(values) == 0 or values.min() >= 0 else None


def _integers(array: "pa.Array", pa: ModuleType, null: int = 0) -> npt.NDArray[np.integer[Any]]:
    """An integer column as NumPy, read from its buffers, its nulls as ``null`` (``to_numpy`` and
    ``fill_null``'s scalar import pandas the first time: 0.2 s of a command's start)."""
    kind, n, offset = array.type, len(array), array.offset
    validity, data = array.buffers()[:2]
    dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.bit_width // 8}")
    values: npt.NDArray[np.integer[Any]] = np.frombuffer(data, dtype=dtype, count=n + offset)[offset:]
    if array.null_count:
        valid = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=n + offset, bitorder="little")[offset:]
        values = values.astype(np.uint64 if dtype == np.uint64 else np.int64)  # room for ``null``
        values[~valid.view(bool)] = null
    return values


def _codes(array: "pa.Array", pa: ModuleType, column: str) -> npt.NDArray[np.integer[Any]] | None:
    """Codes (int32 or int64), equal for equal cells (null included), or ``None`` for a column
    this path does not code (it is then read row by row)."""
    kind = array.type
    if pa.types.is_null(kind):
        return np.zeros(len(array), dtype=np.int64)
    if pa.types.is_struct(kind):
        if column != "self" or array.null_count:
            return None
        fields = [_codes(array.field(k), pa, "field") for k in range(kind.num_fields)]
        coded = [field for field in fields if field is not None]
        if len(coded) < len(fields):
            return None
        return group_rows(coded, len(array))[0] if coded else np.zeros(len(array), dtype=np.int64)
    if column in ("self", "compatible") and not _is_text(kind, pa):
        return None  # a map, or a compatible of structs: the row-wise reader takes them
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):  # a set attribute's items
        items = pa.compute.list_flatten(array)
        if not _is_text(items.type, pa) or items.null_count or _holds_separator(items, pa):
            return None
        array = pa.compute.binary_join(array, _ITEM_SEPARATOR)
    elif pa.types.is_nested(kind):
        return None
    if not pa.types.is_dictionary(array.type):
        array = pa.compute.dictionary_encode(array, null_encoding="encode")
    # A dictionary-typed column's nulls are null indices: one code of their own. Arrow's int32
    # indices are grouped as they are (``group_rows``): no int64 copy of every column.
    codes = _integers(array.indices, pa, len(array.dictionary))
    return codes if codes.dtype == np.int32 else codes.astype(np.int64)


def _is_text(kind: "pa.DataType", pa: ModuleType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _holds_separator(items: "pa.Array", pa: ModuleType) -> bool:
    return bool(pa.compute.any(pa.compute.match_substring(items, _ITEM_SEPARATOR)).as_py())


# -- writing ------------------------------------------------------------------------------------
def fleet_table(devices: DeviceSet) -> "pa.Table":
    """A device set as a columnar fleet that reads back to the same devices: ``self`` a struct
    when pyarrow holds every descriptor's values in one type per attribute (see
    :func:`_self_column`), else JSON text; ``compatible`` JSON text."""
    pa = pyarrow_module("writing a Parquet fleet")
    descriptors = devices.descriptors
    take = pa.array(devices.descriptor_of, type=pa.int64())
    declared = {attribute.name for attribute in devices.policy.attributes}
    selves = _self_column([dict(d.raw_self) for d in descriptors], declared, pa)
    compatible = pa.array(
        [json.dumps([dict(r) for r in d.raw_compatible], ensure_ascii=False) if d.raw_compatible else None for d in descriptors],
        type=pa.string(),
    )
    columns = {
        "id": _text_array(devices.ids, pa),
        "host": _text_array(devices.hosts, pa),
        "vm": _text_array(devices.vms, pa),
        "self": selves.take(take),
        "compatible": compatible.take(take),
        "capacity": pa.array(devices.capacities, type=pa.int64()),
        "migration_version": pa.array([d.migration_version for d in descriptors], type=pa.string()).take(take),
        "migratable": pa.array([d.migratable for d in descriptors], type=pa.bool_()).take(take),
    }
    return pa.table(columns)


def _text_array(texts: Sequence[str], pa: ModuleType) -> "pa.Array":
    """A column of str; of ``Texts``, made from their bytes."""
    if isinstance(texts, Texts):
        narrow = int(texts.offsets[-1]) < 1 << 31
        return _string_array(texts.data, texts.offsets.astype(np.int32) if narrow else texts.offsets, pa)
    return pa.array(texts, type=pa.string())


def _self_column(selves: list[dict[str, Any]], declared: set[str], pa: ModuleType) -> "pa.Array":
    """A struct has one order of fields; what depends on the order of a descriptor's attributes
    is where undeclared ones first appear (their reason bits, docs/model.md section 8), so the struct
    is taken when it keeps every descriptor's undeclared attributes in their order."""
    try:
        column = pa.array(selves) if selves else None
    except (pa.ArrowException, OverflowError, TypeError):
        column = None
    if column is not None and pa.types.is_struct(column.type) and column.type.num_fields:
        order = {column.type.field(k).name: k for k in range(column.type.num_fields)}
        if all(_increasing([order[key] for key in attributes if key not in declared]) for attributes in selves):
            return column
    return pa.array([json.dumps(attributes, ensure_ascii=False) for attributes in selves], type=pa.string())


def _increasing(positions: list[int]) -> bool:
    return all(a < b for a, b in zip(positions, positions[1:]))


def parquet_bytes(table: "pa.Table") -> bytes:
    """A table as a Parquet file (zstd-compressed, strings dictionary-encoded)."""
    pa = pyarrow_module("writing Parquet")
    sink = pa.BufferOutputStream()
    pa.parquet.write_table(table, sink, compression="zstd")
    written: bytes = sink.getvalue().to_pybytes()
    return written


CANDIDATE_COLUMNS = ("source", "rank", "target", "exact", "same_type", "version", "major_distance", "minor_distance")
_NULLABLE_CANDIDATE_COLUMNS = ("version", "major_distance", "minor_distance")  # null where a part does not apply

# Arrow's Parquet writer keeps a column dictionary-encoded while its dictionary page stays
# within this many bytes (pyarrow's default), and falls back to plain encoding past it.
_DICTIONARY_PAGE_BYTES = 1 << 20


# Rows of one Parquet row group of candidates: the file is made a row group at a time, the
# next one built while the last is encoded, in buffers the next but one reuses. A quarter of
# pyarrow's default size: at 4,900,000 rows the command's peak memory fell from 790 to 700 MB,
# for a file 3% larger (BENCHMARKS.md, session 9).
_ROW_GROUP_ROWS = 1 << 18


def candidates_parquet(
    source_ids: Sequence[str], target_ids: Sequence[str], targets: np.ndarray, parts: "ScoreParts", which: np.ndarray
) -> bytes:
    """:func:`candidates_table` as a Parquet file, made a row group (of whole sources) at a
    time: each is built while a thread has pyarrow encode the one before (both release the
    GIL), and the columns of only one or two row groups are held at once.

    The target and version columns are handed to the writer dictionary-encoded where their
    dictionaries fit a page (Arrow then writes the codes as they are instead of hashing every
    value), and the Arrow schema is not stored in the file, so readers see the plain
    ``string`` columns it describes, not dictionaries. No other column is dictionary-encoded:
    ranks, bools and distances compress as well without, and hashing their 5,000,000 values
    took a fifth of the encoding (0.59-0.65 s without, 0.75-0.80 s with). The columns that
    cannot be null are required (``source``, ``rank``, ``target``, ``exact``, ``same_type``),
    so that no definition level is written for their values.

    The text columns carry no min/max statistics, the others do. The values of ``target``
    and ``version`` span nearly their whole range in every row group (no reader could skip
    one by them), and Arrow finds a dictionary column's by gathering the values its codes
    name, which took longer than writing the rest of the file (0.85 s with, 0.47 s without,
    for 5,000,000 rows). ``source``'s would let a reader skip row groups only where the
    fleet lists its ids in sorted order, and comparing 5,000,000 strings was the writer's
    largest cost: 0.13 s of the column's 0.25 s (BENCHMARKS.md, session 10). ``source`` is
    not dictionary-encoded: a source's id is on at most k rows, so its dictionary outgrows
    a page and Arrow falls back to plain encoding after hashing for nothing (0.05 s of 0.6 s
    at 5,000,000 rows, and the file is 7% smaller); one dictionary per row group (its
    sources' ids, a page's worth) took 0.18 s against plain's 0.12, for a larger file."""
    pa = pyarrow_module("writing Parquet")
    candidates = _Candidates(source_ids, target_ids, targets, parts, which, pa)
    sink = pa.BufferOutputStream()
    with_statistics = [name for name in CANDIDATE_COLUMNS if name not in ("source", "target", "version")]
    with_dictionary = ["target", "version"]
    schema = candidates.rows(0, 0).schema
    with pa.parquet.ParquetWriter(
        sink,
        schema,
        compression="zstd",
        store_schema=False,
        write_statistics=with_statistics,
        use_dictionary=with_dictionary,
    ) as writer, ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastmatch-parquet") as encoder:
        encoding: Future[None] | None = None
        for start, stop in candidates.row_groups(_ROW_GROUP_ROWS):
            rows = candidates.rows(start, stop)
            if encoding is not None:
                encoding.result()
            encoding = encoder.submit(writer.write_table, rows)
        if encoding is not None:
            encoding.result()
    written: bytes = sink.getvalue().to_pybytes()
    return written


def candidates_table(
    source_ids: Sequence[str], target_ids: Sequence[str], targets: np.ndarray, parts: "ScoreParts", which: np.ndarray
) -> "pa.Table":
    """One row per candidate (``CANDIDATE_COLUMNS``), as ``match --format csv`` writes them:
    rank from 1, the score's parts (null where one does not apply; distances as uint64, exact).

    ``which`` is each source's distinct ranking (``cli.Ranking``), and ``targets`` and
    ``parts`` those rankings' candidates (target indices, -1 past the last) and their parts,
    (rankings, k). ``target`` and ``version`` may be dictionary columns of strings (see
    :class:`_Candidates`)."""
    return _Candidates(source_ids, target_ids, targets, parts, which, pyarrow_module("writing Parquet")).rows(0, len(which))


class _Candidates:
    """The candidates' columns, made for any run of sources. Every column but ``source``
    depends only on the ranking, so each is its rankings' table, (rankings, k), spread over
    their sources in native code, and so is ``source`` from the packed ids: no Python object
    and no index array per candidate. The targets are a dictionary of the ids the rankings
    name, with each row's code into it, when those ids fit a Parquet dictionary page (a
    fleet's top-k names a few thousand targets of a million), else the ids themselves; the
    versions are a dictionary of their few texts."""

    def __init__(
        self,
        source_ids: Sequence[str],
        target_ids: Sequence[str],
        targets: np.ndarray,
        parts: "ScoreParts",
        which: np.ndarray,
        pa: ModuleType,
    ) -> None:
        self.pa = pa
        self.which = np.ascontiguousarray(which, dtype=np.int64)
        self.n_rankings, self.k = parts.shape
        targets = np.ascontiguousarray(targets, dtype=np.int64).reshape(self.n_rankings, self.k)
        self.counts = (targets >= 0).sum(axis=1).astype(np.int64)
        self.source_rows = self.counts[self.which]
        self.source_ids = packed_texts(source_ids)
        self.ranks = np.ascontiguousarray(np.broadcast_to(np.arange(1, self.k + 1, dtype=np.int32), (self.n_rankings, self.k)))
        self.exact, self.same_type = (np.ascontiguousarray(part).view(np.uint8) for part in (parts.exact, parts.same_type))
        self.major_distance, self.minor_distance = (np.ascontiguousarray(part) for part in (parts.major_distance, parts.minor_distance))
        self.measured = parts.prefer == "closest"
        versions = parts.version.reshape(-1).tolist()
        spelled = {id(v): v.canonical for v in versions if v is not None}  # (the versions live as long as the list)
        version_texts = sorted(set(spelled.values()))
        code_of = {text: code for code, text in enumerate(version_texts)}
        self.version_codes = np.array(
            [-1 if v is None else code_of[spelled[id(v)]] for v in versions], dtype=np.int32
        ).reshape(self.n_rankings, self.k)
        self.version_texts = _text_column(version_texts, pa)
        named = np.zeros(len(target_ids), dtype=bool)
        named[targets[targets >= 0]] = True
        kept = np.flatnonzero(named)
        self.target_codes = np.where(targets >= 0, (np.cumsum(named) - 1)[targets], -1).astype(np.int32)
        self.named_targets: Packed
        if isinstance(target_ids, Texts):
            data, offsets = gathered_texts(*target_ids.packed, kept)
            self.named_targets = data, offsets[1:].astype(np.int64)
        else:
            self.named_targets = utf8([target_ids[j] for j in kept.tolist()])
        fits_a_page = int(self.named_targets[1][-1] if len(kept) else 0) <= _DICTIONARY_PAGE_BYTES
        self.target_dictionary = _packed_column(self.named_targets, pa) if fits_a_page else None

    def row_groups(self, rows: int) -> Iterator[tuple[int, int]]:
        """Runs of whole sources, ``(start, stop)``, each ending at the first source that
        brings its rows to a multiple of ``rows`` (the last at the last source), with at
        least one row each."""
        ends = np.cumsum(self.source_rows)
        total = int(ends[-1]) if len(ends) else 0
        cuts = np.unique(np.concatenate([[0], np.searchsorted(ends, np.arange(rows, total, rows), side="left") + 1, [len(ends)]]))
        for start, stop in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
            if ends[stop - 1] > (ends[start - 1] if start else 0):
                yield start, stop

    def rows(self, start: int, stop: int) -> "pa.Table":
        """The candidates of sources ``start`` to ``stop``, as a table of ``CANDIDATE_COLUMNS``."""
        pa = self.pa
        which = self.which[start:stop]

        def spread(table: np.ndarray) -> np.ndarray:
            return spread_rankings(table, which, self.counts)

        version_codes = spread(self.version_codes)
        has_version = version_codes >= 0
        measured = has_version if self.measured else np.zeros(len(version_codes), dtype=bool)
        target_codes = spread(self.target_codes)
        columns = pa.table(
            {
                "source": _string_array(*repeated_texts(*self.source_ids, self.source_rows[start:stop], start), pa),
                "rank": _numbers(spread(self.ranks), pa.int32(), pa),
                "target": (
                    pa.DictionaryArray.from_arrays(_numbers(target_codes, pa.int32(), pa), self.target_dictionary)
                    if self.target_dictionary is not None
                    else _string_array(*gathered_texts(*self.named_targets, target_codes.astype(np.int64)), pa)
                ),
                "exact": _bool_column(spread(self.exact).view(bool), pa),
                "same_type": _bool_column(spread(self.same_type).view(bool), pa),
                "version": pa.DictionaryArray.from_arrays(_numbers(version_codes, pa.int32(), pa, valid=has_version), self.version_texts),
                "major_distance": _numbers(spread(self.major_distance), pa.uint64(), pa, valid=measured),
                "minor_distance": _numbers(spread(self.minor_distance), pa.uint64(), pa, valid=measured),
            }
        )
        # Required where a candidate always has a value: no definition levels to write.
        return columns.cast(pa.schema([field.with_nullable(field.name in _NULLABLE_CANDIDATE_COLUMNS) for field in columns.schema]))


def _text_column(texts: list[str], pa: ModuleType) -> "pa.Array":
    """A few texts as an Arrow string column."""
    return _packed_column(utf8(texts), pa)


def _packed_column(texts: "Packed", pa: ModuleType) -> "pa.Array":
    """Packed texts (fastmatch.packed) as an Arrow string column."""
    return _string_array(*repeated_texts(*texts, np.ones(len(texts[1]), dtype=np.int64)), pa)


def _numbers(values: np.ndarray, kind: "pa.DataType", pa: ModuleType, valid: np.ndarray | None = None) -> "pa.Array":
    """A NumPy column as an Arrow one, built from its buffers (``pa.array`` imports pandas the
    first time, to ask whether it was given a Series), null where ``valid`` is false."""
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(kind, len(values), [bitmap, pa.py_buffer(np.ascontiguousarray(values))])


def _bool_column(values: np.ndarray, pa: ModuleType) -> "pa.Array":
    """A bool array as an Arrow column, from its packed bits (``pa.array`` takes 60 ns a value)."""
    bits = np.packbits(values, bitorder="little")
    return pa.BooleanArray.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def _string_array(data: "bytes | npt.NDArray[np.uint8]", offsets: np.ndarray, pa: ModuleType) -> "pa.Array":
    """Packed texts (``offsets`` from 0: int32 for a ``string`` column, int64 past Arrow's 2 GiB
    of one, a ``large_string``) as an Arrow column, built from its buffers."""
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(kind, len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
