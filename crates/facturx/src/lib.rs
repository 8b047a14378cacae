//! Factur-X: an invoice as a PDF/A-3 that carries its own data, the
//! UN/CEFACT Cross Industry Invoice (CII) XML of the EN 16931 profile, as
//! the associated file `factur-x.xml`. French businesses and public bodies
//! accept it as an electronic invoice.
//!
//! - The XML states what the invoice says: parties (name, country, VAT
//!   number, SIREN), every line (name, quantity, net price, amount, VAT
//!   category), the VAT breakdown, the totals, the billing period, the due
//!   date (30 days), and for a credit note (type 381) the invoice it
//!   corrects. A credit note's amounts are written positive, as CII does;
//!   the type says it is a credit.
//! - The PDF is written by krilla with DejaVu fonts embedded in the binary
//!   (`assets/fonts`, Bitstream Vera licence), checked by krilla as PDF/A-3b.
//!   krilla writes no custom XMP, so the Factur-X extension schema
//!   (`fx:DocumentType` …) is added to its metadata stream afterwards
//!   (`add_facturx_xmp`), and the cross-reference table is shifted to match.
//!
//! The same invoice is also written as UBL 2.1 for the Peppol network
//! (`ubl_xml`, in ubl.rs).

use krilla::Document;
use krilla::SerializeSettings;
use krilla::configure::{Archival, ConfigurationBuilder, PdfVersion};
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use nuage_domain::billing::{Invoice, InvoiceLine, LineKind, Party, Vat};
use rust_decimal::Decimal;

mod ubl;
pub use ubl::ubl_xml;

/// Why a PDF could not be written (krilla refused it: a bug, never the
/// invoice's content).
#[derive(Debug, thiserror::Error)]
#[error("Factur-X: {0}")]
pub struct RenderError(String);

static SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static MONO: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");

const DAY_MS: i64 = 86_400_000;
/// Days from issue to payment.
const PAYMENT_DAYS: i64 = 30;

/// An invoice to render, with the number of the invoice a credit note
/// corrects.
pub struct Rendering<'a> {
    pub invoice: &'a Invoice,
    pub corrects_number: Option<&'a str>,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

fn date(ms: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

/// `YYYYMMDD`, CII's format 102.
fn date_102(ms: i64) -> String {
    let d = date(ms);
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `DD/MM/YYYY`, for the page.
fn date_fr(ms: i64) -> String {
    let d = date(ms);
    format!("{:02}/{:02}/{:04}", d.day(), u8::from(d.month()), d.year())
}

/// The UN/ECE Recommendation 20 unit of a line.
fn unit_code(line: &InvoiceLine) -> &'static str {
    match line.kind {
        LineKind::MonthlyFee | LineKind::CommitmentRemainder => "MON",
        LineKind::Egress | LineKind::ExitEgress => "E34",
        // GB-months and thousands of requests have no code: "one", named
        // in the line's name.
        LineKind::Storage | LineKind::ClassARequests | LineKind::ClassBRequests => "C62",
    }
}

fn unit_fr(line: &InvoiceLine) -> &'static str {
    match line.kind {
        LineKind::MonthlyFee | LineKind::CommitmentRemainder => "mois",
        LineKind::Egress | LineKind::ExitEgress => "Go",
        LineKind::Storage => "Go-mois",
        LineKind::ClassARequests | LineKind::ClassBRequests => "milliers",
    }
}

/// A line's name in the XML: its description, with the unit when no code
/// says it.
fn line_name(line: &InvoiceLine) -> String {
    match unit_code(line) {
        "C62" => format!("{} ({})", line.description, unit_fr(line)),
        _ => line.description.clone(),
    }
}

/// The VAT of the invoice: category, rate, and why none is charged.
struct Category {
    code: &'static str,
    rate: Option<Decimal>,
    exemption: Option<(&'static str, &'static str)>,
    /// What the page says under the totals.
    mention: &'static str,
}

