//! Billing runs: a month billed once, resumable, on schedule or by an operator; the drafts of its invoices and their issue in batches.

use super::*;

/// A hold's reasons.
const INCOMPLETE: &str = "incomplete";
const ZERO: &str = "zero";

/// What a billing run did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    /// `YYYY-MM`.
    pub period: String,
    pub period_start_ms: i64,
    pub period_end_ms: i64,
    /// Records written before this instant are billed by this run or an
    /// earlier one.
    pub cut_at_ms: i64,
    /// Issued by this call (0 when the run was already complete).
    pub issued_now: usize,
    /// Issued by the run in all.
    pub invoices: usize,
    #[schema(value_type = String)]
    pub net: Decimal,
    #[schema(value_type = String)]
    pub gross: Decimal,
    pub completed_at_ms: i64,
    /// Invoices not issued, and no number taken, while a party's legal
    /// identity lacks what they must say; the billing job issues each once
    /// it is filled in.
    pub held: Vec<Held>,
    /// Customers whose month came to 0.00: a statement, no invoice.
    pub statements: usize,
}

/// An invoice a run holds back: who, and what is missing of whom.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Held {
    pub customer_id: String,
    pub issuer_id: String,
    pub missing: MissingOf,
}

/// What each party of a held invoice lacks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MissingOf {
    pub issuer: Vec<Missing>,
    pub customer: Vec<Missing>,
}

/// What a run makes of a customer's and an issuer's month.
enum Outcome {
    Invoice(Box<NewInvoice>),
    Hold(HoldRow),
}

impl Billing {
    /// Bills `period` (a month that is over), or resumes its run if it was
    /// interrupted; a period already billed returns what its run did.
    /// Operators only.
    pub async fn run_billing(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        period: Period,
    ) -> ServiceResult<RunSummary> {
        if !who.is_operator() {
            return Err(ServiceError::Forbidden("billing is the operator's".into()));
        }
        let now = self.now_ms();
        if period.end_ms() > now {
            return Err(DomainError::invalid(
                "period",
                format!(
                    "{} is not over: a period is billed once it has ended",
                    period_label(period.start_ms())
                ),
            )
            .into());
        }
        let run = self.start_run(who, meta, period, now).await?;
        // Held invoices whose parties are complete now are issued first, so
        // that running a month again (with `billing.automatic` off) issues
        // them too.
        self.release_holds().await?;
        let mut issued_now = 0;
        if run.completed_at.is_none() {
            let scope = Scope {
                cut: run.cut_at,
                org: "",
                scale: Decimal::ONE,
            };
            let drafts = self.drafts(&scope, period).await?;
            let mut conn = self.platform().db().acquire().await?;
            let mut done: HashSet<(String, String)> = repo::invoices_of_run(&mut conn, &run.id)
                .await?
                .into_iter()
                .map(|i| (i.invoice.customer_id, i.invoice.issuer_id))
                .collect();
            done.extend(
                repo::holds_of_run(&mut conn, &run.id)
                    .await?
                    .into_iter()
                    .filter(|h| h.reason == ZERO)
                    .map(|h| (h.customer_id, h.issuer_id)),
            );
            drop(conn);
            let mut pending = drafts
                .into_iter()
                .filter(|(parties, _)| !done.contains(parties))
                .peekable();
            while pending.peek().is_some() {
                let batch: Vec<_> = pending.by_ref().take(ISSUE_BATCH).collect();
                let n = batch.len();
                issued_now += self.issue_batch(&run, period, batch).await?;
                for _ in 0..n {
                    self.platform().probe("billing.invoice");
                }
            }
        }
        let mut tx = self.platform().db().begin_write().await?;
        let run = repo::run_starting(&mut tx, period.start_ms())
            .await?
            .ok_or(ServiceError::NotFound("billing run"))?;
        let issued = repo::invoices_of_run(&mut tx, &run.id).await?;
        let holds = repo::holds_of_run(&mut tx, &run.id).await?;
        let statements = holds.iter().filter(|h| h.reason == ZERO).count();
        let held = holds
            .iter()
            .filter(|h| h.reason == INCOMPLETE && h.released_at.is_none())
            .map(|h| {
                Ok(Held {
                    customer_id: h.customer_id.clone(),
                    issuer_id: h.issuer_id.clone(),
                    missing: parse_doc(&h.missing)?,
                })
            })
            .collect::<ServiceResult<Vec<_>>>()?;
        let sum = |f: fn(&NewInvoice) -> &str| -> ServiceResult<Decimal> {
            issued.iter().map(|i| decimal(f(&i.invoice))).sum()
        };
        let (net, gross) = (sum(|i| &i.net)?, sum(|i| &i.gross)?);
        let completed_at = match run.completed_at {
            Some(at) => {
                drop(tx);
                at
            }
            None => {
                let at = self.now_ms();
                repo::complete_run(&mut tx, &run.id, at).await?;
                self.platform()
                    .commit_audited(
                        tx,
                        who,
                        meta,
                        AuditEvent::new("billing.run.complete", format!("billing_run:{}", run.id))
                            .details(serde_json::json!({
                                "period": period_label(period.start_ms()),
                                "invoices": issued.len(), "net": net, "gross": gross,
                                "held": held.len(), "statements": statements,
                            })),
                    )
                    .await?;
                at
            }
        };
        Ok(RunSummary {
            period: period_label(period.start_ms()),
            period_start_ms: period.start_ms(),
            period_end_ms: period.end_ms(),
            cut_at_ms: run.cut_at,
            issued_now,
            invoices: issued.len(),
            net,
            gross,
            completed_at_ms: completed_at,
            held,
            statements,
        })
    }

