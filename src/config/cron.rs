//! Unix cron expressions as Cloud Scheduler reads them (minute hour day-of-month month
//! day-of-week): parsing with an error that names the field and its range, and how often an
//! expression fires in an average month (what the cost estimate prices a scheduled job by).

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// One cron field's name, bounds and symbolic names.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Three-letter names for `min..`, upper case (`JAN`, `SUN`).
    names: &'static [&'static str],
}

impl FieldSpec {
    const fn new(name: &'static str, min: u32, max: u32, names: &'static [&'static str]) -> Self {
        Self {
            name,
            min,
            max,
            names,
        }
    }
}

const MINUTE: FieldSpec = FieldSpec::new("minute", 0, 59, &[]);
const HOUR: FieldSpec = FieldSpec::new("hour", 0, 23, &[]);
const DAY_OF_MONTH: FieldSpec = FieldSpec::new("day-of-month", 1, 31, &[]);
const MONTH: FieldSpec = FieldSpec::new(
    "month",
    1,
    12,
    &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
);
/// 0 and 7 are both Sunday.
const DAY_OF_WEEK: FieldSpec = FieldSpec::new(
    "day-of-week",
    0,
    7,
    &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
);

/// The values one field allows, as a bit set (bit `n` = value `n`), and whether it was
/// written as `*` (which matters for the day-of-month / day-of-week rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Values {
    bits: u64,
    star: bool,
}

impl Values {
    fn contains(self, value: u32) -> bool {
        self.bits & (1 << value) != 0
    }

    fn count(self) -> u32 {
        self.bits.count_ones()
    }
}

/// A parsed five-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Values,
    hours: Values,
    days_of_month: Values,
    months: Values,
    /// Sunday is 0 (a written 7 is folded into 0).
    days_of_week: Values,
}

/// Why a cron expression was refused: the field, what was wrong, and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

impl FromStr for Cron {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(CronError(format!(
                "{} field{}, but unix cron has five: minute hour day-of-month month day-of-week",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            )));
        };
        let mut days_of_week = parse_field(day_of_week, &DAY_OF_WEEK)?;
        if days_of_week.contains(7) {
            days_of_week.bits = (days_of_week.bits & !(1 << 7)) | 1;
        }
        Ok(Cron {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)?,
            days_of_month: parse_field(day_of_month, &DAY_OF_MONTH)?,
            months: parse_field(month, &MONTH)?,
            days_of_week,
        })
    }
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<Values, CronError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        bits |= parse_item(item, spec).map_err(|why| {
            let names = match spec.names {
                [] => String::new(),
                names => format!(" or {}-{}", names[0], names[names.len() - 1]),
            };
            CronError(format!(
                "{} field `{text}`: {why} (allowed: {}-{}{names}, `*`, ranges a-b, steps */n, lists a,b)",
                spec.name, spec.min, spec.max
            ))
        })?;
    }
    Ok(Values {
        bits,
        star: text.starts_with('*'),
    })
}

/// One list item: `*`, `*/n`, `a`, `a-b`, `a-b/n` or `a/n` (from `a` to the field's maximum).
fn parse_item(item: &str, spec: &FieldSpec) -> Result<u64, String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => {
            let step: u32 = step
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("step `{step}` is not a positive number"))?;
            (range, Some(step))
        }
        None => (item, None),
    };
    let (low, high) = match range {
        "*" => (spec.min, spec.max),
        _ => match range.split_once('-') {
            Some((low, high)) => (value(low, spec)?, value(high, spec)?),
            None => {
                let low = value(range, spec)?;
                (low, if step.is_some() { spec.max } else { low })
            }
        },
    };
    if low > high {
        return Err(format!("range `{range}` runs backwards"));
    }
    let step = step.unwrap_or(1) as usize;
    Ok((low..=high)
        .step_by(step)
        .fold(0, |bits, v| bits | (1 << v)))
}

fn value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Some(index) = spec
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(spec.min + u32::try_from(index).unwrap_or(0));
    }
    match text.parse::<u32>() {
        Ok(v) if (spec.min..=spec.max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is out of range")),
        Err(_) => Err(format!("`{text}` is not a number")),
    }
}

/// The year whose calendar averages the month: not a leap year, so 365 days.
const REFERENCE_YEAR: i32 = 2027;

impl Cron {
    /// Whether the expression fires on `date` at all (Vixie cron's rule: when both
    /// day-of-month and day-of-week are restricted, either one matching is enough; when either
    /// is written starting with `*`, `*/2` included, both must match).
    fn fires_on(&self, date: NaiveDate) -> bool {
        if !self.months.contains(date.month()) {
            return false;
        }
        let by_month_day = self.days_of_month.contains(date.day());
        let by_weekday = self
            .days_of_week
            .contains(date.weekday().num_days_from_sunday());
        if self.days_of_month.star || self.days_of_week.star {
            by_month_day && by_weekday
        } else {
            by_month_day || by_weekday
        }
    }