fn category(vat: Vat) -> Category {
    match vat {
        Vat::Standard { rate } => Category {
            code: "S",
            rate: Some(rate),
            exemption: None,
            mention: "",
        },
        Vat::ReverseCharge => Category {
            code: "AE",
            rate: Some(Decimal::ZERO),
            exemption: Some(("VATEX-EU-AE", "Autoliquidation")),
            mention: "Autoliquidation : TVA due par le preneur (article 283-2 du CGI, article 196 de la directive 2006/112/CE).",
        },
        Vat::OutsideEu => Category {
            code: "O",
            rate: None,
            exemption: Some(("VATEX-EU-O", "Hors du champ de la TVA")),
            mention: "TVA non applicable, article 259-1 du CGI (preneur établi hors de l'Union européenne).",
        },
    }
}

/// The sign that makes a credit note's amounts positive, as CII writes them.
fn sign(invoice: &Invoice) -> Decimal {
    if invoice.kind == "credit_note" {
        Decimal::NEGATIVE_ONE
    } else {
        Decimal::ONE
    }
}

fn amount(value: Decimal) -> String {
    format!("{:.2}", value)
}

fn party_xml(tag: &str, party: &Party, with_vat: bool) -> String {
    // The party's identifier on this platform (BT-29 / BT-46): with no VAT
    // number stated, it is what identifies the seller (BR-CO-26).
    let mut xml = format!(
        "<ram:{tag}><ram:ID>{}</ram:ID><ram:Name>{}</ram:Name>",
        escape(&party.id),
        escape(&party.name)
    );
    // The seller's additional legal information (BT-33): legal form,
    // share capital, RCS.
    if let Some(legal) = legal_mentions(party) {
        xml.push_str(&format!(
            "<ram:Description>{}</ram:Description>",
            escape(&legal)
        ));
    }
    if let Some(siren) = party.siren() {
        // The SIREN, the first nine digits of the SIRET (scheme 0002).
        xml.push_str(&format!(
            "<ram:SpecifiedLegalOrganization><ram:ID schemeID=\"0002\">{}</ram:ID></ram:SpecifiedLegalOrganization>",
            escape(siren)
        ));
    }
    xml.push_str("<ram:PostalTradeAddress>");
    if let Some(a) = &party.identity.address {
        xml.push_str(&format!(
            "<ram:PostcodeCode>{}</ram:PostcodeCode><ram:LineOne>{}</ram:LineOne>",
            escape(&a.postcode),
            escape(&a.line1)
        ));
        if let Some(line2) = &a.line2 {
            xml.push_str(&format!("<ram:LineTwo>{}</ram:LineTwo>", escape(line2)));
        }
        xml.push_str(&format!("<ram:CityName>{}</ram:CityName>", escape(&a.city)));
    }
    xml.push_str(&format!(
        "<ram:CountryID>{}</ram:CountryID></ram:PostalTradeAddress>",
        escape(&party.country)
    ));
    if let (true, Some(vat)) = (with_vat, &party.vat_number) {
        xml.push_str(&format!(
            "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{}</ram:ID></ram:SpecifiedTaxRegistration>",
            escape(vat)
        ));
    }
    xml.push_str(&format!("</ram:{tag}>"));
    xml
}