    /// Bills what is due, on schedule: an interrupted run first, else the
    /// month after the last run (or, on a platform never billed, the last
    /// month) once it has been over for `SCHEDULE_GRACE_MS`. One month per
    /// call; nodes running it at once share the work (see `run_billing`).
    pub async fn bill_due(&self) -> ServiceResult<Option<RunSummary>> {
        let released = self.release_holds().await?;
        if released > 0 {
            tracing::info!(released, "held invoices issued, their parties now complete");
        }
        let now = self.now_ms();
        let mut conn = self.platform().db().acquire().await?;
        let last = repo::last_run(&mut conn).await?;
        drop(conn);
        let period = match last {
            Some(run) if run.completed_at.is_none() => {
                Period::new(run.period_start, run.period_end)?
            }
            Some(run) => {
                let Some(next) = month_containing(run.period_end) else {
                    return Ok(None);
                };
                next
            }
            None => {
                let Some(previous) = month_before(now) else {
                    return Ok(None);
                };
                previous
            }
        };
        if period.end_ms() + SCHEDULE_GRACE_MS > now {
            return Ok(None);
        }
        let meta = RequestMeta {
            source: "schedule".into(),
        };
        self.run_billing(&Principal::System, &meta, period)
            .await
            .map(Some)
    }

    /// The period's run: the one recorded, or a new one after the last.
    async fn start_run(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        period: Period,
        now: i64,
    ) -> ServiceResult<RunRow> {
        let mut tx = self.platform().db().begin_write().await?;
        if let Some(run) = repo::run_starting(&mut tx, period.start_ms()).await? {
            return Ok(run);
        }
        if let Some(last) = repo::last_run(&mut tx).await? {
            // Started beside this call a moment ago (PostgreSQL sees it now).
            if last.period_start == period.start_ms() {
                return Ok(last);
            }
            if last.completed_at.is_none() {
                return Err(ServiceError::Conflict(format!(
                    "the run of {} was interrupted: run it again to finish it first",
                    period_label(last.period_start)
                )));
            }
            if last.period_end != period.start_ms() {
                return Err(ServiceError::Conflict(format!(
                    "billing runs follow each other: the next period to bill is {}",
                    period_label(last.period_end)
                )));
            }
        }
        let run = RunRow {
            id: uuid::Uuid::now_v7().to_string(),
            period_start: period.start_ms(),
            period_end: period.end_ms(),
            cut_at: now,
            started_at: now,
            completed_at: None,
        };
        match repo::insert_run(&mut tx, &run).await {
            // Another node (or operator) started it a moment ago: resume it.
            Err(nuage_db::DbError::Conflict) => {
                drop(tx);
                let mut conn = self.platform().db().acquire().await?;
                return repo::run_starting(&mut conn, period.start_ms())
                    .await?
                    .ok_or(ServiceError::Conflict(
                        "the billing run changed; try again".into(),
                    ));
            }
            other => other?,
        }
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("billing.run.start", format!("billing_run:{}", run.id)).details(
                    serde_json::json!({"period": period_label(period.start_ms()), "cut_at_ms": now}),
                ),
            )
            .await?;
        Ok(run)
    }

    /// The invoices of a run, by (customer, issuer): everything they say
    /// comes from what the run's cut fixes, so a resumed run computes the
    /// same ones.
    pub(super) async fn drafts(
        &self,
        scope: &Scope<'_>,
        period: Period,
    ) -> ServiceResult<BTreeMap<(String, String), Draft>> {
        let mut conn = self.platform().db().acquire().await?;
        let previous = repo::run_ending(&mut conn, period.start_ms()).await?;
        let late_from = previous.as_ref().map_or(i64::MIN, |p| p.cut_at);
        let late = repo::late_usage(
            &mut conn,
            period.start_ms(),
            late_from,
            scope.cut,
            scope.org,
        )
        .await?;
        let since = late
            .iter()
            .map(|u| u.hour)
            .min()
            .unwrap_or(period.start_ms())
            .min(period.start_ms());
        let subs = subscriptions(
            repo::subscription_histories(&mut conn, since, period.end_ms(), scope.org).await?,
        )?;
        // Which subscriptions hold each (buyer, bucket).
        let mut holders: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
        for (i, s) in subs.iter().enumerate() {
            for b in &s.buckets {
                holders
                    .entry((s.buyer.as_str(), b.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        let payer_at = |org: &str, bucket: &str, at: i64| -> Payer {
            holders
                .get(&(org, bucket))
                .and_then(|held| {
                    held.iter()
                        .copied()
                        .filter(|&i| subs[i].in_force.covers(at))
                        .max_by_key(|&i| subs[i].in_force.start_ms)
                })
                .map_or(Payer::PayAsYouGo, Payer::Subscription)
        };
        // The instants a bucket's payer may change within the period.
        let boundaries = |org: &str, bucket: &str| -> Vec<i64> {
            let mut at: Vec<i64> = holders
                .get(&(org, bucket))
                .into_iter()
                .flatten()
                .flat_map(|&i| [Some(subs[i].in_force.start_ms), subs[i].in_force.end_ms])
                .flatten()
                .filter(|&t| t > period.start_ms() && t < period.end_ms())
                .collect();
            at.sort_unstable();
            at.dedup();
            at
        };

        // (payer, customer) → usage of the period, and of earlier ones.
        let mut metered: BTreeMap<(Payer, String), Metered> = BTreeMap::new();
        let mut adjusted: BTreeMap<(Payer, String), Metered> = BTreeMap::new();

        // Storage, split where the payer changes.
        // (organisation, bucket) → bytes at the start, then changes.
        type Stored = BTreeMap<(String, String), (i64, Vec<(i64, i64)>)>;
        let mut stored: Stored = repo::bytes_per_bucket_at(&mut conn, period.start_ms(), scope.org)
            .await?
            .into_iter()
            .map(|(org, bucket, bytes)| ((org, bucket), (bytes, Vec::new())))
            .collect();
        for (org, bucket, at, delta) in
            repo::storage_changes_between(&mut conn, period.start_ms(), period.end_ms(), scope.org)
                .await?
        {
            stored.entry((org, bucket)).or_default().1.push((at, delta));
        }
        for ((org, bucket), (mut bytes, changes)) in stored {
            let mut cuts = boundaries(&org, &bucket);
            cuts.push(period.end_ms());
            let mut from = period.start_ms();
            let mut next = 0;
            for to in cuts {
                let part = Period::new(from, to)?;
                let end = next + changes[next..].partition_point(|c| c.0 < to);
                let byte_ms = storage_byte_ms(bytes, &changes[next..end], part)?;
                bytes += changes[next..end].iter().map(|c| c.1).sum::<i64>();
                next = end;
                if byte_ms > 0 {
                    metered
                        .entry((payer_at(&org, &bucket, from), org.clone()))
                        .or_default()
                        .byte_ms += byte_ms;
                }
                from = to;
            }
        }

        // Requests and egress: whole buckets where one payer held the
        // period, hour by hour where it changed.
        for u in repo::usage_per_bucket(
            &mut conn,
            period.start_ms(),
            period.end_ms(),
            scope.cut,
            scope.org,
        )
        .await?
        {
            if boundaries(&u.org_id, &u.bucket).is_empty() {
                let payer = payer_at(&u.org_id, &u.bucket, period.start_ms());
                metered
                    .entry((payer, u.org_id.clone()))
                    .or_default()
                    .add(&u);
                continue;
            }
            for h in repo::bucket_usage_per_hour(
                &mut conn,
                &u.org_id,
                &u.bucket,
                period.start_ms(),
                period.end_ms(),
                scope.cut,
            )
            .await?
            {
                let payer = payer_at(&h.org_id, &h.bucket, h.hour + HOUR_MS - 1);
                metered
                    .entry((payer, h.org_id.clone()))
                    .or_default()
                    .add(&h);
            }
        }
        for h in &late {
            let payer = payer_at(&h.org_id, &h.bucket, h.hour + HOUR_MS - 1);
            adjusted
                .entry((payer, h.org_id.clone()))
                .or_default()
                .add(h);
        }

        // Rate: every subscription in force during the period, and every
        // payer with usage.
        let mut drafts: BTreeMap<(String, String), Draft> = BTreeMap::new();
        let house = self.house().to_string();
        let payg = &self.inner.settings.pay_as_you_go;
        let mut payers: Vec<(Payer, String)> =
            metered.keys().chain(adjusted.keys()).cloned().collect();
        for (i, s) in subs.iter().enumerate() {
            if s.in_force
                .fee_span()
                .and_then(|f| f.within(&period))
                .is_some()
            {
                payers.push((Payer::Subscription(i), s.buyer.clone()));
            }
        }
        payers.sort();
        payers.dedup();
        for (payer, customer) in payers {
            let (issuer, model, name, sub_id, fee, remainder) = match payer {
                Payer::Subscription(i) => {
                    let s = &subs[i];
                    let share = s
                        .in_force
                        .fee_span()
                        .map_or(Decimal::ZERO, |span| fee_share(span, period));
                    // A commitment cancelled early owes its rest, with the
                    // period of the cancellation.
                    let remainder = match (s.in_force.cancelled, s.in_force.end_ms) {
                        (true, Some(end))
                            if period.start_ms() <= end
                                && end < period.end_ms()
                                && s.offer.price.commitment_months > 0 =>
                        {
                            let until = commitment_end(
                                s.in_force.start_ms,
                                s.offer.price.commitment_months,
                            )?;
                            commitment_remainder(end, until)
                        }
                        _ => Decimal::ZERO,
                    };
                    (
                        s.provider.clone(),
                        &s.offer.price,
                        s.offer.name.clone(),
                        Some(s.id.as_str()),
                        share,
                        remainder,
                    )
                }
                Payer::PayAsYouGo => (
                    house.clone(),
                    payg,
                    "Paiement à l'usage".to_owned(),
                    None,
                    Decimal::ZERO,
                    Decimal::ZERO,
                ),
            };
            let key = (payer, customer.clone());
            let usage = metered
                .get(&key)
                .map(|m| m.scaled(scope.scale).usage(period))
                .unwrap_or_default();
            let mut lines: Vec<InvoiceLine> =
                invoice_lines(rate(model, &usage, fee), &name, sub_id, false).collect();
            if !remainder.is_zero() && !model.monthly_fee.amount().is_zero() {
                lines.extend(invoice_lines(
                    vec![commitment_line(model.monthly_fee.amount(), remainder)],
                    &name,
                    sub_id,
                    false,
                ));
            }
            if let Some(m) = adjusted.get(&key) {
                lines.extend(invoice_lines(
                    rate(model, &m.usage(period), Decimal::ZERO),
                    &name,
                    sub_id,
                    true,
                ));
            }
            if !lines.is_empty() {
                drafts
                    .entry((customer, issuer))
                    .or_default()
                    .lines
                    .extend(lines);
            }
        }
        Ok(drafts)
    }

    /// What a run writes for one customer and issuer: an invoice; or a
    /// hold, when either party's identity lacks what the invoice must say
    /// (nothing undeliverable is issued) or when the month came to 0.00
    /// (a statement). A hold takes no number.
    async fn new_invoice(
        &self,
        conn: &mut AnyConnection,
        run: &RunRow,
        period: Period,
        (customer, issuer): (String, String),
        draft: Draft,
    ) -> ServiceResult<Outcome> {
        let (seller, seller_kind) = party(conn, &issuer).await?;
        let (buyer, kind) = party(conn, &customer).await?;
        let missing = MissingOf {
            issuer: facts(&seller, seller_kind).missing_as_issuer(),
            customer: facts(&buyer, kind).missing_as_buyer(),
        };
        let document = InvoiceDocument {
            vat: self.vat_of(&seller, &buyer, kind),
            issuer: seller,
            customer: buyer,
            lines: draft.lines,
            note: None,
        };
        let t = document_totals(&document);
        let now = self.now_ms();
        let hold = |reason: &str, document: Option<String>| -> ServiceResult<Outcome> {
            Ok(Outcome::Hold(HoldRow {
                run_id: run.id.clone(),
                customer_id: customer.clone(),
                issuer_id: issuer.clone(),
                reason: reason.to_owned(),
                missing: to_json(&missing)?,
                document,
                held_at: now,
                released_at: None,
            }))
        };
        if t.gross.is_zero() {
            return hold(ZERO, Some(to_json(&document)?));
        }
        if !missing.issuer.is_empty() || !missing.customer.is_empty() {
            return hold(INCOMPLETE, None);
        }
        Ok(Outcome::Invoice(Box::new(NewInvoice {
            id: uuid::Uuid::now_v7().to_string(),
            issuer_id: issuer,
            kind: "invoice".into(),
            corrects_id: None,
            customer_id: customer,
            period_start: period.start_ms(),
            period_end: period.end_ms(),
            currency: "EUR".into(),
            net: t.net.to_string(),
            vat: t.vat.to_string(),
            gross: t.gross.to_string(),
            document: to_json(&document)?,
            issued_at: now,
            run_id: Some(run.id.clone()),
        })))
    }

    /// Issues a batch of a run's invoices in one transaction, each under its
    /// issuer's next number, and records its holds; returns how many it
    /// issued. If a run working beside this one issued one of them first,
    /// the batch rolls back (its numbers with it) and each is issued on its
    /// own, skipping those.
    async fn issue_batch(
        &self,
        run: &RunRow,
        period: Period,
        batch: Vec<((String, String), Draft)>,
    ) -> ServiceResult<usize> {
        let mut tx = self.platform().db().begin_write().await?;
        let mut invoices = Vec::with_capacity(batch.len());
        let mut holds = Vec::new();
        for (parties, draft) in batch {
            match self
                .new_invoice(&mut tx, run, period, parties, draft)
                .await?
            {
                Outcome::Invoice(invoice) => invoices.push(invoice),
                Outcome::Hold(hold) => holds.push(hold),
            }
        }
        let new_holds = record_holds(&mut tx, &holds).await?;
        let mut conflict = false;
        for invoice in &invoices {
            match self.insert_invoice(&mut tx, invoice).await {
                Ok(()) => {}
                Err(ServiceError::Conflict(_)) => {
                    conflict = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if !conflict {
            tx.commit().await.map_err(nuage_db::DbError::from)?;
            self.tell_held(&new_holds).await?;
            return Ok(invoices.len());
        }
        drop(tx);
        let mut tx = self.platform().db().begin_write().await?;
        let new_holds = record_holds(&mut tx, &holds).await?;
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        self.tell_held(&new_holds).await?;
        let mut issued = 0;
        for invoice in &invoices {
            let mut tx = self.platform().db().begin_write().await?;
            match self.insert_invoice(&mut tx, invoice).await {
                Ok(()) => {
                    tx.commit().await.map_err(nuage_db::DbError::from)?;
                    issued += 1;
                }
                Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(issued)
    }

    /// Tells the owners, admins and billing members of each organisation
    /// whose legal identity holds an invoice back what it lacks, once per
    /// hold; and counts the holds still open (`nuage_billing_invoices_held`).
    async fn tell_held(&self, holds: &[HoldRow]) -> ServiceResult<()> {
        let mut conn = self.platform().db().acquire().await?;
        for hold in holds {
            let missing: MissingOf = parse_doc(&hold.missing)?;
            let run = repo::get_run(&mut conn, &hold.run_id).await?;
            let period = run
                .map(|r| period_label(r.period_start))
                .unwrap_or_default();
            for (org, lacks) in [
                (&hold.customer_id, &missing.customer),
                (&hold.issuer_id, &missing.issuer),
            ] {
                if lacks.is_empty() {
                    continue;
                }
                let list = lacks
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let subject =
                    format!("Facture de {period} en attente : identité légale incomplète");
                let body = format!(
                    "Bonjour,\n\nLa facture de {period} ne peut pas être émise : il manque à votre organisation ce qu'une facture doit mentionner ({list}).\n\nComplétez-le (API : PUT /api/v1/orgs/{org}/legal-identity, et /tax pour le numéro de TVA) ; la facture sera émise à la prochaine exécution de la facturation, sans autre démarche.\n"
                );
                for member in identity::list_members(&mut conn, org, "", 500).await? {
                    if Role::parse(&member.role).is_ok_and(|r| r.may(Permission::SeeInvoices)) {
                        self.platform()
                            .mailer()
                            .send(
                                self.platform().db(),
                                self.platform().clock().as_ref(),
                                &member.email,
                                &subject,
                                &body,
                                None,
                            )
                            .await?;
                    }
                }
            }
        }
        let open = repo::open_holds(&mut conn).await?.len();
        metrics::gauge!("nuage_billing_invoices_held").set(open as f64);
        Ok(())
    }

    /// Writes an invoice under its issuer's next number, and releases the
    /// hold it was under, if any; `Conflict` when the run issued it already.
    async fn insert_invoice(
        &self,
        tx: &mut AnyConnection,
        invoice: &NewInvoice,
    ) -> ServiceResult<()> {
        match repo::insert_invoice(tx, invoice).await {
            Ok(_) => {}
            Err(nuage_db::DbError::Conflict) => {
                return Err(ServiceError::Conflict("issued already".into()));
            }
            Err(e) => return Err(e.into()),
        }
        self.queue_delivery(tx, invoice).await?;
        if let Some(run) = &invoice.run_id {
            repo::release_hold(
                tx,
                (run, &invoice.customer_id, &invoice.issuer_id),
                invoice.issued_at,
            )
            .await?;
        }
        Ok(())
    }

    /// Issues the invoices held for want of a party's identity whose
    /// parties are now complete, each as its run would have (same cut,
    /// same lines), under the issuer's next number; returns how many.
    pub async fn release_holds(&self) -> ServiceResult<usize> {
        let mut conn = self.platform().db().acquire().await?;
        let open = repo::open_holds(&mut conn).await?;
        let mut released = 0;
        for hold in open {
            let (seller, seller_kind) = party(&mut conn, &hold.issuer_id).await?;
            let (buyer, kind) = party(&mut conn, &hold.customer_id).await?;
            if !facts(&seller, seller_kind).missing_as_issuer().is_empty()
                || !facts(&buyer, kind).missing_as_buyer().is_empty()
            {
                continue;
            }
            let Some(run) = repo::get_run(&mut conn, &hold.run_id).await? else {
                continue;
            };
            let period = Period::new(run.period_start, run.period_end)?;
            let scope = Scope {
                cut: run.cut_at,
                org: &hold.customer_id,
                scale: Decimal::ONE,
            };
            let parties = (hold.customer_id.clone(), hold.issuer_id.clone());
            let Some(draft) = self.drafts(&scope, period).await?.remove(&parties) else {
                continue;
            };
            released += self
                .issue_batch(&run, period, vec![(parties, draft)])
                .await?;
        }
        if released > 0 {
            self.tell_held(&[]).await?;
        }
        Ok(released)
    }

    /// What the house's own invoices would lack: none is issued until it
    /// is filled in (the operator is told at start-up and on the console).
    pub async fn house_missing(&self) -> ServiceResult<Vec<Missing>> {
        let mut conn = self.platform().db().acquire().await?;
        let (house, kind) = party(&mut conn, &self.house().to_string()).await?;
        Ok(facts(&house, kind).missing_as_issuer())
    }

    pub(super) fn vat_of(&self, seller: &Party, buyer: &Party, kind: OrgKind) -> Vat {
        // A person's VAT number, if any, does not make the sale a business one.
        let number = match kind {
            OrgKind::Person => None,
            _ => buyer
                .vat_number
                .as_deref()
                .and_then(|v| VatNumber::parse(v).ok()),
        };
        vat_treatment(
            &seller.country,
            &buyer.country,
            number.as_ref(),
            self.inner.settings.vat_rate,
        )
    }
}

/// Records a batch's holds; returns those that held back an invoice for
/// the first time (a resumed run records them again).
async fn record_holds(tx: &mut AnyConnection, holds: &[HoldRow]) -> ServiceResult<Vec<HoldRow>> {
    let mut new = Vec::new();
    for hold in holds {
        if repo::upsert_hold(tx, hold).await? && hold.reason == INCOMPLETE {
            new.push(hold.clone());
        }
    }
    Ok(new)
}
