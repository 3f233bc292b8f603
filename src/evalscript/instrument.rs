//! Rewrites a script so that every function entry and every loop iteration calls the
//! native tick of `watch` (boa has no interrupt hook of its own).
//!
//! The places come from boa's own parse, not from a tokenizer of ours:
//!
//! * a braced function body (any kind: declarations, expressions, arrows, methods,
//!   accessors, generators, class members) gets `__tessera_tick();` after its `{` (after
//!   its directive prologue, so `"use strict"` stays a directive);
//! * a concise arrow body `x => e` becomes `x => (__tessera_tick(), e)`;
//! * `while`/`do ... while` conditions and a `for` condition (or, without one, its update)
//!   become `(__tessera_tick(), c)`; a `for` with neither is refused;
//! * a `for ... in`/`for ... of` body gets the tick after its `{`, or is preceded by
//!   `if (__tessera_tick(), 1)` when it is a single statement.
//!
//! Insertions hold no line break, so line numbers in error messages stay the script's.
//! The result is parsed again and *verified*: every function body and loop must start
//! with the tick, or the script is refused. Since a script may not name `__tessera_tick`
//! (nor use `with`, and `eval`/`Function` compile nothing but a bare name, see `runtime`),
//! the tick cannot be shadowed, and since boa's limit error is uncatchable, it cannot be
//! swallowed either. What runs is therefore what was verified.

use std::ops::ControlFlow;

use boa_engine::ast::expression::literal::LiteralKind;
use boa_engine::ast::expression::operator::binary::BinaryOp;
use boa_engine::ast::expression::{Expression, Identifier};
use boa_engine::ast::function::FunctionBody;
use boa_engine::ast::scope::Scope;
use boa_engine::ast::statement::iteration::{
    DoWhileLoop, ForInLoop, ForLoop, ForOfLoop, WhileLoop,
};
use boa_engine::ast::statement::{Statement, With};
use boa_engine::ast::visitor::{VisitWith, Visitor};
use boa_engine::ast::{Position, Spanned, StatementListItem};
use boa_engine::interner::Interner;
use boa_engine::parser::{Parser, Source};

use super::watch::TICK_NAME;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// The source does not parse as a script (the caller reports boa's syntax error).
    #[error("not a script")]
    NotAScript,
    /// The script parses but cannot run under the time limit as written.
    #[error("{0}")]
    Refused(String),
}

/// The instrumented text of `source`, verified.
pub(crate) fn instrument(source: &str) -> Result<String, InstrumentError> {
    let mut interner = Interner::default();
    let script = Parser::new(Source::from_bytes(source))
        .parse_script(&Scope::new_global(), &mut interner)
        .map_err(|_| InstrumentError::NotAScript)?;
    let lines = LineIndex::new(source);
    let mut planner = Planner {
        source,
        lines: &lines,
        interner: &interner,
        edits: Vec::new(),
        bare_for_loops: 0,
    };
    if let ControlFlow::Break(message) = script.visit_with(&mut planner) {
        return Err(InstrumentError::Refused(message));
    }
    let mut edits = planner.edits;
    if planner.bare_for_loops > 0 {
        for at in bare_for_conditions(source) {
            edits.push(Edit {
                at,
                class: 1,
                order: std::cmp::Reverse(at),
                text: BARE_FOR_CONDITION,
            });
        }
    }
    let text = apply(source, edits);
    let mut literals = Literals {
        interner: &interner,
        seen: Vec::new(),
    };
    let _ = script.visit_with(&mut literals);
    if std::env::var_os("TESSERA_DEBUG_INSTRUMENT").is_some() {
        eprintln!("{text}");
    }
    verify(&text, &literals.seen)?;
    Ok(text)
}

