//! The figures the simulated world is calibrated to, in one place. Each says where it comes
//! from: a `docs/domain.md` figure (cited as given there), or a modelling choice and its reason.
//!
//! The churn coefficients act on the logit of the 90-day churn probability; together they
//! give about 4–8% churn per 90 days overall, like a subscription business.

use crate::domain::{BuiltInAction, BuiltInTag, PlanTier, Segment};

// ---------------------------------------------------------------------------------------------
// Churn: logit of P(churn within 90 days | what was observable at the snapshot).

/// Logit of the 90-day churn of a standard-plan, small-business-like customer with a year of
/// tenure, average usage, no service trouble and no survey answers: about 3%, so that with the
/// riskier segments and the failures the population lands in the 4–8% band.
pub const CHURN_BASE_LOGIT: f64 = -3.75;

/// Consumers and small businesses churn more than enterprises (DOMAIN: "who the customer
/// is"; a subscription business's usual ordering).
pub fn segment_logit(segment: Segment) -> f64 {
    match segment {
        Segment::Consumer => 0.45,
        Segment::SmallBusiness => 0.25,
        Segment::MidMarket => -0.25,
        Segment::Enterprise => -0.75,
    }
}

/// Higher plans churn less: the customer has invested more in the product.
pub fn plan_logit(plan: PlanTier) -> f64 {
    match plan {
        PlanTier::Free => 0.45,
        PlanTier::Basic => 0.15,
        PlanTier::Standard => 0.0,
        PlanTier::Premium => -0.3,
    }
}

/// Longer tenure churns less, with diminishing returns: per log(1 + years).
pub const TENURE_LOG_YEARS: f64 = -0.45;
/// The first half year is the riskiest (onboarding churn): a mild non-linearity.
pub const NEW_CUSTOMER_DAYS: f64 = 180.0;
pub const NEW_CUSTOMER: f64 = 0.35;
/// Per log unit of annual value around [`VALUE_PIVOT`]: valuable customers churn a bit less.
pub const LOG_VALUE: f64 = -0.12;
pub const VALUE_PIVOT: f64 = 2_000.0;

/// Per unit of the share of the last 30 days the customer was active, around
/// [`ACTIVE_SHARE_PIVOT`]: a customer who uses the product is healthy (DOMAIN: "actively
/// uses the product").
pub const ACTIVE_SHARE_30D: f64 = -1.6;
pub const ACTIVE_SHARE_PIVOT: f64 = 0.45;
/// Per log ratio of active days in the last 30 days to the 30-day mean of the 60 before:
/// usage decline precedes churn.
pub const USAGE_TREND: f64 = -0.9;
/// The trend is clipped: a tenfold rise from almost nothing is not ten times the health.
pub const USAGE_TREND_RANGE: (f64, f64) = (-2.5, 1.0);
/// Per log(1 + weeks of silence beyond the first): a quiet spell matters, then saturates.
pub const SILENCE_LOG_WEEKS: f64 = 0.35;

/// The extra logit of recent failures (interactions with `failure = true`), by how many
/// unrecovered failures the customer carries. DOMAIN (Zendesk CX Trends): about 50% leave
/// after one bad experience and 80% after more than one. Scaled down to one 90-day window
/// these coefficients alone take a 4% customer to about 10% and 35%; with what a failure also
/// does to CSAT, waits and usage the measured rates are about 4% → 25% → 60%. The ordering and
/// the steepness (the second failure adds more than the first) are kept.
pub const FIRST_FAILURE: f64 = 0.9;
pub const SECOND_FAILURE: f64 = 1.5;
/// Each further failure adds less: by then the customer has mostly made up their mind.
pub const FURTHER_FAILURE: f64 = 0.5;
/// A failure in the last 30 days weighs fully, one 30–90 days old this much: the emotional
/// state fades (DOMAIN: state deteriorates while an issue stays open, recovers after).
pub const OLDER_FAILURE_WEIGHT: f64 = 0.7;
/// Failures older than this are out of the load.
pub const FAILURE_MEMORY_DAYS: f64 = 90.0;

