//! The open data as CSV: one table per file, one row per published
//! organisation, service or offer, lists joined with `;`.

use nuage_market::OpenData;

/// The CSV of one table: `organisations`, `services` or `offers`.
/// Writes a record of names and statements that anyone can publish: cells a
/// spreadsheet would run as formulas are kept as text.
fn write_safe<const N: usize>(
    w: &mut csv::Writer<Vec<u8>>,
    cells: [String; N],
) -> Result<(), csv::Error> {
    w.write_record(
        cells
            .iter()
            .map(|c| nuage_domain::export::spreadsheet_safe(c).into_owned()),
    )
}

pub fn to_csv(data: &OpenData, table: &str) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let join = |items: Vec<String>| items.join(";");
    match table {
        "organisations" => {
            w.write_record([
                "id",
                "name",
                "legal_name",
                "siren",
                "headquarters_country",
                "provider",
                "publisher",
                "eu_capital_share_percent",
                "controlled_by",
                "extra_eu_exposure",
                "extra_eu_statement",
                "certifications",
                "contact_email",
                "website",
            ])?;
            for o in &data.organisations {
                let p = &o.profile;
                write_safe(
                    &mut w,
                    [
                        o.id.clone(),
                        o.name.clone(),
                        p.legal_name.clone(),
                        p.siren.clone().unwrap_or_default(),
                        p.headquarters_country.clone(),
                        o.is_provider.to_string(),
                        o.is_publisher.to_string(),
                        p.capital.eu_share_percent.to_string(),
                        p.capital.controlled_by.clone(),
                        p.extra_eu_exposure.exposed.to_string(),
                        p.extra_eu_exposure.statement.clone(),
                        join(
                            p.certifications
                                .iter()
                                .map(|c| {
                                    format!(
                                        "{} ({}, {} to {})",
                                        c.scheme, c.issuer, c.valid_from, c.valid_until
                                    )
                                })
                                .collect(),
                        ),
                        p.contact_email.clone(),
                        p.website.clone().unwrap_or_default(),
                    ],
                )?;
            }
        }
        "services" => {
            w.write_record([
                "id",
                "name",
                "publisher_id",
                "publisher",
                "category",
                "licence",
                "free_software",
                "deployments",
                "data_locations",
                "used_by",
                "supported_by",
                "website",
            ])?;
            for s in &data.services {
                write_safe(
                    &mut w,
                    [
                        s.id.clone(),
                        s.sheet.name.clone(),
                        s.publisher.id.clone(),
                        s.publisher.name.clone(),
                        s.sheet.category.to_string(),
                        s.sheet.licence.clone(),
                        s.free_software.to_string(),
                        join(s.sheet.deployments.iter().map(|d| d.to_string()).collect()),
                        join(s.sheet.data_locations.clone()),
                        join(s.used_by.iter().map(|o| o.name.clone()).collect()),
                        join(s.supported_by.iter().map(|o| o.name.clone()).collect()),
                        s.sheet.website.clone().unwrap_or_default(),
                    ],
                )?;
            }
        }
        _ => {
            w.write_record([
                "id",
                "name",
                "provider_id",
                "provider",
                "category",
                "regions",
                "jurisdictions",
                "certifications",
                "capacity_gb",
                "availability_percent",
                "monthly_fee_eur",
                "included_gb",
                "per_gb_month_eur",
                "per_1000_class_a_eur",
                "per_1000_class_b_eur",
                "per_gb_egress_eur",
                "commitment_months",
                "reference_monthly_price_eur",
                "export_formats",
                "notice_days",
            ])?;
            for o in &data.offers {
                let s = &o.sheet;
                let p = &s.price;
                write_safe(
                    &mut w,
                    [
                        o.id.clone(),
                        s.name.clone(),
                        o.provider.id.clone(),
                        o.provider.name.clone(),
                        s.category.to_string(),
                        join(
                            o.regions
                                .iter()
                                .map(|r| format!("{} ({})", r.name, r.location))
                                .collect(),
                        ),
                        join(o.regions.iter().map(|r| r.jurisdiction.clone()).collect()),
                        join(o.certifications.iter().map(|c| c.scheme.clone()).collect()),
                        s.capacity_gb.map(|c| c.to_string()).unwrap_or_default(),
                        s.sla.availability_percent.to_string(),
                        p.monthly_fee.to_string(),
                        p.included_gb.to_string(),
                        p.per_gb_month.to_string(),
                        p.per_1k_class_a.to_string(),
                        p.per_1k_class_b.to_string(),
                        p.per_gb_egress.to_string(),
                        p.commitment_months.to_string(),
                        o.reference_monthly_price.to_string(),
                        join(s.reversibility.export_formats.clone()),
                        s.reversibility.notice_days.to_string(),
                    ],
                )?;
            }
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
