//! The invoice as UBL 2.1, the syntax of the Peppol network, following
//! Peppol BIS Billing 3.0: an `Invoice` (type 380), or a `CreditNote` (381)
//! whose amounts are written positive, as in the CII. It says what the CII
//! says, in UBL's places for it:
//!
//! - The notes are one `cbc:Note` (Peppol allows one, PEPPOL-EN16931-R002),
//!   the payment terms `cac:PaymentTerms`; a credit note has no due date
//!   (UBL's `CreditNote` has none) but the same payment terms.
//! - The buyer reference is the Chorus Pro service code, else, when no
//!   engagement number stands for the order either, the invoice number:
//!   Peppol asks for one of the two (PEPPOL-EN16931-R003).
//! - The seller's name and legal mentions are its `PartyLegalEntity`, with
//!   its SIREN (scheme 0002); the buyer's legal form is not a term of
//!   EN 16931 in UBL (UBL-CR-244), so only the seller's is written.
//!
//! UBL is sequence-ordered: each element below is written in its schema's
//! order (the tests check it against the OASIS UBL 2.1 XSD).

use nuage_domain::billing::Party;
use rust_decimal::Decimal;

use super::{
    Category, DAY_MS, PAYMENT_DAYS, Rendering, amount, category, date, escape, legal_mentions,
    line_name, notes, payment_terms, sign, unit_code,
};

const CUSTOMIZATION_ID: &str =
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0";
const PROFILE_ID: &str = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0";
/// The currency of every amount, as in the CII.
const CURRENCY: &str = "EUR";

