//! The drafting form: a call's draft typed, checked and saved; its page.

use super::*;

// --- the drafting form --------------------------------------------------------------------

/// A lot as typed in the form.
#[derive(Debug, Clone, Default)]
pub struct LotValues {
    pub title: String,
    pub description: String,
    pub category: String,
    pub stored_gb: String,
    pub class_a: String,
    pub class_b: String,
    pub egress_gb: String,
    pub regions: String,
    pub jurisdictions: String,
    pub certifications: String,
    pub min_availability: String,
    pub min_capacity: String,
    pub max_price: String,
    pub formats: String,
}

/// A criterion as typed in the form.
#[derive(Debug, Clone, Default)]
pub struct CriterionValues {
    pub name: String,
    pub kind: String,
    pub weight: String,
    pub scale: String,
    pub description: String,
}

/// The drafting form's values, as typed (to show them again with an error).
#[derive(Debug, Clone, Default)]
pub struct DraftValues {
    pub title: String,
    pub description: String,
    pub cpv: String,
    pub estimated_value: String,
    pub place_code: String,
    pub place_kind: String,
    pub duration_months: String,
    pub price_form: String,
    pub ccag: String,
    pub procedure: String,
    /// `YYYY-MM-DDTHH:MM` in UTC; the browser shows and sends local time
    /// through `deadline_ms`.
    pub deadline: String,
    pub deadline_ms: String,
    pub questions_until: String,
    pub questions_until_ms: String,
    /// What an amendment changes, in words.
    pub summary: String,
    pub lots: Vec<LotValues>,
    pub criteria: Vec<CriterionValues>,
}

/// A serde enum's wire name.
pub(super) fn wire<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A serde enum from its wire name.
pub(super) fn from_wire<T: DeserializeOwned>(
    value: &str,
    field: &'static str,
) -> Result<T, DomainError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| DomainError::invalid(field, format!("{value:?} is not one of the choices")))
}

/// `YYYY-MM-DDTHH:MM:SS`, in UTC.
pub(super) fn local_input(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_default()
}

