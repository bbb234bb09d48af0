//! Sizes and durations as people type them: `4KiB`, `16MiB`, `1GiB`, `10s`,
//! `2m`, and back to labels (`16MiB`) for default key prefixes and tables.
//!
//! Pure functions only; this module never does I/O and never panics on
//! input (every malformed value is an `Err` with the offending text).

use std::time::Duration;

/// Parses a byte size: a number (decimals allowed) and an optional unit.
/// `KiB`/`MiB`/`GiB`/`TiB` and the bare letters `K`/`M`/`G`/`T` are binary
/// (4K = 4096); `kB`/`MB`/`GB`/`TB` are decimal; no unit or `B` is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 200B, 4KiB, 16MiB, 1GiB)"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "K" | "k" | "KiB" | "Ki" => 1 << 10,
        "M" | "m" | "MiB" | "Mi" => 1 << 20,
        "G" | "g" | "GiB" | "Gi" => 1 << 30,
        "T" | "t" | "TiB" | "Ti" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(format!("unknown size unit '{other}' in '{text}'")),
    };
    let bytes = (value * multiplier as f64).round();
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("size '{text}' is out of range"));
    }
    Ok(bytes as u64)
}

/// Shortest exact label for a byte count: 4096 → `4KiB`, 1000 → `1000B`.
pub fn size_label(bytes: u64) -> String {
    for (unit_bytes, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes >= unit_bytes && bytes.is_multiple_of(unit_bytes) {
            return format!("{}{unit}", bytes / unit_bytes);
        }
    }
    format!("{bytes}B")
}

/// Parses a duration: `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (examples: 500ms, 10s, 2m)"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit '{other}' in '{text}'")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration '{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_binary_and_decimal_units() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size("200B"), Ok(200));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size(" 1MB "), Ok(1_000_000));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(parse_size("").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("1.2.3MiB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn labels_round_trip() {
        for label in ["4KiB", "64KiB", "16MiB", "1GiB", "200B", "1000B"] {
            assert_eq!(size_label(parse_size(label).unwrap()), label);
        }
        assert_eq!(size_label(1536), "1536B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
