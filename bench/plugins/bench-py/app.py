"""bench-py: the bench's Python port of the two Rust mappings (plugins/mes-shift-report and
plugins/x12-856), for the records the bench sends: a SHIFTRPT v02 report with PRD and MAT
records, and an X12 856 with shipment, order and item levels. One plugin serves both bench
routes by subject. The bench checks that its events equal the Rust plugins' before it measures.
"""

from millrace_kit import MapError, config, events, text

SHIFT_UNITS = {"EA": "EA", "PC": "PCE", "ST": "PCE", "G": "GRM", "KG": "KGM", "T": "TNE",
               "MM": "MMT", "CM": "CMT", "M": "MTR", "M2": "MTK", "M3": "MTQ", "ML": "MLT",
               "L": "LTR"}
X12_UNITS = {"EA": "EA", "PC": "PCE", "PCS": "PCE", "LB": "LBR", "KG": "KGM", "GR": "GRM",
             "CS": "XCS", "CA": "XCS", "BX": "XBX"}


def map(message):
    source = text.latin1(message.payload)
    if message.subject.endswith(".856"):
        return ship_notices(source)
    return shift_report(source)


def _normalise(integer, fraction):
    whole = integer.lstrip("0") or "0"
    frac = fraction.rstrip("0")
    return f"{whole}.{frac}" if frac else whole


def _rfc3339(day, at, offset):
    if len(day) != 8 or not day.isdigit():
        raise MapError.malformed(f"'{day}' is not a YYYYMMDD date")
    if len(at) not in (4, 6) or not at.isdigit():
        raise MapError.malformed(f"'{at}' is not an HHMM[SS] time")
    seconds = at[4:6] or "00"
    zone = "Z" if offset == "+00:00" else offset
    return f"{day[0:4]}-{day[4:6]}-{day[6:8]}T{at[0:2]}:{at[2:4]}:{seconds}{zone}"


def _quantity(value, field):
    if len(value) != 9 or not value.isdigit():
        raise MapError.malformed(f"field {field}: '{value}' is not a 9-digit quantity")
    return _normalise(value[:6], value[6:])