/// Where the empty condition of each `for (init; ; )` header goes, found in the text (a
/// naive scan: a match inside a string, template or regex changes a literal, and one in
/// a comment leaves its loop without a tick; `verify` refuses both).
fn bare_for_conditions(source: &str) -> Vec<usize> {
    let b = source.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let skip_ws = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        j
    };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = source[from..].find("for") {
        let at = from + k;
        from = at + 3;
        if at > 0 && (ident(b[at - 1]) || b[at - 1] == b'.') {
            continue;
        }
        if b.get(at + 3).is_some_and(|&c| ident(c)) {
            continue;
        }
        let mut j = skip_ws(at + 3);
        if b.get(j) != Some(&b'(') {
            continue;
        }
        let mut depth = 1;
        j += 1;
        while j < b.len() {
            match b[j] {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b';' if depth == 1 => break,
                _ => {}
            }
            j += 1;
        }
        if b.get(j) != Some(&b';') {
            continue;
        }
        let second = skip_ws(j + 1);
        if b.get(second) == Some(&b';') && b.get(skip_ws(second + 1)) == Some(&b')') {
            out.push(j + 1);
        }
    }
    out
}

/// Every string, template and regex literal of a script, in order: instrumenting must
/// leave them all unchanged.
struct Literals<'a> {
    interner: &'a Interner,
    seen: Vec<String>,
}

impl Literals<'_> {
    fn push(&mut self, sym: boa_engine::interner::Sym) {
        let text = self
            .interner
            .resolve(sym)
            .map(|s| s.to_string())
            .unwrap_or_default();
        self.seen.push(text);
    }
}

impl<'ast> Visitor<'ast> for Literals<'_> {
    type BreakTy = ();

    fn visit_literal(
        &mut self,
        node: &'ast boa_engine::ast::expression::literal::Literal,
    ) -> ControlFlow<()> {
        if let LiteralKind::String(sym) = node.kind() {
            self.push(*sym);
        }
        ControlFlow::Continue(())
    }

    fn visit_reg_exp_literal(
        &mut self,
        node: &'ast boa_engine::ast::expression::RegExpLiteral,
    ) -> ControlFlow<()> {
        self.push(node.pattern());
        self.push(node.flags());
        ControlFlow::Continue(())
    }

    fn visit_template_element(
        &mut self,
        node: &'ast boa_engine::ast::expression::literal::TemplateElement,
    ) -> ControlFlow<()> {
        if let boa_engine::ast::expression::literal::TemplateElement::String(sym) = node {
            self.push(*sym);
        }
        node.visit_with(self)
    }

    fn visit_tagged_template(
        &mut self,
        node: &'ast boa_engine::ast::expression::TaggedTemplate,
    ) -> ControlFlow<()> {
        for raw in node.raws() {
            self.push(*raw);
        }
        node.visit_with(self)
    }
}

/// Parses the instrumented text and checks that every function body and loop ticks and
/// that the literals are those of the original (`original`).
fn verify(text: &str, original: &[String]) -> Result<(), InstrumentError> {
    let mut interner = Interner::default();
    let script = Parser::new(Source::from_bytes(text))
        .parse_script(&Scope::new_global(), &mut interner)
        .map_err(|err| {
            InstrumentError::Refused(format!(
                "the script could not be prepared for the time limit ({err})"
            ))
        })?;
    let mut verifier = Verifier {
        interner: &interner,
    };
    if let ControlFlow::Break(message) = script.visit_with(&mut verifier) {
        return Err(InstrumentError::Refused(message));
    }
    let mut literals = Literals {
        interner: &interner,
        seen: Vec::new(),
    };
    let _ = script.visit_with(&mut literals);
    if literals.seen != original {
        return Err(InstrumentError::Refused(
            "the script could not be prepared for the time limit (a `for (;;)` loop next to \
             text that looks like one: write `while (true)`)"
                .into(),
        ));
    }
    Ok(())
}

/// One insertion: `text` at byte `at`. Among insertions at the same byte, closings come
/// first (innermost first), then openings (outermost first).
struct Edit {
    at: usize,
    /// 0 for a closing, 1 for an opening.
    class: u8,
    /// Closings: start of their span, later first; openings: end of their span, later first.
    order: std::cmp::Reverse<usize>,
    text: &'static str,
}

