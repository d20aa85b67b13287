"""Writing ``match``'s answers (cli.Ranking, the JSON Lines / CSV / Parquet writers and the
native joiner behind them, fastmatch._output): held to writers that format every source on
its own, line by line, with no sharing of rankings and no packing of ids."""

from __future__ import annotations

import csv
import errno
import io
import os
import threading

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastmatch as fm
import fastmatch.generate
import fastmatch.native
from fastmatch import _output, cli, outfile
from fastmatch.formats import columnar
from fastmatch.formats.columnar import _string_array, candidates_table
from fastmatch.packed import packed, utf8

# Characters that need something done in JSON (escapes), in CSV (quoting, formula starts) or
# in UTF-8 (more than one byte), and plain ones.
AWKWARD = 'a1/ é😀"\\,\r\n\t\x01=+-@\''
ids = st.text(alphabet=AWKWARD, min_size=1, max_size=6)


def _unpacked(data: bytes, ends: np.ndarray) -> list[bytes]:
    starts = [0, *ends[:-1].tolist()]
    return [data[a:b] for a, b in zip(starts, ends.tolist())]


# -- the native joiner ---------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=5), max_size=30),
    st.lists(st.lists(st.binary(max_size=4), max_size=3), min_size=1, max_size=5),
    st.binary(max_size=3),
    st.integers(1, 40),
    st.data(),
)
def test_joined_lines_are_the_lines_joined_in_python(texts, pieces, prefix, budget, data):
    which = np.array([data.draw(st.integers(0, len(pieces) - 1)) for _ in texts], dtype=np.int64)
    id_data, id_ends = packed(texts)
    piece_data, piece_ends = packed(p for ranking in pieces for p in ranking)
    ranking_pieces = np.cumsum([0, *map(len, pieces)], dtype=np.int64)
    chunks, start = [], 0
    while start < len(texts):
        chunk, stop = _output.joined_lines(prefix, id_data, id_ends, which, piece_data, piece_ends, ranking_pieces, start, budget)
        expected = b"".join(prefix + texts[i] + p for i in range(start, stop) for p in pieces[which[i]])
        assert chunk == expected and stop > start
        assert len(chunk) <= budget or stop == start + 1  # a line longer than the budget goes alone
        chunks.append(chunk)
        start = stop
    assert b"".join(chunks) == b"".join(prefix + texts[i] + p for i in range(len(texts)) for p in pieces[which[i]])


def test_joined_lines_refuse_offsets_outside_their_buffers():
    which, ranking_pieces = np.zeros(1, dtype=np.int64), np.array([0, 1], dtype=np.int64)
    with pytest.raises(ValueError, match="id ending at 9"):
        _output.joined_lines(b"", b"abc", np.array([9]), which, b"x", np.array([1]), ranking_pieces, 0, 100)
    with pytest.raises(ValueError, match="piece 0 ends at 5"):
        _output.joined_lines(b"", b"abc", np.array([3]), which, b"x", np.array([5]), ranking_pieces, 0, 100)
    with pytest.raises(ValueError, match="ranking 1 of 1"):
        _output.joined_lines(b"", b"abc", np.array([3]), np.ones(1, dtype=np.int64), b"x", np.array([1]), ranking_pieces, 0, 100)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 40), st.integers(0, 3), st.integers(1, 3), st.data())
def test_distinct_rows_number_rows_by_first_appearance_run_after_run(n, k, values, data):
    """Rows given in any order of their holders, a run at a time: each holder gets its row's
    number, the rows numbered as they first come; the rows kept are the first of each."""

    def table(columns):
        return np.array(data.draw(st.lists(st.lists(st.integers(-1, values), min_size=columns, max_size=columns), min_size=n, max_size=n)), dtype=np.int64).reshape(n, columns)

    a, b, c = table(k), table(k), table(1).reshape(n)
    order = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=5)))
    which = np.full(n, -1, dtype=np.int64)
    rows = _output.DistinctRows(k)
    for start, stop in zip([0, *cuts], [*cuts, n]):
        run = order[start:stop]  # (a run's arrays are copies: the caller's buffers are reused)
        rows.add(a[run].copy(), b[run].copy(), c[run].copy(), run, which)
    given_rows = [(*a[i], *b[i], c[i]) for i in order.tolist()]
    numbered: dict = {}
    expected = np.empty(n, dtype=np.int64)
    expected[order] = [numbered.setdefault(row, len(numbered)) for row in given_rows]
    assert which.tolist() == expected.tolist()
    holders, kept_a, kept_b, kept_c = rows.rows()
    assert len(rows) == len(numbered) == len(holders)
    assert holders.tolist() == [int(order[given_rows.index(row)]) for row in numbered]
    assert [(*x, *y, z) for x, y, z in zip(kept_a.tolist(), kept_b.tolist(), kept_c.tolist())] == list(numbered)


