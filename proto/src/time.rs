//! Times on the wire: seconds (signed: before 1970 is negative) and nanoseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds (negative before 1970) and nanoseconds of a time, as attributes carry it.
pub fn split_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            // In i128: the earliest time a SystemTime holds is 2^63 s before the epoch, whose
            // negation overflows i64.
            let d = e.duration();
            let (s, n) = (i128::from(d.as_secs()), d.subsec_nanos());
            let (s, n) = if n == 0 { (-s, 0) } else { (-s - 1, 1_000_000_000 - n) };
            (s.max(i128::from(i64::MIN)) as i64, n)
        }
    }
}

/// The time `sec` seconds and `nsec` nanoseconds after the epoch (before it for a negative
/// `sec`), as SETATTR carries it. Nanoseconds past 999,999,999 are clamped; a time the
/// platform cannot hold is the epoch.
pub fn system_time(sec: i64, nsec: u32) -> SystemTime {
    let nsec = nsec.min(999_999_999);
    if sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(sec as u64, nsec)).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(sec.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(nsec.into())))
            .unwrap_or(UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_and_after_epoch_round_trip() {
        for (s, n) in [(0i64, 0u32), (1_700_000_000, 123), (-1, 500_000_000), (-10, 0)] {
            assert_eq!(split_time(system_time(s, n)), (s, n));
        }
        // The earliest time SETATTR can carry (sec = i64::MIN) does not overflow.
        assert_eq!(split_time(system_time(i64::MIN, 0)).0, i64::MIN);
    }
}
