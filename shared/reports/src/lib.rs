//! Usage reports (利用状況レポート) for municipal staff: how many applications came in per
//! procedure, day and hour, how many were completed and how long that took.
//!
//! Seed 000 (泉大津市) section 10(2) asks for a monthly report of online-application usage
//! per procedure; seed 003 (小郡市) asks for counts per day, per hour and per department.
//! The caller streams one [`ReportRow`] per application into an [`Aggregator`]; memory
//! grows with the number of procedures and days, never with the number of applications.
//! What each number means is written for staff in `docs/reports.md`; keep the two in step.
//!
//! Days and hours are Japan Standard Time (日本標準時), computed with the fixed offset
//! +09:00 rather than the `Asia/Tokyo` tz database entry: Japan has had no daylight saving
//! time since 1951, and a fixed offset needs no tzdb on a minimal Lambda image.

mod chart;
mod usage;

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

pub use chart::svg_chart;
pub use usage::{MONTHLY_USAGE_HEADER, TOTAL_ROW_LABEL, monthly_usage_csv, monthly_usage_rows};

/// Longest period one report covers (a leap year, so that a fiscal-year report 年度 fits).
/// Bounds memory, which grows with procedures × days, whatever a client asks for.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// The status an application has when it is done (完了).
pub const STATUS_COMPLETED: &str = "completed";

const SECONDS_PER_DAY: i64 = 86_400;
const JST_OFFSET_SECONDS: i64 = 9 * 3_600;

/// One application, as the caller streams it in.
#[derive(Debug, Clone)]
pub struct ReportRow {
    /// Form slug: identifies the procedure (手続).
    pub form: String,
    pub form_title: String,
    /// Id of the owning department (担当課).
    pub department: String,
    /// payment_pending | received | in_review | returned | on_hold | completed | rejected |
    /// withdrawn | cancelled (`ApplicationStatus::as_str`)
    pub status: String,
    pub submitted_at: Timestamp,
    /// When the application reached 完了; counted only with status `completed`.
    pub completed_at: Option<Timestamp>,
}

/// The numbers of one procedure.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FormCount {
    pub slug: String,
    pub title: String,
    pub department: String,
    /// Applications submitted in the period (申請件数).
    pub count: u64,
    /// Applications completed in the period (完了件数), whenever they were submitted.
    pub completed: u64,
    /// Mean of completed_at − submitted_at over `completed`, in hours (平均処理時間).
    pub average_hours_to_complete: Option<f64>,
}

/// Applications per day of one procedure, for the stacked chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FormDays {
    pub slug: String,
    /// One count per day of the period, aligned with [`Report::by_day`].
    pub per_day: Vec<u64>,
}

/// Counts for a period of days, `from` to `to` inclusive, in Japan Standard Time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub from: Date,
    pub to: Date,
    /// Applications submitted in the period.
    pub total: u64,
    /// Procedures with applications submitted or completed in the period; most
    /// applications first, then by slug.
    pub by_form: Vec<FormCount>,
    /// Current status of the applications submitted in the period.
    pub by_status: BTreeMap<String, u64>,
    /// Applications submitted in the period per owning department.
    pub by_department: BTreeMap<String, u64>,
    /// Every day of the period, zeros included.
    pub by_day: Vec<(Date, u64)>,
    /// Applications submitted in the period per hour of the day (0 = 0:00–0:59).
    pub by_hour: [u64; 24],
    /// Applications completed in the period.
    pub completed: u64,
    /// Mean of completed_at − submitted_at over `completed`, in hours.
    pub average_hours_to_complete: Option<f64>,
    /// Per procedure, in the order of `by_form`: applications per day.
    pub by_form_day: Vec<FormDays>,
}

/// Collects [`ReportRow`]s into a [`Report`].
pub struct Aggregator {
    from: Date,
    to: Date,
    /// Tokyo day number (days since 1970-01-01) of `from`.
    first_day: i64,
    days: usize,
    total: u64,
    forms: BTreeMap<String, FormAcc>,
    by_status: BTreeMap<String, u64>,
    by_department: BTreeMap<String, u64>,
    by_hour: [u64; 24],
    completed: u64,
    completed_seconds: u128,
}

