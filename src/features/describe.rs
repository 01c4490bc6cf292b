//! Features in plain words, for the drivers a CRM agent reads next to a score.

use super::{FEATURE_NAMES, MAX_DAYS};

fn plural(count: f64, one: &str, many: &str) -> String {
    let count = count.round() as i64;
    format!("{count} {}", if count == 1 { one } else { many })
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
        "log_annual_value" => format!("annual value {:.0}", value.exp_m1()),
        "tenure_years" => {
            if value < 1.0 {
                format!("customer for {}", plural(value * 12.0, "month", "months"))
            } else {
                format!("customer for {:.1} years", value)
            }
        }
        "log_usage_7d" => format!("usage {:.0} in the last 7 days", value.exp_m1()),
        "log_usage_30d" => format!("usage {:.0} in the last 30 days", value.exp_m1()),
        "log_usage_90d" => format!("usage {:.0} in the last 90 days", value.exp_m1()),
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
            let percent = (value * 100.0).round();
            if percent < 0.0 {
                format!("usage down {}% on the previous 60 days", -percent)
            } else if percent > 0.0 {
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
        "unresolved_issues_90d" => plural(value, "unresolved issue", "unresolved issues"),
        "repeat_contacts_90d" => format!(
            "{} about the same issue in the last 90 days",
            plural(value, "repeat contact", "repeat contacts")
        ),
        "mean_wait_minutes_90d" => format!("waited {value:.0} minutes on average for an agent"),
        "first_contact_resolution_rate_90d" => {
            format!(
                "{:.0}% of contacts resolved at first contact",
                value * 100.0
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
            format!("latest CSAT {value:.0} of 5")
        }
        "mean_csat_180d" => {
            if value < 1.0 {
                return None;
            }
            format!("average CSAT {value:.1} of 5 over 6 months")
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
                "CSAT {} {:.1} points on earlier answers",
                if value < 0.0 { "down" } else { "up" },
                value.abs()
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
            format!("recent recoveries rated {value:.1} of 7")
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
