"""The reader agrees with tshark's oracle on every file of ../shared/traces-real.

Kept differences (each explained in docs/reader.md, "Differences from tshark") are listed in
KEPT; anything else that differs fails the test.
"""

from __future__ import annotations

import pytest

from replay.capture import read_captures
from replay.errors import TraceError
from tests.oracle import compare, corpus_dir, read_oracle, tshark_status

CORPUS = corpus_dir()
pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(
        not (CORPUS / "oracle" / "TSHARK_STATUS.tsv").is_file(),
        reason=f"real-capture corpus not found at {CORPUS} (set STACK_REPLAY_SHARED)",
    ),
]

# file → the exact disagreements we keep, with the reason in docs/reader.md.
KEPT: dict[str, list[str]] = {
    # ts_usec = 2^31: we carry the fraction into the seconds (as libpcap's consumers and dpkt do);
    # tshark 4.0 multiplies it by 1000 in 32 bits and prints .000000000.
    "tcpdump__timestamp_invalid_micro.pcap": [
        "frame 3: ts_ns 1418147517483648000 != tshark 1418145370000000000",
    ],
}

# Files tshark refuses: we must refuse them too (TraceError) or read them with a warning.
REFUSED = {
    "libpcap__pcap-invalid-version-1.pcap": "pcap version 1.4 is not supported",
    "libpcap__pcapng-invalid-vers-1.pcapng": "pcapng version 0.1 is not supported",
    "libpcap__linktype-reserved-field-not-zero.pcap": "reserved link-type bits are set",
}
CUT_SHORT = {
    # file → (complete frames, byte offset named in the warning)
    "scapy__bad_rsn_parsing_overrides_ssid.pcap": (1, 359),
    "ndpi__fuzz-2021-10-13.pcap": (0, 24),
}


def _files() -> list[str]:
    if not (CORPUS / "oracle" / "TSHARK_STATUS.tsv").is_file():
        return []
    return sorted(tshark_status(CORPUS))


def test_corpus_lists_every_capture() -> None:
    """Every capture in the folder has a tshark status row (nothing is silently skipped)."""
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_file() and p.suffix != ".tsv"}
    on_disk -= {"README.md", "SHA256SUMS", "MANIFEST.tsv", "SOURCES.tsv"}
    assert on_disk == set(_files())


@pytest.mark.parametrize("name", _files())
def test_agrees_with_tshark(name: str) -> None:
    path = CORPUS / name
    rc = tshark_status(CORPUS)[name]
    if name in REFUSED:
        assert rc != 0
        with pytest.raises(TraceError, match=REFUSED[name]):
            read_captures([path])
        return
    warnings: list[str] = []
    cap = read_captures([path], on_warning=warnings.append)
    if name in CUT_SHORT:
        frames, offset = CUT_SHORT[name]
        assert cap.table.num_rows == frames
        assert len(warnings) == 1 and f"cut short at byte {offset}" in warnings[0]
        assert cap.inputs[0].warnings == warnings
        return
    assert rc == 0, f"tshark fails on {name} but we read it without complaint"
    assert warnings == []
    rows = read_oracle(CORPUS / "oracle" / f"{name}.tsv")
    assert compare(cap.table, rows) == KEPT.get(name, [])