/// What Code de commerce R123-237 asks a company's invoices to say of it:
/// legal form, share capital, trade register.
fn legal_mentions(party: &Party) -> Option<String> {
    let i = &party.identity;
    let mut parts = Vec::new();
    match (&i.legal_form, i.share_capital) {
        (Some(form), Some(capital)) => {
            parts.push(format!("{form} au capital de {} €", number_fr(capital, 2)))
        }
        (Some(form), None) => parts.push(form.clone()),
        (None, Some(capital)) => parts.push(format!("capital de {} €", number_fr(capital, 2))),
        (None, None) => {}
    }
    if let (Some(rcs), Some(siren)) = (&i.rcs, party.siren()) {
        parts.push(format!("{rcs} {siren}"));
    } else if let Some(rcs) = &i.rcs {
        parts.push(rcs.clone());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The notes every invoice carries: payment terms, the category of the
/// operation (the reform's mention: Nuage sells services), and the
/// seller's option for VAT on debits when it chose it.
fn notes(inv: &Invoice) -> Vec<String> {
    let mut notes: Vec<String> = inv.document.note.iter().cloned().collect();
    notes.push(payment_terms().to_owned());
    notes.push("Catégorie d'opération : prestations de services.".to_owned());
    if inv.document.issuer.identity.vat_on_debits {
        notes.push("Option pour le paiement de la taxe d'après les débits.".to_owned());
    }
    notes
}

fn tax_xml(category: &Category, calculated: Option<Decimal>, basis: Option<Decimal>) -> String {
    let mut xml = String::from("<ram:ApplicableTradeTax>");
    if let Some(calculated) = calculated {
        xml.push_str(&format!(
            "<ram:CalculatedAmount>{}</ram:CalculatedAmount>",
            amount(calculated)
        ));
    }
    xml.push_str("<ram:TypeCode>VAT</ram:TypeCode>");
    if let (Some((_, reason)), Some(_)) = (category.exemption, basis) {
        xml.push_str(&format!(
            "<ram:ExemptionReason>{reason}</ram:ExemptionReason>"
        ));
    }
    if let Some(basis) = basis {
        xml.push_str(&format!(
            "<ram:BasisAmount>{}</ram:BasisAmount>",
            amount(basis)
        ));
    }
    xml.push_str(&format!(
        "<ram:CategoryCode>{}</ram:CategoryCode>",
        category.code
    ));
    if let (Some((code, _)), Some(_)) = (category.exemption, basis) {
        xml.push_str(&format!(
            "<ram:ExemptionReasonCode>{code}</ram:ExemptionReasonCode>"
        ));
    }
    if let Some(rate) = category.rate {
        xml.push_str(&format!(
            "<ram:RateApplicablePercent>{}</ram:RateApplicablePercent>",
            rate.normalize()
        ));
    }
    xml.push_str("</ram:ApplicableTradeTax>");
    xml
}

/// The invoice's CII XML, EN 16931 profile.
pub fn cii_xml(r: &Rendering<'_>) -> String {
    let inv = r.invoice;
    let s = sign(inv);
    let cat = category(inv.document.vat);
    // Not subject to VAT: no VAT identifier may be stated (BR-O-02).
    let with_vat = cat.code != "O";
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rsm:CrossIndustryInvoice \
         xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\" \
         xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\" \
         xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\" \
         xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">\
         <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>\
         <ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>\
         </rsm:ExchangedDocumentContext>",
    );
    xml.push_str(&format!(
        "<rsm:ExchangedDocument><ram:ID>{}</ram:ID><ram:TypeCode>{}</ram:TypeCode>\
         <ram:IssueDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:IssueDateTime>",
        escape(&inv.number),
        if inv.kind == "credit_note" { "381" } else { "380" },
        date_102(inv.issued_at_ms)
    ));
    for note in notes(inv) {
        xml.push_str(&format!(
            "<ram:IncludedNote><ram:Content>{}</ram:Content></ram:IncludedNote>",
            escape(&note)
        ));
    }
    xml.push_str("</rsm:ExchangedDocument><rsm:SupplyChainTradeTransaction>");
    for (i, line) in inv.document.lines.iter().enumerate() {
        xml.push_str(&format!(
            "<ram:IncludedSupplyChainTradeLineItem>\
             <ram:AssociatedDocumentLineDocument><ram:LineID>{}</ram:LineID></ram:AssociatedDocumentLineDocument>\
             <ram:SpecifiedTradeProduct><ram:Name>{}</ram:Name></ram:SpecifiedTradeProduct>\
             <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>\
             <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"{}\">{}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>\
             <ram:SpecifiedLineTradeSettlement>{}\
             <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>\
             </ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>",
            i + 1,
            escape(&line_name(line)),
            line.unit_price.normalize(),
            unit_code(line),
            (line.quantity * s).normalize(),
            tax_xml(&cat, None, None),
            amount(line.amount * s),
        ));
    }
    xml.push_str("<ram:ApplicableHeaderTradeAgreement>");
    let chorus = inv.document.customer.identity.chorus_pro.as_ref();
    // A public body's Chorus Pro service code is the buyer reference
    // (BT-10), its engagement number the purchase order (BT-13).
    if let Some(code) = chorus.and_then(|c| c.service_code.as_deref()) {
        xml.push_str(&format!(
            "<ram:BuyerReference>{}</ram:BuyerReference>",
            escape(code)
        ));
    }
    xml.push_str(&party_xml(
        "SellerTradeParty",
        &inv.document.issuer,
        with_vat,
    ));
    xml.push_str(&party_xml(
        "BuyerTradeParty",
        &inv.document.customer,
        with_vat,
    ));
    if let Some(number) = chorus.and_then(|c| c.engagement_number.as_deref()) {
        xml.push_str(&format!(
            "<ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID></ram:BuyerOrderReferencedDocument>",
            escape(number)
        ));
    }
    xml.push_str("</ram:ApplicableHeaderTradeAgreement><ram:ApplicableHeaderTradeDelivery/>");
    xml.push_str("<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>");
    xml.push_str(&tax_xml(&cat, Some(inv.vat_amount * s), Some(inv.net * s)));
    xml.push_str(&format!(
        "<ram:BillingSpecifiedPeriod>\
         <ram:StartDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:StartDateTime>\
         <ram:EndDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:EndDateTime>\
         </ram:BillingSpecifiedPeriod>",
        date_102(inv.period_start_ms),
        date_102(inv.period_end_ms - 1)
    ));
    xml.push_str(&format!(
        "<ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>",
        date_102(inv.issued_at_ms + PAYMENT_DAYS * DAY_MS)
    ));
    xml.push_str(&format!(
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation>\
         <ram:LineTotalAmount>{net}</ram:LineTotalAmount>\
         <ram:TaxBasisTotalAmount>{net}</ram:TaxBasisTotalAmount>\
         <ram:TaxTotalAmount currencyID=\"EUR\">{vat}</ram:TaxTotalAmount>\
         <ram:GrandTotalAmount>{gross}</ram:GrandTotalAmount>\
         <ram:DuePayableAmount>{gross}</ram:DuePayableAmount>\
         </ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
        net = amount(inv.net * s),
        vat = amount(inv.vat_amount * s),
        gross = amount(inv.gross * s),
    ));
    if let Some(number) = r.corrects_number {
        xml.push_str(&format!(
            "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID></ram:InvoiceReferencedDocument>",
            escape(number)
        ));
    }
    xml.push_str("</ram:ApplicableHeaderTradeSettlement></rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>\n");
    xml
}

fn payment_terms() -> &'static str {
    "Paiement à 30 jours. Pénalités de retard : trois fois le taux d'intérêt légal. \
     Indemnité forfaitaire pour frais de recouvrement : 40 €."
}

