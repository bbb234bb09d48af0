//! Condition operators: `StringEquals`, `NumericLessThan`, `IpAddress`, …,
//! their `…IfExists` forms and the `ForAnyValue:` / `ForAllValues:` set
//! prefixes, as the IAM JSON policy reference defines them.
//!
//! Must never: compare IP addresses in two spellings (an IPv4 client seen
//! on a dual-stack listener as `::ffff:a.b.c.d`, a range written so): both
//! sides are canonical before they meet.

use std::net::IpAddr;

use crate::ConditionValues;
use crate::glob::{Budget, Pattern};

/// The comparison an operator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compare {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    ArnLike,
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetMode {
    Single,
    AnyValue,
    AllValues,
}

/// One operator applied to one key with its values.
#[derive(Clone, Debug)]
pub(crate) struct Condition {
    pub(crate) compare: Compare,
    /// `StringNotEquals`, `NotIpAddress`, `ArnNotLike`, …
    pub(crate) negated: bool,
    pub(crate) if_exists: bool,
    pub(crate) set: SetMode,
    /// Normalised ([`crate::normalize_key`]).
    pub(crate) key: String,
    pub(crate) values: Vec<Value>,
}

/// A policy value, pre-parsed for its operator.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// Strings and ARNs (`StringEqualsIgnoreCase` too: compared folded).
    Pattern(Pattern),
    Number(f64),
    Time(i64),
    Cidr(IpAddr, u8),
    Flag(bool),
}

impl Value {
    /// Whether the value's policy variables are all ones Cairn supplies.
    pub(crate) fn variables_supported(&self) -> bool {
        match self {
            Value::Pattern(p) => p.variables_supported(),
            _ => true,
        }
    }
}

