//! Timelines, time cells and time points.
//!
//! A timeline is a name plus a kind. Values are `i64`: a sequence number, a duration in
//! nanoseconds, or a timestamp in nanoseconds since the Unix epoch. A row carries a
//! [`TimePoint`] (one cell per timeline); static rows carry none.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// The kind of a timeline, which says how its `i64` values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeKind {
    /// A frame or tick counter.
    Sequence,
    /// Nanoseconds since some start (a video's presentation time).
    Duration,
    /// Nanoseconds since the Unix epoch.
    Timestamp,
}

impl TimeKind {
    /// The name used in files and on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            TimeKind::Sequence => "sequence",
            TimeKind::Duration => "duration",
            TimeKind::Timestamp => "timestamp",
        }
    }

    /// Inverse of [`TimeKind::name`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sequence" => Some(TimeKind::Sequence),
            "duration" => Some(TimeKind::Duration),
            "timestamp" => Some(TimeKind::Timestamp),
            _ => None,
        }
    }

    /// Formats a value of this kind for people: `1234`, `12.500s`, `2026-11-21T10:00:00.000000000Z`.
    pub fn format_value(self, value: i64) -> String {
        match self {
            TimeKind::Sequence => format!("#{value}"),
            TimeKind::Duration => format_duration_nanos(value),
            TimeKind::Timestamp => format_timestamp_nanos(value),
        }
    }
}

/// `12.5s` style, trimmed to the precision needed (up to nanoseconds).
pub fn format_duration_nanos(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let secs = abs / 1_000_000_000;
    let frac = abs % 1_000_000_000;
    if frac == 0 {
        return format!("{sign}{secs}s");
    }
    let mut frac_str = format!("{frac:09}");
    while frac_str.ends_with('0') {
        frac_str.pop();
    }
    format!("{sign}{secs}.{frac_str}s")
}

/// RFC 3339 in UTC with nanoseconds, computed without a calendar crate.
pub fn format_timestamp_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{sub:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A timeline's name, e.g. `time` or `frame`. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimelineName(Arc<str>);

impl TimelineName {
    pub fn new(name: &str) -> Self {
        TimelineName(Arc::from(name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TimelineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TimelineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl From<&str> for TimelineName {
    fn from(s: &str) -> Self {
        TimelineName::new(s)
    }
}

impl From<String> for TimelineName {
    fn from(s: String) -> Self {
        TimelineName(Arc::from(s))
    }
}

/// A timeline: its name and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timeline {
    pub name: TimelineName,
    pub kind: TimeKind,
}

impl Timeline {
    pub fn new(name: impl Into<TimelineName>, kind: TimeKind) -> Self {
        Timeline {
            name: name.into(),
            kind,
        }
    }
}

/// One value on one timeline: a kind and an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeCell {
    pub kind: TimeKind,
    pub value: i64,
}

impl TimeCell {
    pub const fn from_sequence(n: i64) -> Self {
        TimeCell {
            kind: TimeKind::Sequence,
            value: n,
        }
    }
    pub const fn from_duration_nanos(nanos: i64) -> Self {
        TimeCell {
            kind: TimeKind::Duration,
            value: nanos,
        }
    }
    /// Seconds as `f64`, rounded to the nearest nanosecond.
    pub fn from_duration_secs(secs: f64) -> Self {
        TimeCell::from_duration_nanos((secs * 1e9).round() as i64)
    }
    pub const fn from_timestamp_nanos(nanos_since_epoch: i64) -> Self {
        TimeCell {
            kind: TimeKind::Timestamp,
            value: nanos_since_epoch,
        }
    }
    /// The current wall-clock time.
    pub fn timestamp_now() -> Self {
        TimeCell::from_timestamp_nanos(unix_nanos_now())
    }
}

impl From<std::time::Duration> for TimeCell {
    fn from(d: std::time::Duration) -> Self {
        TimeCell::from_duration_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for TimeCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind.format_value(self.value))
    }
}

/// Nanoseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time of a row on each of its timelines. Empty means static.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimePoint(BTreeMap<TimelineName, TimeCell>);

impl TimePoint {
    pub fn new() -> Self {
        TimePoint::default()
    }
    pub fn insert(&mut self, timeline: impl Into<TimelineName>, cell: TimeCell) {
        self.0.insert(timeline.into(), cell);
    }
    pub fn with(mut self, timeline: impl Into<TimelineName>, cell: TimeCell) -> Self {
        self.insert(timeline, cell);
        self
    }
    pub fn remove(&mut self, timeline: &str) {
        self.0.retain(|name, _| name.as_str() != timeline);
    }
    pub fn clear(&mut self) {
        self.0.clear();
    }
    pub fn is_static(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, timeline: &str) -> Option<TimeCell> {
        self.0
            .iter()
            .find(|(n, _)| n.as_str() == timeline)
            .map(|(_, c)| *c)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&TimelineName, &TimeCell)> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Identifies a row across a recording and orders rows: the order of row ids is the
/// order rows were logged (for video: decode order).
///
/// A row id is a nanosecond wall-clock reading made strictly increasing by its
/// [`RowIdGenerator`], so ids of different producers interleave roughly by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(pub u64);

/// Hands out strictly increasing [`RowId`]s from many threads.
#[derive(Debug, Default)]
pub struct RowIdGenerator {
    last: std::sync::atomic::AtomicU64,
}

impl RowIdGenerator {
    pub fn new() -> Self {
        RowIdGenerator::default()
    }

    /// `max(now_ns, last + 1)`.
    pub fn next(&self) -> RowId {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(unix_nanos_now()).unwrap_or(0);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return RowId(next),
                Err(seen) => last = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_duration_nanos(12_500_000_000), "12.5s");
        assert_eq!(format_duration_nanos(-33_333_333), "-0.033333333s");
        assert_eq!(format_duration_nanos(2_000_000_000), "2s");
        assert_eq!(format_timestamp_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_timestamp_nanos(1_763_720_000_123_000_000),
            "2025-11-21T10:13:20.123000000Z"
        );
        assert_eq!(TimeKind::Sequence.format_value(7), "#7");
    }

    #[test]
    fn row_ids_strictly_increase_across_threads() {
        let generator = std::sync::Arc::new(RowIdGenerator::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = generator.clone();
                std::thread::spawn(move || (0..10_000).map(|_| g.next().0).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "row ids must be unique");
    }

    #[test]
    fn time_point_basics() {
        let tp = TimePoint::new()
            .with("time", TimeCell::from_duration_secs(1.5))
            .with("frame", TimeCell::from_sequence(3));
        assert_eq!(
            tp.get("time"),
            Some(TimeCell::from_duration_nanos(1_500_000_000))
        );
        assert_eq!(tp.len(), 2);
        assert!(!tp.is_static());
    }
}