def test_distinct_rows_past_the_first_table_size():
    """Thousands of distinct rows, each seen several times, given in runs: the kept rows and the
    hash table grow (from 1,024 rows) and keep numbering rows by first appearance."""
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 3000, 20_000)
    a = np.stack([rows, rows // 7], axis=1).astype(np.int64)
    b = np.stack([rows % 5, -rows], axis=1).astype(np.int64)
    c = (rows % 3).astype(np.int64)
    which = np.empty(len(rows), dtype=np.int64)
    distinct = _output.DistinctRows(2)
    for start in range(0, len(rows), 1000):
        run = np.arange(start, min(start + 1000, len(rows)))
        distinct.add(a[run], b[run], c[run], run, which)
    _, first_seen, inverse = np.unique(rows, return_index=True, return_inverse=True)
    numbering = np.empty(len(first_seen), dtype=np.int64)
    numbering[np.argsort(first_seen)] = np.arange(len(first_seen))
    holders, kept_a, _, _ = distinct.rows()
    assert holders.tolist() == sorted(first_seen.tolist())
    assert np.array_equal(kept_a, a[holders])
    assert which.tolist() == numbering[inverse].tolist()


def test_distinct_rows_refuse_a_run_that_does_not_fit():
    rows, which = _output.DistinctRows(2), np.empty(3, dtype=np.int64)
    a, c, holders = np.zeros((3, 2), dtype=np.int64), np.zeros(3, dtype=np.int64), np.arange(3)
    with pytest.raises(ValueError, match="for rows of k = 2"):
        rows.add(np.zeros((3, 1), dtype=np.int64), a, c, holders, which)
    with pytest.raises(ValueError, match="holder 3 outside the 3 places"):
        rows.add(a, a, c, holders + 1, which)
    with pytest.raises(ValueError, match="k must be >= 0"):
        _output.DistinctRows(-1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=20), st.binary(max_size=3))
def test_ascii_texts_copy_plain_ascii_and_refuse_the_rest(texts, forbidden):
    plain = _output.ascii_texts(texts, forbidden)
    encoded = [t.encode() for t in texts]
    if all(t.isascii() for t in texts) and not any(set(e) & set(forbidden) for e in encoded):
        assert plain is not None and _unpacked(*plain) == encoded
    else:
        assert plain is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=AWKWARD, max_size=6), max_size=20), st.data())
def test_string_columns_equal_pyarrow_taking_from_the_ids(texts, data):
    picks = np.array(data.draw(st.lists(st.integers(0, len(texts) - 1), max_size=30)) if texts else [], dtype=np.int64)
    repeats = np.array(data.draw(st.lists(st.integers(0, 3), min_size=len(texts), max_size=len(texts))), dtype=np.int64)
    gathered = _string_array(*_output.gathered_texts(*utf8(texts), picks), pa)
    repeated = _string_array(*_output.repeated_texts(*utf8(texts), repeats), pa)
    assert gathered.type == repeated.type == pa.string()
    assert gathered.to_pylist() == [texts[p] for p in picks]
    assert repeated.to_pylist() == [text for text, times in zip(texts, repeats.tolist()) for _ in range(times)]


def test_string_columns_past_2_gib_are_large_strings():
    """Offsets past int32 make a ``large_string`` column (shown by the offsets' type: 2 GiB of
    text are not made here)."""
    data, offsets = _output.gathered_texts(b"ab", np.array([2], dtype=np.int64), np.array([0, 0], dtype=np.int64))
    assert offsets.dtype == np.int32 and offsets.tolist() == [0, 2, 4]
    wide = _string_array(data, offsets.astype(np.int64), pa)
    assert wide.type == pa.large_string() and wide.to_pylist() == ["ab", "ab"]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 5), st.integers(0, 4), st.integers(0, 12), st.sampled_from([np.uint8, np.int32, np.int64, np.uint64]), st.data())