/// An instant from the form: the browser's `…_ms` when it sent one, else
/// the typed date read as UTC.
pub(super) fn instant(
    text: &str,
    ms: &str,
    field: &'static str,
) -> Result<Option<i64>, DomainError> {
    if !ms.is_empty() {
        return number(ms, field).map(Some);
    }
    if text.is_empty() {
        return Ok(None);
    }
    let minutes = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &minutes))
        .map(|d| Some((d.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| DomainError::invalid(field, "a date and time, as 2027-01-31T12:00"))
}

pub(super) fn optional<T>(
    value: &str,
    read: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<Option<T>, DomainError> {
    if value.is_empty() {
        Ok(None)
    } else {
        read(value).map(Some)
    }
}

impl DraftValues {
    /// What a new draft starts with.
    fn new_draft() -> Self {
        let mut v = Self {
            cpv: "72317000-0".into(),
            place_kind: "country".into(),
            place_code: "FR".into(),
            duration_months: "36".into(),
            price_form: "unit".into(),
            ccag: "information_technology".into(),
            procedure: "adapted".into(),
            lots: vec![LotValues::default(); LOT_ROWS],
            criteria: vec![CriterionValues::default(); CRITERION_ROWS],
            ..Self::default()
        };
        v.lots[0].category = "storage".into();
        v.criteria[0] = CriterionValues {
            kind: "price".into(),
            weight: "60".into(),
            ..CriterionValues::default()
        };
        v.criteria[1] = CriterionValues {
            kind: "technical".into(),
            weight: "40".into(),
            scale: "10".into(),
            ..CriterionValues::default()
        };
        v
    }

    fn from_fields(f: &Pairs) -> Self {
        Self {
            title: field(f, "title"),
            description: field(f, "description"),
            cpv: field(f, "cpv"),
            estimated_value: field(f, "estimated_value"),
            place_code: field(f, "place_code"),
            place_kind: field(f, "place_kind"),
            duration_months: field(f, "duration_months"),
            price_form: field(f, "price_form"),
            ccag: field(f, "ccag"),
            procedure: field(f, "procedure"),
            deadline: field(f, "deadline"),
            deadline_ms: field(f, "deadline_ms"),
            questions_until: field(f, "questions_until"),
            questions_until_ms: field(f, "questions_until_ms"),
            summary: field(f, "summary"),
            lots: (1..=LOT_ROWS)
                .map(|n| {
                    let g = |name: &str| field(f, &format!("lot{n}_{name}"));
                    LotValues {
                        title: g("title"),
                        description: g("description"),
                        category: g("category"),
                        stored_gb: g("stored_gb"),
                        class_a: g("class_a"),
                        class_b: g("class_b"),
                        egress_gb: g("egress_gb"),
                        regions: g("regions"),
                        jurisdictions: g("jurisdictions"),
                        certifications: g("certifications"),
                        min_availability: g("min_availability"),
                        min_capacity: g("min_capacity"),
                        max_price: g("max_price"),
                        formats: g("formats"),
                    }
                })
                .collect(),
            criteria: (1..=CRITERION_ROWS)
                .map(|n| {
                    let g = |name: &str| field(f, &format!("crit{n}_{name}"));
                    CriterionValues {
                        name: g("name"),
                        kind: g("kind"),
                        weight: g("weight"),
                        scale: g("scale"),
                        description: g("description"),
                    }
                })
                .collect(),
        }
    }

    fn from_spec(spec: &TenderSpec) -> Self {
        let mut lots: Vec<LotValues> = spec
            .lots
            .iter()
            .map(|l| {
                let mut v = LotValues {
                    title: l.title.clone(),
                    description: l.description.clone(),
                    category: l.category.as_str().to_owned(),
                    stored_gb: l.usage_profile.stored_gb.to_string(),
                    class_a: l.usage_profile.class_a_requests.to_string(),
                    class_b: l.usage_profile.class_b_requests.to_string(),
                    egress_gb: l.usage_profile.egress_gb.to_string(),
                    ..LotValues::default()
                };
                for r in &l.requirements {
                    match r {
                        Requirement::DataLocation { regions } => v.regions = regions.join(", "),
                        Requirement::Jurisdiction { allowed } => {
                            v.jurisdictions = allowed.join(", ");
                        }
                        Requirement::Certifications { required } => {
                            v.certifications = required.join(", ");
                        }
                        Requirement::MinAvailability { percent } => {
                            v.min_availability = percent.to_string();
                        }
                        Requirement::MinCapacity { gb } => v.min_capacity = gb.to_string(),
                        Requirement::MaxPrice { monthly_eur } => {
                            v.max_price = monthly_eur.to_string();
                        }
                        Requirement::ReversibilityFormats { required } => {
                            v.formats = required.join(", ");
                        }
                    }
                }
                v
            })
            .collect();
        lots.resize(lots.len().max(LOT_ROWS), LotValues::default());
        let mut criteria: Vec<CriterionValues> = spec
            .criteria
            .iter()
            .map(|c| CriterionValues {
                name: c.name.clone(),
                kind: wire(&c.kind),
                weight: c.weight.to_string(),
                scale: c.scale_max.map(|s| s.to_string()).unwrap_or_default(),
                description: c.description.clone(),
            })
            .collect();
        criteria.resize(
            criteria.len().max(CRITERION_ROWS),
            CriterionValues::default(),
        );
        Self {
            title: spec.title.clone(),
            description: spec.description.clone(),
            cpv: spec.cpv.clone(),
            estimated_value: spec.estimated_value.to_string(),
            place_code: spec.place.code.clone(),
            place_kind: wire(&spec.place.kind),
            duration_months: spec.duration_months.to_string(),
            price_form: wire(&spec.price_form),
            ccag: wire(&spec.ccag),
            procedure: wire(&spec.procedure),
            deadline: local_input(spec.deadline_ms),
            deadline_ms: spec.deadline_ms.to_string(),
            questions_until: spec.questions_until_ms.map(local_input).unwrap_or_default(),
            questions_until_ms: spec
                .questions_until_ms
                .map(|ms| ms.to_string())
                .unwrap_or_default(),
            summary: String::new(),
            lots,
            criteria,
        }
    }

    /// The call as typed; the service checks the rest.
    fn to_spec(&self) -> Result<TenderSpec, DomainError> {
        let mut lots = Vec::new();
        for l in self.lots.iter().filter(|l| !l.title.is_empty()) {
            let mut requirements = Vec::new();
            let regions = list(&l.regions);
            if !regions.is_empty() {
                requirements.push(Requirement::DataLocation { regions });
            }
            let allowed = list(&l.jurisdictions);
            if !allowed.is_empty() {
                requirements.push(Requirement::Jurisdiction { allowed });
            }
            let required = list(&l.certifications);
            if !required.is_empty() {
                requirements.push(Requirement::Certifications { required });
            }
            if let Some(percent) = optional(&l.min_availability, |v| decimal(v, "requirements"))? {
                requirements.push(Requirement::MinAvailability { percent });
            }
            if let Some(gb) = optional(&l.min_capacity, |v| number(v, "requirements"))? {
                requirements.push(Requirement::MinCapacity { gb });
            }
            if let Some(monthly_eur) = optional(&l.max_price, |v| decimal(v, "requirements"))? {
                requirements.push(Requirement::MaxPrice { monthly_eur });
            }
            let required = list(&l.formats);
            if !required.is_empty() {
                requirements.push(Requirement::ReversibilityFormats { required });
            }
            let zero = |v: &str| {
                if v.is_empty() {
                    "0".to_owned()
                } else {
                    v.to_owned()
                }
            };
            lots.push(Lot {
                title: l.title.clone(),
                description: l.description.clone(),
                category: Category::parse(&l.category)?,
                usage_profile: UsageProfile {
                    stored_gb: decimal(&zero(&l.stored_gb), "usage_profile")?,
                    class_a_requests: number(&zero(&l.class_a), "usage_profile")?,
                    class_b_requests: number(&zero(&l.class_b), "usage_profile")?,
                    egress_gb: decimal(&zero(&l.egress_gb), "usage_profile")?,
                },
                requirements,
            });
        }
        let mut criteria = Vec::new();
        for c in self.criteria.iter().filter(|c| !c.name.is_empty()) {
            criteria.push(Criterion {
                name: c.name.clone(),
                kind: from_wire(&c.kind, "criteria")?,
                weight: number(&c.weight, "criteria")?,
                scale_max: optional(&c.scale, |v| number(v, "criteria"))?,
                description: c.description.clone(),
            });
        }
        Ok(TenderSpec {
            title: self.title.clone(),
            description: self.description.clone(),
            cpv: self.cpv.clone(),
            estimated_value: decimal(&self.estimated_value, "estimated_value")?,
            place: Place {
                code: self.place_code.clone(),
                kind: from_wire(&self.place_kind, "place")?,
            },
            duration_months: number(&self.duration_months, "duration_months")?,
            price_form: from_wire(&self.price_form, "price_form")?,
            ccag: from_wire(&self.ccag, "ccag")?,
            procedure: from_wire(&self.procedure, "procedure")?,
            deadline_ms: instant(&self.deadline, &self.deadline_ms, "deadline_ms")?
                .ok_or_else(|| DomainError::invalid("deadline_ms", "give the deadline for bids"))?,
            questions_until_ms: instant(
                &self.questions_until,
                &self.questions_until_ms,
                "questions_until_ms",
            )?,
            lots,
            criteria,
        })
    }
}

pub struct LotRow {
    pub n: usize,
    pub v: LotValues,
    pub categories: Vec<Pick>,
}

pub struct CriterionRow {
    pub n: usize,
    pub v: CriterionValues,
    pub kinds: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "tenders/form.html")]
pub struct FormPage {
    pub c: Chrome,
    pub csrf: String,
    pub action: String,
    /// An amendment of a published call (asks what changed).
    pub amending: bool,
    pub org_name: String,
    pub v: DraftValues,
    pub lots: Vec<LotRow>,
    pub criteria: Vec<CriterionRow>,
    pub place_kinds: Vec<Choice>,
    pub price_forms: Vec<Choice>,
    pub ccags: Vec<Choice>,
    pub procedures: Vec<Choice>,
    pub error: FormAlert,
}

pub(super) fn choices(
    options: &'static [(&'static str, &'static str)],
    current: &str,
) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: *value == current,
        })
        .collect()
}