/// Per unresolved or escalated contact in the last 90 days (capped at three).
pub const UNRESOLVED_ISSUE: f64 = 0.25;
/// Per repeat contact in the last 90 days (capped at four): repeating information is an unmet
/// expectation (DOMAIN: triggers seen in practice).
pub const REPEAT_CONTACT: f64 = 0.12;
/// Per minute of mean wait beyond [`WAIT_PIVOT_MINUTES`], capped at 30 minutes.
pub const WAIT_MINUTE: f64 = 0.025;
pub const WAIT_PIVOT_MINUTES: f64 = 5.0;
/// Per unit of first-contact-resolution rate around 0.6 (DOMAIN: aim for first-contact
/// resolution).
pub const FCR_RATE: f64 = -0.5;
pub const FCR_PIVOT: f64 = 0.6;

/// Per CSAT point of the latest answer around 3.5, and of the 180-day mean.
pub const LATEST_CSAT: f64 = -0.35;
pub const MEAN_CSAT: f64 = -0.2;
pub const CSAT_PIVOT: f64 = 3.5;
/// Latest NPS class: detractors (0–6) leave more, promoters (9–10) less.
pub const NPS_DETRACTOR: f64 = 0.4;
pub const NPS_PROMOTER: f64 = -0.35;
/// Per CSAT point the latest answer sits below the earlier mean: falling attitude precedes
/// churn.
pub const ATTITUDE_TREND: f64 = -0.25;

/// A great recovery (6+/7 re-survey in the last 90 days) leaves a little goodwill beyond the
/// failure risk it removes — never enough to beat having no failure at all (DOMAIN:
/// customers who never hit a major issue stay the most loyal).
pub const GREAT_RECOVERY: f64 = -0.15;

/// How much of a failure's extra risk a resolved recovery removes, by its 1–7 re-survey
/// score. DOMAIN (Temkin): benefits start at 4/7, below it a recovery is worth little; a
/// great recovery brings most customers back (Salesforce: 78% return after a negative
/// experience if the service was great), so 6+/7 removes most of the risk.
pub fn risk_removed(resurvey_score: u8) -> f64 {
    match resurvey_score {
        0..=3 => 0.1,
        4 => 0.4,
        5 => 0.6,
        6 => 0.85,
        _ => 0.9,
    }
}

/// How the customer came to the company: an attribute the simulated company keeps, and how
/// much of a failure's risk a recovery of theirs removes, relative to [`risk_removed`]. A
/// recovery works through the relationship: customers who came on a friend's word or a
/// salesperson's care answer a gesture, while those who came through a price comparison left
/// with their first failure in mind and a gesture rarely holds them — a lost cause as risky as
/// the others. The shares weigh the factors to about 1, so recovery works as well on average
/// as [`risk_removed`] says.
pub const ACQUISITION_CHANNELS: [(&str, f64, f64); 4] = [
    ("referral", 0.25, 1.4),
    ("sales", 0.25, 1.2),
    ("organic", 0.3, 1.0),
    ("price_comparison", 0.2, 0.2),
];
/// The attribute the channel is kept in.
pub const ACQUISITION_CHANNEL: &str = "acquisition_channel";

/// A failure within 90 days of another: the recovery of a second failure removes this share of
/// what it would have. DOMAIN (Zendesk): about 50% leave after one bad experience, 80% after
/// more than one — a second failure tells the customer the first recovery was no fix.
pub const REPEAT_FAILURE_RECEPTIVENESS: f64 = 0.4;

/// The receptiveness factor of a customer acquired through `channel` (1 for one not named).
pub fn channel_receptiveness(channel: Option<&str>) -> f64 {
    ACQUISITION_CHANNELS
        .iter()
        .find(|(name, _, _)| Some(*name) == channel)
        .map_or(1.0, |(_, _, factor)| *factor)
}

