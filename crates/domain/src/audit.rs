//! The tamper-evident audit chain.
//!
//! Every state-changing action becomes an [`AuditRecord`] with a sequence
//! number. Its link is `HMAC-SHA256(key, previous_link ‖ encoding(record))`,
//! where the key is derived from the master key: someone who can write to the
//! database but does not hold the master key cannot forge a link, so editing,
//! deleting or reordering rows breaks the chain at the first altered record.
//! Truncating the tail is caught by a [`Checkpoint`] of the head kept outside
//! the database.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The link that precedes the first record.
pub const GENESIS_LINK: [u8; 32] = [0; 32];

/// One audited action: who did what, to which object, when and from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// `user:<id>`, `token:<id>`, `root` or `system`.
    pub actor: String,
    /// The organisation the action concerns, if any.
    pub org_id: Option<String>,
    /// A dotted verb, e.g. `org.create`, `s3_key.revoke`.
    pub action: String,
    /// The object acted on, e.g. `org:<id>`.
    pub target: String,
    /// The client address the request came from, or `local`.
    pub source: String,
    /// Further facts as a JSON object (never secrets).
    pub details: String,
}

impl AuditRecord {
    /// An unambiguous encoding: every field length-prefixed, in a fixed order.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        for field in [
            Some(self.actor.as_str()),
            self.org_id.as_deref(),
            Some(self.action.as_str()),
            Some(self.target.as_str()),
            Some(self.source.as_str()),
            Some(self.details.as_str()),
        ] {
            match field {
                None => out.push(0),
                Some(text) => {
                    out.push(1);
                    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
    }

    /// The link of this record, chained to the previous one.
    pub fn link(&self, key: &[u8; 32], previous: &[u8; 32]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
        let mut encoded = Vec::with_capacity(256);
        encoded.extend_from_slice(previous);
        self.encode(&mut encoded);
        mac.update(&encoded);
        mac.finalize().into_bytes().into()
    }
}

/// The head of the chain at some point: record `seq` had link `link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub link: [u8; 32],
}

/// Where and why the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The first sequence number at which the stored chain disagrees.
    pub seq: i64,
    pub reason: String,
}

/// Walks the chain in stored order, recomputing every link, and compares the
/// head to the checkpoint. Returns the number of records checked.
pub struct ChainVerifier {
    previous: [u8; 32],
    expected_seq: i64,
    seen_checkpoint: bool,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            previous: GENESIS_LINK,
            expected_seq: 1,
            seen_checkpoint: false,
        }
    }

    /// Checks the next stored record and its stored link, made with `key`
    /// (the audit key of the epoch the record names).
    pub fn check(
        &mut self,
        key: &[u8; 32],
        record: &AuditRecord,
        stored_link: &[u8; 32],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), ChainBreak> {
        if record.seq != self.expected_seq {
            let reason = if record.seq > self.expected_seq {
                format!(
                    "record {} is missing (deleted), the next stored record is {}",
                    self.expected_seq, record.seq
                )
            } else {
                format!(
                    "record {} appears out of order after record {}",
                    record.seq,
                    self.expected_seq - 1
                )
            };
            return Err(ChainBreak {
                seq: self.expected_seq.min(record.seq),
                reason,
            });
        }
        let link = record.link(key, &self.previous);
        if link != *stored_link {
            return Err(ChainBreak {
                seq: record.seq,
                reason: format!(
                    "record {} does not match its link: it was edited, or its neighbours were",
                    record.seq
                ),
            });
        }
        if let Some(checkpoint) = checkpoint
            && checkpoint.seq == record.seq
        {
            if checkpoint.link != link {
                return Err(ChainBreak {
                    seq: record.seq,
                    reason: format!(
                        "record {} differs from the signed checkpoint of the head",
                        record.seq
                    ),
                });
            }
            self.seen_checkpoint = true;
        }
        self.previous = link;
        self.expected_seq += 1;
        Ok(())
    }

    /// Ends the walk: the chain must reach the checkpoint. Returns the count.
    pub fn finish(self, checkpoint: Option<&Checkpoint>) -> Result<i64, ChainBreak> {
        if let Some(checkpoint) = checkpoint
            && !self.seen_checkpoint
        {
            return Err(ChainBreak {
                seq: self.expected_seq,
                reason: format!(
                    "the chain ends at record {} but the signed checkpoint shows it reached record {}: its tail was truncated",
                    self.expected_seq - 1,
                    checkpoint.seq
                ),
            });
        }
        Ok(self.expected_seq - 1)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a link is 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, action: &str) -> AuditRecord {
        AuditRecord {
            seq,
            at_ms: 1_700_000_000_000 + seq,
            actor: "root".into(),
            org_id: None,
            action: action.into(),
            target: "org:x".into(),
            source: "local".into(),
            details: "{}".into(),
        }
    }

    fn chain(key: &[u8; 32], n: i64) -> Vec<(AuditRecord, [u8; 32])> {
        let mut previous = GENESIS_LINK;
        (1..=n)
            .map(|seq| {
                let r = record(seq, "org.create");
                let link = r.link(key, &previous);
                previous = link;
                (r, link)
            })
            .collect()
    }

    fn verify(
        key: &[u8; 32],
        rows: &[(AuditRecord, [u8; 32])],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for (r, l) in rows {
            v.check(key, r, l, checkpoint)?;
        }
        v.finish(checkpoint)
    }

    #[test]
    fn intact_chain_verifies() {
        let key = [7; 32];
        let rows = chain(&key, 5);
        let cp = Checkpoint {
            seq: 5,
            link: rows[4].1,
        };
        assert_eq!(verify(&key, &rows, Some(&cp)), Ok(5));
    }

    #[test]
    fn edit_delete_reorder_truncate_are_detected() {
        let key = [7; 32];
        let rows = chain(&key, 5);
        let cp = Checkpoint {
            seq: 5,
            link: rows[4].1,
        };

        let mut edited = rows.clone();
        edited[2].0.action = "org.delete".into();
        assert_eq!(verify(&key, &edited, Some(&cp)).map_err(|b| b.seq), Err(3));

        let mut deleted = rows.clone();
        deleted.remove(1);
        assert_eq!(verify(&key, &deleted, Some(&cp)).map_err(|b| b.seq), Err(2));

        let mut reordered = rows.clone();
        reordered.swap(1, 2);
        assert!(verify(&key, &reordered, Some(&cp)).is_err());

        let truncated = &rows[..3];
        assert_eq!(
            verify(&key, truncated, Some(&cp)).map_err(|b| b.seq),
            Err(4)
        );
    }

    #[test]
    fn another_key_cannot_forge_links() {
        let rows = chain(&[7; 32], 2);
        assert!(verify(&[8; 32], &rows, None).is_err());
    }
}
