"""Benchmark: the camt.053 parser on a ~200 MB statement file, memory and speed.

    python -m bench.parse [--size-mb 200] [--statements 4] [--skip-tree] [--json]

Writes a deterministic camt.053.001.08 file (several statements, realistic entries: references,
related parties with Pty, agents, remittance, bank transaction codes; one entry in 20 a batch of
three TxDtls) into a temp dir, then reads it in three fresh subprocesses, one after the other:

- *parser*: `Camt053Parser().parse()` with every event built, as the landing step runs it;
- *floor*: a bare `lxml.etree.iterparse` pass that clears each `Ntry` and builds nothing (what
  streaming costs before any field is read);
- *tree*: `lxml.etree.parse` of the whole file (the non-streaming reference), unless --skip-tree.

Each child reports its own wall time and peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`).
The target is a parser peak RSS under 300 MB. This is a benchmark, not a test: it exits non-zero
only when the parser's counts or balance checks disagree with what was generated.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

TARGET_RSS_MB = 300
SEED = 20261124
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
FIRST_DAY = date(2026, 1, 1)
_NAMES = ("Acme Supplies BV", "Stadtwerke Nord GmbH", "J. de Vries", "Northwind Traders Ltd", "Café Lumière")
_CODES = (
    ("PMNT", "RCDT", "ESCT"),
    ("PMNT", "ICDT", "ESCT"),
    ("PMNT", "IDDT", "ESDD"),
    ("PMNT", "CCRD", "POSD"),
)
_IBANS = (
    "NL91ABNA0417164300",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "GB29NWBK60161331926819",
)
_BICS = ("ABNANL2A", "COBADEFFXXX", "BNPAFRPP", "NWBKGB2L")


def _amounts(rng: random.Random, count: int) -> list[int]:
    """Signed entry amounts in cents; drawn before the statement is written so its balances can close."""
    return [rng.randint(1, 2_500_00) * (1 if rng.random() < 0.45 else -1) for _ in range(count)]


def _money(cents: int) -> str:
    return f"{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _balance(code: str, cents: int, day: date) -> str:
    sign = "CRDT" if cents >= 0 else "DBIT"
    return (
        f'<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{_money(cents)}</Amt>'
        f"<CdtDbtInd>{sign}</CdtDbtInd><Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>\n"
    )


def _transaction(rng: random.Random, cents: int, number: int) -> str:
    sign = "CRDT" if cents >= 0 else "DBIT"
    other = "Dbtr" if cents >= 0 else "Cdtr"
    pick = rng.randrange(len(_NAMES))
    remittance = (
        f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp>"
        f"<Ref>RF{number % 97:02d}{number:010d}</Ref></CdtrRefInf></Strd>"
        if number % 7 == 0
        else f"<Ustrd>Invoice {number:08d} order {rng.randrange(10**6):06d} thank you for your business</Ustrd>"
    )
    return (
        "<TxDtls><Refs>"
        f"<MsgId>MSG{number:012d}</MsgId><AcctSvcrRef>SVC{number:014d}</AcctSvcrRef>"
        f"<PmtInfId>PMT{number // 10:010d}</PmtInfId><InstrId>INS{number:012d}</InstrId>"
        f"<EndToEndId>E2E-{number:012d}-{rng.randrange(16**8):08x}</EndToEndId><TxId>TX{number:014d}</TxId>"
        "</Refs>"
        f'<Amt Ccy="EUR">{_money(cents)}</Amt><CdtDbtInd>{sign}</CdtDbtInd>'
        "<AmtDtls><InstdAmt>"
        f'<Amt Ccy="EUR">{_money(cents)}</Amt></InstdAmt><TxAmt><Amt Ccy="EUR">{_money(cents)}</Amt></TxAmt>'
        "</AmtDtls>"
        f"<RltdPties><{other}><Pty><Nm>{_NAMES[pick]}</Nm><PstlAdr><Ctry>NL</Ctry>"
        f"<AdrLine>Keizersgracht {number % 500}</AdrLine></PstlAdr></Pty></{other}>"
        f"<{other}Acct><Id><IBAN>{_IBANS[pick % len(_IBANS)]}</IBAN></Id></{other}Acct></RltdPties>"
        f"<RltdAgts><{other}Agt><FinInstnId><BICFI>{_BICS[pick % len(_BICS)]}</BICFI></FinInstnId>"
        f"</{other}Agt></RltdAgts>"
        f"<RmtInf>{remittance}</RmtInf></TxDtls>"
    )


def _entry(rng: random.Random, cents: int, number: int, day: date) -> str:
    sign = "CRDT" if cents >= 0 else "DBIT"
    domain, family, sub_family = _CODES[number % len(_CODES)]
    if number % 20 == 0:  # a batch booking: one movement, three transactions behind it
        parts = [cents // 3, cents // 3, cents - 2 * (cents // 3)]
        details = f'<Btch><NbOfTxs>3</NbOfTxs><TtlAmt Ccy="EUR">{_money(cents)}</TtlAmt></Btch>' + "".join(
            _transaction(rng, part, number * 10 + i) for i, part in enumerate(parts)
        )
    else:
        details = _transaction(rng, cents, number)
    return (
        f'<Ntry><NtryRef>{number:016d}</NtryRef><Amt Ccy="EUR">{_money(cents)}</Amt>'
        f"<CdtDbtInd>{sign}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
        f"<BookgDt><Dt>{day.isoformat()}</Dt></BookgDt><ValDt><Dt>{day.isoformat()}</Dt></ValDt>"
        f"<AcctSvcrRef>SVC{number:014d}</AcctSvcrRef>"
        f"<BkTxCd><Domn><Cd>{domain}</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn>"
        f"<Prtry><Cd>N{number % 900 + 100}</Cd><Issr>BANK</Issr></Prtry></BkTxCd>"
        f"<NtryDtls>{details}</NtryDtls>"
        f"<AddtlNtryInf>/TRTP/SEPA OVERBOEKING/REMI/Invoice {number:08d}</AddtlNtryInf></Ntry>\n"
    )


def write_statement_file(out: IO[str], size_bytes: int, statements: int) -> tuple[int, list[int]]:
    """Write the file; return the total entry count and each statement's net movement in cents."""
    rng = random.Random(SEED)
    probe = _entry(random.Random(0), 12345, 1, FIRST_DAY)
    per_statement = max(1, int(size_bytes / statements / (len(probe.encode()) * 1.1)))
    out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NAMESPACE}"><BkToCstmrStmt>\n')
    out.write("<GrpHdr><MsgId>BENCH-1</MsgId><CreDtTm>2026-11-24T06:00:00+01:00</CreDtTm></GrpHdr>\n")
    nets: list[int] = []
    number = 0
    for index in range(statements):
        amounts = _amounts(rng, per_statement)
        opening = rng.randint(-10_000_00, 1_000_000_00)
        day = FIRST_DAY + timedelta(days=index)
        out.write(
            f"<Stmt><Id>BENCH-{index}</Id><ElctrncSeqNb>{index + 1}</ElctrncSeqNb>"
            f"<CreDtTm>2026-11-24T06:00:00+01:00</CreDtTm>"
            f"<FrToDt><FrDtTm>{day}T00:00:00+01:00</FrDtTm><ToDtTm>{day}T23:59:59+01:00</ToDtTm></FrToDt>"
            f"<Acct><Id><IBAN>{_IBANS[index % len(_IBANS)]}</IBAN></Id><Ccy>EUR</Ccy>"
            "<Svcr><FinInstnId><BICFI>ABNANL2A</BICFI></FinInstnId></Svcr></Acct>\n"
        )
        out.write(_balance("OPBD", opening, day) + _balance("CLBD", opening + sum(amounts), day))
        for cents in amounts:
            number += 1
            out.write(_entry(rng, cents, number, day))
        out.write("</Stmt>\n")
        nets.append(sum(amounts))
    out.write("</BkToCstmrStmt></Document>\n")
    return number, nets


