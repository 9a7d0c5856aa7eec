//! Check-ins: the rules of what a person may say and when a check-in may have happened.

use chrono::{DateTime, Duration, Utc};

use crate::user::free_text;

/// The longest shout, in characters.
pub const MAX_SHOUT_CHARS: usize = 140;

/// How far in the past a check-in queued offline may be dated.
pub const MAX_BACKDATE_DAYS: i64 = 7;

/// A shout: up to 140 characters, trimmed, one line; empty means none.
pub fn parse_shout(input: &str) -> Result<Option<String>, String> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    free_text(input, 1, MAX_SHOUT_CHARS, false).map(Some)
}

/// When a check-in happened, as the client says: never in the future (a minute of clock skew
/// is forgiven and clamped to now), at most seven days ago.
pub fn parse_checkin_time(
    claimed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let Some(claimed) = claimed else {
        return Ok(now);
    };
    if claimed > now + Duration::seconds(60) {
        return Err("must not be in the future".into());
    }
    if claimed < now - Duration::days(MAX_BACKDATE_DAYS) {
        return Err(format!(
            "must be at most {MAX_BACKDATE_DAYS} days in the past"
        ));
    }
    Ok(claimed.min(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shouts_are_short_single_lines() {
        assert_eq!(parse_shout("  "), Ok(None));
        assert_eq!(parse_shout(" Coffee! "), Ok(Some("Coffee!".into())));
        assert!(parse_shout(&"x".repeat(141)).is_err());
        assert!(parse_shout(&"é".repeat(140)).is_ok());
        assert!(parse_shout("two\nlines").is_err());
    }

    #[test]
    fn check_in_times_are_bounded() {
        let now = Utc::now();
        assert_eq!(parse_checkin_time(None, now), Ok(now));
        assert_eq!(
            parse_checkin_time(Some(now + Duration::seconds(30)), now),
            Ok(now)
        );
        assert!(parse_checkin_time(Some(now + Duration::minutes(5)), now).is_err());
        let yesterday = now - Duration::days(1);
        assert_eq!(parse_checkin_time(Some(yesterday), now), Ok(yesterday));
        assert!(parse_checkin_time(Some(now - Duration::days(8)), now).is_err());
    }
}