pub(super) fn form_page(
    ctx: &Ctx,
    session: &Session,
    action: String,
    amending: bool,
    v: DraftValues,
    error: FormAlert,
) -> Result<Response, PageError> {
    let t: &Texts = ctx.t;
    let d: &DeskTexts = t.td;
    let org_name = session
        .current_org
        .as_ref()
        .map(|m| m.org_name.clone())
        .unwrap_or_default();
    let page = FormPage {
        c: ctx.chrome("tenders"),
        csrf: session.csrf_token.clone(),
        action,
        amending,
        org_name,
        lots: v
            .lots
            .iter()
            .enumerate()
            .map(|(i, l)| LotRow {
                n: i + 1,
                categories: Category::ALL
                    .iter()
                    .map(|c| Pick {
                        value: c.as_str().into(),
                        label: t
                            .m
                            .label(t.m.categories, c.as_str())
                            .unwrap_or_default()
                            .into(),
                        checked: l.category == c.as_str(),
                    })
                    .collect(),
                v: l.clone(),
            })
            .collect(),
        criteria: v
            .criteria
            .iter()
            .enumerate()
            .map(|(i, c)| CriterionRow {
                n: i + 1,
                kinds: choices(d.criterion_kinds, &c.kind),
                v: c.clone(),
            })
            .collect(),
        place_kinds: choices(d.place_kinds, &v.place_kind),
        price_forms: choices(d.price_forms, &v.price_form),
        ccags: choices(d.ccags, &v.ccag),
        procedures: choices(d.procedures, &v.procedure),
        v,
        error,
    };
    let status = page.error.status_or(StatusCode::OK);
    ctx.page(status, &page)
}

