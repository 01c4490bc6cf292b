//! `Program.RecoveryFunnel`: its counts and money figures equal what this test computes on
//! its own from the recommendations it received and the cases and outcomes it stored.

use std::collections::BTreeMap;

use rescue::proto::v1::{self as proto, recommend_recovery_request::Trigger, record::Kind};
use tonic::Code;

use crate::fixtures::{at, churn_outcome, customer_version, interaction, recovery_case};
use crate::helpers::{TestDatabase, on_every_backend};
use crate::recommend::{ProgramFile, recommend, request, serve_program};

const DAY: i64 = 86_400;
const CUSTOMERS: usize = 48;

/// What the test knows about one customer's trigger.
#[derive(Debug, Clone)]
struct Known {
    answer: proto::RecoveryRecommendation,
    segment: &'static str,
    tag: &'static str,
    value: f64,
    /// The recovery case stored for it: (cost, re-survey, retained, spend change).
    case: Option<(f64, u32, bool, f64)>,
    /// Still a customer 90 days after the decision.
    retained_90d: bool,
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    decided: u64,
    eligible: u64,
    invested: u64,
    attempted: u64,
    recovered: u64,
    retained: u64,
    holdout: u64,
    holdout_would_invest: u64,
    cost: f64,
    spend: Vec<f64>,
    invested_outcomes: Vec<(bool, f64)>,
    holdout_outcomes: Vec<bool>,
}

impl Expected {
    fn add(&mut self, k: &Known) {
        let a = &k.answer;
        self.decided += 1;
        if !a.eligible {
            return;
        }
        self.eligible += 1;
        let would_invest = a.recommended.as_ref().is_some_and(|r| r.net_value > 0.0);
        if a.holdout {
            self.holdout += 1;
            if would_invest {
                self.holdout_would_invest += 1;
                self.holdout_outcomes.push(k.retained_90d);
            }
        }
        if !a.invest {
            return;
        }
        self.invested += 1;
        self.invested_outcomes.push((k.retained_90d, k.value));
        if let Some((cost, resurvey, kept, spend)) = k.case {
            self.attempted += 1;
            self.cost += cost;
            self.spend.push(spend);
            if resurvey >= 5 {
                self.recovered += 1;
                self.retained += u64::from(kept);
            }
        }
    }

    fn check(&self, got: &proto::FunnelCounts, group: &str) {
        let counts = [
            got.decided,
            got.eligible,
            got.invested,
            got.attempted,
            got.recovered,
            got.retained,
            got.holdout,
            got.holdout_would_invest,
        ];
        let expected = [
            self.decided,
            self.eligible,
            self.invested,
            self.attempted,
            self.recovered,
            self.retained,
            self.holdout,
            self.holdout_would_invest,
        ];
        assert_eq!(counts, expected, "{group}: {got:?}");
        assert!((got.cost - self.cost).abs() < 1e-6, "{group} cost");
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        assert_close(got.mean_spend_change_pct, mean(&self.spend), group);
        let rate = |v: &[bool]| {
            (!v.is_empty()).then(|| v.iter().filter(|k| **k).count() as f64 / v.len() as f64)
        };
        let invested: Vec<bool> = self.invested_outcomes.iter().map(|(k, _)| *k).collect();
        let invested_rate = rate(&invested);
        let holdout_rate = rate(&self.holdout_outcomes);
        assert_close(got.invested_retention, invested_rate, group);
        assert_close(got.holdout_retention, holdout_rate, group);
        let uplift = invested_rate.zip(holdout_rate).map(|(i, h)| i - h);
        assert_close(got.measured_uplift, uplift, group);
        let value: f64 = self.invested_outcomes.iter().map(|(_, v)| v).sum();
        let kept = uplift.map(|u| u * value);
        assert_close(got.revenue_kept, kept, group);
        let roi = kept
            .filter(|_| self.cost > 0.0)
            .map(|k| (k - self.cost) / self.cost);
        assert_close(got.roi, roi, group);
    }
}

fn assert_close(got: Option<f64>, expected: Option<f64>, group: &str) {
    match (got, expected) {
        (Some(g), Some(e)) => assert!((g - e).abs() < 1e-9, "{group}: {g} vs {e}"),
        (g, e) => assert_eq!(g, e, "{group}"),
    }
}

