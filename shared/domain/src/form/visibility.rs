//! The one visibility engine (表示条件): which items a citizen sees for given answers.
//!
//! Rules:
//! - an item is visible when its section is visible and its condition holds;
//! - a condition reads the *normalised* answer of a *visible* field; a hidden field,
//!   an unanswered one, or one whose answer does not read as its type has no answer;
//! - items on a dependency cycle (only possible in a definition that was never
//!   validated) are hidden, and so count as unanswered for the items reading them.
//!
//! Items are evaluated in dependency order (strongly connected components), so the
//! result does not depend on the order of items and the work is linear.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::Value;

use super::answers::{Answers, iso_date, read};
use super::condition::{Condition, Predicate};
use super::definition::FormDefinition;
use super::graph::{Flat, is_cycle, sccs};

/// Ids of the visible items (fields, sections, static blocks) for `answers`.
pub fn visible_items(def: &FormDefinition, answers: &Answers) -> BTreeSet<String> {
    let flat = Flat::new(def);
    let visible = visibility(&flat, answers);
    flat.nodes
        .iter()
        .zip(visible)
        .filter(|(_, v)| *v)
        .map(|(n, _)| n.field.id.clone())
        .collect()
}

/// Visibility per node of `flat`.
pub(crate) fn visibility(flat: &Flat<'_>, answers: &Answers) -> Vec<bool> {
    let adj = flat.deps();
    let mut visible = vec![false; flat.nodes.len()];
    // Normalised answers, read on first use: None = not read yet.
    let mut values: Vec<Option<Option<Value>>> = vec![None; flat.nodes.len()];
    for comp in sccs(&adj) {
        if is_cycle(&comp, &adj) {
            continue;
        }
        let i = comp[0];
        let node = &flat.nodes[i];
        let parent_visible = node.parent.is_none_or(|p| visible[p]);
        visible[i] = parent_visible
            && node.field.show_if.as_ref().is_none_or(|c| {
                let mut ctx = Ctx {
                    flat,
                    answers,
                    visible: &visible,
                    values: &mut values,
                };
                ctx.eval(c)
            });
    }
    visible
}

struct Ctx<'a, 'f> {
    flat: &'a Flat<'f>,
    answers: &'a Answers,
    visible: &'a [bool],
    values: &'a mut Vec<Option<Option<Value>>>,
}

impl Ctx<'_, '_> {
    fn eval(&mut self, c: &Condition) -> bool {
        holds(c, &mut |id| self.value(id))
    }

    /// The normalised answer of a visible input field, if it reads.
    fn value(&mut self, id: &str) -> Option<Value> {
        let &i = self.flat.by_id.get(id)?;
        let field = self.flat.nodes[i].field;
        if !self.visible[i] || !field.kind.is_input() {
            return None;
        }
        if self.values[i].is_none() {
            let raw = self.answers.get(id).unwrap_or(&Value::Null);
            self.values[i] = Some(read(field, raw).ok().flatten());
        }
        self.values[i].clone().flatten()
    }
}

/// Whether `c` holds, reading each field's normalised answer through `value` (`None`:
/// hidden, unanswered or unreadable). The one evaluator of the condition language: display
/// conditions here, fee lines' `when` in [`super::fee`].
pub(crate) fn holds(c: &Condition, value: &mut dyn FnMut(&str) -> Option<Value>) -> bool {
    match c {
        Condition::Field { field, test } => test_value(test, value(field).as_ref()),
        Condition::Not(c) => !holds(c, value),
        Condition::All(cs) => cs.iter().all(|c| holds(c, value)),
        Condition::Any(cs) => cs.iter().any(|c| holds(c, value)),
    }
}

fn test_value(test: &Predicate, value: Option<&Value>) -> bool {
    let Some(a) = value else {
        return matches!(test, Predicate::Answered(false));
    };
    match test {
        Predicate::Answered(b) => *b,
        Predicate::Equals(v) => same(a, v),
        Predicate::OneOf(vs) => vs.iter().any(|v| same(a, v)),
        Predicate::Contains(v) => a.as_array().is_some_and(|xs| xs.contains(v)),
        Predicate::Gt(v) => compare(a, v) == Some(Ordering::Greater),
        Predicate::Gte(v) => matches!(compare(a, v), Some(Ordering::Greater | Ordering::Equal)),
        Predicate::Lt(v) => compare(a, v) == Some(Ordering::Less),
        Predicate::Lte(v) => matches!(compare(a, v), Some(Ordering::Less | Ordering::Equal)),
    }
}

/// Equality of a normalised answer and a definition value: numbers numerically,
/// strings exactly.
fn same(a: &Value, v: &Value) -> bool {
    match (a, v) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

/// Order of numbers, or of ISO dates (`"YYYY-MM-DD"`); `None` for anything else.
fn compare(a: &Value, v: &Value) -> Option<Ordering> {
    match (a, v) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(iso_date(x)?.cmp(&iso_date(y)?)),
        _ => None,
    }
}
