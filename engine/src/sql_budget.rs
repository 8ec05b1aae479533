//! A step budget for the SQL parser, so that parsing SQL read from a lake takes time bounded by
//! its length.
//!
//! sqlparser 0.62 backtracks (`maybe_parse`) at several places of its expression parser, and on
//! some inputs the backtracking nests: each part of a chain of names and subscripts
//! (`a.b[[c.d…`) doubles the time. The `view_sql` fuzz target found such inputs of a few hundred
//! bytes that ran for more than ten minutes. Refusing the constructs found so far on the tokens
//! ([`crate::views::MAX_NAME_CHAIN_DOTS`]) does not refuse the ones not yet found, so the parser
//! itself is metered.
//!
//! [`BudgetedGenericDialect`] is sqlparser's [`GenericDialect`] (the dialect DataFusion parses
//! with by default) with a counter: every question the parser asks its dialect is a step, and
//! the parser asks at least one for each expression, operator and statement it tries. Once the
//! budget is spent, the dialect's hooks for expressions, operators and statements answer
//! [`ParserError::RecursionLimitExceeded`], the one error sqlparser's backtracking does not
//! swallow, so the parse unwinds at once and the caller reports [`BudgetedParse::exhausted`].

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use std::any::TypeId;
use std::cell::Cell;
use std::collections::VecDeque;

/// Parser steps allowed per byte of SQL, plus [`BASE_STEPS`]. Measured: real statements take
/// 0.3 to 0.8 steps per byte (`steps_per_byte_of_real_sql`), so they are far from the budget;
/// a view of [`crate::views::MAX_VIEW_BYTES`] is bounded by 2.1 M steps, and a step of the
/// slowest input known (a chain stopped by its budget) costs about 1.6 µs in a debug build.
pub const STEPS_PER_BYTE: u64 = 8;

/// Parser steps allowed to any statement, however short: the per-byte part alone would do for
/// real SQL, this covers the few steps a statement takes whatever its length
/// (`the_shortest_statements_fit_the_base`). Kept small because a hostile statement of a few
/// hundred bytes spends all of it.
pub const BASE_STEPS: u64 = 1_024;

/// sqlparser's [`GenericDialect`], counting the parser's questions (see the module's docs).
///
/// It answers every question as [`GenericDialect`] does: it forwards each method that
/// [`GenericDialect`] overrides (the list below must follow sqlparser's `dialect/generic.rs` of
/// the version DataFusion uses; `parses_like_the_generic_dialect` compares the trees), and it
/// reports [`GenericDialect`]'s type, so the parser's `dialect_of!` checks see the same dialect.
#[derive(Debug)]
pub struct BudgetedGenericDialect {
    steps: Cell<u64>,
    budget_steps: u64,
}

impl BudgetedGenericDialect {
    /// A dialect that allows `budget_steps` steps.
    pub fn new(budget_steps: u64) -> Self {
        Self {
            steps: Cell::new(0),
            budget_steps,
        }
    }

    /// The budget for `sql`: [`BASE_STEPS`] plus [`STEPS_PER_BYTE`] per byte.
    pub fn for_sql(sql: &str) -> Self {
        Self::new(BASE_STEPS.saturating_add(STEPS_PER_BYTE.saturating_mul(sql.len() as u64)))
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Whether the budget is spent.
    pub fn exhausted(&self) -> bool {
        self.steps.get() > self.budget_steps
    }

    fn step(&self) {
        self.steps.set(self.steps.get().saturating_add(1));
    }

    /// `Some(error)` once the budget is spent: the answer of a hook that can fail the parse.
    fn step_or_stop<T>(&self) -> Option<Result<T, ParserError>> {
        self.step();
        self.exhausted()
            .then_some(Err(ParserError::RecursionLimitExceeded))
    }
}

/// Forwards `fn name(&self) -> bool` to [`GenericDialect`], counting a step.
macro_rules! forward_bool {
    ($($name:ident),* $(,)?) => {
        $(
            fn $name(&self) -> bool {
                self.step();
                GenericDialect.$name()
            }
        )*
    };
}

impl Dialect for BudgetedGenericDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    // The tokenizer's questions: per character, not counted.
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect.is_identifier_part(ch)
    }

    // The hooks that may stop the parse. GenericDialect keeps the default (`None`) for each.
    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        self.step_or_stop()
    }

    fn parse_infix(
        &self,
        _parser: &mut Parser,
        _expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        self.step_or_stop()
    }

    fn get_next_precedence(&self, _parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.step_or_stop()
    }

    fn parse_statement(&self, _parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        self.step_or_stop()
    }

    forward_bool!(
        supports_unicode_string_literal,
        supports_partition_by_after_order_by,
        supports_array_join_syntax,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_update_order_by,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name,
        supports_key_column_option,
        supports_comma_separated_trim,
        supports_cte_without_as,
        supports_select_item_multi_column_alias,
        supports_xml_expressions,
    );
}

