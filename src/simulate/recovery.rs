//! Service recovery in the simulated world: who handles a failure, how well, with what
//! action at what cost, and what the customer's spend does afterwards.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, Exp, Normal};

use super::calibration as cal;
use crate::domain::{
    BuiltInAction, BuiltInTag, CaresRatings, Customer, Money, Rating, RecoveryTrigger, Segment,
    SpendChange,
};

/// Who works a recovery case. Teams differ in speed and in quality (DOMAIN: the recovery team
/// may be team leads, a dedicated team, or the agents themselves); the case record does not
/// name the team, only the oracle does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Team {
    Dedicated,
    TeamLeads,
    Agents,
    Outsourced,
}

impl Team {
    pub const ALL: [Team; 4] = [
        Team::Dedicated,
        Team::TeamLeads,
        Team::Agents,
        Team::Outsourced,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Team::Dedicated => "dedicated",
            Team::TeamLeads => "team_leads",
            Team::Agents => "agents",
            Team::Outsourced => "outsourced",
        }
    }

    /// Mean latent quality on the 1–7 scale: spread so that every band (under 4, 4–5, 6+)
    /// is well populated.
    fn mean_quality(self) -> f64 {
        match self {
            Team::Dedicated => 5.9,
            Team::TeamLeads => 5.0,
            Team::Agents => 4.2,
            Team::Outsourced => 3.1,
        }
    }

    /// Mean hours to the first response: empowered, dedicated staff answer fastest.
    fn mean_response_hours(self) -> f64 {
        match self {
            Team::Dedicated => 2.0,
            Team::TeamLeads => 6.0,
            Team::Agents => 12.0,
            Team::Outsourced => 30.0,
        }
    }

    /// Valuable segments are more often routed to the best teams.
    fn mix(segment: Segment) -> [f64; 4] {
        match segment {
            Segment::Consumer => [0.10, 0.20, 0.40, 0.30],
            Segment::SmallBusiness => [0.15, 0.30, 0.35, 0.20],
            Segment::MidMarket => [0.30, 0.35, 0.25, 0.10],
            Segment::Enterprise => [0.50, 0.30, 0.15, 0.05],
        }
    }
}

/// How a recovery of one failure goes, drawn for every eligible failure — also those that
/// get no case — so the oracle knows what recovering would have achieved.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecoveryPlan {
    pub team: Team,
    pub response_hours: f64,
    pub resolve_hours: f64,
    pub cares: CaresRatings,
    /// The customer's 1–7 rating of the recovery, asked at resolution.
    pub resurvey_score: u8,
}

/// One of `items`, with probability proportional to its weight.
pub(super) fn pick<T: Copy>(rng: &mut impl Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0.0..total);
    for (item, weight) in items {
        if x < *weight {
            return *item;
        }
        x -= weight;
    }
    items[items.len() - 1].0
}

pub(super) fn normal(rng: &mut impl Rng, sd: f64) -> f64 {
    Normal::new(0.0, sd).map_or(0.0, |n| n.sample(rng))
}

pub(super) fn exp_hours(rng: &mut impl Rng, mean: f64) -> f64 {
    Exp::new(1.0 / mean).map_or(mean, |e| e.sample(rng))
}

fn seven_point(value: f64) -> u8 {
    value.round().clamp(1.0, 7.0) as u8
}

fn rating(value: f64) -> Option<Rating<1, 7>> {
    Rating::parse(u32::from(seven_point(value))).ok()
}

impl RecoveryPlan {
    pub fn draw(rng: &mut impl Rng, segment: Segment) -> Self {
        let weights = Team::mix(segment);
        let teams: Vec<(Team, f64)> = Team::ALL.into_iter().zip(weights).collect();
        let team = pick(rng, &teams);
        let response_hours = exp_hours(rng, team.mean_response_hours()).max(0.1);
        // DOMAIN (C.A.R.E.S.): the customer's state deteriorates while they wait for word.
        let quality =
            team.mean_quality() + normal(rng, 0.9) - 0.3 * (response_hours / 24.0).ln_1p();
        let cares = CaresRatings {
            communication: rating(quality + normal(rng, 0.8)),
            accountability: rating(quality + normal(rng, 0.8)),
            responsiveness: rating(
                quality + 0.6 - 0.5 * (response_hours / 4.0).ln_1p() + normal(rng, 0.6),
            ),
            empathy: rating(quality + normal(rng, 0.9)),
            solution: rating(quality + normal(rng, 0.7)),
        };
        Self {
            team,
            response_hours,
            resolve_hours: exp_hours(rng, 36.0).max(0.5),
            cares,
            resurvey_score: seven_point(quality + normal(rng, 0.5)),
        }
    }
}