/// Parses an operator name. `None`: not an operator.
pub(crate) fn parse_operator(name: &str) -> Option<(Compare, bool, bool, SetMode)> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (SetMode::AnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (SetMode::AllValues, r)
    } else {
        (SetMode::Single, name)
    };
    let (rest, if_exists) = match rest.strip_suffix("IfExists") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    use Compare::*;
    let (compare, negated) = match rest {
        "StringEquals" => (StringEquals, false),
        "StringNotEquals" => (StringEquals, true),
        "StringEqualsIgnoreCase" => (StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (StringEqualsIgnoreCase, true),
        "StringLike" => (StringLike, false),
        "StringNotLike" => (StringLike, true),
        "NumericEquals" => (NumericEquals, false),
        "NumericNotEquals" => (NumericEquals, true),
        "NumericLessThan" => (NumericLessThan, false),
        "NumericLessThanEquals" => (NumericLessThanEquals, false),
        "NumericGreaterThan" => (NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (NumericGreaterThanEquals, false),
        "DateEquals" => (DateEquals, false),
        "DateNotEquals" => (DateEquals, true),
        "DateLessThan" => (DateLessThan, false),
        "DateLessThanEquals" => (DateLessThanEquals, false),
        "DateGreaterThan" => (DateGreaterThan, false),
        "DateGreaterThanEquals" => (DateGreaterThanEquals, false),
        "Bool" => (Bool, false),
        "IpAddress" => (IpAddress, false),
        "NotIpAddress" => (IpAddress, true),
        "ArnEquals" | "ArnLike" => (ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (ArnLike, true),
        "Null" if !if_exists && set == SetMode::Single => (Null, false),
        _ => return None,
    };
    Some((compare, negated, if_exists, set))
}

/// Parses one policy value for `compare`; `None`: not a valid value.
pub(crate) fn parse_value(compare: Compare, raw: &str, variables: bool) -> Option<Value> {
    use Compare::*;
    Some(match compare {
        StringEquals => Value::Pattern(Pattern::literal(raw, variables)),
        StringLike | ArnLike => Value::Pattern(Pattern::compile(raw, variables)),
        // With its variables resolved, as StringEquals.
        StringEqualsIgnoreCase => Value::Pattern(Pattern::literal(raw, variables)),
        NumericEquals
        | NumericLessThan
        | NumericLessThanEquals
        | NumericGreaterThan
        | NumericGreaterThanEquals => Value::Number(raw.trim().parse().ok()?),
        DateEquals
        | DateLessThan
        | DateLessThanEquals
        | DateGreaterThan
        | DateGreaterThanEquals => Value::Time(parse_time(raw)?),
        Bool | Null => Value::Flag(parse_bool(raw)?),
        IpAddress => {
            let (ip, len) = parse_cidr(raw)?;
            Value::Cidr(ip, len)
        }
    })
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// ISO 8601 (`2026-12-05T08:00:00Z`, with or without fraction/offset, or
/// a bare date) or epoch seconds.
pub(crate) fn parse_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<i64>() {
        return Some(secs);
    }
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let date = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, date)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// `192.0.2.0/24`, `2001:db8::/32` or a bare address (a host). An
/// IPv4-mapped range (`::ffff:192.0.2.0/120`) is the IPv4 range it maps
/// (`192.0.2.0/24`), so it meets IPv4 clients in one form; a shorter mapped
/// prefix (under /96) is not only IPv4 and stays IPv6.
pub(crate) fn parse_cidr(raw: &str) -> Option<(IpAddr, u8)> {
    let raw = raw.trim();
    let (addr, len) = match raw.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (raw, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return None;
    }
    // An IPv4-mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range it
    // maps: clients are matched by their canonical (IPv4) address.
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
        && len >= 96
    {
        return Some((IpAddr::V4(v4), len - 96));
    }
    Some((ip, len))
}

/// Whether `ip` (any spelling) is in `net`/`len` (as [`parse_cidr`] gives
/// it: already canonical).
fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Condition {
    /// Whether the condition holds for the request's `context`, drawing on
    /// `budget` (the caller checks it: a spent budget decides nothing).
    pub(crate) fn holds(&self, context: &dyn ConditionValues, budget: &Budget) -> bool {
        let present = context.values(&self.key);
        if self.compare == Compare::Null {
            // "true": the key is absent; "false": it is present.
            let absent = present.is_none_or(<[String]>::is_empty);
            return self
                .values
                .iter()
                .any(|v| matches!(v, Value::Flag(want) if *want == absent));
        }
        let var = |name: &str| -> Option<String> {
            context.values(name).and_then(|v| v.first().cloned())
        };
        let one = |text: &str| {
            self.values
                .iter()
                .any(|v| self.matches(v, text, &var, budget))
        };
        match (present, self.set) {
            (None, SetMode::AllValues) => true,
            (None, SetMode::AnyValue) => false,
            // A key the request lacks: `…IfExists` holds; so do the negated
            // operators (nothing in the request equals the values), which
            // is what "deny unless the header says AES256" relies on.
            (None, SetMode::Single) => self.if_exists || self.negated,
            (Some(values), SetMode::Single) => {
                let any = values.iter().any(|t| one(t));
                any != self.negated
            }
            (Some(values), SetMode::AnyValue) => values.iter().any(|t| one(t) != self.negated),
            (Some(values), SetMode::AllValues) => values.iter().all(|t| one(t) != self.negated),
        }
    }

    fn matches(
        &self,
        value: &Value,
        text: &str,
        var: &dyn Fn(&str) -> Option<String>,
        budget: &Budget,
    ) -> bool {
        use Compare::*;
        if let Value::Pattern(p) = value {
            return match self.compare {
                StringEquals | StringLike | ArnLike => p.matches_within(text, false, var, budget),
                StringEqualsIgnoreCase => p.matches_within(text, true, var, budget),
                _ => false,
            };
        }
        // Numbers, dates, flags and addresses: one step per comparison
        // (each parses a text of the request).
        if !budget.take(1 + text.len() as u64 / 64) {
            return false;
        }
        match (self.compare, value) {
            (_, Value::Number(n)) => {
                let Ok(t) = text.trim().parse::<f64>() else {
                    return false;
                };
                match self.compare {
                    NumericEquals => t == *n,
                    NumericLessThan => t < *n,
                    NumericLessThanEquals => t <= *n,
                    NumericGreaterThan => t > *n,
                    NumericGreaterThanEquals => t >= *n,
                    _ => false,
                }
            }
            (_, Value::Time(v)) => {
                let Some(t) = parse_time(text) else {
                    return false;
                };
                match self.compare {
                    DateEquals => t == *v,
                    DateLessThan => t < *v,
                    DateLessThanEquals => t <= *v,
                    DateGreaterThan => t > *v,
                    DateGreaterThanEquals => t >= *v,
                    _ => false,
                }
            }
            (Bool, Value::Flag(f)) => parse_bool(text) == Some(*f),
            (IpAddress, Value::Cidr(net, len)) => text
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_cidr(ip, *net, *len)),
            _ => false,
        }
    }
}
