//! `CREATE MATERIALIZED VIEW name AS query`: a summary defined in SQL, kept in the lake
//! (`materialized/{name}.sql`, holding `CREATE VIEW name AS query`) and evaluated per session by
//! the same refresh as the built-in summaries. Its definition is data like a lake's views: at
//! open it must be one `CREATE VIEW` named as its file whose planned query only reads
//! (`views::check_view_statement`, `views::check_view_plan`); anything else is refused with a
//! notice. Any query qualifies, since it runs over one session's tables at a time; `process_id`
//! and `start_time` are added in front of its rows unless it returns them itself.

use super::SummaryView;
use crate::engine::Engine;
use crate::error::EngineError;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::prelude::SessionContext;
use std::sync::Arc;

/// Where materialized view definitions live in a lake.
pub const MATERIALIZED_PREFIX: &str = "materialized/";

/// Columns every summary row starts with.
pub const SESSION_COLUMNS: [&str; 2] = ["process_id", "start_time"];

/// `(name, query)` of `CREATE MATERIALIZED VIEW name AS query` (any case and spacing).
pub fn parse_create_materialized(sql: &str) -> Option<(String, String)> {
    let mut rest = sql.trim_start();
    for want in ["create", "materialized", "view"] {
        let (word, tail) = rest.split_once(char::is_whitespace)?;
        if !word.eq_ignore_ascii_case(want) {
            return None;
        }
        rest = tail.trim_start();
    }
    let (name, tail) = rest.split_once(char::is_whitespace)?;
    let tail = tail.trim_start();
    let query = tail
        .get(..2)
        .filter(|a| a.eq_ignore_ascii_case("as"))
        .and_then(|_| tail.get(2..))?
        .trim()
        .trim_end_matches(';')
        .trim();
    Some((name.to_owned(), query.to_owned()))
}

/// The table schema of a summary of `sql`: `process_id`, `start_time`, then the query's other
/// columns, all nullable.
pub async fn summary_schema_of(ctx: &SessionContext, sql: &str) -> Result<SchemaRef, EngineError> {
    let planned = ctx.sql(sql).await?;
    let mut fields = vec![
        Field::new(SESSION_COLUMNS[0], DataType::Utf8, false),
        Field::new(
            SESSION_COLUMNS[1],
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
    ];
    fields.extend(
        planned
            .schema()
            .fields()
            .iter()
            .filter(|f| !SESSION_COLUMNS.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    Ok(Arc::new(Schema::new(fields)))
}

fn definition_key(name: &str) -> String {
    format!("{MATERIALIZED_PREFIX}{name}.sql")
}

impl Engine {
    /// Checks, saves in the lake and registers a materialized view; its rows appear as
    /// sessions are summarized (`frameline lake compact`, or the viewer's maintenance).
    pub async fn create_materialized_view(
        &self,
        name: &str,
        query: &str,
    ) -> Result<(), EngineError> {
        crate::views::check_name(name)?;
        if self
            .summary_views()
            .iter()
            .any(|v| v.name == name && crate::summaries::is_built_in(name))
            || (self.context().table_exist(name)?
                && !self.summary_views().iter().any(|v| v.name == name))
        {
            return Err(EngineError::Query(format!("{name} is already a table")));
        }
        let definition = format!("CREATE VIEW {name} AS {query}");
        let view = self
            .checked_materialized(name, &definition)
            .await
            .map_err(EngineError::Query)?;
        self.lake()
            .put(&definition_key(name), definition.into_bytes())
            .await?;
        let schema = summary_schema_of(self.context(), &view.sql).await?;
        self.add_summary(view, schema)
    }

    /// The summary a definition read from the lake describes, if it is a plain read-only view.
    async fn checked_materialized(
        &self,
        name: &str,
        definition: &str,
    ) -> Result<SummaryView, String> {
        let statement = crate::views::parse_view_statement(name, definition)?;
        let plan = self
            .context()
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| EngineError::from(e).to_string())?;
        crate::views::check_view_plan(name, &plan)?;
        let query = crate::views::view_body(definition)
            .ok_or_else(|| "it has no query".to_owned())?
            .to_owned();
        Ok(SummaryView {
            name: name.to_owned(),
            sql: query,
        })
    }

    /// Registers the lake's materialized views; a definition that is not one is reported.
    pub(crate) async fn load_materialized_views(&self) -> Result<(), EngineError> {
        for key in self.lake().list(MATERIALIZED_PREFIX).await? {
            let Some(name) = key
                .strip_prefix(MATERIALIZED_PREFIX)
                .and_then(|k| k.strip_suffix(".sql"))
                .filter(|n| crate::views::is_valid_view_name(n) && !super::is_built_in(n))
            else {
                continue;
            };
            let loaded = async {
                let text = crate::views::read_lake_view(self.lake(), &key)
                    .await?
                    .ok_or_else(|| "it vanished".to_owned())?;
                let view = self.checked_materialized(name, &text).await?;
                let schema = summary_schema_of(self.context(), &view.sql)
                    .await
                    .map_err(|e| e.to_string())?;
                self.add_summary(view, schema).map_err(|e| e.to_string())
            }
            .await;
            if let Err(why) = loaded {
                self.notice(format!("materialized view {name} was not loaded: {why}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_materialized_view_is_recognised() {
        assert_eq!(
            parse_create_materialized("create  Materialized VIEW slow AS SELECT 1;"),
            Some(("slow".to_owned(), "SELECT 1".to_owned()))
        );
        assert_eq!(
            parse_create_materialized("CREATE VIEW slow AS SELECT 1"),
            None
        );
        assert_eq!(
            parse_create_materialized("CREATE MATERIALIZED VIEW slow"),
            None
        );
    }
}