fn apply(source: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.at, e.class, e.order));
    let extra: usize = edits.iter().map(|e| e.text.len()).sum();
    let mut out = String::with_capacity(source.len() + extra);
    let mut from = 0;
    for edit in edits {
        out.push_str(&source[from..edit.at]);
        out.push_str(edit.text);
        from = edit.at;
    }
    out.push_str(&source[from..]);
    out
}

/// Byte offsets of boa's (line, column) positions: columns count code points, lines end
/// at `\n`, `\r\n`, `\r`, U+2028 and U+2029, as in boa's lexer cursor.
struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(source: &'a str) -> Self {
        let mut starts = vec![0];
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\r' => {
                    if let Some(&(_, '\n')) = chars.peek() {
                        chars.next();
                        starts.push(i + 2);
                    } else {
                        starts.push(i + 1);
                    }
                }
                '\n' => starts.push(i + 1),
                '\u{2028}' | '\u{2029}' => starts.push(i + c.len_utf8()),
                _ => {}
            }
        }
        LineIndex { source, starts }
    }

    fn offset(&self, pos: Position) -> Option<usize> {
        let line = (pos.line_number() as usize).checked_sub(1)?;
        let start = *self.starts.get(line)?;
        let column = (pos.column_number() as usize).checked_sub(1)?;
        let rest = self.source.get(start..)?;
        if column == 0 {
            return Some(start);
        }
        match rest.char_indices().nth(column) {
            Some((i, _)) => Some(start + i),
            // One past the last character of the source.
            None if rest.chars().count() == column => Some(self.source.len()),
            None => None,
        }
    }
}

struct Planner<'a> {
    source: &'a str,
    lines: &'a LineIndex<'a>,
    interner: &'a Interner,
    edits: Vec<Edit>,
    bare_for_loops: usize,
}

const TICK_STATEMENT: &str = "__tessera_tick();";
const TICK_AFTER_DIRECTIVE: &str = ";__tessera_tick();";
const WRAP_OPEN: &str = "(__tessera_tick(), ";
const WRAP_CLOSE: &str = ")";
const TICK_IF: &str = "if (__tessera_tick(), 1) ";
const BARE_FOR_CONDITION: &str = " (__tessera_tick(), true)";

fn unplaceable() -> ControlFlow<String> {
    ControlFlow::Break(
        "the script could not be prepared for the time limit (an unexpected source position)"
            .into(),
    )
}

