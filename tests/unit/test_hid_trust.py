"""HID trust: every bound of the HID layer pinned with the hostile inputs that once crashed, hung or
exhausted dkproto; every failure one DkError line; round trips exact (docs/hid.md, "Bounds")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dkproto.errors import BadArgumentError, DecodeError, DkError
from dkproto.hid import parse
from dkproto.hid.codec import MAX_CACHED_ELEMENTS, DescriptorCodec, ReportCodec
from dkproto.hid.lint import lint
from dkproto.hid.parser import (
    HID_GLOBAL_STACK_SIZE,
    HID_MAX_BUFFER_SIZE,
    HID_MAX_DESCRIPTOR_SIZE,
    HID_MAX_USAGES,
    MAX_COLLECTION_DEPTH,
    MAX_EXPANDED_USAGES,
    MAX_FIELDS,
    MAX_PARSED_BYTES,
)
from dkproto.hid.rdesc import parse_rdesc
from dkproto.hid.render import format_items, format_layouts
from dkproto.hid.sources import MAX_SOURCE_BYTES, load, parse_hex, parse_recording

# Runs the CLI as the console script does (sys.exit(main())) under a 1 GiB address-space limit.
_RUNNER = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
    "from dkproto.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def cli(*args: str, timeout: float = 20.0) -> tuple[int, str, str]:
    """``dkproto ARGS`` in a subprocess limited to 1 GiB; (exit status, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-c", _RUNNER, *args], capture_output=True, text=True, timeout=timeout,
                       check=False)
    return r.returncode, r.stdout, r.stderr


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dkproto: "), err[-2000:]
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def rules(rd_or_data: bytes) -> dict[str, int]:
    return {f.rule: f.offset for f in reversed(lint(rd_or_data))}


MOUSE_HEAD = bytes.fromhex("0501 0902 a101")

# -- 1. a report whose size the kernel refuses is never laid out --------------------------------


def test_issue_1_report_count_ffffffff_is_refused_at_once() -> None:
    t0 = time.monotonic()
    code, out, err = cli("hid", "decode", "-d", "05 01 09 30 a1 01 75 08 97 ff ff ff ff 81 02 c0", "00")
    assert time.monotonic() - t0 < 15
    line = one_error_line(err)
    assert code == 1 and out == ""
    assert "offset 13, report descriptor: input report 0 grows to 34359738360 bits" in line
    assert "HID_MAX_BUFFER_SIZE" in line and "kIOReturnBadArgument" in line


def test_issue_1_random_64k_descriptor_decodes_or_refuses_quickly(tmp_path: Path) -> None:
    import random

    rnd = random.Random(1)
    path = tmp_path / "random.bin"
    path.write_bytes(bytes(rnd.getrandbits(8) for _ in range(65536)))
    rd = parse(path.read_bytes())
    assert rd.stopped is not None and rd.stopped.rule == "HID027"
    for rep in rd.reports.values():  # every report is refused, none is materialised
        with pytest.raises(DecodeError, match="does not lay it out"):
            ReportCodec(rep)
    code, _, err = cli("hid", "decode", "-d", str(path), "00" * 64)
    assert code == 1
    one_error_line(err)