def test_spread_rankings_lists_each_sources_ranking_cells(n_rankings, k, n, dtype, data):
    table = np.arange(n_rankings * k, dtype=dtype).reshape(n_rankings, k)
    counts = np.array(data.draw(st.lists(st.integers(0, k), min_size=n_rankings, max_size=n_rankings)), dtype=np.int64)
    which = np.array(data.draw(st.lists(st.integers(0, n_rankings - 1), min_size=n, max_size=n)) if n_rankings else [], dtype=np.int64)
    spread = _output.spread_rankings(table, which, counts)
    assert spread.dtype == dtype
    assert spread.tolist() == [cell for r in which.tolist() for cell in table[r, : counts[r]].tolist()]


def test_spread_rankings_refuses_rankings_outside_the_table():
    table = np.zeros((2, 3), dtype=np.int32)
    with pytest.raises(ValueError, match="ranking 2 of 2"):
        _output.spread_rankings(table, np.array([0, 2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="ranking 1 has 4 of 3 cells"):
        _output.spread_rankings(table, np.array([0, 1]), np.array([1, 4]))


# -- the formats, against writers that format each source on its own -----------------------
def fleet_strategy():
    device = st.fixed_dictionaries(
        {
            "host": st.sampled_from(["h1", "h2", "h3"]),
            "self": st.fixed_dictionaries(
                {"mdev_type": st.sampled_from(["A", "B"]), "software_version": st.sampled_from(["1.0.1", "1.2.0", "2.0.0", "1.0.1+b"])}
            ),
        }
    )

    def with_ids(devices, names):
        return [{"id": name, **d} for name, d in zip(names, devices)]

    side = st.integers(1, 12).flatmap(
        lambda n: st.tuples(st.lists(device, min_size=n, max_size=n), st.lists(ids, min_size=n, max_size=n, unique=True))
    )
    return st.tuples(side, side).map(lambda sides: [with_ids(*s) for s in sides])


def _parts_json(result, i, j, score):
    return result.score_parts(i, j, score).json(())


def json_lines_one_by_one(result, k) -> bytes:
    encode = msgspec.json.encode
    indices, scores = result.top_k(k)
    lines = []
    for i, source in enumerate(result.sources.ids):
        candidates = ", ".join(
            f'{{"target": {encode(result.targets.ids[j]).decode()}, "rank": {rank}, "score": {encode(_parts_json(result, i, j, s)).decode()}}}'
            for rank, (j, s) in enumerate(zip(indices[i].tolist(), scores[i].tolist()), 1)
            if j >= 0
        )
        lines.append(f'{{"source": {encode(source).decode()}, "candidates": [{candidates}]}}\n')
    return "".join(lines).encode()


def csv_one_by_one(result, k, neutralise) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    cell = cli._csv_cell if neutralise else str

    def row(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()[:-2] + "\n"

    def shown(value) -> str:
        return "" if value is None else str(value).lower() if isinstance(value, bool) else cell(str(value))

    indices, scores = result.top_k(k)
    out = [row(cli.CSV_COLUMNS)]
    for i, source in enumerate(result.sources.ids):
        for rank, (j, s) in enumerate(zip(indices[i].tolist(), scores[i].tolist()), 1):
            if j >= 0:
                parts = _parts_json(result, i, j, s)
                out.append(row([cell(source), rank, cell(result.targets.ids[j]), *(shown(parts[name]) for name in cli.CSV_COLUMNS[3:])]))
    return "".join(out).encode()


@settings(max_examples=40, deadline=None)
@given(fleet_strategy(), st.integers(0, 4), st.booleans(), st.sampled_from(["closest", "newest"]))
def test_json_lines_csv_and_parquet_equal_writers_that_format_each_source_alone(fleet, k, neutralise, prefer):
    result = fm.match(*fleet, fm.Policy.from_dict({"prefer": prefer}), workers=1)
    ranking = cli.Ranking.of(result, k)
    assert b"".join(cli._format_json(ranking)) == json_lines_one_by_one(result, k)
    assert b"".join(cli._format_csv(ranking, neutralise=neutralise)) == csv_one_by_one(result, k, neutralise)
    table = candidates_table(ranking.source_ids, ranking.target_ids, ranking.targets, ranking.parts, ranking.which)
    rows = list(csv.reader(io.StringIO(csv_one_by_one(result, k, False).decode(), newline="")))[1:]
    assert [[str(v).lower() if isinstance(v, bool) else "" if v is None else str(v) for v in row.values()] for row in table.to_pylist()] == rows


def test_sources_sharing_a_ranking_are_written_from_one(tmp_path):
    """A fleet whose sources mostly share rankings: far fewer rankings than sources, and
    every line still its own source's."""
    fastmatch.generate.write_fleet(tmp_path, 3000, 500, 40, seed=3)
    result = fm.match(fm.load(tmp_path / "sources.jsonl"), fm.load(tmp_path / "targets.jsonl"), workers=1)
    ranking = cli.Ranking.of(result, 5)
    assert 1 < len(ranking) < len(result.sources) // 10
    assert b"".join(cli._format_json(ranking)) == json_lines_one_by_one(result, 5)


@pytest.mark.parametrize("per_run", [1, 7, 1000])
def test_rankings_found_a_run_of_sources_at_a_time_write_what_each_source_alone_would(tmp_path, monkeypatch, per_run):
    """The kernel ranks a run of source classes at a time (as few as one class, however many
    devices it has): the rankings found across runs write every source's own candidates."""
    fastmatch.generate.write_fleet(tmp_path, 600, 200, 30, seed=5)
    result = fm.match(fm.load(tmp_path / "sources.jsonl"), fm.load(tmp_path / "targets.jsonl"), workers=2)
    monkeypatch.setattr(fastmatch.native, "SOURCES_PER_RUN", per_run)
    ranking = cli.Ranking.of(result, 4)
    assert 1 < len(ranking) < len(result.sources)
    assert b"".join(cli._format_json(ranking)) == json_lines_one_by_one(result, 4)


def test_many_chunks_join_into_the_same_lines(tmp_path, monkeypatch):
    fastmatch.generate.write_fleet(tmp_path, 400, 100, 20, seed=4)
    result = fm.match(fm.load(tmp_path / "sources.jsonl"), fm.load(tmp_path / "targets.jsonl"), workers=1)
    ranking = cli.Ranking.of(result, 3)
    monkeypatch.setattr(cli, "_CHUNK_BYTES", 1000)
    chunks = list(cli._format_json(ranking))
    assert len(chunks) > 50 and all(chunk.endswith(b"\n") for chunk in chunks)
    assert b"".join(chunks) == json_lines_one_by_one(result, 3)


# -- output files around the page cache ----------------------------------------------------
BLOCK, STAGING = outfile._BLOCK, outfile._STAGING_BYTES


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [1], [BLOCK - 1], [BLOCK], [BLOCK + 1], [STAGING], [STAGING + 5], [3, 5000, STAGING + BLOCK, 1, 3 * BLOCK], [700_001] * 30],
)
def test_binary_output_files_hold_their_chunks_byte_for_byte(tmp_path, sizes):
    rng = np.random.default_rng(len(sizes))
    chunks = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in sizes]
    path = tmp_path / "out.bin"
    output = outfile.StagedOutput(path, binary=True)
    output.write(chunks)
    output.commit()
    assert path.read_bytes() == b"".join(chunks)


