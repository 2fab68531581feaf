//! Access counts (アクセス件数) per life event and channel, per Japan day: one atomic counter
//! item per (day, event, channel), `{tenant}#GUIDECOUNT#{YYYY-MM-DD}` / `{event}#{channel}`.
//! A day is one partition, so a report reads one partition per day and never a scan.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use madoguchi_csvexport::{CsvEncoding, CsvWriter};
use madoguchi_domain::authz::{Action, Resource};
use madoguchi_domain::tenant::TenantId;
use madoguchi_http::{ApiError, ApiQuery};
use madoguchi_ports::{ItemStore, Key, QueryRequest, query_all};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::guide::load_guide;
use crate::{Caller, NavigatorState, field_error, internal, port_error};

/// Longest report range, in days (a leap year).
pub const MAX_RANGE_DAYS: i32 = 366;
/// Days read at once: enough to keep a year's report quick, few enough not to flood the table.
const PARALLEL_DAYS: usize = 8;

/// Where the citizen uses the guide (利用経路).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Web,
    Line,
    Kiosk,
}

impl Channel {
    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "web" => Some(Channel::Web),
            "line" => Some(Channel::Line),
            "kiosk" => Some(Channel::Kiosk),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Line => "line",
            Channel::Kiosk => "kiosk",
        }
    }

    /// As staff read it in the CSV.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Web => "Web",
            Channel::Line => "LINE",
            Channel::Kiosk => "キオスク端末",
        }
    }
}

pub fn count_pk(tenant: &TenantId, day: Date) -> String {
    tenant.key(&["GUIDECOUNT", &day.to_string()])
}

pub fn count_key(tenant: &TenantId, day: Date, event: &str, channel: Channel) -> Key {
    Key::new(
        count_pk(tenant, day),
        format!("{event}#{}", channel.as_str()),
    )
}

/// Counts one access; atomic, so concurrent starts all count.
pub async fn count_access(
    items: &dyn ItemStore,
    tenant: &TenantId,
    day: Date,
    event: &str,
    channel: Channel,
) -> Result<i64, ApiError> {
    items
        .increment(&count_key(tenant, day, event, channel), 1)
        .await
        .map_err(port_error)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD` (Japan day).
    pub from: Option<String>,
    /// Last day, inclusive; at most 366 days after `from`.
    pub to: Option<String>,
}

/// One count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountRow {
    /// `YYYY-MM-DD`, the Japan day.
    pub date: String,
    pub event: String,
    /// The event's name in the current guide (the id when the guide no longer has it).
    pub event_name: String,
    pub channel: Channel,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountReport {
    pub from: String,
    pub to: String,
    /// Per day, event and channel, days ascending; only what was counted (no zero rows).
    pub rows: Vec<CountRow>,
    pub total: i64,
}

fn parse_day(field: &str, value: Option<&str>) -> Result<Date, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err(field_error(
            field,
            "required",
            "期間を YYYY-MM-DD の形で指定してください。",
        ));
    };
    let invalid = || {
        field_error(
            field,
            "invalid_date",
            "日付を YYYY-MM-DD の形で正しく指定してください。",
        )
    };
    // Exactly YYYY-MM-DD: the report's days are keys, and other spellings would only
    // hide typos.
    let shape_ok = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(invalid());
    }
    value.parse::<Date>().map_err(|_| invalid())
}

fn parse_range(q: &RangeQuery) -> Result<(Date, Date), ApiError> {
    let from = parse_day("from", q.from.as_deref())?;
    let to = parse_day("to", q.to.as_deref())?;
    if to < from {
        return Err(field_error(
            "to",
            "out_of_range",
            "終了日は開始日以降の日付にしてください。",
        ));
    }
    let days = from
        .until(to)
        .map_err(|_| internal("date range"))?
        .get_days()
        + 1;
    if days > MAX_RANGE_DAYS {
        return Err(field_error(
            "to",
            "out_of_range",
            "期間は366日以内で指定してください。",
        ));
    }
    Ok((from, to))
}

/// Every count of the range, reading each day's partition (a few days at once).
async fn read_counts(
    state: &NavigatorState,
    tenant: &TenantId,
    from: Date,
    to: Date,
) -> Result<Vec<(Date, String, Channel, i64)>, ApiError> {
    let mut days = Vec::new();
    let mut day = from;
    while day <= to {
        days.push(day);
        day = day.tomorrow().map_err(|_| internal("date range"))?;
    }
    let mut out = Vec::new();
    for chunk in days.chunks(PARALLEL_DAYS) {
        let mut set = tokio::task::JoinSet::new();
        for &day in chunk {
            let items = state.items.clone();
            let pk = count_pk(tenant, day);
            set.spawn(async move {
                let found = query_all(
                    items.as_ref(),
                    QueryRequest::partition(pk).limit(100),
                    10_000,
                )
                .await;
                (day, found)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (day, found) = joined.map_err(|_| internal("count task"))?;
            for item in found.map_err(port_error)? {
                // Sort keys are `{event}#{channel}`; anything else is not ours to report.
                let Some((event, channel)) = item.key.sk.rsplit_once('#') else {
                    continue;
                };
                let Some(channel) = Channel::parse(channel) else {
                    continue;
                };
                let n = item.data.get("n").and_then(|n| n.as_i64()).unwrap_or(0);
                out.push((day, event.to_owned(), channel, n));
            }
        }
    }
    out.sort();
    Ok(out)
}

