//! The closed vocabularies of customer data, and the built-in issue tags and recovery actions.
//! Each value has a stable snake_case name, which is how it is stored and how it reads in
//! reports.

use std::fmt;
use std::str::FromStr;

/// A stored name that matches no value: the database holds something this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} name {name:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(name: &str) -> Result<Self, UnknownName> {
                match name {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownName { kind: stringify!($name), name: name.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Broad customer segment.
    Segment {
        Consumer => "consumer",
        SmallBusiness => "small_business",
        MidMarket => "mid_market",
        Enterprise => "enterprise",
    }
);

named_enum!(
    /// Plan tier, cheapest first.
    PlanTier {
        Free => "free",
        Basic => "basic",
        Standard => "standard",
        Premium => "premium",
    }
);

named_enum!(
    /// Where an interaction or survey answer happened.
    Channel {
        Phone => "phone",
        Email => "email",
        Chat => "chat",
        Social => "social",
        Web => "web",
        InPerson => "in_person",
        InApp => "in_app",
    }
);

named_enum!(
    /// The built-in issue tags: the contract's enum, and the vocabulary of a program that
    /// declares none (tags are open names: see `vocabulary`).
    BuiltInTag {
        Pricing => "pricing",
        Billing => "billing",
        Delivery => "delivery",
        Technical => "technical",
        Account => "account",
        ProductQuality => "product_quality",
        Service => "service",
        Other => "other",
    }
);

named_enum!(
    /// Where an interaction stood when it ended.
    Resolution {
        Resolved => "resolved",
        Unresolved => "unresolved",
        Escalated => "escalated",
    }
);

named_enum!(
    /// Whether a customer was still a customer when observed.
    ChurnStatus {
        Active => "active",
        Churned => "churned",
    }
);

named_enum!(
    /// What flagged a customer for recovery.
    RecoveryTrigger {
        LowSurveyScore => "low_survey_score",
        SocialPost => "social_post",
        LiveAnger => "live_anger",
        Complaint => "complaint",
        UnmetExpectation => "unmet_expectation",
        Proactive => "proactive",
    }
);

named_enum!(
    /// The built-in recovery actions: the contract's enum, and the vocabulary of a program that
    /// declares none.
    BuiltInAction {
        Apology => "apology",
        Refund => "refund",
        Discount => "discount",
        StoreCredit => "store_credit",
        FeeWaiver => "fee_waiver",
        Replacement => "replacement",
        Callback => "callback",
        ExpertSupport => "expert_support",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_its_value() {
        for tag in BuiltInTag::ALL {
            assert_eq!(tag.as_str().parse::<BuiltInTag>(), Ok(*tag));
        }
        for action in BuiltInAction::ALL {
            assert_eq!(action.as_str().parse::<BuiltInAction>(), Ok(*action));
        }
    }

    #[test]
    fn an_unknown_name_says_what_it_is() {
        let error = "gold".parse::<PlanTier>().expect_err("not a tier");
        assert_eq!(error.to_string(), "unknown PlanTier name \"gold\"");
    }
}