def test_binary_output_is_written_through_the_cache_where_direct_writes_are_refused(tmp_path, monkeypatch):
    """A file system that refuses O_DIRECT when it is set, or at the first write (EINVAL):
    the same bytes, written through the page cache."""
    chunks = [b"x" * (STAGING + 3 * BLOCK + 17), b"tail"]
    real_write = os.write

    def refusing_direct_writes(fd, data):
        if outfile.fcntl_flags(fd) & outfile._DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(outfile.os, "write", refusing_direct_writes)
    for refuse_setting in (False, True):
        if refuse_setting:
            monkeypatch.setattr(outfile, "set_fcntl_flags", lambda fd, flags: (_ for _ in ()).throw(OSError(errno.EINVAL, "no")))
        path = tmp_path / f"out{refuse_setting}.bin"
        output = outfile.StagedOutput(path, binary=True)
        output.write(chunks)
        output.commit()
        assert path.read_bytes() == b"".join(chunks)


def test_binary_output_refuses_text(tmp_path):
    output = outfile.StagedOutput(tmp_path / "out.bin", binary=True)
    try:
        with pytest.raises(TypeError):
            output.write(["text"])
    finally:
        output.discard()
    assert list(tmp_path.iterdir()) == []


def _direct_output(path) -> outfile.StagedOutput:
    """A staged binary output written around the page cache, or a skip where the file system refuses that (tmpfs)."""
    output = outfile.StagedOutput(path, binary=True)
    output.write([])
    if not isinstance(output._handle, outfile._DirectFile):
        output.discard()
        pytest.skip("this file system takes no O_DIRECT writes")
    return output


