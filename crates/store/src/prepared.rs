//! Hand-written PostgreSQL statements that diesel prepares once per connection.
//!
//! `diesel::sql_query` marks its statement unsafe to cache, so PostgreSQL parses and plans it on
//! every execution: for the check-in statement (a CTE of four writes) that was about as much
//! work as running it. [`Prepared`] carries the same kind of text, with `$1`, `$2`, …
//! placeholders, and lets diesel's statement cache keep it: the first execution on a
//! connection prepares a named statement, later ones only bind and execute.
//!
//! The text must be a fixed string per statement (never with values formatted into it), since
//! the cache holds one prepared statement per distinct text.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// One bound value and its SQL type.
trait Param {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Typed<ST, T> {
    value: T,
    sql_type: std::marker::PhantomData<ST>,
}

impl<ST, T> Param for Typed<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

/// A statement with its bound values, run like `sql_query` (`execute`, `get_result`, `load`
/// into a `QueryableByName` type), but prepared once per connection.
pub(crate) struct Prepared<'a> {
    sql: &'static str,
    params: Vec<Box<dyn Param + 'a>>,
}

impl<'a> Prepared<'a> {
    pub(crate) fn new(sql: &'static str) -> Self {
        Prepared {
            sql,
            params: Vec::new(),
        }
    }

    /// Binds the next placeholder (`$1` first).
    pub(crate) fn bind<ST, T>(mut self, value: T) -> Self
    where
        ST: 'a,
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + 'a,
    {
        self.params.push(Box::new(Typed {
            value,
            sql_type: std::marker::PhantomData::<ST>,
        }));
        self
    }
}

/// `sql` cut at its placeholders: the text before each, the placeholder's number, and the text
/// after the last one.
fn pieces(sql: &str) -> (Vec<(&str, usize)>, &str) {
    let mut cut = Vec::new();
    let mut rest = sql;
    while let Some(dollar) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(dollar);
        let digits = from_dollar
            .get(1..)
            .unwrap_or("")
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let Some(number) = from_dollar
            .get(1..=digits)
            .and_then(|d| d.parse::<usize>().ok())
        else {
            // A `$` that starts no placeholder stays text.
            let (text, after) = rest.split_at(dollar + 1);
            cut.push((text, 0));
            rest = after;
            continue;
        };
        cut.push((before, number));
        rest = from_dollar.get(digits + 1..).unwrap_or("");
    }
    (cut, rest)
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let (cut, tail) = pieces(self.sql);
        for (text, number) in cut {
            out.push_sql(text);
            if number == 0 {
                continue;
            }
            // Each use of a placeholder becomes its own parameter with the same value, so a
            // value used twice is sent twice; diesel numbers them in order.
            let param = number
                .checked_sub(1)
                .and_then(|index| self.params.get(index))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("${number} has no bound value").into(),
                    )
                })?;
            param.push(&mut out)?;
        }
        out.push_sql(tail);
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // Keyed by its text in diesel's statement cache.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn placeholders_are_cut_out_with_their_numbers() {
        let (cut, tail) = pieces("SELECT $1, $12 || '$' FROM t WHERE a = $1");
        assert_eq!(
            cut,
            vec![
                ("SELECT ", 1),
                (", ", 12),
                (" || '$", 0),
                ("' FROM t WHERE a = ", 1)
            ]
        );
        assert_eq!(tail, "");
        let (cut, tail) = pieces("SELECT 1");
        assert!(cut.is_empty());
        assert_eq!(tail, "SELECT 1");
    }
}
