//! The form definition (様式) model: what staff author, what is stored and published.
//!
//! JSON is snake_case. A field is one flat object: the common keys (`id`, `type`,
//! `label`, `required`, `help`, `show_if`) plus the keys of its type. Serialization is
//! derived; reading goes through [`super::parse_definition`], which is strict (unknown
//! keys are errors, each with a path), and `Deserialize` uses the same parser.

use serde::{Deserialize, Deserializer, Serialize};

use super::condition::Condition;
use super::fee::FeeRule;
use super::parse;

/// A form definition (様式).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormDefinition {
    /// 様式の名称, 1..=200 characters.
    pub title: String,
    /// 制度の概要 (overview of the procedure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overview: Option<String>,
    /// 問合せ先 (who answers questions about this procedure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Page with more information; `https://` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_url: Option<String>,
    /// Start of the publication window, `"YYYY-MM-DDTHH:MM"`, civil time in Asia/Tokyo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_from: Option<String>,
    /// End of the publication window (exclusive), same format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_until: Option<String>,
    pub applicant_type: ApplicantType,
    pub signature: SignaturePolicy,
    pub access: AccessPolicy,
    /// Total size of all attachments of one application, in MB (1..=100).
    pub max_total_mb: u32,
    /// Which events send the citizen a notification.
    pub notify: Vec<NotifyEvent>,
    /// 手数料 (the fee of the procedure); free when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<FeeRule>,
    /// Fields, static blocks and sections, in display order.
    pub items: Vec<Field>,
}

/// Default of [`FormDefinition::max_total_mb`].
pub const DEFAULT_MAX_TOTAL_MB: u32 = 100;
/// Default of [`FieldKind::Attachment`]'s `max_files`.
pub const DEFAULT_MAX_FILES: u32 = 1;

impl FormDefinition {
    /// A definition with every setting at its default.
    pub fn new(title: impl Into<String>, items: Vec<Field>) -> Self {
        Self {
            title: title.into(),
            overview: None,
            contact: None,
            reference_url: None,
            publish_from: None,
            publish_until: None,
            applicant_type: ApplicantType::default(),
            signature: SignaturePolicy::default(),
            access: AccessPolicy::default(),
            max_total_mb: DEFAULT_MAX_TOTAL_MB,
            notify: default_notify(),
            fee: None,
            items,
        }
    }

    /// Every item in display order, depth first: a section comes before its items.
    pub fn all_items(&self) -> impl Iterator<Item = &Field> {
        Walk {
            stack: vec![self.items.iter()],
        }
    }

    /// Every answerable field, flattened through sections, in display order.
    pub fn inputs(&self) -> impl Iterator<Item = &Field> {
        self.all_items().filter(|f| f.kind.is_input())
    }

    /// Any item by id, including sections and static blocks; the first one when a
    /// definition that was never validated repeats an id.
    pub fn field(&self, id: &str) -> Option<&Field> {
        self.all_items().find(|f| f.id == id)
    }

    /// Ids of the fields holding 特定個人情報 (My Number fields): the caller encrypts
    /// their answers and never logs them.
    pub fn sensitive_fields(&self) -> Vec<&str> {
        self.all_items()
            .filter(|f| f.kind.is_sensitive())
            .map(|f| f.id.as_str())
            .collect()
    }
}

/// Depth-first walk without recursion (a definition that was never validated may nest
/// sections deeply).
struct Walk<'a> {
    stack: Vec<std::slice::Iter<'a, Field>>,
}

impl<'a> Iterator for Walk<'a> {
    type Item = &'a Field;
    fn next(&mut self) -> Option<&'a Field> {
        loop {
            let top = self.stack.last_mut()?;
            match top.next() {
                Some(f) => {
                    if let FieldKind::Section { items } = &f.kind {
                        self.stack.push(items.iter());
                    }
                    return Some(f);
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for FormDefinition {
    /// Strict, like [`super::parse_definition`]; the error names the first problem's path.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        parse::parse_definition(&v).map_err(|errors| {
            let first = errors.first();
            serde::de::Error::custom(format_args!(
                "invalid form definition: {} problem(s), first {} at {}",
                errors.len(),
                first.map_or("", |e| e.code.as_str()),
                first.map_or("", |e| e.field.as_str()),
            ))
        })
    }
}

/// Who applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantType {
    /// 個人
    #[default]
    Individual,
    /// 法人
    Corporation,
}

/// An item of the 基本4情報 (basic four: name, address, birth date, gender) that the My Number
/// Card's signing certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertItem {
    /// 氏名
    Name,
    /// 住所
    Address,
    /// 生年月日
    BirthDate,
    /// 性別
    Gender,
}

/// Whether the application carries a JPKI electronic signature (電子署名).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignaturePolicy {
    /// No signature.
    #[default]
    #[serde(rename = "none")]
    None_,
    Optional,
    Required,
}

/// How citizens get in to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessPolicy {
    /// Signed in with an account.
    Account,
    /// With a verified e-mail address, no account.
    Email,
    /// Either of the two.
    #[default]
    Either,
}

/// Events that notify the citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// 受付 (the application arrived).
    Received,
    StatusChanged,
    /// 補正依頼 (staff ask for a correction).
    CorrectionRequested,
    PaymentRequested,
    Completed,
}

pub(crate) fn default_notify() -> Vec<NotifyEvent> {
    vec![NotifyEvent::Received]
}

/// Where a form stands in its publication window at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishWindow {
    NotYet,
    Open,
    Ended,
}

