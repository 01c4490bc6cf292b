//! One customer's life from [`START`] (or joining) to [`END`] (or leaving), day by day:
//! latent engagement and satisfaction drive weekly usage and survey answers; contacts
//! sometimes fail; failures are sometimes recovered; at every snapshot churn is drawn from
//! what was observable.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, Gamma, Poisson};

use super::calibration as cal;
use super::observed::{ACTIVE_DAYS, HistoryView, ObservedState, churn_probability};
use super::recovery::{self, RecoveryPlan, normal, pick};
use super::{
    ChurnOracle, END, HORIZON_DAYS, RecoveryOracle, START, SimulatedCustomer, add_days, add_hours,
    snapshot_dates,
};
use crate::domain::{
    Amount, AttributeName, AttributeValue, Attributes, BuiltInTag, CaseId, Channel, ChurnOutcome,
    ChurnStatus, Customer, CustomerId, EventId, Interaction, InteractionId, IssueTag, Money,
    PlanTier, Rating, Record, RecoveryCase, RecoveryTrigger, Resolution, Segment, Survey, SurveyId,
    Timestamp, UsageEvent, WaitSeconds,
};

use crate::domain::MICROS_PER_DAY;
/// A second usage activity, reported every four weeks: heavier users export more.
pub const REPORTS_EXPORTED: &str = "reports_exported";
const WEEKS_PER_REPORT: i64 = 4;