/// The share of a failure's risk a recovery rated `resurvey_score` removes for a customer of
/// `receptiveness` ([`channel_receptiveness`]), the failure a repeat or not: at most all of it.
pub fn risk_removed_for(resurvey_score: u8, receptiveness: f64, repeat: bool) -> f64 {
    let repeat = if repeat {
        REPEAT_FAILURE_RECEPTIVENESS
    } else {
        1.0
    };
    (risk_removed(resurvey_score) * receptiveness * repeat).min(1.0)
}

// ---------------------------------------------------------------------------------------------
// Who the customers are.

/// Segment mix: mostly consumers and small businesses, few enterprises.
pub const SEGMENT_MIX: [(Segment, f64); 4] = [
    (Segment::Consumer, 0.45),
    (Segment::SmallBusiness, 0.30),
    (Segment::MidMarket, 0.17),
    (Segment::Enterprise, 0.08),
];

/// Plan mix per segment: consumers sit on the cheap plans, enterprises on the dear ones.
pub fn plan_mix(segment: Segment) -> [(PlanTier, f64); 4] {
    let weights = match segment {
        Segment::Consumer => [0.35, 0.35, 0.22, 0.08],
        Segment::SmallBusiness => [0.10, 0.35, 0.40, 0.15],
        Segment::MidMarket => [0.0, 0.15, 0.50, 0.35],
        Segment::Enterprise => [0.0, 0.0, 0.35, 0.65],
    };
    [
        (PlanTier::Free, weights[0]),
        (PlanTier::Basic, weights[1]),
        (PlanTier::Standard, weights[2]),
        (PlanTier::Premium, weights[3]),
    ]
}

/// Median annual value per segment, in program currency (log-normal around it).
pub fn median_annual_value(segment: Segment) -> f64 {
    match segment {
        Segment::Consumer => 240.0,
        Segment::SmallBusiness => 2_400.0,
        Segment::MidMarket => 18_000.0,
        Segment::Enterprise => 120_000.0,
    }
}

/// Free plans still carry a value (expected upgrade), just a small one.
pub fn plan_value_factor(plan: PlanTier) -> f64 {
    match plan {
        PlanTier::Free => 0.1,
        PlanTier::Basic => 0.6,
        PlanTier::Standard => 1.0,
        PlanTier::Premium => 1.8,
    }
}

/// Share of the population already a customer at START; the rest join during the first
/// [`JOIN_WINDOW_DAYS`], so tenure varies at every snapshot.
pub const EXISTING_SHARE: f64 = 0.7;
/// Existing customers joined up to this many years before START.
pub const MAX_PRIOR_TENURE_YEARS: f64 = 6.0;
pub const JOIN_WINDOW_DAYS: f64 = 540.0;

// ---------------------------------------------------------------------------------------------
// What they do: latent engagement and satisfaction, usage, contacts, surveys.

/// Weekly mean reversion of the latent engagement (logit of the chance to be active on a
/// day) and satisfaction towards the customer's own baselines: a bad month fades in months.
pub const ENGAGEMENT_REVERSION: f64 = 0.15;
pub const SATISFACTION_REVERSION: f64 = 0.08;
/// How strongly satisfaction pulls engagement: unhappy customers use the product less, so
/// falling usage follows falling attitudes (DOMAIN: health = usage + attitudes).
pub const SATISFACTION_TO_ENGAGEMENT: f64 = 0.8;
/// Satisfaction lost to a failure, and to an unresolved contact.
pub const FAILURE_SHOCK: f64 = 1.2;
pub const UNRESOLVED_SHOCK: f64 = 0.3;
/// After the customer has decided to leave, engagement drifts down this much per week.
pub const LEAVING_DRIFT: f64 = 0.35;

/// Service contacts per year, by segment (business customers call more).
pub fn contacts_per_year(segment: Segment) -> f64 {
    match segment {
        Segment::Consumer => 3.0,
        Segment::SmallBusiness => 4.0,
        Segment::MidMarket => 5.0,
        Segment::Enterprise => 6.0,
    }
}