def shift_report(source):
    lines = [line[:-1] if line.endswith("\r") else line for line in source.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    header = lines[0].split("|")
    if header[:3] != ["HDR", "SHIFTRPT", "02"]:
        raise MapError.unsupported("not a SHIFTRPT v02 report")
    plant, offset = header[3], header[7]
    site = config.get(f"site.{plant}") or config.get("site") or plant
    result = []
    for n, line in enumerate(lines[1:], start=2):
        f = line.split("|")

        def opt(i, f=f):
            return f[i] or None

        def unit(i, f=f, n=n):
            code = SHIFT_UNITS.get(f[i].upper())
            if code is None:
                raise MapError.malformed(f"line {n}: unknown unit code '{f[i]}'")
            return code

        if f[0] == "PRD":
            if len(f) != 13:
                raise MapError.malformed(f"line {n}: PRD has {len(f)} fields, expected 13")
            uom = unit(9)
            result.append(events.event(
                "production-completion", site=site, occurred_at=_rfc3339(f[10], f[11], offset),
                source_sequence=int(f[1]), source_transaction=f[2],
                data={"work_order": f[3], "operation": opt(4), "item": f[5], "lot": opt(6),
                      "good_quantity": {"amount": _quantity(f[7], "good-qty"), "uom": uom},
                      "scrap_quantity": {"amount": _quantity(f[8], "scrap-qty"), "uom": uom},
                      "location": opt(12)}))
        elif f[0] == "MAT":
            if len(f) != 12:
                raise MapError.malformed(f"line {n}: MAT has {len(f)} fields, expected 12")
            result.append(events.event(
                "material-consumption", site=site, occurred_at=_rfc3339(f[9], f[10], offset),
                source_sequence=int(f[1]), source_transaction=f[2],
                data={"work_order": f[3], "operation": opt(4), "item": f[5], "lot": opt(6),
                      "quantity": {"amount": _quantity(f[7], "qty"), "uom": unit(8)},
                      "location": opt(11)}))
        elif f[0] == "TRL":
            if int(f[1]) != len(result):
                raise MapError.malformed(
                    f"line {n}: the trailer counts {int(f[1])} detail records, the report has {len(result)}")
            return result
        else:
            raise MapError.malformed(f"line {n}: record type '{f[0]}' is not in the bench port")
    raise MapError.malformed("the report ends without a TRL trailer record")


def ship_notices(source):
    site = config.require("site")
    offset = config.get("utc-offset") or "+00:00"
    if not source.startswith("ISA") or len(source) < 106:
        raise MapError.malformed("not an X12 interchange")
    element, terminator = source[3], source[105]
    segments = [s.lstrip().split(element) for s in source.split(terminator) if s.strip()]
    sender = segments[0][6].strip()
    # The Rust plugin's identity: ISA05/ISA06:ISA13, then GS06:ST02 of each set.
    interchange = f"{segments[0][5].strip()}/{sender}:{segments[0][13]}"
    group = ""
    result = []
    current = None
    for segment in segments[1:]:
        tag = segment[0]
        if tag == "GS":
            group = segment[6]
        elif tag == "ST":
            current = {"control": f"{group}:{segment[2]}", "header": [], "levels": []}
        elif tag == "SE":
            result.append(_notice(current, site, offset, sender, interchange))
            current = None
        elif current is not None and tag == "HL":
            current["levels"].append({"id": segment[1], "parent": segment[2] if len(segment) > 2 else "",
                                      "code": segment[3], "segments": []})
        elif current is not None:
            target = current["levels"][-1]["segments"] if current["levels"] else current["header"]
            target.append(segment)
    if not result:
        raise MapError.malformed("the interchange holds no transaction set")
    return result


def _e(segment, i):
    return segment[i].strip() if i < len(segment) else ""


def _notice(current, site, offset, sender, interchange):
    bsn = next((s for s in current["header"] if s[0] == "BSN"), None)
    if bsn is None:
        raise MapError.malformed("there is no BSN segment")
    levels = current["levels"]
    shipment = next((lv for lv in levels if lv["code"] == "S"), None)
    every = current["header"] + (shipment["segments"] if shipment else [])

    def dtm(qualifier):
        return next((s for s in every if s[0] == "DTM" and _e(s, 1) == qualifier), None)

    ship = dtm("011")
    if ship is not None:
        ship_date = _rfc3339(_e(ship, 2), _e(ship, 3) or "000000", offset)
    else:
        ship_date = _rfc3339(_e(bsn, 3), _e(bsn, 4), offset)
    delivery = dtm("017")
    supplier = None
    for code in ("SF", "SU"):
        n1 = next((s for s in every if s[0] == "N1" and _e(s, 1) == code), None)
        if n1 is not None:
            supplier = _e(n1, 4) or _e(n1, 2)
            break
    lines = []
    for item in (lv for lv in levels if lv["code"] == "I"):
        lin = next((s for s in item["segments"] if s[0] == "LIN"), None)
        if lin is None:
            raise MapError.malformed(f"HL {item['id']} (item level): there is no LIN segment")
        pairs = [(_e(lin, i), _e(lin, i + 1)) for i in range(2, len(lin) - 1, 2)
                 if _e(lin, i) and _e(lin, i + 1)]

        def pick(qualifier, pairs=pairs):
            return next((v for k, v in pairs if k == qualifier), None)

        def refs(level, qualifier):
            return [_e(s, 2) for s in level["segments"]
                    if s[0] == "REF" and _e(s, 1) == qualifier and _e(s, 2)]

        ancestors = []
        parent = item["parent"]
        while parent:
            found = next((lv for lv in levels if lv["id"] == parent), None)
            if found is None:
                break
            ancestors.append(found)
            parent = found["parent"]
        prf = next((s for lv in ancestors for s in lv["segments"] if s[0] == "PRF" and _e(s, 1)), None)
        sn1 = next((s for s in item["segments"] if s[0] == "SN1"), None)
        if sn1 is None:
            raise MapError.malformed(f"HL {item['id']}: there is no SN1 quantity")
        amount = _e(sn1, 2)
        integer, _, fraction = amount.partition(".")
        if not integer.isdigit() or (fraction and not fraction.isdigit()) or float(amount) <= 0:
            raise MapError.malformed(f"SN102 quantity '{amount}' is not positive")
        uom = X12_UNITS.get(_e(sn1, 3))
        if uom is None:
            raise MapError.malformed(f"SN103 unit '{_e(sn1, 3)}' is not a known X12 unit of measure")
        lt = refs(item, "LT")
        po = refs(item, "PO")
        lines.append({
            "item": pick("BP") or pick("VP") or (pairs[0][1] if pairs else None),
            "quantity": {"amount": _normalise(integer, fraction), "uom": uom},
            "lot": pick("LT") or (lt[0] if lt else None),
            "serials": [v for k, v in pairs if k == "SN"] + refs(item, "SE") + refs(item, "LS"),
            "purchase_order": pick("PO") or pick("ON") or (po[0] if po else None)
            or (_e(prf, 1) if prf else None),
        })
    if not lines:
        raise MapError.malformed("the ship notice has no item (HL level I) with a quantity")
    expected = _rfc3339(_e(delivery, 2), _e(delivery, 3) or "000000", offset) if delivery else None
    return events.event(
        "shipment-notice", site=site, occurred_at=ship_date,
        source_transaction=f"{interchange}:{current['control']}",
        data={"shipment_id": _e(bsn, 2), "supplier": supplier or sender, "ship_date": ship_date,
              "expected_delivery": expected, "lines": lines})
