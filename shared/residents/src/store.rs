//! [`ResidentStore`]: apply rows, read residents, households, lookups and history.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use jiff::civil::Date;
use madoguchi_domain::tenant::TenantId;
use madoguchi_fieldcrypt::{Binding, FieldCipher, Sealed};
use madoguchi_linkage::{Record, Value};
use madoguchi_ports::{
    Index, Item, ItemStore, Key, PortError, PortResult, QueryRequest, SortKeyCondition, query_all,
};
use serde::{Deserialize, Serialize};

use crate::col;
use crate::keys::{
    CURRENT_SK, HISTORY_PREFIX, find_pk, history_sk, household_index_pk, key_safe, resident_pk,
};
use crate::model::{
    ApplyOutcome, FileRef, HistoryEntry, ResidentCodes, ResidentView, RowRejection, SourceRow,
};
use crate::normalize::fold_name;
use crate::{BIRTH_DATE_INDEX_PURPOSE, MY_NUMBER_INDEX_PURPOSE};

/// `CURRENT` reads one `apply` keeps in flight.
const READS_IN_FLIGHT: usize = 16;
/// Blind indexes asked of the keys port at once. They are KMS MACs in AWS (the MAC key never
/// leaves KMS, so that nobody holding a process's memory can brute-force the 10^11 個人番号
/// offline), one request each: a 1,000,000-row file needs about as many, and one at a time
/// they would not fit Lambda's 15 minutes.
const MACS_IN_FLIGHT: usize = 32;
/// Upper bounds for the partitions read whole.
const MAX_HOUSEHOLD: usize = 10_000;
const MAX_SAME_BIRTH_DATE: usize = 10_000;
const MAX_HISTORY: usize = 100_000;
/// Hex characters of the birth-date blind index kept in the key (128 bits).
const BIRTH_INDEX_HEX: usize = 32;

/// A 個人番号 as kept beside the values: masked for display, blind index for matching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct NumberRef {
    masked: String,
    index: String,
}

/// What a row says about a resident; equal contents mean "unchanged". Deterministic: no
/// ciphertext, no clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Content {
    values: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    numbers: BTreeMap<String, NumberRef>,
}

impl Content {
    fn value(&self, column: &str) -> Option<&str> {
        self.values.get(column).map(String::as_str)
    }
}

/// The `CURRENT` item's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CurrentData {
    resident: Content,
    source: SourceRow,
    /// The sealed 個人番号 per column, bound to (tenant, `resident:{atena}`, column).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sealed: BTreeMap<String, Sealed>,
}

/// A history item's data: the row's content and where it came from (no ciphertext).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HistoryData {
    resident: Content,
    source: SourceRow,
}

/// A `CURRENT` as read (or as this call is about to write it).
#[derive(Debug, Clone)]
struct Current {
    version: u64,
    data: CurrentData,
}

fn malformed() -> PortError {
    PortError::Backend("malformed resident item".into())
}

fn current_from_item(item: Item) -> PortResult<Current> {
    Ok(Current {
        version: item.version,
        data: serde_json::from_value(item.data).map_err(|_| malformed())?,
    })
}

fn to_data<T: Serialize>(value: &T) -> PortResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|_| PortError::Invalid("resident item".into()))
}

fn binding_record(atena: &str) -> String {
    format!("resident:{atena}")
}

/// The resident store over the item-store port. See the crate documentation.
#[derive(Clone)]
pub struct ResidentStore {
    items: Arc<dyn ItemStore>,
    cipher: FieldCipher,
    codes: ResidentCodes,
    /// Birth date → its lookup index, per tenant: some 30,000 dates cover a city, and each is
    /// a KMS request otherwise (a 1,000,000-row file would ask for nearly a million). The
    /// index is what the store's own keys show anyway; 個人番号 indexes are never cached.
    birth_indexes: Arc<std::sync::Mutex<HashMap<(TenantId, String), String>>>,
}

/// Birth dates remembered at most (a few MB); past it the memory starts afresh.
const BIRTH_INDEX_CACHE: usize = 100_000;

impl std::fmt::Debug for ResidentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResidentStore")
            .field("codes", &self.codes)
            .finish_non_exhaustive()
    }
}

/// One row split into what the store needs.
struct Parsed {
    row: u64,
    atena: String,
    content: Content,
    /// Plain 個人番号 per column, dropped (and never stored) once sealed.
    numbers: Vec<(String, madoguchi_linkage::MyNumber)>,
}