/// Whether a failure of this customer gets a recovery case.
pub(super) fn is_attempted(rng: &mut impl Rng, customer: &Customer) -> bool {
    rng.gen_bool(cal::recovery_chance(customer.segment, customer.plan).clamp(0.0, 1.0))
}

/// What flagged the failure: a low survey answer when there is one; otherwise a long wait or
/// repeat contact is an unmet expectation; otherwise one of the other triggers seen in
/// practice (DOMAIN: how a recovery program runs).
pub(super) fn trigger(
    rng: &mut impl Rng,
    low_survey: bool,
    unmet_expectation: bool,
    segment: Segment,
) -> RecoveryTrigger {
    if low_survey {
        return RecoveryTrigger::LowSurveyScore;
    }
    if unmet_expectation {
        return RecoveryTrigger::UnmetExpectation;
    }
    // Social posts come mostly from consumers.
    let social = if segment == Segment::Consumer {
        0.15
    } else {
        0.03
    };
    pick(
        rng,
        &[
            (RecoveryTrigger::Complaint, 0.35),
            (RecoveryTrigger::LiveAnger, 0.25),
            (RecoveryTrigger::SocialPost, social),
            (RecoveryTrigger::Proactive, 0.3),
        ],
    )
}

/// The protocol action for the tag.
pub(super) fn action(rng: &mut impl Rng, tag: BuiltInTag) -> BuiltInAction {
    cal::protocol(tag)
        .choose(rng)
        .copied()
        .unwrap_or(BuiltInAction::Apology)
}

/// No single gesture costs more than this, whatever the customer's value.
const MAX_COST: f64 = 50_000.0;

/// What the action costs, in program currency: goodwill scales with what the customer pays,
/// agent time and goods do not.
pub(super) fn cost(rng: &mut impl Rng, action: BuiltInAction, annual_value: f64) -> Option<Money> {
    let monthly = annual_value / 12.0;
    let amount = match action {
        BuiltInAction::Refund => (monthly * rng.gen_range(0.3..1.0)).max(5.0),
        BuiltInAction::Discount => (3.0 * monthly * rng.gen_range(0.1..0.25)).max(3.0),
        BuiltInAction::StoreCredit => (monthly * rng.gen_range(0.2..0.6)).max(5.0),
        BuiltInAction::FeeWaiver => rng.gen_range(10.0..60.0),
        BuiltInAction::Replacement => rng.gen_range(20.0..200.0),
        BuiltInAction::Callback => rng.gen_range(8.0..25.0),
        BuiltInAction::ExpertSupport => rng.gen_range(40.0..150.0),
        BuiltInAction::Apology => rng.gen_range(2.0..8.0),
    };
    Money::parse((amount.min(MAX_COST) * 100.0).round() / 100.0).ok()
}

/// The spend change of a retained customer after a recovery rated `score`
/// ([`cal::spend_change_shares`]): a cut of 10–60%, a raise of 5–40%, or no change.
pub(super) fn spend_change(rng: &mut impl Rng, score: u8) -> Option<SpendChange> {
    let (cut, raise) = cal::spend_change_shares(score);
    let x: f64 = rng.r#gen();
    let pct = if x < cut {
        -rng.gen_range(10.0..60.0)
    } else if x < cut + raise {
        rng.gen_range(5.0..40.0)
    } else {
        0.0
    };
    SpendChange::parse((pct * 10.0_f64).round() / 10.0).ok()
}

/// A churned customer's spend fell to nothing.
pub(super) fn spend_lost() -> Option<SpendChange> {
    SpendChange::parse(-100.0).ok()
}

/// Draws behind [`resurvey_score_shares`]: enough that each share is within about 0.2
/// percentage points of its exact value.
const QUALITY_DRAWS: usize = 100_000;