/// The organisation the member acts for (the one chosen in the console).
pub(super) fn session_org(session: &Session) -> Result<OrgId, PageError> {
    match current_org(session)? {
        Some((org, _)) => Ok(org),
        None => Err(PageError::NotFound),
    }
}

pub async fn new_form(ctx: Ctx) -> Result<Response, PageError> {
    let session = ctx.user()?;
    session_org(session)?;
    form_page(
        &ctx,
        session,
        "/tenders/new".into(),
        false,
        DraftValues::new_draft(),
        FormAlert::none(),
    )
}

pub async fn create(
    Extension(procurement): Extension<Procurement>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let session = ctx.user()?;
    let org = session_org(session)?;
    let values = DraftValues::from_fields(&f);
    let outcome = match values.to_spec() {
        Ok(spec) => {
            procurement
                .create_tender(&session.principal(), &ctx.meta, org, spec)
                .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(view) => Ok(back_to(&view.id, "tender_saved")),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            form_page(
                &ctx,
                session,
                "/tenders/new".into(),
                false,
                values,
                error.into(),
            )
        }
    }
}

pub async fn edit_form(
    ctx: Ctx,
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let v = procurement.tender(Some(&session.principal()), &id).await?;
    form_page(
        &ctx,
        session,
        format!("/tenders/{id}/edit"),
        v.state != "draft",
        DraftValues::from_spec(&v.spec),
        FormAlert::none(),
    )
}

/// Saves a draft, or amends a published call.
pub async fn save(
    Extension(procurement): Extension<Procurement>,
    Path(id): Path<String>,
    Posted { ctx, form: f, .. }: Posted<Pairs>,
) -> Result<Response, PageError> {
    let id = tender_id(&id)?;
    let session = ctx.user()?;
    let who = session.principal();
    let amending = procurement.tender(Some(&who), &id).await?.state != "draft";
    let values = DraftValues::from_fields(&f);
    let outcome = match values.to_spec() {
        Ok(spec) if amending => procurement
            .amend_tender(&who, &ctx.meta, &id, spec, &values.summary)
            .await
            .map(|_| "tender_amended"),
        Ok(spec) => procurement
            .update_tender(&who, &ctx.meta, &id, spec)
            .await
            .map(|_| "tender_saved"),
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(notice) => Ok(back_to(&id, notice)),
        Err(e) => {
            let error = FormError::from_service(ctx.t, e)?;
            form_page(
                &ctx,
                session,
                format!("/tenders/{id}/edit"),
                amending,
                values,
                error.into(),
            )
        }
    }
}
