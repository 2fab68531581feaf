//! Typed values of a valid row.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::civil::Date;
use madoguchi_domain::mynumber::mask_my_number;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// A 個人番号 whose check digit was verified. `Debug` masks it; serialising gives the
/// digits (the caller stores it encrypted).
#[derive(Clone, PartialEq, Eq)]
pub struct MyNumber(String);

impl MyNumber {
    pub(crate) fn new_unchecked(digits: String) -> Self {
        MyNumber(digits)
    }
    /// The 12 digits. 特定個人情報: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MyNumber({})", mask_my_number(&self.0))
    }
}

impl Serialize for MyNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A validated field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// Empty field.
    Null,
    /// Text, digits, kana, code, postal code (7 digits) and residence card number,
    /// after 外字 conversion.
    Text(String),
    Date(Date),
    MyNumber(MyNumber),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_date(&self) -> Option<Date> {
        match self {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A valid row: one value per layout column, in layout order.
#[derive(Clone, PartialEq)]
pub struct Record {
    names: Arc<[Box<str>]>,
    values: Vec<Value>,
}

impl Record {
    pub(crate) fn new(names: Arc<[Box<str>]>, values: Vec<Value>) -> Self {
        Record { names, values }
    }

    /// The value of a column by its layout `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let i = self.names.iter().position(|n| &**n == name)?;
        self.values.get(i)
    }

    /// `(name, value)` in layout order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.names.iter().map(|n| &**n).zip(&self.values)
    }

    pub fn to_map(&self) -> BTreeMap<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.values.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
