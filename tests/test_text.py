"""The SELF/COMPATIBLE text of the upstream proposal: reading it, and what it means."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import fastmatch
from fastmatch.cli import main
from fastmatch.formats import detect_format, read_path
from fastmatch.formats.text import read_compatible

DATA = Path(__file__).parent / "data"
UPSTREAM_TARGET = DATA / "upstream_gvt_target.txt"
UPSTREAM_SOURCE = DATA / "upstream_gvt_source.txt"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def records_of(path: Path) -> list[dict]:
    return read_path(path)[0]


def error_of(path: Path, **options) -> str:
    with pytest.raises(fastmatch.FastmatchError) as caught:
        fastmatch.load(path, **options)
    return str(caught.value)


# -- the upstream example --------------------------------------------------------------------
def test_upstream_example_reads_as_written():
    (target,) = records_of(UPSTREAM_TARGET)
    assert target == {
        "id": "upstream_gvt_target",
        "self": {
            "device_type": "pci", "device_id": "8086591d", "mdev_type": "i915-GVTg_V5_2",
            "aggregator": "1", "pv_mode": "none+ppgtt+context", "interface_version": "3",
        },
        "compatible": [
            {
                "device_type": "pci", "device_id": "8086591d",
                "mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}", "aggregator": "{val1}/2",
                "pv_mode": '{val2:string:"none+ppgtt","none+context","none+ppgtt+context"}',
                "interface_version": "{val3:int:2,3}",
            },
            {
                "device_type": "pci", "device_id": "8086591d",
                "mdev_type": "i915-GVTg_V5_{val1:int:1,2,4,8}", "aggregator": "{val1}/2",
                "pv_mode": "", "interface_version": "1",
            },
        ],
    }


def test_upstream_example_gives_the_stated_answers():
    """A V5_4 device with aggregator 2 and interface_version 1 can move to it; it cannot move back."""
    source = fastmatch.load(UPSTREAM_SOURCE).to_records()[0]
    target = fastmatch.load(UPSTREAM_TARGET).to_records()[0]
    there = fastmatch.check(source, target)
    assert there.compatible, there.explanation
    assert "record #1" in there.explanation  # the second record: pv_mode="" and interface_version=1
    back = fastmatch.check(target, source)
    assert not back.compatible
    assert "mdev_type" in back.reasons


@pytest.mark.parametrize(
    "changes, compatible",
    [
        ({}, True),
        ({"interface_version": "2"}, True),  # record 1: no pv_mode is the empty set, a subset of any
        ({"interface_version": "4"}, False),
        ({"pv_mode": "none+ppgtt", "interface_version": "2"}, True),  # record 1
        ({"pv_mode": "none+ppgtt+context", "interface_version": "3"}, True),
        ({"pv_mode": "none", "interface_version": "1"}, False),  # record 2 wants pv_mode absent
        ({"mdev_type": "i915-GVTg_V5_8", "aggregator": "4"}, True),
        ({"mdev_type": "i915-GVTg_V5_1", "aggregator": "0"}, False),  # 1/2 leaves a remainder
        ({"aggregator": "3"}, False),
    ],
)
def test_upstream_example_templates(changes, compatible):
    (source,) = records_of(UPSTREAM_SOURCE)
    source["self"].update(changes)
    (target,) = records_of(UPSTREAM_TARGET)
    assert fastmatch.check(source, target).compatible is compatible


def test_upstream_example_through_match():
    sources = fastmatch.load(UPSTREAM_SOURCE)
    targets = fastmatch.load(UPSTREAM_TARGET)
    result = fastmatch.match(sources, targets, workers=1)
    assert result.compatible.tolist() == [[True]]
    back = fastmatch.match(targets, sources, workers=1)
    assert back.compatible.tolist() == [[False]] and "mdev_type" in back.reason_names(0, 0)


def test_upstream_example_on_the_command_line(capsys):
    assert main(["check", str(UPSTREAM_SOURCE), str(UPSTREAM_TARGET)]) == 0
    assert main(["check", str(UPSTREAM_TARGET), str(UPSTREAM_SOURCE)]) == 1
    assert main(["match", str(UPSTREAM_SOURCE), str(UPSTREAM_TARGET), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "upstream_gvt_source,1,upstream_gvt_target," in out


def test_upstream_example_is_told_apart_by_content():
    assert detect_format(UPSTREAM_TARGET.read_bytes()) == "text"
    assert detect_format(b"\n\n  SELF:\n a=1\n") == "text"
    assert detect_format(b"mdev_type = x\n") == "text"
    assert detect_format(b'{"id": "a", "self": {}}\n') == "json"
    assert detect_format(b"5\n") == "json"
    assert detect_format(b"  <device/>") == "libvirt"


# -- the syntax ------------------------------------------------------------------------------
def test_one_device_per_file_takes_the_stem(tmp_path):
    path = write(tmp_path, "gvt-7.conf", "SELF:\nmdev_type=x\n")
    assert records_of(path) == [{"id": "gvt-7", "self": {"mdev_type": "x"}}]


def test_several_devices_separated_by_device_lines(tmp_path):
    path = write(
        tmp_path, "fleet.txt",
        "# two devices\n"
        "\n"
        "DEVICE: a\n"
        "SELF:\n"
        "  mdev_type=x\n"
        'DEVICE: "b c"   # quoted, with a space\n'
        "host=h2\n"
        "capacity=3\n"
        "migratable=false\n"
        "migration_version=opaque-1\n"
        "vm=\n"
        "SELF:\n"
        "  mdev_type=y\n"
        "COMPATIBLE:\n"
        "  mdev_type=x\n",
    )
    records, lines = read_path(path)
    assert records == [
        {"id": "a", "self": {"mdev_type": "x"}},
        {"id": "b c", "host": "h2", "capacity": 3, "migratable": False, "migration_version": "opaque-1",
         "self": {"mdev_type": "y"}, "compatible": [{"mdev_type": "x"}]},
    ]
    assert lines == [3, 6]
    devices = fastmatch.load(path)
    assert devices.ids == ["a", "b c"] and devices.hosts == ["", "h2"]


def test_values_quotes_and_comments(tmp_path):
    path = write(
        tmp_path, "dev.txt",
        "   # indented comment\n"
        "SELF:\n"
        "device_api = vfio-pci\t\n"
        "vendor_driver=i915 # a comment after a space\n"
        "mdev_type=a#b\n"  # no space before '#': part of the value
        'pv_mode="none, ppgtt # not a comment"\n'
        'aggregator=""\n'
        "software_version=\n"
        "\tdevice_id=8086591d\r\n"
        "COMPATIBLE:\n"
        'pv_mode={m:string:"a#b","c"} # templates may quote #\n'
        'mdev_type="*"\n',
    )
    (record,) = records_of(path)
    assert record["self"] == {
        "device_api": "vfio-pci", "vendor_driver": "i915", "mdev_type": "a#b",
        "pv_mode": "none, ppgtt # not a comment", "aggregator": "", "software_version": "", "device_id": "8086591d",
    }
    assert record["compatible"] == [{"pv_mode": '{m:string:"a#b","c"}', "mdev_type": "*"}]
    assert fastmatch.load(path).descriptor(0).values["pv_mode"] == frozenset({"none", "ppgtt # not a comment"})


def test_headers_ignore_case_and_spacing(tmp_path):
    path = write(tmp_path, "dev.txt", "self :\n a=1\nCompatible:  # first record\n a=2\n")
    assert records_of(path) == [{"id": "dev", "self": {"a": "1"}, "compatible": [{"a": "2"}]}]


def test_an_empty_self_block_is_a_device_without_attributes(tmp_path):
    assert records_of(write(tmp_path, "dev.txt", "SELF:\n")) == [{"id": "dev", "self": {}}]


def test_comments_only_is_no_device(tmp_path):
    assert records_of(write(tmp_path, "dev.txt", "# nothing here yet\n")) == []


def test_input_format_forces_text(tmp_path):
    # Detection would take this for JSON; the option says otherwise.
    path = write(tmp_path, "dev.data", "  \n[not json]\n")
    with pytest.raises(fastmatch.FastmatchError, match="invalid JSON"):
        fastmatch.load(path)
    assert "expected key=value" in error_of(path, input_format="text")


# -- errors ----------------------------------------------------------------------------------
def test_validation_errors_name_the_line_of_the_value(tmp_path):
    """A bad value is reported on its own line (an alias included), not on the DEVICE: line."""
    path = write(tmp_path, "fleet.txt", "DEVICE: a\nSELF:\n x=1\n\nDEVICE: b\nSELF:\n interface_version=abc\n")
    assert error_of(path).startswith(f"{path}:7: record 'b': field 'self.software_version': invalid version 'abc'")
    path = write(tmp_path, "records.txt", "DEVICE: a\nSELF:\nCOMPATIBLE:\n mdev_type=x\nCOMPATIBLE:\n mdev_type=y\n aggregator={n}\n")
    assert error_of(path).startswith(f"{path}:7: record 'a': field 'compatible[1].aggregator': variable 'n' is not declared")


def test_record_errors_name_the_line_the_device_starts_on(tmp_path):
    path = write(tmp_path, "fleet.txt", "DEVICE: a\nSELF:\n x=1\n\nDEVICE: a\nSELF:\n x=2\n")
    assert error_of(path).startswith(f"{path}:5: record 'a': field 'id': duplicate id 'a'")


def test_syntax_errors_name_the_line_itself(tmp_path):
    path = write(tmp_path, "dev.txt", "SELF:\n a=1\n b=2\n junk\n")
    assert error_of(path).startswith(f"{path}:4: record 'dev': expected key=value, a SELF:, COMPATIBLE: or DEVICE: line")


def test_skip_mode_goes_on_with_the_next_device(tmp_path):
    path = write(tmp_path, "fleet.txt", "DEVICE: a\nSELF:\n junk\nDEVICE: b\nSELF:\n x=1\n")
    rejected = []
    records, lines = read_path(path, on_error=lambda raw, exc: rejected.append((raw, str(exc))))
    assert records == [{"id": "b", "self": {"x": "1"}}] and lines == [4]
    assert rejected == [("DEVICE: a\nSELF:\n junk", f"{path}:3: record 'a': expected key=value, a SELF:, "
                         "COMPATIBLE: or DEVICE: line, or a # comment; found 'junk'")]


# -- the compatible file of sysfs ------------------------------------------------------------
def test_read_compatible():
    text = "# from the driver\nCOMPATIBLE:\n a=1\n b={x:int:1,2}\nCOMPATIBLE:\n a=2\n"
    records, lines = read_compatible(text, "compatible")
    assert records == [{"a": "1", "b": "{x:int:1,2}"}, {"a": "2"}]
    assert {key: where.line for key, where in lines.items()} == {
        "compatible[0]": 2, "compatible[0].a": 3, "compatible[0].b": 4, "compatible[1]": 5, "compatible[1].a": 6,
    }
    assert read_compatible("", "compatible") == ([], {})


@pytest.mark.parametrize(
    "text, message",
    [
        ("a=1\n", "compatible:1: a compatible file holds COMPATIBLE: blocks of key=value lines only"),
        ("COMPATIBLE:\na=1\nSELF:\n", "compatible:3: a compatible file holds COMPATIBLE: blocks"),
        ("COMPATIBLE:\n", "compatible:1: field 'compatible[0]': an empty COMPATIBLE: block"),
        ("COMPATIBLE:\na=1\na=2\n", "compatible:3: field 'compatible[0].a': 'a' is given twice (first on line 2)"),
    ],
)
def test_read_compatible_errors(text, message):
    with pytest.raises(fastmatch.FastmatchError) as caught:
        read_compatible(text, "compatible")
    assert str(caught.value).startswith(message)


def test_a_file_name_that_is_not_utf8_cannot_be_an_id(tmp_path):
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/gpu\xff.txt"))
    path.write_text("SELF:\n")
    assert error_of(path) == f"{path}: the name 'gpu\\udcff' is not UTF-8, and a device id must be"
