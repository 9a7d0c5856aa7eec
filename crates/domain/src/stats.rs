//! Statistics for operators: time windows in a time zone, buckets, and a venue's activity
//! aggregated from its check-ins. Visitors are counted, never listed.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::settings::Visibility;

/// The longest window a statistics query may span.
pub const MAX_WINDOW_DAYS: i64 = 366;
/// The most buckets one series may hold (a year of hours fits).
pub const MAX_BUCKETS: usize = 9_000;

/// How a time series is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
    /// Weeks start on Monday (ISO 8601).
    Week,
}

impl Bucket {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("`from` must be before `to`")]
    Empty,
    #[error("a window may span at most {MAX_WINDOW_DAYS} days")]
    TooLong,
    #[error("{0} {1}s is too many buckets (at most {MAX_BUCKETS}); choose a coarser bucket")]
    TooManyBuckets(usize, &'static str),
}

/// A half-open span of time `[from, to)` read in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
}

impl Window {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Result<Self, WindowError> {
        if from >= to {
            return Err(WindowError::Empty);
        }
        if to - from > TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(WindowError::TooLong);
        }
        Ok(Self { from, to, tz })
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The start of each bucket that overlaps the window, the first one at or before `from`
    /// (local midnight, the local hour, Monday's midnight), in order.
    pub fn buckets(&self, bucket: Bucket) -> Result<Vec<DateTime<Utc>>, WindowError> {
        let mut starts = Vec::new();
        let mut at = self.floor(self.from, bucket);
        while at < self.to {
            if starts.len() == MAX_BUCKETS {
                let total = match bucket {
                    Bucket::Hour => (self.to - self.from).num_hours(),
                    Bucket::Day => (self.to - self.from).num_days(),
                    Bucket::Week => (self.to - self.from).num_weeks(),
                };
                return Err(WindowError::TooManyBuckets(
                    usize::try_from(total).unwrap_or(usize::MAX),
                    bucket.as_str(),
                ));
            }
            starts.push(at);
            at = self.next(at, bucket);
        }
        Ok(starts)
    }

    /// The start of the bucket holding `at`.
    fn floor(&self, at: DateTime<Utc>, bucket: Bucket) -> DateTime<Utc> {
        let local = at.with_timezone(&self.tz);
        match bucket {
            // Every zone's offset is a whole number of minutes.
            Bucket::Hour => {
                at - TimeDelta::minutes(i64::from(local.minute()))
                    - TimeDelta::seconds(i64::from(local.second()))
                    - TimeDelta::nanoseconds(i64::from(local.nanosecond()))
            }
            Bucket::Day => self.midnight(local.date_naive()),
            Bucket::Week => {
                let days = u64::from(local.weekday().num_days_from_monday());
                let monday = local
                    .date_naive()
                    .checked_sub_days(Days::new(days))
                    .unwrap_or(local.date_naive());
                self.midnight(monday)
            }
        }
    }

    fn next(&self, start: DateTime<Utc>, bucket: Bucket) -> DateTime<Utc> {
        let step = match bucket {
            Bucket::Hour => return start + TimeDelta::hours(1),
            Bucket::Day => 1,
            Bucket::Week => 7,
        };
        let day = start.with_timezone(&self.tz).date_naive();
        // A day's start is never past its local midnight, so `day` is the bucket's date.
        match day.checked_add_days(Days::new(step)) {
            Some(next) => self.midnight(next),
            None => self.to,
        }
    }

    /// When `day` begins in the zone: its midnight, or the first moment after a transition
    /// that skips midnight.
    fn midnight(&self, day: NaiveDate) -> DateTime<Utc> {
        let mut local = day.and_time(NaiveTime::MIN);
        for _ in 0..=24 * 4 {
            if let Some(at) = self.tz.from_local_datetime(&local).earliest() {
                return at.with_timezone(&Utc);
            }
            local += TimeDelta::minutes(15);
        }
        // No zone skips a whole day's first 24 hours.
        day.and_time(NaiveTime::MIN).and_utc()
    }

