//! The status workflow of an application (申請の処理状況), as a state machine.
//!
//! ```text
//! 支払待ち payment_pending ──(system: paid)──▶ 受付
//!      └──(system: payment not completed in time)──▶ 取消 cancelled
//!
//! 受付 received ──▶ 審査中 in_review ──▶ 完了 completed
//!      │                 │  ▲  │
//!      │                 │  │  └──▶ 保留 on_hold ──▶ 審査中 / 完了 / 却下
//!      │                 ▼  │
//!      │            差戻 returned ── citizen resubmits ──▶ 審査中
//!      └──────────────────────────────────────────────▶ 却下 rejected
//! 取下げ withdrawn: by the citizen, from any state that is not final.
//! ```
//!
//! An application on a form whose fee is paid at submission (`PaymentTiming::AtSubmission`)
//! starts in 支払待ち; every other one starts in 受付. Only the system (the platform itself)
//! leaves 支払待ち: to 受付 when the card payment is confirmed, to 取消 when it was not
//! completed in time; staff have no moves from it, the citizen may withdraw.
//!
//! Staff move an application along; the citizen can only withdraw it or resubmit it after a
//! return for correction. Anything else is refused with the moves that are allowed from the
//! current state, so a console can offer exactly those.

use serde::{Deserialize, Serialize};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// 支払待ち: submitted on a form whose fee is paid at submission, waiting for the card
    /// payment. Only the system moves it on; the citizen may withdraw.
    PaymentPending,
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
    /// 取消: the payment was not completed in time; cancelled by the system.
    Cancelled,
}

impl ApplicationStatus {
    /// Every status, in workflow order.
    pub const ALL: [ApplicationStatus; 9] = [
        Self::PaymentPending,
        Self::Received,
        Self::InReview,
        Self::Returned,
        Self::OnHold,
        Self::Completed,
        Self::Rejected,
        Self::Withdrawn,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentPending => "payment_pending",
            Self::Received => "received",
            Self::InReview => "in_review",
            Self::Returned => "returned",
            Self::OnHold => "on_hold",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The Japanese name shown to citizens and staff.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::PaymentPending => "支払待ち",
            Self::Received => "受付",
            Self::InReview => "審査中",
            Self::Returned => "差戻",
            Self::OnHold => "保留",
            Self::Completed => "完了",
            Self::Rejected => "却下",
            Self::Withdrawn => "取下げ",
            Self::Cancelled => "取消",
        }
    }

    /// No move leads out of a final state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Rejected | Self::Withdrawn | Self::Cancelled
        )
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
            // Waiting for the payment: only the system moves it on.
            PaymentPending => &[],
            Completed | Rejected | Withdrawn | Cancelled => &[],
        }
    }

    /// The states the system (the platform itself) may move an application to from here:
    /// out of 支払待ち only, to 受付 (payment confirmed) or 取消 (payment timed out).
    pub fn system_moves(self) -> &'static [ApplicationStatus] {
        use ApplicationStatus::*;
        match self {
            PaymentPending => &[Received, Cancelled],
            _ => &[],
        }
    }
}

/// Who asks for a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mover {
    Staff,
    Citizen,
    /// The platform itself: a card payment confirmed, or a payment that timed out.
    System,
}

/// A move that is not allowed, with the ones that are (for the problem response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedMove {
    pub from: ApplicationStatus,
    pub to: ApplicationStatus,
    pub allowed: Vec<ApplicationStatus>,
}

