//! Quota alerts: an organisation names percentages of its storage quota
//! (say 80 and 95); when its use crosses one, it is told once — in the
//! console, and by its webhook (`quota.threshold`, signed like the others).
//! Falling back below a threshold re-arms it.

use nuage_db::repo::billing::{self as repo, AlertEventRow, QuotaAlertRow};
use nuage_domain::DomainError;
use nuage_domain::ids::OrgId;
use nuage_domain::org::Permission;
use serde::Serialize;
use utoipa::ToSchema;

use nuage_service::{AuditEvent, Principal, RequestMeta, ServiceResult};

use crate::Billing;

/// The most thresholds an organisation sets.
pub const MAX_THRESHOLDS: usize = 5;

/// An organisation's alerts and where its storage stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaAlerts {
    /// Percentages of the quota, ascending; empty when off.
    pub thresholds: Vec<u8>,
    pub used_bytes: i64,
    /// None: no quota, so nothing to alert on.
    pub max_bytes: Option<i64>,
    /// Use as a percentage of the quota, rounded down.
    pub percent_used: Option<i64>,
    /// The last alerts, newest first.
    pub events: Vec<AlertEvent>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEvent {
    pub at_ms: i64,
    /// The threshold crossed.
    pub percent: i64,
    pub used_bytes: i64,
    pub max_bytes: i64,
}

fn parse_thresholds(text: &str) -> Vec<u8> {
    text.split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

/// The highest of `thresholds` that `percent` reaches, 0 for none.
fn level(thresholds: &[u8], percent: i64) -> i64 {
    thresholds
        .iter()
        .map(|&t| i64::from(t))
        .filter(|&t| t <= percent)
        .max()
        .unwrap_or(0)
}

fn percent(used: i64, max: Option<i64>) -> Option<i64> {
    max.filter(|&m| m > 0)
        .map(|m| (i128::from(used) * 100 / i128::from(m)) as i64)
}

impl Billing {
    /// Sets an organisation's thresholds (percentages, 1 to 100, at most
    /// five; none turns alerts off): its owners, admins and billing members.
    pub async fn set_quota_alerts(
        &self,
        who: &Principal,
        meta: &RequestMeta,
        org: OrgId,
        thresholds: &[u8],
    ) -> ServiceResult<QuotaAlerts> {
        let mut sorted = thresholds.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() > MAX_THRESHOLDS || sorted.iter().any(|&t| t == 0 || t > 100) {
            return Err(DomainError::invalid(
                "thresholds",
                format!("at most {MAX_THRESHOLDS} percentages, each from 1 to 100"),
            )
            .into());
        }
        let mut tx = self.platform().db().begin_write().await?;
        self.platform()
            .authorize_org(&mut tx, who, org, Permission::SeeInvoices)
            .await?;
        let storage = nuage_db::repo::storage::org_storage(&mut tx, &org.to_string()).await?;
        // Thresholds already passed are not told again for the use of now.
        let reached = percent(storage.bytes, storage.max_bytes).map_or(0, |p| level(&sorted, p));
        repo::upsert_quota_alert(
            &mut tx,
            &QuotaAlertRow {
                org_id: org.to_string(),
                thresholds: sorted
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                notified_percent: reached,
                updated_at: self.now_ms(),
            },
        )
        .await?;
        self.platform()
            .commit_audited(
                tx,
                who,
                meta,
                AuditEvent::new("quota.alerts", format!("org:{org}"))
                    .org(org)
                    .details(serde_json::json!({"thresholds": sorted})),
            )
            .await?;
        self.quota_alerts(who, org).await
    }

    /// An organisation's alerts: its owners, admins and billing members.
    pub async fn quota_alerts(&self, who: &Principal, org: OrgId) -> ServiceResult<QuotaAlerts> {
        let mut conn = self.platform().db().acquire().await?;
        self.platform()
            .authorize_org(&mut conn, who, org, Permission::SeeInvoices)
            .await?;
        let id = org.to_string();
        let thresholds = repo::get_quota_alert(&mut conn, &id)
            .await?
            .map(|a| parse_thresholds(&a.thresholds))
            .unwrap_or_default();
        let storage = nuage_db::repo::storage::org_storage(&mut conn, &id).await?;
        let events = repo::alert_events(&mut conn, &id, 20)
            .await?
            .into_iter()
            .map(|e| AlertEvent {
                at_ms: e.at,
                percent: e.percent,
                used_bytes: e.used_bytes,
                max_bytes: e.max_bytes,
            })
            .collect();
        Ok(QuotaAlerts {
            thresholds,
            used_bytes: storage.bytes,
            max_bytes: storage.max_bytes,
            percent_used: percent(storage.bytes, storage.max_bytes),
            events,
        })
    }

    /// Tells every organisation whose use crossed one of its thresholds
    /// since it was last told; returns how many were told.
    pub async fn check_quota_alerts(&self) -> ServiceResult<usize> {
        let mut tx = self.platform().db().begin_write().await?;
        let mut told = 0;
        for (org, thresholds, notified, used, max) in repo::quota_alerts_with_use(&mut tx).await? {
            let Some(max_bytes) = max.filter(|&m| m > 0) else {
                continue;
            };
            let now_level = percent(used, Some(max_bytes))
                .map_or(0, |p| level(&parse_thresholds(&thresholds), p));
            if now_level > notified {
                let event = AlertEventRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    org_id: org.clone(),
                    at: self.now_ms(),
                    percent: now_level,
                    used_bytes: used,
                    max_bytes,
                };
                repo::insert_alert_event(&mut tx, &event).await?;
                self.catalogue()
                    .enqueue_event(
                        &mut tx,
                        &org,
                        "quota.threshold",
                        "quota",
                        serde_json::json!({
                            "org_id": org, "threshold_percent": now_level,
                            "used_bytes": used, "max_bytes": max_bytes,
                        }),
                    )
                    .await?;
                told += 1;
            }
            if now_level != notified {
                repo::set_notified(&mut tx, &org, now_level).await?;
            }
        }
        tx.commit().await.map_err(nuage_db::DbError::from)?;
        if told > 0 {
            self.catalogue().wake_deliveries();
        }
        Ok(told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_threshold_reached_is_the_level() {
        assert_eq!(level(&[80, 95], 79), 0);
        assert_eq!(level(&[80, 95], 80), 80);
        assert_eq!(level(&[80, 95], 99), 95);
        assert_eq!(level(&[], 100), 0);
        assert_eq!(percent(3, Some(4)), Some(75));
        assert_eq!(percent(3, None), None);
        assert_eq!(parse_thresholds("80,95"), [80, 95]);
    }
}
