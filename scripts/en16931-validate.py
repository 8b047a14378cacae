#!/usr/bin/env python3
"""Runs invoices through the official CEN EN 16931 business rules.

    scripts/en16931-validate.py [--warnings] invoice.xml credit-note.xml …   (or paths on stdin)

Each file is told apart by its root element: a CII invoice (the XML inside
Factur-X) is checked by EN16931-CII-validation.xslt, a UBL 2.1 Invoice or
CreditNote by EN16931-UBL-validation.xslt (schemas/en16931-1.3.16, the
CEN/TC 434 release, EUPL 1.2), run by Saxon-HE (saxonche). A UBL document is
first validated against the OASIS UBL 2.1 XSD, which the business rules take
for granted: UBL is sequence-ordered, and an element out of place is
invisible to them. Each stylesheet is compiled once (a few seconds each),
then serves every file given.

Prints, per file, every failed assert flagged fatal (rule id and text) and
every schema error; exits 1 if there is any, 2 if a file cannot be read.
With --warnings, the asserts flagged warning are printed too (they do not
fail). scripts/ensure-facturx installs what it needs.

Peppol BIS Billing 3.0 adds its own rules (PEPPOL-EN16931-R*, e.g. one note,
endpoint IDs from the EAS list) in OpenPeppol's PEPPOL-EN16931-UBL Schematron,
which no package registry distributes: `eu-einvoice` (PyPI) downloads it from
GitHub at run time, which offline tests cannot, and `peppol-ubl-validate`
(PyPI) checks an independent re-implementation of a subset of the rules, not
OpenPeppol's. So only the CEN rules run here; the Peppol ones that concern
what Nuage writes are followed in crates/facturx/src/ubl.rs. From
peppol-ubl-validate, only its copy of the OASIS UBL 2.1 XSD is used.
"""

import os
import re
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "..", "schemas", "en16931-1.3.16")
SVRL = "{http://purl.oclc.org/dsdl/svrl}"
CII = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice"
UBL = {
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice": "UBL-Invoice-2.1.xsd",
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote": "UBL-CreditNote-2.1.xsd",
}


class Validator:
    """The compiled stylesheets and schemas, each made on first use."""

    def __init__(self, warnings=False):
        self.warnings = warnings
        self.saxon = None
        self.stylesheets = {}
        self.schemas = {}

    def stylesheet(self, name):
        if name not in self.stylesheets:
            if self.saxon is None:
                from saxonche import PySaxonProcessor

                self.saxon = PySaxonProcessor(license=False)
            self.stylesheets[name] = self.saxon.new_xslt30_processor().compile_stylesheet(
                stylesheet_file=os.path.join(RULES, name)
            )
        return self.stylesheets[name]

    def schema(self, name):
        if name not in self.schemas:
            import peppol.xsd
            from lxml import etree

            path = os.path.join(peppol.xsd.SCHEMA_DIR, "maindoc", name)
            self.schemas[name] = etree.XMLSchema(etree.parse(path))
        return self.schemas[name]

    def failures(self, path):
        """What is wrong with the document at `path`: one line per failure."""
        root = ET.parse(path).getroot().tag
        out = []
        if root == CII:
            stylesheet = "EN16931-CII-validation.xslt"
        elif root in UBL:
            from lxml import etree

            schema = self.schema(UBL[root])
            if not schema.validate(etree.parse(path)):
                out += [f"UBL 2.1 XSD, line {e.line}: {e.message}" for e in schema.error_log]
            stylesheet = "EN16931-UBL-validation.xslt"
        else:
            return [f"neither a CII invoice nor a UBL invoice or credit note: {root}"]
        svrl = self.stylesheet(stylesheet).transform_to_string(source_file=path)
        if not svrl:
            return out + [f"{stylesheet} produced no report"]
        for failed in ET.fromstring(svrl).iter(f"{SVRL}failed-assert"):
            flag = failed.get("flag")
            text = " ".join("".join(failed.find(f"{SVRL}text").itertext()).split())
            at = re.sub(r"\[namespace-uri\(\)='[^']*'\]", "", failed.get("location") or "")
            if flag == "fatal":
                out.append(f"{failed.get('id')}: {text} (at {at})")
            elif self.warnings:
                print(f"{path}: warning {failed.get('id')}: {text} (at {at})")
        return out


def main(args):
    warnings = "--warnings" in args
    paths = [a for a in args if a != "--warnings"]
    if not paths:
        paths = [line.strip() for line in sys.stdin if line.strip()]
    if not paths:
        print("usage: en16931-validate.py [--warnings] FILE… (or paths on stdin)", file=sys.stderr)
        return 2
    validator = Validator(warnings)
    broken = 0
    for path in paths:
        path = os.path.abspath(path)
        try:
            failures = validator.failures(path)
        except (OSError, ET.ParseError) as e:
            print(f"{path}: cannot be read: {e}")
            return 2
        for failure in failures:
            print(f"{path}: {failure}")
        broken += bool(failures)
    print(f"{len(paths) - broken} valid, {broken} broken", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
