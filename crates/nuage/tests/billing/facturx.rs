//! Checking an invoice as its receiver would. A Factur-X: the XML is taken
//! back out of the PDF and validated against the Factur-X XSD (EN 16931
//! level) by the `factur-x` Python package, read back, run through the
//! EN 16931 business rules (the `en16931` crate), its totals recomputed
//! exactly, and compared with the invoice the API states. A UBL invoice
//! (Peppol BIS Billing 3.0): read back and compared the same way. Both then
//! go through the official CEN EN 16931 rules (schemas/en16931-1.3.16), and
//! the UBL through the OASIS UBL 2.1 XSD, by scripts/en16931-validate.py,
//! once for all the documents of a test (`CenRules`). scripts/ensure-facturx
//! installs the Python packages (nextest runs it first).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::str::FromStr;

use en16931::invoice::{
    Code, DocumentTotals, Party, Period, PostalAddress, PrecedingInvoice, PriceDetails,
    VatBreakdown,
};
use en16931::{
    Date, DocumentReference, Identifier, Invoice, InvoiceAmount, InvoiceLine, Percentage, Quantity,
    UnitPriceAmount, validate,
};
use rust_decimal::Decimal;
use serde_json::Value;

const EXTRACT: &str = r#"
import sys
from facturx import get_facturx_xml_from_pdf, get_flavor, get_level, xml_check_xsd
from lxml import etree
pdf = sys.stdin.buffer.read()
name, xml = get_facturx_xml_from_pdf(pdf, check_xsd=True)
assert name == "factur-x.xml", name
tree = etree.fromstring(xml)
assert get_flavor(tree) == "factur-x"
assert get_level(tree) == "en16931", get_level(tree)
xml_check_xsd(xml, flavor="factur-x", level="en16931")
sys.stdout.buffer.write(xml)
"#;

/// The XML of a Factur-X PDF, checked against the XSD by `factur-x`.
pub fn extract(pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-1.7"), "a PDF 1.7");
    let mut child = Command::new("python3")
        .args(["-c", EXTRACT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pdf)
        .expect("pdf sent");
    let out = child.wait_with_output().expect("python3 ran");
    assert!(
        out.status.success(),
        "factur-x refused the PDF (pip install factur-x==7.8 if it is missing): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 XML")
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(move |c| c.tag_name().name() == name)
}

/// The text at a path of element names under `node`.
fn text(node: roxmltree::Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut at = node;
    for name in path {
        at = children(at, name).next()?;
    }
    at.text().map(str::to_owned)
}

fn date(node: roxmltree::Node<'_, '_>, path: &[&str]) -> Option<Date> {
    let s = text(node, path)?;
    Date::parse(&format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..8])).ok()
}

fn decimal(value: Option<String>) -> Decimal {
    Decimal::from_str(&value.expect("a number")).expect("a decimal")
}

fn amount(value: Option<String>) -> InvoiceAmount {
    InvoiceAmount::parse(&value.expect("an amount")).expect("two decimals at most")
}

fn party(node: roxmltree::Node<'_, '_>) -> Party {
    let mut party = Party::new(
        text(node, &["Name"]).unwrap_or_default(),
        PostalAddress {
            country: text(node, &["PostalTradeAddress", "CountryID"]).map(Code::new),
            ..PostalAddress::default()
        },
    );
    party.identifiers = text(node, &["ID"])
        .map(Identifier::new)
        .into_iter()
        .collect();
    party.vat_identifier = text(node, &["SpecifiedTaxRegistration", "ID"]);
    party.legal_registration =
        text(node, &["SpecifiedLegalOrganization", "ID"]).map(|id| Identifier::schemed(id, "0002"));
    party
}

/// The documents of one test, checked as they come, then run through the
/// official CEN EN 16931 rules together by `assert_valid`: the rules are
/// XSLT stylesheets that take a while to compile, so once per test, not
/// once per invoice. Dropping it with documents not yet run is a bug of the
/// test, and fails it.
pub struct CenRules {
    dir: tempfile::TempDir,
    pending: Vec<PathBuf>,
}