impl Planner<'_> {
    fn offset(&self, pos: Position) -> Result<usize, ()> {
        self.lines.offset(pos).ok_or(())
    }

    fn insert(&mut self, at: usize, text: &'static str) {
        self.edits.push(Edit {
            at,
            class: 1,
            order: std::cmp::Reverse(at),
            text,
        });
    }

    /// `(__tessera_tick(), e)` around an expression.
    fn wrap(&mut self, expr: &Expression) -> ControlFlow<String> {
        let span = expr.span();
        let (Ok(start), Ok(end)) = (self.offset(span.start()), self.offset(span.end())) else {
            return unplaceable();
        };
        if start >= end {
            return unplaceable();
        }
        self.wrap_range(start, self.expression_end(end));
        ControlFlow::Continue(())
    }

    /// The first byte after the `=>` that precedes `at`, past white space: where a concise
    /// arrow body really starts (boa 0.22 starts a call's span at its argument list).
    fn after_arrow(&self, at: usize) -> Option<usize> {
        let arrow = self.source[..at].rfind("=>")? + 2;
        let rest = &self.source[arrow..at];
        let skipped = rest.len() - rest.trim_start().len();
        Some(arrow + skipped)
    }

    /// Where an expression really ends, from boa's span end: boa 0.22 ends the span of a
    /// call at its callee (`Math.max` of `Math.max(0, v)`), so the argument list (and any
    /// member or call that follows) is taken in by scanning on to the first `,` `;` `)`
    /// `]` `}` or line break outside brackets, strings and comments. The re-parse in
    /// [`verify`] checks the result, so a wrong guess refuses a script, never hides one.
    fn expression_end(&self, from: usize) -> usize {
        let bytes = self.source.as_bytes();
        let mut depth = 0usize;
        let mut i = from;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => return i,
                b')' | b']' | b'}' => depth -= 1,
                b',' | b';' | b'\n' | b'\r' if depth == 0 => return i,
                b'\'' | b'"' | b'`' => {
                    // Skip the string (escapes included); template holes are rare here.
                    i += 1;
                    while i < bytes.len() && bytes[i] != c {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                b'/' if bytes.get(i + 1) == Some(&b'/') => return i,
                b'/' if bytes.get(i + 1) == Some(&b'*') => match self.source[i + 2..].find("*/") {
                    Some(k) => i += k + 3,
                    None => return i,
                },
                _ => {}
            }
            i += 1;
        }
        bytes.len()
    }

    /// `(__tessera_tick(), ...)` around the bytes `start..end`.
    fn wrap_range(&mut self, start: usize, end: usize) {
        self.edits.push(Edit {
            at: start,
            class: 1,
            order: std::cmp::Reverse(end),
            text: WRAP_OPEN,
        });
        self.edits.push(Edit {
            at: end,
            class: 0,
            order: std::cmp::Reverse(start),
            text: WRAP_CLOSE,
        });
    }

    /// The byte where the body statement of a `for ... in/of` starts: after the iterated
    /// expression, whitespace, comments and the closing parenthesis.
    fn body_start(&self, after: usize) -> Option<usize> {
        let bytes = self.source.as_bytes();
        let mut i = after;
        let mut closed = false;
        while i < bytes.len() {
            // A parenthesized iterable may end before its own closing parentheses.
            let rest = &self.source[i..];
            if rest.starts_with("//") {
                i += rest.find(['\n', '\r', '\u{2028}', '\u{2029}'])?;
            } else if rest.starts_with("/*") {
                i += rest.find("*/")? + 2;
            } else if let Some(c) = rest.chars().next() {
                if c == ')' {
                    closed = true;
                    i += 1;
                } else if c.is_whitespace() || c == '\u{feff}' {
                    i += c.len_utf8();
                } else {
                    return closed.then_some(i);
                }
            }
        }
        None
    }

    fn tick_body(&mut self, after: &Expression, body: &Statement) -> ControlFlow<String> {
        let Ok(end) = self.offset(after.span().end()) else {
            return unplaceable();
        };
        let Some(start) = self.body_start(end) else {
            return unplaceable();
        };
        if matches!(body, Statement::Block(_)) {
            if !self.source[start..].starts_with('{') {
                return unplaceable();
            }
            self.insert(start + 1, TICK_STATEMENT);
        } else {
            self.insert(start, TICK_IF);
        }
        ControlFlow::Continue(())
    }
}

fn is_tick_name(interner: &Interner, ident: &Identifier) -> bool {
    interner
        .resolve(ident.sym())
        .is_some_and(|name| name.to_string() == TICK_NAME)
}

/// The string-literal expression statements that open a body (its directive prologue).
fn directives(items: &[StatementListItem]) -> impl Iterator<Item = &Expression> {
    items.iter().map_while(|item| match item {
        StatementListItem::Statement(statement) => match statement.as_ref() {
            Statement::Expression(expr @ Expression::Literal(lit))
                if matches!(lit.kind(), LiteralKind::String(_)) =>
            {
                Some(expr)
            }
            _ => None,
        },
        StatementListItem::Declaration(_) => None,
    })
}

