//! The decision rules, applied in order: eligibility, the holdout, each allowed action's
//! expected and net value, invest or not, the respond-by time and the approval level.

use rand::Rng;

use super::checklist::{self, ChecklistFacts};
use super::eligibility::{self, TriggerError, TriggerRequest};
use super::program::InvestOn;
use super::{
    Approval, Decision, Program, Retention, TriggerRef, UpliftSource, ValuedAction, holdout,
};
use crate::domain::{IssueTag, RecoveryAction, Timestamp};
use crate::features::History;

const MICROS_PER_HOUR: f64 = 3_600.0 * 1e6;

/// What the caller gathered about the customer and the request.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub history: &'a History,
    pub decided_at: Timestamp,
    pub as_of: Timestamp,
    pub trigger: TriggerRequest,
    /// A tag the caller gave, overriding the trigger's.
    pub tag: Option<IssueTag>,
    pub churn_probability: f64,
    pub health_score: f64,
    pub health_model_version: String,
}

/// Where retention estimates come from, and how to get one for an action.
pub struct Estimates<'e> {
    pub source: UpliftSource,
    pub version: String,
    /// An action's retention, and where that estimate came from: the model, or the prior
    /// for an action the model did not learn enough about.
    pub retention: &'e (dyn Fn(RecoveryAction) -> (Retention, UpliftSource) + Send + Sync),
}

impl std::fmt::Debug for Estimates<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Estimates")
            .field("source", &self.source)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A new decision id: "dec-" and 128 random bits in hex.
pub fn new_decision_id() -> String {
    let bits: u128 = rand::thread_rng().r#gen();
    format!("dec-{bits:032x}")
}

