//! Calendar time without a time library: unix milliseconds as a UTC date and time, for
//! backup ids and for people (the UI) — pure — and [`now_ms`], the one reading of the
//! clock every crate shares (the planner and the policy never read it: they take time
//! as values).

/// The current time in unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A moment in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl UtcTime {
    /// The UTC date and time of unix milliseconds.
    pub fn from_unix_ms(ms: i64) -> UtcTime {
        let secs = ms.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

impl std::fmt::Display for UtcTime {
    /// `2026-12-01 18:20:05 UTC`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_people_read_it() {
        assert_eq!(
            UtcTime::from_unix_ms(951_782_405_000).to_string(),
            "2000-02-29 00:00:05 UTC"
        );
    }

    #[test]
    fn civil_dates() {
        let t = UtcTime::from_unix_ms(951_782_400_000);
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
        let t = UtcTime::from_unix_ms(1_796_149_205_000);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second),
            (2026, 12, 1, 18, 20, 5)
        );
    }
}
