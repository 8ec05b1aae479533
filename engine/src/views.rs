//! Saved views by name: create, drop and rename without writing SQL, with one rule for what a
//! view's name may be (letters, digits and `_`, not starting with a digit — no quoting, no path
//! separators, so a name is safe as a file name in the lake and in the user's settings).

use crate::{Engine, EngineError};

/// Whether `name` can be a view's name.
pub fn is_valid_view_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn check_name(name: &str) -> Result<(), EngineError> {
    if is_valid_view_name(name) {
        Ok(())
    } else {
        Err(EngineError::Query(format!(
            "{name:?} is not a view name: use letters, digits and _, not starting with a digit"
        )))
    }
}

/// The query of a `CREATE [OR REPLACE] VIEW name AS query` statement.
pub fn view_body(sql: &str) -> Option<&str> {
    let lower = sql.to_ascii_lowercase();
    let after_view = lower.find("view")? + 4;
    let bytes = lower.as_bytes();
    (after_view..lower.len().saturating_sub(2)).find_map(|i| {
        let before = bytes[i - 1];
        let after = bytes[i + 2];
        (lower[i..].starts_with("as")
            && before.is_ascii_whitespace()
            && (after.is_ascii_whitespace() || after == b'('))
            .then(|| sql[i + 2..].trim())
    })
}

impl Engine {
    /// Saves `query` as the view `name` (replacing a view of that name): in the lake, or in the
    /// user's settings if the lake is read-only.
    pub async fn create_view(&self, name: &str, query: &str) -> Result<(), EngineError> {
        check_name(name)?;
        self.execute(&format!(
            "CREATE OR REPLACE VIEW {name} AS {}",
            query.trim()
        ))
        .await?;
        Ok(())
    }

    /// Deletes the view `name`.
    pub async fn drop_view(&self, name: &str) -> Result<(), EngineError> {
        check_name(name)?;
        self.execute(&format!("DROP VIEW {name}")).await?;
        Ok(())
    }

    /// Renames a view: a view `new` with the same query, then `old` dropped.
    pub async fn rename_view(&self, old: &str, new: &str) -> Result<(), EngineError> {
        check_name(old)?;
        check_name(new)?;
        if old == new {
            return Ok(());
        }
        let views = self.views();
        let sql = views
            .iter()
            .find(|v| v.name == old)
            .map(|v| v.sql.clone())
            .ok_or_else(|| EngineError::Query(format!("there is no view {old}")))?;
        let query = view_body(&sql)
            .ok_or_else(|| EngineError::Query(format!("view {old} has no query: {sql}")))?;
        if views.iter().any(|v| v.name == new) {
            return Err(EngineError::Query(format!("a view {new} exists already")));
        }
        self.execute(&format!("CREATE VIEW {new} AS {query}"))
            .await?;
        self.drop_view(old).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_bodies_and_names() {
        assert_eq!(
            view_body("CREATE VIEW slow AS SELECT * FROM frames"),
            Some("SELECT * FROM frames")
        );
        assert_eq!(
            view_body("create or replace view x as\n(select 1)"),
            Some("(select 1)")
        );
        assert_eq!(view_body("CREATE VIEW vast AS SELECT 1"), Some("SELECT 1"));
        assert_eq!(view_body("SELECT 1"), None);
        assert!(is_valid_view_name("slow_frames2"));
        for bad in ["2x", "a b", "", "../../escaped", "x.sql", "a/b", "é"] {
            assert!(!is_valid_view_name(bad), "{bad}");
        }
        assert!(!is_valid_view_name(&"a".repeat(129)));
    }
}
