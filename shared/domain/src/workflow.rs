//! The status workflow of an application (申請の処理状況), as a state machine.
//!
//! ```text
//! 受付 received ──▶ 審査中 in_review ──▶ 完了 completed
//!      │                 │  ▲  │
//!      │                 │  │  └──▶ 保留 on_hold ──▶ 審査中 / 完了 / 却下
//!      │                 ▼  │
//!      │            差戻 returned ── citizen resubmits ──▶ 審査中
//!      └──────────────────────────────────────────────▶ 却下 rejected
//! 取下げ withdrawn: by the citizen, from any state that is not final.
//! ```
//!
//! Staff move an application along; the citizen can only withdraw it or resubmit it after a
//! return for correction. Anything else is refused with the moves that are allowed from the
//! current state, so a console can offer exactly those.

use serde::{Deserialize, Serialize};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// 受付: submitted, not yet looked at.
    Received,
    /// 審査中: a staff member is examining it.
    InReview,
    /// 差戻: returned to the citizen to correct the flagged fields.
    Returned,
    /// 保留: waiting (for a document, another office, …).
    OnHold,
    /// 完了: done.
    Completed,
    /// 却下: refused.
    Rejected,
    /// 取下げ: withdrawn by the citizen.
    Withdrawn,
}

impl ApplicationStatus {
    pub const ALL: [ApplicationStatus; 7] = [
        Self::Received,
        Self::InReview,
        Self::Returned,
        Self::OnHold,
        Self::Completed,
        Self::Rejected,
        Self::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::InReview => "in_review",
            Self::Returned => "returned",
            Self::OnHold => "on_hold",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The Japanese name shown to citizens and staff.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Received => "受付",
            Self::InReview => "審査中",
            Self::Returned => "差戻",
            Self::OnHold => "保留",
            Self::Completed => "完了",
            Self::Rejected => "却下",
            Self::Withdrawn => "取下げ",
        }
    }

    /// No move leads out of a final state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Rejected | Self::Withdrawn)
    }

    /// The states staff may move an application to from here.
    pub fn staff_moves(self) -> &'static [ApplicationStatus] {
        use ApplicationStatus::*;
        match self {
            Received => &[InReview, Rejected],
            InReview => &[Returned, OnHold, Completed, Rejected],
            // Staff may take a return back (the citizen answered by phone) or give up on it.
            Returned => &[InReview, Rejected],
            OnHold => &[InReview, Completed, Rejected],
            Completed | Rejected | Withdrawn => &[],
        }
    }
}

/// Who asks for a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mover {
    Staff,
    Citizen,
}

/// A move that is not allowed, with the ones that are (for the problem response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMove {
    pub from: ApplicationStatus,
    pub to: ApplicationStatus,
    pub allowed: Vec<ApplicationStatus>,
}

/// Checks a move. The citizen's only moves are 取下げ (while not final) and the resubmission
/// after 差戻, which lands in 審査中.
pub fn check_move(
    from: ApplicationStatus,
    to: ApplicationStatus,
    mover: Mover,
) -> Result<(), RefusedMove> {
    let allowed: Vec<ApplicationStatus> = match mover {
        Mover::Staff => from.staff_moves().to_vec(),
        Mover::Citizen => citizen_moves(from),
    };
    if allowed.contains(&to) {
        Ok(())
    } else {
        Err(RefusedMove { from, to, allowed })
    }
}

fn citizen_moves(from: ApplicationStatus) -> Vec<ApplicationStatus> {
    use ApplicationStatus::*;
    match from {
        Returned => vec![InReview, Withdrawn],
        s if s.is_final() => vec![],
        _ => vec![Withdrawn],
    }
}

/// The notice a move sends the applicant, when the form asks for that event
/// (`FormDefinition::notify`).
pub fn notice_for(to: ApplicationStatus) -> &'static str {
    match to {
        ApplicationStatus::Returned => "correction_requested",
        ApplicationStatus::Completed => "completed",
        _ => "status_changed",
    }
}

#[cfg(test)]
mod tests {
    use super::ApplicationStatus::*;
    use super::*;

    #[test]
    fn the_documented_path_is_allowed() {
        for (from, to) in [
            (Received, InReview),
            (InReview, Returned),
            (InReview, OnHold),
            (OnHold, InReview),
            (InReview, Completed),
            (OnHold, Completed),
            (InReview, Rejected),
        ] {
            assert_eq!(
                check_move(from, to, Mover::Staff),
                Ok(()),
                "{from:?}→{to:?}"
            );
        }
        assert_eq!(check_move(Returned, InReview, Mover::Citizen), Ok(()));
    }

    #[test]
    fn final_states_have_no_way_out() {
        for from in [Completed, Rejected, Withdrawn] {
            for to in ApplicationStatus::ALL {
                for mover in [Mover::Staff, Mover::Citizen] {
                    let refused = check_move(from, to, mover).unwrap_err();
                    assert!(refused.allowed.is_empty());
                }
            }
        }
    }

    #[test]
    fn citizens_withdraw_until_final_and_nothing_else() {
        for from in ApplicationStatus::ALL {
            let ok = check_move(from, Withdrawn, Mover::Citizen).is_ok();
            assert_eq!(ok, !from.is_final(), "{from:?}");
            for to in [Received, OnHold, Completed, Rejected] {
                assert!(check_move(from, to, Mover::Citizen).is_err());
            }
        }
        assert!(check_move(Received, InReview, Mover::Citizen).is_err());
    }

    #[test]
    fn staff_cannot_withdraw_or_go_back_to_received() {
        for from in ApplicationStatus::ALL {
            assert!(check_move(from, Withdrawn, Mover::Staff).is_err());
            assert!(check_move(from, Received, Mover::Staff).is_err());
        }
    }

    #[test]
    fn a_refusal_lists_the_allowed_moves() {
        let r = check_move(Received, Completed, Mover::Staff).unwrap_err();
        assert_eq!(r.allowed, vec![InReview, Rejected]);
    }

    #[test]
    fn names_round_trip() {
        for s in ApplicationStatus::ALL {
            assert_eq!(ApplicationStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_value(s).unwrap();
            assert_eq!(json, serde_json::Value::String(s.as_str().into()));
        }
    }
}
