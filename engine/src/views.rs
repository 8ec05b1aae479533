//! Saved views by name: create, drop and rename without writing SQL, with one rule for what a
//! view's name may be (letters, digits and `_`, not starting with a digit — no quoting, no path
//! separators, so a name is safe as a file name in the lake and in the user's settings).
//!
//! A lake's views are data, not code: at open, a view object is loaded only if it is one
//! `CREATE [OR REPLACE] VIEW <name> AS <query>` whose name is its file's and whose query only
//! reads (no DDL, DML, `COPY` or external table anywhere in it); anything else is refused with a
//! notice, and so is a view that would replace one of the engine's tables (`processes`…). In a
//! local lake, a view object that is a link leading out of the lake is not read.
//! `COPY TO` and external tables stay available to a user typing SQL, never to a lake's SQL.

use crate::lake::{Lake, LakeLocation};
use crate::sql_budget::parse_budgeted;
use crate::{Engine, EngineError};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::{CreateView, DdlStatement, LogicalPlan, TableType};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use std::path::{Path, PathBuf};

/// Largest view object read from a lake: a view is one statement, not a data set.
pub const MAX_VIEW_BYTES: usize = 256 * 1024;

/// Most `.` in one chain of names (`a.b.c`) a lake's view may hold. sqlparser 0.62 backtracks on
/// each part of a compound name that does not parse as an expression (a keyword such as `is`),
/// so its time doubles with each part: the `view_sql` fuzz target found 60 bytes of
/// `a.i.n.is.i.on.s.in…` that took seconds and 223 bytes that ran for more than ten minutes.
/// Real names have at most four parts (`catalog.schema.table.column`), struct fields a few more.
/// A cheap early refusal: chains broken up by subscripts (`a.b[[c.d…`) backtrack the same way
/// and are stopped by the parser's step budget instead (`sql_budget`).
pub const MAX_NAME_CHAIN_DOTS: usize = 8;

/// Most tokens (whitespace aside) in a lake's view. Parsing builds one level of tree per
/// operator of a chain such as `1 + 1 + …`, and planning and dropping the tree recurse on it:
/// 40 000 of them overflowed a 2 MiB stack (the size of a runtime's worker thread) and aborted
/// the process. A view is a query a person wrote; 16 384 tokens is some 60 screens of SQL, and
/// `deep_views_open_or_are_refused_without_overflowing` plans and runs the deepest chain it allows.
pub const MAX_VIEW_TOKENS: usize = 16_384;

/// Most operators a lake's view may hold: symbols other than punctuation (`+`, `=`, `::`, `||`…)
/// and the keywords that combine expressions or queries (`AND`, `OR`, `NOT`, `IS`, `IN`,
/// `LIKE`, `UNION`, `JOIN`…). Parsing builds a level of tree per operator of a chain such as
/// `1 + 1 + …`, and DataFusion displays and walks such a tree by recursion, not all of it
/// guarded: 250 of them overflowed a 2 MiB stack (a runtime worker's) in a debug build and
/// aborted the process. Counting every operator, not only chains, also bounds chains nested
/// in parentheses. `deep_views_open_or_are_refused_without_overflowing` plans and runs the
/// deepest chain allowed.
pub const MAX_VIEW_OPERATORS: usize = 128;

/// Whether `token` combines expressions or queries (see [`MAX_VIEW_OPERATORS`]).
fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(word) => matches!(
            word.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::IN
                | Keyword::BETWEEN
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::DIV
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::MINUS
                | Keyword::JOIN
        ),
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Comma
        | Token::Whitespace(_)
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::SemiColon
        | Token::LBracket
        | Token::RBracket
        | Token::LBrace
        | Token::RBrace
        | Token::Placeholder(_) => false,
        _ => true,
    }
}

/// The most `.` in one chain of names in `sql`, from its tokens (tokenizing is linear): a chain
/// goes on while tokens alternate with `.`; whitespace and comments do not end it.
fn longest_name_chain(tokens: &[Token]) -> usize {
    let (mut longest, mut dots, mut after_dot) = (0, 0, true);
    for token in tokens
        .iter()
        .filter(|token| !matches!(token, Token::Whitespace(_)))
    {
        if matches!(token, Token::Period) {
            dots += 1;
            longest = longest.max(dots);
            after_dot = true;
        } else {
            if !after_dot {
                // Two parts in a row: the chain ended before this one.
                dots = 0;
            }
            after_dot = false;
        }
    }
    longest
}

