//! What goes out to core systems (後方連携), as data: per target system, the file layout
//! and, per form, which application status sends an application and where each column's
//! value comes from. Kept in the linkage bucket as `config/outbound.json`; see
//! `docs/linkage.md`.

use std::collections::BTreeMap;

use madoguchi_domain::workflow::ApplicationStatus;
use serde::{Deserialize, Serialize};

use crate::layout::{EncodingSpec, Layout, LayoutError};
use crate::write::LineEnding;

/// `config/outbound.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Target system id (`[a-z0-9-]`, as in `outbound/<system>/…`) → its spec.
    pub systems: BTreeMap<String, SystemSpec>,
}

/// One target system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    /// The file layout the system reads (encoding `utf8` or `cp932`).
    pub layout: Layout,
    #[serde(default)]
    pub line_ending: LineEnding,
    /// Form slug → how its applications fill the layout.
    pub forms: BTreeMap<String, FormMapping>,
}

/// How applications of one form become rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormMapping {
    /// The status that sends an application (once): `completed` (完了) unless said otherwise.
    #[serde(default = "completed")]
    pub on: ApplicationStatus,
    /// Column name → source. Columns not named are written empty.
    pub columns: BTreeMap<String, Source>,
}

fn completed() -> ApplicationStatus {
    ApplicationStatus::Completed
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A path: `app.<field>` ([`APP_FIELDS`]) or `answers.<field key>[.<part>…]`
    /// (e.g. `answers.name.family`).
    Path(String),
    /// Fixed text.
    Const {
        #[serde(rename = "const")]
        value: String,
    },
    /// Several paths joined by `sep` (empty parts skipped), e.g. 氏 + 全角空白 + 名.
    Join {
        join: Vec<String>,
        #[serde(default)]
        sep: String,
    },
    /// A path whose value is translated through `map` (an answer's option → the system's
    /// code); a value missing from the map is an error for that application, never a guess.
    Map {
        from: String,
        map: BTreeMap<String, String>,
    },
}

/// The application fields a path may name after `app.`.
pub const APP_FIELDS: [&str; 8] = [
    "id",
    "receipt",
    "form",
    "form_version",
    "form_title",
    "status",
    "submitted_at",
    "completed_at",
];

/// A path split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePath<'a> {
    App(&'a str),
    Answer { key: &'a str, parts: Vec<&'a str> },
}

/// Parses `app.receipt` / `answers.name.family`.
pub fn parse_path(path: &str) -> Option<SourcePath<'_>> {
    if let Some(field) = path.strip_prefix("app.") {
        return APP_FIELDS
            .contains(&field)
            .then_some(SourcePath::App(field));
    }
    let rest = path.strip_prefix("answers.")?;
    let mut parts = rest.split('.');
    let key = parts.next().filter(|k| !k.is_empty())?;
    let parts: Vec<&str> = parts.collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(SourcePath::Answer { key, parts })
}

impl Source {
    /// The paths this source reads.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Source::Path(p) => vec![p.as_str()],
            Source::Const { .. } => vec![],
            Source::Join { join, .. } => join.iter().map(String::as_str).collect(),
            Source::Map { from, .. } => vec![from.as_str()],
        }
    }
}