    /// The local weekday (0 = Monday) and hour of `at`.
    pub fn weekday_hour(&self, at: DateTime<Utc>) -> (usize, usize) {
        let local = at.with_timezone(&self.tz);
        (
            local.weekday().num_days_from_monday() as usize,
            local.hour() as usize,
        )
    }
}

/// One check-in as the statistics see it: who (an opaque number), when, how visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub visitor: i64,
    pub at: DateTime<Utc>,
    pub visibility: Visibility,
}

/// One bucket of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCount {
    pub start: DateTime<Utc>,
    pub checkins: u64,
    pub unique_visitors: u64,
}

/// Check-ins by visibility.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisibilityMix {
    pub public: u64,
    pub friends: u64,
    pub private: u64,
}

/// A venue's activity in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueActivity {
    pub checkins: u64,
    pub unique_visitors: u64,
    /// Visitors whose first check-in here ever falls in the window.
    pub new_visitors: u64,
    /// Visitors who had checked in here before the window.
    pub returning_visitors: u64,
    pub series: Vec<BucketCount>,
    /// Check-ins by local weekday (Monday first) and hour of day.
    pub by_weekday_hour: [[u64; 24]; 7],
    pub visibility: VisibilityMix,
}

impl VenueActivity {
    /// Aggregates `visits` (the venue's check-ins in `window`, in any order) into buckets of
    /// `bucket`; `returning` says how many of the window's visitors had come before it.
    pub fn aggregate(
        window: &Window,
        bucket: Bucket,
        visits: &[Visit],
        returning: u64,
    ) -> Result<Self, WindowError> {
        let starts = window.buckets(bucket)?;
        let mut per_bucket: Vec<(u64, HashSet<i64>)> = vec![(0, HashSet::new()); starts.len()];
        let mut visitors = HashSet::new();
        let mut by_weekday_hour = [[0_u64; 24]; 7];
        let mut visibility = VisibilityMix::default();
        for visit in visits {
            if visit.at < window.from || visit.at >= window.to {
                continue;
            }
            visitors.insert(visit.visitor);
            // The last bucket starting at or before the visit.
            let index = starts.partition_point(|start| *start <= visit.at);
            if let Some((count, people)) = index
                .checked_sub(1)
                .and_then(|index| per_bucket.get_mut(index))
            {
                *count += 1;
                people.insert(visit.visitor);
            }
            let (weekday, hour) = window.weekday_hour(visit.at);
            if let Some(cell) = by_weekday_hour
                .get_mut(weekday)
                .and_then(|row| row.get_mut(hour))
            {
                *cell += 1;
            }
            match visit.visibility {
                Visibility::Public => visibility.public += 1,
                Visibility::Friends => visibility.friends += 1,
                Visibility::Private => visibility.private += 1,
            }
        }
        let unique = visitors.len() as u64;
        let returning = returning.min(unique);
        Ok(Self {
            checkins: visibility.public + visibility.friends + visibility.private,
            unique_visitors: unique,
            new_visitors: unique - returning,
            returning_visitors: returning,
            series: starts
                .into_iter()
                .zip(per_bucket)
                .map(|(start, (checkins, people))| BucketCount {
                    start,
                    checkins,
                    unique_visitors: people.len() as u64,
                })
                .collect(),
            by_weekday_hour,
            visibility,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn days_follow_the_zone_across_a_daylight_saving_change() {
        // New York left daylight saving time on 2026-11-01: that day has 25 hours.
        let window = Window::new(
            at("2026-10-31T12:00:00Z"),
            at("2026-11-02T12:00:00Z"),
            chrono_tz::America::New_York,
        )
        .unwrap();
        let days = window.buckets(Bucket::Day).unwrap();
        assert_eq!(
            days,
            vec![
                at("2026-10-31T04:00:00Z"),
                at("2026-11-01T04:00:00Z"),
                at("2026-11-02T05:00:00Z"),
            ]
        );
        let weeks = window.buckets(Bucket::Week).unwrap();
        // Monday the 2nd starts a new week.
        assert_eq!(
            weeks,
            vec![at("2026-10-26T04:00:00Z"), at("2026-11-02T05:00:00Z")]
        );
    }

    #[test]
    fn hours_start_on_the_local_hour_in_half_hour_zones() {
        let window = Window::new(
            at("2026-03-01T00:10:00Z"),
            at("2026-03-01T02:00:00Z"),
            chrono_tz::Asia::Kolkata,
        )
        .unwrap();
        assert_eq!(
            window.buckets(Bucket::Hour).unwrap(),
            vec![
                at("2026-02-28T23:30:00Z"),
                at("2026-03-01T00:30:00Z"),
                at("2026-03-01T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn a_day_that_skips_midnight_starts_at_its_first_moment() {
        // Santiago moved its clocks forward at 24:00 on 2026-09-05: the 6th starts at 01:00.
        let window = Window::new(
            at("2026-09-06T06:00:00Z"),
            at("2026-09-06T07:00:00Z"),
            chrono_tz::America::Santiago,
        )
        .unwrap();
        let days = window.buckets(Bucket::Day).unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!(
            days[0].with_timezone(&chrono_tz::America::Santiago).hour(),
            1
        );
    }

    #[test]
    fn windows_are_bounded() {
        let tz = chrono_tz::UTC;
        let start = at("2026-01-01T00:00:00Z");
        assert_eq!(Window::new(start, start, tz), Err(WindowError::Empty));
        assert_eq!(
            Window::new(start, start + TimeDelta::days(367), tz),
            Err(WindowError::TooLong)
        );
        let year = Window::new(start, start + TimeDelta::days(366), tz).unwrap();
        assert_eq!(year.buckets(Bucket::Hour).unwrap().len(), 366 * 24);
    }

    #[test]
    fn activity_counts_visits_visitors_and_newcomers() {
        let tz = chrono_tz::Europe::Paris;
        let window =
            Window::new(at("2026-06-01T00:00:00Z"), at("2026-06-03T00:00:00Z"), tz).unwrap();
        let visit = |visitor, when: &str, visibility| Visit {
            visitor,
            at: at(when),
            visibility,
        };
        let visits = [
            visit(1, "2026-06-01T08:00:00Z", Visibility::Public),
            visit(1, "2026-06-01T09:00:00Z", Visibility::Friends),
            visit(2, "2026-06-02T21:30:00Z", Visibility::Private),
            // Outside the window: ignored.
            visit(3, "2026-06-03T00:00:00Z", Visibility::Public),
        ];
        let activity = VenueActivity::aggregate(&window, Bucket::Day, &visits, 1).unwrap();
        assert_eq!(activity.checkins, 3);
        assert_eq!(activity.unique_visitors, 2);
        assert_eq!((activity.new_visitors, activity.returning_visitors), (1, 1));
        // Paris is UTC+2 in June: 21:30Z on the 2nd is 23:30 local, still the 2nd.
        let counts: Vec<_> = activity
            .series
            .iter()
            .map(|b| (b.checkins, b.unique_visitors))
            .collect();
        assert_eq!(counts, vec![(2, 1), (1, 1), (0, 0)]);
        assert_eq!(activity.series[0].start, at("2026-05-31T22:00:00Z"));
        // Monday 1 June 10:00 and 11:00 local; Tuesday 23:00 local.
        assert_eq!(activity.by_weekday_hour[0][10], 1);
        assert_eq!(activity.by_weekday_hour[0][11], 1);
        assert_eq!(activity.by_weekday_hour[1][23], 1);
        assert_eq!(
            activity.visibility,
            VisibilityMix {
                public: 1,
                friends: 1,
                private: 1
            }
        );
    }
}