impl ResidentStore {
    /// With the code meanings of the shipped 住民記録 layout ([`ResidentCodes::default`]).
    pub fn new(items: Arc<dyn ItemStore>, cipher: FieldCipher) -> Self {
        Self {
            items,
            cipher,
            codes: ResidentCodes::default(),
            birth_indexes: Arc::default(),
        }
    }

    /// Other code meanings (a vendor's layout).
    pub fn with_codes(mut self, codes: ResidentCodes) -> Self {
        self.codes = codes;
        self
    }

    /// Applies valid rows of `file` (from `LayoutReader`, numbered as it numbers them) in
    /// row order. Idempotent: applying rows again, or rows of an earlier file of the same
    /// system, writes nothing (see the crate documentation for why and how).
    ///
    /// Reads each named resident's `CURRENT`, then writes with two `put_batch` calls: first
    /// the history and lookup entries, then the `CURRENT` items, so a `CURRENT` that shows a
    /// row implies that row's history entry is stored. On an error any part may have been
    /// written; applying the same rows again completes it.
    pub async fn apply(
        &self,
        tenant: &TenantId,
        file: &FileRef,
        mut rows: Vec<(u64, Record)>,
    ) -> PortResult<ApplyOutcome> {
        if !key_safe(&file.system) || file.key.is_empty() || file.version.is_empty() {
            return Err(PortError::Invalid(
                "file reference needs a system without '#', a key and a version".into(),
            ));
        }
        rows.sort_by_key(|(row, _)| *row);
        let mut outcome = ApplyOutcome::default();
        let mut parsed = Vec::with_capacity(rows.len());
        for (row, record) in rows {
            match parse(row, &record) {
                Ok(p) => parsed.push(p),
                Err(rejection) => outcome.rejected.push(rejection),
            }
        }

        // Everyone this call touches, as stored now: one batch read (DynamoDB: BatchGetItem
        // of 100 keys, several in flight), not a read per row.
        let mut atenas: Vec<String> = parsed.iter().map(|p| p.atena.clone()).collect();
        atenas.sort_unstable();
        atenas.dedup();
        let keys: Vec<Key> = atenas
            .iter()
            .map(|atena| Key::new(resident_pk(tenant, atena), CURRENT_SK))
            .collect();
        let found = self.items.get_batch(&keys).await?;
        let mut state: HashMap<String, Option<Current>> = HashMap::with_capacity(atenas.len());
        for (atena, item) in atenas.into_iter().zip(found) {
            state.insert(atena, item.map(current_from_item).transpose()?);
        }

        // Rows already applied (a redelivery, a resumed file) need nothing; the others need
        // their blind indexes, asked for all at once.
        let (parsed, covered): (Vec<Parsed>, Vec<Parsed>) = parsed.into_iter().partition(|p| {
            !state
                .get(&p.atena)
                .and_then(Option::as_ref)
                .is_some_and(|cur| cur.data.source.covers(file, p.row))
        });
        let covered_rows: BTreeSet<u64> = covered.iter().map(|p| p.row).collect();
        // The futures own what they use (a copy of the cipher handle, the tenant, the values):
        // futures borrowing from this call make its own future not `Send` (rustc cannot prove
        // the closures general over the borrows' lifetimes).
        let tenant_owned = *tenant;
        let number_jobs: Vec<Vec<madoguchi_linkage::MyNumber>> = parsed
            .iter()
            .map(|p| p.numbers.iter().map(|(_, n)| n.clone()).collect())
            .collect();
        let number_indexes: Vec<Vec<String>> = futures::stream::iter(number_jobs)
            .map(|numbers| {
                let cipher = self.cipher.clone();
                async move {
                    let mut out = Vec::with_capacity(numbers.len());
                    for number in &numbers {
                        out.push(
                            cipher
                                .blind_index(
                                    &tenant_owned,
                                    MY_NUMBER_INDEX_PURPOSE,
                                    number.expose().as_bytes(),
                                )
                                .await?,
                        );
                    }
                    Ok::<_, PortError>(out)
                }
            })
            .buffered(MACS_IN_FLIGHT)
            .try_collect()
            .await?;
        let births: BTreeSet<String> = parsed
            .iter()
            .filter_map(|p| p.content.value(col::BIRTH_DATE).map(str::to_owned))
            .collect();
        let mut birth_indexes: HashMap<String, String> = HashMap::with_capacity(births.len());
        let mut unknown = Vec::new();
        {
            let cache = self.birth_indexes.lock().unwrap_or_else(|e| e.into_inner());
            for birth in births {
                match cache.get(&(tenant_owned, birth.clone())) {
                    Some(index) => {
                        birth_indexes.insert(birth, index.clone());
                    }
                    None => unknown.push(birth),
                }
            }
        }
        let fresh: Vec<(String, String)> = futures::stream::iter(unknown)
            .map(|birth: String| {
                let cipher = self.cipher.clone();
                async move {
                    let index = birth_index_with(&cipher, &tenant_owned, &birth).await?;
                    Ok::<_, PortError>((birth, index))
                }
            })
            .buffer_unordered(MACS_IN_FLIGHT)
            .try_collect()
            .await?;
        {
            let mut cache = self.birth_indexes.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() + fresh.len() > BIRTH_INDEX_CACHE {
                cache.clear();
            }
            for (birth, index) in &fresh {
                cache.insert((tenant_owned, birth.clone()), index.clone());
            }
        }
        birth_indexes.extend(fresh);

        let mut first_phase = Vec::new();
        let mut dirty = BTreeSet::new();
        outcome.skipped += covered_rows.len() as u64;
        // Rows in row order still: a later row of the same resident must see the earlier one.
        for (p, indexes) in parsed.into_iter().zip(number_indexes) {
            let existing = state.get(&p.atena).cloned().flatten();
            if let Some(cur) = &existing
                && cur.data.source.covers(file, p.row)
            {
                outcome.skipped += 1;
                continue;
            }
            let mut content = p.content;
            for ((column, number), index) in p.numbers.iter().zip(indexes) {
                let masked = madoguchi_domain::mynumber::mask_my_number(number.expose());
                content
                    .numbers
                    .insert(column.clone(), NumberRef { masked, index });
            }
            if existing
                .as_ref()
                .is_some_and(|cur| cur.data.resident == content)
            {
                outcome.unchanged += 1;
                continue;
            }
            // Reuse the stored ciphertext of an unchanged number: sealing is randomised, and a
            // re-applied row must write the very same item.
            let mut sealed = BTreeMap::new();
            for (column, number) in &p.numbers {
                let index = &content.numbers[column].index;
                let kept = existing.as_ref().and_then(|cur| {
                    (cur.data.resident.numbers.get(column).map(|n| &n.index) == Some(index))
                        .then(|| cur.data.sealed.get(column).cloned())
                        .flatten()
                });
                let value = match kept {
                    Some(s) => s,
                    None => {
                        let record = binding_record(&p.atena);
                        self.cipher
                            .seal(
                                tenant,
                                &Binding::new(&record, column),
                                number.expose().as_bytes(),
                            )
                            .await?
                    }
                };
                sealed.insert(column.clone(), value);
            }
            let source = SourceRow::new(file, p.row);
            first_phase.push(Item::new(
                Key::new(
                    resident_pk(tenant, &p.atena),
                    history_sk(&file.system, file.seq, p.row),
                ),
                to_data(&HistoryData {
                    resident: content.clone(),
                    source: source.clone(),
                })?,
            ));
            let birth = content.value(col::BIRTH_DATE).map(str::to_owned);
            let old_birth = existing
                .as_ref()
                .and_then(|cur| cur.data.resident.value(col::BIRTH_DATE));
            if let Some(birth) = &birth
                && old_birth != Some(birth.as_str())
            {
                let index = birth_indexes.get(birth).ok_or_else(malformed)?;
                let pk = find_pk(tenant, index);
                first_phase.push(Item::new(
                    Key::new(pk, p.atena.clone()),
                    serde_json::json!({}),
                ));
            }
            let version = existing.as_ref().map_or(0, |cur| cur.version) + 1;
            dirty.insert(p.atena.clone());
            state.insert(
                p.atena,
                Some(Current {
                    version,
                    data: CurrentData {
                        resident: content,
                        source,
                        sealed,
                    },
                }),
            );
            outcome.applied += 1;
        }

        let currents = dirty
            .iter()
            .map(|atena| {
                let cur = state
                    .get(atena)
                    .and_then(Option::as_ref)
                    .ok_or_else(malformed)?;
                self.current_item(tenant, atena, cur)
            })
            .collect::<PortResult<Vec<_>>>()?;
        let written = first_phase.len() + currents.len();
        self.items.put_batch(first_phase).await?;
        self.items.put_batch(currents).await?;
        tracing::debug!(
            system = %file.system,
            seq = file.seq,
            applied = outcome.applied,
            unchanged = outcome.unchanged,
            skipped = outcome.skipped,
            rejected = outcome.rejected.len(),
            items = written,
            "resident rows applied"
        );
        Ok(outcome)
    }

