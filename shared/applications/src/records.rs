//! Record types as stored in `Item::data` (JSON). Personal data that must be encrypted arrives
//! here already sealed (`madoguchi-fieldcrypt`): a sealed value is an object
//! `{"sealed": {...}, "masked": "********1234"}` in place of the plain answer.

use std::collections::BTreeMap;

use madoguchi_domain::form::FormDefinition;
use madoguchi_domain::ids::{ApplicationId, AttachmentId};
use serde::{Deserialize, Serialize};

/// Lifecycle of a form (様式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormState {
    /// Being built; never published.
    Draft,
    /// Published and taking applications (within its publish window).
    Published,
    /// Published versions stay readable, new drafts and submissions are refused.
    Closed,
    /// Hidden from citizens; kept for the applications made against it.
    Archived,
}

/// `META`: the staff's working copy of a form and its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FormMeta {
    pub slug: String,
    pub state: FormState,
    pub definition: FormDefinition,
    /// The latest published version, if any.
    pub published_version: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
}

/// `CURRENT` and `V#n`: a published version as citizens see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedForm {
    pub tenant: String,
    pub slug: String,
    pub version: u64,
    pub published_at: String,
    /// `published` or `closed` (`archived` is never served).
    pub state: FormState,
    pub definition: FormDefinition,
}

/// A citizen's draft (下書き) of one form: raw answers, sealed where sensitive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftRecord {
    /// Becomes the application id on submission; attachments are filed under it.
    pub draft_id: ApplicationId,
    pub slug: String,
    pub form_version: u64,
    pub answers: serde_json::Map<String, serde_json::Value>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentStatus {
    /// Upload URL issued; the file has not arrived or not been checked yet.
    Pending,
    Accepted,
    Refused,
}

/// Why an attachment was refused (stable codes; messages are the function's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    TooLarge,
    Empty,
    ContentMismatch,
    ExtensionNotAllowed,
    TotalExceeded,
    Malware,
    Unreadable,
}

/// One attachment (添付ファイル) of a draft.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub id: AttachmentId,
    pub draft_id: ApplicationId,
    pub slug: String,
    pub field: String,
    /// Sanitised display name.
    pub file_name: String,
    pub extension: String,
    pub declared_size: u64,
    /// Limits copied from the form version at upload time, so the checker needs no form.
    pub max_bytes: u64,
    pub max_total_bytes: u64,
    pub status: AttachmentStatus,
    pub reason: Option<RefusalReason>,
    /// Size of the object that really arrived.
    pub size: Option<u64>,
    /// Malware scan result at check time: `not_scanned`, `pending`, `clean`.
    pub scan: Option<String>,
    pub object_key: String,
    pub created_at: String,
    pub checked_at: Option<String>,
    /// SHA-256 (hex) of the accepted file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A submitted application (申請).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplicationRecord {
    pub id: ApplicationId,
    pub tenant: String,
    /// 受付番号.
    pub receipt: String,
    pub slug: String,
    pub form_title: String,
    pub form_version: u64,
    pub owner: String,
    pub status: ApplicationStatus,
    pub submitted_at: String,
    /// Normalised answers of the visible fields; sensitive ones sealed.
    pub answers: BTreeMap<String, serde_json::Value>,
    /// Display rows as confirmed by the citizen (sensitive values masked).
    pub summary: Vec<DisplayRow>,
    pub attachments: Vec<AttachmentRef>,
    /// Address for notices (the verified address, or the account's).
    pub email: Option<String>,
    /// Blind indexes of sensitive fields, for matching without decrypting.
    pub blind_indexes: BTreeMap<String, String>,
    /// Events the form mails the applicant about.
    pub notify: Vec<String>,
    /// 申請者氏名 as entered (the first field labelled 氏名/名前 that is not a フリガナ), for
    /// the staff list and its name filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_name: Option<String>,
    /// Set while 差戻: what the citizen is asked to correct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionRequest>,
    /// When it reached 完了 (for the average processing time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Every status change, oldest first.
    #[serde(default)]
    pub timeline: Vec<StatusChange>,
    /// The e-signature, when the application was signed (the signature itself is kept in
    /// its own item, [`crate::signing::StoredSignature`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signing::SignatureSummary>,
}

/// 差戻: the fields the citizen may change, and the message they are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionRequest {
    pub fields: Vec<String>,
    pub message: String,
}

/// One move of the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub from: ApplicationStatus,
    pub to: ApplicationStatus,
    pub at: String,
    /// `staff` or `citizen` (never an identifier: the citizen sees their timeline).
    pub by: String,
    /// Shown to the citizen (e.g. the reason for a return); empty if none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// An internal note on an application (メモ): staff only, never shown to citizens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoRecord {
    pub id: String,
    pub application: ApplicationId,
    /// The author's subject id.
    pub author: String,
    pub at: String,
    pub text: String,
}

/// A file staff attached to an application (e.g. the issued certificate's scan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAttachmentRecord {
    pub id: AttachmentId,
    pub application: ApplicationId,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub object_key: String,
    pub author: String,
    pub at: String,
}

/// A staff member as the tenant administrator registered them. When present it decides the
/// member's departments (the token's department claim is ignored) and can switch them off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub sub: String,
    #[serde(default)]
    pub display_name: String,
    pub depts: Vec<String>,
    pub active: bool,
    pub updated_at: String,
}

/// 処理状況: the workflow is the domain crate's.
pub use madoguchi_domain::workflow::ApplicationStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayRow {
    pub field: String,
    pub label: String,
    pub display: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: AttachmentId,
    pub field: String,
    pub file_name: String,
    pub size: u64,
    pub scan: Option<String>,
    /// SHA-256 (hex) of the file, as the checker read it (signed with the application).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The citizen's history entry, in the owner partition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: ApplicationId,
    pub receipt: String,
    pub slug: String,
    pub form_title: String,
    pub status: ApplicationStatus,
    pub submitted_at: String,
}

/// A message on the `notify` queue: ids only, never personal data; the consumer reads the
/// record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyMessage {
    pub tenant: String,
    pub application: ApplicationId,
    /// `received`, `status_changed`, …
    pub event: String,
    /// Which occurrence of the event (the timeline length after a status change): a second
    /// `status_changed` is a new notice, a redelivered message is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}