/// `YYYY-MM-DD`, UBL's dates.
fn date_iso(ms: i64) -> String {
    let d = date(ms);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `<tag>text</tag>`, escaped.
fn element(tag: &str, text: &str) -> String {
    format!("<{tag}>{}</{tag}>", escape(text))
}

fn money(tag: &str, value: Decimal) -> String {
    format!("<{tag} currencyID=\"{CURRENCY}\">{}</{tag}>", amount(value))
}

/// The Electronic Address Scheme (EAS) of a VAT number, by its prefix, and
/// the identifier as that scheme writes it: most states have a VAT scheme
/// of their own; Denmark's CVR (0184) and Finland's (0213) are written with
/// the prefix, Italy's partita IVA is 0211, and a Swedish VAT number is the
/// organisation number (0007) followed by `01`.
fn vat_endpoint(vat: &str) -> Option<(&'static str, String)> {
    let (prefix, rest) = (vat.get(..2)?, vat.get(2..)?);
    let scheme = match prefix {
        "AT" => "9914",
        "BE" => "9925",
        "BG" => "9926",
        "CY" => "9928",
        "CZ" => "9929",
        "DE" => "9930",
        "DK" => "0184",
        "EE" => "9931",
        "EL" => "9933",
        "ES" => "9920",
        "FI" => "0213",
        "FR" => "9957",
        "HR" => "9934",
        "HU" => "9910",
        "IE" => "9935",
        "IT" => "0211",
        "LT" => "9937",
        "LU" => "9938",
        "LV" => "9939",
        "MT" => "9943",
        "NL" => "9944",
        "PL" => "9945",
        "PT" => "9946",
        "RO" => "9947",
        "SE" => return Some(("0007", rest.get(..10)?.to_owned())),
        "SI" => "9949",
        "SK" => "9950",
        _ => return None,
    };
    Some((scheme, vat.to_owned()))
}

/// A party's Peppol electronic address (BT-34, BT-49): its SIREN (0002),
/// the identifier French e-invoicing routes by, else its VAT number.
/// Peppol requires one of each party (PEPPOL-EN16931-R010, R020): a party
/// with neither, a consumer or a business outside the EU, has no Peppol
/// address, and its invoice, valid EN 16931 still, travels another way.
fn endpoint(party: &Party) -> Option<(&'static str, String)> {
    match party.siren() {
        Some(siren) => Some(("0002", siren.to_owned())),
        None => party.vat_number.as_deref().and_then(vat_endpoint),
    }
}

/// `cac:Party`, the content of `AccountingSupplierParty` or
/// `AccountingCustomerParty`.
fn party_xml(party: &Party, with_vat: bool, seller: bool) -> String {
    let mut xml = String::from("<cac:Party>");
    if let Some((scheme, id)) = endpoint(party) {
        xml.push_str(&format!(
            "<cbc:EndpointID schemeID=\"{scheme}\">{}</cbc:EndpointID>",
            escape(&id)
        ));
    }
    // The party's identifier on this platform (BT-29, BT-46), as in the CII.
    xml.push_str(&format!(
        "<cac:PartyIdentification>{}</cac:PartyIdentification><cac:PostalAddress>",
        element("cbc:ID", &party.id)
    ));
    if let Some(a) = &party.identity.address {
        xml.push_str(&element("cbc:StreetName", &a.line1));
        if let Some(line2) = &a.line2 {
            xml.push_str(&element("cbc:AdditionalStreetName", line2));
        }
        xml.push_str(&element("cbc:CityName", &a.city));
        xml.push_str(&element("cbc:PostalZone", &a.postcode));
    }
    xml.push_str(&format!(
        "<cac:Country>{}</cac:Country></cac:PostalAddress>",
        element("cbc:IdentificationCode", &party.country)
    ));
    if let (true, Some(vat)) = (with_vat, &party.vat_number) {
        xml.push_str(&format!(
            "<cac:PartyTaxScheme>{}<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>",
            element("cbc:CompanyID", vat)
        ));
    }
    xml.push_str("<cac:PartyLegalEntity>");
    xml.push_str(&element("cbc:RegistrationName", &party.name));
    if let Some(siren) = party.siren() {
        xml.push_str(&format!(
            "<cbc:CompanyID schemeID=\"0002\">{}</cbc:CompanyID>",
            escape(siren)
        ));
    }
    // The seller's additional legal information (BT-33).
    if let (true, Some(legal)) = (seller, legal_mentions(party)) {
        xml.push_str(&element("cbc:CompanyLegalForm", &legal));
    }
    xml.push_str("</cac:PartyLegalEntity></cac:Party>");
    xml
}

/// A VAT category: a line's (`ClassifiedTaxCategory`) or the breakdown's
/// (`TaxCategory`, with why no VAT is charged). Category O has no rate
/// (BR-O-05, BR-O-09).
fn tax_category_xml(tag: &str, category: &Category, with_exemption: bool) -> String {
    let mut xml = format!("<{tag}>{}", element("cbc:ID", category.code));
    if let Some(rate) = category.rate {
        xml.push_str(&element("cbc:Percent", &rate.normalize().to_string()));
    }
    if let (true, Some((code, reason))) = (with_exemption, category.exemption) {
        xml.push_str(&element("cbc:TaxExemptionReasonCode", code));
        xml.push_str(&element("cbc:TaxExemptionReason", reason));
    }
    xml.push_str(&format!(
        "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></{tag}>"
    ));
    xml
}

/// The invoice's UBL 2.1 XML, Peppol BIS Billing 3.0.
pub fn ubl_xml(r: &Rendering<'_>) -> String {
    let inv = r.invoice;
    let doc = &inv.document;
    let s = sign(inv);
    let cat = category(doc.vat);
    // Not subject to VAT: no VAT identifier may be stated (BR-O-02).
    let with_vat = cat.code != "O";
    let credit = inv.kind == "credit_note";
    let (root, line_tag, quantity_tag) = if credit {
        ("CreditNote", "cac:CreditNoteLine", "cbc:CreditedQuantity")
    } else {
        ("Invoice", "cac:InvoiceLine", "cbc:InvoicedQuantity")
    };

    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} \
         xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:{root}-2\" \
         xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\" \
         xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">"
    );
    xml.push_str(&element("cbc:CustomizationID", CUSTOMIZATION_ID));
    xml.push_str(&element("cbc:ProfileID", PROFILE_ID));
    xml.push_str(&element("cbc:ID", &inv.number));
    xml.push_str(&element("cbc:IssueDate", &date_iso(inv.issued_at_ms)));
    if credit {
        xml.push_str("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>");
    } else {
        xml.push_str(&element(
            "cbc:DueDate",
            &date_iso(inv.issued_at_ms + PAYMENT_DAYS * DAY_MS),
        ));
        xml.push_str("<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>");
    }
    let terms = payment_terms();
    let note: Vec<String> = notes(inv).into_iter().filter(|n| n != terms).collect();
    if !note.is_empty() {
        xml.push_str(&element("cbc:Note", &note.join("\n")));
    }
    xml.push_str(&element("cbc:DocumentCurrencyCode", CURRENCY));

    // A public body's Chorus Pro service code is the buyer reference
    // (BT-10), its engagement number the purchase order (BT-13).
    let chorus = doc.customer.identity.chorus_pro.as_ref();
    let service_code = chorus.and_then(|c| c.service_code.as_deref());
    let order = chorus.and_then(|c| c.engagement_number.as_deref());
    match (service_code, order) {
        (Some(code), _) => xml.push_str(&element("cbc:BuyerReference", code)),
        (None, None) => xml.push_str(&element("cbc:BuyerReference", &inv.number)),
        (None, Some(_)) => {}
    }
    xml.push_str(&format!(
        "<cac:InvoicePeriod>{}{}</cac:InvoicePeriod>",
        element("cbc:StartDate", &date_iso(inv.period_start_ms)),
        element("cbc:EndDate", &date_iso(inv.period_end_ms - 1)),
    ));
    if let Some(order) = order {
        xml.push_str(&format!(
            "<cac:OrderReference>{}</cac:OrderReference>",
            element("cbc:ID", order)
        ));
    }
    if let Some(number) = r.corrects_number {
        xml.push_str(&format!(
            "<cac:BillingReference><cac:InvoiceDocumentReference>{}</cac:InvoiceDocumentReference></cac:BillingReference>",
            element("cbc:ID", number)
        ));
    }
    xml.push_str(&format!(
        "<cac:AccountingSupplierParty>{}</cac:AccountingSupplierParty>\
         <cac:AccountingCustomerParty>{}</cac:AccountingCustomerParty>",
        party_xml(&doc.issuer, with_vat, true),
        party_xml(&doc.customer, with_vat, false),
    ));
    xml.push_str(&format!(
        "<cac:PaymentTerms>{}</cac:PaymentTerms>",
        element("cbc:Note", terms)
    ));
    xml.push_str(&format!(
        "<cac:TaxTotal>{vat}<cac:TaxSubtotal>{}{vat}{}</cac:TaxSubtotal></cac:TaxTotal>",
        money("cbc:TaxableAmount", inv.net * s),
        tax_category_xml("cac:TaxCategory", &cat, true),
        vat = money("cbc:TaxAmount", inv.vat_amount * s),
    ));
    xml.push_str(&format!(
        "<cac:LegalMonetaryTotal>{}{}{}{}</cac:LegalMonetaryTotal>",
        money("cbc:LineExtensionAmount", inv.net * s),
        money("cbc:TaxExclusiveAmount", inv.net * s),
        money("cbc:TaxInclusiveAmount", inv.gross * s),
        money("cbc:PayableAmount", inv.gross * s),
    ));
    for (i, line) in doc.lines.iter().enumerate() {
        xml.push_str(&format!(
            "<{line_tag}><cbc:ID>{}</cbc:ID>\
             <{quantity_tag} unitCode=\"{}\">{}</{quantity_tag}>{}\
             <cac:Item>{}{}</cac:Item>\
             <cac:Price><cbc:PriceAmount currencyID=\"{CURRENCY}\">{}</cbc:PriceAmount></cac:Price></{line_tag}>",
            i + 1,
            unit_code(line),
            (line.quantity * s).normalize(),
            money("cbc:LineExtensionAmount", line.amount * s),
            element("cbc:Name", &line_name(line)),
            tax_category_xml("cac:ClassifiedTaxCategory", &cat, false),
            line.unit_price.normalize(),
        ));
    }
    xml.push_str(&format!("</{root}>\n"));
    xml
}