# --- what each child process runs -----------------------------------------------------------------


def _run_parser(path: Path) -> dict[str, Any]:
    from resources.statements.camt053 import Camt053Parser
    from resources.statements.model import StatementHeader

    entries = 0
    statements: list[dict[str, Any]] = []
    booked = Decimal(0)
    header: StatementHeader | None = None

    def close() -> None:
        if header is not None:
            opening, closing = header.balance("opening"), header.balance("closing")
            reconciled = (
                opening is not None and closing is not None and opening.amount + booked == closing.amount
            )
            statements.append({"net": str(booked), "reconciled": reconciled})

    for event in Camt053Parser().parse(path):
        if isinstance(event, StatementHeader):
            close()
            header, booked = event, Decimal(0)
        else:
            entries += 1
            booked += event.amount
    close()
    return {"entries": entries, "statements": statements}


def _run_floor(path: Path) -> dict[str, Any]:
    from lxml import etree

    entries = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag="{*}Ntry", resolve_entities=False):
        entries += 1
        element.clear(keep_tail=True)
        parent = element.getparent()
        while element.getprevious() is not None and parent is not None:
            del parent[0]
    return {"entries": entries}


def _run_tree(path: Path) -> dict[str, Any]:
    from lxml import etree

    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, huge_tree=True))
    return {"entries": sum(1 for _ in tree.getroot().iter("{*}Ntry"))}