/// What [`parse_budgeted`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetedParseError {
    /// The parser took more steps than `sql`'s budget allows.
    #[error(
        "it takes the SQL parser more than {budget_steps} steps (a budget of {STEPS_PER_BYTE} per byte)"
    )]
    Exhausted {
        /// The budget that was spent.
        budget_steps: u64,
    },
    /// The SQL does not parse.
    #[error("it does not parse: {0}")]
    Invalid(String),
}

/// The statements of `sql` as DataFusion parses them, in time bounded by `sql`'s length.
pub fn parse_budgeted(sql: &str) -> Result<VecDeque<DfStatement>, BudgetedParseError> {
    let dialect = BudgetedGenericDialect::for_sql(sql);
    let parsed = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .and_then(|mut parser| parser.parse_statements());
    if dialect.exhausted() {
        return Err(BudgetedParseError::Exhausted {
            budget_steps: dialect.budget_steps,
        });
    }
    parsed.map_err(|e| BudgetedParseError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    const REAL_SQL: &[&str] = &[
        "SELECT name, count(*) AS calls, avg(duration_ns) FROM thread_spans GROUP BY name ORDER BY 2 DESC LIMIT 10",
        "CREATE OR REPLACE VIEW slow_frames AS SELECT process_id, frame_index, duration_ns FROM frames WHERE duration_ns > 33400000",
        "CREATE VIEW per_build AS SELECT p.properties['build'] AS build, approx_percentile_cont(f.duration_ns, 0.99) AS p99 \
         FROM frames f JOIN processes p ON f.process_id = p.process_id GROUP BY 1",
        "WITH w AS (SELECT a.b.c, x[1], CAST(y AS BIGINT) FROM t) SELECT * FROM w WHERE c IN (SELECT c FROM u) \
         AND NOT EXISTS (SELECT 1 FROM v WHERE v.c = w.c) UNION ALL SELECT 1, 2, 3",
        "SELECT CASE WHEN level <= 2 THEN 'bad' ELSE 'ok' END, date_trunc('second', time), \
         row_number() OVER (PARTITION BY name ORDER BY duration_ns DESC) FROM log_entries LIMIT 5",
        "CREATE VIEW q AS SELECT struct(1 AS a, 'x' AS b), make_array(1, 2)[2], {'k': 1}, t.s['k'] FROM t",
        "SELECT * FROM t1 LEFT JOIN t2 USING (id) WHERE t1.x BETWEEN 1 AND 10 AND t2.y LIKE '%a%' \
         OR t1.z IS NOT NULL ORDER BY t1.x NULLS LAST",
    ];

    #[test]
    fn parses_like_the_generic_dialect() {
        for sql in REAL_SQL {
            let generic = DFParser::parse_sql(sql).map_err(|e| e.to_string());
            let budgeted = parse_budgeted(sql).map_err(|e| e.to_string());
            assert!(generic.is_ok(), "{sql}: {generic:?}");
            assert_eq!(format!("{generic:?}"), format!("{budgeted:?}"), "{sql}");
        }
        // Where the dialects differ (GenericDialect says yes, the default says no).
        for sql in [
            "SELECT * EXCEPT (a) FROM t",
            "SELECT a FROM t GROUP BY a WITH ROLLUP",
            "SELECT 1 << 2",
            "SELECT count(*) FILTER (WHERE a > 1) FROM t",
        ] {
            assert_eq!(
                format!("{:?}", DFParser::parse_sql(sql).map_err(|e| e.to_string())),
                format!("{:?}", parse_budgeted(sql).map_err(|e| e.to_string())),
                "{sql}"
            );
        }
    }

    #[test]
    fn steps_per_byte_of_real_sql() {
        for sql in REAL_SQL {
            let dialect = BudgetedGenericDialect::new(u64::MAX);
            let statements = DFParserBuilder::new(*sql)
                .with_dialect(&dialect)
                .build()
                .and_then(|mut parser| parser.parse_statements());
            assert!(statements.is_ok(), "{sql}");
            let per_byte = dialect.steps() as f64 / sql.len() as f64;
            // Far below the budget, and the counter does count.
            assert!(
                (0.1..(STEPS_PER_BYTE / 4) as f64).contains(&per_byte),
                "{sql}: {per_byte} steps per byte"
            );
        }
    }

    #[test]
    fn the_shortest_statements_fit_the_base() {
        for sql in [
            "SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "SELECT * FROM t",
            "SELECT (((1)))",
        ] {
            let dialect = BudgetedGenericDialect::new(u64::MAX);
            let statements = DFParserBuilder::new(sql)
                .with_dialect(&dialect)
                .build()
                .and_then(|mut parser| parser.parse_statements());
            assert!(statements.is_ok(), "{sql}");
            assert!(
                (1..BASE_STEPS / 16).contains(&dialect.steps()),
                "{sql}: {} steps",
                dialect.steps()
            );
        }
    }

    #[test]
    fn backtracking_chains_stop_at_the_budget() {
        // Reduced from the fuzz target's second hang: without a budget, sqlparser 0.62 spends
        // minutes on these 98 bytes.
        let sql = "SELECT auo.qq._bn.qqquon._._bau.taftqqqqqs.u.i.ftqqq.i.keusn.q.n.l_[[[qon.akaon.aqqqqqqqquon.cp[[[";
        let refused = parse_budgeted(sql);
        assert!(
            matches!(refused, Err(BudgetedParseError::Exhausted { .. })),
            "{refused:?}"
        );
        // The construct: a chain of names, then an unclosed subscript. 19 parts take sqlparser
        // about a second (release), each part more doubles it.
        let sql = "SELECT a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z[[[";
        let refused = parse_budgeted(sql);
        assert!(
            matches!(refused, Err(BudgetedParseError::Exhausted { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn the_largest_view_stops_at_its_budget() {
        // Its budget is the largest a lake's view gets; the comment adds bytes but no steps.
        let chain = "SELECT a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z[[[";
        let padding = "x".repeat(crate::views::MAX_VIEW_BYTES - chain.len() - 5);
        let sql = format!("{chain} /*{padding}*/");
        assert_eq!(sql.len(), crate::views::MAX_VIEW_BYTES);
        let start = std::time::Instant::now();
        let refused = parse_budgeted(&sql);
        // For BENCHMARKS.md (`-- --nocapture`); no assertion on time.
        eprintln!("the largest view stopped after {:?}", start.elapsed());
        assert_eq!(
            refused,
            Err(BudgetedParseError::Exhausted {
                budget_steps: BASE_STEPS + STEPS_PER_BYTE * sql.len() as u64
            })
        );
    }

    #[test]
    fn a_long_real_statement_fits_its_budget() {
        let columns: Vec<String> = (0..5_000)
            .map(|i| format!("coalesce(t.c{i}, 0) + {i} AS x{i}"))
            .collect();
        let sql = format!("CREATE VIEW wide AS SELECT {} FROM t", columns.join(", "));
        assert!(parse_budgeted(&sql).is_ok());
    }
}