/// The share of each 1–7 re-survey score (index 0 unused) a recovery of a customer in
/// `segment` gets, over the team it is routed to and how that team does: what is known of a
/// recovery's quality before it is made. Computed once per segment from [`RecoveryPlan::draw`]
/// with its own fixed seed, so the simulated world's own draws are untouched.
pub(super) fn resurvey_score_shares(segment: Segment) -> [f64; 8] {
    use rand::SeedableRng;
    static SHARES: std::sync::OnceLock<[[f64; 8]; 4]> = std::sync::OnceLock::new();
    let segments = [
        Segment::Consumer,
        Segment::SmallBusiness,
        Segment::MidMarket,
        Segment::Enterprise,
    ];
    let all = SHARES.get_or_init(|| {
        segments.map(|segment| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x9a11_7e5c);
            let mut shares = [0.0; 8];
            for _ in 0..QUALITY_DRAWS {
                shares[usize::from(RecoveryPlan::draw(&mut rng, segment).resurvey_score)] +=
                    1.0 / QUALITY_DRAWS as f64;
            }
            shares
        })
    });
    let index = segments.iter().position(|s| *s == segment).unwrap_or(0);
    all[index]
}

/// The mean of [`cost`] for `action` and a customer worth `annual_value` a year: what a
/// policy deciding before the recovery should expect to pay, by the simulator's own cost model
/// (each amount is uniform within its range, then held within its floor and [`MAX_COST`]).
pub fn expected_cost(action: BuiltInAction, annual_value: f64) -> f64 {
    let monthly = annual_value / 12.0;
    let (low, high, floor) = match action {
        BuiltInAction::Refund => (0.3 * monthly, monthly, 5.0),
        BuiltInAction::Discount => (0.3 * monthly, 0.75 * monthly, 3.0),
        BuiltInAction::StoreCredit => (0.2 * monthly, 0.6 * monthly, 5.0),
        BuiltInAction::FeeWaiver => (10.0, 60.0, 0.0),
        BuiltInAction::Replacement => (20.0, 200.0, 0.0),
        BuiltInAction::Callback => (8.0, 25.0, 0.0),
        BuiltInAction::ExpertSupport => (40.0, 150.0, 0.0),
        BuiltInAction::Apology => (2.0, 8.0, 0.0),
    };
    mean_of_clamped_uniform(low, high, floor, MAX_COST)
}

/// E[min(max(X, floor), cap)] for X uniform on [low, high].
fn mean_of_clamped_uniform(low: f64, high: f64, floor: f64, cap: f64) -> f64 {
    if high <= low {
        return low.clamp(floor, cap);
    }
    let width = high - low;
    let below = (floor.min(high) - low).max(0.0);
    let above = (high - cap.max(low)).max(0.0);
    let (from, to) = (low.max(floor), high.min(cap));
    let middle = if to > from {
        (to * to - from * from) / 2.0
    } else {
        0.0
    };
    (floor * below + middle + cap * above) / width
}

#[cfg(test)]
mod expected_quality_tests {
    use super::*;

    #[test]
    fn valuable_segments_expect_better_recoveries_and_shares_sum_to_one() {
        let mean = |segment| {
            let shares = resurvey_score_shares(segment);
            assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            assert_eq!(shares[0], 0.0);
            (1..8).map(|s| s as f64 * shares[s]).sum::<f64>()
        };
        assert!(mean(Segment::Enterprise) > mean(Segment::Consumer) + 0.5);
    }
}

#[cfg(test)]
mod expected_cost_tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn the_expected_cost_is_the_mean_of_drawn_costs() {
        let mut rng = StdRng::seed_from_u64(5);
        // A small customer (floors bind), an ordinary one, and one past the cap.
        for annual_value in [60.0, 2_400.0, 1_200_000.0] {
            for action in BuiltInAction::ALL {
                let draws = 20_000;
                let mean = (0..draws)
                    .filter_map(|_| cost(&mut rng, *action, annual_value))
                    .map(|m| m.get())
                    .sum::<f64>()
                    / f64::from(draws);
                let expected = expected_cost(*action, annual_value);
                assert!(
                    (mean - expected).abs() <= 0.01 * expected + 0.02,
                    "{action} at {annual_value}: drawn {mean}, expected {expected}"
                );
            }
        }
    }
}