impl<'ast> Visitor<'ast> for Planner<'_> {
    type BreakTy = String;

    fn visit_identifier(&mut self, node: &'ast Identifier) -> ControlFlow<String> {
        if is_tick_name(self.interner, node) {
            return ControlFlow::Break(format!("the name {TICK_NAME} is reserved"));
        }
        ControlFlow::Continue(())
    }

    fn visit_with(&mut self, _: &'ast With) -> ControlFlow<String> {
        ControlFlow::Break("`with` statements are not allowed in evalscripts".into())
    }

    fn visit_function_body(&mut self, node: &'ast FunctionBody) -> ControlFlow<String> {
        let Ok(start) = self.offset(node.span().start()) else {
            return unplaceable();
        };
        if self.source[start..].starts_with('{') {
            match directives(node.statements()).last() {
                Some(last) => match self.offset(last.span().end()) {
                    Ok(end) => self.insert(end, TICK_AFTER_DIRECTIVE),
                    Err(()) => return unplaceable(),
                },
                None => self.insert(start + 1, TICK_STATEMENT),
            }
        } else {
            // A concise arrow body: one `return e`. The body's span starts at `e`; boa's
            // span of `e` itself may not (a call's starts at its argument list).
            match node.statements() {
                [StatementListItem::Statement(s)] => match s.as_ref() {
                    Statement::Return(ret) => match ret.target() {
                        Some(expr) => match self.offset(expr.span().end()) {
                            Ok(end) if end > start => {
                                let first = self.after_arrow(start).unwrap_or(start);
                                self.wrap_range(first, self.expression_end(end))
                            }
                            _ => return unplaceable(),
                        },
                        None => return unplaceable(),
                    },
                    _ => return unplaceable(),
                },
                _ => return unplaceable(),
            }
        }
        node.visit_with(self)
    }

    fn visit_while_loop(&mut self, node: &'ast WhileLoop) -> ControlFlow<String> {
        self.wrap(node.condition())?;
        node.visit_with(self)
    }

    fn visit_do_while_loop(&mut self, node: &'ast DoWhileLoop) -> ControlFlow<String> {
        self.wrap(node.cond())?;
        node.visit_with(self)
    }

    fn visit_for_loop(&mut self, node: &'ast ForLoop) -> ControlFlow<String> {
        match (node.condition(), node.final_expr()) {
            (Some(cond), _) => self.wrap(cond)?,
            (None, Some(update)) => self.wrap(update)?,
            // `for (init;;)`: no node in the header has a position; placed by text.
            (None, None) => self.bare_for_loops += 1,
        }
        node.visit_with(self)
    }

    fn visit_for_in_loop(&mut self, node: &'ast ForInLoop) -> ControlFlow<String> {
        self.tick_body(node.target(), node.body())?;
        node.visit_with(self)
    }

    fn visit_for_of_loop(&mut self, node: &'ast ForOfLoop) -> ControlFlow<String> {
        self.tick_body(node.iterable(), node.body())?;
        node.visit_with(self)
    }
}

struct Verifier<'a> {
    interner: &'a Interner,
}

impl Verifier<'_> {
    fn is_tick_call(&self, expr: &Expression) -> bool {
        match expr {
            Expression::Call(call) => {
                call.args().is_empty()
                    && matches!(call.function(), Expression::Identifier(id) if is_tick_name(self.interner, id))
            }
            _ => false,
        }
    }

    /// `(__tessera_tick(), e)`, possibly parenthesized.
    fn ticks_first(&self, expr: &Expression) -> bool {
        match expr {
            Expression::Parenthesized(p) => self.ticks_first(p.expression()),
            Expression::Binary(b) => b.op() == BinaryOp::Comma && self.is_tick_call(b.lhs()),
            _ => false,
        }
    }

    fn tick_statement(&self, item: Option<&StatementListItem>) -> bool {
        match item {
            Some(StatementListItem::Statement(s)) => {
                matches!(s.as_ref(), Statement::Expression(e) if self.is_tick_call(e))
            }
            _ => false,
        }
    }

    fn check(&self, ok: bool, what: &str) -> ControlFlow<String> {
        if ok {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(format!(
                "the script could not be prepared for the time limit (a {what} in an unusual \
                 form; add braces around loop bodies)"
            ))
        }
    }
}

