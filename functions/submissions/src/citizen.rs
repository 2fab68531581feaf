//! Who is applying: the shared extractor (`madoguchi-citizenauth`) over this function's state.

pub use madoguchi_citizenauth::{Citizen, PROOF_HEADER, ProofRecord, may_use_form, proof_hash};

impl madoguchi_citizenauth::CitizenScope for crate::SubmissionsState {
    fn items(&self) -> &std::sync::Arc<dyn madoguchi_ports::ItemStore> {
        &self.items
    }
}