    /// How many times it fires in an average 30-day month: its runs over a 365-day year,
    /// scaled to 30 days (so `0 * * * *` fires 720 times, matching the estimate's month).
    /// Daylight-saving shifts in the job's time zone are ignored.
    pub fn runs_per_month(&self) -> f64 {
        let first = NaiveDate::from_ymd_opt(REFERENCE_YEAR, 1, 1).unwrap_or_default();
        let days = first
            .iter_days()
            .take_while(|d| d.year() == REFERENCE_YEAR)
            .filter(|d| self.fires_on(*d))
            .count();
        let per_day = f64::from(self.hours.count()) * f64::from(self.minutes.count());
        days as f64 * per_day / 365.0 * 30.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(cron: &str) -> f64 {
        cron.parse::<Cron>().expect(cron).runs_per_month()
    }

    #[test]
    fn common_schedules_fire_as_often_as_a_person_would_count() {
        assert_eq!(runs("0 * * * *"), 720.0);
        assert_eq!(runs("*/15 * * * *"), 2880.0);
        assert_eq!(runs("0 3 * * *"), 30.0);
        assert_eq!(runs("30 2,14 * * *"), 60.0);
        // 12 first-of-months a year.
        assert!((runs("0 0 1 * *") - 12.0 / 365.0 * 30.0).abs() < 1e-9);
        // 2027 has 261 weekdays: Monday to Friday at 09:00.
        assert!((runs("0 9 * * MON-FRI") - 261.0 / 365.0 * 30.0).abs() < 1e-9);
        assert_eq!(runs("0 9 * * 1-5"), runs("0 9 * * mon-fri"));
        // 7 and 0 are both Sunday: 52 Sundays in 2027.
        assert_eq!(runs("0 0 * * 7"), runs("0 0 * * 0"));
        assert!((runs("0 0 * * SUN") - 52.0 / 365.0 * 30.0).abs() < 1e-9);
    }

    #[test]
    fn restricted_day_of_month_and_weekday_fire_on_either() {
        // The 13th (12 days) or any Friday (53 in 2027), Friday the 13th counted once (Aug).
        assert!((runs("0 0 13 * 5") - (12.0 + 53.0 - 1.0) / 365.0 * 30.0).abs() < 1e-9);
    }

    #[test]
    fn a_starred_step_in_one_day_field_narrows_the_other() {
        // Mondays that fall on odd days of the month, counted with chrono's calendar.
        let odd_mondays = (0..365)
            .filter_map(|d| NaiveDate::from_yo_opt(REFERENCE_YEAR, d + 1))
            .filter(|d| d.weekday() == chrono::Weekday::Mon && d.day() % 2 == 1)
            .count();
        assert_eq!(odd_mondays, 27);
        assert!((runs("0 0 */2 * 1") - 27.0 / 365.0 * 30.0).abs() < 1e-9);
        // Without the star both restricted fields widen each other: odd days or Mondays.
        assert!(runs("0 0 1-31/2 * 1") > runs("0 0 */2 * 1"));
    }

    #[test]
    fn steps_ranges_and_lists_combine() {
        assert_eq!(runs("0-29/10,45 0 * * *"), 4.0 * 30.0);
        // `a/n` runs from a to the field's maximum.
        assert_eq!(runs("5/20 0 * * *"), 3.0 * 30.0);
        // Only January: 31 days of 365.
        assert!((runs("0 0 * JAN *") - 31.0 / 365.0 * 30.0).abs() < 1e-9);
    }

    #[test]
    fn errors_name_the_field_and_what_it_allows() {
        let error = |cron: &str| cron.parse::<Cron>().unwrap_err().to_string();
        assert_eq!(
            error("61 * * * *"),
            "minute field `61`: 61 is out of range (allowed: 0-59, `*`, ranges a-b, steps */n, lists a,b)"
        );
        assert_eq!(
            error("0 * * 13 *"),
            "month field `13`: 13 is out of range (allowed: 1-12 or JAN-DEC, `*`, ranges a-b, steps */n, lists a,b)"
        );
        assert!(
            error("0 * * * FUNDAY")
                .starts_with("day-of-week field `FUNDAY`: `FUNDAY` is not a number")
        );
        assert!(error("*/0 * * * *").contains("step `0` is not a positive number"));
        assert!(error("0 5-2 * * *").contains("range `5-2` runs backwards"));
        assert_eq!(
            error("0 * * *"),
            "4 fields, but unix cron has five: minute hour day-of-month month day-of-week"
        );
    }
}