/// Decides for one customer. Fails only when a named trigger cannot be used.
pub fn decide(
    program: &Program,
    facts: &Facts<'_>,
    estimates: &Estimates<'_>,
) -> Result<Decision, TriggerError> {
    let history = facts.history;
    let customer = &history.customer;
    let value = customer.annual_value.get();
    let verdict = eligibility::assess(&program.eligibility, history, facts.as_of, &facts.trigger)?;
    let tag = facts
        .tag
        .or_else(|| verdict.trigger.and_then(|t| t.tag(history)))
        .or(verdict.trigger.and(program.vocabulary.default_tag()));
    let mut reasons = verdict.reasons.clone();

    let mut options: Vec<ValuedAction> = tag
        .map(|tag| program.actions(tag))
        .unwrap_or_default()
        .iter()
        .map(|allowed| {
            let cost = allowed.for_customer(value);
            let (retention, source) = (estimates.retention)(allowed.action);
            let expected_value = value * retention.uplift();
            ValuedAction {
                action: allowed.action,
                cost,
                retention,
                expected_value,
                net_value: expected_value - cost,
                net_value_low: retention.interval.map(|i| value * i.low - cost),
                approval: approval(program, cost),
                source,
            }
        })
        .collect();
    // Best net value first; on a tie the cheaper action.
    options.sort_by(|a, b| {
        b.net_value
            .total_cmp(&a.net_value)
            .then(a.cost.total_cmp(&b.cost))
    });

    let draw = holdout::draw(&program.holdout.salt, &customer.customer_id);
    let holdout = verdict.eligible && holdout::is_held_out(draw, program.holdout.fraction);
    let best = options.first();
    let pays = |b: &ValuedAction| match program.invest_on {
        InvestOn::Estimate => b.net_value > 0.0,
        InvestOn::LowerBound => b.net_value_low.is_some_and(|low| low > 0.0),
    };
    let would_invest = verdict.eligible && best.is_some_and(pays);
    if verdict.eligible {
        match (best, tag) {
            (None, Some(tag)) => reasons.push(format!(
                "the program's protocol allows no action for {tag} issues"
            )),
            (None, None) => {}
            (Some(best), _) => reasons.push(format!(
                "best action {}: expected value {:.2} ({:.1} points of retention on a customer worth {:.2} a year) against a cost of {:.2}: net {:.2}",
                best.action,
                best.expected_value,
                100.0 * best.retention.uplift(),
                value,
                best.cost,
                best.net_value
            )),
        }
        if let (Some(best), InvestOn::LowerBound) = (best, program.invest_on) {
            reasons.push(match (best.retention.interval, best.net_value_low) {
                (Some(interval), Some(low)) => format!(
                    "the program invests on the lower end of the uplift's 90% interval: {:.1} to {:.1} points of retention, net {low:.2} at the lower end",
                    100.0 * interval.low,
                    100.0 * interval.high
                ),
                _ => "the program invests on the lower end of the uplift's interval, and this estimate has none (the prior, or a model trained without bootstrap replicates)".to_owned(),
            });
        }
        if best.is_some_and(|b| b.net_value > 0.0) && !would_invest {
            reasons.push(
                "the lower end of the uplift's interval does not cover the cost: recovery may not pay here"
                    .to_owned(),
            );
        } else if best.is_some() && !would_invest {
            reasons.push(
                "no action's expected value exceeds its cost: recovery does not pay here"
                    .to_owned(),
            );
        }
        if holdout {
            reasons.push(format!(
                "in the holdout group (draw {draw:.4} under the program's {}): no recovery, so the program's effect stays measurable",
                program.holdout.fraction
            ));
        }
        if let Some(best) = best.filter(|_| would_invest) {
            reasons.push(match best.approval {
                Approval::Frontline => format!(
                    "cost {:.2} is within the frontline authority of {:.2}",
                    best.cost, program.frontline_limit
                ),
                Approval::Manager => format!(
                    "cost {:.2} is above the frontline authority of {:.2}: a manager approves",
                    best.cost, program.frontline_limit
                ),
            });
        }
    }
    let invest = would_invest && !holdout;
    let respond_by = verdict.eligible.then(|| {
        let trigger_at = verdict.trigger.map_or(facts.as_of, |t| t.at());
        respond_by(program, value, trigger_at, facts.as_of)
    });
    let checklist = match (verdict.eligible, respond_by) {
        (true, Some(respond_by)) => checklist::fill(&ChecklistFacts {
            history,
            as_of: facts.as_of,
            trigger: verdict.trigger,
            tag,
            recommended: best.filter(|_| invest),
            respond_by,
            frontline_limit: program.frontline_limit,
        }),
        _ => Vec::new(),
    };

    Ok(Decision {
        decision_id: new_decision_id(),
        decided_at: facts.decided_at,
        as_of: facts.as_of,
        customer_id: customer.customer_id.clone(),
        segment: customer.segment,
        customer_value: value,
        trigger: verdict.trigger.map(|t| TriggerRef {
            interaction_id: t.interaction_id().cloned(),
            survey_id: t.survey_id().cloned(),
            at: t.at(),
        }),
        tag,
        eligible: verdict.eligible,
        holdout,
        invest,
        would_invest,
        options,
        respond_by,
        checklist,
        reasons,
        churn_probability: facts.churn_probability,
        health_score: facts.health_score,
        health_model_version: facts.health_model_version.clone(),
        uplift_source: estimates.source,
        uplift_version: estimates.version.clone(),
        program_version: program.version.clone(),
    })
}

fn approval(program: &Program, cost: f64) -> Approval {
    if cost <= program.frontline_limit {
        Approval::Frontline
    } else {
        Approval::Manager
    }
}

