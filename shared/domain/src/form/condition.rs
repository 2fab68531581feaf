//! 表示条件 (display conditions): when an item is shown.
//!
//! JSON shapes (exactly one operator per object):
//!
//! | JSON | holds when |
//! |---|---|
//! | `{"field": "x", "equals": v}` | x's answer equals `v` (string or number) |
//! | `{"field": "x", "one_of": [v, …]}` | x's answer equals one of the values |
//! | `{"field": "x", "contains": v}` | checkbox x has option `v` checked |
//! | `{"field": "x", "gt": v}` (`gte`, `lt`, `lte`) | number x, or date x (`v` = `"YYYY-MM-DD"`), compares |
//! | `{"field": "x", "answered": true}` | x has an answer (`false`: has none) |
//! | `{"not": c}` | `c` does not hold |
//! | `{"all": [c, …]}` | every `c` holds |
//! | `{"any": [c, …]}` | at least one `c` holds |
//!
//! A field that is hidden, unanswered, or whose answer does not read as its type counts
//! as having no answer: every test on it is false except `"answered": false`.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A display condition (表示条件).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A test on one field's answer.
    Field {
        field: String,
        test: Predicate,
    },
    Not(Box<Condition>),
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

/// The test of a [`Condition::Field`]. Values are JSON as written in the definition;
/// [`super::validate_definition`] checks they suit the field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    Equals(Value),
    OneOf(Vec<Value>),
    Contains(Value),
    Gt(Value),
    Gte(Value),
    Lt(Value),
    Lte(Value),
    Answered(bool),
}

impl Predicate {
    /// The JSON key of the operator.
    pub fn op_name(&self) -> &'static str {
        match self {
            Predicate::Equals(_) => "equals",
            Predicate::OneOf(_) => "one_of",
            Predicate::Contains(_) => "contains",
            Predicate::Gt(_) => "gt",
            Predicate::Gte(_) => "gte",
            Predicate::Lt(_) => "lt",
            Predicate::Lte(_) => "lte",
            Predicate::Answered(_) => "answered",
        }
    }
}

/// Operator keys of a field test, in the order the parser reports them.
pub(crate) const PREDICATE_KEYS: &[&str] = &[
    "equals", "one_of", "contains", "gt", "gte", "lt", "lte", "answered",
];

impl Condition {
    /// `{"field": field, "equals": value}`.
    pub fn equals(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Condition::Field {
            field: field.into(),
            test: Predicate::Equals(value.into()),
        }
    }

    /// `{"field": field, "answered": true}`.
    pub fn answered(field: impl Into<String>) -> Self {
        Condition::Field {
            field: field.into(),
            test: Predicate::Answered(true),
        }
    }

    /// Ids of the fields this condition reads, in order of appearance (with repeats).
    pub fn referenced_fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(c) = stack.pop() {
            match c {
                Condition::Field { field, .. } => out.push(field.as_str()),
                Condition::Not(c) => stack.push(c),
                Condition::All(cs) | Condition::Any(cs) => stack.extend(cs.iter().rev()),
            }
        }
        out
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Condition::Field { field, test } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("field", field)?;
                match test {
                    Predicate::Equals(v)
                    | Predicate::Contains(v)
                    | Predicate::Gt(v)
                    | Predicate::Gte(v)
                    | Predicate::Lt(v)
                    | Predicate::Lte(v) => m.serialize_entry(test.op_name(), v)?,
                    Predicate::OneOf(vs) => m.serialize_entry("one_of", vs)?,
                    Predicate::Answered(b) => m.serialize_entry("answered", b)?,
                }
                m.end()
            }
            Condition::Not(c) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("not", c)?;
                m.end()
            }
            Condition::All(cs) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("all", cs)?;
                m.end()
            }
            Condition::Any(cs) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("any", cs)?;
                m.end()
            }
        }
    }
}