async fn funnel_counts_match_the_stored_decisions_and_outcomes(database: TestDatabase) {
    // A third held out; billing recovery costs a fixed 100, so low-value customers do not pay.
    let program = ProgramFile::new(|p| {
        p.replace("fraction = 0.0", "fraction = 0.3").replace(
            "{ action = \"refund\", cost = 0.0, share_of_monthly_value = 0.5 },\n]",
            "{ action = \"refund\", cost = 100.0 },\n]",
        )
    });
    let app = serve_program(&database, &program).await;

    let mut known: Vec<Known> = Vec::new();
    let mut records = Vec::new();
    for i in 0..CUSTOMERS {
        let id = format!("f-{i:02}");
        let value = if i % 4 == 0 { 150.0 } else { 6_000.0 };
        let mut profile = customer_version(&id, 0, value);
        let segment = if i % 3 == 0 {
            if let Some(Kind::Customer(c)) = profile.kind.as_mut() {
                c.segment = proto::Segment::Enterprise.into();
            }
            "enterprise"
        } else {
            "small_business"
        };
        let mut contact = interaction(&format!("{id}-i1"), &id);
        let tag = if let Some(Kind::Interaction(c)) = contact.kind.as_mut() {
            // Every seventh contact went fine: not eligible.
            c.failure = i % 7 != 0;
            if i % 5 == 1 {
                c.tag = proto::IssueTag::Delivery.into();
                "delivery"
            } else {
                "billing"
            }
        } else {
            unreachable!()
        };
        records.extend([profile, contact]);
        known.push(Known {
            answer: proto::RecoveryRecommendation::default(),
            segment,
            tag,
            value,
            case: None,
            retained_90d: i % 5 != 0,
        });
    }
    assert_eq!(app.ingest(records, 500).await.rejected, 0);

    for (i, k) in known.iter_mut().enumerate() {
        let id = format!("f-{i:02}");
        let trigger = Some(Trigger::InteractionId(format!("{id}-i1")));
        // Some triggers are decided twice: only the latest counts.
        if i % 6 == 0 {
            let mut earlier = request(&id, trigger.clone());
            earlier.as_of = at(40_000);
            recommend(&app, earlier).await.expect("an earlier decision");
        }
        k.answer = recommend(&app, request(&id, trigger))
            .await
            .expect("a recommendation");
    }
    // Outside the window: not counted.
    let mut later = request("f-01", Some(Trigger::InteractionId("f-01-i1".into())));
    later.as_of = at(20 * DAY);
    recommend(&app, later).await.expect("a later decision");

    // Cases for two of every three invested triggers, and every customer's churn outcome.
    let mut outcomes = Vec::new();
    let mut attempted = 0;
    for (i, k) in known.iter_mut().enumerate() {
        let id = format!("f-{i:02}");
        if k.answer.invest {
            attempted += 1;
            if attempted % 3 != 0 {
                let resurvey = 3 + (i as u32 % 5);
                let kept = i % 2 == 0;
                let spend = if kept { 10.0 + i as f64 } else { -100.0 };
                let mut case = recovery_case(&format!("{id}-r1"), &id, 100_000);
                if let Some(Kind::RecoveryCase(c)) = case.kind.as_mut() {
                    c.trigger_interaction_id = format!("{id}-i1");
                    c.opened_at = at(90_000);
                    c.first_response_at = at(91_000);
                    c.resolved_at = at(95_000);
                    c.cost = 100.0;
                    c.resurvey_score = Some(resurvey);
                    c.retained = Some(kept);
                    c.spend_change_pct = Some(spend);
                }
                outcomes.push(case);
                k.case = Some((100.0, resurvey, kept, spend));
            }
        }
        let mut outcome = churn_outcome(&id, 100 * DAY);
        if !k.retained_90d
            && let Some(Kind::ChurnOutcome(o)) = outcome.kind.as_mut()
        {
            o.status = proto::ChurnStatus::Churned.into();
            o.churned_at = at(30 * DAY);
        }
        outcomes.push(outcome);
    }
    assert_eq!(app.ingest(outcomes, 500).await.rejected, 0);

    let funnel = app
        .program_client()
        .await
        .recovery_funnel(proto::RecoveryFunnelRequest {
            from: at(0),
            to: at(2 * DAY),
        })
        .await
        .expect("the funnel")
        .into_inner();

    let mut total = Expected::default();
    let mut by_segment: BTreeMap<&str, Expected> = BTreeMap::new();
    let mut by_tag: BTreeMap<&str, Expected> = BTreeMap::new();
    for k in &known {
        total.add(k);
        by_segment.entry(k.segment).or_default().add(k);
        by_tag.entry(k.tag).or_default().add(k);
    }
    assert!(
        total.invested > 5 && total.holdout_would_invest > 2 && total.recovered > 0,
        "{total:?}"
    );
    assert!(
        total.eligible < total.decided && total.invested < total.eligible,
        "{total:?}"
    );
    total.check(funnel.total.as_ref().expect("total"), "total");
    for (name, groups, expected) in [
        ("segment", &funnel.by_segment, &by_segment),
        ("tag", &funnel.by_tag, &by_tag),
    ] {
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        let expected_names: Vec<&str> = expected.keys().copied().collect();
        assert_eq!(names, expected_names, "{name} groups");
        for group in groups {
            expected[group.name.as_str()]
                .check(group.counts.as_ref().expect("counts"), &group.name);
        }
    }
    assert_eq!(funnel.recovered_at_or_above, 5);
}

async fn a_funnel_needs_a_window(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    let mut client = app.program_client().await;
    let error = client
        .recovery_funnel(proto::RecoveryFunnelRequest {
            from: at(DAY),
            to: None,
        })
        .await
        .expect_err("no end");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("to: is required"),
        "{}",
        error.message()
    );
    let error = client
        .recovery_funnel(proto::RecoveryFunnelRequest {
            from: at(DAY),
            to: at(0),
        })
        .await
        .expect_err("backwards");
    assert!(
        error.message().contains("to: must be after from"),
        "{}",
        error.message()
    );
    let empty = client
        .recovery_funnel(proto::RecoveryFunnelRequest {
            from: at(0),
            to: at(DAY),
        })
        .await
        .expect("an empty funnel")
        .into_inner();
    assert_eq!(empty.total.expect("total").decided, 0);
}

on_every_backend!(
    funnel_counts_match_the_stored_decisions_and_outcomes,
    a_funnel_needs_a_window,
);