_MODES = {"parser": _run_parser, "floor": _run_floor, "tree": _run_tree}


def _child(mode: str, path: Path) -> None:
    started = time.perf_counter()
    result = _MODES[mode](path)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(result))


def _measure(mode: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.parse", "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Generate the file, time the three readers, print the table (or JSON)."""
    arguments = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments.add_argument("--size-mb", type=float, default=200)
    arguments.add_argument("--statements", type=int, default=4)
    arguments.add_argument(
        "--skip-tree", action="store_true", help="skip the whole-tree lxml.etree.parse reference"
    )
    arguments.add_argument("--json", action="store_true")
    arguments.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    options = arguments.parse_args(argv)
    if options.child:
        _child(options.child[0], Path(options.child[1]))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-parse-") as folder:
        path = Path(folder) / "camt053_bench.xml"
        with open(path, "w", encoding="utf-8") as out:
            expected_entries, nets = write_statement_file(
                out, int(options.size_mb * 1024 * 1024), options.statements
            )
        size_mb = path.stat().st_size / 1024 / 1024
        modes = ["parser", "floor"] + ([] if options.skip_tree else ["tree"])
        results = {mode: _measure(mode, path) for mode in modes}

    parser = results["parser"]
    problems = []
    if any(result["entries"] != expected_entries for result in results.values()):
        problems.append(f"entry counts {[r['entries'] for r in results.values()]} != {expected_entries}")
    if [Decimal(s["net"]) * 100 for s in parser["statements"]] != nets or not all(
        s["reconciled"] for s in parser["statements"]
    ):
        problems.append("the parser's statement totals or balance checks disagree with the generated file")
    summary = {
        "file_mb": round(size_mb, 1),
        "statements": len(nets),
        "entries": expected_entries,
        **{
            mode: {
                "seconds": round(result["seconds"], 2),
                "entries_per_second": round(result["entries"] / result["seconds"]),
                "peak_rss_mb": round(result["peak_rss_mb"], 1),
            }
            for mode, result in results.items()
        },
        "parser_vs_floor_time": round(parser["seconds"] / results["floor"]["seconds"], 2),
        "parser_rss_target_mb": TARGET_RSS_MB,
        "parser_rss_within_target": parser["peak_rss_mb"] < TARGET_RSS_MB,
        "problems": problems,
    }
    if "tree" in results:
        summary["parser_vs_tree_time"] = round(parser["seconds"] / results["tree"]["seconds"], 2)
        summary["tree_vs_parser_rss"] = round(results["tree"]["peak_rss_mb"] / parser["peak_rss_mb"], 1)
    if options.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"file {summary['file_mb']} MB, {len(nets)} statements, {expected_entries:,} entries")
        for mode in modes:
            row = summary[mode]
            print(
                f"  {mode:<6} {row['seconds']:>8.2f} s  {row['entries_per_second']:>9,} entries/s  "
                f"peak RSS {row['peak_rss_mb']:>8.1f} MB"
            )
        print(f"  parser/floor time ratio {summary['parser_vs_floor_time']}x", end="")
        if "tree" in results:
            print(
                f"; parser/tree time {summary['parser_vs_tree_time']}x; tree/parser RSS {summary['tree_vs_parser_rss']}x",
                end="",
            )
        verdict = "within" if summary["parser_rss_within_target"] else "OVER"
        print(f"\n  parser peak RSS {parser['peak_rss_mb']:.1f} MB: {verdict} the {TARGET_RSS_MB} MB target")
        for problem in problems:
            print(f"  PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