/// Share of contacts that are a service failure, for a customer of average luck. Each
/// customer's own rate is this times a Gamma(2, 1/2) factor, so some are failed repeatedly.
pub const FAILURE_SHARE: f64 = 0.16;
/// A repeat contact follows an unresolved or escalated one this often, within two weeks.
pub const FOLLOW_UP_SHARE: f64 = 0.5;
/// A repeat contact is itself a failure this often (another hour on hold).
pub const FOLLOW_UP_FAILURE_SHARE: f64 = 0.3;

/// What contacts are about.
pub const TAG_MIX: [(BuiltInTag, f64); 8] = [
    (BuiltInTag::Pricing, 0.10),
    (BuiltInTag::Billing, 0.18),
    (BuiltInTag::Delivery, 0.12),
    (BuiltInTag::Technical, 0.25),
    (BuiltInTag::Account, 0.12),
    (BuiltInTag::ProductQuality, 0.08),
    (BuiltInTag::Service, 0.10),
    (BuiltInTag::Other, 0.05),
];

/// Chance a contact is followed by a CSAT survey answer: angry customers answer more.
pub const SURVEY_AFTER_CONTACT: f64 = 0.3;
pub const SURVEY_AFTER_FAILURE: f64 = 0.5;
/// Periodic relationship (NPS) survey: sent every quarter, answered this often.
pub const NPS_SURVEY_DAYS: i64 = 91;
pub const NPS_RESPONSE_RATE: f64 = 0.45;

// ---------------------------------------------------------------------------------------------
// Recovery.

/// Chance a failure gets a recovery case: about half (brief: ~40–60%), more for customers
/// whose value justifies the cost (DOMAIN: invest where the expected value exceeds the cost).
pub fn recovery_chance(segment: Segment, plan: PlanTier) -> f64 {
    let segment = match segment {
        Segment::Consumer => 0.40,
        Segment::SmallBusiness => 0.48,
        Segment::MidMarket => 0.58,
        Segment::Enterprise => 0.66,
    };
    let plan = match plan {
        PlanTier::Free => -0.1,
        PlanTier::Basic => 0.0,
        PlanTier::Standard => 0.02,
        PlanTier::Premium => 0.06,
    };
    segment + plan
}

/// The protocol: each tag's standard actions (DOMAIN: "pricing → refund, discount or store
/// credit").
pub fn protocol(tag: BuiltInTag) -> &'static [BuiltInAction] {
    use BuiltInAction::*;
    match tag {
        BuiltInTag::Pricing => &[Refund, Discount, StoreCredit],
        BuiltInTag::Billing => &[Refund, FeeWaiver],
        BuiltInTag::Delivery => &[Replacement, Refund],
        BuiltInTag::Technical => &[ExpertSupport, Callback],
        BuiltInTag::Account => &[Callback, Apology],
        BuiltInTag::ProductQuality => &[Replacement, Refund],
        BuiltInTag::Service => &[Apology, Callback, StoreCredit],
        BuiltInTag::Other => &[Apology, Callback],
    }
}

/// Share of spend changes after a recovery, `(cut, raise)`, by the 1–7 re-survey score.
/// DOMAIN (Temkin): very poor recovery — 63% cut, 2% raise; very good — about 24% cut and 20%
/// raise; as many raise as cut at 6/7. Taking "very good" as the top three scores (5–7,
/// averaging 24% / 20%) and "very poor" as 1/7 satisfies all three figures.
pub fn spend_change_shares(resurvey_score: u8) -> (f64, f64) {
    match resurvey_score {
        0 | 1 => (0.63, 0.02),
        2 => (0.55, 0.05),
        3 => (0.46, 0.08),
        4 => (0.38, 0.11),
        5 => (0.30, 0.14),
        6 => (0.22, 0.22),
        _ => (0.20, 0.24),
    }
}