def test_report_size_and_count_the_kernel_refuses() -> None:
    size_257 = parse(MOUSE_HEAD + bytes.fromhex("0930 760101 9501 8102 c0"))
    with pytest.raises(DecodeError, match=r"Report Size 257 x Report Count 1: .* up to 256 .* HID_MAX_USAGES \(12288\)") as ei:
        DescriptorCodec(size_257).codec()
    assert ei.value.rule == "HID005" and ei.value.offset == 13
    count = HID_MAX_USAGES + 1
    too_many = parse(MOUSE_HEAD + bytes.fromhex("0930 7501 96") + count.to_bytes(2, "little") + bytes.fromhex("8102 c0"))
    with pytest.raises(DecodeError, match="HID_MAX_USAGES"):
        DescriptorCodec(too_many).decode(bytes(count // 8 + 1))
    # the limits themselves are accepted
    ok = parse(MOUSE_HEAD + bytes.fromhex("0930 760001 9501 8102 c0"))
    assert ok.kernel_error is None and DescriptorCodec(ok).decode(bytes(32)) is not None


def test_report_at_hid_max_buffer_size_decodes_one_bit_past_is_refused() -> None:
    def desc(bits: int) -> bytes:
        # report ID 1: 64-bit elements, then one element of the remaining bits
        whole, rest = divmod(bits, 64)
        body = bytes.fromhex("8501 0930 7540 96") + whole.to_bytes(2, "little") + bytes.fromhex("8102")
        if rest:
            body += bytes.fromhex("75") + bytes([rest]) + bytes.fromhex("9501 8103")
        return MOUSE_HEAD + body + b"\xc0"

    limit = (HID_MAX_BUFFER_SIZE - 1) * 8
    rd = parse(desc(limit))
    assert rd.kernel_error is None
    data = bytes([1]) + bytes(range(256)) * 64
    data = data[:HID_MAX_BUFFER_SIZE]
    c = DescriptorCodec(rd)
    v = c.decode(data)
    assert c.build(v) == data
    over = parse(desc(limit + 1))
    assert rules(over.data)["HID009"] == 21
    with pytest.raises(DecodeError, match=r"HID_MAX_BUFFER_SIZE.*\(HID009\)"):
        DescriptorCodec(over).decode(data + b"\x00")
    with pytest.raises(DecodeError, match="over HID_MAX_BUFFER_SIZE"):  # a report longer than any the kernel reads
        c.decode(data + bytes(HID_MAX_BUFFER_SIZE), strict=False)


def test_descriptor_over_hid_max_descriptor_size_is_linted_not_decoded() -> None:
    fill = bytes.fromhex("0930") * ((HID_MAX_DESCRIPTOR_SIZE - 20) // 2)
    small = MOUSE_HEAD + bytes.fromhex("1500 2501 7501 9501") + fill[: len(fill) - 100] + bytes.fromhex("8102 c0")
    assert len(small) <= HID_MAX_DESCRIPTOR_SIZE and DescriptorCodec(parse(small)).decode(b"\x01") == {"X": 1}
    big = MOUSE_HEAD + bytes.fromhex("1500 2501 7501 9501") + fill + fill[:200] + bytes.fromhex("8102 c0")
    rd = parse(big)
    assert len(big) > HID_MAX_DESCRIPTOR_SIZE and rd.kernel_error is not None and rd.kernel_error.rule == "HID011"
    assert len(rd.report("input", 0).fields) == 1  # parse and lint still show it all
    with pytest.raises(DecodeError, match=r"HID_MAX_DESCRIPTOR_SIZE \(4096\).*\(HID011\)"):
        DescriptorCodec(rd).decode(b"\x01")


# -- 2. parse and its renderers are linear: the bounds that keep them so ------------------------


def test_issue_2_deeply_nested_collections_render_linearly(tmp_path: Path) -> None:
    path = tmp_path / "deep.bin"
    path.write_bytes(b"\x05\x01" + b"\xa1\x01" * 100_000 + b"\xc0" * 100_000)  # 300 KB
    for fmt in ("text", "json"):
        t0 = time.monotonic()
        code, out, err = cli("hid", "parse", str(path), "--format", fmt)
        assert code == 0, err
        assert time.monotonic() - t0 < 15
        assert len(out) < 10_000_000
    depth_stop = 2 + 2 * MAX_COLLECTION_DEPTH  # offset of collection number 33
    assert f"offset {depth_stop}: error HID027 dkproto-bound: Collection nested 33 deep" in out or \
        any(f["offset"] == depth_stop and f["rule"] == "HID027" for f in json.loads(out)["findings"])
    code, out, _ = cli("hid", "parse", str(path))
    assert max(len(line) for line in out.splitlines()) < 200  # indentation stops at the bound
    assert f"offset {depth_stop}: error HID027" in out


def test_collection_depth_bound() -> None:
    ok = b"\x05\x01" + b"\xa1\x01" * MAX_COLLECTION_DEPTH + b"\xc0" * MAX_COLLECTION_DEPTH
    assert parse(ok).stopped is None and len(parse(ok).collections) == MAX_COLLECTION_DEPTH
    rd = parse(b"\x05\x01" + b"\xa1\x01" * (MAX_COLLECTION_DEPTH + 1) + b"\xc0" * (MAX_COLLECTION_DEPTH + 1))
    assert rd.stopped is not None and rd.stopped.offset == 2 + 2 * MAX_COLLECTION_DEPTH
    assert "HID001" not in {f.rule for f in rd.findings}  # open collections are the stop's, not the descriptor's


def test_parsed_bytes_bound() -> None:
    data = MOUSE_HEAD + bytes.fromhex("0930") * 40_000 + b"\xc0"
    rd = parse(data)
    assert rd.stopped is not None and rd.stopped.rule == "HID027"
    assert rd.stopped.offset == MAX_PARSED_BYTES + 1  # the first item starting past 65535 bytes
    assert "wDescriptorLength" in rd.stopped.message
    assert rules(data)["HID011"] == HID_MAX_DESCRIPTOR_SIZE


def test_expanded_usages_bound_counts_ranges_and_indices() -> None:
    rng = bytes.fromhex("1900 2aff2f 8100")  # 12288 usages, then an Input taking no bits
    n = MAX_EXPANDED_USAGES // HID_MAX_USAGES
    rd = parse(MOUSE_HEAD + bytes.fromhex("7501 9500") + rng * n + b"\xc0")
    assert rd.stopped is None and sum(len(f.usages) for f in rd.fields) == n * HID_MAX_USAGES
    rd = parse(MOUSE_HEAD + bytes.fromhex("7501 9500") + rng * (n + 1) + b"\xc0")
    assert rd.stopped is not None and rd.stopped.offset == 10 + n * 7 + 2
    # designator and string ranges count too (the kernel ignores them; they were unbounded)
    desig = bytes.fromhex("4900 5aff2f")  # 12288 designator indices
    rd = parse(MOUSE_HEAD + desig * 100 + b"\xc0")  # per main item: HID_MAX_USAGES at most
    assert rd.stopped is None
    rd = parse(MOUSE_HEAD + bytes.fromhex("7501 9500") + (desig + b"\x81\x00") * 100 + b"\xc0")
    assert rd.stopped is not None and "Designator Maximum range" in rd.stopped.message
    assert sum(len(f.designators) for f in rd.fields) == n * HID_MAX_USAGES


def test_fields_bound_and_hid010_is_linear() -> None:
    t0 = time.monotonic()
    rd = parse(MOUSE_HEAD + bytes.fromhex("1500 2501 7501 9501") + bytes.fromhex("0930 8102") * (MAX_FIELDS + 1) + b"\xc0")
    assert time.monotonic() - t0 < 5
    assert rd.stopped is not None and rd.stopped.offset == 14 + 4 * MAX_FIELDS + 2
    assert len(rd.fields) == MAX_FIELDS
    assert sum(f.kernel_dropped for f in rd.fields) == MAX_FIELDS - 256


def test_push_stack_bound() -> None:
    rd = parse(MOUSE_HEAD + b"\xa4" * 50_000 + b"\xc0")
    assert [f.rule for f in rd.findings].count("HID012") == 50_000 - HID_GLOBAL_STACK_SIZE
    lines = format_items(rd)
    assert len(lines) == len(rd.items)


def test_codec_cache_is_bounded() -> None:
    # 4 input reports of 120000 one-bit elements: at most MAX_CACHED_ELEMENTS stay compiled.
    body = b"".join(bytes.fromhex("85") + bytes([i]) + bytes.fromhex("0930 7501 96e02e") + b"\x81\x02" * 10
                    for i in range(1, 5))
    rd = parse(MOUSE_HEAD + bytes.fromhex("1500 2501") + body + b"\xc0")
    assert rd.kernel_error is None
    c = DescriptorCodec(rd)
    for i in range(1, 5):
        v = c.decode(bytes([i]) + bytes(15000))
        assert v.report_id == i
        assert sum(len(x.elems) for x in c._codecs.values()) <= MAX_CACHED_ELEMENTS
    assert len(c._codecs) == MAX_CACHED_ELEMENTS // 120_000
    assert c.decode(bytes([1]) + b"\xff" * 15000)["X"][0] == 1  # dropped codecs come back


def test_memory_heavy_descriptors_stay_under_1_gib(tmp_path: Path) -> None:
    """The inputs that took GBs: each command ends within the limit (exit 0 or one DkError line)."""
    cases = {
        "usages.hex": ("0501 0902 a101 1500 2501 7501 9501" + " 1900 2a0030 80" * 680 + " c0").encode(),
        "fields.bin": b"\x05\x01\x09\x02" + b"\xa0" * 32 + b"\x75\x01\x95\x01" + b"\x80" * 65_400,
        "wide.bin": b"\x05\x01\x09\x02" + b"\xa0" * 32 + b"\x09\x30\x80" * 21_800,
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        for args in (("parse", str(p)), ("parse", str(p), "--format", "json"), ("lint", str(p)),
                     ("decode", "-d", str(p), "00")):
            code, _, err = cli("hid", *args)
            assert code in (0, 1), (name, args, err[-500:])
            if code == 1 and args[0] != "lint":
                one_error_line(err)
            assert "Traceback" not in err and "MemoryError" not in err


# -- 3. sources: one DkError line for every hostile file -----------------------------------------


@pytest.mark.parametrize(
    "text,match",
    [
        ('{"report_descriptor_hex":5}', "key 'report_descriptor_hex' must be a string, not int"),
        ('{"report_descriptor_hex":' + "9" * 5000 + "}", "a number with more than 4300 digits"),
        ('{"report_descriptor_hex":' + "[" * 200_000 + "]" * 200_000 + "}", "JSON nests deeper than 64"),
        ('{"report_descriptor_hex":"0501", "input_reports_hex": "00"}', "must be a list of hex strings"),
        ('{"report_descriptor_hex":"0501", "input_reports_hex": [7]}', r"input_reports_hex\[0\]: expected hex text"),
        ('{"report_descriptor_hex":"0501", "vid": "zz"}', "key 'vid' must be 1 to 4 hex digits"),
        ('{"report_descriptor_hex":"0501", "name": []}', "key 'name' must be a string, not list"),
        ('[1, 2]', "expected a JSON object, got list"),
        ('{"report_descriptor_hex":"0501", "report_descriptor_hex":"0502"}', "duplicate key"),
    ],
)
def test_issue_3_corpus_json_with_wrong_types(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(DecodeError, match=match):
        load(p)


def test_issue_3_on_the_command_line(tmp_path: Path) -> None:
    for i, text in enumerate(['{"report_descriptor_hex":5}', '{"report_descriptor_hex":' + "9" * 5000 + "}",
                              '{"report_descriptor_hex":' + "[" * 200_000 + "]" * 200_000 + "}"]):
        p = tmp_path / f"bad{i}.json"
        p.write_text(text)
        code, out, err = cli("hid", "parse", str(p))
        assert code == 1 and out == ""
        assert str(p) in one_error_line(err)


def test_text_encodings_bom_and_non_utf8(tmp_path: Path) -> None:
    mouse = MOUSE_HEAD + b"\xc0"
    doc = json.dumps({"report_descriptor_hex": mouse.hex(), "name": "Souris \u00e9"})
    for enc, bom in (("utf-8", b"\xef\xbb\xbf"), ("utf-8", b""), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")):
        p = tmp_path / f"m-{enc}-{len(bom)}.json"
        p.write_bytes(bom + doc.encode(enc))
        src = load(p)
        assert (src.descriptor, src.name, src.origin) == (mouse, "Souris \u00e9", "json")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("05 01 # souris \u00e9\n".encode("latin-1"))
    with pytest.raises(DecodeError, match=r"offset 15, .*latin1.txt: text that is not UTF-8: byte 0xe9"):
        load(latin)
    bad16 = tmp_path / "bad16.txt"
    bad16.write_bytes(b"\xff\xfe" + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(DecodeError, match="not UTF-16-LE"):
        load(bad16)
    binary = tmp_path / "desc"
    binary.write_bytes(mouse)  # control bytes: binary, as before
    assert load(binary).origin == "binary"


def test_source_file_size_bound(tmp_path: Path) -> None:
    p = tmp_path / "huge.hex"
    with p.open("wb") as f:
        f.truncate(MAX_SOURCE_BYTES + 1)
    with pytest.raises(BadArgumentError, match="more than the 16,777,216 accepted"):
        load(p)


def test_text_scanners_are_linear(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(DecodeError, match="/\\* comment never closed"):
        parse_hex("/*" * 200_000)
    p = tmp_path / "blank.txt"
    p.write_text("\n" * 2_000_000 + "x")
    with pytest.raises(DkError):
        load(p)  # "\s*" at every line start once rescanned every following blank line
    with pytest.raises(DecodeError):
        parse_rdesc("05 01\n" + " " * 200_000 + "x")
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    "text,match",
    [
        ("R: 2 05 fff\n", r"R: line, byte 2: 'fff' is not a hex byte"),
        ("R: 99999999999999999999 05\n", "byte count '9999"),
        ("R:\n", "R: line without a byte count"),
        ("R: 1 05\nE: x 1 00\n", "timestamp 'x' is not a number"),
        ("R: 1 05\nE: 0.1\n", "E: line needs a timestamp and a byte count"),
        ("D: zz\n", "bad D: line"),
    ],
)
def test_recording_lines(text: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        parse_recording(text)


def test_rdesc_bad_numbers_are_decode_errors() -> None:
    with pytest.raises(DecodeError, match=r"offset 5, rdesc: Report Size\(x\): not an integer"):
        parse_rdesc("05 01\n\nINPUT[INPUT]\n  Field(0)\n  Report Size(x)\n")


# -- 4. round trips are exact ---------------------------------------------------------------------

KEYS_ARRAY = bytes.fromhex("0501 0906 a101 0507 1900 2965 1500 2565 7508 9502 8100 c0")


@pytest.mark.parametrize(
    "report,names,raw",
    [
        (b"\xf0\x00", [], [0xF0, 0]),  # out of the logical range: no usage, kept raw
        (b"\x00\x04", ["Keyboard A"], [0, 4]),  # "no event" before an active slot
        (b"\x04\x00", ["Keyboard A"], None),  # canonical: the names rebuild it
    ],
)
def test_issue_4_array_values_without_a_usage_rebuild(report: bytes, names: list[str], raw: list[int] | None) -> None:
    c = DescriptorCodec(parse(KEYS_ARRAY))
    v = c.decode(report)
    assert v["Keyboard/Keypad"] == names and v.get("(raw Keyboard/Keypad)") == raw
    assert c.build(v) == report and c.build(dict(v)) == report  # through JSON as well
    rc = c.codec()
    assert rc.decode_construct(report) == v and rc.build_construct(v) == report
    if raw is not None:
        with pytest.raises(BadArgumentError, match=r"disagrees with \(raw Keyboard/Keypad\)"):
            c.build({**v, "Keyboard/Keypad": ["Keyboard B"]})


def test_issue_4_repeated_last_usage_keeps_its_index() -> None:
    # 2 usages, count 3: the kernel repeats the last usage, so index 1 and 2 both name Keyboard B
    c = DescriptorCodec(parse(bytes.fromhex("0501 0906 a101 0507 1904 2905 1500 2502 7508 9503 8100 c0")))
    v = c.decode(b"\x02\x03\x03")  # 3 is outside 0..2: the null value
    assert v["Keyboard/Keypad"] == ["Keyboard B"] and v["(raw Keyboard/Keypad)"] == [2, 3, 3]
    assert c.build(v) == b"\x02\x03\x03"
    assert c.build({"Keyboard/Keypad": ["Keyboard B"]}) == b"\x01\x03\x03"  # the names alone: first index


def test_issue_4_bits_after_the_last_field_are_kept() -> None:
    c = DescriptorCodec(parse(bytes.fromhex("0501 0902 a101 0930 1500 251f 7505 9501 8102 c0")))
    v = c.decode(b"\xff")
    assert v == {"X": 31, "(padding@5)": 7}
    assert c.build(v) == b"\xff" and c.build(dict(v)) == b"\xff"
    assert c.codec().build_construct(v) == b"\xff"


def test_issue_4_zero_length_reports() -> None:
    for desc, report in (("0501 0902 a101 0930 7508 9500 8102 c0", b""),
                         ("0501 0902 a101 8501 0930 7508 9500 8102 c0", b"\x01")):
        rd = parse(bytes.fromhex(desc))
        c = DescriptorCodec(rd)
        v = c.decode(report)
        assert dict(v) == {} and c.build(v) == report
        rc = c.codec("input", v.report_id)
        assert rc.decode_construct(report) == v and rc.build_construct(v) == report
        code, out, err = cli("hid", "decode", "-d", desc, report.hex() or "", "--json")
        assert code == 0 and json.loads(out)["values"] == {}, err


def test_decode_cli_says_when_the_kernel_refuses_the_descriptor() -> None:
    code, out, err = cli("hid", "decode", "-d", "0501 0902 a101 0930 7508 9501 8102", "05")
    assert code == 0 and "X=5" in out
    assert "warning: the Linux kernel refuses this descriptor (offset 4: error HID001" in err


def test_renderers_on_refused_and_stopped_descriptors() -> None:
    rd = parse(b"\x05\x01" + b"\xa1\x01" * 40 + bytes.fromhex("0930 7508 9501 8102") + b"\xc0" * 40)
    assert rd.stopped is not None
    assert format_layouts(rd) == [] and len(format_items(rd)) == len(rd.items)
    assert rd.to_json()["findings"][-1]["rule"] == "HID027"


@pytest.mark.parametrize(("exponent_item", "physical"), [
    ("55 0e", {"X": (0.05, "")}),  # the spec's nibble: 0xE is -2
    ("56 81 02", {}),  # 641: 10**641 is no double: no physical value, no OverflowError (fuzz finding F4)
    ("57 00 00 00 80", {}),  # -2**31: underflows to zero: no physical value rather than a silent 0.0
])
def test_physical_values_stay_finite(exponent_item: str, physical: dict[str, object]) -> None:
    from dkproto.hid import DescriptorCodec, parse

    rd = parse(bytes.fromhex(f"05 01 09 30 15 00 25 7f 75 08 95 01 {exponent_item} 81 02".replace(" ", "")))
    codec = DescriptorCodec(rd)
    values = codec.decode(b"\x05")
    assert values == {"X": 5}
    assert codec.codec("input", 0).physical(values) == physical