impl CenRules {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            pending: Vec::new(),
        }
    }

    fn queue(&mut self, invoice: &Value, syntax: &str, xml: &str) {
        let path = self.dir.path().join(format!(
            "{:02}-{}.{syntax}.xml",
            self.pending.len() + 1,
            invoice["number"].as_str().expect("number")
        ));
        std::fs::write(&path, xml).expect("XML written");
        self.pending.push(path);
    }

    /// Checks a Factur-X PDF against the invoice the API states, and queues
    /// its XML for the CEN rules; returns the XML.
    pub fn check(&mut self, pdf: &[u8], invoice: &Value) -> String {
        let xml = check_cii(pdf, invoice);
        self.queue(invoice, "cii", &xml);
        xml
    }

    /// Checks a UBL invoice or credit note against the invoice the API
    /// states, and queues it for the XSD and the CEN rules.
    pub fn check_ubl(&mut self, xml: &str, invoice: &Value) {
        check_ubl_values(xml, invoice);
        self.queue(invoice, "ubl", xml);
    }

    /// Runs every queued document through the CEN rules: not one fatal
    /// assert may fail.
    pub fn assert_valid(mut self) {
        let documents = std::mem::take(&mut self.pending);
        assert!(!documents.is_empty(), "nothing to validate");
        let out = Command::new("python3")
            .arg(format!(
                "{}/../../scripts/en16931-validate.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args(&documents)
            .output()
            .expect("python3");
        let report = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let broken: String = documents
                .iter()
                .filter(|d| report.contains(&*d.to_string_lossy()))
                .map(|d| {
                    let xml = std::fs::read_to_string(d).unwrap_or_default();
                    format!("\n{}:\n{xml}", d.display())
                })
                .collect();
            panic!(
                "the CEN EN 16931 rules are broken (scripts/ensure-facturx installs what \
                 the validator needs):\n{report}{}{broken}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for CenRules {
    fn drop(&mut self) {
        if !self.pending.is_empty() && !std::thread::panicking() {
            panic!("documents checked but never run through the CEN rules: call assert_valid");
        }
    }
}

/// Checks a Factur-X PDF against the invoice the API states and runs its
/// XML through the CEN rules; returns the XML. For a test of one invoice;
/// a test of several checks them with one `CenRules`.
pub fn check(pdf: &[u8], invoice: &Value) -> String {
    let mut rules = CenRules::new();
    let xml = rules.check(pdf, invoice);
    rules.assert_valid();
    xml
}

/// Checks a Factur-X PDF against the invoice the API states (the
/// `en16931` crate's rules); returns the XML.
fn check_cii(pdf: &[u8], invoice: &Value) -> String {
    let xml = extract(pdf);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "CrossIndustryInvoice");
    let exchanged = children(root, "ExchangedDocument")
        .next()
        .expect("document");
    let trade = children(root, "SupplyChainTradeTransaction")
        .next()
        .expect("transaction");
    let agreement = children(trade, "ApplicableHeaderTradeAgreement")
        .next()
        .expect("agreement");
    let settlement = children(trade, "ApplicableHeaderTradeSettlement")
        .next()
        .expect("settlement");
    let credit = invoice["kind"] == "credit_note";
    // A credit note's amounts are positive in CII: the type carries the sign.
    let sign = if credit {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    };
    let stated = |field: &str| decimal(invoice[field].as_str().map(str::to_owned)) * sign;

    assert_eq!(
        text(exchanged, &["ID"]).as_deref(),
        invoice["number"].as_str()
    );
    assert_eq!(
        text(exchanged, &["TypeCode"]).as_deref(),
        Some(if credit { "381" } else { "380" })
    );
    let tax = children(settlement, "ApplicableTradeTax")
        .next()
        .expect("VAT breakdown");
    let category = text(tax, &["CategoryCode"]).expect("category");
    let rate = text(tax, &["RateApplicablePercent"]).map(|r| Percentage::new(decimal(Some(r))));
    let mut builder = Invoice::builder(
        text(
            root,
            &[
                "ExchangedDocumentContext",
                "GuidelineSpecifiedDocumentContextParameter",
                "ID",
            ],
        )
        .unwrap_or_default(),
        text(exchanged, &["ID"]).unwrap_or_default(),
        date(exchanged, &["IssueDateTime", "DateTimeString"]).expect("issue date"),
        text(exchanged, &["TypeCode"]).unwrap_or_default(),
        text(settlement, &["InvoiceCurrencyCode"]).unwrap_or_default(),
    )
    .seller(party(
        children(agreement, "SellerTradeParty")
            .next()
            .expect("seller"),
    ))
    .buyer(party(
        children(agreement, "BuyerTradeParty")
            .next()
            .expect("buyer"),
    ))
    .invoicing_period(Period {
        start: date(
            settlement,
            &["BillingSpecifiedPeriod", "StartDateTime", "DateTimeString"],
        ),
        end: date(
            settlement,
            &["BillingSpecifiedPeriod", "EndDateTime", "DateTimeString"],
        ),
    });
    if credit {
        builder = builder.credit_note();
    }
    for note in children(exchanged, "IncludedNote") {
        builder = builder.note(text(note, &["Content"]).unwrap_or_default());
    }

    // The lines: each amount is quantity × price to the cent, and they add
    // up to the net total.
    let mut sum = Decimal::ZERO;
    let lines: Vec<_> = children(trade, "IncludedSupplyChainTradeLineItem").collect();
    assert_eq!(
        lines.len(),
        invoice["lines"].as_array().expect("lines").len()
    );
    for (line, stated_line) in lines
        .iter()
        .zip(invoice["lines"].as_array().expect("lines"))
    {
        let quantity = decimal(text(
            *line,
            &["SpecifiedLineTradeDelivery", "BilledQuantity"],
        ));
        let price = decimal(text(
            *line,
            &[
                "SpecifiedLineTradeAgreement",
                "NetPriceProductTradePrice",
                "ChargeAmount",
            ],
        ));
        let total = decimal(text(
            *line,
            &[
                "SpecifiedLineTradeSettlement",
                "SpecifiedTradeSettlementLineMonetarySummation",
                "LineTotalAmount",
            ],
        ));
        assert_eq!(
            total,
            (quantity * price)
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            "line {:?}",
            text(*line, &["SpecifiedTradeProduct", "Name"])
        );
        assert_eq!(
            total,
            decimal(stated_line["amount"].as_str().map(str::to_owned)) * sign
        );
        sum += total;
        let unit = children(
            children(*line, "SpecifiedLineTradeDelivery")
                .next()
                .expect("delivery"),
            "BilledQuantity",
        )
        .next()
        .and_then(|q| q.attribute("unitCode"))
        .unwrap_or_default()
        .to_owned();
        builder = builder.line(
            InvoiceLine::new(
                text(*line, &["AssociatedDocumentLineDocument", "LineID"]).unwrap_or_default(),
                text(*line, &["SpecifiedTradeProduct", "Name"]).unwrap_or_default(),
                Quantity::new(quantity),
                unit.as_str(),
                amount(text(
                    *line,
                    &[
                        "SpecifiedLineTradeSettlement",
                        "SpecifiedTradeSettlementLineMonetarySummation",
                        "LineTotalAmount",
                    ],
                )),
                text(
                    *line,
                    &[
                        "SpecifiedLineTradeSettlement",
                        "ApplicableTradeTax",
                        "CategoryCode",
                    ],
                )
                .unwrap_or_default()
                .as_str(),
                text(
                    *line,
                    &[
                        "SpecifiedLineTradeSettlement",
                        "ApplicableTradeTax",
                        "RateApplicablePercent",
                    ],
                )
                .map(|r| Percentage::new(decimal(Some(r)))),
            )
            .with_price(PriceDetails {
                net_price: UnitPriceAmount::new(price),
                ..PriceDetails::default()
            }),
        );
    }
    let totals = children(
        settlement,
        "SpecifiedTradeSettlementHeaderMonetarySummation",
    )
    .next()
    .expect("totals");
    let total = |name: &str| decimal(text(totals, &[name]));
    let (net, vat, gross) = (
        total("TaxBasisTotalAmount"),
        total("TaxTotalAmount"),
        total("GrandTotalAmount"),
    );
    assert_eq!(
        total("LineTotalAmount"),
        sum,
        "the lines add up to the net total"
    );
    assert_eq!(net, sum);
    // VAT recomputed exactly: the net times the rate, rounded once (the
    // rules themselves tolerate a euro).
    let expected_vat = match category.as_str() {
        "S" => (net * decimal(text(tax, &["RateApplicablePercent"])) / Decimal::from(100))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        _ => Decimal::ZERO,
    };
    assert_eq!(vat, expected_vat, "VAT of {category}");
    assert_eq!(decimal(text(tax, &["CalculatedAmount"])), vat);
    assert_eq!(decimal(text(tax, &["BasisAmount"])), net);
    assert_eq!(gross, net + vat);
    assert_eq!(total("DuePayableAmount"), gross);
    assert_eq!(
        (net, vat, gross),
        (stated("net"), stated("vat_amount"), stated("gross"))
    );

    builder = builder
        .vat_breakdown(VatBreakdown {
            taxable_amount: amount(text(tax, &["BasisAmount"])),
            tax_amount: amount(text(tax, &["CalculatedAmount"])),
            category: Code::new(category.as_str()),
            rate,
            exemption_reason: text(tax, &["ExemptionReason"]),
            exemption_reason_code: None,
        })
        .totals(DocumentTotals {
            line_total: amount(text(totals, &["LineTotalAmount"])),
            taxable_total: amount(text(totals, &["TaxBasisTotalAmount"])),
            vat_total: Some(amount(text(totals, &["TaxTotalAmount"]))),
            gross_total: amount(text(totals, &["GrandTotalAmount"])),
            due: amount(text(totals, &["DuePayableAmount"])),
            ..DocumentTotals::default()
        });
    let mut model = builder.build();
    model.due_date = date(
        settlement,
        &[
            "SpecifiedTradePaymentTerms",
            "DueDateDateTime",
            "DateTimeString",
        ],
    );
    if let Some(reference) = text(
        settlement,
        &["InvoiceReferencedDocument", "IssuerAssignedID"],
    ) {
        model.preceding_invoices.push(PrecedingInvoice {
            reference: DocumentReference::new(reference),
            issue_date: None,
        });
    }
    let report = validate(&model);
    let findings: Vec<String> = report
        .findings()
        .iter()
        .map(|f| format!("{}: {} [{}]", f.rule, f.message, f.path))
        .collect();
    assert!(
        findings.is_empty(),
        "EN 16931 rules broken: {findings:#?}\n{xml}"
    );
    xml
}

/// The decimal at a path under `node`.
fn number(node: roxmltree::Node<'_, '_>, path: &[&str]) -> Decimal {
    let value = text(node, path).unwrap_or_else(|| panic!("no {path:?}"));
    Decimal::from_str(&value).unwrap_or_else(|_| panic!("{path:?}: {value:?} is not a decimal"))
}

/// Checks a UBL invoice (Peppol BIS Billing 3.0) against the invoice the
/// API states: the document, the parties' Peppol addresses, the VAT, every
/// line and the totals, recomputed exactly.
fn check_ubl_values(xml: &str, invoice: &Value) {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let root = doc.root_element();
    let credit = invoice["kind"] == "credit_note";
    let sign = if credit {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    };
    let stated = |value: &Value| decimal(value.as_str().map(str::to_owned)) * sign;
    assert_eq!(
        (root.tag_name().name(), root.tag_name().namespace()),
        if credit {
            (
                "CreditNote",
                Some("urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"),
            )
        } else {
            (
                "Invoice",
                Some("urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"),
            )
        }
    );
    assert_eq!(
        text(root, &["CustomizationID"]).as_deref(),
        Some("urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0")
    );
    assert_eq!(
        text(root, &["ProfileID"]).as_deref(),
        Some("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")
    );
    assert_eq!(text(root, &["ID"]).as_deref(), invoice["number"].as_str());
    let type_code = if credit {
        text(root, &["CreditNoteTypeCode"])
    } else {
        text(root, &["InvoiceTypeCode"])
    };
    assert_eq!(
        type_code.as_deref(),
        Some(if credit { "381" } else { "380" })
    );
    assert_eq!(
        text(root, &["DocumentCurrencyCode"]).as_deref(),
        Some("EUR")
    );
    // Peppol: one note at most (R002), a buyer reference or an order (R003).
    assert!(children(root, "Note").count() <= 1, "{xml}");
    assert!(
        text(root, &["BuyerReference"]).is_some()
            || text(root, &["OrderReference", "ID"]).is_some(),
        "{xml}"
    );
    if credit {
        assert!(
            text(
                root,
                &["BillingReference", "InvoiceDocumentReference", "ID"]
            )
            .is_some(),
            "a credit note names the invoice it corrects: {xml}"
        );
    }

    // The parties: a SIREN is the Peppol address (scheme 0002) and the legal
    // registration; a VAT number is stated unless no VAT applies (BR-O-02).
    let outside_vat = invoice["vat"]["treatment"] == "outside_eu";
    for (tag, stated_party) in [
        ("AccountingSupplierParty", &invoice["issuer"]),
        ("AccountingCustomerParty", &invoice["customer"]),
    ] {
        let party = children(root, tag)
            .next()
            .and_then(|p| children(p, "Party").next())
            .unwrap_or_else(|| panic!("{tag}: {xml}"));
        assert_eq!(
            text(party, &["PartyLegalEntity", "RegistrationName"]).as_deref(),
            stated_party["name"].as_str()
        );
        let endpoint = children(party, "EndpointID").next();
        let siren = stated_party["siret"].as_str().map(|s| &s[..9]);
        match (siren, stated_party["vat_number"].as_str()) {
            (Some(siren), _) => {
                let endpoint = endpoint.unwrap_or_else(|| panic!("{tag}'s endpoint: {xml}"));
                assert_eq!(endpoint.attribute("schemeID"), Some("0002"));
                assert_eq!(endpoint.text(), Some(siren));
                assert_eq!(
                    text(party, &["PartyLegalEntity", "CompanyID"]).as_deref(),
                    Some(siren)
                );
            }
            (None, Some(_)) => {
                let endpoint = endpoint.unwrap_or_else(|| panic!("{tag}'s endpoint: {xml}"));
                assert!(endpoint.attribute("schemeID").is_some());
            }
            (None, None) => assert!(endpoint.is_none(), "{tag}: {xml}"),
        }
        let vat = text(party, &["PartyTaxScheme", "CompanyID"]);
        if outside_vat {
            assert_eq!(vat, None, "no VAT number outside VAT (BR-O-02)");
        } else {
            assert_eq!(vat.as_deref(), stated_party["vat_number"].as_str());
        }
        assert_eq!(
            text(party, &["PostalAddress", "Country", "IdentificationCode"]).as_deref(),
            stated_party["country"].as_str()
        );
    }

    // The VAT breakdown, one category.
    let tax_total = children(root, "TaxTotal").next().expect("TaxTotal");
    let subtotals: Vec<_> = children(tax_total, "TaxSubtotal").collect();
    assert_eq!(subtotals.len(), 1, "{xml}");
    let subtotal = subtotals[0];
    let (category, rate) = match invoice["vat"]["treatment"].as_str() {
        Some("standard") => (
            "S",
            invoice["vat"]["rate"]
                .as_str()
                .map(|r| decimal(Some(r.to_owned()))),
        ),
        Some("reverse_charge") => ("AE", Some(Decimal::ZERO)),
        _ => ("O", None),
    };
    assert_eq!(
        text(subtotal, &["TaxCategory", "ID"]).as_deref(),
        Some(category)
    );
    assert_eq!(
        text(subtotal, &["TaxCategory", "Percent"]).map(|p| decimal(Some(p))),
        rate
    );
    if category != "S" {
        assert!(
            text(subtotal, &["TaxCategory", "TaxExemptionReasonCode"]).is_some(),
            "why no VAT is charged: {xml}"
        );
    }

    // The lines: each amount is quantity × price to the cent, and they add
    // up to the net total.
    let (line_tag, quantity_tag) = if credit {
        ("CreditNoteLine", "CreditedQuantity")
    } else {
        ("InvoiceLine", "InvoicedQuantity")
    };
    let lines: Vec<_> = children(root, line_tag).collect();
    let stated_lines = invoice["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), stated_lines.len());
    let mut sum = Decimal::ZERO;
    for (line, stated_line) in lines.iter().zip(stated_lines) {
        let quantity = number(*line, &[quantity_tag]);
        let price = number(*line, &["Price", "PriceAmount"]);
        let total = number(*line, &["LineExtensionAmount"]);
        assert_eq!(quantity, stated(&stated_line["quantity"]));
        assert_eq!(total, stated(&stated_line["amount"]));
        assert_eq!(
            total,
            (quantity * price)
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            "line {:?}",
            text(*line, &["Item", "Name"])
        );
        assert!(
            children(*line, quantity_tag)
                .next()
                .and_then(|q| q.attribute("unitCode"))
                .is_some_and(|u| !u.is_empty())
        );
        assert_eq!(
            text(*line, &["Item", "ClassifiedTaxCategory", "ID"]).as_deref(),
            Some(category)
        );
        sum += total;
    }

    let totals = |name: &str| number(root, &["LegalMonetaryTotal", name]);
    let (net, vat, gross) = (
        stated(&invoice["net"]),
        stated(&invoice["vat_amount"]),
        stated(&invoice["gross"]),
    );
    assert_eq!(
        totals("LineExtensionAmount"),
        sum,
        "the lines add up to the net total"
    );
    assert_eq!(totals("LineExtensionAmount"), net);
    assert_eq!(totals("TaxExclusiveAmount"), net);
    assert_eq!(totals("TaxInclusiveAmount"), gross);
    assert_eq!(totals("PayableAmount"), gross);
    assert_eq!(number(tax_total, &["TaxAmount"]), vat);
    assert_eq!(number(subtotal, &["TaxableAmount"]), net);
    assert_eq!(number(subtotal, &["TaxAmount"]), vat);
    assert_eq!(gross, net + vat);
}