async fn report(
    state: &NavigatorState,
    who: &Caller,
    q: &RangeQuery,
) -> Result<CountReport, ApiError> {
    who.require(
        Action::ReadOrganisation,
        Resource::Tenant(&who.tenant),
        false,
    )?;
    let (from, to) = parse_range(q)?;
    let loaded = load_guide(state, &who.tenant).await?;
    let names: BTreeMap<&str, &str> = loaded
        .guide
        .events
        .iter()
        .map(|e| (e.id.as_str(), e.name.as_str()))
        .collect();
    let counts = read_counts(state, &who.tenant, from, to).await?;
    let rows: Vec<CountRow> = counts
        .into_iter()
        .map(|(date, event, channel, count)| CountRow {
            date: date.to_string(),
            event_name: names
                .get(event.as_str())
                .copied()
                .unwrap_or(event.as_str())
                .to_owned(),
            event,
            channel,
            count,
        })
        .collect();
    Ok(CountReport {
        from: from.to_string(),
        to: to.to_string(),
        total: rows.iter().map(|r| r.count).sum(),
        rows,
    })
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/guide/counts",
    tag = "navigator",
    params(("tenant" = String, Path), RangeQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "counts per day, event and channel", body = CountReport),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad or too long range", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn counts(
    State(state): State<NavigatorState>,
    who: Caller,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Json<CountReport>, ApiError> {
    Ok(Json(report(&state, &who, &q).await?))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/staff/guide/counts.csv",
    tag = "navigator",
    params(("tenant" = String, Path), RangeQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the same counts as CSV for Excel: UTF-8 with BOM, CRLF; 日付,ライフイベント,経路,件数", content_type = "text/csv", body = String),
        (status = 401, description = "no or bad token", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "not staff of this tenant", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "bad or too long range", body = madoguchi_http::problem::ProblemDoc, content_type = "application/problem+json"),
    )
)]
pub async fn counts_csv(
    State(state): State<NavigatorState>,
    who: Caller,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    let report = report(&state, &who, &q).await?;
    let csv_error = |_| internal("counts csv");
    let mut w = CsvWriter::new(
        Vec::new(),
        CsvEncoding::Utf8Bom,
        &["日付", "ライフイベント", "経路", "件数"],
    )
    .map_err(csv_error)?;
    for r in &report.rows {
        w.write_row(&[
            r.date.clone(),
            r.event_name.clone(),
            r.channel.label().to_owned(),
            r.count.to_string(),
        ])
        .map_err(csv_error)?;
    }
    let bytes = w.finish().map_err(csv_error)?;
    let mut res = (StatusCode::OK, bytes).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"guide-counts-{}-{}.csv\"",
        report.from, report.to
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}