/// One item of a form: an input field, a static block or a section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// `[a-z][a-z0-9_]{0,63}`, unique across the whole form including sections.
    pub id: String,
    /// The label; for a heading or explanation, the text shown.
    pub label: String,
    pub required: bool,
    /// 補足説明 (help text under the field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// 表示条件 (display condition); shown always when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
    /// Filled from, and locked to, an item of the signing certificate's 基本4情報 (forms
    /// with a signature only; see [`super::certificate`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_certificate: Option<CertItem>,
    #[serde(flatten)]
    pub kind: FieldKind,
}

impl Field {
    /// An optional field with no help and no condition.
    pub fn new(id: impl Into<String>, label: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            required: false,
            help: None,
            show_if: None,
            from_certificate: None,
            kind,
        }
    }

    /// The same field, filled from and locked to `item` of the signing certificate.
    pub fn from_certificate(mut self, item: CertItem) -> Self {
        self.from_certificate = Some(item);
        self
    }

    /// The same field, required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The same field, shown only when `c` holds.
    pub fn show_if(mut self, c: Condition) -> Self {
        self.show_if = Some(c);
        self
    }

    /// The same field with a help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// The type of an item and its type-specific settings. JSON: `"type": "<snake_case>"`
/// plus the keys below, flat in the field's object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    Text {
        multiline: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        min_length: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_length: Option<u32>,
    },
    Radio {
        options: Vec<Choice>,
    },
    Select {
        options: Vec<Choice>,
    },
    Checkbox {
        options: Vec<Choice>,
        #[serde(skip_serializing_if = "Option::is_none")]
        min_choices: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max_choices: Option<u32>,
    },
    Phone,
    Email,
    /// `min`/`max`: `"YYYY-MM-DD"` or `"today"` (the day of submission).
    Date {
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<String>,
    },
    /// `extensions`: lower case, no dot, from [`crate::filetype::allowed_extensions`];
    /// when the JSON omits the key, the parser fills in the whole allowed list.
    Attachment {
        extensions: Vec<String>,
        max_file_mb: u32,
        max_files: u32,
    },
    /// 個人番号 (My Number): sensitive, shown masked.
    MyNumber,
    Number {
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        integer: bool,
    },
    PostalCode,
    /// `kana`: the フリガナ (reading in katakana) is required with the name.
    Name {
        kana: bool,
    },
    Address,
    /// Static heading (見出し), no answer.
    Heading,
    /// Static explanation text (説明文), no answer.
    Explanation,
    /// A group shown or hidden as a whole; no sections inside sections.
    Section {
        items: Vec<Field>,
    },
}

impl FieldKind {
    /// The JSON `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Text { .. } => "text",
            FieldKind::Radio { .. } => "radio",
            FieldKind::Select { .. } => "select",
            FieldKind::Checkbox { .. } => "checkbox",
            FieldKind::Phone => "phone",
            FieldKind::Email => "email",
            FieldKind::Date { .. } => "date",
            FieldKind::Attachment { .. } => "attachment",
            FieldKind::MyNumber => "my_number",
            FieldKind::Number { .. } => "number",
            FieldKind::PostalCode => "postal_code",
            FieldKind::Name { .. } => "name",
            FieldKind::Address => "address",
            FieldKind::Heading => "heading",
            FieldKind::Explanation => "explanation",
            FieldKind::Section { .. } => "section",
        }
    }

    /// Whether the item takes an answer (not a static block, not a section).
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            FieldKind::Heading | FieldKind::Explanation | FieldKind::Section { .. }
        )
    }

    /// Whether answers are 特定個人情報 (encrypted at rest, masked on screens).
    pub fn is_sensitive(&self) -> bool {
        matches!(self, FieldKind::MyNumber)
    }

    /// Whether an attachment field accepts a file with extension `ext` (as returned by
    /// [`crate::filetype::extension_of`]); `false` for every other type.
    pub fn accepts_extension(&self, ext: &str) -> bool {
        match self {
            FieldKind::Attachment { extensions, .. } => {
                extensions.iter().any(|e| e.eq_ignore_ascii_case(ext))
            }
            _ => false,
        }
    }

    /// The options of a radio, select or checkbox.
    pub fn options(&self) -> Option<&[Choice]> {
        match self {
            FieldKind::Radio { options }
            | FieldKind::Select { options }
            | FieldKind::Checkbox { options, .. } => Some(options),
            _ => None,
        }
    }
}

/// One option of a radio, select or checkbox: the stored `value` and the shown `label`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

impl Choice {
    pub fn new(value: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            label: label.into(),
        }
    }
}

/// A civil minute `"YYYY-MM-DDTHH:MM"` in Japan as an instant; `None` unless exactly
/// that shape and a real time.
pub(crate) fn parse_tokyo_minute(s: &str) -> Option<jiff::Timestamp> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let dt: jiff::civil::DateTime = s.parse().ok()?;
    // Fixed +09:00, as in `crate::date::today_in_tokyo`: no DST in Japan since 1951.
    jiff::tz::offset(9).to_timestamp(dt).ok()
}

impl FormDefinition {
    /// Where the form stands at `now`. `publish_from` is inclusive, `publish_until`
    /// exclusive; both are Tokyo civil times. A bound that does not parse (only possible
    /// on a definition that was never validated) closes the form: from → `NotYet`,
    /// until → `Ended`.
    pub fn window(&self, now: jiff::Timestamp) -> PublishWindow {
        if let Some(from) = &self.publish_from {
            match parse_tokyo_minute(from) {
                Some(t) if now >= t => {}
                _ => return PublishWindow::NotYet,
            }
        }
        if let Some(until) = &self.publish_until {
            match parse_tokyo_minute(until) {
                Some(t) if now < t => {}
                _ => return PublishWindow::Ended,
            }
        }
        PublishWindow::Open
    }
}
