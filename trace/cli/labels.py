"""``medtrace labels``: commission serials and print their label sheets.

``units`` draws N serials for a lot from a CSPRNG, commissions them through the capture API
(signed by the manufacturer's station, sent in batches no larger than the server takes), and
only then prints them: GS1 DataMatrix plus a QR of the GS1 Digital Link URI on this service.
``sscc`` prints GS1-128 labels for cases and pallets; ``cn`` prints China's drug traceability
codes as Code 128. Label data is validated before anything is sent or printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medtrace.cli.labels_run import RunPlan
from medtrace.config import get_settings
from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import (
    ChinaDrugCode,
    GS1Data,
    check_x20,
    parse_cn_drug_code,
    parse_gln,
    parse_gtin,
    random_serial,
)
from medtrace.scanners.errors import StationError
from medtrace.terminal import console, progress_bar

if TYPE_CHECKING:
    from medtrace.labels import Label

labels_app = typer.Typer(
    help="Commission serials and print label sheets (PDF, PNG).", no_args_is_help=True
)


class Page(StrEnum):
    """Page formats: an A4 sheet of 3 x 8 labels, or one 4 x 6 inch label per page."""

    A4 = "a4"
    LABEL_4X6 = "4x6"


PdfOption = Annotated[Path | None, typer.Option(help="PDF file to write.")]
PngOption = Annotated[Path | None, typer.Option(help="Folder for PNG pages (one per page).")]
PageOption = Annotated[Page, typer.Option(help="Page format.")]
DpiOption = Annotated[int, typer.Option(min=72, max=1200, help="Resolution of the PNG pages.")]


def _unique_serials(count: int) -> list[str]:
    """``count`` distinct CSPRNG serials (a collision of 60-bit serials is redrawn)."""
    serials: dict[str, None] = {}
    while len(serials) < count:
        serials[random_serial()] = None
    return list(serials)


def _print_sheet(
    labels: Iterable[Label], total: int, *, pdf: Path | None, png: Path | None, page: Page, dpi: int
) -> None:
    """Stream labels into the sheet page by page, with a progress bar."""
    from medtrace.labels import PAGE_FORMATS, LabelSheet

    with (
        LabelSheet(PAGE_FORMATS[page.value], pdf=pdf, png_dir=png, dpi=dpi) as sheet,
        progress_bar() as progress,
    ):
        task = progress.add_task("printing", total=total)
        for label in labels:
            sheet.add(label)
            progress.advance(task)
    written = [str(p) for p in (pdf, png) if p is not None]
    console.print(f"[green]printed[/] {sheet.count} labels to {', '.join(written)}")


def _need_output(pdf: Path | None, png: Path | None) -> None:
    """Refuse before any work when there is nowhere to print."""
    if pdf is None and png is None:
        raise InvalidInput("give --pdf, --png or both", rule="labels.no_output")
    if pdf is not None and not pdf.parent.is_dir():
        raise InvalidInput(f"folder {pdf.parent} does not exist", rule="labels.no_output")


@labels_app.command("units")
def units(
    gtin: Annotated[str, typer.Option(help="GTIN of the product (8 to 14 digits).")],
    lot: Annotated[str, typer.Option(help="Lot (AI 10): up to 20 characters of GS1 set 82.")],
    expiry: Annotated[str, typer.Option(help="Expiry date, YYYY-MM-DD.")],
    station_id: Annotated[str, typer.Option(help="The manufacturer's registered station.")],
    key_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="That station's key file.")
    ],
    gln: Annotated[str, typer.Option(help="The manufacturer's GLN, where the station signs.")],
    token: Annotated[
        str, typer.Option(envvar="MEDTRACE_TOKEN", help="The manufacturer's API token.")
    ],
    count: Annotated[
        int | None, typer.Option(min=1, max=1_000_000, help="How many serials to draw.")
    ] = None,
    cn_codes: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Instead of --count: a file of China drug traceability codes issued for this "
            "lot, one per line, commissioned as serials of GTIN and printed as Code 128.",
        ),
    ] = None,
    pdf: PdfOption = None,
    png: PngOption = None,
    page: PageOption = Page.A4,
    dpi: DpiOption = 300,
    url: Annotated[
        str | None, typer.Option(help="Service URL (default MEDTRACE_PUBLIC_URL).")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, help="Envelopes per request (default MEDTRACE_MAX_CAPTURE_BATCH)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="The run's plan file: written before anything is sent; rerun with the same "
            "file and options to finish a refused or interrupted run (nothing twice).",
        ),
    ] = None,
) -> None:
    """Commission COUNT new serials of a lot in one signed batch, then print their labels.

    Labels carry a GS1 DataMatrix and a QR of the GS1 Digital Link URI on MEDTRACE_PUBLIC_URL.
    With --cn-codes, the packs are keyed by the China codes in the file (each code's drug code
    must be mapped to GTIN: medtrace cn map) and labels are their Code 128. Nothing is printed
    unless every serial was commissioned.
    """

    _commission_and_print(
        gtin, lot, expiry, count, cn_codes, station_id, key_file, gln, token,
        pdf=pdf, png=png, page=page, dpi=dpi, url=url, batch_size=batch_size, resume=resume,
    )  # fmt: skip


def _parse_expiry_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(
            f"expiry {value!r} is not a YYYY-MM-DD date", rule="gs1.bad_date"
        ) from exc


def _read_cn_codes(path: Path) -> list[str]:
    """The China codes of a file, one per line (blank lines skipped), each checked, none twice."""
    codes: dict[str, None] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            code = parse_cn_drug_code(line.strip()).code
        except InvalidInput as exc:
            raise InvalidInput(f"{path}, line {number}: {exc.message}", rule=exc.rule) from exc
        if code in codes:
            raise InvalidInput(
                f"{path}, line {number}: code {code} appears twice", rule="labels.duplicate_code"
            )
        codes[code] = None
    if not codes:
        raise InvalidInput(f"{path} holds no code", rule="labels.no_codes")
    return list(codes)


def _plan(asked: RunPlan, count: int | None, cn_codes: Path | None, resume: Path | None) -> RunPlan:
    """The run to make: the plan in ``resume`` if it exists (it must be this run's), else a new
    one, saved to ``resume`` before anything is sent. Its serials are COUNT drawn from a
    CSPRNG, or the China codes of a file (issued with their check digits by the agency, so
    medtrace cannot draw them)."""
    if (count is None) == (cn_codes is None):
        raise InvalidInput("give either --count or --cn-codes", rule="labels.count_or_codes")
    codes = tuple(_read_cn_codes(cn_codes)) if cn_codes is not None else ()
    if resume is not None and resume.exists():
        plan = RunPlan.load(resume)
        plan.check_same_run(replace(asked, serials=codes), count=count, path=resume)
        return plan
    if not codes:
        assert count is not None
        codes = tuple(_unique_serials(count))
    plan = replace(asked, serials=codes)
    if resume is not None:
        if not resume.parent.is_dir():
            raise InvalidInput(f"folder {resume.parent} does not exist", rule="labels.no_output")
        plan.save(resume)
    return plan


def _commission_and_print(
    gtin: str,
    lot: str,
    expiry_text: str,
    count_asked: int | None,
    cn_codes: Path | None,
    station_id: str,
    key_file: Path,
    gln: str,
    token: str,
    *,
    pdf: Path | None,
    png: Path | None,
    page: Page,
    dpi: int,
    url: str | None,
    batch_size: int | None,
    resume: Path | None,
) -> None:
    from medtrace.labels import cn_label, gs1_datamatrix, unit_label
    from medtrace.scanners.client import CaptureClient
    from medtrace.scanners.station import Station

    settings = get_settings()
    # 1. Validate everything before anything is sent or printed.
    _need_output(pdf, png)
    gtin14, lot = parse_gtin(gtin), check_x20(lot, field="lot")
    expiry = _parse_expiry_date(expiry_text)
    try:
        station = Station.from_key_file(station_id, parse_gln(gln), key_file)
    except ValueError as exc:  # not a PEM Ed25519 private key
        raise InvalidInput(f"{key_file}: {exc}", rule="key.malformed") from exc
    plan = _plan(
        RunPlan(
            gtin=gtin14,
            lot=lot,
            expiry=expiry,
            station_id=station_id,
            gln=station.gln,
            event_time=dt.datetime.now(dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            cn=cn_codes is not None,
            serials=(),
        ),
        count_asked,
        cn_codes,
        resume,
    )
    serials, event_time = plan.serials, plan.event_time
    count = len(serials)
    gs1_datamatrix(GS1Data(gtin=gtin14, serial=serials[0], lot=lot, expiry=expiry))
    # 2. One signed batch (one event time), posted in requests the server accepts.
    size = batch_size or settings.capture.max_capture_batch
    done = earlier = 0
    with CaptureClient(url or settings.public_url, token) as client, progress_bar() as progress:
        task = progress.add_task("commissioning", total=count)
        for start in range(0, count, size):
            chunk = serials[start : start + size]
            envelopes = [
                station.commission(gtin14, s, lot=lot, expiry=expiry, event_time=event_time)
                for s in chunk
            ]
            try:
                receipts = client.capture(envelopes)
            except StationError:
                if done:
                    how = (
                        f"rerun with --resume {resume} to finish"
                        if resume
                        else "without --resume they cannot be printed"
                    )
                    console.print(
                        f"[yellow]{done} of {count} serials were commissioned before the refusal;"
                        f" none is printed; {how}[/]"
                    )
                raise
            done += len(chunk)
            earlier += sum(1 for r in receipts if r["duplicate"])
            progress.advance(task, len(chunk))
    resumed = f" ({earlier} of them by an earlier run)" if earlier else ""
    console.print(f"[green]commissioned[/] {count} units of GTIN {gtin14} lot {lot}{resumed}")
    # 3. Print, one page at a time.
    labels = (
        cn_label(ChinaDrugCode(s))
        if cn_codes is not None
        else unit_label(
            GS1Data(gtin=gtin14, serial=s, lot=lot, expiry=expiry), base_url=settings.public_url
        )
        for s in serials
    )
    _print_sheet(labels, count, pdf=pdf, png=png, page=page, dpi=dpi)


def _ssccs(extension: int, company_prefix: str, first: int, count: int) -> Iterator[str]:
    """SSCCs (GenSpecs §2.2.1): extension digit, company prefix, serial reference, check."""
    from biip.checksums import gs1_standard_check_digit

    width = 16 - len(company_prefix)
    if not (
        company_prefix.isascii() and company_prefix.isdigit() and 6 <= len(company_prefix) <= 12
    ):
        raise InvalidInput(
            f"company prefix {company_prefix!r} must be 6 to 12 digits", rule="gs1.company_prefix"
        )
    if first < 0 or first + count > 10**width:
        raise InvalidInput(
            f"serial references {first}..{first + count - 1} do not fit in {width} digits",
            rule="gs1.sscc_range",
        )
    for reference in range(first, first + count):
        payload = f"{extension}{company_prefix}{reference:0{width}d}"
        yield payload + str(gs1_standard_check_digit(payload))


@labels_app.command("sscc")
def sscc(
    company_prefix: Annotated[str, typer.Option(help="Your GS1 company prefix.")],
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="How many labels.")],
    first: Annotated[int, typer.Option(min=0, help="First serial reference.")] = 1,
    extension: Annotated[int, typer.Option(min=0, max=9, help="Extension digit.")] = 0,
    pdf: PdfOption = None,
    png: PngOption = None,
    page: PageOption = Page.A4,
    dpi: DpiOption = 300,
) -> None:
    """Print GS1-128 labels of SSCCs (AI 00) for cases and pallets."""
    from medtrace.labels import sscc_label

    _need_output(pdf, png)
    codes = list(_ssccs(extension, company_prefix, first, count))
    _print_sheet((sscc_label(c) for c in codes), count, pdf=pdf, png=png, page=page, dpi=dpi)


@labels_app.command("cn")
def cn(
    codes: Annotated[list[str], typer.Argument(help="20-digit drug traceability codes.")],
    pdf: PdfOption = None,
    png: PngOption = None,
    page: PageOption = Page.A4,
    dpi: DpiOption = 300,
) -> None:
    """Print China's drug traceability codes (药品追溯码) as Code 128 labels.

    The codes are issued with their check digits by the issuing agency; medtrace checks their
    form (20 digits) but cannot verify those check digits.
    """
    from medtrace.labels import cn_label

    _need_output(pdf, png)
    parsed: list[ChinaDrugCode] = [parse_cn_drug_code(c) for c in codes]
    _print_sheet((cn_label(c) for c in parsed), len(parsed), pdf=pdf, png=png, page=page, dpi=dpi)
