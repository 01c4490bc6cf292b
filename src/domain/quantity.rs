//! Numbers with a meaning and a range: money, amounts, waits, spend changes and ratings.

/// Larger than any real customer's yearly spend or a recovery's cost; a bigger figure is a
/// unit mistake (cents sent as units, an overflowed counter) that would wreck model scaling.
pub const MAX_MONEY: f64 = 1e12;
/// Larger than any real per-event usage count.
pub const MAX_AMOUNT: f64 = 1e9;
/// A year: longer waits are data errors, not waits.
pub const MAX_WAIT_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// Spend can fall by at most all of it, and a hundredfold rise is already extraordinary.
pub const SPEND_CHANGE_RANGE: (f64, f64) = (-100.0, 10_000.0);

fn finite_within(value: f64, min: f64, max: f64) -> Result<f64, String> {
    if !value.is_finite() {
        return Err(format!("must be a finite number, got {value}"));
    }
    if value < min {
        return Err(if min == 0.0 {
            format!("must not be negative, got {value}")
        } else {
            format!("must be at least {min}, got {value}")
        });
    }
    if value > max {
        return Err(format!("must be at most {max}, got {value}"));
    }
    Ok(value)
}

macro_rules! bounded_number {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(f64);

        impl $name {
            pub fn parse(value: f64) -> Result<Self, String> {
                finite_within(value, $min, $max).map(Self)
            }

            pub const fn get(self) -> f64 {
                self.0
            }
        }
    };
}

bounded_number!(
    /// An amount of money in program currency units: finite, 0 to 1e12.
    Money, 0.0, MAX_MONEY
);
bounded_number!(
    /// A count or amount of product use: finite, 0 to 1e9.
    Amount, 0.0, MAX_AMOUNT
);
bounded_number!(
    /// Seconds a customer waited for a person: finite, 0 to a year.
    WaitSeconds, 0.0, MAX_WAIT_SECONDS
);
bounded_number!(
    /// Percent change in a customer's spend: finite, -100 to 10,000.
    SpendChange, SPEND_CHANGE_RANGE.0, SPEND_CHANGE_RANGE.1
);

/// A score on a fixed integer scale, e.g. CSAT 1–5, NPS 0–10, a 1–7 recovery rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rating<const MIN: u8, const MAX: u8>(u8);

impl<const MIN: u8, const MAX: u8> Rating<MIN, MAX> {
    pub fn parse(value: u32) -> Result<Self, String> {
        if (u32::from(MIN)..=u32::from(MAX)).contains(&value) {
            Ok(Self(value as u8))
        } else {
            Err(format!("must be between {MIN} and {MAX}, got {value}"))
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_refuses_nan_infinity_negative_and_absurd_values() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01, 2e12] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Money::parse(0.0).map(Money::get), Ok(0.0));
        assert_eq!(Money::parse(1200.5).map(Money::get), Ok(1200.5));
    }

    #[test]
    fn spend_change_may_be_negative_down_to_minus_100() {
        assert!(SpendChange::parse(-100.0).is_ok());
        assert!(SpendChange::parse(-100.5).is_err());
        assert!(SpendChange::parse(f64::NAN).is_err());
    }

    #[test]
    fn ratings_hold_to_their_scale() {
        type Recovery = Rating<1, 7>;
        assert!(Recovery::parse(0).is_err());
        assert!(Recovery::parse(8).is_err());
        assert_eq!(Recovery::parse(7).map(Recovery::get), Ok(7));
        type Nps = Rating<0, 10>;
        assert!(Nps::parse(0).is_ok());
        assert!(Nps::parse(11).is_err());
    }
}
