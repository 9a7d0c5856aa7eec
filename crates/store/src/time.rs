//! Timestamps are stored as BIGINT microseconds since the Unix epoch (portable, sortable,
//! and bucketable with plain integer arithmetic on both backends).

use chrono::{DateTime, Utc};

use crate::StoreError;

pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {micros} out of range")))
}