#[derive(Default)]
struct FormAcc {
    title: String,
    department: String,
    /// Submission time of the row `title` and `department` come from: the latest wins, so
    /// a renamed or moved form shows its current name whatever order rows arrive in.
    named_at: Option<Timestamp>,
    count: u64,
    completed: u64,
    completed_seconds: u128,
    per_day: Vec<u64>,
}

impl Default for Aggregator {
    /// An empty report for the single day [`Date::default`]; use [`Aggregator::new`].
    fn default() -> Self {
        Aggregator::new(Date::default(), Date::default())
    }
}

impl Aggregator {
    /// A report for the days `period_from` to `period_to`, both included.
    ///
    /// Reversed dates are swapped. A period longer than [`MAX_PERIOD_DAYS`] is cut to that
    /// many days; the report's `to` shows the day it ends on.
    pub fn new(period_from: Date, period_to: Date) -> Self {
        let (from, to) = if period_from <= period_to {
            (period_from, period_to)
        } else {
            (period_to, period_from)
        };
        let first_day = day_number(from);
        let days = (day_number(to) - first_day + 1).min(MAX_PERIOD_DAYS);
        // `days` ≤ the real length, so the series reaches it without overflowing.
        let to = from.series(1.day()).nth((days - 1) as usize).unwrap_or(to);
        Aggregator {
            from,
            to,
            first_day,
            days: days as usize,
            total: 0,
            forms: BTreeMap::new(),
            by_status: BTreeMap::new(),
            by_department: BTreeMap::new(),
            by_hour: [0; 24],
            completed: 0,
            completed_seconds: 0,
        }
    }

    /// Counts one application: where it was submitted in the period, and separately
    /// whether it was completed in the period. Rows with neither are ignored.
    pub fn add(&mut self, row: &ReportRow) {
        let submitted_day = self.day_index(row.submitted_at);
        let completion = match row.completed_at {
            Some(done) if row.status == STATUS_COMPLETED && self.day_index(done).is_some() => {
                // A completion stamped before the submission is a clock error, not a
                // negative duration; it counts as zero.
                let seconds = done
                    .as_second()
                    .saturating_sub(row.submitted_at.as_second());
                Some(seconds.max(0) as u128)
            }
            _ => None,
        };
        if submitted_day.is_none() && completion.is_none() {
            return;
        }

        let days = self.days;
        let form = self.forms.entry(row.form.clone()).or_default();
        let newer = match form.named_at {
            None => true,
            // Equal times: the larger title wins, so the result never depends on order.
            Some(at) => {
                (row.submitted_at, &row.form_title, &row.department)
                    > (at, &form.title, &form.department)
            }
        };
        if newer {
            form.named_at = Some(row.submitted_at);
            form.title.clone_from(&row.form_title);
            form.department.clone_from(&row.department);
        }
        if let Some(day) = submitted_day {
            form.count += 1;
            if form.per_day.is_empty() {
                form.per_day = vec![0; days];
            }
            form.per_day[day] += 1;
            self.total += 1;
            *self.by_status.entry(row.status.clone()).or_default() += 1;
            *self
                .by_department
                .entry(row.department.clone())
                .or_default() += 1;
            self.by_hour[tokyo_hour(row.submitted_at)] += 1;
        }
        if let Some(seconds) = completion {
            form.completed += 1;
            form.completed_seconds += seconds;
            self.completed += 1;
            self.completed_seconds += seconds;
        }
    }