/// Values the simulator builds are in range by construction (clamped numbers, short
/// printable ids); a parse failure here is a bug in this module, not bad input.
fn valid<T>(parsed: Result<T, String>) -> T {
    parsed.expect("the simulator builds only valid values")
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// What drives a customer but is never recorded.
#[derive(Debug, Clone, Copy)]
struct Traits {
    /// Usual logit of the chance to use the product on a given day.
    engagement_base: f64,
    /// Usual satisfaction; 0 is neutral, one unit is about a CSAT point.
    satisfaction_base: f64,
    /// How unlucky with service this customer is; mean 1.
    failure_factor: f64,
    contacts_per_day: f64,
}

/// A repeat contact the customer will make about an issue left open.
#[derive(Debug, Clone, Copy)]
struct FollowUp {
    day: i64,
    tag: BuiltInTag,
    depth: u8,
}

#[derive(Debug, Default)]
struct Counters {
    usage: u32,
    interactions: u32,
    surveys: u32,
    cases: u32,
}

#[derive(Debug)]
struct Life {
    id: String,
    customer: Customer,
    traits: Traits,
    engagement: f64,
    satisfaction: f64,
    /// Weeks since churn was decided: engagement fades before the customer leaves.
    leaving_weeks: f64,
    churned_at: Option<Timestamp>,
    follow_up: Option<FollowUp>,
    /// Satisfaction regained when a recovery resolves, by day.
    boosts: Vec<(i64, f64)>,
    next_nps_day: i64,
    active_days_since_report: u64,
    counters: Counters,
    usage: Vec<UsageEvent>,
    interactions: Vec<Interaction>,
    /// Kept in answer order (answers arrive out of generation order).
    surveys: Vec<Survey>,
    /// Kept in opening order.
    cases: Vec<RecoveryCase>,
    churn_oracle: Vec<ChurnOracle>,
    recovery_oracle: Vec<RecoveryOracle>,
}

/// The whole life of the customer with id `id`.
pub(super) fn live(rng: &mut StdRng, id: &str) -> SimulatedCustomer {
    let (customer, traits) = draw_customer(rng, id);
    let first_day = first_day(customer.customer_since);
    let mut life = Life {
        id: id.to_owned(),
        engagement: traits.engagement_base + normal(rng, 0.3),
        satisfaction: traits.satisfaction_base,
        leaving_weeks: 0.0,
        churned_at: None,
        follow_up: None,
        boosts: Vec::new(),
        next_nps_day: first_day + rng.gen_range(0..cal::NPS_SURVEY_DAYS),
        active_days_since_report: 0,
        counters: Counters::default(),
        usage: Vec::new(),
        interactions: Vec::new(),
        surveys: Vec::new(),
        cases: Vec::new(),
        churn_oracle: Vec::new(),
        recovery_oracle: Vec::new(),
        customer,
        traits,
    };
    life.run(rng, first_day);
    life.finish(rng)
}

/// The first whole day the customer is a customer, counted from START.
fn first_day(since: Timestamp) -> i64 {
    if since <= START {
        0
    } else {
        (since.unix_micros() - START.unix_micros()).div_euclid(MICROS_PER_DAY) + 1
    }
}

fn total_days() -> i64 {
    (END.unix_micros() - START.unix_micros()) / MICROS_PER_DAY
}

fn draw_customer(rng: &mut StdRng, id: &str) -> (Customer, Traits) {
    let segment = pick(rng, &cal::SEGMENT_MIX);
    let plan = pick(rng, &cal::plan_mix(segment));
    let value =
        cal::median_annual_value(segment) * cal::plan_value_factor(plan) * normal(rng, 0.5).exp();
    let since = if rng.gen_bool(cal::EXISTING_SHARE) {
        add_hours(
            START,
            -rng.gen_range(24.0..cal::MAX_PRIOR_TENURE_YEARS * 365.0 * 24.0),
        )
    } else {
        add_hours(START, rng.gen_range(0.0..cal::JOIN_WINDOW_DAYS * 24.0))
    };
    let customer = Customer {
        customer_id: valid(CustomerId::parse(id.to_owned())),
        segment,
        plan,
        persona: Some(persona(rng, segment).to_owned()),
        region: Some(
            pick(
                rng,
                &[("EMEA", 0.35), ("NA", 0.35), ("APAC", 0.2), ("LATAM", 0.1)],
            )
            .to_owned(),
        ),
        annual_value: valid(Money::parse((value * 100.0).round() / 100.0)),
        customer_since: since,
        updated_at: since.max(START),
        attributes: company_attributes(rng),
    };
    let traits = Traits {
        engagement_base: engagement_base(segment, plan) + normal(rng, 0.8),
        satisfaction_base: 0.2 + normal(rng, 0.6),
        failure_factor: gamma(rng, 2.0, 0.5),
        contacts_per_day: cal::contacts_per_year(segment) * gamma(rng, 3.0, 1.0 / 3.0) / 365.0,
    };
    (customer, traits)
}

/// The attributes the simulated company keeps of its own: how the customer was acquired
/// (which decides how well recoveries work for them, see [`cal::ACQUISITION_CHANNELS`]).
/// Drawn from a generator seeded by the customer's own draw, so the rest of the world is
/// what it was before the company kept attributes.
fn company_attributes(rng: &mut StdRng) -> Attributes {
    let mut own = StdRng::seed_from_u64(rng.clone().r#gen::<u64>() ^ 0xa77_c4a2);
    let channels: Vec<(&str, f64)> = cal::ACQUISITION_CHANNELS
        .iter()
        .map(|(name, share, _)| (*name, *share))
        .collect();
    let channel = pick(&mut own, &channels);
    let values = [(
        valid(AttributeName::parse(cal::ACQUISITION_CHANNEL.to_owned())),
        valid(AttributeValue::category(channel.to_owned())),
    )];
    valid(Attributes::new(values.into_iter().collect()))
}

fn gamma(rng: &mut StdRng, shape: f64, scale: f64) -> f64 {
    Gamma::new(shape, scale).map_or(shape * scale, |g| g.sample(rng))
}

/// Business customers log in on more days; paying more goes with using more.
fn engagement_base(segment: Segment, plan: PlanTier) -> f64 {
    let segment = match segment {
        Segment::Consumer => -0.4,
        Segment::SmallBusiness => 0.0,
        Segment::MidMarket => 0.4,
        Segment::Enterprise => 0.7,
    };
    let plan = match plan {
        PlanTier::Free => -0.4,
        PlanTier::Basic => -0.1,
        PlanTier::Standard => 0.1,
        PlanTier::Premium => 0.3,
    };
    segment + plan
}

fn persona(rng: &mut StdRng, segment: Segment) -> &'static str {
    let options: &[&str] = match segment {
        Segment::Consumer => &["individual", "family", "student"],
        Segment::SmallBusiness => &["owner", "office_manager"],
        Segment::MidMarket => &["operations_lead", "finance"],
        Segment::Enterprise => &["it_admin", "procurement", "executive_sponsor"],
    };
    options[rng.gen_range(0..options.len())]
}

/// The built-in tag of a record the simulator wrote: it speaks only the built-in vocabulary.
pub(super) fn of_simulator(tag: IssueTag) -> BuiltInTag {
    tag.built_in().unwrap_or(BuiltInTag::Other)
}

/// A short complaint, as customers write them, for unhappy answers.
fn complaint(tag: BuiltInTag) -> &'static str {
    match tag {
        BuiltInTag::Pricing => "Price went up without warning.",
        BuiltInTag::Billing => "Charged twice and nobody called back.",
        BuiltInTag::Delivery => "Order arrived late and incomplete.",
        BuiltInTag::Technical => "Still broken after two calls.",
        BuiltInTag::Account => "Locked out of my account for days.",
        BuiltInTag::ProductQuality => "It stopped working within a week.",
        BuiltInTag::Service => "Nobody owned the problem.",
        BuiltInTag::Other => "Had to repeat myself to three people.",
    }
}