    fn current_item(&self, tenant: &TenantId, atena: &str, cur: &Current) -> PortResult<Item> {
        let household = cur
            .data
            .resident
            .value(col::HOUSEHOLD)
            .ok_or_else(malformed)?;
        let mut item = Item::new(
            Key::new(resident_pk(tenant, atena), CURRENT_SK),
            to_data(&cur.data)?,
        );
        item.version = cur.version;
        item.gsi1 = Some(Key::new(household_index_pk(tenant, household), atena));
        Ok(item)
    }

    /// The lookup partition of a birth date (`{tenant}#RESFIND#{blind index}`), for
    /// operations and tests that read the stored items.
    pub async fn lookup_partition(
        &self,
        tenant: &TenantId,
        birth_date: Date,
    ) -> PortResult<String> {
        Ok(find_pk(
            tenant,
            &self.birth_index(tenant, &birth_date.to_string()).await?,
        ))
    }

    async fn birth_index(&self, tenant: &TenantId, date: &str) -> PortResult<String> {
        birth_index_with(&self.cipher, tenant, date).await
    }

    fn view(&self, content: &Content, source: &SourceRow) -> ResidentView {
        let get = |c: &str| content.value(c).map(str::to_owned);
        let relationship = get(col::RELATIONSHIP);
        let resident_status = get(col::RESIDENT_STATUS);
        // 個人番号 values never get here: `parse` keeps them out of `values`.
        let values = content.values.clone();
        ResidentView {
            atena_number: get(col::ATENA).unwrap_or_default(),
            household_number: get(col::HOUSEHOLD).unwrap_or_default(),
            name: get(col::NAME).unwrap_or_default(),
            name_kana: get(col::NAME_KANA),
            birth_date: content.value(col::BIRTH_DATE).and_then(|d| d.parse().ok()),
            householder: self.codes.is_householder(relationship.as_deref()),
            relationship,
            present: self.codes.is_present(resident_status.as_deref()),
            resident_status,
            my_number_masked: content
                .numbers
                .get(col::MY_NUMBER)
                .map(|n| n.masked.clone()),
            values,
            source: source.clone(),
        }
    }