/// The program's response target — shortened for high-value customers, and halved for every
/// half-life the issue has already been open — from `as_of`, never under the minimum.
pub(super) fn respond_by(
    program: &Program,
    customer_value: f64,
    trigger_at: Timestamp,
    as_of: Timestamp,
) -> Timestamp {
    let rules = &program.response;
    let age_hours =
        ((as_of.unix_micros() - trigger_at.unix_micros()) as f64 / MICROS_PER_HOUR).max(0.0);
    let value_factor = if customer_value >= rules.high_value_annual {
        rules.high_value_factor
    } else {
        1.0
    };
    let hours =
        (rules.target_hours * value_factor * 0.5f64.powf(age_hours / rules.aging_half_life_hours))
            .max(rules.min_hours);
    Timestamp::from_unix_micros(as_of.unix_micros() + (hours * MICROS_PER_HOUR).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BuiltInTag;

    fn at_hour(hour: i64) -> Timestamp {
        Timestamp::from_unix_micros(1_750_000_000_000_000 + hour * 3_600_000_000)
    }

    fn hours_between(a: Timestamp, b: Timestamp) -> f64 {
        (b.unix_micros() - a.unix_micros()) as f64 / MICROS_PER_HOUR
    }

    #[test]
    fn respond_by_tightens_with_age_and_value_and_stops_at_the_minimum() {
        let program = Program::builtin();
        let now = at_hour(200);
        let fresh = hours_between(now, respond_by(&program, 1_000.0, now, now));
        let day_old = hours_between(now, respond_by(&program, 1_000.0, at_hour(176), now));
        let valuable = hours_between(now, respond_by(&program, 50_000.0, now, now));
        let ancient = hours_between(now, respond_by(&program, 1_000.0, at_hour(0), now));
        assert_eq!(fresh, 24.0);
        assert_eq!(day_old, 12.0);
        assert_eq!(valuable, 12.0);
        assert_eq!(ancient, 1.0);
    }

    /// A customer worth 1,200 a year, failed an hour ago on billing.
    fn failed_customer() -> History {
        use crate::domain::{
            Channel, Customer, CustomerId, Interaction, InteractionId, IssueTag, Money, PlanTier,
            Resolution, Segment, WaitSeconds,
        };
        let customer_id = CustomerId::parse("c-1".into()).expect("id");
        let mut history = History::new(Customer {
            customer_id: customer_id.clone(),
            segment: Segment::Consumer,
            plan: PlanTier::Standard,
            persona: None,
            region: None,
            annual_value: Money::parse(1_200.0).expect("money"),
            customer_since: at_hour(0),
            updated_at: at_hour(0),
            attributes: Default::default(),
        });
        history.interactions.push(Interaction {
            interaction_id: InteractionId::parse("i-1".into()).expect("id"),
            customer_id,
            occurred_at: at_hour(199),
            channel: Channel::Phone,
            tag: IssueTag::from(BuiltInTag::Billing),
            failure: true,
            resolution: Resolution::Unresolved,
            wait_seconds: WaitSeconds::parse(60.0).expect("wait"),
            first_contact_resolution: false,
            repeat_contact: false,
        });
        history
    }

    /// Ten points of retention expected, but the interval reaches down to a tenth of a
    /// point: investing on the estimate pays, on the interval's lower end it does not.
    #[test]
    fn a_program_investing_on_the_lower_bound_wants_the_pessimistic_uplift_to_pay() {
        let history = failed_customer();
        let facts = Facts {
            history: &history,
            decided_at: at_hour(200),
            as_of: at_hour(200),
            trigger: TriggerRequest::Latest,
            tag: None,
            churn_probability: 0.3,
            health_score: 60.0,
            health_model_version: "health-1".into(),
        };
        let wide = |_| {
            (
                Retention {
                    if_recovered: 0.8,
                    if_not: 0.7,
                    interval: Some(crate::uplift::model::UpliftInterval {
                        low: 0.001,
                        high: 0.2,
                    }),
                },
                UpliftSource::Model,
            )
        };
        let estimates = Estimates {
            source: UpliftSource::Model,
            version: "uplift-1".into(),
            retention: &wide,
        };
        let mut program = Program::builtin();
        // Out of the holdout whatever the customer's draw.
        program.holdout.fraction = 0.0;
        let on_estimate = decide(&program, &facts, &estimates).expect("a decision");
        assert!(on_estimate.invest, "{:?}", on_estimate.reasons);
        let best = &on_estimate.options[0];
        assert!(best.net_value > 0.0);
        assert!(best.net_value_low.is_some_and(|low| low < 0.0), "{best:?}");

        program.invest_on = InvestOn::LowerBound;
        let on_lower_bound = decide(&program, &facts, &estimates).expect("a decision");
        assert!(!on_lower_bound.invest && !on_lower_bound.would_invest);
        assert!(
            on_lower_bound
                .reasons
                .iter()
                .any(|r| r.contains("lower end of the uplift's interval does not cover the cost")),
            "{:?}",
            on_lower_bound.reasons
        );

        // Without an interval there is nothing to invest on.
        let point = |_| {
            (
                Retention {
                    if_recovered: 0.8,
                    if_not: 0.7,
                    interval: None,
                },
                UpliftSource::Prior,
            )
        };
        let estimates = Estimates {
            retention: &point,
            ..estimates
        };
        let without = decide(&program, &facts, &estimates).expect("a decision");
        assert!(!without.invest);
        assert!(
            without.reasons.iter().any(|r| r.contains("has none")),
            "{:?}",
            without.reasons
        );
    }
}
