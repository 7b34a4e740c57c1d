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

impl TimeKind {
    /// Parses a value of this kind as people write it:
    /// - sequence: `120` or `#120`;
    /// - duration: `12.5s`, `1500ms`, `250us`, `40ns`, `2m`, `1h`, or a bare number of seconds;
    /// - timestamp: RFC 3339 (`2026-11-21T10:00:00.5Z`, `...+01:00`) or integer ns since the epoch.
    pub fn parse_value(self, text: &str) -> Result<i64, String> {
        let t = text.trim();
        match self {
            TimeKind::Sequence => t
                .strip_prefix('#')
                .unwrap_or(t)
                .parse::<i64>()
                .map_err(|_| format!("{text:?} is not a sequence number like 120")),
            TimeKind::Duration => parse_duration_nanos(t).ok_or_else(|| {
                format!("{text:?} is not a duration like 12.5s, 1500ms, 250us or 40ns")
            }),
            TimeKind::Timestamp => t
                .parse::<i64>()
                .ok()
                .or_else(|| parse_rfc3339_nanos(t))
                .ok_or_else(|| {
                    format!("{text:?} is not an RFC 3339 timestamp like 2026-11-21T10:00:00Z")
                }),
        }
    }
}

/// `12.5s`, `1500ms`, `250us`, `40ns`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration_nanos(text: &str) -> Option<i64> {
    let units: [(&str, i128); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((text, 1_000_000_000));
    decimal_times(number.trim(), unit)
}

/// `number * scale` for a decimal `number`, exact (rounded to the nearest unit).
fn decimal_times(number: &str, scale: i128) -> Option<i64> {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || frac.len() > 18 {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(scale)?;
    if !frac.is_empty() {
        let frac_value: i128 = frac.parse().ok()?;
        let denom = 10i128.pow(frac.len() as u32);
        value += (frac_value * scale + denom / 2) / denom;
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).ok()
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`) to ns since the Unix epoch.
pub fn parse_rfc3339_nanos(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { text.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = frac[..digits].parse::<i64>().ok()? * 10i64.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn parse_values() {
        let d = TimeKind::Duration;
        assert_eq!(d.parse_value("12.5s"), Ok(12_500_000_000));
        assert_eq!(d.parse_value("1500ms"), Ok(1_500_000_000));
        assert_eq!(d.parse_value("250us"), Ok(250_000));
        assert_eq!(d.parse_value("40ns"), Ok(40));
        assert_eq!(d.parse_value("2"), Ok(2_000_000_000));
        assert_eq!(d.parse_value("-0.5s"), Ok(-500_000_000));
        assert_eq!(d.parse_value("1m"), Ok(60_000_000_000));
        assert!(d.parse_value("abc").is_err());
        assert!(d.parse_value("1.2.3s").is_err());
        assert_eq!(TimeKind::Sequence.parse_value("#12"), Ok(12));
        assert!(TimeKind::Sequence.parse_value("1.5").is_err());
        let t = TimeKind::Timestamp;
        assert_eq!(t.parse_value("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
        let ns = 1_763_720_000_123_000_000;
        assert_eq!(t.parse_value("2025-11-21T10:13:20.123Z"), Ok(ns));
        assert_eq!(t.parse_value("2025-11-21T11:13:20.123+01:00"), Ok(ns));
        assert_eq!(t.parse_value(&format_timestamp_nanos(ns)), Ok(ns));
        assert_eq!(t.parse_value("42"), Ok(42));
        assert!(t.parse_value("2025-13-01T00:00:00Z").is_err());
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
