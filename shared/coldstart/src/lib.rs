//! Helpers for the cold-start bench (`src/bin/coldstart.rs`): statistics and
//! command-line value parsing, kept here so they can be unit tested.

use std::path::PathBuf;

/// The `p`-th percentile (0–100) of `samples`, by linear interpolation between
/// the closest ranks (the same definition as NumPy's default / Excel's
/// `PERCENTILE.INC`). The median is `percentile(samples, 50.0)`.
///
/// Returns `None` for an empty slice or a `p` outside 0–100 (or NaN).
/// The input does not need to be sorted.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * weight)
}

/// Summary of one series of timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` when there are no samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        Some(Self {
            median: percentile(samples, 50.0)?,
            p90: percentile(samples, 90.0)?,
            min: percentile(samples, 0.0)?,
            max: percentile(samples, 100.0)?,
        })
    }
}

/// A binary to measure: `--function NAME=BINARY[:EVENT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    /// JSON file handed out as the first invocation's event; `None` means `{}`.
    pub event: Option<PathBuf>,
}

/// Parses `NAME=BINARY[:EVENT]`. The binary and the event are split at the
/// last `:`, so a binary path must not contain one when an event is given.
pub fn parse_function_spec(s: &str) -> Result<FunctionSpec, String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=BINARY:EVENT, got {s:?}"))?;
    if name.is_empty() {
        return Err(format!("empty function name in {s:?}"));
    }
    let (binary, event) = match rest.rsplit_once(':') {
        Some((binary, event)) => (binary, Some(event)),
        None => (rest, None),
    };
    if binary.is_empty() {
        return Err(format!("empty binary path in {s:?}"));
    }
    if event == Some("") {
        return Err(format!("empty event path in {s:?}"));
    }
    Ok(FunctionSpec {
        name: name.to_owned(),
        binary: PathBuf::from(binary),
        event: event.map(PathBuf::from),
    })
}

/// Parses an extra environment variable `KEY=VALUE` (the value may be empty
/// and may contain `=`).
pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentile_empty_and_out_of_range() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0], -1.0), None);
        assert_eq!(percentile(&[1.0], 100.1), None);
        assert_eq!(percentile(&[1.0], f64::NAN), None);
    }

    #[test]
    fn percentile_single_sample_is_that_sample() {
        for p in [0.0, 50.0, 90.0, 100.0] {
            assert_eq!(percentile(&[7.5], p), Some(7.5));
        }
    }

    #[test]
    fn median_odd_and_even_unsorted() {
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 50.0), Some(2.5));
    }

    #[test]
    fn p90_interpolates_between_ranks() {
        // 1..=10: rank = 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9)
        let xs: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert!(close(percentile(&xs, 90.0).unwrap(), 9.1));
        // five samples: rank 3.6 between 40 and 50
        let ys = [10.0, 50.0, 20.0, 40.0, 30.0];
        assert!(close(percentile(&ys, 90.0).unwrap(), 46.0));
        assert_eq!(percentile(&ys, 0.0), Some(10.0));
        assert_eq!(percentile(&ys, 100.0), Some(50.0));
    }

    #[test]
    fn summary_of_samples() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        assert!(close(s.p90, 4.6));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn function_spec_parsing() {
        assert_eq!(
            parse_function_spec("forms=target/release/forms:/tmp/ev.json").unwrap(),
            FunctionSpec {
                name: "forms".into(),
                binary: "target/release/forms".into(),
                event: Some("/tmp/ev.json".into()),
            }
        );
        let no_event = parse_function_spec("f=./bin").unwrap();
        assert_eq!(no_event.event, None);
        assert!(parse_function_spec("nobinary").is_err());
        assert!(parse_function_spec("=x:y").is_err());
        assert!(parse_function_spec("f=:y").is_err());
        assert!(parse_function_spec("f=x:").is_err());
    }

    #[test]
    fn env_parsing() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_env("A=").unwrap(), ("A".into(), String::new()));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("A").is_err());
    }
}
