//! Form encoding with Stripe's bracketed nesting (`metadata[tenant]=…`,
//! `payment_method_types[0]=card`), which `serde_urlencoded` cannot write.
//!
//! Keys and values are percent-encoded as `application/x-www-form-urlencoded` (brackets
//! included, which Stripe and PAY.JP decode like any other byte).

use std::collections::BTreeMap;

/// An ordered list of form fields. Order is kept so that a request body is reproducible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn field(mut self, key: &str, value: impl Into<String>) -> Self {
        self.fields.push((key.to_owned(), value.into()));
        self
    }

    pub fn opt(self, key: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// `name[k]=v` for each entry, in key order.
    pub fn map(mut self, name: &str, entries: &BTreeMap<String, String>) -> Self {
        for (k, v) in entries {
            self.fields.push((format!("{name}[{k}]"), v.clone()));
        }
        self
    }

    /// `name[0]=a&name[1]=b`.
    pub fn list(mut self, name: &str, values: &[&str]) -> Self {
        for (i, v) in values.iter().enumerate() {
            self.fields.push((format!("{name}[{i}]"), (*v).to_owned()));
        }
        self
    }

    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The `application/x-www-form-urlencoded` body or query string.
    pub fn encode(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.fields {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn nested_keys_round_trip() {
        let mut meta = BTreeMap::new();
        meta.insert("tenant".to_owned(), "272060".to_owned());
        meta.insert("note".to_owned(), "住民票 & 写し=2".to_owned());
        let f = Form::new()
            .field("amount", "1500")
            .map("metadata", &meta)
            .list("payment_method_types", &["card"])
            .opt("customer", None::<String>)
            .opt("description", Some("a b"));
        let body = f.encode();
        assert!(
            body.starts_with("amount=1500&metadata%5Bnote%5D="),
            "{body}"
        );
        assert!(!body.contains(' '));
        assert_eq!(
            decode(&body),
            vec![
                ("amount".to_owned(), "1500".to_owned()),
                ("metadata[note]".to_owned(), "住民票 & 写し=2".to_owned()),
                ("metadata[tenant]".to_owned(), "272060".to_owned()),
                ("payment_method_types[0]".to_owned(), "card".to_owned()),
                ("description".to_owned(), "a b".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_form_is_empty_string() {
        assert_eq!(Form::new().encode(), "");
        assert!(Form::new().is_empty());
    }
}