fn is_system_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl OutboundConfig {
    /// Parses and checks `config/outbound.json`.
    pub fn from_json(json: &str) -> Result<OutboundConfig, LayoutError> {
        let config: OutboundConfig =
            serde_json::from_str(json).map_err(|e| LayoutError::Json(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Every system id valid, every layout writable, every mapping consistent with its
    /// layout: named columns exist, required columns are mapped, paths parse.
    pub fn check(&self) -> Result<(), LayoutError> {
        for (system, spec) in &self.systems {
            let bad = |column: &str, problem: &'static str| LayoutError::Column {
                column: format!("{system}: {column}"),
                problem,
            };
            if !is_system_id(system) {
                return Err(bad("", "system id must be 1–32 of a-z, 0-9 and -"));
            }
            spec.layout.check()?;
            if spec.layout.encoding == EncodingSpec::Auto {
                return Err(bad("", "an outbound layout needs encoding utf8 or cp932"));
            }
            for (slug, mapping) in &spec.forms {
                for name in mapping.columns.keys() {
                    if spec.layout.index_of(name).is_none() {
                        return Err(bad(name, "mapped column is not in the layout"));
                    }
                }
                for c in &spec.layout.columns {
                    if c.required && !mapping.columns.contains_key(&c.name) {
                        return Err(LayoutError::Column {
                            column: format!("{system}: {slug}: {}", c.name),
                            problem: "required column has no source",
                        });
                    }
                }
                for (name, source) in &mapping.columns {
                    let paths = source.paths();
                    if matches!(source, Source::Join { join, .. } if join.is_empty()) {
                        return Err(bad(name, "join needs at least one path"));
                    }
                    if paths.iter().any(|p| parse_path(p).is_none()) {
                        return Err(bad(
                            name,
                            "a path must be app.<field> or answers.<key>[.<part>…]",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The systems (and their mapping) that take applications of `slug` reaching `status`.
    pub fn targets(
        &self,
        slug: &str,
        status: ApplicationStatus,
    ) -> impl Iterator<Item = (&str, &SystemSpec, &FormMapping)> {
        self.systems.iter().filter_map(move |(id, spec)| {
            let m = spec.forms.get(slug)?;
            (m.on == status).then_some((id.as_str(), spec, m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{
      "systems": {
        "jumin": {
          "layout": {"id":"idou","label":"住民異動届","encoding":"cp932","header":true,"kind":"full",
            "columns":[
              {"name":"receipt","label":"受付番号","type":"text","required":true},
              {"name":"name","label":"氏名","type":"text","required":true},
              {"name":"sex","label":"性別","type":"code","code_table":"sex"}
            ],
            "code_tables":{"sex":{"codes":{"1":"男","2":"女"}}}},
          "forms": {
            "tennyu": {"columns": {
              "receipt": "app.receipt",
              "name": {"join": ["answers.name.family", "answers.name.given"], "sep": "　"},
              "sex": {"from": "answers.sex", "map": {"male": "1", "female": "2"}}
            }}
          }
        }
      }
    }"#;

    #[test]
    fn the_sample_parses_and_targets_completed_applications() {
        let c = OutboundConfig::from_json(SAMPLE).unwrap();
        let t: Vec<&str> = c
            .targets("tennyu", ApplicationStatus::Completed)
            .map(|(s, _, _)| s)
            .collect();
        assert_eq!(t, ["jumin"]);
        assert_eq!(c.targets("tennyu", ApplicationStatus::InReview).count(), 0);
        assert_eq!(c.targets("other", ApplicationStatus::Completed).count(), 0);
        let m = &c.systems["jumin"].forms["tennyu"];
        assert!(matches!(m.columns["sex"], Source::Map { .. }));
        assert!(matches!(m.columns["name"], Source::Join { .. }));
    }

    #[test]
    fn inconsistent_mappings_are_refused() {
        let cases = [
            (r#""receipt": "app.receipt""#, r#""receipt": "app.nope""#),
            (r#""receipt": "app.receipt""#, r#""receipt": "answers.""#),
            (r#""receipt": "app.receipt","#, ""),
            (
                r#""receipt": "app.receipt""#,
                r#""receipt": "app.receipt", "ghost": "app.id""#,
            ),
            (r#""encoding":"cp932""#, r#""encoding":"auto""#),
            (r#""jumin": {"#, r#""Jumin": {"#),
        ];
        for (from, to) in cases {
            let json = SAMPLE.replacen(from, to, 1);
            assert_ne!(json, SAMPLE, "{from}");
            assert!(OutboundConfig::from_json(&json).is_err(), "{to}");
        }
    }

    #[test]
    fn paths_parse() {
        assert_eq!(parse_path("app.receipt"), Some(SourcePath::App("receipt")));
        assert_eq!(
            parse_path("answers.name.family"),
            Some(SourcePath::Answer {
                key: "name",
                parts: vec!["family"]
            })
        );
        assert_eq!(parse_path("answers.name..x"), None);
        assert_eq!(parse_path("app."), None);
        assert_eq!(parse_path("name"), None);
    }
}
