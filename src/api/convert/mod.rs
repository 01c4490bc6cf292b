//! Proto messages to domain values: the one place where input is checked. Each message is
//! destructured field by field, so a field added to the contract does not compile until it is
//! handled here.

mod decision;
mod outcome;
mod scoring;
mod to_proto;

pub use decision::funnel;
pub use scoring::{ScoreSubject, health_score, missing, score_error};

use crate::domain::{
    Amount, AttributeName, AttributeValue, Attributes, BuiltInAction, BuiltInTag, CaresRatings,
    CaseId, Channel, ChurnOutcome, ChurnStatus, Customer, CustomerId, EventId, HIDDEN_CHARACTERS,
    Interaction, InteractionId, IssueTag, Money, PlanTier, Rating, Record, RecoveryAction,
    RecoveryCase, RecoveryTrigger, Resolution, Segment, SpendChange, Survey, SurveyId, Timestamp,
    TimestampBounds, UsageEvent, Violations, Vocabulary, WaitSeconds, has_hidden_characters,
};
use crate::proto::v1 as proto;

/// Labels (persona, region, activity) are names, not prose.
const MAX_LABEL_BYTES: usize = 128;
/// Room for a paragraph of survey comment, without letting one record bloat a batch.
const MAX_COMMENT_BYTES: usize = 4_096;

/// `$name(i32)` parses a proto enum number into the domain value; `From<domain>` gives the
/// number back. Both list every variant, so the two vocabularies cannot drift apart.
macro_rules! enum_from_proto {
    ($name:ident, $proto:ty => $domain:ty { $($variant:ident),+ $(,)? }) => {
        fn $name(raw: i32) -> Result<$domain, String> {
            match <$proto>::try_from(raw) {
                Ok(<$proto>::Unspecified) => Err("is required".into()),
                $(Ok(<$proto>::$variant) => Ok(<$domain>::$variant),)+
                Err(_) => Err(format!("unknown value {raw}")),
            }
        }

        impl From<$domain> for $proto {
            fn from(value: $domain) -> Self {
                match value {
                    $(<$domain>::$variant => <$proto>::$variant,)+
                }
            }
        }
    };
}

enum_from_proto!(segment, proto::Segment => Segment { Consumer, SmallBusiness, MidMarket, Enterprise });
enum_from_proto!(plan_tier, proto::PlanTier => PlanTier { Free, Basic, Standard, Premium });
enum_from_proto!(channel, proto::Channel => Channel {
    Phone, Email, Chat, Social, Web, InPerson, InApp,
});
enum_from_proto!(built_in_tag, proto::IssueTag => BuiltInTag {
    Pricing, Billing, Delivery, Technical, Account, ProductQuality, Service, Other,
});
enum_from_proto!(resolution, proto::Resolution => Resolution { Resolved, Unresolved, Escalated });
enum_from_proto!(churn_status, proto::ChurnStatus => ChurnStatus { Active, Churned });
enum_from_proto!(recovery_trigger, proto::RecoveryTrigger => RecoveryTrigger {
    LowSurveyScore, SocialPost, LiveAnger, Complaint, UnmetExpectation, Proactive,
});
enum_from_proto!(built_in_action, proto::RecoveryAction => BuiltInAction {
    Apology, Refund, Discount, StoreCredit, FeeWaiver, Replacement, Callback, ExpertSupport,
});

/// A tag's number in the contract's enum; UNSPECIFIED for a name outside the built-in vocabulary.
pub(super) fn tag_number(tag: IssueTag) -> i32 {
    tag.built_in()
        .map_or(0, |t| proto::IssueTag::from(t).into())
}

/// An action's number in the contract's enum; UNSPECIFIED for a name outside the built-in
/// vocabulary.
pub(super) fn action_number(action: RecoveryAction) -> i32 {
    action
        .built_in()
        .map_or(0, |a| proto::RecoveryAction::from(a).into())
}

