//! The procedure-guide code (手続き案内票のコード) and the counter's checklist.
//!
//! A result is encoded as short text for a QR code: no personal data, only the
//! tenant, the guide version, the event and the procedure ids:
//!
//! ```text
//! MG1:192015:3:TENNYU:JUMIN-IDOU+KOKUHO+KAIGO-1GO:4F2A
//! ```
//!
//! Upper case, `-` for `_`, and `:` / `+` as separators keep every character in the
//! QR alphanumeric set (5.5 bits a character instead of 8), so the code stays a
//! small QR version. The last part is a 16-bit checksum that catches a truncated or
//! mis-scanned code; it is not a seal (the code carries nothing secret).

use std::fmt;

use madoguchi_domain::TenantId;
use serde::{Deserialize, Serialize};

use crate::eval::Outcome;
use crate::model::{Guide, valid_id};

/// Format marker and version of the encoding.
pub const CODE_PREFIX: &str = "MG1";
/// Longest code `decode` looks at; bounds the work on hostile input.
pub const MAX_CODE_LEN: usize = 2000;
/// Most procedures in one code.
pub const MAX_CODE_PROCEDURES: usize = 100;

/// A decoded procedure-guide code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuideCode {
    pub tenant: TenantId,
    pub version: u32,
    pub event: String,
    pub procedures: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("手続き案内票のコードではありません。")]
    NotACode,
    #[error("この形式のコードには対応していません。")]
    UnsupportedVersion,
    #[error("コードが正しく読み取れませんでした。もう一度読み取ってください。")]
    Corrupted,
}

impl GuideCode {
    /// The code of an outcome of a guide stored under `tenant` with `version`.
    pub fn from_outcome(tenant: TenantId, version: u32, outcome: &Outcome) -> GuideCode {
        GuideCode {
            tenant,
            version,
            event: outcome.event.clone(),
            procedures: outcome.procedures.iter().map(|p| p.id.clone()).collect(),
        }
    }

    pub fn encode(&self) -> String {
        let procs: Vec<String> = self.procedures.iter().map(|p| to_code_id(p)).collect();
        let body = format!(
            "{CODE_PREFIX}:{}:{}:{}:{}",
            self.tenant.as_str(),
            self.version,
            to_code_id(&self.event),
            procs.join("+")
        );
        let sum = checksum(&body);
        format!("{body}:{sum:04X}")
    }

    /// Reads a code. Never panics; surrounding white space is ignored and lower
    /// case is accepted (some scanners change case).
    pub fn decode(text: &str) -> Result<GuideCode, CodeError> {
        let text = text.trim();
        if text.len() > MAX_CODE_LEN || !text.is_ascii() {
            return Err(CodeError::NotACode);
        }
        let upper = text.to_ascii_uppercase();
        let parts: Vec<&str> = upper.split(':').collect();
        if parts.first() != Some(&CODE_PREFIX) {
            if parts.first().is_some_and(|p| p.starts_with("MG")) {
                return Err(CodeError::UnsupportedVersion);
            }
            return Err(CodeError::NotACode);
        }
        let [_, tenant, version, event, procs, sum] = parts[..] else {
            return Err(CodeError::Corrupted);
        };
        let body_len = upper.len() - sum.len() - 1;
        let sum_ok = sum.len() == 4
            && u16::from_str_radix(sum, 16).is_ok_and(|s| s == checksum(&upper[..body_len]));
        if !sum_ok {
            return Err(CodeError::Corrupted);
        }
        let tenant = TenantId::parse(tenant).map_err(|_| CodeError::Corrupted)?;
        let version = version.parse::<u32>().map_err(|_| CodeError::Corrupted)?;
        let event = from_code_id(event).ok_or(CodeError::Corrupted)?;
        let mut procedures: Vec<String> = Vec::new();
        if !procs.is_empty() {
            for p in procs.split('+') {
                let id = from_code_id(p).ok_or(CodeError::Corrupted)?;
                if procedures.contains(&id) || procedures.len() >= MAX_CODE_PROCEDURES {
                    return Err(CodeError::Corrupted);
                }
                procedures.push(id);
            }
        }
        Ok(GuideCode {
            tenant,
            version,
            event,
            procedures,
        })
    }
}

impl fmt::Display for GuideCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

fn to_code_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

fn from_code_id(s: &str) -> Option<String> {
    let id: String = s
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    valid_id(&id).then_some(id)
}

/// FNV-1a folded to 16 bits: enough to catch a damaged scan, no dependency.
fn checksum(s: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h >> 16) ^ (h & 0xffff)) as u16
}

/// One visit's checklist at the counters (来庁時の手続き状況): which procedures of
/// the code are done and which are left. Pure data; the navigator persists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitChecklist {
    pub tenant: TenantId,
    pub version: u32,
    pub event: String,
    pub items: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub procedure: String,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecklistError {
    #[error("手続「{0}」はこの案内票にありません。")]
    NotInChecklist(String),
}

impl VisitChecklist {
    /// Every procedure of the code, none done.
    pub fn from_code(code: &GuideCode) -> VisitChecklist {
        VisitChecklist {
            tenant: code.tenant,
            version: code.version,
            event: code.event.clone(),
            items: code
                .procedures
                .iter()
                .map(|p| ChecklistItem {
                    procedure: p.clone(),
                    done: false,
                })
                .collect(),
        }
    }

    /// Marks one procedure done; `Ok(true)` if it was not done before (a second scan
    /// at the same counter changes nothing).
    pub fn tick(&mut self, procedure: &str) -> Result<bool, ChecklistError> {
        self.set(procedure, true)
    }

    /// Undoes a tick made by mistake.
    pub fn untick(&mut self, procedure: &str) -> Result<bool, ChecklistError> {
        self.set(procedure, false)
    }

    fn set(&mut self, procedure: &str, done: bool) -> Result<bool, ChecklistError> {
        let item = self
            .items
            .iter_mut()
            .find(|i| i.procedure == procedure)
            .ok_or_else(|| ChecklistError::NotInChecklist(procedure.to_string()))?;
        let changed = item.done != done;
        item.done = done;
        Ok(changed)
    }

    /// Ticks every procedure the department handles (its counter scanned the code);
    /// returns the ids newly done. Procedures unknown to `guide` are left alone.
    pub fn tick_department(&mut self, guide: &Guide, department: &str) -> Vec<String> {
        let mut newly = Vec::new();
        for item in &mut self.items {
            let handled = guide
                .procedure(&item.procedure)
                .is_some_and(|p| p.department == department);
            if handled && !item.done {
                item.done = true;
                newly.push(item.procedure.clone());
            }
        }
        newly
    }

    pub fn done(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| i.done)
            .map(|i| i.procedure.as_str())
            .collect()
    }

    pub fn left(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| !i.done)
            .map(|i| i.procedure.as_str())
            .collect()
    }

    pub fn is_complete(&self) -> bool {
        self.items.iter().all(|i| i.done)
    }
}
