//! Checking a Factur-X invoice as its receiver would: the XML is taken back
//! out of the PDF and validated against the Factur-X XSD (EN 16931 level) by
//! the `factur-x` Python package (scripts/test installs it), read back, run
//! through the EN 16931 business rules (the `en16931` crate), its totals
//! recomputed exactly, and compared with the invoice the API states.

use std::io::Write;
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

/// Checks a Factur-X PDF against the invoice the API states; returns the XML.
pub fn check(pdf: &[u8], invoice: &Value) -> String {
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