impl Life {
    /// Drops what was scheduled to happen after the customer left (an answer or a resolution
    /// planned before the churn was drawn). Nothing dropped was ever read by a churn draw:
    /// the last draw precedes the leaving.
    fn forget_after(&mut self, left: Timestamp) {
        self.surveys.retain(|s| s.answered_at <= left);
        for case in &mut self.cases {
            if case.resolved_at.is_some_and(|at| at > left) {
                case.resolved_at = None;
                case.resurvey_score = None;
                case.updated_at = case.first_response_at.unwrap_or(case.opened_at);
            }
        }
    }

    fn alive_until(&self) -> Timestamp {
        self.churned_at.unwrap_or(END)
    }

    fn view(&self) -> HistoryView<'_> {
        HistoryView {
            customer: &self.customer,
            usage: &self.usage,
            interactions: &self.interactions,
            surveys: &self.surveys,
            cases: &self.cases,
        }
    }

    fn next_id(&mut self, kind: char) -> String {
        let counter = match kind {
            'u' => &mut self.counters.usage,
            'i' => &mut self.counters.interactions,
            's' => &mut self.counters.surveys,
            _ => &mut self.counters.cases,
        };
        *counter += 1;
        format!("{}-{kind}{:04}", self.id, counter)
    }

    fn run(&mut self, rng: &mut StdRng, first_day: i64) {
        let snapshot_days: Vec<i64> = snapshot_dates()
            .iter()
            .map(|at| (at.unix_micros() - START.unix_micros()) / MICROS_PER_DAY)
            .collect();
        for day in first_day..total_days() {
            let today = add_days(START, day);
            if today >= self.alive_until() {
                break;
            }
            if snapshot_days.contains(&day) {
                self.snapshot(rng, today);
            }
            self.apply_boosts(day);
            self.maybe_contact(rng, day, today);
            if day == self.next_nps_day {
                self.nps_survey(rng, today);
                self.next_nps_day += cal::NPS_SURVEY_DAYS;
            }
            let week_day = day - first_day;
            if week_day % 7 == 6 {
                self.end_week(rng, today, week_day / 7);
            }
        }
    }

    /// Decides, once, whether the customer churns within the horizon after `as_of`, with the
    /// probability that what was observable before `as_of` implies.
    fn snapshot(&mut self, rng: &mut StdRng, as_of: Timestamp) {
        let p_churn = churn_probability(&ObservedState::at(self.view(), as_of));
        let churned = rng.r#gen::<f64>() < p_churn;
        if churned {
            let offset = rng.gen_range(1..=HORIZON_DAYS * MICROS_PER_DAY);
            self.churned_at = Some(Timestamp::from_unix_micros(as_of.unix_micros() + offset));
        }
        self.churn_oracle.push(ChurnOracle {
            customer_id: self.id.clone(),
            as_of,
            p_churn,
            churned,
        });
    }

    fn apply_boosts(&mut self, day: i64) {
        let due: f64 = self
            .boosts
            .iter()
            .filter(|(on, _)| *on == day)
            .map(|(_, gain)| gain)
            .sum();
        self.satisfaction += due;
        self.boosts.retain(|(on, _)| *on > day);
    }

    fn end_week(&mut self, rng: &mut StdRng, today: Timestamp, week: i64) {
        if self.churned_at.is_some() {
            self.leaving_weeks += 1.0;
        }
        let target = self.traits.engagement_base
            + cal::SATISFACTION_TO_ENGAGEMENT * (self.satisfaction - self.traits.satisfaction_base)
            - cal::LEAVING_DRIFT * self.leaving_weeks;
        self.engagement +=
            cal::ENGAGEMENT_REVERSION * (target - self.engagement) + normal(rng, 0.25);
        self.satisfaction += cal::SATISFACTION_REVERSION
            * (self.traits.satisfaction_base - self.satisfaction)
            + normal(rng, 0.1);

        let active = Binomial::new(7, sigmoid(self.engagement)).map_or(0, |b| b.sample(rng));
        let at = add_hours(today, rng.gen_range(20.0..23.5));
        if at >= self.alive_until() {
            return;
        }
        if active > 0 {
            self.push_usage(ACTIVE_DAYS, at, active as f64);
        }
        self.active_days_since_report += active;
        if week % WEEKS_PER_REPORT == WEEKS_PER_REPORT - 1 {
            let mean = 0.4 * self.active_days_since_report as f64;
            let reports = Poisson::new(mean.max(0.01)).map_or(0.0, |p| p.sample(rng));
            if reports > 0.0 {
                self.push_usage(REPORTS_EXPORTED, add_hours(at, 0.01), reports);
            }
            self.active_days_since_report = 0;
        }
    }

    fn push_usage(&mut self, activity: &str, at: Timestamp, quantity: f64) {
        let event_id = self.next_id('u');
        self.usage.push(UsageEvent {
            event_id: valid(EventId::parse(event_id)),
            customer_id: self.customer.customer_id.clone(),
            occurred_at: at,
            activity: activity.to_owned(),
            quantity: valid(Amount::parse(quantity)),
        });
    }

    /// At most one contact a day: a due follow-up, or a new issue.
    fn maybe_contact(&mut self, rng: &mut StdRng, day: i64, today: Timestamp) {
        let (tag, depth, repeat) = match self.follow_up {
            Some(f) if f.day == day => {
                self.follow_up = None;
                (f.tag, f.depth, true)
            }
            _ if rng.r#gen::<f64>() < self.traits.contacts_per_day => {
                (pick(rng, &cal::TAG_MIX), 0, false)
            }
            _ => return,
        };
        let failure_share = if repeat {
            cal::FOLLOW_UP_FAILURE_SHARE
        } else {
            (cal::FAILURE_SHARE * self.traits.failure_factor).min(0.8)
        };
        let failure = rng.r#gen::<f64>() < failure_share;
        let interaction = self.contact(rng, today, tag, failure, repeat);
        if interaction.resolution != Resolution::Resolved
            && depth < 2
            && self.follow_up.is_none()
            && rng.gen_bool(cal::FOLLOW_UP_SHARE)
        {
            self.follow_up = Some(FollowUp {
                day: day + rng.gen_range(1..=14),
                tag,
                depth: depth + 1,
            });
        }
        let survey = self.contact_survey(rng, &interaction);
        if failure {
            self.consider_recovery(rng, &interaction, survey.as_ref());
        }
        if let Some(survey) = survey {
            self.push_survey(survey);
        }
        self.interactions.push(interaction);
    }

    fn contact(
        &mut self,
        rng: &mut StdRng,
        today: Timestamp,
        tag: BuiltInTag,
        failure: bool,
        repeat: bool,
    ) -> Interaction {
        let channel = pick(
            rng,
            &[
                (Channel::Phone, 0.3),
                (Channel::Email, 0.2),
                (Channel::Chat, 0.25),
                (Channel::Social, 0.05),
                (Channel::Web, 0.1),
                (Channel::InApp, 0.1),
            ],
        );
        // A failure is often an hour on hold; an ordinary contact waits minutes.
        let typical_minutes: f64 = if failure { 15.0 } else { 3.0 };
        let wait_minutes = (typical_minutes.ln() + normal(rng, 0.75)).exp().min(600.0);
        let resolution = if failure {
            pick(
                rng,
                &[
                    (Resolution::Resolved, 0.3),
                    (Resolution::Escalated, 0.25),
                    (Resolution::Unresolved, 0.45),
                ],
            )
        } else {
            pick(
                rng,
                &[
                    (Resolution::Resolved, 0.88),
                    (Resolution::Escalated, 0.07),
                    (Resolution::Unresolved, 0.05),
                ],
            )
        };
        let fcr_share = if failure { 0.4 } else { 0.85 };
        let first_contact_resolution =
            resolution == Resolution::Resolved && !repeat && rng.gen_bool(fcr_share);
        if failure {
            self.satisfaction -= cal::FAILURE_SHOCK;
        }
        if resolution != Resolution::Resolved {
            self.satisfaction -= cal::UNRESOLVED_SHOCK;
        }
        let interaction_id = self.next_id('i');
        Interaction {
            interaction_id: valid(InteractionId::parse(interaction_id)),
            customer_id: self.customer.customer_id.clone(),
            occurred_at: add_hours(today, rng.gen_range(8.0..20.0)),
            channel,
            tag: tag.into(),
            failure,
            resolution,
            wait_seconds: valid(WaitSeconds::parse((wait_minutes * 60.0).round())),
            first_contact_resolution,
            repeat_contact: repeat,
        }
    }

    /// A CSAT answer after a contact, sometimes. It reflects the customer's satisfaction and
    /// what the contact did to it.
    fn contact_survey(&mut self, rng: &mut StdRng, interaction: &Interaction) -> Option<Survey> {
        let chance = if interaction.failure {
            cal::SURVEY_AFTER_FAILURE
        } else {
            cal::SURVEY_AFTER_CONTACT
        };
        if !rng.gen_bool(chance) {
            return None;
        }
        let answered_at = add_hours(interaction.occurred_at, rng.gen_range(1.0..48.0));
        let wait_minutes = interaction.wait_seconds.get() / 60.0;
        let score = 3.7 + 0.7 * self.satisfaction
            - if interaction.failure { 1.4 } else { 0.0 }
            - if interaction.resolution == Resolution::Resolved {
                0.0
            } else {
                0.4
            }
            - 0.03 * (wait_minutes - 5.0).clamp(0.0, 30.0)
            + normal(rng, 0.6);
        let csat = score.round().clamp(1.0, 5.0) as u32;
        if answered_at >= self.alive_until() {
            return None;
        }
        // DOMAIN: negative feedback comes more through e-mail, positive through online surveys.
        let email_share = if csat <= 2 { 0.75 } else { 0.25 };
        let channel = if rng.gen_bool(email_share) {
            Channel::Email
        } else {
            Channel::Web
        };
        let survey_id = self.next_id('s');
        Some(Survey {
            survey_id: valid(SurveyId::parse(survey_id)),
            customer_id: self.customer.customer_id.clone(),
            answered_at,
            channel,
            interaction_id: Some(interaction.interaction_id.clone()),
            csat: Rating::parse(csat).ok(),
            nps: None,
            recovery_rating: None,
            comment: (csat <= 2).then(|| complaint(of_simulator(interaction.tag)).to_owned()),
        })
    }

    fn nps_survey(&mut self, rng: &mut StdRng, today: Timestamp) {
        if !rng.gen_bool(cal::NPS_RESPONSE_RATE) {
            return;
        }
        let answered_at = add_hours(today, rng.gen_range(9.0..21.0));
        let nps = (7.0 + 1.8 * self.satisfaction + normal(rng, 1.3))
            .round()
            .clamp(0.0, 10.0) as u32;
        let channel = pick(
            rng,
            &[
                (Channel::Email, 0.5),
                (Channel::Web, 0.3),
                (Channel::InApp, 0.2),
            ],
        );
        if answered_at >= self.alive_until() {
            return;
        }
        let survey_id = self.next_id('s');
        self.push_survey(Survey {
            survey_id: valid(SurveyId::parse(survey_id)),
            customer_id: self.customer.customer_id.clone(),
            answered_at,
            channel,
            interaction_id: None,
            csat: None,
            nps: Rating::parse(nps).ok(),
            recovery_rating: None,
            comment: None,
        });
    }

    fn push_survey(&mut self, survey: Survey) {
        let at = self
            .surveys
            .partition_point(|s| s.answered_at <= survey.answered_at);
        self.surveys.insert(at, survey);
    }

    /// Every failure is eligible: draw how a recovery would go, decide whether one is
    /// attempted, and record the truth about both branches.
    fn consider_recovery(
        &mut self,
        rng: &mut StdRng,
        failure: &Interaction,
        survey: Option<&Survey>,
    ) {
        let plan = RecoveryPlan::draw(rng, self.customer.segment);
        let attempted = recovery::is_attempted(rng, &self.customer);
        // Right after the failure, with the failure in the record (the history view does not
        // hold it yet).
        let just_after = Timestamp::from_unix_micros(failure.occurred_at.unix_micros() + 1);
        let mut interactions = self.interactions.clone();
        interactions.push(failure.clone());
        let state = ObservedState::at(
            HistoryView {
                interactions: &interactions,
                ..self.view()
            },
            just_after,
        );
        let p_not = churn_probability(&state);
        let p_recovered =
            churn_probability(&state.with_fresh_failure_recovered(plan.resurvey_score));
        let p_recovered_expected: f64 = recovery::resurvey_score_shares(self.customer.segment)
            .iter()
            .enumerate()
            .filter(|(_, share)| **share > 0.0)
            .map(|(score, share)| {
                share * churn_probability(&state.with_fresh_failure_recovered(score as u8))
            })
            .sum();
        let case = if attempted {
            self.open_case(rng, &plan, failure, survey)
        } else {
            None
        };
        self.recovery_oracle.push(RecoveryOracle {
            case_or_failure_id: case.as_ref().map_or_else(
                || failure.interaction_id.to_string(),
                |c| c.case_id.to_string(),
            ),
            customer_id: self.id.clone(),
            interaction_id: failure.interaction_id.to_string(),
            at: failure.occurred_at,
            team: plan.team,
            quality: plan.resurvey_score,
            p_retain_if_recovered: 1.0 - p_recovered,
            p_retain_if_not: 1.0 - p_not,
            p_retain_if_recovered_expected: 1.0 - p_recovered_expected,
            recovered: case.is_some(),
            retained: None,
        });
        if let Some(case) = case {
            let at = self
                .cases
                .partition_point(|c| c.opened_at <= case.opened_at);
            self.cases.insert(at, case);
        }
    }

    /// The recovery case, as far as it got before the customer left or the world ended;
    /// `None` when it could not even be opened in time.
    fn open_case(
        &mut self,
        rng: &mut StdRng,
        plan: &RecoveryPlan,
        failure: &Interaction,
        survey: Option<&Survey>,
    ) -> Option<RecoveryCase> {
        let low_survey = survey.filter(|s| s.csat.is_some_and(|c| c.get() <= 2));
        let unmet = failure.wait_seconds.get() > 20.0 * 60.0 || failure.repeat_contact;
        let trigger = recovery::trigger(rng, low_survey.is_some(), unmet, self.customer.segment);
        let opened_at = match (trigger, low_survey) {
            (RecoveryTrigger::LowSurveyScore, Some(s)) => {
                add_hours(s.answered_at, rng.gen_range(0.5..24.0))
            }
            (RecoveryTrigger::Proactive, _) => {
                add_hours(failure.occurred_at, rng.gen_range(0.25..4.0))
            }
            _ => add_hours(failure.occurred_at, rng.gen_range(0.5..12.0)),
        };
        let action = recovery::action(rng, of_simulator(failure.tag));
        let cost = recovery::cost(rng, action, self.customer.annual_value.get())?;
        if opened_at >= self.alive_until() {
            return None;
        }
        let first_response_at =
            Some(add_hours(opened_at, plan.response_hours)).filter(|at| *at < END);
        // Only a customer who is still there can be brought to a resolution.
        let resolved_at = first_response_at
            .map(|at| add_hours(at, plan.resolve_hours))
            .filter(|at| *at < self.alive_until());
        let resurvey_score =
            resolved_at.and_then(|_| Rating::parse(u32::from(plan.resurvey_score)).ok());
        if let (Some(resolved), Some(score)) = (resolved_at, resurvey_score) {
            self.record_resurvey(failure, resolved, score);
        }
        let updated_at = resolved_at.or(first_response_at).unwrap_or(opened_at);
        let case_id = self.next_id('r');
        Some(RecoveryCase {
            case_id: valid(CaseId::parse(case_id)),
            customer_id: self.customer.customer_id.clone(),
            trigger,
            tag: failure.tag,
            action: action.into(),
            cost,
            trigger_interaction_id: Some(failure.interaction_id.clone()),
            trigger_survey_id: low_survey.map(|s| s.survey_id.clone()),
            opened_at,
            first_response_at,
            resolved_at,
            cares: plan.cares,
            resurvey_score,
            retained: None,
            spend_change_pct: None,
            updated_at,
        })
    }

    /// The re-survey answered at resolution (DOMAIN: "after resolution, ask again"), and the
    /// satisfaction the recovery gives back, in proportion to the risk it removes.
    fn record_resurvey(&mut self, failure: &Interaction, resolved: Timestamp, score: Rating<1, 7>) {
        let survey_id = self.next_id('s');
        self.push_survey(Survey {
            survey_id: valid(SurveyId::parse(survey_id)),
            customer_id: self.customer.customer_id.clone(),
            answered_at: resolved,
            channel: Channel::Email,
            interaction_id: Some(failure.interaction_id.clone()),
            csat: None,
            nps: None,
            recovery_rating: Some(score),
            comment: None,
        });
        let day = (resolved.unix_micros() - START.unix_micros()).div_euclid(MICROS_PER_DAY) + 1;
        let gain = cal::FAILURE_SHOCK * cal::risk_removed(score.get());
        self.boosts.push((day, gain));
    }

    /// Fills in what became known only later — whether each failed customer stayed 90 days,
    /// and recovered customers' spend change — and assembles the records.
    fn finish(mut self, rng: &mut StdRng) -> SimulatedCustomer {
        let churned_at = self.churned_at;
        if let Some(left) = churned_at {
            self.forget_after(left);
        }
        for row in &mut self.recovery_oracle {
            let known_at = add_days(row.at, HORIZON_DAYS);
            row.retained = (known_at <= END).then(|| churned_at.is_none_or(|c| c > known_at));
            let Some(case) = self
                .cases
                .iter_mut()
                .find(|c| c.case_id.as_str() == row.case_or_failure_id)
            else {
                continue;
            };
            if let Some(retained) = row.retained {
                case.retained = Some(retained);
                case.spend_change_pct = if retained {
                    case.resurvey_score
                        .and_then(|s| recovery::spend_change(rng, s.get()))
                } else {
                    recovery::spend_lost()
                };
                case.updated_at = case.updated_at.max(known_at);
            }
        }
        let outcome = ChurnOutcome {
            customer_id: self.customer.customer_id.clone(),
            status: if churned_at.is_some() {
                ChurnStatus::Churned
            } else {
                ChurnStatus::Active
            },
            churned_at,
            observed_at: END,
        };
        let mut records = Vec::with_capacity(
            2 + self.usage.len() + self.interactions.len() + self.surveys.len() + self.cases.len(),
        );
        records.push(Record::Customer(self.customer));
        records.extend(self.usage.into_iter().map(Record::UsageEvent));
        records.extend(self.interactions.into_iter().map(Record::Interaction));
        records.extend(self.surveys.into_iter().map(Record::Survey));
        records.extend(self.cases.into_iter().map(Record::RecoveryCase));
        records.push(Record::ChurnOutcome(outcome));
        SimulatedCustomer {
            records,
            churn_oracle: self.churn_oracle,
            recovery_oracle: self.recovery_oracle,
        }
    }
}