/// A built-in value if one is set: UNSPECIFIED means the caller named it instead.
fn optional_built_in<T>(
    raw: i32,
    parse: fn(i32) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if raw == 0 {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

/// A tag or an action given as a built-in value (`built_in`), by name (`name`) or both, found in
/// the serving vocabulary by `find`. Both set must name the same thing.
fn vocabulary_term<T: PartialEq + Copy>(
    field: &str,
    built_in: Option<&str>,
    name: &str,
    find: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    match (built_in, name.is_empty()) {
        (None, true) => Err(format!("is required: set {field} or {field}_name")),
        (Some(value), true) => find(value),
        (None, false) => find(name),
        (Some(value), false) => {
            let named = find(name)?;
            if find(value)? == named {
                Ok(named)
            } else {
                Err(format!(
                    "{value:?} and {field}_name {:?} name different {field}s",
                    crate::domain::shortened(name, crate::domain::MAX_NAME_BYTES)
                ))
            }
        }
    }
}

/// Optional free text: empty means absent.
pub(super) fn optional_text(
    raw: String,
    max_bytes: usize,
    allow_newlines: bool,
) -> Result<Option<String>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > max_bytes {
        return Err(format!(
            "must be at most {max_bytes} bytes, got {}",
            raw.len()
        ));
    }
    let forbidden = if allow_newlines {
        raw.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    } else {
        has_hidden_characters(&raw)
    };
    if forbidden {
        return Err(HIDDEN_CHARACTERS.into());
    }
    Ok(Some(raw))
}

pub(super) fn label(raw: String) -> Result<Option<String>, String> {
    optional_text(raw, MAX_LABEL_BYTES, false)
}

fn required_label(raw: String) -> Result<String, String> {
    label(raw)?.ok_or_else(|| "must not be empty".to_owned())
}

/// An optional reference to another record's id: empty means absent.
pub(super) fn optional_id<T>(
    raw: String,
    parse: fn(String) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if raw.is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

pub(super) fn optional<T, U>(
    raw: Option<T>,
    parse: impl FnOnce(T) -> Result<U, String>,
) -> Result<Option<U>, String> {
    raw.map(parse).transpose()
}

/// Checks received records against the time they were received and the serving program's
/// vocabulary of tags and actions.
#[derive(Debug, Clone, Copy)]
pub struct RecordParser<'v> {
    bounds: TimestampBounds,
    /// When the request arrived: the default "as of" time.
    now: Timestamp,
    vocabulary: &'v Vocabulary,
}

impl<'v> RecordParser<'v> {
    pub fn received_at(now: Timestamp, vocabulary: &'v Vocabulary) -> Self {
        Self {
            bounds: TimestampBounds::received_at(now),
            now,
            vocabulary,
        }
    }

    /// An issue tag, as a built-in value, a name or both.
    pub(super) fn tag(&self, raw: i32, name: &str) -> Result<IssueTag, String> {
        let built_in = optional_built_in(raw, built_in_tag)
            .map_err(|_| format!("unknown tag {raw}: name the tag in tag_name"))?;
        vocabulary_term("tag", built_in.map(BuiltInTag::as_str), name, |n| {
            self.vocabulary.tag(n)
        })
    }

    /// A recovery action, as a built-in value, a name or both.
    fn action(&self, raw: i32, name: &str) -> Result<RecoveryAction, String> {
        let built_in = optional_built_in(raw, built_in_action)
            .map_err(|_| format!("unknown action {raw}: name the action in action_name"))?;
        vocabulary_term("action", built_in.map(BuiltInAction::as_str), name, |n| {
            self.vocabulary.action(n)
        })
    }

    pub(super) fn time(&self, raw: prost_types::Timestamp) -> Result<Timestamp, String> {
        let at = Timestamp::from_seconds_nanos(raw.seconds, raw.nanos)
            .ok_or_else(|| format!("is not a valid time ({}s, {}ns)", raw.seconds, raw.nanos))?;
        self.bounds.check(at)
    }

    pub(super) fn required_time(
        &self,
        raw: Option<prost_types::Timestamp>,
    ) -> Result<Timestamp, String> {
        self.time(raw.ok_or_else(|| "is required".to_owned())?)
    }

    pub(super) fn optional_time(
        &self,
        raw: Option<prost_types::Timestamp>,
    ) -> Result<Option<Timestamp>, String> {
        optional(raw, |t| self.time(t))
    }

    /// Parses one record; violation paths start at the record's kind, e.g. `customer.plan`.
    pub fn record(&self, record: proto::Record) -> Result<Record, Violations> {
        let proto::Record { kind } = record;
        let (field, result) = match kind {
            None => {
                let mut violations = Violations::default();
                violations.push("kind", "is required: set one of customer, usage_event, interaction, survey, churn_outcome, recovery_case");
                return Err(violations);
            }
            Some(proto::record::Kind::Customer(r)) => {
                ("customer", self.customer(r).map(Record::Customer))
            }
            Some(proto::record::Kind::UsageEvent(r)) => {
                ("usage_event", self.usage_event(r).map(Record::UsageEvent))
            }
            Some(proto::record::Kind::Interaction(r)) => {
                ("interaction", self.interaction(r).map(Record::Interaction))
            }
            Some(proto::record::Kind::Survey(r)) => ("survey", self.survey(r).map(Record::Survey)),
            Some(proto::record::Kind::ChurnOutcome(r)) => (
                "churn_outcome",
                self.churn_outcome(r).map(Record::ChurnOutcome),
            ),
            Some(proto::record::Kind::RecoveryCase(r)) => (
                "recovery_case",
                self.recovery_case(r).map(Record::RecoveryCase),
            ),
        };
        result.map_err(|nested| {
            let mut violations = Violations::default();
            violations.extend_nested(field, nested);
            violations
        })
    }

    pub fn customer(&self, customer: proto::Customer) -> Result<Customer, Violations> {
        let proto::Customer {
            customer_id,
            segment: raw_segment,
            plan,
            persona,
            region,
            annual_value,
            customer_since,
            updated_at,
            attributes,
        } = customer;
        let mut v = Violations::default();
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let segment = v.check("segment", segment(raw_segment));
        let plan = v.check("plan", plan_tier(plan));
        let persona = v.check("persona", label(persona));
        let region = v.check("region", label(region));
        let annual_value = v.check("annual_value", Money::parse(annual_value));
        let customer_since = v.check("customer_since", self.required_time(customer_since));
        let updated_at = v.check("updated_at", self.required_time(updated_at));
        let attributes = self::attributes(attributes, &mut v);
        if let (Some(since), Some(updated)) = (customer_since, updated_at)
            && since > updated
        {
            v.push(
                "customer_since",
                format!("{since} is after updated_at {updated}"),
            );
        }
        v.finish(|| {
            Some(Customer {
                customer_id: customer_id?,
                segment: segment?,
                plan: plan?,
                persona: persona?,
                region: region?,
                annual_value: annual_value?,
                customer_since: customer_since?,
                updated_at: updated_at?,
                attributes: attributes?,
            })
        })
    }

    pub fn usage_event(&self, event: proto::UsageEvent) -> Result<UsageEvent, Violations> {
        let proto::UsageEvent {
            event_id,
            customer_id,
            occurred_at,
            activity,
            quantity,
        } = event;
        let mut v = Violations::default();
        let event_id = v.check("event_id", EventId::parse(event_id));
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let occurred_at = v.check("occurred_at", self.required_time(occurred_at));
        let activity = v.check("activity", required_label(activity));
        let quantity = v.check("quantity", Amount::parse(quantity));
        v.finish(|| {
            Some(UsageEvent {
                event_id: event_id?,
                customer_id: customer_id?,
                occurred_at: occurred_at?,
                activity: activity?,
                quantity: quantity?,
            })
        })
    }

    pub fn interaction(&self, interaction: proto::Interaction) -> Result<Interaction, Violations> {
        let proto::Interaction {
            interaction_id,
            customer_id,
            occurred_at,
            channel: raw_channel,
            tag,
            tag_name,
            failure,
            resolution: raw_resolution,
            wait_seconds,
            first_contact_resolution,
            repeat_contact,
        } = interaction;
        let mut v = Violations::default();
        let interaction_id = v.check("interaction_id", InteractionId::parse(interaction_id));
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let occurred_at = v.check("occurred_at", self.required_time(occurred_at));
        let channel = v.check("channel", channel(raw_channel));
        let tag = v.check("tag", self.tag(tag, &tag_name));
        let resolution = v.check("resolution", resolution(raw_resolution));
        let wait_seconds = v.check("wait_seconds", WaitSeconds::parse(wait_seconds));
        v.finish(|| {
            Some(Interaction {
                interaction_id: interaction_id?,
                customer_id: customer_id?,
                occurred_at: occurred_at?,
                channel: channel?,
                tag: tag?,
                failure,
                resolution: resolution?,
                wait_seconds: wait_seconds?,
                first_contact_resolution,
                repeat_contact,
            })
        })
    }

    pub fn survey(&self, survey: proto::Survey) -> Result<Survey, Violations> {
        let proto::Survey {
            survey_id,
            customer_id,
            answered_at,
            channel: raw_channel,
            interaction_id,
            csat,
            nps,
            recovery_rating,
            comment,
        } = survey;
        let mut v = Violations::default();
        if csat.is_none() && nps.is_none() && recovery_rating.is_none() {
            v.push(
                "csat",
                "at least one of csat, nps and recovery_rating is required",
            );
        }
        let survey_id = v.check("survey_id", SurveyId::parse(survey_id));
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let answered_at = v.check("answered_at", self.required_time(answered_at));
        let channel = v.check("channel", channel(raw_channel));
        let interaction_id = v.check(
            "interaction_id",
            optional_id(interaction_id, InteractionId::parse),
        );
        let csat = v.check("csat", optional(csat, Rating::parse));
        let nps = v.check("nps", optional(nps, Rating::parse));
        let recovery_rating = v.check("recovery_rating", optional(recovery_rating, Rating::parse));
        let comment = v.check("comment", optional_text(comment, MAX_COMMENT_BYTES, true));
        v.finish(|| {
            Some(Survey {
                survey_id: survey_id?,
                customer_id: customer_id?,
                answered_at: answered_at?,
                channel: channel?,
                interaction_id: interaction_id?,
                csat: csat?,
                nps: nps?,
                recovery_rating: recovery_rating?,
                comment: comment?,
            })
        })
    }

    pub fn churn_outcome(&self, outcome: proto::ChurnOutcome) -> Result<ChurnOutcome, Violations> {
        let proto::ChurnOutcome {
            customer_id,
            status,
            churned_at,
            observed_at,
        } = outcome;
        let mut v = Violations::default();
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let status = v.check("status", churn_status(status));
        let churned_at = v.check("churned_at", self.optional_time(churned_at));
        let observed_at = v.check("observed_at", self.required_time(observed_at));
        match (status, churned_at) {
            (Some(ChurnStatus::Churned), Some(None)) => {
                v.push("churned_at", "is required when status is CHURNED")
            }
            (Some(ChurnStatus::Active), Some(Some(_))) => {
                v.push("churned_at", "must be absent when status is ACTIVE")
            }
            _ => {}
        }
        if let (Some(Some(churned)), Some(observed)) = (churned_at, observed_at)
            && churned > observed
        {
            v.push(
                "churned_at",
                format!("{churned} is after observed_at {observed}"),
            );
        }
        v.finish(|| {
            Some(ChurnOutcome {
                customer_id: customer_id?,
                status: status?,
                churned_at: churned_at?,
                observed_at: observed_at?,
            })
        })
    }

    pub fn recovery_case(&self, case: proto::RecoveryCase) -> Result<RecoveryCase, Violations> {
        let proto::RecoveryCase {
            case_id,
            customer_id,
            trigger,
            tag,
            action,
            tag_name,
            action_name,
            cost,
            trigger_interaction_id,
            trigger_survey_id,
            opened_at,
            first_response_at,
            resolved_at,
            cares,
            resurvey_score,
            retained,
            spend_change_pct,
            updated_at,
        } = case;
        let mut v = Violations::default();
        let case_id = v.check("case_id", CaseId::parse(case_id));
        let customer_id = v.check("customer_id", CustomerId::parse(customer_id));
        let trigger = v.check("trigger", recovery_trigger(trigger));
        let tag = v.check("tag", self.tag(tag, &tag_name));
        let action = v.check("action", self.action(action, &action_name));
        let cost = v.check("cost", Money::parse(cost));
        let trigger_interaction_id = v.check(
            "trigger_interaction_id",
            optional_id(trigger_interaction_id, InteractionId::parse),
        );
        let trigger_survey_id = v.check(
            "trigger_survey_id",
            optional_id(trigger_survey_id, SurveyId::parse),
        );
        let opened_at = v.check("opened_at", self.required_time(opened_at));
        let first_response_at = v.check("first_response_at", self.optional_time(first_response_at));
        let resolved_at = v.check("resolved_at", self.optional_time(resolved_at));
        let cares = cares.map(|c| cares_ratings(c, &mut v)).unwrap_or_default();
        let resurvey_score = v.check("resurvey_score", optional(resurvey_score, Rating::parse));
        let spend_change_pct = v.check(
            "spend_change_pct",
            optional(spend_change_pct, SpendChange::parse),
        );
        let updated_at = v.check("updated_at", self.required_time(updated_at));
        if let Some(opened) = opened_at {
            let later = [
                ("first_response_at", first_response_at.flatten()),
                ("resolved_at", resolved_at.flatten()),
                ("updated_at", updated_at),
            ];
            for (field, at) in later {
                if let Some(at) = at
                    && at < opened
                {
                    v.push(field, format!("{at} is before opened_at {opened}"));
                }
            }
        }
        v.finish(|| {
            Some(RecoveryCase {
                case_id: case_id?,
                customer_id: customer_id?,
                trigger: trigger?,
                tag: tag?,
                action: action?,
                cost: cost?,
                trigger_interaction_id: trigger_interaction_id?,
                trigger_survey_id: trigger_survey_id?,
                opened_at: opened_at?,
                first_response_at: first_response_at?,
                resolved_at: resolved_at?,
                cares,
                resurvey_score: resurvey_score?,
                retained,
                spend_change_pct: spend_change_pct?,
                updated_at: updated_at?,
            })
        })
    }
}

fn cares_ratings(cares: proto::CaresRatings, v: &mut Violations) -> CaresRatings {
    let proto::CaresRatings {
        communication,
        accountability,
        responsiveness,
        empathy,
        solution,
    } = cares;
    let mut rating =
        |field: &str, raw: Option<u32>| v.check(field, optional(raw, Rating::parse)).flatten();
    CaresRatings {
        communication: rating("cares.communication", communication),
        accountability: rating("cares.accountability", accountability),
        responsiveness: rating("cares.responsiveness", responsiveness),
        empathy: rating("cares.empathy", empathy),
        solution: rating("cares.solution", solution),
    }
}

pub fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    let (seconds, nanos) = at.to_seconds_nanos();
    prost_types::Timestamp {
        seconds,
        nanos: nanos as i32,
    }
}

/// A profile's attributes, each name and value checked; every bad one is reported under
/// `attributes[NAME]`.
fn attributes(
    raw: std::collections::BTreeMap<String, proto::AttributeValue>,
    v: &mut Violations,
) -> Option<Attributes> {
    use proto::attribute_value::Value;
    let mut values = std::collections::BTreeMap::new();
    let mut valid = true;
    for (name, value) in raw {
        let field = format!("attributes[{name}]");
        let parsed = AttributeName::parse(name).and_then(|name| {
            let value = match value.value {
                Some(Value::Number(n)) => AttributeValue::number(n),
                Some(Value::Category(c)) => AttributeValue::category(c),
                Some(Value::Flag(f)) => Ok(AttributeValue::Flag(f)),
                None => Err("must be set to a number, a category or a flag".to_owned()),
            }?;
            Ok((name, value))
        });
        match parsed {
            Ok((name, value)) => {
                values.insert(name, value);
            }
            Err(reason) => {
                v.push(&field, reason);
                valid = false;
            }
        }
    }
    let attributes = v.check("attributes", Attributes::new(values));
    attributes.filter(|_| valid)
}
