//! Ingest checkpoints: how far a file got, advanced by conditional writes.

use std::sync::Arc;

use madoguchi_domain::tenant::TenantId;
use madoguchi_ports::{Clock, Condition, Item, ItemStore, Key, PortError, PortResult};
use serde::{Deserialize, Serialize};

use crate::keys::{checkpoint_sk, key_safe, linkage_inbound_pk};
use crate::model::{Checkpoint, FileRef, IngestState, Progress};

/// The stored form of a checkpoint.
#[derive(Serialize, Deserialize)]
struct Stored {
    state: StoredState,
    #[serde(flatten)]
    progress: Progress,
    seq: u64,
    updated_at: String,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum StoredState {
    InProgress,
    Done,
}

/// Per-file ingest checkpoints, in the file registry's partition
/// (`{tenant}#LINKAGE#IN#{system}`, sort key `CKPT#{key}#{version}`).
///
/// Every save is conditional on the version that was read, so of two consumers working on the
/// same file only one can advance it: the other gets `ConditionFailed` and must stop (its
/// rows were applied idempotently, so stopping loses nothing). A finished checkpoint cannot
/// be saved again.
#[derive(Clone)]
pub struct Checkpoints {
    items: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints").finish_non_exhaustive()
    }
}

fn key(tenant: &TenantId, file: &FileRef) -> PortResult<Key> {
    if !key_safe(&file.system) || file.key.is_empty() || file.version.is_empty() {
        return Err(PortError::Invalid(
            "file reference needs a system without '#', a key and a version".into(),
        ));
    }
    Ok(Key::new(
        linkage_inbound_pk(tenant, &file.system),
        checkpoint_sk(&file.key, &file.version),
    ))
}

impl Checkpoints {
    pub fn new(items: Arc<dyn ItemStore>, clock: Arc<dyn Clock>) -> Self {
        Self { items, clock }
    }

    /// The file's checkpoint; [`IngestState::NotStarted`] (version 0) when there is none.
    pub async fn load(&self, tenant: &TenantId, file: &FileRef) -> PortResult<Checkpoint> {
        let Some(item) = self.items.get(&key(tenant, file)?).await? else {
            return Ok(Checkpoint {
                state: IngestState::NotStarted,
                version: 0,
            });
        };
        let stored: Stored = serde_json::from_value(item.data)
            .map_err(|_| PortError::Backend("malformed ingest checkpoint".into()))?;
        let state = match stored.state {
            StoredState::InProgress => IngestState::InProgress(stored.progress),
            StoredState::Done => IngestState::Done(stored.progress),
        };
        Ok(Checkpoint {
            state,
            version: item.version,
        })
    }

    /// Records progress after rows were applied. `previous` is the checkpoint this consumer
    /// read or last saved: `ConditionFailed` if someone else saved since. `Invalid` if the
    /// file is done or `progress.rows_done` goes backwards.
    pub async fn save(
        &self,
        tenant: &TenantId,
        file: &FileRef,
        previous: &Checkpoint,
        progress: Progress,
    ) -> PortResult<Checkpoint> {
        self.write(tenant, file, previous, progress, StoredState::InProgress)
            .await
    }

    /// Marks the file done with the summary of the whole file (same conditions as
    /// [`Checkpoints::save`]).
    pub async fn finish(
        &self,
        tenant: &TenantId,
        file: &FileRef,
        previous: &Checkpoint,
        summary: Progress,
    ) -> PortResult<Checkpoint> {
        self.write(tenant, file, previous, summary, StoredState::Done)
            .await
    }

    async fn write(
        &self,
        tenant: &TenantId,
        file: &FileRef,
        previous: &Checkpoint,
        progress: Progress,
        state: StoredState,
    ) -> PortResult<Checkpoint> {
        let key = key(tenant, file)?;
        let condition = match previous.state {
            IngestState::Done(_) => {
                return Err(PortError::Invalid("the file is already done".into()));
            }
            IngestState::InProgress(p) if progress.rows_done < p.rows_done => {
                return Err(PortError::Invalid("rows_done may not go backwards".into()));
            }
            IngestState::NotStarted => Condition::NotExists,
            IngestState::InProgress(_) => Condition::VersionEquals(previous.version),
        };
        let version = previous.version + 1;
        let stored = Stored {
            state,
            progress,
            seq: file.seq,
            updated_at: self.clock.now().to_string(),
        };
        let data = serde_json::to_value(&stored)
            .map_err(|_| PortError::Invalid("checkpoint does not serialize".into()))?;
        let mut item = Item::new(key, data);
        item.version = version;
        self.items.put(item, condition).await?;
        let state = match stored.state {
            StoredState::InProgress => IngestState::InProgress(progress),
            StoredState::Done => IngestState::Done(progress),
        };
        tracing::debug!(system = %file.system, seq = file.seq, rows_done = progress.rows_done, version, "ingest checkpoint saved");
        Ok(Checkpoint { state, version })
    }
}
