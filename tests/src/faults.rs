//! A store that is down, for reaching the retry paths of event handlers. The only hand-written
//! stand-in for a port in the suite: a real backend cannot be made to fail on cue.

use async_trait::async_trait;
use madoguchi_ports::{
    Condition, Item, ItemStore, Key, Page, PortError, PortResult, QueryRequest, TxOp,
};

/// Every call fails with [`PortError::Unavailable`], as a store does after its retries.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnavailableItemStore;

fn down<T>() -> PortResult<T> {
    Err(PortError::Unavailable("test: store down".into()))
}

#[async_trait]
impl ItemStore for UnavailableItemStore {
    async fn put(&self, _: Item, _: Condition) -> PortResult<()> {
        down()
    }
    async fn get(&self, _: &Key) -> PortResult<Option<Item>> {
        down()
    }
    async fn get_batch(&self, _: &[Key]) -> PortResult<Vec<Option<Item>>> {
        down()
    }
    async fn delete(&self, _: &Key, _: Condition) -> PortResult<()> {
        down()
    }
    async fn query(&self, _: QueryRequest) -> PortResult<Page> {
        down()
    }
    async fn transact(&self, _: Vec<TxOp>) -> PortResult<()> {
        down()
    }
    async fn increment(&self, _: &Key, _: i64) -> PortResult<i64> {
        down()
    }
    async fn put_batch(&self, _: Vec<Item>) -> PortResult<()> {
        down()
    }
}