    /// A resident by 宛名番号, whether present or not.
    pub async fn resident(
        &self,
        tenant: &TenantId,
        atena: &str,
    ) -> PortResult<Option<ResidentView>> {
        Ok(self
            .current(tenant, atena)
            .await?
            .map(|cur| self.view(&cur.data.resident, &cur.data.source)))
    }

    async fn current(&self, tenant: &TenantId, atena: &str) -> PortResult<Option<Current>> {
        if !key_safe(atena) {
            return Ok(None);
        }
        let key = Key::new(resident_pk(tenant, atena), CURRENT_SK);
        self.items
            .get(&key)
            .await?
            .map(current_from_item)
            .transpose()
    }

    /// The present members of a household (世帯員): 世帯主 first, then by 続柄 code, then by
    /// 宛名番号. Members who left (転出, 死亡…) are not listed; read them by 宛名番号.
    ///
    /// On DynamoDB the household index is eventually consistent: a move applied a moment ago
    /// may show a moment later.
    pub async fn household(
        &self,
        tenant: &TenantId,
        household: &str,
    ) -> PortResult<Vec<ResidentView>> {
        if !key_safe(household) {
            return Ok(Vec::new());
        }
        let request =
            QueryRequest::partition(household_index_pk(tenant, household)).on(Index::Gsi1);
        let items = query_all(self.items.as_ref(), request.limit(1000), MAX_HOUSEHOLD).await?;
        let mut members = Vec::with_capacity(items.len());
        for item in items {
            let cur = current_from_item(item)?;
            let view = self.view(&cur.data.resident, &cur.data.source);
            // The index may lag behind an overwrite; the item itself is the truth.
            if view.present && view.household_number == household {
                members.push(view);
            }
        }
        members.sort_by(|a, b| {
            (!a.householder, &a.relationship, &a.atena_number).cmp(&(
                !b.householder,
                &b.relationship,
                &b.atena_number,
            ))
        });
        Ok(members)
    }