def test_the_next_chunk_is_made_while_a_full_buffer_is_written(tmp_path, monkeypatch):
    """A full staging buffer is written by another thread: the caller makes its next chunk
    while the disk takes the last (were the write made in the caller's thread, it would wait
    here for a release that only the next chunk gives, and time out)."""
    output = _direct_output(tmp_path / "out.bin")
    writing, release = threading.Event(), threading.Event()
    writers: set[str] = set()
    real_write = os.write

    def slow_write(fd, data):
        writers.add(threading.current_thread().name)
        if not release.is_set():
            writing.set()
            assert release.wait(10), "the next chunk was not asked for while a buffer was being written"
        return real_write(fd, data)

    monkeypatch.setattr(outfile.os, "write", slow_write)
    first, second = b"a" * STAGING, b"b" * (STAGING // 2 + 5)

    def chunks():
        yield first
        assert writing.wait(10)  # the first buffer is being written...
        release.set()  # ...while this chunk is being made
        yield second

    output.write(chunks())
    output.commit()
    assert (tmp_path / "out.bin").read_bytes() == first + second
    assert threading.current_thread().name not in writers or len(writers) > 1


def test_a_write_failing_in_the_writing_thread_fails_the_output(tmp_path, monkeypatch):
    output = _direct_output(tmp_path / "out.bin")

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outfile.os, "write", full_disk)
    with pytest.raises(fm.FastmatchError, match="out.bin: cannot write: No space left on device"):
        output.write([b"x" * (3 * STAGING)])
    output.discard()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dictionary_page", [columnar._DICTIONARY_PAGE_BYTES, 0])
@pytest.mark.parametrize("row_group_rows", [columnar._ROW_GROUP_ROWS, 1, 97])
def test_the_parquet_file_reads_back_as_plain_columns_of_the_csv_rows(tmp_path, monkeypatch, dictionary_page, row_group_rows):
    """The Parquet file holds the rows a table of plain columns would (its target and version
    columns are written from dictionaries when their ids fit a page, gathered otherwise; in
    row groups of whole sources), and reads back with the documented types (required where a
    candidate always has a value), not as dictionaries."""
    monkeypatch.setattr(columnar, "_DICTIONARY_PAGE_BYTES", dictionary_page)
    monkeypatch.setattr(columnar, "_ROW_GROUP_ROWS", row_group_rows)
    fastmatch.generate.write_fleet(tmp_path, 300, 200, 30, seed=5)
    result = fm.match(fm.load(tmp_path / "sources.jsonl"), fm.load(tmp_path / "targets.jsonl"), workers=1)
    ranking = cli.Ranking.of(result, 4)
    data = columnar.candidates_parquet(ranking.source_ids, ranking.target_ids, ranking.targets, ranking.parts, ranking.which)
    written = pq.read_table(pa.BufferReader(data))
    file = pq.ParquetFile(pa.BufferReader(data))
    groups = [file.read_row_group(g).column("source").to_pylist() for g in range(file.num_row_groups)]
    assert all(len(rows) < row_group_rows + 4 for rows in groups) and len(groups) >= written.num_rows // (row_group_rows + 4)  # (k = 4)
    assert all(a[-1] != b[0] for a, b in zip(groups, groups[1:]))  # a source's candidates in one row group
    first = file.metadata.row_group(0)
    with_statistics = {first.column(c).path_in_schema for c in range(first.num_columns) if first.column(c).is_stats_set}
    assert with_statistics == {"rank", "exact", "same_type", "major_distance", "minor_distance"}  # none on the text columns
    required = [("source", pa.string()), ("rank", pa.int32()), ("target", pa.string()), ("exact", pa.bool_()), ("same_type", pa.bool_())]
    nullable = [("version", pa.string()), ("major_distance", pa.uint64()), ("minor_distance", pa.uint64())]
    assert written.schema == pa.schema([pa.field(*c, nullable=False) for c in required] + [pa.field(*c) for c in nullable])
    rows = list(csv.reader(io.StringIO(csv_one_by_one(result, 4, False).decode(), newline="")))[1:]
    assert len(rows) > 300
    assert [[str(v).lower() if isinstance(v, bool) else "" if v is None else str(v) for v in row.values()] for row in written.to_pylist()] == rows


def test_copy_into_places_bytes_and_refuses_to_overrun():
    target = bytearray(8)
    _output.copy_into(target, 3, b"abc")
    _output.copy_into(target, 8, b"")
    assert bytes(target) == b"\0\0\0abc\0\0"
    with pytest.raises(ValueError, match="3 bytes at 6 of 8"):
        _output.copy_into(target, 6, b"xyz")