/// The SQL tokens of `sql`.
fn tokens_of(sql: &str) -> Result<Vec<Token>, String> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| format!("it does not parse: {e}"))
}

/// Whether the first words of `sql` are `CREATE [OR REPLACE] VIEW`, from its tokens: anything
/// else is refused before the parser sees it.
fn starts_with_create_view(tokens: &[Token]) -> bool {
    let mut words = tokens.iter().filter_map(|token| match token {
        Token::Whitespace(_) => None,
        Token::Word(word) => Some(word.keyword),
        _ => Some(Keyword::NoKeyword),
    });
    match (words.next(), words.next(), words.next()) {
        (Some(Keyword::CREATE), Some(Keyword::VIEW), _) => true,
        (Some(Keyword::CREATE), Some(Keyword::OR), Some(Keyword::REPLACE)) => {
            words.next() == Some(Keyword::VIEW)
        }
        _ => false,
    }
}

/// Whether `name` can be a view's name.
pub fn is_valid_view_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

pub(crate) fn check_name(name: &str) -> Result<(), EngineError> {
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

/// Why a lake's view statement is not loaded, if it is not: it must be exactly one
/// `CREATE [OR REPLACE] VIEW <name> AS <query>` (no `MATERIALIZED`, `TEMPORARY`, `TO`…) whose
/// unqualified name, as DataFusion normalises it, is the file's `name`. The query itself is
/// checked once planned ([`check_view_plan`]).
pub fn check_view_statement(name: &str, sql: &str) -> Result<(), String> {
    parse_view_statement(name, sql).map(|_| ())
}

/// The statement of a lake's view, parsed once, if [`check_view_statement`] accepts it.
pub(crate) fn parse_view_statement(name: &str, sql: &str) -> Result<DfStatement, String> {
    if !is_valid_view_name(name) {
        return Err(format!(
            "{name:?} is not a view name (letters, digits and _, not starting with a digit)"
        ));
    }
    // Checked on the tokens (tokenizing is linear) before the parser, whose time can explode.
    let tokens = tokens_of(sql)?;
    if !starts_with_create_view(&tokens) {
        return Err("it is not a CREATE VIEW statement".into());
    }
    let words = tokens
        .iter()
        .filter(|token| !matches!(token, Token::Whitespace(_)))
        .count();
    if words > MAX_VIEW_TOKENS {
        return Err(format!(
            "it has {words} tokens (at most {MAX_VIEW_TOKENS} are read from a lake)"
        ));
    }
    let operators = tokens.iter().filter(|token| is_operator(token)).count();
    if operators > MAX_VIEW_OPERATORS {
        return Err(format!(
            "it has {operators} operators (at most {MAX_VIEW_OPERATORS} are read from a lake)"
        ));
    }
    let chain = longest_name_chain(&tokens);
    if chain > MAX_NAME_CHAIN_DOTS {
        return Err(format!(
            "it has a name of {} parts (at most {} are read from a lake)",
            chain + 1,
            MAX_NAME_CHAIN_DOTS + 1
        ));
    }
    // Parsed in time bounded by its length: see `sql_budget`.
    let statements = parse_budgeted(sql).map_err(|e| e.to_string())?;
    let [statement] = Vec::from(statements)
        .try_into()
        .map_err(|v: Vec<_>| format!("it holds {} statements, not one CREATE VIEW", v.len()))?;
    let DfStatement::Statement(statement) = statement else {
        return Err("it is not a CREATE VIEW statement".into());
    };
    let Statement::CreateView(view) = &*statement else {
        return Err("it is not a CREATE VIEW statement".into());
    };
    if view.materialized
        || view.or_alter
        || view.secure
        || view.temporary
        || view.to.is_some()
        || view.params.is_some()
    {
        return Err("only CREATE [OR REPLACE] VIEW <name> AS <query> is loaded from a lake".into());
    }
    let declared = match view.name.0.as_slice() {
        [part] => part.as_ident().map(|ident| match ident.quote_style {
            // DataFusion folds unquoted names to lower case.
            None => ident.value.to_lowercase(),
            Some(_) => ident.value.clone(),
        }),
        _ => None,
    };
    if declared.as_deref() != Some(name) {
        return Err(format!(
            "it creates view {}, not {name} (its file's name)",
            view.name
        ));
    }
    Ok(DfStatement::Statement(statement))
}

/// Why a planned lake view is not loaded, if it is not: the plan must create the view `name`
/// from a query made only of reading operators, subqueries included.
pub fn check_view_plan(name: &str, plan: &LogicalPlan) -> Result<(), String> {
    let LogicalPlan::Ddl(DdlStatement::CreateView(CreateView {
        name: created,
        input,
        ..
    })) = plan
    else {
        return Err("it is not a CREATE VIEW statement".into());
    };
    if created.schema().is_some() || created.table() != name {
        return Err(format!("it creates view {created}, not {name}"));
    }
    let mut refused = None;
    let walked = input.apply_with_subqueries(|node| {
        let reads = matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Join(_)
                | LogicalPlan::Repartition(_)
                | LogicalPlan::Union(_)
                | LogicalPlan::TableScan(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::Subquery(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Limit(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::Unnest(_)
                | LogicalPlan::RecursiveQuery(_)
        );
        if reads {
            Ok(TreeNodeRecursion::Continue)
        } else {
            refused = Some(node.display().to_string());
            Ok(TreeNodeRecursion::Stop)
        }
    });
    match (walked, refused) {
        (Err(e), _) => Err(format!("its query cannot be checked: {e}")),
        (Ok(_), Some(node)) => Err(format!("its query does more than read: {node}")),
        (Ok(_), None) => Ok(()),
    }
}

/// The local file of `key` in a lake rooted at `root`, if reading it stays inside the lake:
/// `None` if the path, once links are resolved, leads out of the lake (or cannot be resolved).
/// For the lake's small objects (views, JSON) and anything else read from a local lake.
pub fn confined_local_path(root: &Path, key: &str) -> Option<PathBuf> {
    if key.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let path = root.join(key).canonicalize().ok()?;
    path.starts_with(&root).then_some(path)
}

/// The text of the view object `key` of `lake`: `Ok(None)` if it vanished since it was listed;
/// refused if it is a link out of a local lake, larger than [`MAX_VIEW_BYTES`] or not UTF-8.
pub async fn read_lake_view(lake: &Lake, key: &str) -> Result<Option<String>, String> {
    let bytes = match lake.location() {
        LakeLocation::Local(root) => {
            let Some(path) = confined_local_path(root, key) else {
                return if root.join(key).symlink_metadata().is_ok() {
                    Err("it is a link leading out of the lake".into())
                } else {
                    Ok(None)
                };
            };
            let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
            if size > MAX_VIEW_BYTES as u64 {
                return Err(format!(
                    "it is {size} bytes, more than a view's {MAX_VIEW_BYTES}"
                ));
            }
            match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
        LakeLocation::S3 { .. } => match lake.get(key).await {
            Ok(Some(bytes)) => bytes.to_vec(),
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        },
    };
    if bytes.len() > MAX_VIEW_BYTES {
        return Err(format!(
            "it is {} bytes, more than a view's {MAX_VIEW_BYTES}",
            bytes.len()
        ));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "it is not UTF-8 text".into())
}

impl Engine {
    /// Loads a saved view (from the lake or the user's settings) into the session, if it is a
    /// view and nothing more: see [`check_view_statement`] and [`check_view_plan`]. The error
    /// is the notice to show.
    pub async fn load_lake_view(&self, name: &str, sql: &str) -> Result<(), String> {
        let refused = |why: String| format!("view {name} was not loaded: {why}");
        let statement = parse_view_statement(name, sql).map_err(refused)?;
        // `CREATE OR REPLACE VIEW processes …` would replace the engine's own table with rows
        // of the lake's choosing: a lake's view may only replace a view.
        if let Ok(table) = self.context().table_provider(name).await
            && table.table_type() != TableType::View
        {
            return Err(refused(format!("{name} is a table, not a view")));
        }
        let plan = self
            .context()
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| refused(EngineError::from(e).to_string()))?;
        check_view_plan(name, &plan).map_err(refused)?;
        self.context()
            .execute_logical_plan(plan)
            .await
            .map_err(|e| refused(EngineError::from(e).to_string()))?;
        Ok(())
    }

    /// Saves `query` as the view `name` (replacing a view of that name): in the lake, or in the
    /// user's settings if the lake is read-only.
    pub async fn create_view(&self, name: &str, query: &str) -> Result<(), EngineError> {
        check_name(name)?;
        let sql = format!("CREATE OR REPLACE VIEW {name} AS {}", query.trim());
        // Refused now, not at the next open, if it is beyond what is read back from a lake
        // (size, tokens, operators, parser steps).
        if sql.len() > MAX_VIEW_BYTES {
            return Err(EngineError::Query(format!(
                "view {name} is {} bytes, more than a view's {MAX_VIEW_BYTES}",
                sql.len()
            )));
        }
        parse_view_statement(name, &sql)
            .map_err(|why| EngineError::Query(format!("view {name} is not saved: {why}")))?;
        self.execute(&sql).await?;
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

    /// Found by the `view_sql` fuzz target (reduced): a chain of names with keywords among its
    /// parts, on which the SQL parser's time doubles per part. Refused before it is parsed.
    #[test]
    fn long_chains_of_names_are_refused_before_parsing() {
        let slow =
            "SET z =a.i.n.is.i.\x0bon.s.in.\x0b\x0bn.si.\x0b\x0b\x0b\x0bs.n.n.sis.o.s.o.\x0bn.s.:";
        assert_eq!(longest_name_chain(&tokens_of(slow).unwrap()), 19);
        let why = check_view_statement("slow", slow).unwrap_err();
        assert!(why.contains("not a CREATE VIEW"), "{why}");
        assert!(!starts_with_create_view(&tokens_of(slow).unwrap()));
        assert!(starts_with_create_view(
            &tokens_of(" create  or /* x */ replace\nview v AS SELECT 1").unwrap()
        ));
        assert!(!starts_with_create_view(
            &tokens_of("CREATE TABLE v AS SELECT 1").unwrap()
        ));
        assert!(!starts_with_create_view(
            &tokens_of("CREATE OR REPLACE TABLE v AS SELECT 1").unwrap()
        ));
        let create = format!(
            "CREATE VIEW slow AS SELECT a{} FROM frames",
            ".is".repeat(30)
        );
        assert!(
            check_view_statement("slow", &create)
                .unwrap_err()
                .contains("31 parts")
        );
        // Ordinary views: names of up to four parts, many of them.
        let ok = "CREATE VIEW ok AS SELECT f.name, datafusion.public.frames.duration_ns, 1.5 \
                  FROM datafusion.public.frames f WHERE f.a.b = 'x.y.z.w.v.u.t.s.r.q'";
        assert_eq!(longest_name_chain(&tokens_of(ok).unwrap()), 3);
        assert_eq!(check_view_statement("ok", ok), Ok(()));
        assert_eq!(
            longest_name_chain(&tokens_of("SELECT a . /* c */ b . c").unwrap()),
            2
        );
        assert_eq!(
            longest_name_chain(&tokens_of("SELECT a.b, c.d, e.f").unwrap()),
            1
        );
    }

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

    #[tokio::test]
    async fn a_view_plan_must_only_read() {
        use datafusion::logical_expr::{CreateView, DdlStatement, LogicalPlan};
        use datafusion::prelude::SessionContext;
        use std::sync::Arc;
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (x INT)").await.unwrap();
        let state = ctx.state();
        let reading = state
            .create_logical_plan(
                "CREATE VIEW v AS SELECT x FROM t WHERE x IN (SELECT x FROM t) UNION ALL SELECT 1",
            )
            .await
            .unwrap();
        assert_eq!(check_view_plan("v", &reading), Ok(()));
        assert!(check_view_plan("w", &reading).is_err());
        // A view whose input writes (as no SQL view can be written, but a plan can be built).
        let insert = state
            .create_logical_plan("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let writing = LogicalPlan::Ddl(DdlStatement::CreateView(CreateView {
            name: "v".into(),
            input: Arc::new(insert),
            or_replace: false,
            definition: None,
            temporary: false,
        }));
        let refused = check_view_plan("v", &writing).unwrap_err();
        assert!(refused.contains("does more than read"), "{refused}");
        let not_a_view = state.create_logical_plan("SELECT 1").await.unwrap();
        assert!(check_view_plan("v", &not_a_view).is_err());
    }
}