impl<'ast> Visitor<'ast> for Verifier<'_> {
    type BreakTy = String;

    fn visit_function_body(&mut self, node: &'ast FunctionBody) -> ControlFlow<String> {
        let items = node.statements();
        let skip = directives(items).count();
        let ok = self.tick_statement(items.get(skip))
            || matches!(items, [StatementListItem::Statement(s)]
                if matches!(s.as_ref(), Statement::Return(r) if r.target().is_some_and(|e| self.ticks_first(e))));
        self.check(ok, "function")?;
        node.visit_with(self)
    }

    fn visit_while_loop(&mut self, node: &'ast WhileLoop) -> ControlFlow<String> {
        self.check(self.ticks_first(node.condition()), "while loop")?;
        node.visit_with(self)
    }

    fn visit_do_while_loop(&mut self, node: &'ast DoWhileLoop) -> ControlFlow<String> {
        self.check(self.ticks_first(node.cond()), "do-while loop")?;
        node.visit_with(self)
    }

    fn visit_for_loop(&mut self, node: &'ast ForLoop) -> ControlFlow<String> {
        let ok = match (node.condition(), node.final_expr()) {
            (Some(cond), _) => self.ticks_first(cond),
            (None, Some(update)) => self.ticks_first(update),
            (None, None) => false,
        };
        self.check(ok, "for loop")?;
        node.visit_with(self)
    }

    fn visit_for_in_loop(&mut self, node: &'ast ForInLoop) -> ControlFlow<String> {
        self.check(self.body_ticks(node.body()), "for-in loop")?;
        node.visit_with(self)
    }

    fn visit_for_of_loop(&mut self, node: &'ast ForOfLoop) -> ControlFlow<String> {
        self.check(self.body_ticks(node.body()), "for-of loop")?;
        node.visit_with(self)
    }
}