#[cfg(test)]
mod tests {
    use nuage_domain::billing::{Invoice, Vat};
    use nuage_domain::legal_identity::{ChorusPro, PostalAddress};
    use rust_decimal::Decimal;

    use super::*;
    use crate::tests::invoice;

    /// Every tag is closed in order, and every `&` starts an entity: the
    /// XML is well-formed (it has no comments, CDATA or DTD to allow for).
    fn well_formed(xml: &str) -> bool {
        let Some(body) = xml.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") else {
            return false;
        };
        let mut open: Vec<&str> = Vec::new();
        let mut rest = body;
        let entities = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            if text
                .match_indices('&')
                .any(|(i, _)| !entities.iter().any(|e| text[i..].starts_with(e)))
            {
                return false;
            }
            let Some(end) = rest[start..].find('>') else {
                return false;
            };
            let tag = &rest[start + 1..start + end];
            if let Some(name) = tag.strip_prefix('/') {
                if open.pop() != Some(name) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().unwrap_or_default());
            }
            rest = &rest[start + end + 1..];
            if open.is_empty() {
                return rest.trim().is_empty();
            }
        }
        false
    }

    /// The tags, taken by their first occurrence, come in this order.
    fn in_order(xml: &str, tags: &[&str]) -> bool {
        let at: Vec<Option<usize>> = tags.iter().map(|t| xml.find(&format!("<{t}"))).collect();
        at.iter().all(Option::is_some) && at.windows(2).all(|w| w[0] < w[1])
    }

    fn with_vat(mut inv: Invoice, vat: Vat, customer_vat: Option<&str>, country: &str) -> Invoice {
        inv.document.vat = vat;
        inv.document.customer.vat_number = customer_vat.map(str::to_owned);
        inv.document.customer.country = country.into();
        if vat
            != (Vat::Standard {
                rate: Decimal::from(20),
            })
        {
            inv.vat_amount = Decimal::ZERO;
            inv.gross = inv.net;
        }
        inv
    }

    /// The UBL of `inv`, kept as `{name}.xml` in `NUAGE_KEEP_FACTURX`
    /// when set (`scripts/en16931-validate.py` checks such files).
    fn render(name: &str, inv: &Invoice, corrects: Option<&str>) -> String {
        let xml = ubl_xml(&Rendering {
            invoice: inv,
            corrects_number: corrects,
        });
        if let Ok(dir) = std::env::var("NUAGE_KEEP_FACTURX") {
            std::fs::write(format!("{dir}/{name}.xml"), &xml).expect("kept");
        }
        assert!(well_formed(&xml), "{xml}");
        xml
    }

    #[test]
    fn an_invoice_is_a_peppol_ubl_invoice_saying_what_the_cii_says() {
        let mut inv = invoice("invoice");
        inv.document.customer.siret = Some("73282932000074".into());
        inv.document.issuer.identity.address = Some(PostalAddress {
            line1: "1 rue de la Paix".into(),
            line2: Some("Bât. <B>".into()),
            postcode: "75002".into(),
            city: "Paris".into(),
            country: "FR".into(),
        });
        inv.document.issuer.identity.legal_form = Some("SAS".into());
        inv.document.issuer.identity.vat_on_debits = true;
        let xml = render("standard", &inv, None);
        assert!(
            xml.contains(
                "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\""
            )
        );
        for expected in [
            "<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>",
            "<cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>",
            "<cbc:ID>F-000001</cbc:ID>",
            "<cbc:IssueDate>2026-11-02</cbc:IssueDate>",
            "<cbc:DueDate>2026-12-02</cbc:DueDate>",
            "<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>",
            "<cbc:BuyerReference>F-000001</cbc:BuyerReference>",
            "<cbc:StartDate>2026-10-01</cbc:StartDate><cbc:EndDate>2026-10-31</cbc:EndDate>",
            // The seller without a SIRET is reached by its VAT number, the
            // buyer by its SIREN.
            "<cbc:EndpointID schemeID=\"9957\">FR76411050487</cbc:EndpointID>",
            "<cbc:EndpointID schemeID=\"0002\">732829320</cbc:EndpointID>",
            "<cbc:RegistrationName>Nuage &lt;&amp;&gt; Cie</cbc:RegistrationName>",
            "<cbc:CompanyID schemeID=\"0002\">732829320</cbc:CompanyID>",
            "<cbc:CompanyLegalForm>SAS</cbc:CompanyLegalForm>",
            "<cbc:StreetName>1 rue de la Paix</cbc:StreetName><cbc:AdditionalStreetName>Bât. &lt;B&gt;</cbc:AdditionalStreetName><cbc:CityName>Paris</cbc:CityName><cbc:PostalZone>75002</cbc:PostalZone>",
            "<cac:PartyTaxScheme><cbc:CompanyID>FR76411050487</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>",
            "<cac:PaymentTerms><cbc:Note>Paiement à 30 jours.",
            "<cbc:TaxAmount currencyID=\"EUR\">3.35</cbc:TaxAmount><cac:TaxSubtotal><cbc:TaxableAmount currencyID=\"EUR\">16.75</cbc:TaxableAmount><cbc:TaxAmount currencyID=\"EUR\">3.35</cbc:TaxAmount><cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent><cac:TaxScheme>",
            "<cbc:LineExtensionAmount currencyID=\"EUR\">16.75</cbc:LineExtensionAmount><cbc:TaxExclusiveAmount currencyID=\"EUR\">16.75</cbc:TaxExclusiveAmount><cbc:TaxInclusiveAmount currencyID=\"EUR\">20.10</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID=\"EUR\">20.10</cbc:PayableAmount>",
            "<cac:InvoiceLine><cbc:ID>1</cbc:ID><cbc:InvoicedQuantity unitCode=\"MON\">0.4838709677419354838709677419</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID=\"EUR\">15.00</cbc:LineExtensionAmount>",
            "<cbc:Name>Offre — Stockage (Go-mois)</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent>",
            "<cac:Price><cbc:PriceAmount currencyID=\"EUR\">0.5</cbc:PriceAmount></cac:Price>",
        ] {
            assert!(xml.contains(expected), "{expected}\n{xml}");
        }
        // One note (PEPPOL-EN16931-R002), the payment terms apart.
        assert_eq!(xml.matches("<cbc:Note>").count(), 2, "{xml}");
        assert!(xml.contains(
            "<cbc:Note>Catégorie d&apos;opération : prestations de services.\nOption pour le paiement de la taxe d&apos;après les débits.</cbc:Note>"
        ));
        // The buyer's legal form is not a term of EN 16931 in UBL.
        assert_eq!(xml.matches("<cbc:CompanyLegalForm>").count(), 1);
        assert!(!xml.contains("OrderReference") && !xml.contains("BillingReference"));
        assert!(in_order(
            &xml,
            &[
                "cbc:CustomizationID",
                "cbc:ProfileID",
                "cbc:ID",
                "cbc:IssueDate",
                "cbc:DueDate",
                "cbc:InvoiceTypeCode",
                "cbc:Note",
                "cbc:DocumentCurrencyCode",
                "cbc:BuyerReference",
                "cac:InvoicePeriod",
                "cac:AccountingSupplierParty",
                "cac:AccountingCustomerParty",
                "cac:PaymentTerms",
                "cac:TaxTotal",
                "cac:LegalMonetaryTotal",
                "cac:InvoiceLine",
            ]
        ));
        assert!(in_order(
            &xml,
            &[
                "cbc:EndpointID",
                "cac:PartyIdentification",
                "cac:PostalAddress",
                "cac:PartyTaxScheme",
                "cac:PartyLegalEntity",
            ]
        ));
    }

    #[test]
    fn a_public_body_is_referred_to_by_its_chorus_pro_codes() {
        let mut inv = invoice("invoice");
        inv.document.customer.identity.chorus_pro = Some(ChorusPro {
            service_code: Some("SERVICE-42".into()),
            engagement_number: Some("EJ-2026-7".into()),
            ..ChorusPro::default()
        });
        let xml = render("chorus-pro", &inv, None);
        assert!(xml.contains("<cbc:BuyerReference>SERVICE-42</cbc:BuyerReference>"));
        assert!(
            xml.contains("<cac:OrderReference><cbc:ID>EJ-2026-7</cbc:ID></cac:OrderReference>")
        );
        assert!(in_order(
            &xml,
            &[
                "cbc:BuyerReference",
                "cac:InvoicePeriod",
                "cac:OrderReference"
            ]
        ));
        // The engagement number alone is enough for Peppol (R003).
        if let Some(c) = inv.document.customer.identity.chorus_pro.as_mut() {
            c.service_code = None;
        }
        let xml = render("engagement-only", &inv, None);
        assert!(!xml.contains("BuyerReference"), "{xml}");
        assert!(
            xml.contains("<cac:OrderReference><cbc:ID>EJ-2026-7</cbc:ID></cac:OrderReference>")
        );
    }

    #[test]
    fn reverse_charge_and_outside_the_eu_say_why_no_vat_is_charged() {
        let xml = render(
            "reverse-charge",
            &with_vat(
                invoice("invoice"),
                Vat::ReverseCharge,
                Some("DE139115146"),
                "DE",
            ),
            None,
        );
        for expected in [
            "<cbc:EndpointID schemeID=\"9930\">DE139115146</cbc:EndpointID>",
            "<cac:PartyTaxScheme><cbc:CompanyID>DE139115146</cbc:CompanyID>",
            "<cac:TaxCategory><cbc:ID>AE</cbc:ID><cbc:Percent>0</cbc:Percent><cbc:TaxExemptionReasonCode>VATEX-EU-AE</cbc:TaxExemptionReasonCode><cbc:TaxExemptionReason>Autoliquidation</cbc:TaxExemptionReason>",
            "<cac:ClassifiedTaxCategory><cbc:ID>AE</cbc:ID><cbc:Percent>0</cbc:Percent><cac:TaxScheme>",
            "<cbc:TaxAmount currencyID=\"EUR\">0.00</cbc:TaxAmount>",
            "<cbc:PayableAmount currencyID=\"EUR\">16.75</cbc:PayableAmount>",
        ] {
            assert!(xml.contains(expected), "{expected}\n{xml}");
        }

        let xml = render(
            "outside-eu",
            &with_vat(invoice("invoice"), Vat::OutsideEu, None, "US"),
            None,
        );
        for expected in [
            "<cac:TaxCategory><cbc:ID>O</cbc:ID><cbc:TaxExemptionReasonCode>VATEX-EU-O</cbc:TaxExemptionReasonCode><cbc:TaxExemptionReason>Hors du champ de la TVA</cbc:TaxExemptionReason>",
            "<cac:ClassifiedTaxCategory><cbc:ID>O</cbc:ID><cac:TaxScheme>",
            "<cbc:IdentificationCode>US</cbc:IdentificationCode>",
        ] {
            assert!(xml.contains(expected), "{expected}\n{xml}");
        }
        // No VAT number outside VAT (BR-O-02), no rate either; a buyer with
        // neither SIREN nor VAT number has no Peppol address.
        assert!(!xml.contains("PartyTaxScheme") && !xml.contains("cbc:Percent"));
        assert_eq!(xml.matches("<cbc:EndpointID").count(), 1, "{xml}");
    }

    #[test]
    fn a_credit_note_is_a_ubl_credit_note_written_positive() {
        let mut inv = invoice("credit_note");
        inv.document.note = Some("geste commercial".into());
        let xml = render("credit-note", &inv, Some("F-000001"));
        assert!(xml.contains(
            "<CreditNote xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2\""
        ));
        for expected in [
            "<cbc:ID>A-000002</cbc:ID>",
            "<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>",
            "<cbc:Note>geste commercial\nCatégorie",
            "<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>F-000001</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>",
            "<cbc:PayableAmount currencyID=\"EUR\">20.10</cbc:PayableAmount>",
            "<cac:CreditNoteLine><cbc:ID>1</cbc:ID><cbc:CreditedQuantity unitCode=\"MON\">0.4838709677419354838709677419</cbc:CreditedQuantity><cbc:LineExtensionAmount currencyID=\"EUR\">15.00</cbc:LineExtensionAmount>",
            "<cbc:CreditedQuantity unitCode=\"C62\">3.5</cbc:CreditedQuantity><cbc:LineExtensionAmount currencyID=\"EUR\">1.75</cbc:LineExtensionAmount>",
        ] {
            assert!(xml.contains(expected), "{expected}\n{xml}");
        }
        // UBL's CreditNote has no due date, nor an invoice's elements.
        assert!(!xml.contains("DueDate") && !xml.contains("InvoiceLine"));
        assert!(in_order(
            &xml,
            &[
                "cbc:IssueDate",
                "cbc:CreditNoteTypeCode",
                "cbc:Note",
                "cbc:DocumentCurrencyCode",
                "cac:BillingReference",
                "cac:AccountingSupplierParty",
                "cac:LegalMonetaryTotal",
                "cac:CreditNoteLine",
            ]
        ));
    }

    #[test]
    fn vat_numbers_are_addressed_under_their_states_scheme() {
        assert_eq!(
            vat_endpoint("DE139115146"),
            Some(("9930", "DE139115146".into()))
        );
        assert_eq!(
            vat_endpoint("EL094259216"),
            Some(("9933", "EL094259216".into()))
        );
        assert_eq!(
            vat_endpoint("DK13585628"),
            Some(("0184", "DK13585628".into()))
        );
        assert_eq!(
            vat_endpoint("SE556036079301"),
            Some(("0007", "5560360793".into()))
        );
        assert_eq!(vat_endpoint("GB980780684"), None);
    }

    #[test]
    fn the_checker_of_these_tests_tells_broken_xml() {
        let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
        assert!(well_formed(&format!(
            "{head}<a x=\"1\"><b>&amp;</b><c/></a>\n"
        )));
        for broken in [
            "<a><b></a></b>",
            "<a>&</a>",
            "<a>&nbsp;</a>",
            "<a></a><b></b>",
            "<a>",
        ] {
            assert!(!well_formed(&format!("{head}{broken}")), "{broken}");
        }
    }
}