    /// Residents (present or not) born on `birth_date` whose 氏名, 氏名フリガナ, ローマ字氏名
    /// or 通称 equals `name_or_kana` after folding (spaces and `・` removed, widths folded,
    /// hiragana as katakana, Latin upper case). Checked against each `CURRENT`, so a former
    /// name no longer finds anyone. Ordered by 宛名番号.
    pub async fn find(
        &self,
        tenant: &TenantId,
        name_or_kana: &str,
        birth_date: Date,
    ) -> PortResult<Vec<ResidentView>> {
        let wanted = fold_name(name_or_kana);
        if wanted.is_empty() {
            return Err(PortError::Invalid("a name to look up is required".into()));
        }
        let date = birth_date.to_string();
        let pk = find_pk(tenant, &self.birth_index(tenant, &date).await?);
        let entries = query_all(
            self.items.as_ref(),
            QueryRequest::partition(pk).limit(1000),
            MAX_SAME_BIRTH_DATE,
        )
        .await?;
        let mut found: Vec<ResidentView> = futures::stream::iter(entries)
            .map(|entry| async move { self.current(tenant, &entry.key.sk).await })
            .buffer_unordered(READS_IN_FLIGHT)
            .try_filter_map(|cur| {
                let hit = cur.filter(|cur| {
                    let r = &cur.data.resident;
                    r.value(col::BIRTH_DATE) == Some(date.as_str())
                        && [col::NAME, col::NAME_KANA, col::ROMAJI_NAME, col::ALIAS]
                            .iter()
                            .filter_map(|c| r.value(c))
                            .any(|n| fold_name(n) == wanted)
                });
                futures::future::ready(Ok(
                    hit.map(|cur| self.view(&cur.data.resident, &cur.data.source))
                ))
            })
            .try_collect()
            .await?;
        found.sort_by(|a, b| a.atena_number.cmp(&b.atena_number));
        Ok(found)
    }

    /// Every applied row of a resident, oldest first (file order within a system).
    pub async fn history(&self, tenant: &TenantId, atena: &str) -> PortResult<Vec<HistoryEntry>> {
        if !key_safe(atena) {
            return Ok(Vec::new());
        }
        let request = QueryRequest::partition(resident_pk(tenant, atena))
            .sk(SortKeyCondition::BeginsWith(HISTORY_PREFIX.into()))
            .limit(1000);
        let items = query_all(self.items.as_ref(), request, MAX_HISTORY).await?;
        items
            .into_iter()
            .map(|item| {
                let h: HistoryData = serde_json::from_value(item.data).map_err(|_| malformed())?;
                Ok(HistoryEntry {
                    change_reason: h.resident.value(col::CHANGE_REASON).map(str::to_owned),
                    change_date: h
                        .resident
                        .value(col::CHANGE_DATE)
                        .and_then(|d| d.parse().ok()),
                    state: self.view(&h.resident, &h.source),
                })
            })
            .collect()
    }
}

/// Splits a record into values and plain 個人番号; refuses rows without usable keys.
fn parse(row: u64, record: &Record) -> Result<Parsed, RowRejection> {
    let mut values = BTreeMap::new();
    let mut numbers = Vec::new();
    for (name, value) in record.iter() {
        match value {
            Value::Null => {}
            Value::Text(s) => {
                values.insert(name.to_owned(), s.clone());
            }
            Value::Date(d) => {
                values.insert(name.to_owned(), d.to_string());
            }
            Value::MyNumber(n) => numbers.push((name.to_owned(), n.clone())),
        }
    }
    let keyable = |column: &str| values.get(column).is_some_and(|v| key_safe(v));
    if !keyable(col::ATENA) {
        return Err(RowRejection {
            row,
            code: "resident.atena_number",
            message: "宛名番号がないか、使用できない文字を含みます",
        });
    }
    if !keyable(col::HOUSEHOLD) {
        return Err(RowRejection {
            row,
            code: "resident.household_number",
            message: "世帯番号がないか、使用できない文字を含みます",
        });
    }
    Ok(Parsed {
        row,
        atena: values[col::ATENA].clone(),
        content: Content {
            values,
            numbers: BTreeMap::new(),
        },
        numbers,
    })
}

/// The lookup index of a birth date: a truncated blind index (partitions spread, dates not
/// readable from keys).
async fn birth_index_with(
    cipher: &FieldCipher,
    tenant: &TenantId,
    date: &str,
) -> PortResult<String> {
    let mut index = cipher
        .blind_index(tenant, BIRTH_DATE_INDEX_PURPOSE, date.as_bytes())
        .await?;
    index.truncate(BIRTH_INDEX_HEX);
    Ok(index)
}