impl Verifier<'_> {
    fn body_ticks(&self, body: &Statement) -> bool {
        match body {
            Statement::Block(block) => {
                self.tick_statement(block.statement_list().statements().first())
            }
            Statement::If(i) => i.else_node().is_none() && self.ticks_first(i.cond()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(source: &str) -> String {
        match instrument(source) {
            Ok(text) => text,
            Err(err) => panic!("{source}: {err}"),
        }
    }

    fn refused(source: &str) -> String {
        match instrument(source) {
            Err(InstrumentError::Refused(message)) => message,
            other => panic!("{source}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn functions_tick_on_entry() {
        assert_eq!(
            ok("function f(n) { return n; }"),
            "function f(n) {__tessera_tick(); return n; }"
        );
        assert_eq!(
            ok("var g = function () {}; var o = { m() { return 1 }, get x() { return 2 } };"),
            "var g = function () {__tessera_tick();}; var o = { m() {__tessera_tick(); return 1 }, get x() {__tessera_tick(); return 2 } };"
        );
        assert_eq!(
            ok("class A { constructor() { this.a = 1 } m() {} }"),
            "class A { constructor() {__tessera_tick(); this.a = 1 } m() {__tessera_tick();} }"
        );
        assert_eq!(
            ok("function* g() { yield 1 }"),
            "function* g() {__tessera_tick(); yield 1 }"
        );
    }

    #[test]
    fn concise_arrows_around_member_calls_are_wrapped() {
        for src in [
            "const g = (v) => Math.max(0, v);",
            "const h = (v, lo) => Math.min(1, Math.max(0, v - lo));",
            "const k = (a) => a.map((x) => x * 2);",
        ] {
            let out = ok(src);
            assert!(
                out.contains("(__tessera_tick(), Math") || out.contains("(__tessera_tick(), a.map"),
                "{out}"
            );
        }
    }

    #[test]
    fn concise_arrows_are_wrapped() {
        assert_eq!(
            ok("const f = n => n <= 0 ? 1 : f(n - 1) + f(n - 1);"),
            "const f = n => (__tessera_tick(), n <= 0 ? 1 : f(n - 1) + f(n - 1));"
        );
        assert_eq!(
            ok("var g = (a, b) => ({a: a});"),
            "var g = (a, b) => (__tessera_tick(), ({a: a}));"
        );
        assert_eq!(
            ok("var h = x => { return x }"),
            "var h = x => {__tessera_tick(); return x }"
        );
    }

    #[test]
    fn directives_stay_directives() {
        assert_eq!(
            ok("function f() { 'use strict'; return this; }"),
            "function f() { 'use strict';__tessera_tick();; return this; }"
        );
        assert_eq!(
            ok("function f() {\n  \"use strict\"\n  x = 1 }"),
            "function f() {\n  \"use strict\";__tessera_tick();\n  x = 1 }"
        );
    }

    #[test]
    fn loops_tick_every_iteration() {
        assert_eq!(ok("while (true) {}"), "while ((__tessera_tick(), true)) {}");
        assert_eq!(
            ok("do x++; while (x < 3)"),
            "do x++; while ((__tessera_tick(), x < 3))"
        );
        assert_eq!(
            ok("for (var i = 0; i < 3; i++) s += i;"),
            "for (var i = 0; (__tessera_tick(), i < 3); i++) s += i;"
        );
        assert_eq!(
            ok("for (var i = 0;; i++) {}"),
            "for (var i = 0;; (__tessera_tick(), i++)) {}"
        );
        assert_eq!(
            ok("for (;;) { break }"),
            "for (; (__tessera_tick(), true);) { break }"
        );
        assert_eq!(
            ok("for (var i = 0, j = [1, 2]; ; ) { i++ }\nvar t = 'for ever';"),
            "for (var i = 0, j = [1, 2]; (__tessera_tick(), true) ; ) { i++ }\nvar t = 'for ever';"
        );
        assert_eq!(
            ok("for (var k in o) { n++ }"),
            "for (var k in o) {__tessera_tick(); n++ }"
        );
        assert_eq!(
            ok("for (const v of a /* ) */) s += v;"),
            "for (const v of a /* ) */) if (__tessera_tick(), 1) s += v;"
        );
    }

    #[test]
    fn nested_and_multiline_positions() {
        let src = "function f(a) {\n  var s = '\u{e9}\u{e9}';\n  while (a ? b : () => c) {}\n}";
        assert_eq!(
            ok(src),
            "function f(a) {__tessera_tick();\n  var s = '\u{e9}\u{e9}';\n  while ((__tessera_tick(), a ? b : () => (__tessera_tick(), c))) {}\n}"
        );
        let crlf = "var x = 1;\r\nwhile (x) { x = 0 }\r\n";
        assert_eq!(
            ok(crlf),
            "var x = 1;\r\nwhile ((__tessera_tick(), x)) { x = 0 }\r\n"
        );
    }

    #[test]
    fn refuses_what_could_hide_from_the_tick() {
        assert!(refused("var __tessera_tick = 1;").contains("reserved"));
        assert!(refused("function f(__tessera_tick) {}").contains("reserved"));
        assert!(refused("var \\u005f_tessera_tick = 1;").contains("reserved"));
        assert!(refused("with (o) { x }").contains("with"));
        // Text that looks like a `for (;;)` header inside a string is not touched.
        assert!(refused("var s = 'for (;;)'; for (;;) {}").contains("while (true)"));
        assert!(refused("for (;; /* no update */) {}").contains("unusual"));
        // A dangling else would bind to the inserted `if`: refused, not changed.
        assert!(refused("if (c) for (x of a) y(); else z();").contains("unusual"));
    }

    #[test]
    fn syntax_errors_are_left_to_boa() {
        assert_eq!(instrument("return 1"), Err(InstrumentError::NotAScript));
        assert_eq!(instrument("function ("), Err(InstrumentError::NotAScript));
    }
}