/// A number for the page: French decimal comma, no trailing zeros beyond
/// the cents.
fn number_fr(value: Decimal, places: u32) -> String {
    let rounded = value.round_dp(places).normalize();
    rounded.to_string().replace('.', ",")
}

/// Writes a page of text lines; returns where the next line goes.
struct Pages<'a> {
    document: &'a mut Document,
    sans: Font,
    mono: Font,
    lines: Vec<Vec<(bool, f32, String)>>,
}

const A4: (f32, f32) = (595.28, 841.89);
const LEFT: f32 = 50.0;
const TOP: f32 = 60.0;
const LINE: f32 = 12.5;
const LINES_PER_PAGE: usize = 58;

impl Pages<'_> {
    /// Queues a line: in the monospaced font when `mono`, at `size`.
    fn push(&mut self, mono: bool, size: f32, text: String) {
        if self
            .lines
            .last()
            .is_none_or(|page| page.len() >= LINES_PER_PAGE)
        {
            self.lines.push(Vec::new());
        }
        if let Some(page) = self.lines.last_mut() {
            page.push((mono, size, text));
        }
    }

    fn finish(self) -> Result<(), RenderError> {
        let count = self.lines.len();
        for (n, page_lines) in self.lines.into_iter().enumerate() {
            let settings =
                PageSettings::from_wh(A4.0, A4.1).ok_or_else(|| RenderError("page size".into()))?;
            let mut page = self.document.start_page_with(settings);
            let mut surface = page.surface();
            let mut y = TOP;
            for (mono, size, text) in &page_lines {
                let font = if *mono { &self.mono } else { &self.sans };
                if text == "—rule—" {
                    rule(&mut surface, y - LINE / 2.0);
                } else {
                    surface.draw_text(
                        Point::from_xy(LEFT, y),
                        font.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                y += LINE * (*size / 9.0).max(1.0);
            }
            surface.draw_text(
                Point::from_xy(A4.0 - LEFT - 40.0, A4.1 - 30.0),
                self.sans.clone(),
                8.0,
                &format!("{}/{}", n + 1, count),
                false,
                TextDirection::Auto,
            );
            surface.finish();
            page.finish();
        }
        Ok(())
    }
}

fn rule(surface: &mut Surface, y: f32) {
    let mut path = PathBuilder::new();
    path.move_to(LEFT, y);
    path.line_to(A4.0 - LEFT, y);
    if let Some(path) = path.finish() {
        surface.set_fill(None);
        surface.set_stroke(Some(Stroke {
            width: 0.5,
            ..Default::default()
        }));
        surface.draw_path(&path);
        surface.set_stroke(None);
        surface.set_fill(Some(Default::default()));
    }
}

/// Splits `text` into pieces of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let current = lines.last().map_or(0, |l| l.chars().count());
        if current > 0 && current + 1 + word.chars().count() > width {
            lines.push(String::new());
        }
        if let Some(line) = lines.last_mut() {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn krilla_date(ms: i64) -> DateTime {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    DateTime::new(u16::try_from(t.year()).unwrap_or(1970))
        .month(u8::from(t.month()))
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// The invoice as a Factur-X PDF/A-3 (EN 16931 profile).
pub fn pdf(r: &Rendering<'_>) -> Result<Vec<u8>, RenderError> {
    let inv = r.invoice;
    let internal = |what: &str| RenderError(what.to_owned());
    let configuration = ConfigurationBuilder::new()
        .with_archival_validator(Archival::A3_B)
        .with_version(PdfVersion::Pdf17)
        .finish()
        .map_err(|e| internal(&format!("PDF/A-3 configuration: {e:?}")))?;
    let mut document = Document::new_with(SerializeSettings {
        configuration,
        ..Default::default()
    });
    let sans = Font::new(SANS.into(), 0).ok_or_else(|| internal("font"))?;
    let mono = Font::new(MONO.into(), 0).ok_or_else(|| internal("font"))?;
    let s = sign(inv);
    let title = if inv.kind == "credit_note" {
        "AVOIR"
    } else {
        "FACTURE"
    };
    let doc = &inv.document;
    let cat = category(doc.vat);
    let mut pages = Pages {
        document: &mut document,
        sans,
        mono,
        lines: Vec::new(),
    };
    pages.push(false, 16.0, format!("{title} {}", inv.number));
    pages.push(false, 9.0, String::new());
    pages.push(
        false,
        9.0,
        format!(
            "Émise le {} — période du {} au {} — échéance le {}",
            date_fr(inv.issued_at_ms),
            date_fr(inv.period_start_ms),
            date_fr(inv.period_end_ms - 1),
            date_fr(inv.issued_at_ms + PAYMENT_DAYS * DAY_MS)
        ),
    );
    if let Some(number) = r.corrects_number {
        pages.push(false, 9.0, format!("Corrige la facture {number}"));
    }
    pages.push(false, 9.0, String::new());
    for (label, party) in [("Émetteur", &doc.issuer), ("Client", &doc.customer)] {
        let mut ids = Vec::new();
        if let Some(siren) = party.siren() {
            ids.push(format!("SIREN {siren}"));
        }
        if let Some(v) = &party.vat_number {
            ids.push(format!("TVA {v}"));
        }
        if let Some(siret) = &party.siret {
            ids.push(format!("SIRET {siret}"));
        }
        if ids.is_empty() {
            ids.push(format!("pays {}", party.country));
        }
        pages.push(
            false,
            9.0,
            format!("{label} : {} ({})", party.name, ids.join(", ")),
        );
        if let Some(a) = &party.identity.address {
            pages.push(false, 9.0, format!("    {}", a.one_line()));
        }
        if let Some(legal) = legal_mentions(party) {
            pages.push(false, 9.0, format!("    {legal}"));
        }
    }
    if let Some(c) = &doc.customer.identity.chorus_pro {
        if let Some(code) = &c.service_code {
            pages.push(false, 9.0, format!("Code service Chorus Pro : {code}"));
        }
        if let Some(number) = &c.engagement_number {
            pages.push(false, 9.0, format!("Numéro d'engagement : {number}"));
        }
    }
    pages.push(false, 9.0, String::new());
    let header = format!(
        "{:<44}{:>14}{:>9}{:>12}{:>14}",
        "Désignation", "Quantité", "Unité", "PU HT €", "Montant HT €"
    );
    pages.push(true, 8.0, header);
    pages.push(true, 8.0, "—rule—".into());
    for line in &doc.lines {
        let pieces = wrap(&line.description, 43);
        for (i, piece) in pieces.iter().enumerate() {
            let text = if i + 1 == pieces.len() {
                format!(
                    "{:<44}{:>14}{:>9}{:>12}{:>14}",
                    piece,
                    number_fr(line.quantity * s, 6),
                    unit_fr(line),
                    number_fr(line.unit_price, 6),
                    amount(line.amount * s).replace('.', ",")
                )
            } else {
                piece.clone()
            };
            pages.push(true, 8.0, text);
        }
    }
    pages.push(true, 8.0, "—rule—".into());
    let vat_label = match cat.rate {
        Some(rate) if cat.code == "S" => format!("TVA {} %", number_fr(rate, 2)),
        _ => "TVA".to_owned(),
    };
    for (label, value) in [
        ("Total HT".to_owned(), inv.net),
        (vat_label, inv.vat_amount),
        ("Total TTC".to_owned(), inv.gross),
    ] {
        pages.push(
            true,
            8.0,
            format!("{label:>79}{:>14}", amount(value * s).replace('.', ",")),
        );
    }
    pages.push(false, 9.0, String::new());
    for text in [cat.mention.to_owned()].into_iter().chain(notes(inv)) {
        for piece in wrap(&text, 100).into_iter().filter(|p| !p.is_empty()) {
            pages.push(false, 8.0, piece);
        }
    }
    pages.push(false, 8.0, "Facture électronique Factur-X (profil EN 16931) : les données de la facture sont jointes à ce PDF (factur-x.xml).".into());
    pages.finish()?;

    let issued = krilla_date(inv.issued_at_ms);
    document.set_metadata(
        Metadata::new()
            .title(format!("{title} {}", inv.number))
            .authors(vec![doc.issuer.name.clone()])
            .creator("Nuage".to_owned())
            .producer("Nuage (krilla)".to_owned())
            .language("fr-FR".to_owned())
            .creation_date(issued),
    );
    document
        .embed_file(EmbeddedFile {
            path: "factur-x.xml".to_owned(),
            mime_type: MimeType::new("text/xml"),
            description: Some("Factur-X invoice (EN 16931)".to_owned()),
            association_kind: AssociationKind::Alternative,
            data: cii_xml(r).into_bytes().into(),
            modification_date: Some(issued),
            compress: Some(true),
            location: None,
        })
        .ok_or_else(|| internal("the XML could not be attached"))?;
    let bytes = document
        .finish()
        .map_err(|e| internal(&format!("the PDF/A-3 was refused: {e:?}")))?;
    add_facturx_xmp(bytes).ok_or_else(|| internal("the PDF's metadata has an unexpected layout"))
}

const FX_NS: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";

/// The PDF/A extension schema that declares the `fx:` properties.
fn fx_schema() -> String {
    let property = |name: &str, description: &str| {
        format!(
            "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:name>{name}</pdfaProperty:name>\
             <pdfaProperty:valueType>Text</pdfaProperty:valueType>\
             <pdfaProperty:category>external</pdfaProperty:category>\
             <pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>"
        )
    };
    format!(
        "<rdf:li rdf:parseType=\"Resource\">\
         <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>\
         <pdfaSchema:namespaceURI>{FX_NS}</pdfaSchema:namespaceURI>\
         <pdfaSchema:prefix>fx</pdfaSchema:prefix>\
         <pdfaSchema:property><rdf:Seq>{}{}{}{}</rdf:Seq></pdfaSchema:property></rdf:li>",
        property("DocumentFileName", "The name of the embedded XML document"),
        property(
            "DocumentType",
            "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"
        ),
        property(
            "Version",
            "The actual version of the standard applying to the embedded XML document"
        ),
        property(
            "ConformanceLevel",
            "The conformance level of the embedded XML document"
        ),
    )
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn parse_usize(bytes: &[u8]) -> Option<usize> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Adds the Factur-X properties to the XMP metadata krilla wrote (an
/// uncompressed `/Type/Metadata/Subtype/XML` stream), then moves the
/// offsets of the classic cross-reference table that follow it.
fn add_facturx_xmp(pdf: Vec<u8>) -> Option<Vec<u8>> {
    const DICT_END: &[u8] = b"/Type/Metadata/Subtype/XML>>\nstream\n";
    let marker = find(&pdf, DICT_END, 0)?;
    let dict_start = pdf[..marker]
        .windows(b"<</Length ".len())
        .rposition(|w| w == b"<</Length ")?;
    let old_len = parse_usize(&pdf[dict_start + b"<</Length ".len()..marker])?;
    let data_start = marker + DICT_END.len();
    let data_end = data_start + old_len;
    if !pdf.get(data_end..)?.starts_with(b"\nendstream") {
        return None;
    }
    let xmp = std::str::from_utf8(&pdf[data_start..data_end]).ok()?;
    let bag_end = "</rdf:Bag></pdfaExtension:schemas>";
    if !xmp.contains(bag_end) || !xmp.contains("</rdf:RDF>") {
        return None;
    }
    let description = format!(
        "<rdf:Description rdf:about=\"\" xmlns:fx=\"{FX_NS}\">\
         <fx:DocumentType>INVOICE</fx:DocumentType>\
         <fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>\
         <fx:Version>1.0</fx:Version>\
         <fx:ConformanceLevel>EN 16931</fx:ConformanceLevel></rdf:Description>"
    );
    let xmp = xmp
        .replacen(bag_end, &format!("{}{bag_end}", fx_schema()), 1)
        .replacen("</rdf:RDF>", &format!("{description}</rdf:RDF>"), 1);

    let mut out = Vec::with_capacity(pdf.len() + 4096);
    out.extend_from_slice(&pdf[..dict_start]);
    out.extend_from_slice(format!("<</Length {}", xmp.len()).as_bytes());
    out.extend_from_slice(DICT_END);
    out.extend_from_slice(xmp.as_bytes());
    let moved_to = out.len();
    out.extend_from_slice(&pdf[data_end..]);
    let shift = |offset: usize| -> usize {
        if offset > dict_start {
            offset + moved_to - data_end
        } else {
            offset
        }
    };

    let startxref = out.windows(10).rposition(|w| w == b"startxref\n")? + 10;
    let startxref_end = find(&out, b"\n", startxref)?;
    let xref = shift(parse_usize(&out[startxref..startxref_end])?);
    if !out.get(xref..)?.starts_with(b"xref\n") {
        return None;
    }
    let mut at = xref + 5;
    while !out.get(at..)?.starts_with(b"trailer") {
        let eol = find(&out, b"\n", at)?;
        let count: usize = std::str::from_utf8(&out[at..eol])
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        at = eol + 1;
        for _ in 0..count {
            let entry = out.get(at..at + 20)?;
            if entry[17] == b'n' {
                let offset = shift(parse_usize(&entry[..10])?);
                out[at..at + 10].copy_from_slice(format!("{offset:010}").as_bytes());
            }
            at += 20;
        }
    }
    let mut fixed = out[..startxref].to_vec();
    fixed.extend_from_slice(xref.to_string().as_bytes());
    fixed.extend_from_slice(&out[startxref_end..]);
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_domain::billing::{InvoiceDocument, Party};

    /// An invoice (or a credit note) of two lines, at 20 % VAT.
    pub(crate) fn invoice(kind: &str) -> Invoice {
        let party = |name: &str, vat: Option<&str>| Party {
            id: format!("id-{name}"),
            name: name.into(),
            country: "FR".into(),
            siret: None,
            vat_number: vat.map(str::to_owned),
            identity: Default::default(),
        };
        let sign = if kind == "credit_note" { -1 } else { 1 };
        let line = |description: &str,
                    kind: LineKind,
                    quantity: &str,
                    price: &str,
                    amount: &str| InvoiceLine {
            description: description.into(),
            kind,
            offer: "Offre".into(),
            subscription_id: None,
            from_gb: None,
            quantity: quantity.parse::<Decimal>().expect("test value") * Decimal::from(sign),
            unit: "month".into(),
            unit_price: price.parse().expect("test value"),
            amount: amount.parse::<Decimal>().expect("test value") * Decimal::from(sign),
            adjustment: false,
        };
        Invoice {
            id: "01".into(),
            number: if kind == "credit_note" {
                "A-000002"
            } else {
                "F-000001"
            }
            .into(),
            kind: kind.into(),
            corrects_id: None,
            period: "2026-10".into(),
            period_start_ms: 1_790_812_800_000,
            period_end_ms: 1_793_491_200_000,
            currency: "EUR".into(),
            net: Decimal::from(sign) * Decimal::new(1675, 2),
            vat_amount: Decimal::from(sign) * Decimal::new(335, 2),
            gross: Decimal::from(sign) * Decimal::new(2010, 2),
            issued_at_ms: 1_793_577_600_000,
            document: InvoiceDocument {
                issuer: party("Nuage <&> Cie", Some("FR76411050487")),
                customer: party("Client « é »", None),
                vat: Vat::Standard {
                    rate: Decimal::from(20),
                },
                lines: vec![
                    line(
                        "Offre — Abonnement mensuel",
                        LineKind::MonthlyFee,
                        "0.4838709677419354838709677419",
                        "31",
                        "15.00",
                    ),
                    line("Offre — Stockage", LineKind::Storage, "3.5", "0.5", "1.75"),
                ],
                note: None,
            },
        }
    }

    /// Every in-use entry of the cross-reference table points at its object.
    fn xref_is_right(pdf: &[u8]) -> bool {
        let tail = |from: usize| String::from_utf8_lossy(&pdf[from..]).into_owned();
        let at = pdf
            .windows(10)
            .rposition(|w| w == b"startxref\n")
            .expect("startxref");
        let start: usize = tail(at + 10)
            .lines()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("offset");
        let table = tail(start);
        let mut lines = table.lines().skip(1);
        let header = lines.next().expect("subsection");
        let mut numbers = header
            .split_whitespace()
            .map(|n| n.parse::<usize>().expect("number"));
        let (first, count) = (
            numbers.next().expect("first"),
            numbers.next().expect("count"),
        );
        lines.take(count).enumerate().all(|(i, entry)| {
            let entry = entry.trim_end();
            if !entry.ends_with('n') {
                return true;
            }
            let offset: usize = entry[..10].parse().expect("offset");
            pdf[offset..].starts_with(format!("{} 0 obj", first + i).as_bytes())
        })
    }

    #[test]
    fn a_factur_x_is_a_pdf_a_3_carrying_its_xml_and_declaring_it() {
        for kind in ["invoice", "credit_note"] {
            let inv = invoice(kind);
            let rendering = Rendering {
                invoice: &inv,
                corrects_number: (kind == "credit_note").then_some("F-000001"),
            };
            let pdf = pdf(&rendering).expect("rendered");
            if let Ok(dir) = std::env::var("NUAGE_KEEP_FACTURX") {
                std::fs::write(format!("{dir}/{kind}.pdf"), &pdf).expect("kept");
            }
            let text = String::from_utf8_lossy(&pdf);
            assert!(text.starts_with("%PDF-1.7"));
            assert!(
                text.contains("/AFRelationship/Alternative"),
                "the XML is the invoice's alternative form"
            );
            assert!(text.contains("factur-x.xml"));
            assert!(text.contains("<pdfaid:part>3</pdfaid:part>"));
            assert!(text.contains("<fx:DocumentType>INVOICE</fx:DocumentType>"));
            assert!(text.contains("<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>"));
            assert!(text.contains("<pdfaSchema:prefix>fx</pdfaSchema:prefix>"));
            assert!(xref_is_right(&pdf), "the metadata edit kept every offset");
            let xml = cii_xml(&rendering);
            // Escaped, and a credit note written positive under type 381.
            assert!(xml.contains("Nuage &lt;&amp;&gt; Cie"));
            if kind == "credit_note" {
                assert!(xml.contains("<ram:TypeCode>381</ram:TypeCode>"));
                assert!(xml.contains("<ram:GrandTotalAmount>20.10</ram:GrandTotalAmount>"));
                assert!(xml.contains("<ram:IssuerAssignedID>F-000001</ram:IssuerAssignedID>"));
            } else {
                assert!(xml.contains("<ram:BilledQuantity unitCode=\"MON\">0.4838709677419354838709677419</ram:BilledQuantity>"));
            }
        }
    }
}