    pub fn finish(self) -> Report {
        let dates: Vec<Date> = self.from.series(1.day()).take(self.days).collect();
        let mut by_day: Vec<(Date, u64)> = dates.iter().map(|d| (*d, 0)).collect();
        for form in self.forms.values() {
            for (slot, n) in by_day.iter_mut().zip(&form.per_day) {
                slot.1 += n;
            }
        }

        let mut forms: Vec<(String, FormAcc)> = self.forms.into_iter().collect();
        // Stable sort over slug order: ties keep slug order.
        forms.sort_by(|a, b| {
            b.1.count
                .cmp(&a.1.count)
                .then(b.1.completed.cmp(&a.1.completed))
        });

        let mut by_form = Vec::with_capacity(forms.len());
        let mut by_form_day = Vec::with_capacity(forms.len());
        for (slug, acc) in forms {
            by_form.push(FormCount {
                slug: slug.clone(),
                title: acc.title,
                department: acc.department,
                count: acc.count,
                completed: acc.completed,
                average_hours_to_complete: average_hours(acc.completed_seconds, acc.completed),
            });
            let per_day = if acc.per_day.is_empty() {
                vec![0; self.days]
            } else {
                acc.per_day
            };
            by_form_day.push(FormDays { slug, per_day });
        }

        Report {
            from: self.from,
            to: self.to,
            total: self.total,
            by_form,
            by_status: self.by_status,
            by_department: self.by_department,
            by_day,
            by_hour: self.by_hour,
            completed: self.completed,
            average_hours_to_complete: average_hours(self.completed_seconds, self.completed),
            by_form_day,
        }
    }

    /// Index into the period of the Tokyo day `at` falls on, if it is in the period.
    fn day_index(&self, at: Timestamp) -> Option<usize> {
        let index = tokyo_day_number(at) - self.first_day;
        (0..self.days as i64)
            .contains(&index)
            .then_some(index as usize)
    }
}

fn average_hours(seconds: u128, count: u64) -> Option<f64> {
    (count > 0).then(|| seconds as f64 / count as f64 / 3_600.0)
}

/// Days since 1970-01-01 of the Tokyo calendar day `at` falls on.
fn tokyo_day_number(at: Timestamp) -> i64 {
    (at.as_second() + JST_OFFSET_SECONDS).div_euclid(SECONDS_PER_DAY)
}

/// Hour of the day in Tokyo, 0–23.
fn tokyo_hour(at: Timestamp) -> usize {
    ((at.as_second() + JST_OFFSET_SECONDS).rem_euclid(SECONDS_PER_DAY) / 3_600) as usize
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
/// Integer day numbers make the per-row period check cheap and infallible.
fn day_number(date: Date) -> i64 {
    let (mut y, m, d) = (
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    );
    if m <= 2 {
        y -= 1;
    }
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_number_agrees_with_jiff() {
        let tz = jiff::tz::TimeZone::UTC;
        for date in [
            jiff::civil::date(1970, 1, 1),
            jiff::civil::date(1969, 12, 31),
            jiff::civil::date(2000, 2, 29),
            jiff::civil::date(2026, 11, 30),
            jiff::civil::date(1, 1, 1),
            jiff::civil::date(-500, 3, 1),
            jiff::civil::date(9999, 12, 30),
        ] {
            let seconds = date.to_zoned(tz.clone()).unwrap().timestamp().as_second();
            assert_eq!(day_number(date) * SECONDS_PER_DAY, seconds, "{date}");
        }
        let start = jiff::civil::date(1999, 1, 1);
        for (i, date) in start.series(1.day()).take(3 * 366).enumerate() {
            assert_eq!(day_number(date), day_number(start) + i as i64, "{date}");
        }
    }

    #[test]
    fn tokyo_day_and_hour_use_plus_nine() {
        let at: Timestamp = "2026-10-31T15:00:00Z".parse().unwrap(); // 11-01 00:00 JST
        assert_eq!(
            tokyo_day_number(at),
            day_number(jiff::civil::date(2026, 11, 1))
        );
        assert_eq!(tokyo_hour(at), 0);
        let before: Timestamp = "2026-10-31T14:59:59Z".parse().unwrap();
        assert_eq!(
            tokyo_day_number(before),
            day_number(jiff::civil::date(2026, 10, 31))
        );
        assert_eq!(tokyo_hour(before), 23);
        // Same as the tz database's Asia/Tokyo, where one is available.
        if let Ok(tz) = jiff::tz::TimeZone::get("Asia/Tokyo") {
            let zoned = at.to_zoned(tz);
            assert_eq!(zoned.date(), jiff::civil::date(2026, 11, 1));
            assert_eq!(zoned.hour(), 0);
        }
    }
}
