//! Features in plain words, for the drivers a CRM agent reads next to a score.

use std::fmt;

use super::{FEATURE_NAMES, MAX_DAYS};

/// Numbers in the sentences are rounded (half away from zero) and written with integer
/// arithmetic: formatting floats to a fixed precision was a third of the cost of a driver,
/// and drivers are built for every score.
fn whole(value: f64) -> i64 {
    value.round() as i64
}

/// `value` to one decimal, e.g. `4.3`.
struct Tenths(i64);

fn tenths(value: f64) -> Tenths {
    Tenths(whole(value * 10.0))
}

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}{}.{}", magnitude / 10, magnitude % 10)
    }
}

/// A count with its noun, e.g. `1 service failure`, `2 service failures`.
struct Count<'a> {
    count: i64,
    noun: &'a str,
}

fn plural<'a>(count: f64, one: &'a str, many: &'a str) -> Count<'a> {
    let count = whole(count);
    Count {
        count,
        noun: if count == 1 { one } else { many },
    }
}

impl fmt::Display for Count<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.count, self.noun)
    }
}

/// A sentence about the customer's value of feature `index`, or `None` when the value says
/// nothing worth telling (an absent one-hot, a neutral default).
pub fn describe(index: usize, value: f64) -> Option<String> {
    let name = *FEATURE_NAMES.get(index)?;
    let days = |what: &str| {
        if value >= MAX_DAYS {
            format!("no {what} in the last year")
        } else {
            format!("last {what} {} ago", plural(value, "day", "days"))
        }
    };
    let text = match name {
        "segment_consumer"
        | "segment_small_business"
        | "segment_mid_market"
        | "segment_enterprise" => {
            if value < 0.5 {
                return None;
            }
            format!(
                "{} customer",
                name.trim_start_matches("segment_").replace('_', " ")
            )
        }
        "plan_tier" => format!(
            "on the {} plan",
            ["free", "basic", "standard", "premium"]
                .get(value.round() as usize)
                .unwrap_or(&"unknown")
        ),
        "log_annual_value" => format!("annual value {}", whole(value.exp_m1())),
        "tenure_years" => {
            if value < 1.0 {
                format!("customer for {}", plural(value * 12.0, "month", "months"))
            } else {
                format!("customer for {} years", tenths(value))
            }
        }
        "log_usage_7d" => format!("usage {} in the last 7 days", whole(value.exp_m1())),
        "log_usage_30d" => format!("usage {} in the last 30 days", whole(value.exp_m1())),
        "log_usage_90d" => format!("usage {} in the last 90 days", whole(value.exp_m1())),
        "days_since_last_activity" => {
            if value >= MAX_DAYS {
                "no activity in the last year".to_owned()
            } else {
                format!("no activity for {}", plural(value, "day", "days"))
            }
        }
        "no_activity_90d" => {
            if value < 0.5 {
                return None;
            }
            "no activity in the last 90 days".to_owned()
        }
        "usage_trend" => {
            let percent = whole(value * 100.0);
            if percent < 0 {
                format!("usage down {}% on the previous 60 days", -percent)
            } else if percent > 0 {
                format!("usage up {percent}% on the previous 60 days")
            } else {
                "usage steady on the previous 60 days".to_owned()
            }
        }
        "failures_30d" => format!(
            "{} in the last 30 days",
            plural(value, "service failure", "service failures")
        ),
        "failures_90d" => format!(
            "{} in the last 90 days",
            plural(value, "service failure", "service failures")
        ),
        "repeat_failures_90d" => {
            if value < 0.5 {
                return None;
            }
            "more than one bad experience in 90 days".to_owned()
        }
        "unresolved_issues_90d" => {
            plural(value, "unresolved issue", "unresolved issues").to_string()
        }
        "repeat_contacts_90d" => format!(
            "{} about the same issue in the last 90 days",
            plural(value, "repeat contact", "repeat contacts")
        ),
        "mean_wait_minutes_90d" => {
            format!("waited {} minutes on average for an agent", whole(value))
        }
        "first_contact_resolution_rate_90d" => {
            format!(
                "{}% of contacts resolved at first contact",
                whole(value * 100.0)
            )
        }
        "no_contacts_90d" => {
            if value < 0.5 {
                return None;
            }
            "no contact with service in the last 90 days".to_owned()
        }
        "days_since_last_failure" => days("service failure"),
        "latest_csat" => {
            if value < 1.0 {
                return None;
            }
            format!("latest CSAT {} of 5", whole(value))
        }
        "mean_csat_180d" => {
            if value < 1.0 {
                return None;
            }
            format!("average CSAT {} of 5 over 6 months", tenths(value))
        }
        "no_csat_180d" => {
            if value < 0.5 {
                return None;
            }
            "no CSAT answer in 6 months".to_owned()
        }
        "csat_trend" => {
            if value.abs() < 0.05 {
                return None;
            }
            format!(
                "CSAT {} {} points on earlier answers",
                if value < 0.0 { "down" } else { "up" },
                tenths(value.abs())
            )
        }
        "nps_detractor" => {
            if value < 0.5 {
                return None;
            }
            "latest NPS answer is a detractor (0–6)".to_owned()
        }
        "nps_promoter" => {
            if value < 0.5 {
                return None;
            }
            "latest NPS answer is a promoter (9–10)".to_owned()
        }
        "no_nps" => {
            if value < 0.5 {
                return None;
            }
            "never answered an NPS survey".to_owned()
        }
        "days_since_last_survey" => days("survey answer"),
        "recovery_cases_90d" => format!(
            "{} in the last 90 days",
            plural(value, "recovery case", "recovery cases")
        ),
        "mean_recovery_rating_90d" => {
            if value < 1.0 {
                return None;
            }
            format!("recent recoveries rated {} of 7", tenths(value))
        }
        "no_recovery_90d" => return None,
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(name: &str, value: f64) -> Option<String> {
        describe(
            FEATURE_NAMES
                .iter()
                .position(|n| *n == name)
                .expect("a feature"),
            value,
        )
    }

    #[test]
    fn drivers_read_as_plain_sentences() {
        assert_eq!(
            about("failures_30d", 2.0).as_deref(),
            Some("2 service failures in the last 30 days")
        );
        assert_eq!(
            about("failures_30d", 1.0).as_deref(),
            Some("1 service failure in the last 30 days")
        );
        assert_eq!(
            about("usage_trend", -0.45).as_deref(),
            Some("usage down 45% on the previous 60 days")
        );
        assert_eq!(
            about("latest_csat", 2.0).as_deref(),
            Some("latest CSAT 2 of 5")
        );
        assert_eq!(
            about("segment_enterprise", 1.0).as_deref(),
            Some("enterprise customer")
        );
    }

    #[test]
    fn numbers_are_rounded_half_away_from_zero() {
        assert_eq!(
            about("mean_csat_180d", 4.25).as_deref(),
            Some("average CSAT 4.3 of 5 over 6 months")
        );
        assert_eq!(
            about("csat_trend", -1.04).as_deref(),
            Some("CSAT down 1.0 points on earlier answers")
        );
        assert_eq!(
            about("tenure_years", 12.0).as_deref(),
            Some("customer for 12.0 years")
        );
        assert_eq!(
            about("first_contact_resolution_rate_90d", 0.125).as_deref(),
            Some("13% of contacts resolved at first contact")
        );
        assert_eq!(
            about("log_usage_30d", 3.0_f64.ln_1p()).as_deref(),
            Some("usage 3 in the last 30 days")
        );
        assert_eq!(
            about("unresolved_issues_90d", 1.0).as_deref(),
            Some("1 unresolved issue")
        );
        assert_eq!(tenths(-0.34).to_string(), "-0.3");
        assert_eq!(tenths(0.04).to_string(), "0.0");
    }

    #[test]
    fn absent_facts_are_not_drivers() {
        assert_eq!(about("segment_enterprise", 0.0), None);
        assert_eq!(about("latest_csat", 0.0), None);
        assert_eq!(about("repeat_failures_90d", 0.0), None);
    }

    #[test]
    fn every_feature_has_a_sentence_or_a_reason_for_none() {
        for (index, name) in FEATURE_NAMES.iter().enumerate() {
            let described = describe(index, 1.0).is_some()
                || describe(index, 0.0).is_some()
                || *name == "no_recovery_90d";
            assert!(described, "{name}");
        }
    }
}