/// Checks a move. The citizen's only moves are 取下げ (while not final) and the resubmission
/// after 差戻, which lands in 審査中. The system's only moves are out of 支払待ち.
pub fn check_move(
    from: ApplicationStatus,
    to: ApplicationStatus,
    mover: Mover,
) -> Result<(), RefusedMove> {
    let allowed: Vec<ApplicationStatus> = match mover {
        Mover::Staff => from.staff_moves().to_vec(),
        Mover::Citizen => citizen_moves(from),
        Mover::System => from.system_moves().to_vec(),
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
        ApplicationStatus::Cancelled => "payment_cancelled",
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
        // A fee paid at submission: 支払待ち, then 受付 once paid, or 取消 on time-out.
        assert_eq!(check_move(PaymentPending, Received, Mover::System), Ok(()));
        assert_eq!(check_move(PaymentPending, Cancelled, Mover::System), Ok(()));
        assert_eq!(
            check_move(PaymentPending, Withdrawn, Mover::Citizen),
            Ok(())
        );
    }

    const MOVERS: [Mover; 3] = [Mover::Staff, Mover::Citizen, Mover::System];

    #[test]
    fn the_system_only_settles_payments() {
        for from in ApplicationStatus::ALL {
            for to in ApplicationStatus::ALL {
                let allowed = check_move(from, to, Mover::System).is_ok();
                let expected = from == PaymentPending && matches!(to, Received | Cancelled);
                assert_eq!(allowed, expected, "{from:?}→{to:?}");
            }
        }
        let r = check_move(PaymentPending, InReview, Mover::System).unwrap_err();
        assert_eq!(r.allowed, vec![Received, Cancelled]);
        let r = check_move(Received, Cancelled, Mover::System).unwrap_err();
        assert!(r.allowed.is_empty());
    }

    #[test]
    fn payment_pending_is_out_of_staff_reach() {
        assert_eq!(PaymentPending.staff_moves(), &[] as &[ApplicationStatus]);
        assert!(!PaymentPending.is_final());
        for to in ApplicationStatus::ALL {
            assert!(
                check_move(PaymentPending, to, Mover::Staff).is_err(),
                "{to:?}"
            );
            // Nobody but the system cancels, and staff never put anything back to 支払待ち.
            assert!(check_move(to, PaymentPending, Mover::Staff).is_err());
            assert!(check_move(to, PaymentPending, Mover::Citizen).is_err());
            assert!(check_move(to, PaymentPending, Mover::System).is_err());
            assert!(check_move(to, Cancelled, Mover::Staff).is_err());
            assert!(check_move(to, Cancelled, Mover::Citizen).is_err());
        }
        let r = check_move(PaymentPending, Received, Mover::Citizen).unwrap_err();
        assert_eq!(r.allowed, vec![Withdrawn]);
    }

    #[test]
    fn finality() {
        let finals: Vec<ApplicationStatus> = ApplicationStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals, vec![Completed, Rejected, Withdrawn, Cancelled]);
    }

    #[test]
    fn notices() {
        assert_eq!(notice_for(Returned), "correction_requested");
        assert_eq!(notice_for(Completed), "completed");
        assert_eq!(notice_for(Cancelled), "payment_cancelled");
        assert_eq!(notice_for(Received), "status_changed");
        assert_eq!(notice_for(Rejected), "status_changed");
    }

    #[test]
    fn final_states_have_no_way_out() {
        for from in [Completed, Rejected, Withdrawn, Cancelled] {
            for to in ApplicationStatus::ALL {
                for mover in MOVERS {
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
            for to in [
                Received,
                OnHold,
                Completed,
                Rejected,
                Cancelled,
                PaymentPending,
            ] {
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
            assert_eq!(
                serde_json::from_value::<ApplicationStatus>(json).unwrap(),
                s
            );
        }
        assert_eq!(PaymentPending.as_str(), "payment_pending");
        assert_eq!(PaymentPending.label_ja(), "支払待ち");
        assert_eq!(Cancelled.as_str(), "cancelled");
        assert_eq!(Cancelled.label_ja(), "取消");
        assert_eq!(ApplicationStatus::parse("canceled"), None);
        let labels: std::collections::BTreeSet<&str> = ApplicationStatus::ALL
            .iter()
            .map(|s| s.label_ja())
            .collect();
        assert_eq!(labels.len(), ApplicationStatus::ALL.len());
    }
}
